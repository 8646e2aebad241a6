//! The [`SharePersister`] share partitions use (Kafka's
//! `DefaultStatePersister`): each operation goes to the share coordinator
//! of its key, the leader of the key's `__share_group_state` partition in
//! the metadata image: a call into [`super::coordinator`] when that is this
//! node, else the share-state RPC (v0) over `replication::KafkaConn` (TLS
//! and SASL as the inter-broker listener wants), one connection per
//! operation in flight (idle ones kept for the next). While the
//! coordinator moves (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
//! COORDINATOR_NOT_AVAILABLE, no leader, a connection that fails) it
//! retries, for at most
//! `SHARE_PERSISTER_RETRY_TIMEOUT`; every operation is idempotent, so a
//! retry after a lost answer does no harm.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use kafka_protocol::messages::*;
use parking_lot::Mutex;
use vltava_protocol::{ResponseError, StrBytes};

use super::coordinator::{StateSummary, SHARE_STATE_TOPIC};
use super::persister::{PersistFuture, ShareKey, SharePersister, ShareState, StateBatch};
use crate::limits::{
    INTER_BROKER_REQUEST_TIMEOUT, INTER_BROKER_RETRY, SHARE_PERSISTER_IDLE_CONNECTIONS_MAX,
    SHARE_PERSISTER_RETRY_TIMEOUT,
};
use crate::replication::KafkaConn;
use crate::Broker;

#[derive(Clone, Debug)]
enum Op {
    Initialize { state_epoch: i32, start_offset: i64 },
    Read { leader_epoch: i32 },
    Write(ShareState),
    Summary,
    Delete,
}

enum Answer {
    Done,
    State(Option<ShareState>),
    Summary(Option<StateSummary>),
}

#[derive(Default)]
struct Inner {
    broker: OnceLock<Weak<Broker>>,
    /// Idle connections to share coordinator brokers (made on demand, one
    /// per operation in flight, at most
    /// `SHARE_PERSISTER_IDLE_CONNECTIONS_MAX` kept per broker).
    idle: Mutex<HashMap<i32, Vec<KafkaConn>>>,
}

/// The share coordinators, wherever they are.
#[derive(Default)]
pub struct RemotePersister {
    inner: Arc<Inner>,
}

impl RemotePersister {
    /// Ties the persister to its broker (which holds it); call once.
    pub fn bind(&self, broker: &Arc<Broker>) {
        let _ = self.inner.broker.set(Arc::downgrade(broker));
    }

    fn start(&self, key: ShareKey, op: Op) -> PersistFuture<Answer> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.run(key, op).await })
    }
}

fn retriable(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotCoordinator
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::LeaderNotAvailable
            | ResponseError::NotLeaderOrFollower
            | ResponseError::RequestTimedOut
    )
}

impl Inner {
    async fn run(self: Arc<Self>, key: ShareKey, op: Op) -> Result<Answer, ResponseError> {
        let deadline = tokio::time::Instant::now() + SHARE_PERSISTER_RETRY_TIMEOUT;
        loop {
            let broker = self.broker.get().and_then(Weak::upgrade).ok_or(ResponseError::CoordinatorNotAvailable)?;
            let outcome = self.attempt(&broker, &key, &op).await;
            match outcome {
                Err(e) if retriable(e) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(group = %key.group, partition = key.partition, error = ?e, "share state operation retried");
                    drop(broker);
                    tokio::time::sleep(INTER_BROKER_RETRY).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, broker: &Arc<Broker>, key: &ShareKey, op: &Op) -> Result<Answer, ResponseError> {
        let coordinator = &broker.share_coordinator;
        if broker.controller.image().topic(SHARE_STATE_TOPIC).is_none() {
            // a proposal to the quorum, waited for: off the runtime's threads
            let b = broker.clone();
            tokio::task::spawn_blocking(move || b.share_coordinator.ensure_state_topic(&b))
                .await
                .map_err(|_| ResponseError::CoordinatorNotAvailable)??;
        }
        let index = coordinator.partition_of(key);
        let image = broker.controller.image();
        let leader = image
            .topic(SHARE_STATE_TOPIC)
            .and_then(|t| t.partition(index))
            .map(|p| p.leader)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        if leader < 0 {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if leader == broker.config.node_id {
            let key = key.clone();
            return match op.clone() {
                Op::Initialize { state_epoch, start_offset } => {
                    coordinator.initialize(broker, key, state_epoch, start_offset).await.map(|_| Answer::Done)
                }
                Op::Read { leader_epoch } => coordinator.read(broker, key, leader_epoch).await.map(Answer::State),
                Op::Write(change) => coordinator.write(broker, key, change).await.map(|_| Answer::Done),
                Op::Summary => coordinator.summary(broker, &key).map(Answer::Summary),
                Op::Delete => coordinator.delete(broker, key).await.map(|_| Answer::Done),
            };
        }
        let addr = image
            .broker(leader)
            .filter(|b| !b.fenced)
            .map(|b| format!("{}:{}", b.host, b.port))
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let pooled = self.idle.lock().get_mut(&leader).and_then(Vec::pop);
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let client_id = format!("vltava-share-persister-{}", broker.config.node_id);
                KafkaConn::connect_to_broker(broker, &addr, client_id).await.map_err(|e| {
                    tracing::debug!(coordinator = %addr, error = %e, "cannot reach the share coordinator");
                    ResponseError::CoordinatorNotAvailable
                })?
            }
        };
        match remote(&mut conn, key, op).await {
            Ok(answer) => {
                let mut idle = self.idle.lock();
                let pool = idle.entry(leader).or_default();
                if pool.len() < SHARE_PERSISTER_IDLE_CONNECTIONS_MAX {
                    pool.push(conn);
                }
                answer
            }
            Err(e) => {
                tracing::debug!(coordinator = %addr, error = %e, "share state request failed; reconnecting");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }
}

fn error_of(code: i16) -> Result<(), ResponseError> {
    match code {
        0 => Ok(()),
        c => Err(ResponseError::try_from_code(c).unwrap_or(ResponseError::UnknownServerError)),
    }
}

/// One RPC for one share partition.
async fn remote(c: &mut KafkaConn, key: &ShareKey, op: &Op) -> std::io::Result<Result<Answer, ResponseError>> {
    let group = StrBytes::from_string(key.group.clone());
    let t = INTER_BROKER_REQUEST_TIMEOUT;
    Ok(match op {
        Op::Initialize { state_epoch, start_offset } => {
            use initialize_share_group_state_request::{InitializeStateData, PartitionData};
            let request = InitializeShareGroupStateRequest::default().with_group_id(group).with_topics(vec![
                InitializeStateData::default().with_topic_id(key.topic_id).with_partitions(vec![
                    PartitionData::default()
                        .with_partition(key.partition)
                        .with_state_epoch(*state_epoch)
                        .with_start_offset(*start_offset),
                ]),
            ]);
            let r: InitializeShareGroupStateResponse =
                c.call(ApiKey::InitializeShareGroupState, 0, &request, t).await?;
            let p = r.results.into_iter().flat_map(|t| t.partitions).next();
            p.map_or(Err(ResponseError::UnknownServerError), |p| error_of(p.error_code)).map(|_| Answer::Done)
        }
        Op::Read { leader_epoch } => {
            use read_share_group_state_request::{PartitionData, ReadStateData};
            let request =
                ReadShareGroupStateRequest::default().with_group_id(group).with_topics(vec![ReadStateData::default()
                    .with_topic_id(key.topic_id)
                    .with_partitions(vec![PartitionData::default()
                        .with_partition(key.partition)
                        .with_leader_epoch(*leader_epoch)])]);
            let r: ReadShareGroupStateResponse = c.call(ApiKey::ReadShareGroupState, 0, &request, t).await?;
            match r.results.into_iter().flat_map(|t| t.partitions).next() {
                None => Err(ResponseError::UnknownServerError),
                Some(p) => error_of(p.error_code).map(|_| {
                    Answer::State((p.start_offset >= 0).then(|| {
                        ShareState {
                            state_epoch: p.state_epoch,
                            leader_epoch: *leader_epoch,
                            start_offset: p.start_offset,
                            batches: p
                                .state_batches
                                .into_iter()
                                .map(|b| StateBatch {
                                    first_offset: b.first_offset,
                                    last_offset: b.last_offset,
                                    delivery_state: b.delivery_state as u8,
                                    delivery_count: b.delivery_count,
                                })
                                .collect(),
                        }
                    }))
                }),
            }
        }
        Op::Write(change) => {
            use write_share_group_state_request::{PartitionData, StateBatch as Batch, WriteStateData};
            let batches = change
                .batches
                .iter()
                .map(|b| {
                    Batch::default()
                        .with_first_offset(b.first_offset)
                        .with_last_offset(b.last_offset)
                        .with_delivery_state(b.delivery_state as i8)
                        .with_delivery_count(b.delivery_count)
                })
                .collect();
            let request =
                WriteShareGroupStateRequest::default().with_group_id(group).with_topics(vec![WriteStateData::default(
                )
                .with_topic_id(key.topic_id)
                .with_partitions(vec![PartitionData::default()
                    .with_partition(key.partition)
                    .with_state_epoch(change.state_epoch)
                    .with_leader_epoch(change.leader_epoch)
                    .with_start_offset(change.start_offset)
                    .with_state_batches(batches)])]);
            let r: WriteShareGroupStateResponse = c.call(ApiKey::WriteShareGroupState, 0, &request, t).await?;
            let p = r.results.into_iter().flat_map(|t| t.partitions).next();
            p.map_or(Err(ResponseError::UnknownServerError), |p| error_of(p.error_code)).map(|_| Answer::Done)
        }
        Op::Summary => {
            use read_share_group_state_summary_request::{PartitionData, ReadStateSummaryData};
            let request = ReadShareGroupStateSummaryRequest::default().with_group_id(group).with_topics(vec![
                ReadStateSummaryData::default().with_topic_id(key.topic_id).with_partitions(vec![
                    PartitionData::default().with_partition(key.partition).with_leader_epoch(-1),
                ]),
            ]);
            let r: ReadShareGroupStateSummaryResponse =
                c.call(ApiKey::ReadShareGroupStateSummary, 0, &request, t).await?;
            match r.results.into_iter().flat_map(|t| t.partitions).next() {
                None => Err(ResponseError::UnknownServerError),
                Some(p) => error_of(p.error_code).map(|_| {
                    Answer::Summary((p.start_offset >= 0).then_some(StateSummary {
                        state_epoch: p.state_epoch,
                        leader_epoch: p.leader_epoch,
                        start_offset: p.start_offset,
                    }))
                }),
            }
        }
        Op::Delete => {
            use delete_share_group_state_request::{DeleteStateData, PartitionData};
            let request = DeleteShareGroupStateRequest::default().with_group_id(group).with_topics(vec![
                DeleteStateData::default()
                    .with_topic_id(key.topic_id)
                    .with_partitions(vec![PartitionData::default().with_partition(key.partition)]),
            ]);
            let r: DeleteShareGroupStateResponse = c.call(ApiKey::DeleteShareGroupState, 0, &request, t).await?;
            let p = r.results.into_iter().flat_map(|t| t.partitions).next();
            p.map_or(Err(ResponseError::UnknownServerError), |p| error_of(p.error_code)).map(|_| Answer::Done)
        }
    })
}

impl SharePersister for RemotePersister {
    fn initialize(&self, key: ShareKey, state_epoch: i32, start_offset: i64) -> PersistFuture<()> {
        let answer = self.start(key, Op::Initialize { state_epoch, start_offset });
        Box::pin(async move { answer.await.map(|_| ()) })
    }

    fn read(&self, key: ShareKey, leader_epoch: i32) -> PersistFuture<Option<ShareState>> {
        let answer = self.start(key, Op::Read { leader_epoch });
        Box::pin(async move {
            match answer.await? {
                Answer::State(s) => Ok(s),
                _ => Err(ResponseError::UnknownServerError),
            }
        })
    }

    fn write(&self, key: ShareKey, change: ShareState) -> PersistFuture<()> {
        let answer = self.start(key, Op::Write(change));
        Box::pin(async move { answer.await.map(|_| ()) })
    }

    fn summary(&self, key: ShareKey) -> PersistFuture<Option<(i32, i64)>> {
        let answer = self.start(key, Op::Summary);
        Box::pin(async move {
            match answer.await? {
                Answer::Summary(s) => Ok(s.map(|s| (s.state_epoch, s.start_offset))),
                _ => Err(ResponseError::UnknownServerError),
            }
        })
    }

    fn delete(&self, key: ShareKey) -> PersistFuture<()> {
        let answer = self.start(key, Op::Delete);
        Box::pin(async move { answer.await.map(|_| ()) })
    }

    fn summary_with_leader_epoch(&self, key: ShareKey) -> PersistFuture<Option<(i32, i32, i64)>> {
        let answer = self.start(key, Op::Summary);
        Box::pin(async move {
            match answer.await? {
                Answer::Summary(s) => Ok(s.map(|s| (s.state_epoch, s.leader_epoch, s.start_offset))),
                _ => Err(ResponseError::UnknownServerError),
            }
        })
    }
}
