//! OffsetDelete: removes committed offsets of partitions the group no
//! longer consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    // ACLs: DELETE on the group, READ on each topic
    if !broker.authorize(session, AclOperation::Delete, ResourceType::Group, &request.group_id) {
        return OffsetDeleteResponse::default()
            .with_error_code(vltava_protocol::ResponseError::GroupAuthorizationFailed.code());
    }
    let image = broker.controller.image();
    let denied = |t: &str| !broker.authorize_in(&image, session, AclOperation::Read, ResourceType::Topic, t);
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| !denied(&t.name))
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    match broker.groups.delete_offsets(broker, request.group_id.0.as_str(), &wanted) {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(results) => {
            let mut results = results.into_iter();
            let topics = request
                .topics
                .into_iter()
                .map(|t| {
                    let topic_denied = denied(&t.name);
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let error = if topic_denied {
                                Some(vltava_protocol::ResponseError::TopicAuthorizationFailed)
                            } else {
                                results.next().flatten()
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error.map(|e| e.code()).unwrap_or(0))
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default().with_name(t.name).with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}
