//! Sparse time index: `(timestamp i64, relative offset u32)` entries, 12
//! bytes each as in Kafka, added when a batch raises the segment's max
//! timestamp and at least `index.interval.bytes` were written since the last
//! entry. Timestamps in the index only increase, so a lookup is a binary
//! search for the last entry below the target.

use std::fs;
use std::path::PathBuf;

use crate::atomic_file::write_atomically;
use crate::error::{IoContext, Result};

pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

#[derive(Debug)]
pub struct TimeIndex {
    path: PathBuf,
    base_offset: i64,
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn new(path: PathBuf, base_offset: i64) -> Self {
        Self { path, base_offset, entries: Vec::new() }
    }

    /// Loads from disk; `Ok(None)` when missing or malformed.
    pub fn load(path: PathBuf, base_offset: i64) -> Result<Option<Self>> {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(&path),
        };
        if bytes.len() % TIME_INDEX_ENTRY_BYTES != 0 {
            return Ok(None);
        }
        let mut index = Self::new(path, base_offset);
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let ts = i64::from_be_bytes(chunk[0..8].try_into().expect("8"));
            let rel = u32::from_be_bytes(chunk[8..12].try_into().expect("4"));
            if let Some(&(lt, lr)) = index.entries.last() {
                if ts <= lt || rel < lr {
                    return Ok(None);
                }
            }
            index.entries.push((ts, rel));
        }
        Ok(Some(index))
    }

    pub fn append(&mut self, timestamp: i64, offset: i64) {
        let rel = (offset - self.base_offset) as u32;
        if let Some(&(lt, lr)) = self.entries.last() {
            if timestamp <= lt || rel < lr {
                return;
            }
        }
        self.entries.push((timestamp, rel));
    }

    /// The offset of the last entry whose timestamp is below `timestamp`, a
    /// safe place to start scanning for the first record at or after it.
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let idx = self.entries.partition_point(|&(ts, _)| ts < timestamp);
        if idx == 0 {
            self.base_offset
        } else {
            self.base_offset + self.entries[idx - 1].1 as i64
        }
    }

    /// Drops entries for offsets at or beyond `offset`.
    pub fn truncate_to_offset(&mut self, offset: i64) {
        let keep = self.entries.partition_point(|&(_, rel)| self.base_offset + (rel as i64) < offset);
        self.entries.truncate(keep);
    }

    pub fn write_to_disk(&self) -> Result<()> {
        let mut bytes = Vec::with_capacity(self.entries.len() * 12);
        for &(ts, rel) in &self.entries {
            bytes.extend_from_slice(&ts.to_be_bytes());
            bytes.extend_from_slice(&rel.to_be_bytes());
        }
        write_atomically(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_returns_last_entry_below() {
        let mut t = TimeIndex::new("/nonexistent".into(), 10);
        t.append(1000, 10);
        t.append(2000, 20);
        t.append(1500, 25); // not increasing: ignored
        t.append(3000, 30);
        assert_eq!(t.lookup(500), 10);
        assert_eq!(t.lookup(1000), 10);
        assert_eq!(t.lookup(1001), 10);
        assert_eq!(t.lookup(2500), 20);
        assert_eq!(t.lookup(9999), 30);
        t.truncate_to_offset(30);
        assert_eq!(t.lookup(9999), 20);
    }
}
