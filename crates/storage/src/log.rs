//! The partition log: an ordered set of segments, one active for appends.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vltava_protocol::batch::{assign_offsets, records_of, records_section, set_log_append_time, BatchHeader, Batches};

use crate::atomic_file::{write_atomically, TMP_SUFFIX};
use crate::cleaner::{self, CleanedSegment, CleanerConfig, CleaningPlan, SegmentSnapshot};
use crate::error::{IoContext, Result, StorageError};
use crate::leader_epoch::LeaderEpochCache;
use crate::log_dir::LogDir;
use crate::producer_state::{AbortedTxn, ProducerBatch, ProducerCheck, ProducerStateManager};
use crate::segment::Segment;
use crate::segment_file_name;

/// Per-log settings, with Kafka's topic config names in the comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: u64,
    /// `index.interval.bytes`: bytes of log between offset index entries.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: size bound of one offset index.
    pub segment_index_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
        }
    }
}

/// File in a partition directory holding a log start offset that
/// DeleteRecords moved inside a segment.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";

/// Largest segment a 32-bit index position can address.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Offsets given to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// The batch was a producer's retry of one already in the log: nothing
    /// was appended and the offsets are the original ones.
    pub duplicate: bool,
}

/// A byte range of a segment file, read outside the log's lock: segment
/// bytes below the size recorded here never change (appends only add).
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
    /// A failed read takes the directory offline, as any I/O error does.
    log_dir: Arc<LogDir>,
}

impl FileSlice {
    /// The first `len` bytes of the slice (at most all of it).
    pub fn prefix(mut self, len: usize) -> Self {
        self.len = self.len.min(len);
        self
    }

    pub fn read(&self) -> Result<Vec<u8>> {
        self.log_dir.check()?;
        let mut buf = vec![0u8; self.len];
        let read = self.file.read_exact_at(&mut buf, self.position).ctx(self.log_dir.path());
        self.log_dir.latch(read.map(|()| buf))
    }
}

/// What one fsync for durability covers: the files holding every byte
/// below `offset` (segments rolled since the last flush and the active
/// one) and, when a segment was created since, the directory; synced
/// outside the log's lock, then reported back with [`Log::flushed`].
#[derive(Debug)]
pub struct FlushTarget {
    files: Vec<Arc<File>>,
    /// The partition directory, when a new segment file's entry must be
    /// made durable too.
    dir: Option<PathBuf>,
    /// The log's count of segment creations when this target was taken.
    created: u64,
    /// The log's count of truncations when this target was taken.
    truncations: u64,
    /// Everything below this offset is durable once [`Self::sync`] succeeds.
    pub offset: i64,
    log_dir: Arc<LogDir>,
}

impl FlushTarget {
    /// Fsyncs the data. A failure takes the log directory offline: a
    /// later fsync that succeeds would not prove the lost pages were
    /// written, so none is ever tried again.
    pub fn sync(&self) -> Result<()> {
        for file in &self.files {
            self.log_dir.check()?;
            let synced = file.sync_data().ctx(self.log_dir.path());
            self.log_dir.latch(synced)?;
        }
        if let Some(dir) = &self.dir {
            self.log_dir.check()?;
            self.log_dir.latch(crate::atomic_file::sync_dir(dir))?;
        }
        Ok(())
    }
}

/// Which segments [`Log::open_in`] re-validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// After a clean shutdown: none.
    None,
    /// After an unclean one, with a recovery point checkpointed: the
    /// segments holding offsets from it on (below it everything was
    /// fsynced).
    From(i64),
    /// After an unclean one without a checkpoint: every segment.
    All,
}

#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    /// Offsets below this were compacted since the log was opened.
    cleaned_up_to: i64,
    producers: ProducerStateManager,
    aborted: Vec<AbortedTxn>,
    /// Which leader epoch wrote from which offset (`leader-epoch-checkpoint`).
    epochs: LeaderEpochCache,
    log_dir: Arc<LogDir>,
    /// Rolled segments not fsynced yet (the next flush covers them).
    unflushed: Vec<Arc<File>>,
    /// Segment files created (the directory needs an fsync when this
    /// moved past `dir_synced`).
    created: u64,
    dir_synced: u64,
    /// Everything below this offset is known fsynced (Kafka's recovery point).
    recovery_point: i64,
    /// Truncations so far (a flush taken before one proves nothing after it).
    truncations: u64,
    /// Segments replaced by the cleaner so far.
    cleaner_swaps: u64,
}

/// File in a partition directory listing aborted transactions
/// (`producer_id first_offset marker_offset` per line), for read_committed.
pub const ABORTED_TXNS_FILE: &str = "aborted-transactions";

/// Base offsets of the segments in `dir` (`NNNNNNNNNNNNNNNNNNNN.log`),
/// in order; none when the directory does not exist.
pub fn segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(dir),
    };
    let mut bases = Vec::new();
    for entry in entries {
        let name = entry.ctx(dir)?.file_name();
        if let Some(base) = name.to_string_lossy().strip_suffix(".log").and_then(|stem| stem.parse::<i64>().ok()) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn snapshot_offsets(dir: &Path) -> Vec<i64> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".snapshot").and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn producer_batch(h: &BatchHeader<'_>) -> ProducerBatch {
    ProducerBatch {
        producer_id: h.producer_id(),
        epoch: h.producer_epoch(),
        first_seq: h.base_sequence(),
        record_count: h.record_count(),
        transactional: h.is_transactional(),
        base_offset: h.base_offset(),
        last_offset: h.last_offset(),
        max_timestamp: h.max_timestamp(),
    }
}

/// Whether a control batch is a COMMIT marker (its first record's key is
/// `version int16, type int16` with type 1 = commit, 0 = abort).
fn control_is_commit(batch: &[u8]) -> Option<bool> {
    let section = records_section(batch).ok()?;
    let records = records_of(batch, &section).ok()?;
    let key = records.first()?.key?;
    Some(i16::from_be_bytes([*key.get(2)?, *key.get(3)?]) == 1)
}

/// A control batch with one COMMIT or ABORT marker record.
fn build_control_batch(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(commit as i16).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    vltava_protocol::batch::build_control_batch(producer_id, epoch, &key, &value, timestamp_ms)
}

/// The public surface: every operation that touches files passes the log
/// directory's latch ([`LogDir`]): refused once the directory is offline,
/// and an I/O error takes it offline.
impl Log {
    /// Opens (or creates) the log in `dir`, a log directory of its own (for
    /// tools and tests; the broker uses [`Self::open_in`]).
    /// With `recover` every segment is re-validated.
    pub fn open(dir: &Path, config: LogConfig, recover: bool) -> Result<Self> {
        let log_dir = LogDir::new(dir.parent().unwrap_or(dir));
        Self::open_in(&log_dir, dir, config, if recover { Recovery::All } else { Recovery::None })
    }

    /// Opens (or creates) the log in `dir` inside `log_dir`, re-validating
    /// the segments `recovery` names (a bad batch and what follows it are
    /// cut).
    pub fn open_in(log_dir: &Arc<LogDir>, dir: &Path, config: LogConfig, recovery: Recovery) -> Result<Self> {
        log_dir.check()?;
        log_dir.latch(Self::open_inner(log_dir, dir, config, recovery))
    }

    fn guarded<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.log_dir.check()?;
        let result = op(self);
        self.log_dir.latch(result)
    }

    fn guarded_ref<T>(&self, op: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.log_dir.check()?;
        self.log_dir.latch(op(self))
    }

    /// Appends producer batches (already validated with
    /// `vltava_protocol::batch::validate_produced`): assigns offsets from the
    /// log end offset, stamps the leader epoch and, when given, the
    /// LogAppendTime, then writes them with one call.
    pub fn append(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo> {
        self.guarded(|log| log.append_inner(batches, leader_epoch, log_append_time))
    }

    /// Writes a transaction marker (a control batch) for `producer_id`:
    /// commit or abort of its open transaction. Returns the marker's offset.
    pub fn append_txn_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        leader_epoch: i32,
        coordinator_epoch: i32,
        timestamp_ms: i64,
    ) -> Result<i64> {
        self.guarded(|log| {
            log.append_txn_marker_inner(producer_id, epoch, commit, leader_epoch, coordinator_epoch, timestamp_ms)
        })
    }

    /// Appends batches that already carry their offsets and leader epochs
    /// (a follower's copy of the leader's), which must start at or after
    /// the log end offset.
    pub fn append_assigned(&mut self, batches: &[u8]) -> Result<()> {
        self.guarded(|log| log.append_assigned_inner(batches))
    }

    /// Closes the active segment and starts a new one at `base_offset`.
    pub fn roll(&mut self, base_offset: i64) -> Result<()> {
        self.guarded(|log| log.roll_inner(base_offset))
    }

    /// What to fsync for everything appended so far to be durable.
    pub fn flush_target(&self) -> Result<FlushTarget> {
        self.log_dir.check()?;
        let mut files = self.unflushed.clone();
        files.push(self.active().file().clone());
        Ok(FlushTarget {
            files,
            dir: (self.created != self.dir_synced).then(|| self.dir.clone()),
            created: self.created,
            truncations: self.truncations,
            offset: self.log_end_offset(),
            log_dir: self.log_dir.clone(),
        })
    }

    /// `target` was synced: its files and directory state are durable.
    pub fn flushed(&mut self, target: &FlushTarget) {
        self.unflushed.retain(|f| !target.files.iter().any(|t| Arc::ptr_eq(t, f)));
        if target.dir.is_some() {
            self.dir_synced = self.dir_synced.max(target.created);
        }
        // after a truncation since the target was taken, what now lies
        // below its offset may not be what it synced
        if target.truncations == self.truncations {
            self.recovery_point = self.recovery_point.max(target.offset);
        }
    }

    /// Below this offset everything is known fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Whether rolled segments (or a new segment's directory entry) wait
    /// for a flush.
    pub fn has_unflushed_segments(&self) -> bool {
        !self.unflushed.is_empty() || self.created != self.dir_synced
    }

    /// Bytes starting at the batch that contains `offset`: at most
    /// `max_bytes`, but always the whole first batch, and never across a
    /// segment boundary. `None` at the log end.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Option<FileSlice>> {
        self.guarded_ref(|log| log.read_inner(offset, max_bytes))
    }

    /// [`Self::read`], cut so that no batch at or above `upper` is
    /// included: read_committed consumers stop at the last stable offset.
    pub fn read_below(&self, offset: i64, max_bytes: usize, upper: i64) -> Result<Option<FileSlice>> {
        self.guarded_ref(|log| log.read_below_inner(offset, max_bytes, upper))
    }

    /// The first batch whose max timestamp is at or after `timestamp`.
    pub fn batch_at_or_after_timestamp(&self, timestamp: i64) -> Result<Option<Vec<u8>>> {
        self.guarded_ref(|log| log.batch_at_or_after_timestamp_inner(timestamp))
    }

    /// Removes every offset at or above `offset` (and the leader epochs
    /// that start there).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        self.guarded(|log| log.truncate_to_inner(offset))
    }

    /// Drops the whole log and starts it empty at `offset`, beyond the old
    /// log end: a follower whose log ends before the leader's log start
    /// (retention deleted what it would fetch next).
    pub fn reset_to(&mut self, offset: i64) -> Result<()> {
        self.guarded(|log| log.reset_to_inner(offset))
    }

    /// Deletes old segments as `retention.ms` and `retention.bytes` ask
    /// (`-1` disables either): a segment goes when its newest record is
    /// older than `retention_ms`, or while the log without it is still at
    /// least `retention_bytes`. The active segment always stays. Returns the
    /// number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64, retention_ms: i64, retention_bytes: i64) -> Result<usize> {
        self.guarded(|log| log.enforce_retention_inner(now_ms, retention_ms, retention_bytes))
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the
    /// log end), deletes segments entirely below it, and persists it.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        self.guarded(|log| log.delete_records_before_inner(offset))
    }

    /// Puts cleaned segments in place of the originals, unless a segment
    /// changed meanwhile (then its cleaned copy is dropped).
    pub fn swap_cleaned(&mut self, cleaned: Vec<CleanedSegment>, end_offset: i64) -> Result<()> {
        self.guarded(|log| log.swap_cleaned_inner(cleaned, end_offset))
    }

    /// Writes indexes and fsyncs every segment (clean shutdown).
    pub fn close(&mut self) -> Result<()> {
        self.guarded(|log| log.close_inner())
    }

    /// How many times bytes already written were rewritten in place
    /// (truncations, segments replaced by the cleaner): a copy of the files
    /// taken before a change of this count must start over.
    pub fn rewrites(&self) -> u64 {
        self.truncations + self.cleaner_swaps
    }

    /// The log directory this log lives in.
    pub fn log_dir(&self) -> &Arc<LogDir> {
        &self.log_dir
    }

    /// The latest leader epoch that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// This replica leads at `epoch` from now on: the epoch starts at the
    /// log end, before anything is written under it (as Kafka's leader
    /// records it on taking over, so OffsetForLeaderEpoch names it).
    pub fn start_leader_epoch(&mut self, epoch: i32) -> Result<()> {
        let leo = self.log_end_offset();
        self.guarded(|log| log.epochs.assign(epoch, leo))
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` that
    /// this log has, and where it ends (the next epoch's start, or the log
    /// end for the latest).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }
}

impl Log {
    fn open_inner(log_dir: &Arc<LogDir>, dir: &Path, config: LogConfig, recovery: Recovery) -> Result<Self> {
        fs::create_dir_all(dir).ctx(dir)?;
        for entry in fs::read_dir(dir).ctx(dir)? {
            let entry = entry.ctx(dir)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(&format!(".{TMP_SUFFIX}")) || name.ends_with(".cleaned") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let bases = segment_bases(dir)?;
        // the segment holding the recovery point and every later one are
        // re-validated; earlier ones were fsynced
        let first_recovered = match recovery {
            Recovery::None => i64::MAX,
            Recovery::All => i64::MIN,
            Recovery::From(point) => bases.iter().copied().rfind(|b| *b <= point).unwrap_or(i64::MIN),
        };
        let mut segments = BTreeMap::new();
        let mut cut_at = None;
        for base in bases {
            if let Some(cut) = cut_at {
                // after a segment whose tail was bad nothing can be trusted
                // (none of it was fsynced, or that segment would have been)
                tracing::warn!(dir = %dir.display(), base_offset = base, after = cut, "removing a segment that follows a cut one");
                for ext in ["log", "index", "timeindex"] {
                    let path = dir.join(segment_file_name(base, ext));
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e).ctx(&path),
                    }
                }
                continue;
            }
            let recover = base >= first_recovered;
            let size_before = if recover {
                fs::metadata(dir.join(segment_file_name(base, "log"))).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            let seg = Segment::open(dir, base, config.index_interval_bytes, config.segment_index_bytes, recover)?;
            if recover && seg.size() < size_before {
                cut_at = Some(base);
            }
            segments.insert(base, seg);
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0, config.index_interval_bytes, config.segment_index_bytes)?);
            crate::atomic_file::sync_dir(dir)?;
        }
        let first_base = *segments.keys().next().expect("one segment");
        let leo = segments.values().next_back().expect("one segment").next_offset();
        let checkpointed =
            fs::read_to_string(dir.join(LOG_START_OFFSET_FILE)).ok().and_then(|t| t.trim().parse::<i64>().ok());
        let log_start_offset = checkpointed.unwrap_or(first_base).max(first_base).min(leo);
        let mut log = Self {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            cleaned_up_to: log_start_offset,
            producers: ProducerStateManager::default(),
            aborted: Vec::new(),
            epochs: LeaderEpochCache::load(dir)?,
            log_dir: log_dir.clone(),
            unflushed: Vec::new(),
            created: 0,
            dir_synced: 0,
            recovery_point: leo,
            truncations: 0,
            cleaner_swaps: 0,
        };
        log.rebuild_producer_state()?;
        log.check_invariants();
        Ok(log)
    }

    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            let mut prev_end = i64::MIN;
            for seg in self.segments.values() {
                assert!(seg.base_offset() >= prev_end, "segments overlap");
                prev_end = seg.next_offset();
            }
        }
    }

    fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("a log always has an active segment")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    /// One past the last offset (the log end offset, LEO).
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn append_inner(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo> {
        // Idempotence: a retried batch is answered with its original offsets.
        for item in Batches::new(batches) {
            let (_, batch) = item?;
            let h = BatchHeader::parse(batch)?;
            if h.producer_id() < 0 {
                continue;
            }
            if let ProducerCheck::Duplicate(m) = self.producers.check(&producer_batch(&h))? {
                return Ok(AppendInfo {
                    base_offset: m.base_offset,
                    last_offset: m.last_offset,
                    max_timestamp: -1,
                    duplicate: true,
                });
            }
        }
        let base_offset = self.log_end_offset();
        let mut next = base_offset;
        let mut max_timestamp = -1;
        let mut position = 0;
        while position < batches.len() {
            let h = BatchHeader::parse(&batches[position..])?;
            let (total, delta) = (h.total_bytes(), h.last_offset_delta() as i64);
            let batch_max_timestamp = log_append_time.unwrap_or(h.max_timestamp());
            let batch = &mut batches[position..position + total];
            assign_offsets(batch, next, leader_epoch);
            if let Some(ts) = log_append_time {
                set_log_append_time(batch, ts);
            }
            max_timestamp = max_timestamp.max(batch_max_timestamp);
            next += delta + 1;
            position += total;
        }
        self.append_assigned_inner(batches)?;
        Ok(AppendInfo { base_offset, last_offset: next - 1, max_timestamp, duplicate: false })
    }

    fn append_txn_marker_inner(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        leader_epoch: i32,
        coordinator_epoch: i32,
        timestamp_ms: i64,
    ) -> Result<i64> {
        let offset = self.log_end_offset();
        let mut batch = build_control_batch(producer_id, epoch, commit, coordinator_epoch, timestamp_ms);
        assign_offsets(&mut batch, offset, leader_epoch);
        self.append_assigned_inner(&batch)?;
        Ok(offset)
    }

    /// Updates the leader epochs and producer state for batches now in the
    /// log: a batch of a newer epoch starts that epoch.
    fn note_appended(&mut self, batches: &[u8]) -> Result<()> {
        for item in Batches::new(batches) {
            let (_, batch) = item?;
            let h = BatchHeader::parse(batch)?;
            let epoch = h.partition_leader_epoch();
            if epoch >= 0 && self.epochs.latest_epoch().is_none_or(|latest| latest < epoch) {
                self.epochs.assign(epoch, h.base_offset())?;
            }
            self.note_producer_batch(batch)?;
        }
        Ok(())
    }

    fn note_producer_batch(&mut self, batch: &[u8]) -> Result<()> {
        let h = BatchHeader::parse(batch)?;
        if h.producer_id() < 0 {
            return Ok(());
        }
        if h.is_control() {
            let commit = control_is_commit(batch).unwrap_or(false);
            if let Some(aborted) = self.producers.end_txn(h.producer_id(), h.producer_epoch(), commit, h.base_offset())
            {
                self.aborted.push(aborted);
                self.persist_aborted()?;
            }
        } else {
            self.producers.update(&producer_batch(&h));
        }
        Ok(())
    }

    fn persist_aborted(&self) -> Result<()> {
        let mut text = String::new();
        for a in &self.aborted {
            text.push_str(&format!("{} {} {}\n", a.producer_id, a.first_offset, a.last_offset));
        }
        write_atomically(&self.dir.join(ABORTED_TXNS_FILE), text.as_bytes())
    }

    /// Producer state, for DescribeProducers and the transaction coordinator.
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// The last stable offset: below it no transaction is open.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers.first_unstable_offset().unwrap_or_else(|| self.log_end_offset())
    }

    /// Aborted transactions overlapping `[from, to)`, for read_committed.
    pub fn aborted_txns(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted.iter().filter(|a| a.first_offset < to && a.last_offset >= from).copied().collect()
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(segment_file_name(offset, "snapshot"))
    }

    /// Writes `<log end offset>.snapshot` and keeps only the two newest.
    /// Writes `<log end offset>.snapshot` (`durable`: fsynced; a lost or
    /// torn snapshot only means a longer replay at start).
    fn write_producer_snapshot(&self, durable: bool) -> Result<()> {
        let leo = self.log_end_offset();
        if self.producers.is_empty() {
            return Ok(());
        }
        let path = self.snapshot_path(leo);
        let bytes = self.producers.to_snapshot();
        if durable {
            write_atomically(&path, bytes.as_bytes())?;
        } else {
            crate::atomic_file::replace(&path, bytes.as_bytes())?;
        }
        let mut snaps = snapshot_offsets(&self.dir);
        snaps.sort_unstable();
        while snaps.len() > 2 {
            let old = snaps.remove(0);
            let _ = fs::remove_file(self.snapshot_path(old));
        }
        Ok(())
    }

    /// Loads the newest usable snapshot and replays the batches after it.
    fn rebuild_producer_state(&mut self) -> Result<()> {
        let leo = self.log_end_offset();
        let mut start = self.log_start_offset;
        let mut snaps = snapshot_offsets(&self.dir);
        snaps.sort_unstable();
        for offset in snaps.into_iter().rev() {
            if offset > leo {
                let _ = fs::remove_file(self.snapshot_path(offset));
                continue;
            }
            if let Some(state) = fs::read_to_string(self.snapshot_path(offset))
                .ok()
                .and_then(|t| ProducerStateManager::from_snapshot(&t))
            {
                self.producers = state;
                start = offset;
                break;
            }
        }
        let text = fs::read_to_string(self.dir.join(ABORTED_TXNS_FILE)).unwrap_or_default();
        self.aborted = text
            .lines()
            .filter_map(|l| {
                let n: Vec<i64> = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
                (n.len() == 3 && n[2] < start).then(|| AbortedTxn {
                    producer_id: n[0],
                    first_offset: n[1],
                    last_offset: n[2],
                })
            })
            .collect();
        // Replay batch headers (whole batches only for control markers).
        let mut replay = Vec::new();
        for seg in self.segments.values() {
            if seg.next_offset() > start {
                replay.extend(seg.producer_batches(start)?);
            }
        }
        for batch in replay {
            self.note_producer_batch(&batch)?;
        }
        Ok(())
    }

    fn append_assigned_inner(&mut self, batches: &[u8]) -> Result<()> {
        if batches.is_empty() {
            return Ok(());
        }
        let first = BatchHeader::parse(batches)?;
        let leo = self.log_end_offset();
        if first.base_offset() < leo {
            return Err(StorageError::Corrupt {
                path: self.dir.display().to_string(),
                reason: format!("append at offset {} below log end offset {leo}", first.base_offset()),
            });
        }
        if batches.len() as u64 > self.config.segment_bytes.min(SEGMENT_BYTES_MAX) {
            return Err(StorageError::TooLarge { bytes: batches.len(), segment_bytes: self.config.segment_bytes });
        }
        if self.should_roll(batches.len() as u64) {
            self.roll_inner(first.base_offset())?;
        }
        self.active_mut().append(batches)?;
        debug_assert!(self.log_end_offset() > leo, "log end offset must advance");
        self.note_appended(batches)
    }

    fn should_roll(&self, incoming: u64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        active.size() + incoming > self.config.segment_bytes.min(SEGMENT_BYTES_MAX)
            || active.index_is_full()
            || active.age_ms() > self.config.segment_ms
    }

    /// Seals the active segment and starts a new one at `base_offset`,
    /// without waiting for the disk (as Kafka's roll): the sealed segment
    /// and the new directory entry are fsynced by the next flush (an
    /// acks=all wait, or the background flush), its indexes written at
    /// close.
    fn roll_inner(&mut self, base_offset: i64) -> Result<()> {
        let sealed = self.active_mut();
        sealed.seal();
        let file = sealed.file().clone();
        self.unflushed.push(file);
        self.write_producer_snapshot(false)?;
        let seg =
            Segment::create(&self.dir, base_offset, self.config.index_interval_bytes, self.config.segment_index_bytes)?;
        self.created += 1;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled new segment");
        self.segments.insert(base_offset, seg);
        Ok(())
    }

    fn read_inner(&self, offset: i64, max_bytes: usize) -> Result<Option<FileSlice>> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        for (_, seg) in self.segments.range(..=offset).next_back().into_iter().chain(self.segments.range(offset + 1..))
        {
            if seg.next_offset() <= offset {
                continue;
            }
            if let Some(loc) = seg.find_batch(offset)? {
                let available = (seg.size() - loc.position) as usize;
                let len = max_bytes.max(loc.total_bytes).min(available);
                return Ok(Some(FileSlice {
                    file: seg.file().clone(),
                    position: loc.position,
                    len,
                    log_dir: self.log_dir.clone(),
                }));
            }
        }
        Ok(None)
    }

    fn read_below_inner(&self, offset: i64, max_bytes: usize, upper: i64) -> Result<Option<FileSlice>> {
        if offset >= upper {
            // still validates the offset range
            return self.read_inner(offset, 0).map(|_| None);
        }
        let Some(mut slice) = self.read_inner(offset, max_bytes)? else { return Ok(None) };
        if upper >= self.log_end_offset() {
            return Ok(Some(slice));
        }
        let seg = self.segments.range(..=upper).next_back().map(|(_, s)| s);
        if let Some(seg) = seg {
            if Arc::ptr_eq(seg.file(), &slice.file) {
                if let Some(loc) = seg.find_batch(upper)? {
                    let cut =
                        if loc.base_offset >= upper { loc.position } else { loc.position + loc.total_bytes as u64 };
                    if cut <= slice.position {
                        return Ok(None);
                    }
                    slice.len = slice.len.min((cut - slice.position) as usize);
                }
            }
        }
        Ok(Some(slice))
    }

    fn batch_at_or_after_timestamp_inner(&self, timestamp: i64) -> Result<Option<Vec<u8>>> {
        for seg in self.segments.values() {
            if let Some(batch) = seg.find_batch_by_timestamp(timestamp)? {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of the batch end
    /// holding it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| s.max_timestamp())
            .map(|s| (s.max_timestamp(), s.offset_of_max_timestamp()))
    }

    fn truncate_to_inner(&mut self, offset: i64) -> Result<()> {
        let doomed: Vec<i64> = self.segments.range(offset.max(self.log_start_offset) + 1..).map(|(b, _)| *b).collect();
        for base in doomed {
            if self.segments.len() == 1 {
                break;
            }
            if let Some(seg) = self.segments.remove(&base) {
                self.forget_unflushed(&seg);
                seg.delete_files()?;
            }
        }
        self.active_mut().truncate_to(offset)?;
        self.truncations += 1;
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        self.producers.truncate_from(offset);
        self.aborted.retain(|a| a.last_offset < offset);
        self.epochs.truncate_from(offset)
    }

    /// A segment that goes needs no flush.
    fn forget_unflushed(&mut self, seg: &Segment) {
        self.unflushed.retain(|f| !Arc::ptr_eq(f, seg.file()));
    }

    fn reset_to_inner(&mut self, offset: i64) -> Result<()> {
        let leo = self.log_end_offset();
        if offset <= leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        let seg =
            Segment::create(&self.dir, offset, self.config.index_interval_bytes, self.config.segment_index_bytes)?;
        let old: Vec<i64> = self.segments.keys().copied().collect();
        self.segments.insert(offset, seg);
        for base in old {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete_files()?;
            }
        }
        self.unflushed.clear();
        crate::atomic_file::sync_dir(&self.dir)?;
        self.dir_synced = self.created;
        self.truncations += 1;
        self.recovery_point = offset;
        for snap in snapshot_offsets(&self.dir) {
            let _ = fs::remove_file(self.snapshot_path(snap));
        }
        self.producers = ProducerStateManager::default();
        self.aborted.clear();
        self.persist_aborted()?;
        self.epochs.truncate_from(0)?;
        self.log_start_offset = offset;
        let path = self.dir.join(LOG_START_OFFSET_FILE);
        write_atomically(&path, offset.to_string().as_bytes())?;
        tracing::info!(dir = %self.dir.display(), offset, "log reset to start at the leader's log start offset");
        Ok(())
    }

    /// Removes the oldest segment (never the active one) with its files.
    fn delete_oldest_segment(&mut self) -> Result<()> {
        debug_assert!(self.segments.len() > 1, "the active segment is never deleted");
        let (base, seg) = self.segments.pop_first().expect("more than one segment");
        self.forget_unflushed(&seg);
        seg.delete_files()?;
        let next_base = *self.segments.keys().next().expect("the active segment remains");
        self.log_start_offset = self.log_start_offset.max(next_base);
        tracing::info!(dir = %self.dir.display(), base_offset = base, log_start_offset = self.log_start_offset, "deleted segment");
        Ok(())
    }

    fn enforce_retention_inner(&mut self, now_ms: i64, retention_ms: i64, retention_bytes: i64) -> Result<usize> {
        let mut deleted = 0;
        while self.segments.len() > 1 {
            let first = self.segments.values().next().expect("segments");
            let by_time =
                retention_ms >= 0 && first.max_timestamp() >= 0 && now_ms - first.max_timestamp() > retention_ms;
            let by_size = retention_bytes >= 0 && self.size_bytes() - first.size() >= retention_bytes as u64;
            if !(by_time || by_size) {
                break;
            }
            self.delete_oldest_segment()?;
            deleted += 1;
        }
        Ok(deleted)
    }

    fn delete_records_before_inner(&mut self, offset: i64) -> Result<i64> {
        let leo = self.log_end_offset();
        if offset < 0 || offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        while self.segments.len() > 1 {
            let mut iter = self.segments.keys();
            iter.next();
            let second_base = *iter.next().expect("two segments");
            if second_base > offset {
                break;
            }
            self.delete_oldest_segment()?;
        }
        let path = self.dir.join(LOG_START_OFFSET_FILE);
        write_atomically(&path, offset.to_string().as_bytes())?;
        Ok(self.log_start_offset)
    }

    /// The segments compaction may rewrite now, if enough of them is dirty:
    /// every non-active segment whose records are all older than
    /// `min.compaction.lag.ms` (a prefix of the log).
    pub fn cleaning_plan(&self, config: &CleanerConfig) -> Option<CleaningPlan> {
        let active_base = *self.segments.keys().next_back()?;
        let mut segments = Vec::new();
        let mut next_bases = Vec::new();
        let mut overdue = false;
        // Never clean at or past an open transaction.
        let stable = self.last_stable_offset();
        for (base, seg) in self.segments.range(..active_base) {
            if seg.is_empty() {
                continue;
            }
            if seg.next_offset() > stable {
                break;
            }
            if config.min_compaction_lag_ms > 0
                && seg.max_timestamp() > config.now_ms.saturating_sub(config.min_compaction_lag_ms)
            {
                break;
            }
            if seg.next_offset() > self.cleaned_up_to
                && seg.max_timestamp() < config.now_ms.saturating_sub(config.max_compaction_lag_ms)
            {
                overdue = true;
            }
            segments.push(SegmentSnapshot { base_offset: *base, file: seg.file().clone(), size: seg.size() });
            next_bases.push(seg.next_offset());
        }
        let end_offset = *next_bases.last()?;
        if end_offset <= self.cleaned_up_to {
            return None;
        }
        let ratio = cleaner::dirty_ratio(&segments, self.cleaned_up_to, &next_bases);
        if ratio < config.min_cleanable_dirty_ratio && !overdue {
            return None;
        }
        Some(CleaningPlan { dir: self.dir.clone(), segments, aborted: self.aborted.clone(), end_offset })
    }

    fn swap_cleaned_inner(&mut self, cleaned: Vec<CleanedSegment>, end_offset: i64) -> Result<()> {
        let active_base = *self.segments.keys().next_back().expect("active segment");
        for c in cleaned {
            let current = self.segments.get(&c.base_offset);
            // a cleaned file written for another directory (the log moved to
            // another log directory meanwhile) is dropped, not renamed across
            let here = c.path.as_ref().is_none_or(|p| p.parent() == Some(self.dir.as_path()));
            let unchanged = here && current.is_some_and(|s| s.size() == c.old_size) && c.base_offset != active_base;
            if !unchanged {
                if let Some(path) = &c.path {
                    let _ = fs::remove_file(path);
                }
                continue;
            }
            let seg = self.segments.remove(&c.base_offset).expect("checked");
            self.cleaner_swaps += 1;
            self.forget_unflushed(&seg);
            match &c.path {
                Some(path) => {
                    seg.delete_index_files()?;
                    fs::rename(path, seg.log_path()).ctx(path)?;
                    let reopened = Segment::open(
                        &self.dir,
                        c.base_offset,
                        self.config.index_interval_bytes,
                        self.config.segment_index_bytes,
                        false,
                    )?;
                    self.segments.insert(c.base_offset, reopened);
                }
                None => seg.delete_files()?,
            }
            tracing::debug!(dir = %self.dir.display(), base_offset = c.base_offset, old_bytes = c.old_size, new_bytes = c.new_size, "compacted segment");
        }
        fs::File::open(&self.dir).and_then(|d| d.sync_all()).ctx(&self.dir)?;
        self.cleaned_up_to = self.cleaned_up_to.max(end_offset);
        self.check_invariants();
        Ok(())
    }

    fn close_inner(&mut self) -> Result<()> {
        for seg in self.segments.values_mut() {
            seg.seal();
        }
        let target = self.flush_target()?;
        target.sync()?;
        self.flushed(&target);
        for seg in self.segments.values_mut() {
            seg.write_indexes()?;
        }
        self.write_producer_snapshot(true)
    }

    /// Validates every stored batch as recovery would; for tests and tools.
    pub fn verify(&self) -> Result<i64> {
        let mut expected = self.log_start_offset;
        for seg in self.segments.values() {
            let mut bytes = vec![0u8; seg.size() as usize];
            seg.file().read_exact_at(&mut bytes, 0).ctx(&self.dir)?;
            for item in Batches::new(&bytes) {
                let (_, batch) = item?;
                vltava_protocol::batch::verify_crc(batch)?;
                let h = BatchHeader::parse(batch)?;
                if h.base_offset() < expected {
                    return Err(StorageError::Corrupt {
                        path: self.dir.display().to_string(),
                        reason: "offsets go backwards".into(),
                    });
                }
                expected = h.last_offset() + 1;
            }
        }
        Ok(expected)
    }
}
