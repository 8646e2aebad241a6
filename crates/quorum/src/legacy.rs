//! Metadata logs written by earlier vltava releases, imported once into
//! the current log ([`crate::log::MetadataLog`]) and then renamed
//! `*.imported`:
//!
//! - `raft.log` (the first Raft release): one line per Raft entry,
//!   `CRC32C-hex SPACE {"t":term,"i":index,"k":kind,"d":data} NEWLINE`, the
//!   data being JSON `{"id":N,"records":[...]}`; a later line with an index
//!   already seen replaced that entry and everything after it.
//! - `metadata.log` (before Raft, a single node): `CRC32C-hex SPACE
//!   JSON-array NEWLINE`, one atomic batch of records per line. It becomes
//!   the first committed entry of a single voter's log; a cluster voter
//!   refuses it.
//!
//! The corruption rules are the current log's: a bad line with valid lines
//! after it, or fewer entries than the committed index, is refused.

use std::fs;
use std::path::Path;

use raft::eraftpb::{Entry, EntryType};
use serde::Deserialize;
use vltava_metadata::{EntryData, MetadataRecord};

use crate::log::OnCorruption;
use crate::QuorumError;

pub(crate) const JSON_LOG_FILE: &str = "raft.log";
pub(crate) const PRE_RAFT_LOG_FILE: &str = "metadata.log";

#[derive(Deserialize)]
struct StoredEntry {
    t: u64,
    i: u64,
    #[serde(default)]
    k: i32,
    d: String,
}

/// A `CRC32C-hex SPACE payload NEWLINE` line's payload, if the line is whole
/// and its checksum matches.
fn checked_payload(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\n")?;
    let crc = u32::from_str_radix(std::str::from_utf8(line.get(..8)?).ok()?, 16).ok()?;
    let payload = line.get(9..)?;
    (crc32c::crc32c(payload) == crc).then_some(payload)
}

/// An entry of the JSON log, its data converted to the binary form.
fn parse_json_line(line: &[u8]) -> Option<Entry> {
    let stored: StoredEntry = serde_json::from_slice(checked_payload(line)?).ok()?;
    let mut entry = Entry { term: stored.t, index: stored.i, ..Default::default() };
    if stored.k == 1 {
        entry.set_entry_type(EntryType::EntryConfChange);
        entry.data = stored.d.into_bytes().into();
    } else if !stored.d.is_empty() {
        let data: EntryData = serde_json::from_str(&stored.d).ok()?;
        entry.data = data.encode().into();
    }
    Some(entry)
}

/// The entries of `raft.log` in `dir`, or `None` when there is none.
/// `commit` is the committed index from `raft.state`.
pub(crate) fn read_json_log(
    dir: &Path,
    commit: u64,
    on_corruption: OnCorruption,
) -> Result<Option<Vec<Entry>>, QuorumError> {
    let path = dir.join(JSON_LOG_FILE);
    let text = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QuorumError::io(&path, e)),
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut good_end = 0usize;
    let mut bad = None;
    let mut lines = text.split_inclusive(|&b| b == b'\n');
    for line in lines.by_ref() {
        let Some(entry) = parse_json_line(line) else {
            bad = Some("a line fails its checksum");
            break;
        };
        let first = entries.first().map(|e| e.index).unwrap_or(entry.index);
        if entry.index < first || entry.index > first + entries.len() as u64 {
            bad = Some("an entry's index does not follow the log");
            break;
        }
        entries.truncate((entry.index - first) as usize);
        entries.push(entry);
        good_end += line.len();
    }
    let last = entries.last().map(|e| e.index).unwrap_or(0);
    let corruption = match bad {
        Some(reason) if lines.any(|l| parse_json_line(l).is_some()) => {
            Some(format!("{reason}, and valid entries follow it"))
        }
        _ if commit > last => Some(format!("the log ends at entry {last}, before the committed entry {commit}")),
        _ => None,
    };
    if let Some(reason) = corruption {
        let error = QuorumError::Corrupt { path: path.display().to_string(), position: Some(good_end as u64), reason };
        if on_corruption == OnCorruption::Refuse {
            return Err(error);
        }
        tracing::error!(%error, "importing only the entries before the corruption, as asked");
    }
    Ok(Some(entries))
}

/// The records of a pre-Raft `metadata.log` in `dir`, or `None`.
pub(crate) fn read_pre_raft_log(dir: &Path) -> Result<Option<Vec<MetadataRecord>>, QuorumError> {
    let path = dir.join(PRE_RAFT_LOG_FILE);
    let text = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QuorumError::io(&path, e)),
    };
    let mut records = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        // replay stops at the first torn line, as the old log did
        let Some(batch) =
            checked_payload(line).and_then(|json| serde_json::from_slice::<Vec<MetadataRecord>>(json).ok())
        else {
            break;
        };
        records.extend(batch);
    }
    Ok(Some(records))
}

/// Renames an imported file `NAME.imported`.
pub(crate) fn retire(dir: &Path, name: &str) -> Result<(), QuorumError> {
    let from = dir.join(name);
    let to = dir.join(format!("{name}.imported"));
    fs::rename(&from, &to).map_err(|e| QuorumError::io(&from, e))?;
    vltava_storage::atomic_file::sync_dir(dir).map_err(QuorumError::Storage)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A line of the JSON log, as the first Raft release wrote it.
    pub(crate) fn json_line(term: u64, index: u64, data: &str) -> String {
        let json = serde_json::json!({"t": term, "i": index, "d": data}).to_string();
        format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()))
    }

    pub(crate) fn json_entry(id: u64, records: &[MetadataRecord]) -> String {
        serde_json::json!({"id": id, "records": records}).to_string()
    }

    #[test]
    fn the_json_log_replays_rewritten_suffixes_and_converts_data() {
        let dir = tempfile::tempdir().unwrap();
        let a = json_entry(1, &[MetadataRecord::ClusterId { cluster_id: "c".into() }]);
        let b = json_entry(2, &[MetadataRecord::ProducerIds { broker_id: 1, next_producer_id: 7 }]);
        let text = json_line(1, 1, &a) + &json_line(1, 2, "") + &json_line(2, 2, &b) + "0000 torn";
        fs::write(dir.path().join(JSON_LOG_FILE), text).unwrap();
        let entries = read_json_log(dir.path(), 2, OnCorruption::Refuse).unwrap().unwrap();
        assert_eq!(entries.iter().map(|e| (e.term, e.index)).collect::<Vec<_>>(), vec![(1, 1), (2, 2)]);
        let data = EntryData::decode(&entries[1].data).unwrap().unwrap();
        assert_eq!(data.id, 2);
        // the commit index says entry 3 existed: not a torn tail
        assert!(matches!(read_json_log(dir.path(), 3, OnCorruption::Refuse), Err(QuorumError::Corrupt { .. })));
    }
}
