//! A typed window store: values by (key, window start). Byte layout of a
//! key: `[key length: u32 BE][key][window start: 8 bytes, order-preserving]
//! [sequence number: u32 BE]`, so one key's windows are contiguous and in
//! time order. With duplicates retained (stream-stream joins), the sequence
//! number is one past the largest the key already has in that window, so a
//! key's values in one window are kept in put order, across restarts and
//! restorations too. Windows that end up more than the retention behind the
//! newest window start put are expired (dropped locally; the changelog's
//! `retention.ms` drops them there).

use std::ops::Bound;
use std::sync::Arc;

use super::encoding::{key_prefix, read_ts, split_key, ts};
use super::SharedStore;
use crate::error::{Result, StreamsError};
use crate::serde::SerdeRef;
use crate::Data;

/// A time window `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A key with the window it belongs to (windowed aggregations' keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    pub key: K,
    pub window: Window,
}

pub struct WindowStore<K, V> {
    store: SharedStore,
    topic: Arc<str>,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
    size_ms: i64,
    retention_ms: i64,
    retain_duplicates: bool,
}

impl<K, V> Clone for WindowStore<K, V> {
    fn clone(&self) -> Self {
        WindowStore {
            store: self.store.clone(),
            topic: self.topic.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            size_ms: self.size_ms,
            retention_ms: self.retention_ms,
            retain_duplicates: self.retain_duplicates,
        }
    }
}

/// What follows a key's prefix: window start (8 bytes) and sequence number (4).
const SUFFIX_LEN: usize = 12;

fn entry_key(prefix: &[u8], start: i64, seq: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&ts(start));
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

impl<K: Data, V: Data> WindowStore<K, V> {
    pub(crate) fn new(
        store: SharedStore,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
        size_ms: i64,
        retention_ms: i64,
        retain_duplicates: bool,
    ) -> Self {
        WindowStore { store, topic: topic.into(), key_serde, value_serde, size_ms, retention_ms, retain_duplicates }
    }

    pub fn window_size_ms(&self) -> i64 {
        self.size_ms
    }

    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }

    fn prefix(&self, key: &K) -> Result<Vec<u8>> {
        let k = self
            .key_serde
            .serialize(&self.topic, key)?
            .ok_or_else(|| StreamsError::serde(&self.topic, "a store key serialized to null"))?;
        Ok(key_prefix(&k))
    }

    fn decode_entry(&self, k: &[u8], v: &[u8]) -> Result<(Windowed<K>, V)> {
        let (key, rest) = split_key(k).ok_or_else(|| self.malformed())?;
        let start = self.window_start(rest)?;
        let key = self.key_serde.deserialize(&self.topic, Some(key))?;
        let value = self.value_serde.deserialize(&self.topic, Some(v))?;
        Ok((Windowed { key, window: Window { start_ms: start, end_ms: start.saturating_add(self.size_ms) } }, value))
    }

    /// The window start of what follows a key's prefix (bytes from disk or a
    /// changelog: one too short for the layout is an error, not a panic).
    fn window_start(&self, rest: &[u8]) -> Result<i64> {
        if rest.len() < SUFFIX_LEN {
            return Err(self.malformed());
        }
        Ok(read_ts(rest))
    }

    fn malformed(&self) -> StreamsError {
        StreamsError::store(&self.topic, "a malformed window key (shorter than key, start and sequence number)")
    }

    /// The oldest window start still kept.
    fn cutoff(observed: i64, retention_ms: i64) -> i64 {
        if observed == i64::MIN {
            i64::MIN
        } else {
            observed.saturating_sub(retention_ms).saturating_add(1)
        }
    }

    /// Puts `value` for `key` in the window starting at `window_start`
    /// (`None` deletes; with duplicates retained, `None` is ignored). A
    /// window already past the retention is dropped, as Kafka does.
    pub fn put(&self, key: &K, value: Option<&V>, window_start: i64) -> Result<()> {
        let prefix = self.prefix(key)?;
        let mut s = self.store.lock();
        if window_start < Self::cutoff(s.observed_time, self.retention_ms) {
            return Ok(());
        }
        if self.retain_duplicates && value.is_none() {
            return Ok(());
        }
        // with duplicates: one past the largest sequence number this key and window already
        // have in the store (so a new handle, after a restart or a restoration, never
        // overwrites a restored duplicate), in put order
        let seq = if self.retain_duplicates {
            let (from, to) = (entry_key(&prefix, window_start, 0), entry_key(&prefix, window_start, u32::MAX));
            match s.range(Bound::Included(&from), Bound::Included(&to))?.last() {
                Some((k, _)) => {
                    let last = k
                        .get(k.len().saturating_sub(4)..)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(u32::from_be_bytes)
                        .ok_or_else(|| self.malformed())?;
                    last.checked_add(1).ok_or_else(|| {
                        StreamsError::store(&self.topic, "more than 2^32 duplicates of one key in one window")
                    })?
                }
                None => 0,
            }
        } else {
            0
        };
        let k = entry_key(&prefix, window_start, seq);
        let v = match value {
            Some(v) => self.value_serde.serialize(&self.topic, v)?,
            None => None,
        };
        s.put(&k, v.as_deref())?;
        if window_start > s.observed_time {
            let old_cutoff = Self::cutoff(s.observed_time, self.retention_ms);
            s.observed_time = window_start;
            let new_cutoff = Self::cutoff(window_start, self.retention_ms);
            // expire in steps of a tenth of the retention, not at every put
            if old_cutoff == i64::MIN || new_cutoff - old_cutoff >= (self.retention_ms / 10).max(1) {
                expire(&mut s, new_cutoff, |rest| (rest.len() >= 8).then(|| read_ts(rest)))?;
            } else {
                s.observed_time = window_start;
            }
        }
        Ok(())
    }

    /// The value of `key` in the window starting at `window_start` (the
    /// first, if duplicates are retained).
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>> {
        let prefix = self.prefix(key)?;
        let (from, to) = (entry_key(&prefix, window_start, 0), entry_key(&prefix, window_start, u32::MAX));
        let rows = self.store.lock().range(Bound::Included(&from), Bound::Included(&to))?;
        match rows.first() {
            Some((_, v)) => Ok(Some(self.value_serde.deserialize(&self.topic, Some(v))?)),
            None => Ok(None),
        }
    }

    /// `key`'s windows starting in `[time_from, time_to]`, oldest first.
    pub fn fetch_range(&self, key: &K, time_from: i64, time_to: i64) -> Result<Vec<(i64, V)>> {
        let prefix = self.prefix(key)?;
        let (from, to) = (entry_key(&prefix, time_from, 0), entry_key(&prefix, time_to, u32::MAX));
        let rows = self.store.lock().range(Bound::Included(&from), Bound::Included(&to))?;
        rows.iter()
            .map(|(k, v)| {
                let start = self.window_start(k.get(prefix.len()..).unwrap_or_default())?;
                Ok((start, self.value_serde.deserialize(&self.topic, Some(v))?))
            })
            .collect()
    }

    /// Every key's windows starting in `[time_from, time_to]`.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        let rows = self.store.lock().range(Bound::Unbounded, Bound::Unbounded)?;
        let mut out = Vec::new();
        for (k, v) in &rows {
            let (w, v) = self.decode_entry(k, v)?;
            if w.window.start_ms >= time_from && w.window.start_ms <= time_to {
                out.push((w, v));
            }
        }
        Ok(out)
    }

    /// Everything, by key then window start.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        self.fetch_all(i64::MIN, i64::MAX)
    }
}

/// Deletes (unlogged) the entries whose time, read by `time_of` from the part
/// after the key, is below `cutoff`.
pub(crate) fn expire(s: &mut super::StoreInstance, cutoff: i64, time_of: impl Fn(&[u8]) -> Option<i64>) -> Result<()> {
    let rows = s.range(Bound::Unbounded, Bound::Unbounded)?;
    for (k, _) in rows {
        if let Some((_, rest)) = split_key(&k) {
            if time_of(rest).is_some_and(|t| t < cutoff) {
                s.put_unlogged(&k, None)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Serdes;
    use crate::state::memory::MemoryStore;
    use crate::state::StoreInstance;

    fn handle(store: &SharedStore, dups: bool) -> WindowStore<String, String> {
        WindowStore::new(store.clone(), "join-store", Serdes::string(), Serdes::string(), 10, 1000, dups)
    }

    #[test]
    fn a_malformed_key_from_a_changelog_is_an_error_not_a_panic() {
        let store = StoreInstance::new("w", Box::new(MemoryStore::default()), None).shared();
        let w = handle(&store, false);
        // a restored record whose key has the prefix of "k" and a start time (5) but no sequence number
        let mut bad = crate::state::encoding::key_prefix(b"k");
        bad.extend_from_slice(&crate::state::encoding::ts(5));
        store.lock().restore(&[(bad, Some(b"v".to_vec()))]).unwrap();
        assert!(w.fetch_range(&"k".to_string(), 0, 100).is_err());
        assert!(w.all().is_err());
    }

    #[test]
    fn duplicates_survive_a_new_handle_in_put_order() {
        let store = StoreInstance::new("join-store", Box::new(MemoryStore::default()), None).shared();
        let w = handle(&store, true);
        let k = "k".to_string();
        w.put(&k, Some(&"a".to_string()), 100).unwrap();
        w.put(&k, Some(&"b".to_string()), 100).unwrap();
        w.put(&"other".to_string(), Some(&"x".to_string()), 100).unwrap();
        w.put(&k, None, 100).unwrap(); // ignored with duplicates
                                       // a restart: a new handle over the same (restored) bytes
        let w2 = handle(&store, true);
        w2.put(&k, Some(&"c".to_string()), 100).unwrap();
        w2.put(&k, Some(&"d".to_string()), 110).unwrap();
        let got = w2.fetch_range(&k, 0, 200).unwrap();
        let expected: Vec<(i64, String)> =
            [(100, "a"), (100, "b"), (100, "c"), (110, "d")].iter().map(|(t, v)| (*t, v.to_string())).collect();
        assert_eq!(got, expected);
        assert_eq!(w2.fetch(&k, 100).unwrap(), Some("a".to_string()));

        // without duplicates: one value per key and window, overwritten
        let plain_store = StoreInstance::new("counts", Box::new(MemoryStore::default()), None).shared();
        let p = handle(&plain_store, false);
        p.put(&k, Some(&"a".to_string()), 100).unwrap();
        handle(&plain_store, false).put(&k, Some(&"b".to_string()), 100).unwrap();
        assert_eq!(p.fetch_range(&k, 0, 200).unwrap(), vec![(100, "b".to_string())]);
        p.put(&k, None, 100).unwrap();
        assert_eq!(p.fetch(&k, 100).unwrap(), None);
    }
}
