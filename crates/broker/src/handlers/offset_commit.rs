//! OffsetCommit: validated against the group's membership and generation
//! (or a "simple" commit with generation -1), written to
//! `__consumer_offsets`, answered once durable.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind, TopicName};
use vltava_protocol::ResponseError;

use super::ResponseFuture;
use super::Session;
use crate::group::records::CommittedOffset;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

/// A partition index and the error it is refused with, if any.
type PartitionVerdict = (i32, Option<ResponseError>);

pub fn handle(broker: &Arc<Broker>, session: &Session, request: OffsetCommitRequest, version: i16) -> ResponseFuture {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let image = broker.controller.image();
    // Per-partition verdicts first; valid offsets are committed together.
    let mut verdicts: Vec<(TopicName, Vec<PartitionVerdict>)> = Vec::new();
    let mut offsets = Vec::new();
    // ACLs: READ on the group (else every partition fails), then on each topic
    let group_denied =
        !broker.authorize_in(&image, session, AclOperation::Read, ResourceType::Group, &request.group_id);
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let known = image.topic(&name);
        let topic_denied = !broker.authorize_in(&image, session, AclOperation::Read, ResourceType::Topic, &name);
        let mut parts = Vec::new();
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            let error = if group_denied {
                Some(ResponseError::GroupAuthorizationFailed)
            } else if topic_denied {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if !known
                .is_some_and(|t| p.partition_index >= 0 && (p.partition_index as usize) < t.partitions.len())
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata.len() > broker.config.offset_metadata_max_bytes {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                offsets.push((
                    name.clone(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp_ms: now,
                    },
                ));
                None
            };
            parts.push((p.partition_index, error));
        }
        verdicts.push((topic.name.clone(), parts));
    }
    if group_denied {
        offsets.clear();
    }
    let outcome = if group_denied {
        Ok(crate::group::coordinator::Committed { durable: None, stale: Vec::new() })
    } else {
        broker.groups.commit(
            broker,
            request.group_id.0.as_str(),
            request.member_id.as_str(),
            request.group_instance_id.as_ref().map(|s| s.as_str()),
            request.generation_id_or_member_epoch,
            offsets,
            version,
        )
    };
    Box::pin(async move {
        let (group_error, stale) = match outcome {
            Ok(c) => match c.durable {
                Some((partition, offset)) => (partition.wait_coordinator_write(offset).await.err(), c.stale),
                None => (None, c.stale),
            },
            Err(e) => (Some(e), Vec::new()),
        };
        let topics = verdicts
            .into_iter()
            .map(|(name, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|(index, error)| {
                        let stale = stale.iter().any(|(t, p)| *p == index && t.as_str() == name.0.as_str());
                        let error = error.or(stale.then_some(ResponseError::StaleMemberEpoch)).or(group_error);
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(error.map(|e| e.code()).unwrap_or(0))
                    })
                    .collect();
                OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect();
        Some(ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)))
    })
}
