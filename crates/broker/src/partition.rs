//! One partition replica hosted by this broker: the I/O shell around its
//! [`ReplicaState`] (role, followers, ISR: the rules are there): its log,
//! the high watermark (which never goes back while this node leads, and
//! which acks=all waits on), the wake-up for long-polling fetches, and
//! group commit of fsyncs. A replica whose log directory failed answers
//! KAFKA_STORAGE_ERROR and acknowledges nothing more.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use vltava_storage::{AppendInfo, FileSlice, Log, LogDir, Recovery, Result as StorageResult};

use crate::topic_config::TopicSettings;

pub use crate::replica_state::{IsrChange, ReplicaState, ReplicationError, RoleChange};

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    state: Mutex<ReplicaState>,
    /// The high watermark; also bumped (unchanged) on role changes so that
    /// acks=all waiters look again.
    high_watermark: watch::Sender<i64>,
    log: Mutex<Log>,
    /// The log directory holding `log`; once it is offline this replica
    /// answers KAFKA_STORAGE_ERROR and acknowledges nothing more. Changed
    /// (with `log`) when the replica moves to another directory.
    log_dir: parking_lot::RwLock<Arc<LogDir>>,
    settings: parking_lot::RwLock<Arc<TopicSettings>>,
    leader_epoch: AtomicI32,
    /// Woken after every append (long-polling fetches wait on it).
    appended: Notify,
    /// Offset below which data is fsynced.
    durable: watch::Sender<i64>,
    /// Serialises fsyncs so that waiters share one (group commit).
    flush_lock: tokio::sync::Mutex<()>,
    /// The topic's BrokerTopicMetrics counters, registered once.
    pub metrics: crate::broker_metrics::TopicCounters,
}

/// Offsets a fetch or list-offsets needs, read under one lock.
#[derive(Debug, Clone, Copy)]
pub struct Watermarks {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

impl Partition {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        topic: &str,
        topic_id: Uuid,
        index: i32,
        log_dir: &Arc<LogDir>,
        settings: Arc<TopicSettings>,
        recovery: Recovery,
        node_id: i32,
    ) -> StorageResult<Self> {
        let dir = crate::replica_manager::partition_dir(log_dir.path(), topic, index);
        let log = Log::open_in(log_dir, &dir, settings.log.clone(), recovery)?;
        let leo = log.log_end_offset();
        let leader_epoch = -1;
        Ok(Self {
            topic: topic.to_string(),
            topic_id,
            index,
            state: Mutex::new(ReplicaState::new(node_id, leo)),
            // not known after a restart; the log end is what this replica has
            high_watermark: watch::channel(leo).0,
            log: Mutex::new(log),
            log_dir: parking_lot::RwLock::new(log_dir.clone()),
            settings: parking_lot::RwLock::new(settings),
            leader_epoch: AtomicI32::new(leader_epoch),
            appended: Notify::new(),
            durable: watch::channel(leo).0,
            flush_lock: tokio::sync::Mutex::new(()),
            metrics: crate::broker_metrics::TopicCounters::new(topic),
        })
    }

    /// The topic's effective configs, as of the last change.
    pub fn settings(&self) -> Arc<TopicSettings> {
        self.settings.read().clone()
    }

    pub fn set_settings(&self, settings: Arc<TopicSettings>) {
        self.log.lock().set_config(settings.log.clone());
        *self.settings.write() = settings;
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        self.state.lock().is_leader()
    }

    /// The leader, its epoch, replicas and ISR as this replica knows them.
    pub fn state(&self) -> ReplicaState {
        self.state.lock().clone()
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.lock().log_end_offset()
    }

    /// The latest leader epoch in this replica's log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.log.lock().latest_epoch()
    }

    /// The log directory holding this replica.
    pub fn log_dir(&self) -> Arc<LogDir> {
        self.log_dir.read().clone()
    }

    /// This replica's directory.
    pub fn dir(&self) -> std::path::PathBuf {
        crate::replica_manager::partition_dir(self.log_dir().path(), &self.topic, self.index)
    }

    /// See [`Log::rewrites`].
    pub fn log_rewrites(&self) -> u64 {
        self.log.lock().rewrites()
    }

    /// The last step of a move to another log directory, with appends held:
    /// `finish` gets the log (to close it and complete the copy) and
    /// returns the log that replaces it and its directory.
    pub fn swap_log(&self, finish: impl FnOnce(&mut Log) -> anyhow::Result<(Log, Arc<LogDir>)>) -> anyhow::Result<()> {
        let mut log = self.log.lock();
        let (next, dir) = finish(&mut log)?;
        *log = next;
        *self.log_dir.write() = dir;
        Ok(())
    }

    /// Whether the log directory has room for `bytes` more of produced data
    /// ([`LogDir::admit`]: `log.dir.min.free.bytes` stays free).
    pub fn admit_produced(&self, bytes: usize) -> StorageResult<()> {
        self.log_dir.read().admit(bytes as u64)
    }

    /// Whether this replica's log directory failed (until restart).
    pub fn is_offline(&self) -> bool {
        self.log_dir.read().is_offline()
    }

    /// Wakes every wait on this replica (acks=all, long polls) to look at
    /// its state again, e.g. after its log directory failed.
    pub fn wake(&self) {
        self.high_watermark.send_modify(|_| {});
        self.appended.notify_waiters();
    }

    /// The last stable offset is the first offset of the oldest open
    /// transaction, capped by the high watermark.
    pub fn watermarks(&self) -> Watermarks {
        let hw = self.high_watermark();
        let log = self.log.lock();
        Watermarks {
            log_start_offset: log.log_start_offset(),
            high_watermark: hw,
            last_stable_offset: log.last_stable_offset().min(hw),
        }
    }

    /// Takes the role the metadata image gives this replica.
    pub fn apply_state(&self, p: &vltava_metadata::PartitionImage) -> RoleChange {
        let mut st = self.state.lock();
        let leo = self.log.lock().log_end_offset();
        let isr_before = st.isr.len();
        let change = st.apply(p, leo, Instant::now());
        if change == RoleChange::None {
            return change;
        }
        if change == RoleChange::Updated && st.is_leader() && st.isr.len() < isr_before {
            // a shrink counts once the metadata log has it (an expansion
            // counts when proposed: see `on_follower_fetch`)
            crate::broker_metrics::isr_shrunk();
        }
        if change == RoleChange::BecameLeader {
            if let Err(e) = self.log.lock().start_leader_epoch(st.leader_epoch) {
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "cannot record the new leader epoch");
            }
        }
        self.leader_epoch.store(st.leader_epoch, Ordering::Release);
        self.advance_high_watermark(&st, leo);
        drop(st);
        // wake acks=all waiters and fetches: the role or ISR changed
        self.high_watermark.send_modify(|_| {});
        self.appended.notify_waiters();
        change
    }

    /// Leader: the high watermark moves up to what the ISR allows (this
    /// log ends at `leo`).
    fn advance_high_watermark(&self, st: &ReplicaState, leo: i64) {
        if let Some(hw) = st.high_watermark_bound(leo) {
            if hw > self.high_watermark() {
                self.high_watermark.send_replace(hw);
                self.appended.notify_waiters();
            }
        }
    }

    /// Leader: a follower fetched from `fetch_offset`. Returns the ISR to
    /// propose when the follower has caught up and is not in it (and is
    /// `eligible`: registered and not fenced).
    pub fn on_follower_fetch(
        &self,
        replica: i32,
        fetch_offset: i64,
        eligible: bool,
    ) -> Result<Option<IsrChange>, ReplicationError> {
        let mut st = self.state.lock();
        let leo = self.log.lock().log_end_offset();
        let now = Instant::now();
        st.on_follower_fetch(replica, fetch_offset, leo, now)?;
        self.advance_high_watermark(&st, leo);
        let change = st.isr_to_expand(replica, eligible, self.high_watermark(), now);
        if change.is_some() {
            // the leader counts the follower in at once (KIP-497's maximal ISR)
            crate::broker_metrics::isr_expanded();
        }
        Ok(change)
    }

    /// Leader: the ISR without followers that have not caught up within
    /// `lag_max`, if any must go.
    pub fn isr_to_shrink(&self, lag_max: Duration) -> Option<IsrChange> {
        self.state.lock().isr_to_shrink(lag_max, Instant::now())
    }

    /// acks=all: waits until the high watermark passes `offset` while this
    /// replica still leads at `epoch`, then checks `min.insync.replicas`.
    pub async fn wait_replicated(&self, offset: i64, epoch: i32, timeout: Duration) -> Result<(), ReplicationError> {
        let mut rx = self.high_watermark.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                if self.is_offline() {
                    return Err(ReplicationError::KafkaStorageError);
                }
                let st = self.state.lock();
                if !st.is_leader() || st.leader_epoch != epoch {
                    return Err(ReplicationError::NotLeaderOrFollower);
                }
                if *rx.borrow_and_update() >= offset {
                    let min_isr = self.settings().min_insync_replicas;
                    if (st.isr.len() as i32) < min_isr {
                        return Err(ReplicationError::NotEnoughReplicasAfterAppend);
                    }
                    return Ok(());
                }
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Err(ReplicationError::NotLeaderOrFollower) },
                _ = tokio::time::sleep_until(deadline) => return Err(ReplicationError::RequestTimedOut),
            }
        }
    }

    /// acks=all: the fsync (when asked) and the ISR both have everything
    /// below `offset`.
    pub async fn wait_committed(
        &self,
        offset: i64,
        epoch: i32,
        fsync: bool,
        timeout: Duration,
    ) -> Result<(), ReplicationError> {
        if fsync {
            self.wait_durable(offset).await.map_err(|e| {
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "fsync failed");
                ReplicationError::KafkaStorageError
            })?;
        }
        self.wait_replicated(offset, epoch, timeout).await
    }

    /// A coordinator's write (offsets, transaction state): committed like
    /// acks=all, errors as Kafka's coordinators report them.
    pub async fn wait_coordinator_write(&self, offset: i64) -> Result<(), ReplicationError> {
        let epoch = self.leader_epoch();
        self.wait_committed(offset, epoch, true, crate::limits::COORDINATOR_WRITE_TIMEOUT).await.map_err(|e| match e {
            ReplicationError::NotLeaderOrFollower => ReplicationError::NotCoordinator,
            ReplicationError::KafkaStorageError => e,
            _ => ReplicationError::CoordinatorNotAvailable,
        })
    }

    /// acks=all before the append: the ISR must have `min.insync.replicas`.
    pub fn check_min_isr(&self) -> Result<(), ReplicationError> {
        let st = self.state.lock();
        if !st.is_leader() {
            return Err(ReplicationError::NotLeaderOrFollower);
        }
        if (st.isr.len() as i32) < self.settings().min_insync_replicas {
            return Err(ReplicationError::NotEnoughReplicas);
        }
        Ok(())
    }

    /// Follower: appends batches fetched from the leader (whole batches,
    /// offsets and epochs as the leader wrote them), then takes the
    /// leader's high watermark as far as this log reaches. Returns the new
    /// log end offset.
    pub fn append_replicated(&self, records: &[u8], leader_hw: i64, leader_epoch: i32) -> StorageResult<i64> {
        let st = self.state.lock();
        if st.is_leader() || st.leader_epoch != leader_epoch {
            return Err(vltava_storage::StorageError::NotLeader);
        }
        let mut whole = 0;
        let mut log = self.log.lock();
        let leo = log.log_end_offset();
        let mut start = None;
        for item in vltava_protocol::batch::Batches::new(records) {
            let Ok((_, batch)) = item else { break };
            let Ok(h) = vltava_protocol::batch::BatchHeader::parse(batch) else { break };
            if vltava_protocol::batch::verify_crc(batch).is_err() {
                tracing::warn!(topic = %self.topic, partition = self.index, offset = h.base_offset(), "corrupt batch from the leader");
                break;
            }
            if h.last_offset() < leo {
                whole += h.total_bytes();
                start = Some(whole);
                continue;
            }
            if start.is_none() {
                start = Some(whole);
            }
            whole += h.total_bytes();
        }
        let from = start.unwrap_or(0).min(whole);
        if whole > from {
            log.append_assigned(&records[from..whole])?;
        }
        let leo = log.log_end_offset();
        drop(log);
        drop(st);
        let hw = leader_hw.min(leo);
        if hw != self.high_watermark() {
            self.high_watermark.send_replace(hw);
        }
        if whole > from {
            self.appended.notify_waiters();
        }
        Ok(leo)
    }

    /// Follower: the end offset of `epoch` in this replica's log.
    pub fn local_end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.log.lock().end_offset_for_epoch(epoch)
    }

    /// Follower: where this log diverges from the leader's, given the
    /// leader's OffsetForLeaderEpoch answer for this log's latest epoch:
    /// `(epoch, end offset)`, the largest epoch the leader has at or below
    /// ours and where it ends there; `None` when the leader has none (keep
    /// only what is committed).
    pub fn divergence_point(&self, leader_answer: Option<(i32, i64)>) -> i64 {
        match leader_answer {
            Some((epoch, end)) if epoch >= 0 && end >= 0 => {
                let local = self.local_end_offset_for_epoch(epoch).map(|(_, e)| e).unwrap_or(end);
                end.min(local)
            }
            _ => self.high_watermark(),
        }
    }

    /// Follower: the leader's log starts after this log's end (retention
    /// ran while this replica was away): start over, empty, at `offset`.
    pub fn reset_to(&self, offset: i64) -> StorageResult<()> {
        let st = self.state.lock();
        if st.is_leader() {
            return Err(vltava_storage::StorageError::NotLeader);
        }
        self.log.lock().reset_to(offset)?;
        drop(st);
        self.high_watermark.send_replace(offset);
        Ok(())
    }

    /// Follower: drops everything at or above `offset` (a divergent tail).
    pub fn truncate_to(&self, offset: i64) -> StorageResult<()> {
        let st = self.state.lock();
        if st.is_leader() {
            return Err(vltava_storage::StorageError::NotLeader);
        }
        let mut log = self.log.lock();
        if offset >= log.log_end_offset() {
            return Ok(());
        }
        tracing::info!(topic = %self.topic, partition = self.index, from = log.log_end_offset(), to = offset, "truncating divergent log tail");
        log.truncate_to(offset)?;
        drop(log);
        drop(st);
        if self.high_watermark() > offset {
            self.high_watermark.send_replace(offset);
        }
        Ok(())
    }

    /// Writes a COMMIT or ABORT marker for `producer_id`'s transaction;
    /// returns the offset to wait on for durability.
    pub fn append_txn_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> StorageResult<i64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let st = self.state.lock();
        if !st.is_leader() {
            return Err(vltava_storage::StorageError::NotLeader);
        }
        let (offset, leo) = {
            let mut log = self.log.lock();
            let offset = log.append_txn_marker(producer_id, epoch, commit, st.leader_epoch, coordinator_epoch, now)?;
            (offset, log.log_end_offset())
        };
        self.advance_high_watermark(&st, leo);
        drop(st);
        self.appended.notify_waiters();
        Ok(offset + 1)
    }

    /// Aborted transactions overlapping `[from, to)` (read_committed).
    pub fn aborted_txns(&self, from: i64, to: i64) -> Vec<vltava_storage::AbortedTxn> {
        self.log.lock().aborted_txns(from, to)
    }

    /// Active producers: id, epoch, last sequence, last timestamp, open
    /// transaction's first offset.
    /// Whether the log has an open transaction of this producer at this
    /// epoch (a transactions v2 write needs no add to the transaction).
    pub fn in_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        let log = self.log.lock();
        log.producer_state().entry(producer_id).is_some_and(|e| e.epoch == epoch && e.txn_first_offset.is_some())
    }

    pub fn producers(&self) -> Vec<(i64, i16, i32, i64, Option<i64>)> {
        let log = self.log.lock();
        log.producer_state()
            .producers()
            .map(|(pid, e)| {
                (
                    *pid,
                    e.epoch,
                    e.batches.back().map(|b| b.last_seq).unwrap_or(-1),
                    e.last_timestamp,
                    e.txn_first_offset,
                )
            })
            .collect()
    }

    pub fn size_bytes(&self) -> u64 {
        self.log.lock().size_bytes()
    }

    /// Appends validated producer batches and wakes waiting fetches.
    pub fn append(&self, batches: &mut [u8], log_append_time: Option<i64>) -> StorageResult<AppendInfo> {
        let st = self.state.lock();
        if !st.is_leader() {
            return Err(vltava_storage::StorageError::NotLeader);
        }
        let epoch = st.leader_epoch;
        let (info, leo) = {
            let mut log = self.log.lock();
            (log.append(batches, epoch, log_append_time)?, log.log_end_offset())
        };
        self.advance_high_watermark(&st, leo);
        drop(st);
        self.appended.notify_waiters();
        Ok(info)
    }

    /// Waits until everything below `offset` is on disk. One fsync covers
    /// every append that happened before it started. After a failed fsync
    /// the log directory is offline and this fails for every offset not
    /// durable before (the storage layer never retries an fsync).
    pub async fn wait_durable(&self, offset: i64) -> StorageResult<()> {
        if *self.durable.borrow() >= offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if *self.durable.borrow() >= offset {
            return Ok(());
        }
        let target = Arc::new(self.log.lock().flush_target()?);
        let offset = target.offset;
        let syncing = target.clone();
        let (started, before) = (Instant::now(), *self.durable.borrow());
        let synced = tokio::task::spawn_blocking(move || syncing.sync()).await;
        synced.unwrap_or_else(|e| {
            Err(vltava_storage::StorageError::Io { path: self.topic.clone(), source: std::io::Error::other(e) })
        })?;
        crate::broker_metrics::flushed(started.elapsed(), (offset - before).max(0) as u64);
        self.log.lock().flushed(&target);
        self.durable.send_modify(|d| *d = (*d).max(offset));
        Ok(())
    }

    /// Fsyncs segments rolled since the last flush (roll does not wait for
    /// the disk); the background flush calls it.
    pub async fn flush_rolled_segments(&self) -> StorageResult<()> {
        if self.is_offline() || !self.log.lock().has_unflushed_segments() {
            return Ok(());
        }
        self.wait_durable(self.log_end_offset()).await
    }

    /// Below this offset the log is known fsynced (its recovery point).
    pub fn recovery_point(&self) -> i64 {
        self.log.lock().recovery_point()
    }

    pub fn read(&self, offset: i64, max_bytes: usize) -> StorageResult<Option<FileSlice>> {
        self.log.lock().read(offset, max_bytes)
    }

    /// Calls `each` with every batch from the log start offset to the log
    /// end, in order, read 1 MiB at a time: how the coordinators read their
    /// internal topic partition back when they take it over.
    pub fn scan_batches(
        &self,
        mut each: impl FnMut(&vltava_protocol::batch::BatchHeader, &[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        use vltava_protocol::batch::{BatchHeader, Batches};
        let mut offset = self.watermarks().log_start_offset;
        while let Some(slice) = self.read(offset, 1 << 20)? {
            let bytes = slice.read()?;
            let before = offset;
            for item in Batches::new(&bytes) {
                let Ok((_, batch)) = item else { break };
                let header = BatchHeader::parse(batch)?;
                offset = header.last_offset() + 1;
                each(&header, batch)?;
            }
            if offset == before {
                break;
            }
        }
        Ok(())
    }

    /// Like [`Self::read`] but never past `upper` (the last stable offset,
    /// for read_committed).
    pub fn read_below(&self, offset: i64, max_bytes: usize, upper: i64) -> StorageResult<Option<FileSlice>> {
        self.log.lock().read_below(offset, max_bytes, upper)
    }

    /// A future that resolves on the next append; create it *before*
    /// checking for data so that no append is missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    pub fn batch_at_or_after_timestamp(&self, timestamp: i64) -> StorageResult<Option<Vec<u8>>> {
        self.log.lock().batch_at_or_after_timestamp(timestamp)
    }

    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.log.lock().max_timestamp()
    }

    /// End offset of `epoch` for OffsetForLeaderEpoch: `(epoch, end_offset)`.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let log = self.log.lock();
        match log.end_offset_for_epoch(epoch) {
            Some(found) => Some(found),
            // nothing written yet: the current epoch ends at the log end
            None if log.latest_epoch().is_none() && epoch == self.leader_epoch() => Some((epoch, log.log_end_offset())),
            None => None,
        }
    }

    /// Deletes segments past the topic's retention; returns how many.
    pub fn enforce_retention(&self, now_ms: i64) -> StorageResult<usize> {
        let settings = self.settings();
        if !settings.delete {
            return Ok(0);
        }
        self.log.lock().enforce_retention(now_ms, settings.retention_ms, settings.retention_bytes)
    }

    /// Compacts the log if the topic is compacted and enough of it is
    /// dirty; the rewrite runs without the log's lock. Returns the number of
    /// segments rewritten.
    pub fn compact(&self, now_ms: i64) -> StorageResult<usize> {
        let settings = self.settings();
        if !settings.compact {
            return Ok(0);
        }
        let config = vltava_storage::CleanerConfig {
            now_ms,
            delete_retention_ms: settings.delete_retention_ms,
            min_compaction_lag_ms: settings.min_compaction_lag_ms,
            max_compaction_lag_ms: settings.max_compaction_lag_ms,
            min_cleanable_dirty_ratio: settings.min_cleanable_dirty_ratio,
        };
        let Some(plan) = self.log.lock().cleaning_plan(&config) else { return Ok(0) };
        let cleaned = vltava_storage::cleaner::clean(&plan, &config)?;
        let count = cleaned.len();
        self.log.lock().swap_cleaned(cleaned, plan.end_offset)?;
        tracing::info!(topic = %self.topic, partition = self.index, segments = count, up_to = plan.end_offset, "compacted");
        Ok(count)
    }

    /// DeleteRecords: the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> StorageResult<i64> {
        self.log.lock().delete_records_before(offset)
    }

    /// Writes indexes and fsyncs (clean shutdown).
    pub fn close(&self) -> StorageResult<()> {
        self.log.lock().close()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use vltava_metadata::PartitionImage;
    use vltava_protocol::batch::build_batch;

    use super::*;

    fn image(leader: i32, leader_epoch: i32, partition_epoch: i32, isr: &[i32]) -> PartitionImage {
        PartitionImage {
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch,
            target_replicas: None,
        }
    }

    fn open(dir: &std::path::Path, node: i32) -> Partition {
        let settings = Arc::new(crate::topic_config::settings(
            &BTreeMap::new(),
            crate::topic_config::BrokerLevels::statics(&BTreeMap::new()),
        ));
        Partition::open("t", Uuid::new_v4(), 0, &LogDir::new(dir), settings, Recovery::None, node).unwrap()
    }

    fn append(p: &Partition, n: usize) {
        let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        let mut batch = build_batch(0, 1_700_000_000_000, &refs);
        p.append(&mut batch, None).unwrap();
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), 1);
        assert_eq!(p.apply_state(&image(1, 0, 0, &[1, 2, 3])), RoleChange::BecameLeader);
        append(&p, 5);
        assert_eq!(p.high_watermark(), 0, "followers have not fetched yet");
        assert_eq!(p.on_follower_fetch(2, 5, true).unwrap(), None);
        assert_eq!(p.high_watermark(), 0);
        p.on_follower_fetch(3, 3, true).unwrap();
        assert_eq!(p.high_watermark(), 3);
        p.on_follower_fetch(3, 5, true).unwrap();
        assert_eq!(p.high_watermark(), 5);
        // a follower outside the ISR does not hold the high watermark back
        assert_eq!(p.apply_state(&image(1, 0, 1, &[1, 2])), RoleChange::Updated);
        append(&p, 2);
        p.on_follower_fetch(2, 7, true).unwrap();
        assert_eq!(p.high_watermark(), 7);
        // ... and is proposed back into the ISR once it reaches the high watermark
        assert_eq!(p.on_follower_fetch(3, 6, true).unwrap(), None);
        assert_eq!(p.on_follower_fetch(3, 7, false).unwrap(), None, "a fenced follower is not proposed");
        assert_eq!(p.on_follower_fetch(3, 7, true).unwrap().map(|c| c.isr), Some(vec![1, 2, 3]));
        // from the proposal on, it counts for the high watermark
        append(&p, 1);
        p.on_follower_fetch(2, 8, true).unwrap();
        assert_eq!(p.high_watermark(), 7);
        p.on_follower_fetch(3, 8, true).unwrap();
        assert_eq!(p.high_watermark(), 8);
        assert_eq!(p.on_follower_fetch(4, 7, true), Err(ReplicationError::NotLeaderOrFollower));
    }

    #[test]
    fn lagging_followers_leave_the_isr() {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), 1);
        p.apply_state(&image(1, 0, 0, &[1, 2, 3]));
        append(&p, 3);
        std::thread::sleep(Duration::from_millis(60));
        p.on_follower_fetch(2, 3, true).unwrap(); // caught up: at the log end
        assert_eq!(p.isr_to_shrink(Duration::from_millis(50)).map(|c| c.isr), Some(vec![1, 2]));
        // the leader alone is never shrunk
        p.apply_state(&image(1, 0, 1, &[1]));
        assert_eq!(p.isr_to_shrink(Duration::from_millis(0)), None);
    }

    #[tokio::test]
    async fn acks_all_waits_for_the_isr_and_min_isr() {
        let dir = tempfile::tempdir().unwrap();
        let p = Arc::new(open(dir.path(), 1));
        p.apply_state(&image(1, 0, 0, &[1, 2]));
        append(&p, 4);
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_replicated(4, 0, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        p.on_follower_fetch(2, 4, true).unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(()));
        // losing leadership ends the wait with NOT_LEADER_OR_FOLLOWER
        append(&p, 1);
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_replicated(5, 0, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.apply_state(&image(2, 1, 1, &[1, 2]));
        assert_eq!(waiter.await.unwrap(), Err(ReplicationError::NotLeaderOrFollower));
        assert_eq!(p.check_min_isr(), Err(ReplicationError::NotLeaderOrFollower));
    }

    #[test]
    fn divergent_tail_is_cut_at_the_leader_epoch_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), 2);
        // this node led epochs 0 (offsets 0-39) and 1 (40-59)
        p.apply_state(&image(2, 0, 0, &[2]));
        append(&p, 40);
        p.apply_state(&image(2, 1, 1, &[2]));
        append(&p, 20);
        assert_eq!(p.latest_epoch(), Some(1));
        // node 1 took over at epoch 2 without ever seeing epoch 1: it has
        // epoch 0 up to offset 50
        assert_eq!(p.apply_state(&image(1, 2, 2, &[1, 2])), RoleChange::BecameFollower { leader: 1 });
        let cut = p.divergence_point(Some((0, 50)));
        assert_eq!(cut, 40, "epoch 0 ends at 40 here, whatever the leader wrote after");
        p.truncate_to(cut).unwrap();
        assert_eq!((p.log_end_offset(), p.latest_epoch()), (40, Some(0)));
        // the leader's batches continue the log with their own epoch
        let mut batch = build_batch(40, 1_700_000_000_000, &[b"x", b"y"]);
        vltava_protocol::batch::assign_offsets(&mut batch, 40, 2);
        assert_eq!(p.append_replicated(&batch, 41, 2).unwrap(), 42);
        assert_eq!((p.latest_epoch(), p.high_watermark()), (Some(2), 41));
        // a leader without any epoch at or below ours: keep what is committed
        assert_eq!(p.divergence_point(None), 41);
        // a replica that leads never truncates nor takes replicated data
        p.apply_state(&image(2, 3, 3, &[1, 2]));
        assert!(p.truncate_to(0).is_err());
        assert!(p.append_replicated(&batch, 42, 3).is_err());
    }
}
