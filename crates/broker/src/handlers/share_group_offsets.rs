//! The share group admin APIs (KIP-932), at the group's coordinator:
//! DescribeShareGroupOffsets (each share partition's start offset and
//! leader epoch from its persisted state summary; -1 where none),
//! AlterShareGroupOffsets (an empty group only: the state is initialized
//! again at the given start offsets with the next state epoch, which
//! fences the share partitions' leaders until they read it back) and
//! DeleteShareGroupOffsets (an empty group only: the states of the named
//! topics' partitions are deleted). ACLs as Kafka checks them: the group
//! (DESCRIBE, READ, DELETE) and the topics (DESCRIBE, READ, READ).
//!
//! "Every partition of the group" (describe without topics, DeleteGroups)
//! is every partition of the topics its members subscribe to, or of every
//! topic when it has no members, that has a state.

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::*;
use uuid::Uuid;
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::share::persister::ShareKey;
use crate::Broker;

fn message(e: ResponseError) -> Option<StrBytes> {
    Some(StrBytes::from_string(e.to_string()))
}

/// Whether `group` may be handled as a share group here: this node
/// coordinates it and it is not a classic or consumer group.
fn check_group(broker: &Broker, group: &str) -> Result<(), ResponseError> {
    broker.groups.check_coordinator(group)?;
    if broker.groups.describe(group).is_some() {
        return Err(ResponseError::GroupIdNotFound);
    }
    Ok(())
}

/// NON_EMPTY_GROUP while the share group has members.
fn check_empty(broker: &Broker, group: &str) -> Result<(), ResponseError> {
    match broker.share_groups.member_count(group) {
        Some(n) if n > 0 => Err(ResponseError::NonEmptyGroup),
        _ => Ok(()),
    }
}

/// The group-level error of an admin request: GROUP_AUTHORIZATION_FAILED
/// without `op` on the group, then [`check_group`], then (for changes)
/// [`check_empty`].
fn group_error(
    broker: &Broker,
    session: &Session,
    op: AclOperation,
    group: &str,
    must_be_empty: bool,
) -> Option<ResponseError> {
    if !broker.authorize(session, op, ResourceType::Group, group) {
        return Some(ResponseError::GroupAuthorizationFailed);
    }
    check_group(broker, group).and_then(|_| if must_be_empty { check_empty(broker, group) } else { Ok(()) }).err()
}

/// The share partitions of `group` that have a state, with their state
/// epoch and start offset ("every partition of the group").
pub async fn group_states(
    broker: &Arc<Broker>,
    group: &str,
) -> Result<Vec<(String, ShareKey, (i32, i32, i64))>, ResponseError> {
    let image = broker.controller.image();
    let subscribed = broker.share_groups.subscribed_topics(group);
    let topics: Vec<_> = image
        .topics()
        .filter(|t| !t.is_internal())
        .filter(|t| subscribed.is_empty() || subscribed.contains(&t.name))
        .cloned()
        .collect();
    let keys: Vec<(String, ShareKey)> = topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (t.name.clone(), ShareKey { group: group.to_string(), topic_id: t.topic_id, partition: p.partition })
            })
        })
        .collect();
    let summaries =
        join_all(keys.iter().map(|(_, k)| broker.share_persister.summary_with_leader_epoch(k.clone()))).await;
    let mut out = Vec::new();
    for ((name, key), summary) in keys.into_iter().zip(summaries) {
        if let Some(summary) = summary? {
            out.push((name, key, summary));
        }
    }
    Ok(out)
}

pub fn describe(
    broker: &Arc<Broker>,
    session: &Session,
    r: DescribeShareGroupOffsetsRequest,
    _version: i16,
) -> ResponseFuture {
    use describe_share_group_offsets_response::*;
    let broker = broker.clone();
    let session = session.clone();
    Box::pin(async move {
        let mut groups = Vec::with_capacity(r.groups.len());
        for g in r.groups {
            let id = g.group_id.0.to_string();
            let base = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id.clone());
            if let Some(e) = group_error(&broker, &session, AclOperation::Describe, &id, false) {
                groups.push(base.with_error_code(e.code()).with_error_message(message(e)));
                continue;
            }
            let topics = match g.topics {
                Some(topics) => describe_named(&broker, &session, &id, topics).await,
                None => match describe_all(&broker, &session, &id).await {
                    Ok(t) => t,
                    Err(e) => {
                        groups.push(base.with_error_code(e.code()).with_error_message(message(e)));
                        continue;
                    }
                },
            };
            groups.push(base.with_topics(topics));
        }
        Some(ResponseKind::DescribeShareGroupOffsets(DescribeShareGroupOffsetsResponse::default().with_groups(groups)))
    })
}

fn partition_result(
    index: i32,
    outcome: Result<Option<(i32, i32, i64)>, ResponseError>,
) -> describe_share_group_offsets_response::DescribeShareGroupOffsetsResponsePartition {
    let p = describe_share_group_offsets_response::DescribeShareGroupOffsetsResponsePartition::default()
        .with_partition_index(index);
    match outcome {
        Ok(Some((_, leader_epoch, start))) => p.with_start_offset(start).with_leader_epoch(leader_epoch.max(0)),
        Ok(None) => p.with_start_offset(-1).with_leader_epoch(0),
        Err(e) => p.with_start_offset(-1).with_leader_epoch(0).with_error_code(e.code()).with_error_message(message(e)),
    }
}

async fn describe_named(
    broker: &Arc<Broker>,
    session: &Session,
    group: &str,
    topics: Vec<describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic>,
) -> Vec<describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseTopic> {
    use describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseTopic;
    let image = broker.controller.image();
    let mut out = Vec::with_capacity(topics.len());
    for t in topics {
        let name = t.topic_name.0.to_string();
        let base = DescribeShareGroupOffsetsResponseTopic::default().with_topic_name(t.topic_name.clone());
        if !broker.authorize(session, AclOperation::Describe, ResourceType::Topic, &name) {
            let e = ResponseError::TopicAuthorizationFailed;
            out.push(base.with_partitions(t.partitions.iter().map(|p| partition_result(*p, Err(e))).collect()));
            continue;
        }
        // an unknown topic is no data, not an error (as OffsetFetch answers)
        let Some(topic) = image.topic(&name) else {
            out.push(base.with_partitions(t.partitions.iter().map(|p| partition_result(*p, Ok(None))).collect()));
            continue;
        };
        let summaries = join_all(t.partitions.iter().map(|p| {
            broker.share_persister.summary_with_leader_epoch(ShareKey {
                group: group.to_string(),
                topic_id: topic.topic_id,
                partition: *p,
            })
        }))
        .await;
        let partitions = t.partitions.iter().zip(summaries).map(|(p, s)| partition_result(*p, s)).collect();
        out.push(base.with_topic_id(topic.topic_id).with_partitions(partitions));
    }
    out
}

async fn describe_all(
    broker: &Arc<Broker>,
    session: &Session,
    group: &str,
) -> Result<Vec<describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseTopic>, ResponseError> {
    use describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseTopic;
    let no_states = broker.controller.image().topic(crate::share::coordinator::SHARE_STATE_TOPIC).is_none();
    if no_states && !broker.share_groups.exists(group) {
        return Err(ResponseError::GroupIdNotFound);
    }
    let mut by_topic: std::collections::BTreeMap<String, (Uuid, Vec<_>)> = Default::default();
    for (name, key, summary) in group_states(broker, group).await? {
        if !broker.authorize(session, AclOperation::Describe, ResourceType::Topic, &name) {
            continue;
        }
        by_topic
            .entry(name)
            .or_insert_with(|| (key.topic_id, Vec::new()))
            .1
            .push(partition_result(key.partition, Ok(Some(summary))));
    }
    Ok(by_topic
        .into_iter()
        .map(|(name, (id, mut partitions))| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(TopicName(StrBytes::from_string(name)))
                .with_topic_id(id)
                .with_partitions(partitions)
        })
        .collect())
}

pub fn alter(
    broker: &Arc<Broker>,
    session: &Session,
    r: AlterShareGroupOffsetsRequest,
    _version: i16,
) -> ResponseFuture {
    use alter_share_group_offsets_response::*;
    let broker = broker.clone();
    let session = session.clone();
    Box::pin(async move {
        let group = r.group_id.0.to_string();
        let group_error = group_error(&broker, &session, AclOperation::Read, &group, true);
        let image = broker.controller.image();
        let mut responses = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let name = t.topic_name.0.to_string();
            let topic = image.topic(&name);
            let topic_error = if group_error.is_some() {
                group_error
            } else if !broker.authorize(&session, AclOperation::Read, ResourceType::Topic, &name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if topic.is_none() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            };
            let topic_id = topic.map(|t| t.topic_id).unwrap_or_default();
            let outcomes = join_all(t.partitions.iter().map(|p| {
                let broker = &broker;
                let key = ShareKey { group: group.clone(), topic_id, partition: p.partition_index };
                let exists = topic.is_some_and(|t| t.partition(p.partition_index).is_some());
                async move {
                    if let Some(e) = topic_error {
                        return Err(e);
                    }
                    if !exists || p.start_offset < 0 {
                        return Err(ResponseError::UnknownTopicOrPartition);
                    }
                    let state_epoch = broker.share_persister.summary(key.clone()).await?.map_or(0, |(e, _)| e);
                    broker.share_persister.initialize(key, state_epoch + 1, p.start_offset).await
                }
            }))
            .await;
            let partitions = t
                .partitions
                .iter()
                .zip(outcomes)
                .map(|(p, o)| {
                    let result =
                        AlterShareGroupOffsetsResponsePartition::default().with_partition_index(p.partition_index);
                    match o {
                        Ok(()) => result,
                        Err(e) => result.with_error_code(e.code()).with_error_message(message(e)),
                    }
                })
                .collect();
            responses.push(
                AlterShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(t.topic_name)
                    .with_topic_id(topic_id)
                    .with_partitions(partitions),
            );
        }
        if group_error.is_none() {
            tracing::info!(group = %group, "altered share group offsets");
        }
        let mut response = AlterShareGroupOffsetsResponse::default().with_responses(responses);
        if let Some(e) = group_error {
            response = response.with_error_code(e.code()).with_error_message(message(e));
        }
        Some(ResponseKind::AlterShareGroupOffsets(response))
    })
}

pub fn delete(
    broker: &Arc<Broker>,
    session: &Session,
    r: DeleteShareGroupOffsetsRequest,
    _version: i16,
) -> ResponseFuture {
    use delete_share_group_offsets_response::*;
    let broker = broker.clone();
    let session = session.clone();
    Box::pin(async move {
        let group = r.group_id.0.to_string();
        if let Some(e) = group_error(&broker, &session, AclOperation::Delete, &group, true) {
            return Some(ResponseKind::DeleteShareGroupOffsets(
                DeleteShareGroupOffsetsResponse::default().with_error_code(e.code()).with_error_message(message(e)),
            ));
        }
        let image = broker.controller.image();
        let mut responses = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let name = t.topic_name.0.to_string();
            let topic = image.topic(&name);
            let outcome = match topic {
                _ if !broker.authorize(&session, AclOperation::Read, ResourceType::Topic, &name) => {
                    Err(ResponseError::TopicAuthorizationFailed)
                }
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(topic) => {
                    let deletes = topic.partitions.iter().map(|p| {
                        broker.share_persister.delete(ShareKey {
                            group: group.clone(),
                            topic_id: topic.topic_id,
                            partition: p.partition,
                        })
                    });
                    join_all(deletes).await.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ())
                }
            };
            let result = DeleteShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(topic.map(|t| t.topic_id).unwrap_or_default());
            responses.push(match outcome {
                Ok(()) => result,
                Err(e) => result.with_error_code(e.code()).with_error_message(message(e)),
            });
        }
        tracing::info!(group = %group, "deleted share group offsets");
        Some(ResponseKind::DeleteShareGroupOffsets(
            DeleteShareGroupOffsetsResponse::default().with_responses(responses),
        ))
    })
}

/// DeleteGroups for a share group: NON_EMPTY_GROUP while it has members;
/// else its states are deleted, then the group.
pub async fn delete_share_group(broker: &Arc<Broker>, group: &str) -> Result<(), ResponseError> {
    broker.groups.check_coordinator(group)?;
    check_empty(broker, group)?;
    let states = group_states(broker, group).await?;
    let deletes = states.into_iter().map(|(_, key, _)| broker.share_persister.delete(key));
    join_all(deletes).await.into_iter().collect::<Result<Vec<()>, _>>()?;
    broker.share_groups.remove(group)
}
