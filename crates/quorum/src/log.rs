//! The metadata log on disk, as raft-rs's storage: Kafka's
//! `__cluster_metadata-0` layout on the storage crate's [`Log`].
//!
//! - Every Raft entry is one record batch at offset `index - 1` whose
//!   partition leader epoch is the entry's term; its one record has the
//!   entry type as key (one byte) and the entry's data as value (binary
//!   [`vltava_metadata::EntryData`], or empty for a leader's no-op). The
//!   storage log's leader epoch cache thus records where each term starts.
//! - `raft.state` holds the hard state (term, vote, commit), replaced
//!   atomically, CRC-checked.
//! - `<index>-<term>.checkpoint` files are snapshots ([`crate::snapshot`]);
//!   after one is written, the segments wholly below it are deleted and
//!   the in-memory entries before it dropped. A start reads the newest
//!   snapshot and the entries after it, never the whole history.
//!
//! Entries are fsynced before raft-rs may act on them. A torn tail (a write
//! cut short) past the committed index is cut at start; a log that cannot
//! hold every committed entry, or a bad batch before the tail, is
//! corruption and refused ([`OnCorruption`]).

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError as RaftStorageError};
use vltava_metadata::{EntryData, MetadataImage};
use vltava_protocol::batch::{assign_offsets, build_keyed_batch, records_of, records_section, verify_crc, Batches};
use vltava_storage::{Log, LogConfig, LogDir, Recovery, Segment};

use crate::applied::AppliedIds;
use crate::legacy;
use crate::snapshot::{self, SnapshotContent};
use crate::QuorumError;

const STATE_FILE: &str = "raft.state";
/// Bytes read from the log at a time when loading entries.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Snapshot files kept (the newest and the one before it).
const SNAPSHOTS_KEPT: usize = 2;

/// What [`MetadataLog::open`] does with a log that is corrupt before its
/// tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorruption {
    /// Refuse to open it ([`QuorumError::Corrupt`]).
    #[default]
    Refuse,
    /// Keep what precedes the corruption (the operator's explicit choice,
    /// `--truncate-corrupt-metadata-log`).
    Truncate,
}

/// Sizes of the metadata log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `metadata.log.segment.bytes`
    pub segment_bytes: u64,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { segment_bytes: 16 << 20 }
    }
}

/// What a start recovers: the newest snapshot and the committed entries
/// after it, to apply in order.
pub struct Recovered {
    pub snapshot: Option<SnapshotContent>,
    pub committed: Vec<Entry>,
}

/// The in-memory side raft-rs reads: entries after the snapshot, the hard
/// state, the snapshot itself.
struct Core {
    hard_state: HardState,
    /// The membership as of the last applied entry (what a snapshot taken
    /// now records).
    conf_state: ConfState,
    /// Controller endpoints of the members, by raft id.
    endpoints: BTreeMap<u64, String>,
    snapshot: Snapshot,
    entries: VecDeque<Entry>,
}

impl Core {
    fn first_index(&self) -> u64 {
        self.entries.front().map(|e| e.index).unwrap_or(self.snapshot.get_metadata().index + 1)
    }
    fn last_index(&self) -> u64 {
        self.entries.back().map(|e| e.index).unwrap_or(self.snapshot.get_metadata().index)
    }
}

/// raft-rs's view of the metadata log (shares state with [`MetadataLog`]).
#[derive(Clone)]
pub struct LogStorage(Arc<RwLock<Core>>);

impl raft::Storage for LogStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.0.read();
        Ok(RaftState { hard_state: core.hard_state.clone(), conf_state: core.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.0.read();
        if low < core.first_index() {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if high > core.last_index() + 1 || low > high {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        let first = core.first_index();
        let mut out: Vec<Entry> =
            core.entries.range((low - first) as usize..(high - first) as usize).cloned().collect();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.0.read();
        let meta = core.snapshot.get_metadata();
        if idx == meta.index {
            return Ok(meta.term);
        }
        if idx < core.first_index() {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if idx > core.last_index() {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        Ok(core.entries[(idx - core.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.0.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.0.read().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let core = self.0.read();
        if core.snapshot.get_data().is_empty() || core.snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(RaftStorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(core.snapshot.clone())
    }
}

pub struct MetadataLog {
    dir: PathBuf,
    log: Log,
    core: LogStorage,
    /// Bytes of entries appended since the last snapshot.
    bytes_since_snapshot: u64,
}

fn entry_batch(e: &Entry) -> Vec<u8> {
    let kind = [e.get_entry_type() as u8];
    let mut batch = build_keyed_batch(0, 0, &[(Some(&kind), Some(e.get_data()))]);
    assign_offsets(&mut batch, e.index as i64 - 1, e.term as i32);
    batch
}

fn batch_entry(batch: &[u8]) -> Result<Entry, String> {
    verify_crc(batch).map_err(|e| e.to_string())?;
    let h = vltava_protocol::batch::BatchHeader::parse(batch).map_err(|e| e.to_string())?;
    let section = records_section(batch).map_err(|e| e.to_string())?;
    let records = records_of(batch, &section).map_err(|e| e.to_string())?;
    let [record] = records.as_slice() else { return Err(format!("{} records in an entry batch", records.len())) };
    let kind = match record.key {
        Some([0]) => EntryType::EntryNormal,
        Some([1]) => EntryType::EntryConfChange,
        Some([2]) => EntryType::EntryConfChangeV2,
        _ => return Err("unknown entry type".into()),
    };
    let mut entry = Entry {
        index: h.base_offset() as u64 + 1,
        term: h.partition_leader_epoch().max(0) as u64,
        data: record.value.unwrap_or_default().to_vec().into(),
        ..Default::default()
    };
    entry.set_entry_type(kind);
    Ok(entry)
}

impl MetadataLog {
    /// Opens (or creates) the metadata log in `dir` for a quorum of
    /// `voters` (raft ids), importing the formats of earlier releases. The
    /// newest snapshot's membership, when there is one, replaces `voters`:
    /// the log decides who votes once it has said so (the membership
    /// changes after the snapshot are for the caller to apply).
    pub fn open(
        dir: &Path,
        voters: &[u64],
        settings: &LogSettings,
        on_corruption: OnCorruption,
    ) -> Result<(Self, Recovered), QuorumError> {
        fs::create_dir_all(dir).map_err(|e| QuorumError::io(dir, e))?;
        let mut hard_state = load_state(&dir.join(STATE_FILE))?;
        let config = LogConfig {
            segment_bytes: settings.segment_bytes,
            segment_ms: u64::MAX / 4,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
        };
        let legacy_entries = match legacy::read_json_log(dir, hard_state.commit, on_corruption)? {
            Some(entries) => {
                // an import cut short by a crash starts over
                for base in vltava_storage::segment_bases(dir)? {
                    let _ = fs::remove_file(dir.join(vltava_storage::segment_file_name(base, "log")));
                }
                Some(entries)
            }
            None => None,
        };

        // The newest snapshot.
        let mut snapshot: Option<SnapshotContent> = None;
        for (index, term, path) in snapshot::list(dir).into_iter().rev() {
            let read = fs::read(&path).map_err(|e| QuorumError::io(&path, e))?;
            match SnapshotContent::decode(&read) {
                Ok(content) if content.index == index && content.term == term => {
                    snapshot = Some(content);
                    break;
                }
                outcome => {
                    let reason = outcome.err().unwrap_or_else(|| "its name does not match its content".into());
                    let error = QuorumError::Corrupt { path: path.display().to_string(), position: None, reason };
                    if on_corruption == OnCorruption::Refuse {
                        return Err(error);
                    }
                    tracing::error!(%error, "ignoring a corrupt snapshot, as asked");
                }
            }
        }
        let snapshot_index = snapshot.as_ref().map(|s| s.index).unwrap_or(0);

        // A bad tail of the newest segment may be cut only if it holds no
        // committed entry; nothing is changed before that is decided.
        if let Some(&newest) = vltava_storage::segment_bases(dir)?.last() {
            let check = Segment::inspect(dir, newest)?;
            if check.valid_bytes < check.size {
                let path = dir.join(vltava_storage::segment_file_name(newest, "log"));
                let last = check.next_offset as u64;
                if hard_state.commit > last {
                    let error = QuorumError::Corrupt {
                        path: path.display().to_string(),
                        position: Some(check.valid_bytes),
                        reason: format!(
                            "a bad batch at entry {}, before the committed entry {}",
                            last + 1,
                            hard_state.commit
                        ),
                    };
                    if on_corruption == OnCorruption::Refuse {
                        return Err(error);
                    }
                    tracing::error!(%error, "cutting the corrupt metadata log, as asked");
                }
                tracing::warn!(path = %path.display(), kept_bytes = check.valid_bytes, dropped_bytes = check.size - check.valid_bytes, "cutting a torn tail of the metadata log");
                let file = fs::OpenOptions::new().write(true).open(&path).map_err(|e| QuorumError::io(&path, e))?;
                file.set_len(check.valid_bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| QuorumError::io(&path, e))?;
            }
        }
        let log_dir = LogDir::new(dir);
        let mut log = Log::open_in(&log_dir, dir, config, Recovery::None)?;
        let mut entries = VecDeque::new();
        if let Some(imported) = legacy_entries {
            let mut out = Vec::new();
            for e in &imported {
                out.extend_from_slice(&entry_batch(e));
            }
            if !out.is_empty() {
                log.append_assigned(&out)?;
                flush(&mut log)?;
            }
            legacy::retire(dir, legacy::JSON_LOG_FILE)?;
            tracing::info!(entries = imported.len(), "imported the metadata log of the previous release");
        } else if log.log_end_offset() == 0 && snapshot.is_none() {
            if let Some(records) = legacy::read_pre_raft_log(dir)? {
                if voters.len() != 1 {
                    return Err(QuorumError::Legacy(format!(
                        "{} was written by a single vltava node before the metadata quorum; start this data dir \
                         once as a single node (without controller.quorum.voters) to convert it",
                        dir.join(legacy::PRE_RAFT_LOG_FILE).display()
                    )));
                }
                let entry = Entry {
                    term: 1,
                    index: 1,
                    data: EntryData { id: 1, records }.encode().into(),
                    ..Default::default()
                };
                log.append_assigned(&entry_batch(&entry))?;
                flush(&mut log)?;
                hard_state = HardState { term: 1, vote: voters[0], commit: 1, ..Default::default() };
                write_state(dir, &hard_state)?;
                legacy::retire(dir, legacy::PRE_RAFT_LOG_FILE)?;
                tracing::info!("imported the pre-Raft metadata log");
            }
        }

        // The entries after the snapshot, each checked.
        let start = (snapshot_index as i64).max(log.log_start_offset());
        if snapshot.is_some() && log.log_start_offset() > snapshot_index as i64 && log.log_end_offset() > start {
            return Err(QuorumError::Corrupt {
                path: dir.display().to_string(),
                position: None,
                reason: format!(
                    "the log starts at entry {}, after the snapshot at {snapshot_index}",
                    log.log_start_offset() + 1
                ),
            });
        }
        let mut offset = start;
        let mut bad = None;
        'read: while offset < log.log_end_offset() {
            let Some(slice) = log.read(offset, READ_CHUNK_BYTES)? else { break };
            let bytes = slice.read()?;
            let mut progressed = false;
            for item in Batches::new(&bytes) {
                let Ok((_, batch)) = item else { break };
                match batch_entry(batch) {
                    // terms never go back along a Raft log (the term lies
                    // outside the batch CRC: this catches some damage to it)
                    Ok(entry) if entries.back().is_some_and(|prev: &Entry| prev.term > entry.term) => {
                        bad = Some(format!("entry {} has an older term than the entry before it", entry.index));
                        break 'read;
                    }
                    Ok(entry) if entry.index == offset as u64 + 1 => {
                        offset += 1;
                        entries.push_back(entry);
                        progressed = true;
                    }
                    Ok(entry) if entry.index <= offset as u64 => continue,
                    Ok(entry) => {
                        bad = Some(format!("entry {} follows entry {offset}", entry.index));
                        break 'read;
                    }
                    Err(reason) => {
                        bad = Some(reason);
                        break 'read;
                    }
                }
            }
            if !progressed {
                bad = Some("an unreadable batch".into());
                break;
            }
        }
        let last = entries.back().map(|e| e.index).unwrap_or(snapshot_index.max(start as u64));
        let missing_committed = hard_state.commit > last;
        if bad.is_some() || missing_committed {
            let reason = bad.unwrap_or_else(|| {
                format!("the log ends at entry {last}, before the committed entry {}", hard_state.commit)
            });
            let error = QuorumError::Corrupt {
                path: dir.display().to_string(),
                position: None,
                reason: format!("{reason} (at entry {})", offset + 1),
            };
            if on_corruption == OnCorruption::Refuse {
                return Err(error);
            }
            tracing::error!(%error, "cutting the corrupt metadata log, as asked");
            log.truncate_to(offset)?;
            hard_state.commit = hard_state.commit.min(last);
        }
        let conf_state = match &snapshot {
            Some(s) => ConfState::from((s.voters.clone(), s.learners.clone())),
            None => ConfState::from((voters.to_vec(), vec![])),
        };
        let endpoints = snapshot.as_ref().map(|s| s.endpoints.clone()).unwrap_or_default();
        let mut snap = Snapshot::default();
        if let Some(s) = &snapshot {
            let bytes =
                fs::read(dir.join(snapshot::file_name(s.index, s.term))).map_err(|e| QuorumError::io(dir, e))?;
            snap.data = bytes.into();
            let meta = snap.mut_metadata();
            meta.index = s.index;
            meta.term = s.term;
            meta.set_conf_state(conf_state.clone());
            hard_state.commit = hard_state.commit.max(s.index);
        }
        let committed: Vec<Entry> = entries.iter().filter(|e| e.index <= hard_state.commit).cloned().collect();
        let core = Core { hard_state, conf_state, endpoints, snapshot: snap, entries };
        let this = Self {
            dir: dir.to_path_buf(),
            log,
            core: LogStorage(Arc::new(RwLock::new(core))),
            bytes_since_snapshot: 0,
        };
        Ok((this, Recovered { snapshot, committed }))
    }

    /// The storage to give raft-rs.
    pub fn storage(&self) -> LogStorage {
        self.core.clone()
    }

    /// The membership as of the last applied entry, with its endpoints.
    pub fn membership(&self) -> (ConfState, BTreeMap<u64, String>) {
        let core = self.core.0.read();
        (core.conf_state.clone(), core.endpoints.clone())
    }

    /// Records the membership after an applied change (in memory: the
    /// change itself is in the log, and the next snapshot records it).
    pub fn set_membership(&mut self, conf_state: ConfState, endpoints: BTreeMap<u64, String>) {
        let mut core = self.core.0.write();
        core.conf_state = conf_state;
        core.endpoints = endpoints;
    }

    pub fn hard_state(&self) -> HardState {
        self.core.0.read().hard_state.clone()
    }

    pub fn first_index(&self) -> u64 {
        self.core.0.read().first_index()
    }

    pub fn last_index(&self) -> u64 {
        self.core.0.read().last_index()
    }

    /// Index of the newest snapshot (0: none).
    pub fn snapshot_index(&self) -> u64 {
        self.core.0.read().snapshot.get_metadata().index
    }

    /// Bytes of entries appended since the last snapshot.
    pub fn bytes_since_snapshot(&self) -> u64 {
        self.bytes_since_snapshot
    }

    /// Persists new entries (fsynced); an entry at an index already held
    /// replaces it and everything after it (a new leader's log wins).
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), QuorumError> {
        let Some(first) = entries.first() else { return Ok(()) };
        let last = self.last_index();
        if first.index <= last {
            self.log.truncate_to(first.index as i64 - 1)?;
            vltava_storage::atomic_file::sync_dir(&self.dir)?;
            let mut core = self.core.0.write();
            let keep = first.index.saturating_sub(core.first_index()) as usize;
            core.entries.truncate(keep);
        }
        let mut out = Vec::new();
        for e in entries {
            out.extend_from_slice(&entry_batch(e));
        }
        self.log.append_assigned(&out)?;
        flush(&mut self.log)?;
        self.bytes_since_snapshot += out.len() as u64;
        self.core.0.write().entries.extend(entries.iter().cloned());
        Ok(())
    }

    /// Persists the hard state (atomically).
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), QuorumError> {
        self.core.0.write().hard_state = hs.clone();
        write_state(&self.dir, hs)
    }

    pub fn set_commit(&mut self, commit: u64) -> Result<(), QuorumError> {
        let hs = {
            let mut core = self.core.0.write();
            core.hard_state.commit = commit;
            core.hard_state.clone()
        };
        write_state(&self.dir, &hs)
    }

    /// Writes a snapshot of `content` (the image after entry
    /// `content.index`) and drops what it makes unnecessary: the in-memory
    /// entries up to it, the segments wholly below it, older snapshots.
    pub fn take_snapshot(&mut self, content: &SnapshotContent) -> Result<(), QuorumError> {
        let bytes = content.encode();
        let path = self.dir.join(snapshot::file_name(content.index, content.term));
        vltava_storage::atomic_file::write_atomically(&path, &bytes)?;
        {
            let mut core = self.core.0.write();
            let mut snap = Snapshot { data: bytes.into(), ..Default::default() };
            let meta: &mut SnapshotMetadata = snap.mut_metadata();
            meta.index = content.index;
            meta.term = content.term;
            meta.set_conf_state(core.conf_state.clone());
            let drop = (content.index + 1).saturating_sub(core.first_index()) as usize;
            let drop = drop.min(core.entries.len());
            core.entries.drain(..drop);
            core.snapshot = snap;
        }
        self.log.delete_records_before(content.index as i64)?;
        self.bytes_since_snapshot = 0;
        self.delete_old_snapshots();
        tracing::info!(index = content.index, term = content.term, "wrote a metadata snapshot");
        Ok(())
    }

    /// A snapshot received from the leader: written, then the log starts
    /// after it. Returns its content.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<SnapshotContent, QuorumError> {
        let meta = snapshot.get_metadata();
        let content = SnapshotContent::decode(snapshot.get_data()).map_err(|reason| QuorumError::Corrupt {
            path: "a snapshot from the leader".into(),
            position: None,
            reason,
        })?;
        if content.index != meta.index || content.term != meta.term {
            return Err(QuorumError::Corrupt {
                path: "a snapshot from the leader".into(),
                position: None,
                reason: "its content does not match its metadata".into(),
            });
        }
        let path = self.dir.join(snapshot::file_name(meta.index, meta.term));
        vltava_storage::atomic_file::write_atomically(&path, snapshot.get_data())?;
        let index = meta.index as i64;
        if index > self.log.log_end_offset() {
            self.log.reset_to(index)?;
        } else {
            self.log.truncate_to(index)?;
            self.log.delete_records_before(index)?;
        }
        vltava_storage::atomic_file::sync_dir(&self.dir)?;
        let hs = {
            let mut core = self.core.0.write();
            core.entries.clear();
            core.snapshot = snapshot.clone();
            core.conf_state = meta.get_conf_state().clone();
            if !content.endpoints.is_empty() {
                core.endpoints = content.endpoints.clone();
            }
            core.hard_state.commit = meta.index;
            core.hard_state.term = core.hard_state.term.max(meta.term);
            core.hard_state.clone()
        };
        write_state(&self.dir, &hs)?;
        self.bytes_since_snapshot = 0;
        self.delete_old_snapshots();
        tracing::info!(index = meta.index, term = meta.term, "installed a metadata snapshot from the leader");
        Ok(content)
    }

    fn delete_old_snapshots(&self) {
        let all = snapshot::list(&self.dir);
        for (_, _, path) in all.iter().take(all.len().saturating_sub(SNAPSHOTS_KEPT)) {
            if let Err(e) = fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete an old metadata snapshot");
            }
        }
    }

    /// The content of a snapshot of `image` after entry `index`.
    pub fn snapshot_content(&self, index: u64, image: &MetadataImage, applied: &AppliedIds) -> SnapshotContent {
        let core = self.core.0.read();
        let term = if index == core.snapshot.get_metadata().index {
            core.snapshot.get_metadata().term
        } else {
            core.entries.get((index - core.first_index()) as usize).map(|e| e.term).unwrap_or(core.hard_state.term)
        };
        SnapshotContent {
            index,
            term,
            voters: core.conf_state.voters.clone(),
            learners: core.conf_state.learners.clone(),
            endpoints: core.endpoints.clone(),
            image: image.clone(),
            applied: applied.clone(),
        }
    }

    /// Files of the log on disk (segments and snapshots), for tests.
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }
}

/// Fsyncs everything appended (rolled segments and new files included).
fn flush(log: &mut Log) -> Result<(), QuorumError> {
    let target = log.flush_target()?;
    target.sync()?;
    log.flushed(&target);
    Ok(())
}

fn write_state(dir: &Path, hs: &HardState) -> Result<(), QuorumError> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let bytes = hs.write_to_bytes().map_err(|e| QuorumError::io(&path, std::io::Error::other(e)))?;
    let mut body = format!("{:08x} ", crc32c::crc32c(&bytes)).into_bytes();
    body.extend_from_slice(&bytes);
    let mut f = File::create(&tmp).map_err(|e| QuorumError::io(&tmp, e))?;
    f.write_all(&body).map_err(|e| QuorumError::io(&tmp, e))?;
    f.sync_data().map_err(|e| QuorumError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| QuorumError::io(&path, e))?;
    vltava_storage::atomic_file::sync_dir(dir).map_err(QuorumError::Storage)
}

/// The persisted hard state; none yet is term 0. A file that fails its
/// checksum is refused: forgetting a vote or the commit index is unsafe.
fn load_state(path: &Path) -> Result<HardState, QuorumError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HardState::default()),
        Err(e) => return Err(QuorumError::io(path, e)),
    };
    let parsed = (|| {
        let crc = u32::from_str_radix(std::str::from_utf8(bytes.get(..8)?).ok()?, 16).ok()?;
        let body = bytes.get(9..)?;
        (crc32c::crc32c(body) == crc).then(|| HardState::parse_from_bytes(body).ok())?
    })();
    parsed.ok_or_else(|| QuorumError::Corrupt {
        path: path.display().to_string(),
        position: None,
        reason: "the Raft hard state (term, vote, commit) fails its checksum".into(),
    })
}

#[cfg(test)]
mod tests {
    use raft::Storage as _;
    use vltava_metadata::MetadataRecord;

    use super::*;
    use crate::legacy::tests::{json_entry, json_line};

    fn entry(term: u64, index: u64, data: &[u8]) -> Entry {
        Entry { term, index, data: data.to_vec().into(), ..Default::default() }
    }

    fn open(dir: &Path) -> Result<(MetadataLog, Recovered), QuorumError> {
        MetadataLog::open(dir, &[1], &LogSettings { segment_bytes: 4096 }, OnCorruption::Refuse)
    }

    #[test]
    fn entries_survive_a_restart_and_a_new_leader_rewrites_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, rec) = open(dir.path()).unwrap();
            assert!(rec.committed.is_empty() && rec.snapshot.is_none());
            log.append(&[entry(1, 1, b"a"), entry(1, 2, b"b"), entry(1, 3, b"c")]).unwrap();
            log.append(&[entry(2, 2, b"B")]).unwrap();
            log.set_hard_state(&HardState { term: 2, vote: 1, commit: 2, ..Default::default() }).unwrap();
        }
        let (log, rec) = open(dir.path()).unwrap();
        let data: Vec<_> = rec.committed.iter().map(|e| (e.term, e.data.to_vec())).collect();
        assert_eq!(data, vec![(1, b"a".to_vec()), (2, b"B".to_vec())]);
        assert_eq!(log.storage().last_index().unwrap(), 2, "the overwritten entry 3 is gone");
        assert_eq!(log.storage().term(2).unwrap(), 2);
    }

    #[test]
    fn snapshots_bound_the_log_and_a_start_reads_only_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let payload = vec![7u8; 300];
        {
            let (mut log, _) = open(dir.path()).unwrap();
            for i in 1..=200 {
                log.append(&[entry(1, i, &payload)]).unwrap();
            }
            log.set_hard_state(&HardState { term: 1, vote: 1, commit: 200, ..Default::default() }).unwrap();
            let before = log.segment_count();
            assert!(before > 10);
            let content = log.snapshot_content(150, &MetadataImage::default(), &AppliedIds::from_ids([9]));
            log.take_snapshot(&content).unwrap();
            assert!(log.segment_count() * 2 < before, "segments below the snapshot deleted: {}", log.segment_count());
            assert_eq!(log.storage().first_index().unwrap(), 151);
            assert!(matches!(
                log.storage().entries(100, 120, None, GetEntriesContext::empty(false)),
                Err(raft::Error::Store(RaftStorageError::Compacted))
            ));
            assert_eq!(log.storage().snapshot(0, 2).unwrap().get_metadata().index, 150);
        }
        let (log, rec) = open(dir.path()).unwrap();
        let snap = rec.snapshot.expect("the snapshot");
        assert_eq!((snap.index, snap.term), (150, 1));
        assert_eq!(rec.committed.first().map(|e| e.index), Some(151));
        assert_eq!(rec.committed.len(), 50);
        assert_eq!(log.storage().term(150).unwrap(), 1);
    }

    #[test]
    fn a_bad_committed_entry_is_refused_and_an_uncommitted_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = open(dir.path()).unwrap();
            for i in 1..=5 {
                log.append(&[entry(1, i, b"0123456789")]).unwrap();
            }
            log.set_hard_state(&HardState { term: 1, vote: 1, commit: 4, ..Default::default() }).unwrap();
        }
        let segment = dir.path().join(vltava_storage::segment_file_name(0, "log"));
        let good = fs::read(&segment).unwrap();
        // a torn last entry (not committed) is cut
        fs::write(&segment, &good[..good.len() - 3]).unwrap();
        let (log, rec) = open(dir.path()).unwrap();
        assert_eq!((rec.committed.len(), log.last_index()), (4, 4));
        drop(log);
        // a flipped byte in a committed entry is refused, and nothing is cut
        let mut bad = fs::read(&segment).unwrap();
        let middle = bad.len() / 2;
        bad[middle] ^= 0x01;
        fs::write(&segment, &bad).unwrap();
        let error = open(dir.path()).err().expect("refused").to_string();
        assert!(error.contains("corrupt"), "{error}");
        assert_eq!(fs::read(&segment).unwrap(), bad);
        let (_, rec) =
            MetadataLog::open(dir.path(), &[1], &LogSettings { segment_bytes: 4096 }, OnCorruption::Truncate).unwrap();
        assert!(rec.committed.len() < 4);
    }

    #[test]
    fn the_previous_releases_logs_are_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let records = vec![MetadataRecord::ClusterId { cluster_id: "c".into() }];
        let text = json_line(1, 1, &json_entry(5, &records)) + &json_line(1, 2, "");
        fs::write(dir.path().join(legacy::JSON_LOG_FILE), text).unwrap();
        write_state(dir.path(), &HardState { term: 1, vote: 1, commit: 2, ..Default::default() }).unwrap();
        let (_, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.committed.len(), 2);
        let data = EntryData::decode(&rec.committed[0].data).unwrap().unwrap();
        assert_eq!((data.id, &data.records), (5, &records));
        assert!(dir.path().join("raft.log.imported").exists());
        let (_, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.committed.len(), 2, "nothing imported twice");

        // a single node's pre-Raft log becomes the first committed entry
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::to_string(&records).unwrap();
        fs::write(
            dir.path().join(legacy::PRE_RAFT_LOG_FILE),
            format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes())),
        )
        .unwrap();
        assert!(matches!(
            MetadataLog::open(dir.path(), &[1, 2, 3], &LogSettings::default(), OnCorruption::Refuse),
            Err(QuorumError::Legacy(_))
        ));
        let (log, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.committed.len(), 1);
        assert_eq!(log.hard_state().commit, 1);
        assert!(!dir.path().join(legacy::PRE_RAFT_LOG_FILE).exists());
    }
}
