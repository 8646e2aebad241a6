//! One partition replica hosted by this broker: its log, leader epoch,
//! the wake-up for long-polling fetches, and group commit of fsyncs.

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use vltava_storage::{AppendInfo, FileSlice, LeaderEpochCache, Log, Result as StorageResult};

use crate::topic_config::TopicSettings;

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<Log>,
    epochs: Mutex<LeaderEpochCache>,
    settings: parking_lot::RwLock<std::sync::Arc<TopicSettings>>,
    leader_epoch: AtomicI32,
    /// Woken after every append (long-polling fetches wait on it).
    appended: Notify,
    /// Offset below which data is fsynced.
    durable: watch::Sender<i64>,
    /// Serialises fsyncs so that waiters share one (group commit).
    flush_lock: tokio::sync::Mutex<()>,
}

/// Offsets a fetch or list-offsets needs, read under one lock.
#[derive(Debug, Clone, Copy)]
pub struct Watermarks {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

impl Partition {
    pub fn open(
        topic: &str,
        topic_id: Uuid,
        index: i32,
        dir: &Path,
        settings: std::sync::Arc<TopicSettings>,
        recover: bool,
        leader_epoch: i32,
    ) -> StorageResult<Self> {
        let log = Log::open(dir, settings.log.clone(), recover)?;
        let epochs = LeaderEpochCache::load(dir)?;
        let leo = log.log_end_offset();
        Ok(Self {
            topic: topic.to_string(),
            topic_id,
            index,
            log: Mutex::new(log),
            epochs: Mutex::new(epochs),
            settings: parking_lot::RwLock::new(settings),
            leader_epoch: AtomicI32::new(leader_epoch),
            appended: Notify::new(),
            durable: watch::channel(leo).0,
            flush_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The topic's effective configs, as of the last change.
    pub fn settings(&self) -> std::sync::Arc<TopicSettings> {
        self.settings.read().clone()
    }

    pub fn set_settings(&self, settings: std::sync::Arc<TopicSettings>) {
        self.log.lock().set_config(settings.log.clone());
        *self.settings.write() = settings;
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// On a single node the high watermark is the log end offset: the ISR
    /// is the leader alone. The last stable offset is the first offset of
    /// the oldest open transaction (or the high watermark).
    pub fn watermarks(&self) -> Watermarks {
        let log = self.log.lock();
        Watermarks {
            log_start_offset: log.log_start_offset(),
            high_watermark: log.log_end_offset(),
            last_stable_offset: log.last_stable_offset(),
        }
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
        let offset = self.log.lock().append_txn_marker(
            producer_id,
            epoch,
            commit,
            self.leader_epoch(),
            coordinator_epoch,
            now,
        )?;
        self.appended.notify_waiters();
        Ok(offset + 1)
    }

    /// Aborted transactions overlapping `[from, to)` (read_committed).
    pub fn aborted_txns(&self, from: i64, to: i64) -> Vec<vltava_storage::AbortedTxn> {
        self.log.lock().aborted_txns(from, to)
    }

    /// Active producers: id, epoch, last sequence, last timestamp, open
    /// transaction's first offset.
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
        let epoch = self.leader_epoch();
        let info = {
            let mut log = self.log.lock();
            let start = log.log_end_offset();
            let mut epochs = self.epochs.lock();
            if epochs.latest_epoch() != Some(epoch) {
                epochs.assign(epoch, start)?;
            }
            log.append(batches, epoch, log_append_time)?
        };
        self.appended.notify_waiters();
        Ok(info)
    }

    /// Waits until everything below `offset` is on disk. One fsync covers
    /// every append that happened before it started.
    pub async fn wait_durable(&self, offset: i64) -> std::io::Result<()> {
        if *self.durable.borrow() >= offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if *self.durable.borrow() >= offset {
            return Ok(());
        }
        let (file, target) = self.log.lock().flush_target();
        tokio::task::spawn_blocking(move || file.sync_data()).await.map_err(std::io::Error::other)??;
        self.durable.send_modify(|d| *d = (*d).max(target));
        Ok(())
    }

    pub fn read(&self, offset: i64, max_bytes: usize) -> StorageResult<Option<FileSlice>> {
        self.log.lock().read(offset, max_bytes)
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
        let leo = self.log.lock().log_end_offset();
        let epochs = self.epochs.lock();
        match epochs.end_offset_for(epoch, leo) {
            Some(found) => Some(found),
            // nothing written yet: the current epoch ends at the log end
            None if epochs.latest_epoch().is_none() && epoch == self.leader_epoch() => Some((epoch, leo)),
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
