//! Sparse offset index: `(relative offset u32, file position u32)` entries,
//! one every `index.interval.bytes` of log, in Kafka's on-disk layout
//! (8 bytes per entry, big-endian). Kept in memory, written out when the
//! segment rolls or closes, rebuilt from the log when missing or suspect.

use std::fs;
use std::path::{Path, PathBuf};

use crate::atomic_file::write_atomically;
use crate::error::{IoContext, Result};

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;

#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    base_offset: i64,
    entries: Vec<(u32, u32)>,
    entries_max: usize,
}

impl OffsetIndex {
    pub fn new(path: PathBuf, base_offset: i64, index_bytes_max: u64) -> Self {
        let entries_max = (index_bytes_max as usize / OFFSET_INDEX_ENTRY_BYTES).max(1);
        Self { path, base_offset, entries: Vec::new(), entries_max }
    }

    /// Loads entries from disk; `Ok(None)` when the file is missing or does
    /// not fit a segment of `segment_size` bytes (the caller rebuilds).
    pub fn load(path: PathBuf, base_offset: i64, index_bytes_max: u64, segment_size: u64) -> Result<Option<Self>> {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(&path),
        };
        if bytes.len() % OFFSET_INDEX_ENTRY_BYTES != 0 {
            return Ok(None);
        }
        let mut index = Self::new(path, base_offset, index_bytes_max);
        let mut last: Option<(u32, u32)> = None;
        for chunk in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
            let rel = u32::from_be_bytes(chunk[0..4].try_into().expect("4"));
            let pos = u32::from_be_bytes(chunk[4..8].try_into().expect("4"));
            if let Some((lr, lp)) = last {
                if rel <= lr || pos <= lp {
                    return Ok(None);
                }
            }
            if pos as u64 >= segment_size {
                return Ok(None);
            }
            index.entries.push((rel, pos));
            last = Some((rel, pos));
        }
        Ok(Some(index))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.entries_max
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry for the batch starting at `offset` at file `position`.
    pub fn append(&mut self, offset: i64, position: u32) {
        let rel = (offset - self.base_offset) as u32;
        if let Some(&(lr, lp)) = self.entries.last() {
            debug_assert!(rel > lr && position > lp, "offset index must grow");
            if rel <= lr || position <= lp {
                return;
            }
        }
        if !self.is_full() {
            self.entries.push((rel, position));
        }
    }

    /// Position of the last indexed batch starting at or before `offset`
    /// (0 when none is indexed).
    pub fn lookup(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return 0;
        }
        let idx = self.entries.partition_point(|&(r, _)| (r as i64) <= rel);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    /// Drops entries at or beyond file `position` (after a truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|&(_, p)| p < position);
        self.entries.truncate(keep);
    }

    pub fn write_to_disk(&self) -> Result<()> {
        let mut bytes = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_BYTES);
        for &(rel, position) in &self.entries {
            bytes.extend_from_slice(&rel.to_be_bytes());
            bytes.extend_from_slice(&position.to_be_bytes());
        }
        write_atomically(&self.path, &bytes)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_floor_entry() {
        let mut i = OffsetIndex::new("/nonexistent".into(), 100, 1 << 20);
        i.append(100, 0);
        i.append(110, 4096);
        i.append(130, 9000);
        assert_eq!(i.lookup(99), 0);
        assert_eq!(i.lookup(100), 0);
        assert_eq!(i.lookup(109), 0);
        assert_eq!(i.lookup(110), 4096);
        assert_eq!(i.lookup(129), 4096);
        assert_eq!(i.lookup(1000), 9000);
        i.truncate_to_position(4096);
        assert_eq!(i.lookup(1000), 0);
    }

    #[test]
    fn roundtrip_and_reject_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut i = OffsetIndex::new(p.clone(), 5, 1 << 20);
        i.append(5, 0);
        i.append(9, 100);
        i.write_to_disk().unwrap();
        let j = OffsetIndex::load(p.clone(), 5, 1 << 20, 200).unwrap().unwrap();
        assert_eq!(j.entries, i.entries);
        // a position beyond the segment means the index is stale
        assert!(OffsetIndex::load(p.clone(), 5, 1 << 20, 50).unwrap().is_none());
        std::fs::write(&p, [1, 2, 3]).unwrap();
        assert!(OffsetIndex::load(p, 5, 1 << 20, 200).unwrap().is_none());
    }
}
