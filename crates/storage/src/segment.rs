//! One log segment: `NNNNNNNNNNNNNNNNNNNN.log` with its `.index` and
//! `.timeindex`, named by the 20-digit base offset.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use vltava_protocol::batch::{verify_crc, BatchHeader, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD};

use crate::error::{IoContext, Result, StorageError};
use crate::offset_index::OffsetIndex;
use crate::segment_file_name;
use crate::time_index::TimeIndex;

/// Bytes of a batch header needed to know its offsets and length.
const HEADER_PEEK_BYTES: usize = 27;
/// Upper bound of a single batch accepted during recovery scans.
const RECOVERY_BATCH_BYTES_MAX: usize = 1 << 30;

/// Where a batch sits in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    pub position: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub total_bytes: usize,
}

/// What [`Segment::inspect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCheck {
    pub size: u64,
    /// Bytes of whole, valid batches from the start.
    pub valid_bytes: u64,
    /// One past the last offset of those batches.
    pub next_offset: i64,
}

#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u64,
    bytes_since_index: u64,
    /// One past the last offset stored here (`base_offset` when empty).
    next_offset: i64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    created: Instant,
    /// Wall-clock modification time at open, for roll by age across restarts.
    opened_age_ms: u64,
    /// The index files on disk describe this segment as it is.
    indexes_on_disk: bool,
}

fn open_file(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path).ctx(path)
}

impl Segment {
    /// Creates an empty segment. The caller fsyncs the directory before
    /// anything in the new file counts as durable.
    pub fn create(dir: &Path, base_offset: i64, index_interval_bytes: u64, index_bytes_max: u64) -> Result<Self> {
        let log_path = dir.join(segment_file_name(base_offset, "log"));
        let file = open_file(&log_path, true)?;
        file.set_len(0).ctx(&log_path)?;
        Ok(Self::assemble(dir, base_offset, log_path, file, 0, index_interval_bytes, index_bytes_max))
    }

    fn assemble(
        dir: &Path,
        base_offset: i64,
        log_path: PathBuf,
        file: File,
        size: u64,
        index_interval_bytes: u64,
        index_bytes_max: u64,
    ) -> Self {
        Self {
            base_offset,
            log_path,
            file: Arc::new(file),
            size,
            offset_index: OffsetIndex::new(
                dir.join(segment_file_name(base_offset, "index")),
                base_offset,
                index_bytes_max,
            ),
            time_index: TimeIndex::new(dir.join(segment_file_name(base_offset, "timeindex")), base_offset),
            index_interval_bytes,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created: Instant::now(),
            opened_age_ms: 0,
            indexes_on_disk: false,
        }
    }

    /// Opens an existing segment. With `recover`, every batch is re-validated
    /// (lengths, CRC-32C, increasing offsets), the file is cut after the last
    /// good batch, and both indexes are rebuilt. Without it, the indexes on
    /// disk are trusted when they fit the file, else rebuilt.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        index_bytes_max: u64,
        recover: bool,
    ) -> Result<Self> {
        let log_path = dir.join(segment_file_name(base_offset, "log"));
        let file = open_file(&log_path, false)?;
        let meta = file.metadata().ctx(&log_path)?;
        let size = meta.len();
        let age_ms = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut seg = Self::assemble(dir, base_offset, log_path, file, size, index_interval_bytes, index_bytes_max);
        seg.opened_age_ms = age_ms;
        if recover {
            seg.recover()?;
            return Ok(seg);
        }
        let offset_index =
            OffsetIndex::load(seg.offset_index.path().to_path_buf(), base_offset, index_bytes_max, size.max(1))?;
        let time_index = TimeIndex::load(dir.join(segment_file_name(base_offset, "timeindex")), base_offset)?;
        match (offset_index, time_index) {
            (Some(oi), Some(ti)) => {
                let start = oi.lookup(i64::MAX) as u64;
                seg.offset_index = oi;
                seg.time_index = ti;
                let entries = seg.offset_index.len();
                seg.scan_tail_headers(start)?;
                // the files are current unless the tail added entries
                seg.indexes_on_disk = seg.offset_index.len() == entries;
            }
            _ => seg.rebuild_indexes(false)?,
        }
        Ok(seg)
    }

    /// Reads batch headers from `position` to the end to learn the next
    /// offset and max timestamp (trusting data written before a clean stop).
    fn scan_tail_headers(&mut self, mut position: u64) -> Result<()> {
        let mut header = [0u8; BATCH_HEADER_BYTES];
        while position + BATCH_HEADER_BYTES as u64 <= self.size {
            self.file.read_exact_at(&mut header, position).ctx(&self.log_path)?;
            let h = BatchHeader::parse(&header).map_err(|e| self.corrupt(position, e.to_string()))?;
            let total = h.total_bytes() as u64;
            if total < BATCH_HEADER_BYTES as u64 || position + total > self.size {
                return Err(self.corrupt(position, "batch length past the end of the segment".into()));
            }
            self.note_batch(&h, position, total);
            position += total;
        }
        if position != self.size {
            return Err(self.corrupt(position, "trailing bytes after the last batch".into()));
        }
        Ok(())
    }

    fn corrupt(&self, position: u64, reason: String) -> StorageError {
        StorageError::Corrupt {
            path: self.log_path.display().to_string(),
            reason: format!("at byte {position}: {reason}"),
        }
    }

    fn rebuild_indexes(&mut self, validate: bool) -> Result<()> {
        self.offset_index.truncate_to_position(0);
        self.time_index.truncate_to_offset(i64::MIN);
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.bytes_since_index = 0;
        if validate {
            self.recover()
        } else {
            self.scan_tail_headers(0)
        }
    }

    /// Validates every batch; truncates the file at the first bad one.
    fn recover(&mut self) -> Result<()> {
        let valid_end = self.validate(false)?;
        if valid_end < self.size {
            tracing::warn!(
                segment = %self.log_path.display(),
                kept_bytes = valid_end,
                dropped_bytes = self.size - valid_end,
                "truncating torn or invalid tail of segment during recovery"
            );
            self.file.set_len(valid_end).ctx(&self.log_path)?;
            self.file.sync_all().ctx(&self.log_path)?;
            self.size = valid_end;
        }
        Ok(())
    }

    /// The valid prefix of the segment `base_offset` in `dir` for a log
    /// whose offsets are dense (the metadata log: every batch starts where
    /// the previous one ended), without changing anything: for callers that
    /// must decide whether a bad tail may be cut (the metadata log refuses
    /// to lose committed entries). The base offset lies outside the CRC, so
    /// density is what catches a damaged one.
    pub fn inspect(dir: &Path, base_offset: i64) -> Result<SegmentCheck> {
        let log_path = dir.join(segment_file_name(base_offset, "log"));
        let file = OpenOptions::new().read(true).open(&log_path).ctx(&log_path)?;
        let size = file.metadata().ctx(&log_path)?.len();
        let mut seg = Self::assemble(dir, base_offset, log_path, file, size, u64::MAX, u64::MAX);
        let valid_bytes = seg.validate(true)?;
        Ok(SegmentCheck { size, valid_bytes, next_offset: seg.next_offset })
    }

    /// Reads batches from the start while they are whole, CRC-valid and in
    /// offset order (`dense`: each starting where the previous ended), with
    /// indexes and offsets following; returns where the first bad one
    /// starts (the size when all are good).
    fn validate(&mut self, dense: bool) -> Result<u64> {
        self.offset_index.truncate_to_position(0);
        self.time_index.truncate_to_offset(i64::MIN);
        self.next_offset = self.base_offset;
        let mut position = 0u64;
        let mut buf = Vec::new();
        let valid_end = loop {
            if position == self.size {
                break position;
            }
            if position + BATCH_HEADER_BYTES as u64 > self.size {
                break position;
            }
            let mut header = [0u8; BATCH_HEADER_BYTES];
            self.file.read_exact_at(&mut header, position).ctx(&self.log_path)?;
            let Ok(h) = BatchHeader::parse(&header) else {
                break position;
            };
            let total = h.total_bytes();
            if !(BATCH_HEADER_BYTES..=RECOVERY_BATCH_BYTES_MAX).contains(&total) || position + total as u64 > self.size
            {
                break position;
            }
            if h.base_offset() < self.next_offset || h.last_offset_delta() < 0 {
                break position;
            }
            if dense && h.base_offset() != self.next_offset {
                break position;
            }
            buf.resize(total, 0);
            self.file.read_exact_at(&mut buf, position).ctx(&self.log_path)?;
            if verify_crc(&buf).is_err() {
                break position;
            }
            let h = BatchHeader::parse(&buf).expect("parsed above");
            self.note_batch(&h, position, total as u64);
            position += total as u64;
        };
        Ok(valid_end)
    }

    /// Updates offsets, timestamps and indexes for a batch at `position`.
    fn note_batch(&mut self, h: &BatchHeader<'_>, position: u64, total: u64) {
        debug_assert!(h.base_offset() >= self.next_offset, "offsets must increase");
        if self.bytes_since_index >= self.index_interval_bytes {
            self.offset_index.append(h.base_offset(), position as u32);
            if self.max_timestamp >= 0 {
                self.time_index.append(self.max_timestamp, self.offset_of_max_timestamp);
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += total;
        if h.max_timestamp() > self.max_timestamp {
            self.max_timestamp = h.max_timestamp();
            self.offset_of_max_timestamp = h.last_offset();
        }
        self.next_offset = h.last_offset() + 1;
    }

    /// Appends batches whose offsets were already assigned; one write call.
    /// A failed write may have left part of the bytes past the old end:
    /// they are cut off again (best effort; the caller takes the log
    /// directory offline, and the next start recovers the segment).
    pub fn append(&mut self, batches: &[u8]) -> Result<()> {
        if let Err(e) = self.file.write_all_at(batches, self.size) {
            let _ = self.file.set_len(self.size);
            return Err(e).ctx(&self.log_path);
        }
        let mut position = 0usize;
        while position < batches.len() {
            let h = BatchHeader::parse(&batches[position..]).expect("validated before append");
            let total = h.total_bytes();
            self.note_batch(&h, self.size + position as u64, total as u64);
            position += total;
        }
        debug_assert_eq!(position, batches.len());
        self.size += batches.len() as u64;
        self.indexes_on_disk = false;
        Ok(())
    }

    /// Reads the header of the batch at `position`.
    fn peek(&self, position: u64) -> Result<Option<BatchLocation>> {
        if position + HEADER_PEEK_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_PEEK_BYTES];
        self.file.read_exact_at(&mut header, position).ctx(&self.log_path)?;
        let base_offset = i64::from_be_bytes(header[0..8].try_into().expect("8"));
        let length = i32::from_be_bytes(header[8..12].try_into().expect("4"));
        let delta = i32::from_be_bytes(header[23..27].try_into().expect("4"));
        Ok(Some(BatchLocation {
            position,
            base_offset,
            last_offset: base_offset + delta as i64,
            total_bytes: BATCH_LOG_OVERHEAD + length.max(0) as usize,
        }))
    }

    /// The first batch whose last offset is `>= offset`.
    pub fn find_batch(&self, offset: i64) -> Result<Option<BatchLocation>> {
        let mut position = self.offset_index.lookup(offset) as u64;
        while let Some(loc) = self.peek(position)? {
            if loc.last_offset >= offset {
                return Ok(Some(loc));
            }
            position += loc.total_bytes as u64;
        }
        Ok(None)
    }

    /// Batches of producers (producer id >= 0) whose last offset is at or
    /// after `from`: the 61-byte header, or the whole batch for control
    /// batches (their marker type is in the record). For rebuilding
    /// producer state.
    pub fn producer_batches(&self, from: i64) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut position = 0u64;
        let mut header = [0u8; BATCH_HEADER_BYTES];
        while position + BATCH_HEADER_BYTES as u64 <= self.size {
            self.file.read_exact_at(&mut header, position).ctx(&self.log_path)?;
            let h = BatchHeader::parse(&header).map_err(|e| self.corrupt(position, e.to_string()))?;
            let total = h.total_bytes() as u64;
            if total < BATCH_HEADER_BYTES as u64 || position + total > self.size {
                break;
            }
            if h.producer_id() >= 0 && h.last_offset() >= from {
                if h.is_control() {
                    let mut whole = vec![0u8; total as usize];
                    self.file.read_exact_at(&mut whole, position).ctx(&self.log_path)?;
                    out.push(whole);
                } else {
                    out.push(header.to_vec());
                }
            }
            position += total;
        }
        Ok(out)
    }

    /// The first batch whose max timestamp is `>= timestamp`, read whole.
    pub fn find_batch_by_timestamp(&self, timestamp: i64) -> Result<Option<Vec<u8>>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let start = self.time_index.lookup(timestamp);
        let Some(mut loc) = self.find_batch(start)? else {
            return Ok(None);
        };
        loop {
            let mut buf = vec![0u8; loc.total_bytes];
            self.file.read_exact_at(&mut buf, loc.position).ctx(&self.log_path)?;
            let h = BatchHeader::parse(&buf).map_err(|e| self.corrupt(loc.position, e.to_string()))?;
            if h.max_timestamp() >= timestamp {
                return Ok(Some(buf));
            }
            match self.peek(loc.position + loc.total_bytes as u64)? {
                Some(next) => loc = next,
                None => return Ok(None),
            }
        }
    }

    /// Cuts the segment so that it ends before `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let position = match self.find_batch(offset)? {
            Some(loc) if loc.base_offset < offset => loc.position + loc.total_bytes as u64,
            Some(loc) => loc.position,
            None => return Ok(()),
        };
        // index files on disk would describe bytes that are gone
        self.delete_index_files()?;
        self.file.set_len(position).ctx(&self.log_path)?;
        self.size = position;
        self.offset_index.truncate_to_position(position as u32);
        self.time_index.truncate_to_offset(offset);
        self.indexes_on_disk = false;
        self.rebuild_indexes(false)
    }

    /// No more appends: the final time-index entry (in memory). A rolled
    /// segment is sealed at once and flushed later.
    pub fn seal(&mut self) {
        if self.max_timestamp >= 0 {
            self.time_index.append(self.max_timestamp, self.offset_of_max_timestamp);
        }
    }

    /// Writes the index files, unless they already describe the segment.
    pub fn write_indexes(&mut self) -> Result<()> {
        if !self.indexes_on_disk {
            self.offset_index.write_to_disk()?;
            self.time_index.write_to_disk()?;
            self.indexes_on_disk = true;
        }
        Ok(())
    }

    /// Seals the segment, fsyncs the data and writes the indexes.
    pub fn close(&mut self) -> Result<()> {
        self.seal();
        self.file.sync_all().ctx(&self.log_path)?;
        self.write_indexes()
    }

    /// Removes the segment's index files (they are rebuilt from the log).
    pub fn delete_index_files(&self) -> Result<()> {
        for path in [self.offset_index.path().to_path_buf(), self.log_path.with_extension("timeindex")] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx(&path),
            }
        }
        Ok(())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<()> {
        for path in
            [self.log_path.clone(), self.offset_index.path().to_path_buf(), self.log_path.with_extension("timeindex")]
        {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx(&path),
            }
        }
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub fn index_is_full(&self) -> bool {
        self.offset_index.is_full()
    }
    /// Milliseconds since the segment was created (or last modified, for
    /// segments found on disk at start).
    pub fn age_ms(&self) -> u64 {
        self.opened_age_ms + self.created.elapsed().as_millis() as u64
    }
}
