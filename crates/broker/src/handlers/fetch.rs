//! Fetch: stored batches returned as they are, from the batch holding the
//! fetch offset. Long polling: with less than `min_bytes` available the
//! request waits up to `max_wait_ms`, woken by appends to any of its
//! partitions, never by a timer loop. Fetch sessions are not kept: every
//! response says session id 0, which clients treat as "full fetches".

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, ResponseKind, TopicName};
use uuid::Uuid;
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::ResponseError;
use vltava_storage::StorageError;

use super::ResponseFuture;
use crate::authorizer::CLUSTER_NAME;
use crate::partition::Partition;
use crate::Broker;

/// Longest a fetch may wait, whatever the client asks.
const READ_COMMITTED: i8 = 1;

struct Target {
    topic: TopicName,
    topic_id: Uuid,
    partitions: Vec<(FetchPartition, Result<Arc<Partition>, ResponseError>)>,
}

pub fn handle(broker: &Arc<Broker>, session: &super::Session, request: FetchRequest, version: i16) -> ResponseFuture {
    let listener = session.listener.clone();
    if request.session_id != 0 {
        let response = FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        return Box::pin(std::future::ready(Some(ResponseKind::Fetch(response))));
    }
    let image = broker.controller.image();
    // a follower's fetch (replica id >= 0) reads to the log end and reports
    // the follower's progress; consumers read below the high watermark
    let replica_id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    let replica = (replica_id >= 0).then_some(replica_id);
    // ACLs: a follower needs CLUSTER_ACTION, a consumer READ on each topic
    let authorizing = broker.authorizer_enabled();
    let follower_denied = authorizing
        && replica.is_some()
        && !broker.authorize_in(&image, session, AclOperation::ClusterAction, ResourceType::Cluster, CLUSTER_NAME);
    let targets: Vec<Target> = request
        .topics
        .into_iter()
        .map(|t| {
            let found = if version >= 13 { image.topic_by_id(&t.topic_id) } else { image.topic(t.topic.0.as_str()) };
            let (topic, topic_id) = match found {
                Some(img) => (TopicName(vltava_protocol::StrBytes::from_string(img.name.clone())), img.topic_id),
                None => (t.topic.clone(), t.topic_id),
            };
            let unknown =
                if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
            let denied = follower_denied
                || (authorizing
                    && replica.is_none()
                    && (found.is_some() || version < 13)
                    && !broker.authorize_in(
                        &image,
                        session,
                        AclOperation::Read,
                        ResourceType::Topic,
                        topic.0.as_str(),
                    ));
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resolved =
                        (if denied { Err(ResponseError::TopicAuthorizationFailed) } else { found.ok_or(unknown) })
                            .and_then(|img| {
                                broker
                                    .replicas
                                    .get(&img.topic_id, p.partition)
                                    .ok_or(ResponseError::UnknownTopicOrPartition)
                            })
                            .and_then(|part| check_leader_epoch(&part, p.current_leader_epoch).map(|_| part))
                            .and_then(|part| match replica {
                                Some(id) => {
                                    let eligible = image.broker(id).is_some_and(|b| !b.fenced);
                                    if let Some(isr) = part.on_follower_fetch(id, p.fetch_offset, eligible)? {
                                        broker.controller.alter_isr(part.topic_id, part.index, isr);
                                    }
                                    Ok(part)
                                }
                                None if part.is_leader() => Ok(part),
                                None => Err(ResponseError::NotLeaderOrFollower),
                            });
                    (p, resolved)
                })
                .collect();
            Target { topic, topic_id, partitions }
        })
        .collect();
    let max_wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(crate::limits::FETCH_WAIT_MS_MAX));
    let min_bytes = request.min_bytes.max(0) as usize;
    // fetch.max.bytes bounds what a consumer gets, as in Kafka; a follower
    // asks for its replica.fetch.response.max.bytes, bounded here by the
    // larger of the two (a request's 0 or less means "as much as allowed")
    let c = &broker.config;
    let cap =
        if replica.is_some() { c.fetch_max_bytes.max(c.replica_fetch_response_max_bytes) } else { c.fetch_max_bytes };
    let cap = cap.max(1024) as usize;
    let max_bytes = if request.max_bytes <= 0 { cap } else { (request.max_bytes as usize).min(cap) };
    let read_committed = request.isolation_level == READ_COMMITTED;
    let mut stopping = broker.stopping.subscribe();
    let broker = broker.clone();
    let finish = move |mut response: FetchResponse| {
        let image = broker.controller.image();
        for topic in &response.responses {
            let bytes: usize = topic.partitions.iter().filter_map(|p| p.records.as_ref()).map(|r| r.len()).sum();
            // v13+ names topics by id
            let name = match topic.topic.0.as_str() {
                "" => image.topic_by_id(&topic.topic_id).map(|t| t.name.as_str()),
                name => Some(name),
            };
            if let (true, Some(name)) = (bytes > 0, name) {
                crate::broker_metrics::fetched(name, bytes as u64);
            }
        }
        if version >= 12 {
            add_leader_hints(&broker, &listener, &mut response, version);
        }
        Some(ResponseKind::Fetch(response))
    };
    Box::pin(async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            // Register for wake-ups before reading, so no append is missed.
            let mut wakeups: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = targets
                .iter()
                .flat_map(|t| t.partitions.iter())
                .filter_map(|(_, p)| p.as_ref().ok())
                .map(|p| Box::pin(p.appended()))
                .collect();
            for w in &mut wakeups {
                w.as_mut().enable();
            }
            let (response, bytes, had_error) = read_all(&targets, max_bytes, read_committed, replica.is_some());
            let stop = *stopping.borrow_and_update();
            if bytes >= min_bytes || had_error || wakeups.is_empty() || stop || tokio::time::Instant::now() >= deadline
            {
                return finish(response);
            }
            tokio::select! {
                _ = futures::future::select_all(wakeups) => {}
                _ = stopping.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let (response, _, _) = read_all(&targets, max_bytes, read_committed, replica.is_some());
                    return finish(response);
                }
            }
        }
    })
}

/// Fetch v12+: leader hints on NOT_LEADER_OR_FOLLOWER and
/// FENCED_LEADER_EPOCH (KIP-951); endpoints from v16.
fn add_leader_hints(broker: &Broker, listener: &str, response: &mut FetchResponse, version: i16) {
    use kafka_protocol::messages::fetch_response::{LeaderIdAndEpoch, NodeEndpoint};
    let image = broker.controller.image();
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    for topic in &mut response.responses {
        let name = match image.topic_by_id(&topic.topic_id) {
            Some(t) if version >= 13 => t.name.clone(),
            _ => topic.topic.0.to_string(),
        };
        for p in &mut topic.partitions {
            if !super::is_leader_error(p.error_code) {
                continue;
            }
            let Some(super::LeaderHint { leader, epoch, endpoint }) =
                super::leader_hint(&image, listener, &name, p.partition_index)
            else {
                continue;
            };
            p.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(kafka_protocol::messages::BrokerId(leader))
                .with_leader_epoch(epoch);
            if let Some((host, port)) = endpoint.filter(|_| version >= 16) {
                if !endpoints.iter().any(|e| e.node_id.0 == leader) {
                    endpoints.push(
                        NodeEndpoint::default()
                            .with_node_id(kafka_protocol::messages::BrokerId(leader))
                            .with_host(vltava_protocol::StrBytes::from_string(host))
                            .with_port(port as i32),
                    );
                }
            }
        }
    }
    response.node_endpoints = endpoints;
}

fn check_leader_epoch(partition: &Partition, current_leader_epoch: i32) -> Result<(), ResponseError> {
    let ours = partition.leader_epoch();
    match current_leader_epoch {
        -1 => Ok(()),
        e if e > ours => Err(ResponseError::UnknownLeaderEpoch),
        e if e < ours => Err(ResponseError::FencedLeaderEpoch),
        _ => Ok(()),
    }
}

/// Reads every partition once: the response, its record bytes, and
/// whether any partition failed (which answers at once).
fn read_all(targets: &[Target], max_bytes: usize, read_committed: bool, replica: bool) -> (FetchResponse, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut had_error = false;
    let mut responses = Vec::with_capacity(targets.len());
    for target in targets {
        let mut partitions = Vec::with_capacity(target.partitions.len());
        for (request, resolved) in &target.partitions {
            let mut data =
                PartitionData::default().with_partition_index(request.partition).with_records(Some(Bytes::new()));
            data.aborted_transactions = read_committed.then(Vec::new);
            let partition = match resolved {
                Ok(p) => p,
                Err(e) => {
                    had_error = true;
                    partitions.push(data.with_error_code(e.code()).with_high_watermark(-1));
                    continue;
                }
            };
            let marks = partition.watermarks();
            data = data
                .with_high_watermark(marks.high_watermark)
                .with_last_stable_offset(marks.last_stable_offset)
                .with_log_start_offset(marks.log_start_offset);
            let limit = (request.partition_max_bytes.max(0) as usize).min(remaining);
            if limit == 0 && total > 0 {
                partitions.push(data);
                continue;
            }
            let read = if replica {
                partition.read(request.fetch_offset, limit.max(1))
            } else if read_committed {
                partition.read_below(request.fetch_offset, limit.max(1), marks.last_stable_offset)
            } else {
                partition.read_below(request.fetch_offset, limit.max(1), marks.high_watermark)
            };
            match read {
                Ok(Some(slice)) => {
                    // only the first partition may exceed the limit (a whole first batch)
                    let slice = if total > 0 { slice.prefix(limit) } else { slice };
                    match slice.read() {
                        Ok(bytes) => {
                            total += bytes.len();
                            remaining = remaining.saturating_sub(bytes.len());
                            if read_committed {
                                let aborted = partition
                                    .aborted_txns(request.fetch_offset, marks.last_stable_offset)
                                    .into_iter()
                                    .map(|a| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(a.producer_id))
                                            .with_first_offset(a.first_offset)
                                    })
                                    .collect();
                                data.aborted_transactions = Some(aborted);
                            }
                            data = data.with_records(Some(Bytes::from(bytes)));
                        }
                        Err(e) => {
                            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "segment read failed");
                            had_error = true;
                            data = data.with_error_code(ResponseError::KafkaStorageError.code());
                        }
                    }
                }
                Ok(None) => {}
                Err(StorageError::OffsetOutOfRange { .. }) => {
                    had_error = true;
                    data = data.with_error_code(ResponseError::OffsetOutOfRange.code());
                }
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fetch failed");
                    had_error = true;
                    data = data.with_error_code(ResponseError::KafkaStorageError.code());
                }
            }
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(target.topic.clone())
                .with_topic_id(target.topic_id)
                .with_partitions(partitions),
        );
    }
    (FetchResponse::default().with_responses(responses), total, had_error)
}
