//! DeleteTopics: by name (v1-v5 `topic_names`, v6 `topics[].name`) or by id (v6).
//! With `delete.topic.enable=false` every topic is refused, as Kafka does:
//! TOPIC_DELETION_DISABLED (v3+) or INVALID_REQUEST (older versions).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        request.topic_names.into_iter().map(|n| (Some(n), Uuid::nil())).collect()
    };
    if !broker.config.delete_topic_enable {
        let error = if version >= 3 { ResponseError::TopicDeletionDisabled } else { ResponseError::InvalidRequest };
        let responses = targets
            .into_iter()
            .map(|(name, topic_id)| {
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_static_str("Topic deletion is disabled.")))
            })
            .collect();
        return DeleteTopicsResponse::default().with_responses(responses);
    }
    // controller_mutation_rate (KIP-599): strict from v5
    let client = crate::quotas::Client::of(session);
    let mutations = broker.quotas.mutations(&broker.controller.image(), &client, version >= 5);
    let responses = targets
        .into_iter()
        .map(|(name, topic_id)| {
            let image = broker.controller.image();
            let found = match &name {
                Some(n) => image.topic(n.0.as_str()).cloned(),
                None => image.topic_by_id(&topic_id).cloned(),
            };
            let result = DeletableTopicResult::default().with_name(name.clone()).with_topic_id(topic_id);
            // ACLs: DELETE on the topic (a topic id the principal may not
            // DESCRIBE stays unknown, as in Kafka)
            let named = name.as_ref().map(|n| n.0.to_string()).or_else(|| found.as_ref().map(|t| t.name.clone()));
            if let Some(n) = &named {
                if name.is_none()
                    && !broker.authorize_in(&image, session, AclOperation::Describe, ResourceType::Topic, n)
                {
                    return result.with_error_code(ResponseError::UnknownTopicId.code());
                }
                if !broker.authorize_in(&image, session, AclOperation::Delete, ResourceType::Topic, n) {
                    return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                }
            }
            let Some(topic) = found else {
                let error =
                    if name.is_some() { ResponseError::UnknownTopicOrPartition } else { ResponseError::UnknownTopicId };
                return result.with_error_code(error.code());
            };
            if mutations.as_ref().is_some_and(|m| !m.admit(topic.partitions.len() as u32)) {
                return result
                    .with_error_code(ResponseError::ThrottlingQuotaExceeded.code())
                    .with_error_message(Some(StrBytes::from_static_str(crate::quotas::MUTATION_REFUSED)));
            }
            match broker.delete_topic(topic.topic_id) {
                Ok(()) => {
                    tracing::info!(topic = %topic.name, "deleted topic");
                    result
                        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
                        .with_topic_id(topic.topic_id)
                }
                Err(e) => {
                    result.with_error_code(e.error.code()).with_error_message(Some(StrBytes::from_string(e.message)))
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(mutations.map_or(0, |m| m.throttle_ms()))
}
