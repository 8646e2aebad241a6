//! The metadata log as Raft stores it: every entry raft-rs hands us is
//! appended to `raft.log`, one line per entry,
//! `CRC32C-hex SPACE {"t":term,"i":index,"d":data} NEWLINE`, fsynced before
//! raft-rs may act on it; the hard state (term, vote, commit) lives in
//! `raft.state`, replaced atomically. raft-rs may overwrite a suffix of
//! the log (a new leader's entries win): the file is append-only and the
//! replay lets a later entry with the same index replace the earlier one
//! and everything after it. A torn last line (a write cut short by a
//! crash) is cut off at start; a bad line with valid lines after it, or a
//! log that ends before the committed index recorded in `raft.state`, is
//! corruption: [`RaftLog::open`] refuses it (a node that silently dropped
//! committed metadata would delete the data of the topics it forgot)
//! unless told to truncate it ([`OnCorruption::Truncate`]).
//!
//! Entry data is JSON: `{"id":N,"records":[...]}` ([`EntryData`]). No
//! snapshots are taken yet: the log keeps every entry.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState};
use raft::storage::MemStorage;
use serde::{Deserialize, Serialize};

use crate::record::MetadataRecord;

const LOG_FILE: &str = "raft.log";
const STATE_FILE: &str = "raft.state";
/// The single-node metadata log of vltava before Raft: `CRC32C-hex SPACE
/// JSON-array NEWLINE`, one atomic batch of records per line.
const LEGACY_LOG_FILE: &str = "metadata.log";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata log I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("metadata record encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("{0}")]
    Legacy(String),
    #[error(
        "the metadata log {path} is corrupt at byte {byte}: {reason}. vltava refuses to start rather than drop \
         committed metadata. Restore the directory from a backup; or, on one of several controllers, move it away \
         and start the node again to copy the log from the others; or start once with \
         --truncate-corrupt-metadata-log to keep only the entries before byte {byte} (what was created after it \
         is lost)"
    )]
    Corrupt { path: String, byte: usize, reason: String },
}

/// What [`RaftLog::open`] does with a log that is corrupt before its tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorruption {
    /// Refuse to open it ([`MetadataError::Corrupt`]).
    #[default]
    Refuse,
    /// Keep the entries before the first bad line (an operator's explicit
    /// choice, `--truncate-corrupt-metadata-log`).
    Truncate,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetadataError + '_ {
    move |source| MetadataError::Io { path: path.display().to_string(), source }
}

/// What one Raft entry carries: records applied together, and the
/// proposer's id for them so it can learn they were applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryData {
    pub id: u64,
    pub records: Vec<MetadataRecord>,
}

impl EntryData {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records always serialise")
    }

    /// `None` for empty entries (a new leader's no-op) and unreadable data.
    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.is_empty() {
            return None;
        }
        serde_json::from_slice(data).ok()
    }
}

/// Ids of recently applied entries. A proposer that cannot tell whether its
/// entry was lost (forwarded to a controller that then died) proposes the
/// same entry again; the copy is skipped when applied. Every node applies
/// the same log from its start, so every node skips the same copies.
#[derive(Debug, Default, Clone)]
pub struct AppliedIds {
    order: std::collections::VecDeque<u64>,
    seen: std::collections::HashSet<u64>,
}

/// How many entry ids are remembered (a retry comes within seconds).
const APPLIED_IDS_KEPT: usize = 100_000;

impl AppliedIds {
    /// Whether the entry `id` is applied for the first time (id 0: always).
    pub fn first_time(&mut self, id: u64) -> bool {
        if id == 0 {
            return true;
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > APPLIED_IDS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    t: u64,
    i: u64,
    /// Entry type (0 normal, 1 conf change) when not 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    k: i32,
    d: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// Raft's storage for the metadata log: raft-rs reads from an in-memory
/// [`MemStorage`] that mirrors the files.
pub struct RaftLog {
    dir: PathBuf,
    file: File,
    storage: MemStorage,
}

impl RaftLog {
    /// Opens (or creates) the log in `dir` for a quorum of `voters` (raft
    /// ids). Returns the log, and the committed entries to apply at start.
    pub fn open(dir: &Path, voters: &[u64], on_corruption: OnCorruption) -> Result<(Self, Vec<Entry>), MetadataError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOG_FILE);
        let text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut good_end = 0usize;
        let mut bad: Option<&str> = None;
        let mut lines = text.split_inclusive(|&b| b == b'\n');
        for line in lines.by_ref() {
            let Some(entry) = parse_line(line) else {
                bad = Some("a line fails its checksum");
                break;
            };
            // a rewritten suffix: the later entry replaces from its index on
            let first = entries.first().map(|e| e.index).unwrap_or(entry.index);
            if entry.index < first || entry.index > first + entries.len() as u64 {
                bad = Some("an entry's index does not follow the log");
                break;
            }
            entries.truncate((entry.index - first) as usize);
            entries.push(entry);
            good_end += line.len();
        }
        let mut hard_state = load_state(&dir.join(STATE_FILE))?;
        let last = entries.last().map(|e| e.index).unwrap_or(0);
        // Valid lines after the bad one, or committed entries missing: not
        // a torn tail.
        let corruption = match bad {
            Some(reason) if lines.any(|l| parse_line(l).is_some()) => {
                Some(format!("{reason}, and valid entries follow it"))
            }
            _ if hard_state.commit > last => Some(format!(
                "the log ends at entry {last}, before the committed entry {} recorded in {STATE_FILE}",
                hard_state.commit
            )),
            _ => None,
        };
        if let Some(reason) = corruption {
            let error = MetadataError::Corrupt { path: path.display().to_string(), byte: good_end, reason };
            if on_corruption == OnCorruption::Refuse {
                return Err(error);
            }
            tracing::error!(%error, "truncating the corrupt metadata log as asked (--truncate-corrupt-metadata-log)");
            hard_state.commit = hard_state.commit.min(last);
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        if good_end < text.len() {
            tracing::warn!(path = %path.display(), dropped_bytes = text.len() - good_end, "truncating torn tail of the metadata log");
            file.set_len(good_end as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        if entries.is_empty() {
            if let Some(entry) = import_legacy(dir, voters, &mut file)? {
                entries.push(entry);
                hard_state = load_state(&dir.join(STATE_FILE))?;
            }
        }
        let storage = MemStorage::new_with_conf_state(ConfState::from((voters.to_vec(), vec![])));
        {
            let mut core = storage.wl();
            if !entries.is_empty() {
                core.append(&entries).map_err(|e| io_err(&path)(std::io::Error::other(e.to_string())))?;
            }
            core.set_hardstate(hard_state.clone());
        }
        let committed = entries.into_iter().filter(|e| e.index <= hard_state.commit).collect();
        Ok((Self { dir: dir.to_path_buf(), file, storage }, committed))
    }

    /// The storage to give raft-rs (shares state with this log).
    pub fn storage(&self) -> MemStorage {
        self.storage.clone()
    }

    /// Persists new entries (fsynced) and mirrors them in memory.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), MetadataError> {
        if entries.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(LOG_FILE);
        let mut out = String::new();
        for e in entries {
            out.push_str(&encode_line(e)?);
        }
        self.file.write_all(out.as_bytes()).map_err(io_err(&path))?;
        self.file.sync_data().map_err(io_err(&path))?;
        self.storage.wl().append(entries).map_err(|e| io_err(&path)(std::io::Error::other(e.to_string())))?;
        Ok(())
    }

    /// Persists the hard state (atomically) and mirrors it.
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), MetadataError> {
        self.storage.wl().set_hardstate(hs.clone());
        self.persist_state()
    }

    pub fn set_commit(&mut self, commit: u64) -> Result<(), MetadataError> {
        self.storage.wl().mut_hard_state().commit = commit;
        self.persist_state()
    }

    fn persist_state(&self) -> Result<(), MetadataError> {
        write_state(&self.dir, &self.storage.rl().hard_state().clone())
    }
}

fn encode_line(e: &Entry) -> Result<String, MetadataError> {
    let stored = StoredEntry {
        t: e.term,
        i: e.index,
        k: e.get_entry_type() as i32,
        d: String::from_utf8_lossy(e.get_data()).into_owned(),
    };
    let json = serde_json::to_string(&stored)?;
    Ok(format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes())))
}

fn write_state(dir: &Path, hs: &HardState) -> Result<(), MetadataError> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let bytes = hs.write_to_bytes().map_err(|e| io_err(&path)(std::io::Error::other(e.to_string())))?;
    let mut body = format!("{:08x} ", crc32c::crc32c(&bytes)).into_bytes();
    body.extend_from_slice(&bytes);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&body).map_err(io_err(&tmp))?;
    f.sync_data().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// A data dir from before the Raft quorum keeps its topics: its
/// `metadata.log` becomes the first committed entry of a single voter's
/// empty Raft log, and is renamed `metadata.log.imported`. A cluster cannot
/// import it (the voters would disagree): the node refuses to start.
fn import_legacy(dir: &Path, voters: &[u64], raft_file: &mut File) -> Result<Option<Entry>, MetadataError> {
    let path = dir.join(LEGACY_LOG_FILE);
    let text = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut records: Vec<MetadataRecord> = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        // replay stops at the first torn line, as the old log did
        let parsed = (|| {
            let line = line.strip_suffix(b"\n")?;
            let crc = u32::from_str_radix(std::str::from_utf8(line.get(..8)?).ok()?, 16).ok()?;
            let json = line.get(9..)?;
            (crc32c::crc32c(json) == crc).then(|| serde_json::from_slice::<Vec<MetadataRecord>>(json).ok())?
        })();
        let Some(batch) = parsed else { break };
        records.extend(batch);
    }
    if voters.len() != 1 {
        return Err(MetadataError::Legacy(format!(
            "{} was written by a single vltava node before the metadata quorum; start this data dir once as a \
             single node (without controller.quorum.voters) to convert it",
            path.display()
        )));
    }
    let entry = Entry { term: 1, index: 1, data: EntryData { id: 1, records }.encode().into(), ..Default::default() };
    raft_file.write_all(encode_line(&entry)?.as_bytes()).map_err(io_err(dir))?;
    raft_file.sync_data().map_err(io_err(dir))?;
    write_state(dir, &HardState { term: 1, vote: voters[0], commit: 1, ..Default::default() })?;
    fs::rename(&path, dir.join(format!("{LEGACY_LOG_FILE}.imported"))).map_err(io_err(&path))?;
    tracing::info!(path = %path.display(), "imported the pre-Raft metadata log");
    Ok(Some(entry))
}

/// The persisted hard state; none yet is term 0. A file that fails its
/// checksum is refused: forgetting a vote or the commit index is unsafe.
fn load_state(path: &Path) -> Result<HardState, MetadataError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let parsed = (|| {
        let crc = u32::from_str_radix(std::str::from_utf8(bytes.get(..8)?).ok()?, 16).ok()?;
        let body = bytes.get(9..)?;
        (crc32c::crc32c(body) == crc).then(|| HardState::parse_from_bytes(body).ok())?
    })();
    parsed.ok_or_else(|| MetadataError::Corrupt {
        path: path.display().to_string(),
        byte: 0,
        reason: "the Raft hard state (term, vote, commit) fails its checksum".into(),
    })
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let line = line.strip_suffix(b"\n")?;
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc32c::crc32c(json) != crc {
        return None;
    }
    let stored: StoredEntry = serde_json::from_slice(json).ok()?;
    let mut entry = Entry { term: stored.t, index: stored.i, ..Default::default() };
    if stored.k == 1 {
        entry.set_entry_type(raft::eraftpb::EntryType::EntryConfChange);
    }
    entry.data = stored.d.into_bytes().into();
    Some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, index: u64, data: &str) -> Entry {
        Entry { term, index, data: data.as_bytes().to_vec().into(), ..Default::default() }
    }

    #[test]
    fn a_pre_raft_log_is_imported_once_by_a_single_node() {
        let dir = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::new_v4();
        let batches = [
            vec![MetadataRecord::Topic { name: "old".into(), topic_id: id }],
            vec![MetadataRecord::ProducerIds { broker_id: 1, next_producer_id: 2000 }],
        ];
        let mut text = String::new();
        for b in &batches {
            let json = serde_json::to_string(b).unwrap();
            text.push_str(&format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes())));
        }
        text.push_str("0000dead torn");
        fs::write(dir.path().join(LEGACY_LOG_FILE), &text).unwrap();
        assert!(matches!(RaftLog::open(dir.path(), &[1, 2, 3], OnCorruption::Refuse), Err(MetadataError::Legacy(_))));
        let (_, committed) = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).unwrap();
        let data = EntryData::decode(committed[0].get_data()).unwrap();
        assert_eq!(data.records.len(), 2);
        assert!(!dir.path().join(LEGACY_LOG_FILE).exists());
        // reopened: the Raft log has it; nothing is imported twice
        let (log, committed) = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).unwrap();
        assert_eq!(committed.len(), 1);
        assert_eq!(log.storage().rl().hard_state().commit, 1);
    }

    /// Writes entries 1..=n (committed) and returns the log file's lines.
    fn committed_log(dir: &Path, n: u64) -> Vec<u8> {
        let (mut log, _) = RaftLog::open(dir, &[1], OnCorruption::Refuse).unwrap();
        let entries: Vec<Entry> = (1..=n).map(|i| entry(1, i, &format!("entry-{i}"))).collect();
        log.append(&entries).unwrap();
        log.set_hard_state(&HardState { term: 1, vote: 1, commit: n, ..Default::default() }).unwrap();
        fs::read(dir.join(LOG_FILE)).unwrap()
    }

    #[test]
    fn a_corrupt_line_before_the_tail_is_refused_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = committed_log(dir.path(), 8);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let error = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).err().expect("refused");
        let text = error.to_string();
        assert!(text.contains("raft.log") && text.contains("valid entries follow"), "{text}");
        assert_eq!(fs::read(dir.path().join(LOG_FILE)).unwrap(), bytes, "nothing was cut");
        // the operator's explicit choice keeps what precedes the bad line
        let (log, committed) = RaftLog::open(dir.path(), &[1], OnCorruption::Truncate).unwrap();
        assert!((1..8).contains(&committed.len()), "{} entries kept", committed.len());
        assert_eq!(log.storage().rl().hard_state().commit, committed.len() as u64);
    }

    #[test]
    fn a_log_shorter_than_its_commit_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = committed_log(dir.path(), 5);
        // the last two committed lines vanished (no torn line to explain it)
        let cut = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1).nth(2).unwrap();
        fs::write(dir.path().join(LOG_FILE), &bytes[..cut]).unwrap();
        let text = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).err().expect("refused").to_string();
        assert!(text.contains("before the committed entry 5"), "{text}");
        // a torn uncommitted tail is cut quietly
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = committed_log(dir.path(), 5);
        bytes.extend_from_slice(b"0badc0de {\"t\":1,\"i\":6,");
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let (_, committed) = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).unwrap();
        assert_eq!(committed.len(), 5);
    }

    #[test]
    fn retried_entries_apply_once() {
        let mut ids = AppliedIds::default();
        assert!(ids.first_time(7));
        assert!(!ids.first_time(7));
        assert!(ids.first_time(0) && ids.first_time(0), "id 0 is never deduplicated");
        for i in 100..100 + APPLIED_IDS_KEPT as u64 {
            assert!(ids.first_time(i));
        }
        assert!(ids.first_time(7), "forgotten after APPLIED_IDS_KEPT newer ids");
    }

    #[test]
    fn replay_overwrite_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, committed) = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).unwrap();
            assert!(committed.is_empty());
            log.append(&[entry(1, 1, "a"), entry(1, 2, "b"), entry(1, 3, "c")]).unwrap();
            // a new leader rewrites from index 2
            log.append(&[entry(2, 2, "B")]).unwrap();
            log.set_hard_state(&HardState { term: 2, vote: 1, ..Default::default() }).unwrap();
            log.set_commit(2).unwrap();
            log.append(&[entry(2, 3, "C")]).unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let (log, committed) = RaftLog::open(dir.path(), &[1], OnCorruption::Refuse).unwrap();
        let data: Vec<_> = committed.iter().map(|e| String::from_utf8(e.data.to_vec()).unwrap()).collect();
        assert_eq!(data, vec!["a", "B"]);
        let hs = log.storage().rl().hard_state().clone();
        assert_eq!((hs.term, hs.vote, hs.commit), (2, 1, 2));
        assert_eq!(raft::Storage::last_index(&log.storage()).unwrap(), 2, "the torn entry is gone");
    }
}
