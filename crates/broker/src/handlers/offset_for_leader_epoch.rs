//! OffsetForLeaderEpoch: the end offset of a leader epoch, from the
//! partition's leader epoch cache. Consumers use it to validate positions
//! after a leader change; followers use it to find where logs diverge.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use vltava_protocol::ResponseError;

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    // ACLs: a follower needs CLUSTER_ACTION, a consumer DESCRIBE on each topic
    let follower_denied = request.replica_id.0 >= 0 && !broker.authorize_cluster(session, AclOperation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let denied = if follower_denied {
                Some(ResponseError::ClusterAuthorizationFailed)
            } else if !broker.authorize(session, AclOperation::Describe, ResourceType::Topic, &topic.topic) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response =
                        EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    if let Some(e) = denied {
                        return response.with_error_code(e.code());
                    }
                    let part = match broker.partition(topic.topic.0.as_str(), p.partition) {
                        Ok((part, _)) => part,
                        Err(e) => return response.with_error_code(e.code()),
                    };
                    let ours = part.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != ours {
                        let e = if p.current_leader_epoch > ours {
                            ResponseError::UnknownLeaderEpoch
                        } else {
                            ResponseError::FencedLeaderEpoch
                        };
                        return response.with_error_code(e.code());
                    }
                    match part.end_offset_for_epoch(p.leader_epoch) {
                        Some((epoch, end_offset)) => response.with_leader_epoch(epoch).with_end_offset(end_offset),
                        None => response,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
