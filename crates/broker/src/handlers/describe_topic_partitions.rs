//! DescribeTopicPartitions (KIP-966): topics and their partitions like
//! Metadata, but paginated. Topics go in name order; a response holds at
//! most `min(response_partition_limit, max.request.partition.size.limit)`
//! partitions and, when more remain, a `next_cursor` (topic, partition) to
//! ask again from. An empty topic list means every topic; an explicit one
//! answers unknown names with UNKNOWN_TOPIC_OR_PARTITION (or
//! INVALID_TOPIC_EXCEPTION for an illegal name), as Kafka does.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use uuid::Uuid;
use vltava_metadata::{AclOperation, MetadataImage, ResourceType, TopicImage};
use vltava_protocol::{ResponseError, StrBytes};

use super::metadata::{leader_error, offline_replicas};
use super::Session;
use crate::authorized::{self, ResourceKind};
use crate::controller::validate_topic_name;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: DescribeTopicPartitionsRequest,
    _version: i16,
) -> DescribeTopicPartitionsResponse {
    let image = broker.controller.image();
    let every_topic = request.topics.is_empty();
    // ACLs: DESCRIBE on the topic (every topic: only those)
    let may = |name: &str| broker.authorize_in(&image, session, AclOperation::Describe, ResourceType::Topic, name);
    let names: BTreeSet<String> = if every_topic {
        image.topics().filter(|t| may(&t.name)).map(|t| t.name.clone()).collect()
    } else {
        request.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    let cursor = request.cursor.as_ref().map(|c| (c.topic_name.0.to_string(), c.partition_index));
    if let Some((topic, partition)) = &cursor {
        // Kafka: the cursor's topic must be one of those asked for
        if !names.contains(topic) || *partition < 0 {
            return refused(&request, ResponseError::InvalidRequest);
        }
    }
    let limit = request.response_partition_limit.min(broker.config.max_request_partition_size_limit).max(1);
    let mut response = DescribeTopicPartitionsResponse::default();
    let mut left = limit as usize;
    let from = cursor.as_ref().map(|(topic, _)| topic.as_str()).unwrap_or("");
    for name in names.iter().filter(|n| n.as_str() >= from) {
        if left == 0 {
            // everything before this topic is answered: start the next page with it
            response.next_cursor = Some(cursor_at(name, 0));
            break;
        }
        if !may(name) {
            response.topics.push(unknown(name).with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        let Some(topic) = image.topic(name) else {
            if !every_topic {
                response.topics.push(unknown(name));
            }
            continue;
        };
        let first = match &cursor {
            Some((t, p)) if t == name => *p,
            _ => 0,
        };
        let ops = authorized::for_session(broker, &image, session, ResourceKind::Topic, name, true);
        let (entry, next) = describe(topic, &image, first, left, ops);
        left -= entry.partitions.len();
        response.topics.push(entry);
        if let Some(next) = next {
            response.next_cursor = Some(cursor_at(name, next));
            break;
        }
    }
    response
}

/// Partitions `first..` of `topic`, at most `most` of them, and the first
/// one left out, if any.
fn describe(
    topic: &TopicImage,
    image: &MetadataImage,
    first: i32,
    most: usize,
    authorized_operations: i32,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let wanted: Vec<_> = topic.partitions.iter().filter(|p| p.partition >= first).collect();
    let next = wanted.get(most).map(|p| p.partition);
    let partitions = wanted
        .into_iter()
        .take(most)
        .map(|p| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_error_code(leader_error(p))
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
                // no eligible leader replicas (KIP-966 part 1 is off, as in
                // Kafka 4.1 by default): empty, not null
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(offline_replicas(p, image))
        })
        .collect();
    let entry = DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations);
    (entry, next)
}

fn unknown(name: &str) -> DescribeTopicPartitionsResponseTopic {
    let error = match validate_topic_name(name) {
        Ok(()) => ResponseError::UnknownTopicOrPartition,
        Err(_) => ResponseError::InvalidTopicException,
    };
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_topic_id(Uuid::nil())
        .with_topic_authorized_operations(authorized::NOT_PROVIDED)
}

/// The whole request refused: each topic asked for carries `error`.
fn refused(request: &DescribeTopicPartitionsRequest, error: ResponseError) -> DescribeTopicPartitionsResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(error.code())
                .with_name(Some(t.name.clone()))
                .with_topic_id(Uuid::nil())
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_index(partition)
}
