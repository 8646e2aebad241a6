//! CreateTopics: validate each topic as Kafka does, then create it through
//! the controller (or only validate, with `validate_only`).

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::controller::{ControllerError, TopicSpec};
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

fn spec_for(broker: &Broker, topic: &CreatableTopic) -> Result<TopicSpec, ControllerError> {
    let c = &broker.config;
    let (num_partitions, replication_factor) = if topic.assignments.is_empty() {
        let partitions = if topic.num_partitions == -1 { c.num_partitions } else { topic.num_partitions };
        let rf = if topic.replication_factor == -1 { c.default_replication_factor } else { topic.replication_factor };
        (partitions, rf)
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(ControllerError {
                error: ResponseError::InvalidRequest,
                message: "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            });
        }
        let rf = topic.assignments[0].broker_ids.len() as i16;
        for a in &topic.assignments {
            if a.broker_ids.len() as i16 != rf || a.broker_ids.iter().any(|b| b.0 != c.node_id) {
                return Err(ControllerError {
                    error: ResponseError::InvalidReplicaAssignment,
                    message: format!(
                        "Replica assignment for partition {} names unknown brokers or differs in size.",
                        a.partition_index
                    ),
                });
            }
        }
        (topic.assignments.len() as i32, rf)
    };
    let configs =
        topic.configs.iter().filter_map(|cfg| Some((cfg.name.to_string(), cfg.value.as_ref()?.to_string()))).collect();
    Ok(TopicSpec { name: topic.name.0.to_string(), num_partitions, replication_factor, configs })
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    // ACLs: CREATE on the cluster, or on each topic
    let cluster_create = broker.authorize_cluster(session, AclOperation::Create);
    // controller_mutation_rate (KIP-599): strict from v6
    let image = broker.controller.image();
    let client = crate::quotas::Client::of(session);
    let mutations = if request.validate_only { None } else { broker.quotas.mutations(&image, &client, version >= 6) };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.clone();
            let result = CreatableTopicResult::default()
                .with_name(name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            if seen[name.0.as_str()] > 1 {
                return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                    StrBytes::from_string(format!(
                        "Create topics request from client contains a duplicate topic {}",
                        name.0
                    )),
                ));
            }
            if !cluster_create && !broker.authorize(session, AclOperation::Create, ResourceType::Topic, &name) {
                return result
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
            }
            let outcome = spec_for(broker, topic).and_then(|spec| {
                if mutations.as_ref().is_some_and(|m| !m.admit(spec.num_partitions.max(0) as u32)) {
                    return Err(ControllerError {
                        error: ResponseError::ThrottlingQuotaExceeded,
                        message: crate::quotas::MUTATION_REFUSED.into(),
                    });
                }
                if request.validate_only {
                    broker
                        .controller
                        .validate_create(&spec)
                        .map(|_| (spec.num_partitions, spec.replication_factor, uuid::Uuid::nil()))
                } else {
                    broker.create_topic(&spec).map(|t| (spec.num_partitions, spec.replication_factor, t.topic_id))
                }
            });
            match outcome {
                Ok((partitions, rf, topic_id)) => {
                    tracing::info!(topic = %name.0, partitions, validate_only = request.validate_only, "created topic");
                    result
                        .with_num_partitions(partitions)
                        .with_replication_factor(rf)
                        .with_topic_id(topic_id)
                        .with_configs(Some(Vec::new()))
                }
                Err(e) => {
                    result.with_error_code(e.error.code()).with_error_message(Some(StrBytes::from_string(e.message)))
                }
            }
        })
        .collect();
    let throttle = mutations.map_or(0, |m| m.throttle_ms());
    CreateTopicsResponse::default().with_topics(results).with_throttle_time_ms(throttle)
}
