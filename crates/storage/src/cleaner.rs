//! Log compaction (`cleanup.policy=compact`): keep the latest record per
//! key, keep offsets (gaps are fine), drop tombstones older than
//! `delete.retention.ms`, leave records younger than `min.compaction.lag.ms`
//! and the active segment alone.
//!
//! The expensive part runs without the log's lock: [`Log::cleaning_plan`]
//! snapshots the cleanable segments (their bytes never change), [`clean`]
//! rewrites them into `<base>.log.cleaned` files, and [`Log::swap_cleaned`]
//! takes the lock only to rename files and reopen segments. A crash leaves
//! either the old or the new file under the segment's name; stray
//! `.cleaned` files are removed at open.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vltava_protocol::batch::{
    build_batch_from_tails, records_of, records_section, BatchHeader, Batches, ATTR_TIMESTAMP_LOG_APPEND,
};

use crate::error::{IoContext, Result};
use crate::producer_state::AbortedTxn;
use crate::segment_file_name;

/// Compaction settings of one topic, with Kafka's names.
#[derive(Debug, Clone, Copy)]
pub struct CleanerConfig {
    pub now_ms: i64,
    /// `delete.retention.ms`
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_dirty_ratio: f64,
}

/// A segment to clean, as it was when the plan was made.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    pub base_offset: i64,
    pub file: Arc<File>,
    pub size: u64,
}

/// What to clean; `dirty_from` is where the last cleaning stopped.
#[derive(Debug, Clone)]
pub struct CleaningPlan {
    pub dir: PathBuf,
    pub segments: Vec<SegmentSnapshot>,
    /// Aborted transactions: their records are dropped, never kept as if
    /// committed.
    pub aborted: Vec<AbortedTxn>,
    /// First offset after the cleanable range.
    pub end_offset: i64,
}

/// The outcome of cleaning one segment.
#[derive(Debug)]
pub struct CleanedSegment {
    pub base_offset: i64,
    pub old_size: u64,
    /// `None` when nothing of the segment survived.
    pub path: Option<PathBuf>,
    pub new_size: u64,
}

fn read_all(seg: &SegmentSnapshot, dir: &Path) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; seg.size as usize];
    seg.file.read_exact_at(&mut bytes, 0).ctx(dir)?;
    Ok(bytes)
}

fn is_aborted(h: &BatchHeader<'_>, aborted: &[AbortedTxn]) -> bool {
    h.is_transactional()
        && aborted.iter().any(|a| {
            a.producer_id == h.producer_id() && a.first_offset <= h.base_offset() && h.base_offset() <= a.last_offset
        })
}

/// Visits every record of the segment bytes as
/// `(offset, timestamp, key, is_tombstone, tail, batch header)`.
fn for_each_record(
    bytes: &[u8],
    aborted: &[AbortedTxn],
    mut f: impl FnMut(&BatchHeader<'_>, vltava_protocol::batch::RecordView<'_>),
) -> Result<()> {
    for item in Batches::new(bytes) {
        let (_, batch) = item?;
        let h = BatchHeader::parse(batch)?;
        if h.is_control() || is_aborted(&h, aborted) {
            continue;
        }
        let section = records_section(batch)?;
        for r in records_of(batch, &section)? {
            f(&h, r);
        }
    }
    Ok(())
}

/// Rewrites the plan's segments keeping the latest record of each key.
pub fn clean(plan: &CleaningPlan, config: &CleanerConfig) -> Result<Vec<CleanedSegment>> {
    // 1. The latest offset of every key in the cleanable range.
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    for seg in &plan.segments {
        let bytes = read_all(seg, &plan.dir)?;
        for_each_record(&bytes, &plan.aborted, |_, r| {
            if let Some(key) = r.key {
                latest.insert(key.to_vec(), r.offset);
            }
        })?;
    }
    // 2. Rewrite each segment with what survives.
    let tombstone_horizon = config.now_ms.saturating_sub(config.delete_retention_ms);
    let mut out = Vec::with_capacity(plan.segments.len());
    for seg in &plan.segments {
        let bytes = read_all(seg, &plan.dir)?;
        let mut cleaned = Vec::with_capacity(bytes.len());
        for item in Batches::new(&bytes) {
            let (_, batch) = item?;
            let h = BatchHeader::parse(batch)?;
            if h.is_control() || is_aborted(&h, &plan.aborted) {
                continue;
            }
            let section = records_section(batch)?;
            let kept: Vec<(i64, i64, &[u8])> = records_of(batch, &section)?
                .into_iter()
                .filter(|r| match r.key {
                    Some(key) => {
                        latest.get(key) == Some(&r.offset) && (r.value.is_some() || r.timestamp >= tombstone_horizon)
                    }
                    None => true,
                })
                .map(|r| (r.offset, r.timestamp, r.tail))
                .collect();
            if kept.is_empty() {
                continue;
            }
            let log_append = h.attributes() & ATTR_TIMESTAMP_LOG_APPEND != 0;
            cleaned.extend_from_slice(&build_batch_from_tails(h.partition_leader_epoch(), log_append, &kept));
        }
        let path = (!cleaned.is_empty())
            .then(|| plan.dir.join(format!("{}.cleaned", segment_file_name(seg.base_offset, "log"))));
        if let Some(path) = &path {
            let mut f = File::create(path).ctx(path)?;
            f.write_all(&cleaned).ctx(path)?;
            f.sync_all().ctx(path)?;
        }
        out.push(CleanedSegment {
            base_offset: seg.base_offset,
            old_size: seg.size,
            path,
            new_size: cleaned.len() as u64,
        });
    }
    Ok(out)
}

/// Dirty share of a plan: bytes at or after `dirty_from` over all bytes.
pub fn dirty_ratio(segments: &[SegmentSnapshot], dirty_from: i64, next_bases: &[i64]) -> f64 {
    let total: u64 = segments.iter().map(|s| s.size).sum();
    if total == 0 {
        return 0.0;
    }
    let dirty: u64 = segments.iter().zip(next_bases).filter(|(_, next)| **next > dirty_from).map(|(s, _)| s.size).sum();
    dirty as f64 / total as f64
}
