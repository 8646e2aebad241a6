//! `_schemas` on this node: the reader that applies it to the state, and
//! the single writer.
//!
//! Every node follows `_schemas` partition 0 through its own replica
//! (`_schemas` has min(3, brokers) replicas; a node without one answers
//! from the writer: see `forward`), applying records up to the high
//! watermark only, so that a node never shows what a failover may still
//! truncate.
//!
//! Writes go through one writer: the leader of `_schemas` partition 0,
//! elected by the metadata quorum like any partition leader (no second
//! election to get wrong). Before its first write in a leader epoch the
//! writer appends a NOOP record and waits until its own reader has applied
//! it: everything the previous writers committed is then in the state, so
//! ids and versions it assigns are never reused (Confluent's leader does
//! the same). Writes are serialized by one lock; each is answered once its
//! records are committed (acks=all, fsynced) and applied here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex, Notify};
use vltava_protocol::batch::{build_keyed_batch, records_of, records_section, BatchHeader, Batches};
use vltava_protocol::ResponseError;

use super::api::ApiError;
use super::records::Key;
use super::{RegistryState, SchemaRegistry, SCHEMAS_TOPIC};
use crate::controller::TopicSpec;
use crate::partition::Partition;
use crate::Broker;

/// How long a write waits for its records to be committed and applied.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the reader looks for a higher high watermark when not woken.
const READ_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bytes read from `_schemas` at a time.
const READ_BYTES_MAX: usize = 1 << 20;
/// How long a write waits for a new `_schemas` to get a leader.
const TOPIC_LEADER_WAIT: Duration = Duration::from_secs(15);

pub struct Store {
    /// The next offset of `_schemas` to apply (everything below is in the state).
    applied: watch::Sender<i64>,
    /// Wakes the reader (the writer committed something).
    wake: Notify,
    /// The writer: the leader epoch it caught up in.
    writer: Mutex<Option<(uuid::Uuid, i32)>>,
}

impl Default for Store {
    fn default() -> Self {
        Self { applied: watch::channel(0).0, wake: Notify::new(), writer: Mutex::new(None) }
    }
}

/// A write: the records to append, and the answer once they are applied.
pub struct Plan<R> {
    pub records: Vec<(Key, Option<Vec<u8>>)>,
    pub answer: R,
}

impl Store {
    pub fn applied_offset(&self) -> i64 {
        *self.applied.borrow()
    }

    async fn wait_applied(&self, offset: i64) -> Result<(), ApiError> {
        let mut rx = self.applied.subscribe();
        self.wake.notify_one();
        let applied = tokio::time::timeout(WRITE_TIMEOUT, rx.wait_for(|a| *a >= offset)).await.map(|r| r.is_ok());
        match applied {
            Ok(true) => Ok(()),
            _ => Err(ApiError::timeout(format!(
                "the write at offset {offset} of {SCHEMAS_TOPIC} was not applied in time"
            ))),
        }
    }

    /// Runs `plan` on the caught-up state as the writer and appends what it
    /// returns. `Err(None)`: this node is not the writer (forward the request).
    pub async fn write<R>(
        &self,
        broker: &Arc<Broker>,
        plan: impl FnOnce(&RegistryState) -> Result<Plan<R>, ApiError>,
    ) -> Result<R, Option<ApiError>> {
        ensure_topic(broker).await.map_err(Some)?;
        let (partition, topic) = match broker.partition(SCHEMAS_TOPIC, 0) {
            Ok(p) => p,
            Err(ResponseError::NotLeaderOrFollower) => return Err(None),
            Err(e) => return Err(Some(ApiError::store(format!("{SCHEMAS_TOPIC} is not available here: {e:?}")))),
        };
        let mut writer = self.writer.lock().await;
        let epoch = partition.leader_epoch();
        if *writer != Some((topic.topic_id, epoch)) {
            // catch up: everything before our NOOP is applied once it is
            self.append(&partition, vec![(Key::Noop, None)]).await?;
            *writer = Some((topic.topic_id, epoch));
            tracing::info!(
                epoch,
                "schema registry: this node is the writer, caught up at offset {}",
                self.applied_offset()
            );
        }
        let plan = broker.schema_registry.read(plan).map_err(Some)?;
        if !plan.records.is_empty() {
            if let Err(e) = self.append(&partition, plan.records).await {
                *writer = None;
                return Err(e);
            }
        }
        Ok(plan.answer)
    }

    async fn append(
        &self,
        partition: &Arc<Partition>,
        records: Vec<(Key, Option<Vec<u8>>)>,
    ) -> Result<(), Option<ApiError>> {
        let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.encode()).collect();
        let pairs: Vec<(Option<&[u8]>, Option<&[u8]>)> =
            keys.iter().zip(&records).map(|(k, (_, v))| (Some(&k[..]), v.as_deref())).collect();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut batch = build_keyed_batch(0, now, &pairs);
        let epoch = partition.leader_epoch();
        let info = partition.append(&mut batch, None).map_err(|e| match e {
            vltava_storage::StorageError::NotLeader => None,
            e => Some(ApiError::store(format!("appending to {SCHEMAS_TOPIC} failed: {e}"))),
        })?;
        let end = info.last_offset + 1;
        partition
            .wait_committed(end, epoch, true, WRITE_TIMEOUT)
            .await
            .map_err(|e| Some(ApiError::store(format!("the write to {SCHEMAS_TOPIC} was not committed: {e:?}"))))?;
        self.wait_applied(end).await.map_err(Some)
    }
}

/// Creates `_schemas` (1 partition, compacted, min(3, brokers) replicas)
/// if it does not exist, and waits until it has a leader.
pub async fn ensure_topic(broker: &Arc<Broker>) -> Result<(), ApiError> {
    let leader = |b: &Broker| b.controller.image().topic(SCHEMAS_TOPIC).and_then(|t| t.partition(0)).map(|p| p.leader);
    if leader(broker).is_none() {
        let rf = crate::group::coordinator::internal_topic_replication(broker, 3)
            .map_err(|_| ApiError::store("not enough brokers to create _schemas".into()))?;
        let spec = TopicSpec {
            name: SCHEMAS_TOPIC.to_string(),
            num_partitions: 1,
            replication_factor: rf,
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("min.insync.replicas".into(), (rf as i32 - 1).clamp(1, 2).to_string()),
            ],
        };
        let b = broker.clone();
        match tokio::task::spawn_blocking(move || b.create_topic(&spec)).await {
            Ok(Ok(_)) => tracing::info!(replication_factor = rf, "created {SCHEMAS_TOPIC}"),
            Ok(Err(e)) if e.error == ResponseError::TopicAlreadyExists => {}
            Ok(Err(e)) => return Err(ApiError::store(format!("could not create {SCHEMAS_TOPIC}: {}", e.message))),
            Err(e) => return Err(ApiError::store(format!("could not create {SCHEMAS_TOPIC}: {e}"))),
        }
    }
    let deadline = tokio::time::Instant::now() + TOPIC_LEADER_WAIT;
    loop {
        if leader(broker).is_some_and(|l| l >= 0) {
            // led here: wait until the replica has taken the role
            if broker.partition(SCHEMAS_TOPIC, 0).is_ok() || leader(broker) != Some(broker.config.node_id) {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::store(format!("{SCHEMAS_TOPIC} has no leader")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows `_schemas` on this node until `shutdown` flips.
pub async fn run_reader(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let registry: Arc<SchemaRegistry> = broker.schema_registry.clone();
    let mut topic_id = None;
    loop {
        let image = broker.controller.image();
        let local =
            image.topic(SCHEMAS_TOPIC).and_then(|t| broker.replicas.get(&t.topic_id, 0).map(|p| (t.topic_id, p)));
        if let Some((id, partition)) = local {
            if topic_id.is_some_and(|old| old != id) {
                tracing::warn!("{SCHEMAS_TOPIC} was recreated: the registry's state starts over");
                *registry.state.write() = RegistryState::default();
                registry.store.applied.send_replace(0);
            }
            topic_id = Some(id);
            let from = registry.store.applied_offset();
            let reg = registry.clone();
            let read = tokio::task::spawn_blocking(move || catch_up(&reg, &partition, from)).await;
            match read {
                Ok(Ok(next)) if next != from => {
                    registry.store.applied.send_replace(next);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reading {SCHEMAS_TOPIC} failed"),
                Err(e) => tracing::warn!(error = %e, "reading {SCHEMAS_TOPIC} failed"),
            }
        }
        tokio::select! {
            _ = registry.store.wake.notified() => {}
            _ = tokio::time::sleep(READ_POLL_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Applies the committed records from `from` on; returns the next offset.
fn catch_up(registry: &SchemaRegistry, partition: &Partition, from: i64) -> anyhow::Result<i64> {
    let marks = partition.watermarks();
    let mut offset = from.max(marks.log_start_offset);
    let hw = marks.high_watermark;
    while offset < hw {
        let Some(slice) = partition.read_below(offset, READ_BYTES_MAX, hw)? else { break };
        let bytes = slice.read()?;
        let before = offset;
        for item in Batches::new(&bytes) {
            let Ok((_, batch)) = item else { break };
            let header = BatchHeader::parse(batch)?;
            if header.last_offset() >= hw {
                break;
            }
            if !header.is_control() {
                let section = records_section(batch)?;
                for record in records_of(batch, &section)? {
                    if record.offset >= offset {
                        if let Some(key) = record.key {
                            registry.apply(key, record.value);
                        }
                    }
                }
            }
            offset = offset.max(header.last_offset() + 1);
        }
        if offset == before {
            break;
        }
    }
    Ok(offset)
}
