//! Leader epoch cache: which epoch's leader wrote from which offset, the
//! `leader-epoch-checkpoint` file of a partition (Kafka's text format:
//! version line, entry count, then `epoch start_offset` lines). Answers
//! OffsetForLeaderEpoch and, in a cluster, tells a follower where its log
//! diverged.

use std::fs;
use std::path::{Path, PathBuf};

use crate::atomic_file::write_atomically;
use crate::error::{IoContext, Result};

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

#[derive(Debug, Clone)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// `(epoch, start_offset)`, both strictly increasing.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = Vec::new();
        match fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines().skip(2) {
                    let mut parts = line.split_whitespace();
                    if let (Some(Ok(epoch)), Some(Ok(offset))) =
                        (parts.next().map(str::parse), parts.next().map(str::parse))
                    {
                        entries.push((epoch, offset));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx(&path),
        }
        Ok(Self { path, entries })
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts writing at `start_offset`; persists it.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if let Some(&(last_epoch, _)) = self.entries.last() {
            if epoch <= last_epoch {
                return Ok(());
            }
        }
        self.entries.retain(|&(_, o)| o < start_offset);
        self.entries.push((epoch, start_offset));
        self.persist()
    }

    /// The end offset of `epoch`: the start of the next higher epoch, or
    /// `log_end_offset` for the latest. Returns the largest known epoch
    /// `<= epoch` with it, or `None` when `epoch` is older than every entry.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let idx = self.entries.partition_point(|&(e, _)| e <= epoch);
        if idx == 0 {
            return None;
        }
        let found = self.entries[idx - 1].0;
        let end = self.entries.get(idx).map(|&(_, o)| o).unwrap_or(log_end_offset);
        Some((found, end))
    }

    /// Forgets epochs starting at or after `offset` (after truncation).
    pub fn truncate_from(&mut self, offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    fn persist(&self) -> Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, offset) in &self.entries {
            text.push_str(&format!("{epoch} {offset}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(c.end_offset_for(0, 10), None);
        c.assign(0, 0).unwrap();
        c.assign(2, 50).unwrap();
        c.assign(1, 60).unwrap(); // older epoch: ignored
        assert_eq!(c.end_offset_for(0, 80), Some((0, 50)));
        assert_eq!(c.end_offset_for(1, 80), Some((0, 50)));
        assert_eq!(c.end_offset_for(2, 80), Some((2, 80)));
        let c2 = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(c2.end_offset_for(2, 99), Some((2, 99)));
        c.truncate_from(50).unwrap();
        assert_eq!(c.latest_epoch(), Some(0));
    }
}
