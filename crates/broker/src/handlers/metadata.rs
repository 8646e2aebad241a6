//! Metadata: brokers, controller, cluster id, and per topic its id and
//! partitions (leader, epoch, replicas, ISR). Unknown topics are created
//! here when the client allows it and `auto.create.topics.enable` is on.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;
use vltava_metadata::{AclOperation, MetadataImage, PartitionImage, ResourceType, TopicImage};
use vltava_protocol::{ResponseError, StrBytes};

use crate::authorized::{self, ResourceKind};
use crate::controller::TopicSpec;
use crate::Broker;

/// Replicas on brokers that are gone or fenced.
pub fn offline_replicas(p: &PartitionImage, image: &MetadataImage) -> Vec<BrokerId> {
    p.replicas.iter().copied().filter(|r| image.broker(*r).is_none_or(|b| b.fenced)).map(BrokerId).collect()
}

/// LEADER_NOT_AVAILABLE for a partition without a leader.
pub fn leader_error(p: &PartitionImage) -> i16 {
    if p.leader < 0 {
        ResponseError::LeaderNotAvailable.code()
    } else {
        0
    }
}

pub fn topic_entry(topic: &TopicImage, image: &MetadataImage, authorized_operations: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_error_code(leader_error(p))
                .with_offline_replicas(offline_replicas(p, image))
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations)
}

fn error_entry(name: Option<TopicName>, topic_id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(topic_id)
        .with_error_code(error.code())
        .with_topic_authorized_operations(authorized::NOT_PROVIDED)
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &super::Session,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let c = &broker.config;
    let allow_auto_create = (version < 4 || request.allow_auto_topic_creation) && c.auto_create_topics_enable;
    let image = broker.controller.image();
    let topic_ops = request.include_topic_authorized_operations;
    // ACLs: a topic the principal may not DESCRIBE is left out of "all
    // topics" and refused when named; auto-creation needs CREATE on the
    // cluster or the topic
    let may = |image: &MetadataImage, op: AclOperation, name: &str| {
        broker.authorize_in(image, session, op, ResourceType::Topic, name)
    };
    let entry = |t: &TopicImage, image: &MetadataImage| {
        let ops = authorized::for_session(broker, image, session, ResourceKind::Topic, &t.name, topic_ops);
        topic_entry(t, image, ops)
    };
    let all = |image: &MetadataImage| -> Vec<MetadataResponseTopic> {
        image.topics().filter(|t| may(image, AclOperation::Describe, &t.name)).map(|t| entry(t, image)).collect()
    };
    let topics = match request.topics {
        None => all(&image),
        Some(list) if list.is_empty() && version == 0 => all(&image),
        Some(list) => list
            .into_iter()
            .map(|requested| match requested.name {
                Some(name) => {
                    if !may(&image, AclOperation::Describe, name.0.as_str()) {
                        return error_entry(Some(name), Uuid::nil(), ResponseError::TopicAuthorizationFailed);
                    }
                    if let Some(t) = broker.controller.image().topic(name.0.as_str()) {
                        return entry(t, &image);
                    }
                    if !allow_auto_create {
                        return error_entry(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition);
                    }
                    let may_create = broker.authorize_in(
                        &image,
                        session,
                        AclOperation::Create,
                        ResourceType::Cluster,
                        crate::authorizer::CLUSTER_NAME,
                    ) || may(&image, AclOperation::Create, name.0.as_str());
                    if !may_create {
                        return error_entry(Some(name), Uuid::nil(), ResponseError::TopicAuthorizationFailed);
                    }
                    let spec = TopicSpec {
                        name: name.0.to_string(),
                        num_partitions: c.num_partitions,
                        replication_factor: c.default_replication_factor,
                        configs: Vec::new(),
                    };
                    match broker.create_topic(&spec) {
                        Ok(t) => {
                            tracing::info!(topic = %spec.name, partitions = spec.num_partitions, "auto-created topic");
                            entry(&t, &broker.controller.image())
                        }
                        Err(e) if e.error == ResponseError::TopicAlreadyExists => {
                            broker.controller.image().topic(&spec.name).map(|t| entry(t, &image)).unwrap_or_else(|| {
                                error_entry(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable)
                            })
                        }
                        Err(e) => error_entry(Some(name), Uuid::nil(), e.error),
                    }
                }
                None => match image.topic_by_id(&requested.topic_id) {
                    Some(t) if !may(&image, AclOperation::Describe, &t.name) => {
                        error_entry(None, requested.topic_id, ResponseError::TopicAuthorizationFailed)
                    }
                    Some(t) => entry(t, &image),
                    None => error_entry(None, requested.topic_id, ResponseError::UnknownTopicId),
                },
            })
            .collect(),
    };
    let image = broker.controller.image();
    let brokers = image
        .brokers()
        .filter(|b| !b.fenced)
        // each broker's endpoint on the listener this client uses (Kafka
        // leaves out brokers without that listener)
        .filter_map(|b| {
            let (host, port) = b.endpoint(&session.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port as i32),
            )
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id())))
        .with_controller_id(BrokerId(broker.controller.controller_for_clients()))
        .with_topics(topics)
        .with_cluster_authorized_operations(authorized::for_session(
            broker,
            &image,
            session,
            ResourceKind::Cluster,
            crate::authorizer::CLUSTER_NAME,
            request.include_cluster_authorized_operations,
        ))
}
