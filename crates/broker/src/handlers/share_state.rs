//! The share coordinator's RPCs (KIP-932), sent by brokers leading share
//! partitions: InitializeShareGroupState, ReadShareGroupState,
//! WriteShareGroupState, DeleteShareGroupState and
//! ReadShareGroupStateSummary (v0). They need CLUSTER_ACTION on the
//! cluster, as in Kafka (brokers' principals have it); each share
//! partition is answered by `share::coordinator` on this node, or
//! NOT_COORDINATOR when another node coordinates it. Changes are answered
//! once committed.

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::*;
use uuid::Uuid;
use vltava_metadata::AclOperation;
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::share::persister::{ShareKey, ShareState, StateBatch};
use crate::Broker;

fn code(r: &Result<(), ResponseError>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(StrBytes::from_string(e.to_string()))),
    }
}

fn key(group: &StrBytes, topic_id: Uuid, partition: i32) -> ShareKey {
    ShareKey { group: group.to_string(), topic_id, partition }
}

/// Answers every partition with `error` when the session may not act as a
/// broker.
fn allowed(broker: &Broker, session: &Session) -> Result<(), ResponseError> {
    if broker.authorize_cluster(session, AclOperation::ClusterAction) {
        Ok(())
    } else {
        Err(ResponseError::ClusterAuthorizationFailed)
    }
}

pub fn initialize(
    broker: &Arc<Broker>,
    session: &Session,
    r: InitializeShareGroupStateRequest,
    _version: i16,
) -> ResponseFuture {
    use initialize_share_group_state_response::{InitializeStateResult, PartitionResult};
    let broker = broker.clone();
    let auth = allowed(&broker, session);
    Box::pin(async move {
        let mut results = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let outcomes = join_all(t.partitions.iter().map(|p| {
                let (broker, k) = (&broker, key(&r.group_id, t.topic_id, p.partition));
                async move {
                    auth?;
                    broker.share_coordinator.initialize(broker, k, p.state_epoch, p.start_offset).await
                }
            }))
            .await;
            let partitions = t
                .partitions
                .iter()
                .zip(outcomes)
                .map(|(p, o)| {
                    let (c, m) = code(&o);
                    PartitionResult::default().with_partition(p.partition).with_error_code(c).with_error_message(m)
                })
                .collect();
            results.push(InitializeStateResult::default().with_topic_id(t.topic_id).with_partitions(partitions));
        }
        Some(ResponseKind::InitializeShareGroupState(
            InitializeShareGroupStateResponse::default().with_results(results),
        ))
    })
}

pub fn read(broker: &Arc<Broker>, session: &Session, r: ReadShareGroupStateRequest, _version: i16) -> ResponseFuture {
    use read_share_group_state_response::{PartitionResult, ReadStateResult, StateBatch as Batch};
    let broker = broker.clone();
    let auth = allowed(&broker, session);
    Box::pin(async move {
        let mut results = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let outcomes = join_all(t.partitions.iter().map(|p| {
                let (broker, k) = (&broker, key(&r.group_id, t.topic_id, p.partition));
                async move {
                    auth?;
                    broker.share_coordinator.read(broker, k, p.leader_epoch).await
                }
            }))
            .await;
            let partitions = t
                .partitions
                .iter()
                .zip(outcomes)
                .map(|(p, o)| {
                    let base = PartitionResult::default().with_partition(p.partition);
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
                        Err(e) => {
                            let (c, m) = code(&Err(e));
                            base.with_error_code(c).with_error_message(m).with_start_offset(-1)
                        }
                    }
                })
                .collect();
            results.push(ReadStateResult::default().with_topic_id(t.topic_id).with_partitions(partitions));
        }
        Some(ResponseKind::ReadShareGroupState(ReadShareGroupStateResponse::default().with_results(results)))
    })
}

pub fn write(broker: &Arc<Broker>, session: &Session, r: WriteShareGroupStateRequest, _version: i16) -> ResponseFuture {
    use write_share_group_state_response::{PartitionResult, WriteStateResult};
    let broker = broker.clone();
    let auth = allowed(&broker, session);
    Box::pin(async move {
        let mut results = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let outcomes = join_all(t.partitions.iter().map(|p| {
                let (broker, k) = (&broker, key(&r.group_id, t.topic_id, p.partition));
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
                    auth?;
                    if change.batches.iter().any(|b| b.first_offset > b.last_offset) {
                        return Err(ResponseError::InvalidRequest);
                    }
                    broker.share_coordinator.write(broker, k, change).await
                }
            }))
            .await;
            let partitions = t
                .partitions
                .iter()
                .zip(outcomes)
                .map(|(p, o)| {
                    let (c, m) = code(&o);
                    PartitionResult::default().with_partition(p.partition).with_error_code(c).with_error_message(m)
                })
                .collect();
            results.push(WriteStateResult::default().with_topic_id(t.topic_id).with_partitions(partitions));
        }
        Some(ResponseKind::WriteShareGroupState(WriteShareGroupStateResponse::default().with_results(results)))
    })
}

pub fn delete(
    broker: &Arc<Broker>,
    session: &Session,
    r: DeleteShareGroupStateRequest,
    _version: i16,
) -> ResponseFuture {
    use delete_share_group_state_response::{DeleteStateResult, PartitionResult};
    let broker = broker.clone();
    let auth = allowed(&broker, session);
    Box::pin(async move {
        let mut results = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let outcomes = join_all(t.partitions.iter().map(|p| {
                let (broker, k) = (&broker, key(&r.group_id, t.topic_id, p.partition));
                async move {
                    auth?;
                    broker.share_coordinator.delete(broker, k).await
                }
            }))
            .await;
            let partitions = t
                .partitions
                .iter()
                .zip(outcomes)
                .map(|(p, o)| {
                    let (c, m) = code(&o);
                    PartitionResult::default().with_partition(p.partition).with_error_code(c).with_error_message(m)
                })
                .collect();
            results.push(DeleteStateResult::default().with_topic_id(t.topic_id).with_partitions(partitions));
        }
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
    let auth = allowed(broker, session);
    let results = r
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = PartitionResult::default().with_partition(p.partition);
                    let k = key(&r.group_id, t.topic_id, p.partition);
                    match auth.and_then(|_| broker.share_coordinator.summary(broker, &k)) {
                        Ok(None) => base.with_start_offset(-1).with_state_epoch(0).with_leader_epoch(-1),
                        Ok(Some(s)) => base
                            .with_start_offset(s.start_offset)
                            .with_state_epoch(s.state_epoch)
                            .with_leader_epoch(s.leader_epoch),
                        Err(e) => {
                            let (c, m) = code(&Err(e));
                            base.with_error_code(c).with_error_message(m).with_start_offset(-1).with_leader_epoch(-1)
                        }
                    }
                })
                .collect();
            ReadStateSummaryResult::default().with_topic_id(t.topic_id).with_partitions(partitions)
        })
        .collect();
    Box::pin(std::future::ready(Some(ResponseKind::ReadShareGroupStateSummary(
        ReadShareGroupStateSummaryResponse::default().with_results(results),
    ))))
}
