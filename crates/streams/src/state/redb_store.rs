//! A persistent byte store in one redb file per task and store
//! (`<state.dir>/<application.id>/<task>/<store>.redb`, one table).
//!
//! Writes go to an in-memory write buffer (a sorted map of key -> value or
//! delete) that [`ByteStore::flush`] commits in ONE redb write transaction
//! with `Durability::Immediate`, so the file only ever holds the state as of
//! a flush (the runtime flushes before it writes a checkpoint naming the
//! changelog offset that state corresponds to). Reads and ranges merge the
//! buffer over the committed data: a range sees buffered puts and hides
//! buffered deletes, in key order.
//!
//! Restoration ([`ByteStore::put_all`]) bypasses the buffer: each batch is
//! one write transaction, committed without an fsync (`Durability::None`)
//! except every [`DURABLE_EVERY_BYTES`] and at the next `flush`, which makes
//! them all durable at once.
//!
//! Why redb: pure Rust (no C++ toolchain as RocksDB needs), ordered byte keys
//! with range scans (what window and session stores need), ACID commits with
//! copy-on-write pages, so a crash leaves the last committed state; and a
//! file that fails its checksums is reported at open, not trusted.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadOnlyTable, ReadableDatabase, ReadableTableMetadata, TableDefinition,
};

use super::ByteStore;
use crate::error::{Result, StreamsError};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("store");

/// Restoration commits without an fsync until this many bytes are written
/// since the last durable commit (then one durable commit releases the pages
/// the non-durable ones could not free).
pub const DURABLE_EVERY_BYTES: u64 = 256 << 20;

/// redb's page cache per store file (redb's default, 1 GiB, is too much with
/// one file per task and store).
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

pub struct RedbStore {
    name: String,
    path: PathBuf,
    db: Database,
    /// The committed table as of the last commit (a snapshot; renewed after each commit).
    reader: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
    /// Writes since the last flush: `None` deletes.
    buffer: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    committed_len: u64,
    /// Bytes committed with `Durability::None` since the last durable commit.
    not_durable_bytes: u64,
    not_durable: bool,
}

/// `<dir>/<store>.redb`.
pub fn store_path(name: &str, dir: &Path) -> PathBuf {
    dir.join(format!("{name}.redb"))
}

fn empty_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

impl RedbStore {
    /// Opens (creating it and `dir` if needed) `<dir>/<name>.redb`. A file
    /// that is not a redb database, or fails its integrity check, is an error
    /// naming the file.
    pub fn open(name: &str, dir: &Path) -> Result<RedbStore> {
        Self::open_with_cache(name, dir, DEFAULT_CACHE_BYTES)
    }

    pub fn open_with_cache(name: &str, dir: &Path, cache_bytes: usize) -> Result<RedbStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StreamsError::store(name, format!("cannot create the state directory {}: {e}", dir.display()))
        })?;
        let path = store_path(name, dir);
        let bad = |what: String| {
            StreamsError::store(
                name,
                format!(
                    "cannot open {}: {what} (if it is damaged, delete it: the store is restored from its changelog)",
                    path.display()
                ),
            )
        };
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let mut b = Database::builder();
            b.set_cache_size(cache_bytes).set_check_integrity_on_open(true);
            b.create(&path)
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(bad("it is open elsewhere (another task or process owns this store)".into()))
            }
            Ok(Err(e)) => return Err(bad(e.to_string())),
            Err(_) => return Err(bad("the file is corrupt (redb failed reading it)".into())),
        };
        let mut store = RedbStore {
            name: name.to_string(),
            path,
            db,
            reader: None,
            buffer: BTreeMap::new(),
            committed_len: 0,
            not_durable_bytes: 0,
            not_durable: false,
        };
        // create the table, so reads find it
        store.commit(&[], Durability::Immediate)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the store's file (a wiped task directory is restored from the
    /// changelog's beginning). Missing is fine.
    pub fn delete_file(name: &str, dir: &Path) -> Result<()> {
        match std::fs::remove_file(store_path(name, dir)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StreamsError::store(name, format!("cannot delete {}: {e}", dir.display()))),
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> StreamsError {
        StreamsError::store(&self.name, format!("{what} {}: {e}", self.path.display()))
    }

    /// Commits the write buffer, then `extra`, in one write transaction.
    fn commit(&mut self, extra: &[(Vec<u8>, Option<Vec<u8>>)], durability: Durability) -> Result<()> {
        // a live snapshot would keep the pages this commit frees
        self.reader = None;
        let mut tx = self.db.begin_write().map_err(|e| self.err("cannot write", e))?;
        tx.set_durability(durability).map_err(|e| self.err("cannot write", e))?;
        let mut bytes = 0u64;
        {
            let mut table = tx.open_table(TABLE).map_err(|e| self.err("cannot write", e))?;
            // a batch in key order (the last write of a key wins): B-tree inserts in
            // order touch each page once, where a changelog's order scatters them
            let mut order: Vec<usize> = (0..extra.len()).collect();
            order.sort_by(|a, b| extra[*a].0.cmp(&extra[*b].0));
            order.dedup_by(|later, earlier| {
                let same = extra[*later].0 == extra[*earlier].0;
                if same {
                    *earlier = (*earlier).max(*later);
                }
                same
            });
            let buffered = self.buffer.iter();
            for (k, v) in buffered.chain(order.iter().map(|i| (&extra[*i].0, &extra[*i].1))) {
                bytes += (k.len() + v.as_ref().map_or(0, Vec::len)) as u64;
                match v {
                    Some(v) => table.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                    None => table.remove(k.as_slice()).map(|_| ()),
                }
                .map_err(|e| self.err("cannot write", e))?;
            }
            self.committed_len = table.len().map_err(|e| self.err("cannot read", e))?;
        }
        tx.commit().map_err(|e| self.err("cannot commit to", e))?;
        self.buffer.clear();
        match durability {
            Durability::None => {
                self.not_durable = true;
                self.not_durable_bytes += bytes;
            }
            _ => {
                self.not_durable = false;
                self.not_durable_bytes = 0;
            }
        }
        self.refresh_reader()
    }

    fn refresh_reader(&mut self) -> Result<()> {
        let tx = self.db.begin_read().map_err(|e| self.err("cannot read", e))?;
        self.reader = Some(tx.open_table(TABLE).map_err(|e| self.err("cannot read", e))?);
        Ok(())
    }

    fn reader(&self) -> Result<&ReadOnlyTable<&'static [u8], &'static [u8]>> {
        self.reader.as_ref().ok_or_else(|| StreamsError::store(&self.name, "the store is closed"))
    }
}

impl ByteStore for RedbStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.buffer.get(key) {
            return Ok(v.clone());
        }
        let got = self.reader()?.get(key).map_err(|e| self.err("cannot read", e))?;
        Ok(got.map(|g| g.value().to_vec()))
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.buffer.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        Ok(())
    }

    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let durability =
            if self.not_durable_bytes >= DURABLE_EVERY_BYTES { Durability::Immediate } else { Durability::None };
        self.commit(entries, durability)
    }

    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if empty_range(from, to) {
            return Ok(Vec::new());
        }
        let mut buffered = self.buffer.range::<[u8], _>((from, to)).peekable();
        let mut committed = self.reader()?.range::<&[u8]>((from, to)).map_err(|e| self.err("cannot read", e))?;
        let mut out = Vec::new();
        let mut next_committed = || -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            match committed.next() {
                Some(Ok((k, v))) => Ok(Some((k.value().to_vec(), v.value().to_vec()))),
                Some(Err(e)) => Err(self.err("cannot read", e)),
                None => Ok(None),
            }
        };
        let mut c = next_committed()?;
        loop {
            // the smaller key first; on a tie the buffer wins (and the committed entry is skipped)
            let take_buffer = match (&c, buffered.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((ck, _)), Some((bk, _))) => bk.as_slice() <= ck.as_slice(),
            };
            if take_buffer {
                let Some((bk, bv)) = buffered.next() else { break };
                if c.as_ref().is_some_and(|(ck, _)| ck == bk) {
                    c = next_committed()?;
                }
                if let Some(v) = bv {
                    out.push((bk.clone(), v.clone()));
                }
            } else if let Some(entry) = c.take() {
                out.push(entry);
                c = next_committed()?;
            }
        }
        Ok(out)
    }

    /// Exact: the committed count, corrected by what the buffer adds and removes.
    fn approximate_len(&self) -> u64 {
        let Ok(reader) = self.reader() else { return self.committed_len };
        let (mut added, mut removed) = (0u64, 0u64);
        for (k, v) in &self.buffer {
            let committed = reader.get(k.as_slice()).map(|g| g.is_some()).unwrap_or(false);
            match (committed, v.is_some()) {
                (false, true) => added += 1,
                (true, false) => removed += 1,
                _ => {}
            }
        }
        (self.committed_len + added).saturating_sub(removed)
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() && !self.not_durable {
            return Ok(());
        }
        self.commit(&[], Durability::Immediate)
    }

    fn persistent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use proptest::prelude::*;

    use super::*;
    use crate::state::memory::MemoryStore;

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn all(s: &dyn ByteStore) -> Vec<(Vec<u8>, Vec<u8>)> {
        s.range(Bound::Unbounded, Bound::Unbounded).unwrap()
    }

    #[test]
    fn reads_merge_the_buffer_over_committed_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RedbStore::open("counts", dir.path()).unwrap();
        assert_eq!(s.path(), dir.path().join("counts.redb"));
        s.put(b"a", Some(b"1")).unwrap();
        s.put(b"c", Some(b"3")).unwrap();
        s.put(b"e", Some(b"5")).unwrap();
        s.flush().unwrap();
        s.put(b"b", Some(b"2")).unwrap(); // buffered put between committed keys
        s.put(b"c", None).unwrap(); // buffered delete of a committed key
        s.put(b"e", Some(b"55")).unwrap(); // buffered overwrite
        assert_eq!(s.get(b"c").unwrap(), None);
        assert_eq!(s.get(b"e").unwrap(), Some(b("55")));
        assert_eq!(s.get(b"a").unwrap(), Some(b("1")));
        assert_eq!(all(&s), vec![(b("a"), b("1")), (b("b"), b("2")), (b("e"), b("55"))]);
        assert_eq!(
            s.range(Bound::Excluded(b"a"), Bound::Included(b"e")).unwrap(),
            vec![(b("b"), b("2")), (b("e"), b("55"))]
        );
        assert_eq!(s.range(Bound::Included(b"e"), Bound::Excluded(b"b")).unwrap(), vec![]);
        assert_eq!(s.range(Bound::Excluded(b"b"), Bound::Excluded(b"b")).unwrap(), vec![]);
        assert_eq!(s.approximate_len(), 3);
        drop(s);
        // the buffer was not flushed: a reopen sees the last flush
        let mut s = RedbStore::open("counts", dir.path()).unwrap();
        assert_eq!(all(&s), vec![(b("a"), b("1")), (b("c"), b("3")), (b("e"), b("5"))]);
        s.put(b"c", None).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = RedbStore::open("counts", dir.path()).unwrap();
        assert_eq!(all(&s), vec![(b("a"), b("1")), (b("e"), b("5"))]);
        assert_eq!(s.approximate_len(), 2);
    }

    #[test]
    fn restoration_batches_are_durable_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RedbStore::open("t", dir.path()).unwrap();
        s.put(b"x", Some(b"buffered")).unwrap();
        let batch: Vec<_> = (0..1000u32).map(|i| (i.to_be_bytes().to_vec(), Some(vec![1u8; 10]))).collect();
        s.put_all(&batch).unwrap();
        s.put_all(&[(0u32.to_be_bytes().to_vec(), None), (b("x"), Some(b("restored")))]).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = RedbStore::open("t", dir.path()).unwrap();
        assert_eq!(s.approximate_len(), 1000);
        assert_eq!(s.get(&0u32.to_be_bytes()).unwrap(), None);
        assert_eq!(s.get(b"x").unwrap(), Some(b("restored")));
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path("broken", dir.path());
        std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
        let err = RedbStore::open("broken", dir.path()).err().expect("a corrupt file must not open");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("broken"), "{msg}");

        // a real store with damaged pages
        let mut s = RedbStore::open("damaged", dir.path()).unwrap();
        let batch: Vec<_> = (0..20_000u32).map(|i| (i.to_be_bytes().to_vec(), Some(vec![7u8; 100]))).collect();
        s.put_all(&batch).unwrap();
        s.flush().unwrap();
        drop(s);
        let path = store_path("damaged", dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for i in (len / 4..len).step_by(97) {
            bytes[i] ^= 0xa5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let err = RedbStore::open("damaged", dir.path()).err().expect("damaged pages must fail the integrity check");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn a_store_open_twice_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let _s = RedbStore::open("once", dir.path()).unwrap();
        let err = RedbStore::open("once", dir.path()).err().expect("second open must fail");
        assert!(err.to_string().contains("open elsewhere"), "{err}");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Put(Vec<u8>, Vec<u8>),
        Delete(Vec<u8>),
        Restore(Vec<(Vec<u8>, Option<Vec<u8>>)>),
        Flush,
        Reopen,
        Get(Vec<u8>),
        Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(0u8..4, 0..4)
    }

    fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
        prop_oneof![Just(Bound::Unbounded), key().prop_map(Bound::Included), key().prop_map(Bound::Excluded),]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (key(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::Put(k, v)),
            3 => key().prop_map(Op::Delete),
            1 => prop::collection::vec((key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..4))), 0..6)
                .prop_map(Op::Restore),
            1 => Just(Op::Flush),
            1 => Just(Op::Reopen),
            3 => key().prop_map(Op::Get),
            3 => (bound(), bound()).prop_map(|(a, b)| Op::Range(a, b)),
        ]
    }

    fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        match b {
            Bound::Included(k) => Bound::Included(k),
            Bound::Excluded(k) => Bound::Excluded(k),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn redb_store_behaves_as_the_memory_store(ops in prop::collection::vec(op(), 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            let mut mem = MemoryStore::default();
            let mut redb = RedbStore::open("prop", dir.path()).unwrap();
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        mem.put(&k, Some(&v)).unwrap();
                        redb.put(&k, Some(&v)).unwrap();
                    }
                    Op::Delete(k) => {
                        mem.put(&k, None).unwrap();
                        redb.put(&k, None).unwrap();
                    }
                    Op::Restore(batch) => {
                        mem.put_all(&batch).unwrap();
                        redb.put_all(&batch).unwrap();
                    }
                    Op::Flush => redb.flush().unwrap(),
                    Op::Reopen => {
                        redb.flush().unwrap();
                        drop(redb);
                        redb = RedbStore::open("prop", dir.path()).unwrap();
                    }
                    Op::Get(k) => prop_assert_eq!(redb.get(&k).unwrap(), mem.get(&k).unwrap()),
                    Op::Range(a, b) => {
                        let r = redb.range(as_ref(&a), as_ref(&b)).unwrap();
                        // MemoryStore panics on (Excluded(k), Excluded(k)) (BTreeMap::range does): see
                        // /work/notes/requests-state.md; such a range is empty
                        let m = if empty_range(as_ref(&a), as_ref(&b)) {
                            Vec::new()
                        } else {
                            mem.range(as_ref(&a), as_ref(&b)).unwrap()
                        };
                        prop_assert_eq!(r, m);
                    }
                }
                prop_assert_eq!(redb.approximate_len(), mem.approximate_len());
            }
            prop_assert_eq!(all(&redb), all(&mem));
            redb.flush().unwrap();
            drop(redb);
            let redb = RedbStore::open("prop", dir.path()).unwrap();
            prop_assert_eq!(all(&redb), all(&mem));
        }
    }
}
