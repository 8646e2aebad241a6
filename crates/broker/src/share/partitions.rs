//! The share partitions this node leads, Kafka's `SharePartitionManager`:
//! one [`SharePartition`] per (group, topic, partition), read from the
//! persister on first use at the partition's current leader epoch, and
//! every change written back through it before the acknowledgement that
//! caused it is answered. A persister answer of FENCED_LEADER_EPOCH or
//! FENCED_STATE_EPOCH drops the in-memory partition (the next use reads
//! it again); a new leader epoch, or losing the leadership, drops it too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::OnceCell;
use vltava_protocol::batch::{BatchHeader, Batches};
use vltava_protocol::ResponseError;

use super::dead_letter;
use super::partition::{AckRange, Acquired, DeadLetter, Limits, LogBatch, SharePartition};
use super::persister::ShareKey;
use super::session::ShareSessions;
use super::settings::{OffsetReset, ShareSettings};
use crate::partition::Partition;
use crate::Broker;

/// How many log reads one acquisition may take (each acquires at least
/// the record it starts at, so this bounds the work, not the outcome).
const ACQUIRE_READS_MAX: usize = 16;
/// How much one of those reads takes from the log: acquisitions stop at
/// `max_records`, so reading a whole `max_bytes` (50 MiB from librdkafka)
/// for them would mostly be thrown away. A larger first batch is read whole.
const ACQUIRE_READ_BYTES_MAX: usize = 1 << 20;

struct Slot {
    leader_epoch: i32,
    state: OnceCell<Mutex<SharePartition>>,
    /// One state write at a time, each taking the state when it starts:
    /// a later write never carries an older state than an earlier one.
    writing: tokio::sync::Mutex<()>,
}

impl Slot {
    fn new(leader_epoch: i32) -> Arc<Self> {
        Arc::new(Slot { leader_epoch, state: OnceCell::new(), writing: tokio::sync::Mutex::new(()) })
    }
}

/// What one partition gave a ShareFetch.
pub struct Fetched {
    pub records: Bytes,
    pub acquired: Vec<Acquired>,
}

#[derive(Default)]
pub struct SharePartitions {
    slots: Mutex<HashMap<ShareKey, Arc<Slot>>>,
    pub sessions: ShareSessions,
    /// Woken when records become acquirable again (released), so that
    /// long-polling fetches look again.
    pub released: tokio::sync::Notify,
}

fn limits(settings: &ShareSettings) -> Limits {
    Limits {
        lock: Duration::from_millis(settings.record_lock_duration_ms.max(1) as u64),
        delivery_count_limit: settings.delivery_count_limit.clamp(1, i16::MAX as i32) as i16,
        max_locks: settings.partition_max_record_locks.max(1),
        redelivery_backoff: Duration::from_millis(settings.redelivery_backoff_ms.max(0) as u64),
    }
}

impl SharePartitions {
    /// The share partition of `key` on `partition` (which this node leads),
    /// read or initialized on first use.
    async fn slot(
        &self,
        broker: &Broker,
        key: &ShareKey,
        partition: &Arc<Partition>,
        settings: &ShareSettings,
    ) -> Result<Arc<Slot>, ResponseError> {
        let leader_epoch = partition.leader_epoch();
        let slot = {
            let mut slots = self.slots.lock();
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot::new(leader_epoch));
            if slot.leader_epoch != leader_epoch {
                *slot = Slot::new(leader_epoch);
            }
            slot.clone()
        };
        let init = slot
            .state
            .get_or_try_init(|| async {
                let persister = &broker.share_persister;
                let state = match persister.read(key.clone(), leader_epoch).await? {
                    Some(state) => state,
                    None => {
                        let start = reset_offset(partition, settings);
                        persister.initialize(key.clone(), 0, start).await?;
                        persister.read(key.clone(), leader_epoch).await?.ok_or(ResponseError::CoordinatorNotAvailable)?
                    }
                };
                tracing::debug!(group = key.group, topic = %partition.topic, partition = key.partition, start = state.start_offset, "share partition loaded");
                Ok::<_, ResponseError>(Mutex::new(SharePartition::from_state(&state, leader_epoch)))
            })
            .await;
        match init {
            Ok(_) => Ok(slot),
            Err(e) => {
                self.forget(key, &slot);
                Err(e)
            }
        }
    }

    fn forget(&self, key: &ShareKey, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock();
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    /// Writes the partition's state, then copies its dead letters (the
    /// acknowledgement waits for both).
    async fn persist(
        &self,
        broker: &Broker,
        key: &ShareKey,
        slot: &Arc<Slot>,
        partition: &Partition,
        settings: &ShareSettings,
        dead: Vec<DeadLetter>,
    ) -> Result<(), ResponseError> {
        if let Some(topic) = settings.dead_letter_topic.as_deref().filter(|_| !dead.is_empty()) {
            let source = dead_letter::Source { group: &key.group, partition };
            if let Err(e) = dead_letter::write(broker, topic, &source, &dead).await {
                let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
                tracing::error!(group = key.group, topic = %partition.topic, partition = key.partition, dead_letter_topic = topic, ?offsets, error = ?e, "records given up on were not copied to the dead-letter topic");
                return Err(e);
            }
        }
        let _writing = slot.writing.lock().await;
        let state = slot.state.get().expect("initialized").lock().to_state();
        match broker.share_persister.write(key.clone(), state).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if matches!(e, ResponseError::FencedLeaderEpoch | ResponseError::FencedStateEpoch) {
                    tracing::warn!(group = key.group, topic = %partition.topic, partition = key.partition, error = ?e, "share partition state fenced: reading it again");
                    self.forget(key, slot);
                }
                Err(e)
            }
        }
    }

    /// Applies a member's acknowledgements to one partition and makes them
    /// durable.
    pub async fn acknowledge(
        &self,
        broker: &Broker,
        key: &ShareKey,
        member: &str,
        partition: &Arc<Partition>,
        batches: &[AckRange],
    ) -> Result<(), ResponseError> {
        let settings = ShareSettings::of(broker, &key.group);
        let limits = limits(&settings);
        let slot = self.slot(broker, key, partition, &settings).await?;
        let mut dead = Vec::new();
        let outcome = {
            let mut p = slot.state.get().expect("initialized").lock();
            let now = Instant::now();
            p.expire(now, &limits, &mut dead);
            batches.iter().try_for_each(|ack| p.acknowledge(member, ack, now, &limits, &mut dead))
        };
        let written = self.persist(broker, key, &slot, partition, &settings, dead).await;
        self.released.notify_waiters();
        outcome.and(written)
    }

    /// Acquires for `member` what `partition` has for it now (no waiting):
    /// `None` when nothing.
    pub async fn acquire(
        &self,
        broker: &Broker,
        key: &ShareKey,
        member: &Arc<str>,
        partition: &Arc<Partition>,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<Fetched>, ResponseError> {
        let settings = ShareSettings::of(broker, &key.group);
        let limits = limits(&settings);
        let slot = self.slot(broker, key, partition, &settings).await?;
        let marks = partition.watermarks();
        let upper = if settings.read_committed { marks.last_stable_offset } else { marks.high_watermark };
        let mut dead = Vec::new();
        let mut expired = false;
        let mut out: Vec<u8> = Vec::new();
        let mut acquired: Vec<Acquired> = Vec::new();
        let mut taken = 0usize;
        for _ in 0..ACQUIRE_READS_MAX {
            let now = Instant::now();
            let from = {
                let mut p = slot.state.get().expect("initialized").lock();
                expired |= p.expire(now, &limits, &mut dead);
                p.first_acquirable(now, &limits)
            };
            let Some(from) = from.filter(|f| *f < upper) else { break };
            let budget = max_bytes.saturating_sub(out.len()).clamp(1, ACQUIRE_READ_BYTES_MAX);
            let Some(slice) =
                partition.read_below(from, budget, upper).map_err(|_| ResponseError::KafkaStorageError)?
            else {
                break;
            };
            let bytes = slice.read().map_err(|_| ResponseError::KafkaStorageError)?;
            let aborted = if settings.read_committed { partition.aborted_txns(from, upper) } else { Vec::new() };
            let mut spans: Vec<(usize, usize)> = Vec::new();
            let mut batches: Vec<LogBatch> = Vec::new();
            for item in Batches::new(&bytes) {
                let Ok((at, batch)) = item else { break };
                let Ok(h) = BatchHeader::parse(batch) else { break };
                let skip = h.is_control()
                    || (h.is_transactional()
                        && aborted.iter().any(|a| {
                            a.producer_id == h.producer_id()
                                && a.first_offset <= h.base_offset()
                                && h.base_offset() <= a.last_offset
                        }));
                batches.push(LogBatch { base_offset: h.base_offset(), last_offset: h.last_offset(), skip });
                spans.push((at, batch.len()));
            }
            if batches.is_empty() {
                break;
            }
            let (runs, used) = {
                let mut p = slot.state.get().expect("initialized").lock();
                p.acquire(member, &batches, max_records - taken, now, &limits)
            };
            for (i, (at, len)) in spans.iter().enumerate() {
                if used[i] {
                    out.extend_from_slice(&bytes[*at..*at + *len]);
                }
            }
            taken += runs.iter().map(|r| (r.last_offset - r.first_offset + 1) as usize).sum::<usize>();
            acquired.extend(runs);
            if taken >= max_records || out.len() >= max_bytes {
                break;
            }
        }
        if expired || !dead.is_empty() {
            // locks that ran out changed delivery states: make them durable
            self.persist(broker, key, &slot, partition, &settings, dead).await?;
        }
        Ok((!acquired.is_empty()).then(|| Fetched { records: Bytes::from(out), acquired }))
    }

    /// When a lock or a backoff of `key` runs out next (long polls wake then).
    pub fn next_change(&self, key: &ShareKey) -> Option<Instant> {
        let slot = self.slots.lock().get(key).cloned()?;
        let p = slot.state.get()?.lock();
        p.next_change()
    }

    /// Releases the locks `member` of `group` holds on this node (it left
    /// the group or closed its session) and makes that durable in the
    /// background.
    pub fn release_member(&self, broker: &Arc<Broker>, group: &str, member: &str) {
        let slots: Vec<(ShareKey, Arc<Slot>)> =
            self.slots.lock().iter().filter(|(k, _)| k.group == group).map(|(k, s)| (k.clone(), s.clone())).collect();
        let settings = ShareSettings::of(broker, group);
        let limits = limits(&settings);
        for (key, slot) in slots {
            let Some(state) = slot.state.get() else { continue };
            let mut dead = Vec::new();
            if !state.lock().release_member(member, Instant::now(), &limits, &mut dead) {
                continue;
            }
            let Some(partition) = broker.replicas.get(&key.topic_id, key.partition) else { continue };
            let broker = broker.clone();
            let settings = settings.clone();
            broker.runtime.clone().spawn(async move {
                let parts = &broker.share_partitions;
                if let Err(e) = parts.persist(&broker, &key, &slot, &partition, &settings, dead).await {
                    tracing::warn!(group = key.group, partition = key.partition, error = ?e, "releasing a member's records: state not written");
                }
            });
        }
        self.released.notify_waiters();
    }

    /// Drops the share partitions of partitions this node no longer leads.
    pub fn drop_unled(&self, broker: &Broker) {
        self.slots.lock().retain(|k, slot| {
            broker
                .replicas
                .get(&k.topic_id, k.partition)
                .is_some_and(|p| p.is_leader() && p.leader_epoch() == slot.leader_epoch)
        });
    }
}

/// `share.auto.offset.reset`: where a share partition without state starts.
fn reset_offset(partition: &Partition, settings: &ShareSettings) -> i64 {
    let marks = partition.watermarks();
    let latest = if settings.read_committed { marks.last_stable_offset } else { marks.high_watermark };
    match settings.auto_offset_reset {
        OffsetReset::Latest => latest,
        OffsetReset::Earliest => marks.log_start_offset,
        OffsetReset::ByDuration(ms) => {
            let since = crate::delegation_tokens::now_ms() - ms;
            partition
                .batch_at_or_after_timestamp(since)
                .ok()
                .flatten()
                .and_then(|b| vltava_protocol::batch::first_record_at_or_after(&b, since).ok().flatten())
                .map(|(_, offset)| offset.max(marks.log_start_offset))
                .unwrap_or(latest)
        }
    }
}
