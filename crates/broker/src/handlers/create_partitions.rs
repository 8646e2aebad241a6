//! CreatePartitions: grows a topic; shrinking or keeping the count is
//! INVALID_PARTITIONS, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: CreatePartitionsRequest,
    version: i16,
) -> CreatePartitionsResponse {
    // controller_mutation_rate (KIP-599): strict from v3
    let image = broker.controller.image();
    let client = crate::quotas::Client::of(session);
    let mutations = if request.validate_only { None } else { broker.quotas.mutations(&image, &client, version >= 3) };
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            // ACLs: ALTER on the topic
            if !broker.authorize(session, AclOperation::Alter, ResourceType::Topic, &topic.name) {
                return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let node = broker.config.node_id;
            if let Some(assignments) = &topic.assignments {
                if assignments.iter().any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| b.0 != node)) {
                    return result.with_error_code(ResponseError::InvalidReplicaAssignment.code()).with_error_message(
                        Some(StrBytes::from_static_str("Replica assignments may only name this broker.")),
                    );
                }
            }
            let adding = image.topic(topic.name.0.as_str()).map_or(0, |t| topic.count - t.partitions.len() as i32);
            if adding > 0 && mutations.as_ref().is_some_and(|m| !m.admit(adding as u32)) {
                return result
                    .with_error_code(ResponseError::ThrottlingQuotaExceeded.code())
                    .with_error_message(Some(StrBytes::from_static_str(crate::quotas::MUTATION_REFUSED)));
            }
            let outcome =
                broker.controller.add_partitions(topic.name.0.as_str(), topic.count, request.validate_only).map(|t| {
                    if !request.validate_only {
                        tracing::info!(topic = %t.name, partitions = t.partitions.len(), "added partitions");
                    }
                });
            match outcome {
                Ok(()) => result,
                Err(e) => {
                    result.with_error_code(e.error.code()).with_error_message(Some(StrBytes::from_string(e.message)))
                }
            }
        })
        .collect();
    let throttle = mutations.map_or(0, |m| m.throttle_ms());
    CreatePartitionsResponse::default().with_results(results).with_throttle_time_ms(throttle)
}
