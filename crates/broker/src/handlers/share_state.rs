//! The share coordinator's RPCs (KIP-932), sent by brokers leading share
//! partitions: InitializeShareGroupState, ReadShareGroupState,
//! WriteShareGroupState, DeleteShareGroupState and
//! ReadShareGroupStateSummary (v0). They need CLUSTER_ACTION on the
//! cluster, as in Kafka (brokers' principals have it); each share
//! partition is answered by `share::coordinator` on this node, or
//! NOT_COORDINATOR when another node coordinates it. Changes are answered
//! once committed.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::*;
use uuid::Uuid;
use vltava_metadata::AclOperation;
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::share::persister::{ShareKey, ShareState, StateBatch};
use crate::Broker;

/// A partition's error code and message.
fn code<T>(r: &Result<T, ResponseError>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(_) => (0, None),
        Err(e) => (e.code(), Some(StrBytes::from_string(e.to_string()))),
    }
}

/// CLUSTER_AUTHORIZATION_FAILED for every partition when the session may
/// not act as a broker.
fn allowed(broker: &Broker, session: &Session) -> Result<(), ResponseError> {
    if broker.authorize_cluster(session, AclOperation::ClusterAction) {
        Ok(())
    } else {
        Err(ResponseError::ClusterAuthorizationFailed)
    }
}

/// Runs `op` for every partition of every topic of a request, all at once
/// (each share partition is independent); returns each topic's
/// partitions with their outcomes, in request order.
async fn each_partition<P, T, Fut>(
    broker: &Arc<Broker>,
    session: &Session,
    group: &StrBytes,
    topics: Vec<(Uuid, Vec<P>)>,
    partition_of: impl Fn(&P) -> i32,
    op: impl Fn(Arc<Broker>, ShareKey, &P) -> Fut,
) -> Vec<(Uuid, Vec<(P, Result<T, ResponseError>)>)>
where
    Fut: Future<Output = Result<T, ResponseError>>,
{
    let auth = allowed(broker, session);
    let mut out = Vec::with_capacity(topics.len());
    for (topic_id, partitions) in topics {
        let outcomes = join_all(partitions.iter().map(|p| {
            let key = ShareKey { group: group.to_string(), topic_id, partition: partition_of(p) };
            let run = auth.map(|_| op(broker.clone(), key, p));
            async move { run?.await }
        }))
        .await;
        out.push((topic_id, partitions.into_iter().zip(outcomes).collect()));
    }
    out
}

/// The results of a response whose partitions carry only an error
/// (InitializeShareGroupState, WriteShareGroupState, DeleteShareGroupState).
macro_rules! error_results {
    ($module:ident, $result:ident, $done:expr) => {
        $done
            .into_iter()
            .map(|(id, parts)| {
                let partitions = parts.into_iter().map(|(p, o)| {
                    let (c, m) = code(&o);
                    $module::PartitionResult::default()
                        .with_partition(p.partition)
                        .with_error_code(c)
                        .with_error_message(m)
                });
                $module::$result::default().with_topic_id(id).with_partitions(partitions.collect())
            })
            .collect()
    };
}

pub fn initialize(
    broker: &Arc<Broker>,
    session: &Session,
    r: InitializeShareGroupStateRequest,
    _version: i16,
) -> ResponseFuture {
    let (broker, session) = (broker.clone(), session.clone());
    Box::pin(async move {
        let topics = r.topics.into_iter().map(|t| (t.topic_id, t.partitions)).collect();
        let done = each_partition(
            &broker,
            &session,
            &r.group_id,
            topics,
            |p| p.partition,
            |b, k, p| {
                let (epoch, start) = (p.state_epoch, p.start_offset);
                async move { b.share_coordinator.initialize(&b, k, epoch, start).await }
            },
        )
        .await;
        let results = error_results!(initialize_share_group_state_response, InitializeStateResult, done);
        let response = InitializeShareGroupStateResponse::default().with_results(results);
        Some(ResponseKind::InitializeShareGroupState(response))
    })
}

pub fn read(broker: &Arc<Broker>, session: &Session, r: ReadShareGroupStateRequest, _version: i16) -> ResponseFuture {
    use read_share_group_state_response::{PartitionResult, ReadStateResult, StateBatch as Batch};
    let (broker, session) = (broker.clone(), session.clone());
    Box::pin(async move {
        let topics = r.topics.into_iter().map(|t| (t.topic_id, t.partitions)).collect();
        let done = each_partition(
            &broker,
            &session,
            &r.group_id,
            topics,
            |p| p.partition,
            |b, k, p| {
                let epoch = p.leader_epoch;
                async move { b.share_coordinator.read(&b, k, epoch).await }
            },
        )
        .await;
        let results = done
            .into_iter()
            .map(|(id, parts)| {
                let partitions = parts.into_iter().map(|(p, o)| {
                    let (c, m) = code(&o);
                    let base = PartitionResult::default().with_partition(p.partition).with_error_code(c);
                    match o {
                        // never initialized: Kafka's uninitialized start offset and state epoch
                        Ok(None) => base.with_start_offset(-1).with_state_epoch(0),
                        Ok(Some(s)) => {
                            base.with_start_offset(s.start_offset).with_state_epoch(s.state_epoch).with_state_batches(
                                s.batches
                                    .iter()
                                    .map(|b| {
                                        Batch::default()
                                            .with_first_offset(b.first_offset)
                                            .with_last_offset(b.last_offset)
                                            .with_delivery_state(b.delivery_state as i8)
                                            .with_delivery_count(b.delivery_count)
                                    })
                                    .collect(),
                            )
                        }
                        Err(_) => base.with_error_message(m).with_start_offset(-1),
                    }
                });
                ReadStateResult::default().with_topic_id(id).with_partitions(partitions.collect())
            })
            .collect();
        Some(ResponseKind::ReadShareGroupState(ReadShareGroupStateResponse::default().with_results(results)))
    })
}

pub fn write(broker: &Arc<Broker>, session: &Session, r: WriteShareGroupStateRequest, _version: i16) -> ResponseFuture {
    let (broker, session) = (broker.clone(), session.clone());
    Box::pin(async move {
        let topics = r.topics.into_iter().map(|t| (t.topic_id, t.partitions)).collect();
        let done = each_partition(
            &broker,
            &session,
            &r.group_id,
            topics,
            |p| p.partition,
            |b, k, p| {
                let change = ShareState {
                    state_epoch: p.state_epoch,
                    leader_epoch: p.leader_epoch,
                    start_offset: p.start_offset,
                    batches: p
                        .state_batches
                        .iter()
                        .map(|b| StateBatch {
                            first_offset: b.first_offset,
                            last_offset: b.last_offset,
                            delivery_state: b.delivery_state as u8,
                            delivery_count: b.delivery_count,
                        })
                        .collect(),
                };
                async move {
                    if change.batches.iter().any(|b| b.first_offset > b.last_offset) {
                        return Err(ResponseError::InvalidRequest);
                    }
                    b.share_coordinator.write(&b, k, change).await
                }
            },
        )
        .await;
        let results = error_results!(write_share_group_state_response, WriteStateResult, done);
        Some(ResponseKind::WriteShareGroupState(WriteShareGroupStateResponse::default().with_results(results)))
    })
}

pub fn delete(
    broker: &Arc<Broker>,
    session: &Session,
    r: DeleteShareGroupStateRequest,
    _version: i16,
) -> ResponseFuture {
    let (broker, session) = (broker.clone(), session.clone());
    Box::pin(async move {
        let topics = r.topics.into_iter().map(|t| (t.topic_id, t.partitions)).collect();
        let done = each_partition(
            &broker,
            &session,
            &r.group_id,
            topics,
            |p| p.partition,
            |b, k, _| async move { b.share_coordinator.delete(&b, k).await },
        )
        .await;
        let results = error_results!(delete_share_group_state_response, DeleteStateResult, done);
        Some(ResponseKind::DeleteShareGroupState(DeleteShareGroupStateResponse::default().with_results(results)))
    })
}

pub fn summary(
    broker: &Arc<Broker>,
    session: &Session,
    r: ReadShareGroupStateSummaryRequest,
    _version: i16,
) -> ResponseFuture {
    use read_share_group_state_summary_response::{PartitionResult, ReadStateSummaryResult};
    let (broker, session) = (broker.clone(), session.clone());
    Box::pin(async move {
        let topics = r.topics.into_iter().map(|t| (t.topic_id, t.partitions)).collect();
        let done = each_partition(
            &broker,
            &session,
            &r.group_id,
            topics,
            |p| p.partition,
            |b, k, _| async move { b.share_coordinator.summary(&b, &k) },
        )
        .await;
        let results = done
            .into_iter()
            .map(|(id, parts)| {
                let partitions = parts.into_iter().map(|(p, o)| {
                    let (c, m) = code(&o);
                    let base = PartitionResult::default().with_partition(p.partition).with_error_code(c);
                    match o {
                        Ok(None) => base.with_start_offset(-1).with_state_epoch(0).with_leader_epoch(-1),
                        Ok(Some(s)) => base
                            .with_start_offset(s.start_offset)
                            .with_state_epoch(s.state_epoch)
                            .with_leader_epoch(s.leader_epoch),
                        Err(_) => base.with_error_message(m).with_start_offset(-1).with_leader_epoch(-1),
                    }
                });
                ReadStateSummaryResult::default().with_topic_id(id).with_partitions(partitions.collect())
            })
            .collect();
        let response = ReadShareGroupStateSummaryResponse::default().with_results(results);
        Some(ResponseKind::ReadShareGroupStateSummary(response))
    })
}
