//! A typed session store: aggregates by (key, session window). Byte layout
//! of a key: `[key length: u32 BE][key][session end][session start]` (both
//! order-preserving 8 bytes), so a key's sessions are contiguous and sorted
//! by end. Sessions that ended more than the retention before the newest
//! session end put are expired.

use std::ops::Bound;
use std::sync::Arc;

use super::encoding::{key_prefix, read_ts, split_key, ts};
use super::window::{expire, Window, Windowed};
use super::SharedStore;
use crate::error::{Result, StreamsError};
use crate::serde::SerdeRef;
use crate::Data;

pub struct SessionStore<K, V> {
    store: SharedStore,
    topic: Arc<str>,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
    retention_ms: i64,
}

impl<K, V> Clone for SessionStore<K, V> {
    fn clone(&self) -> Self {
        SessionStore {
            store: self.store.clone(),
            topic: self.topic.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            retention_ms: self.retention_ms,
        }
    }
}

fn entry_key(prefix: &[u8], w: &Window) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&ts(w.end_ms));
    k.extend_from_slice(&ts(w.start_ms));
    k
}

impl<K: Data, V: Data> SessionStore<K, V> {
    pub(crate) fn new(
        store: SharedStore,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
        retention_ms: i64,
    ) -> Self {
        SessionStore { store, topic: topic.into(), key_serde, value_serde, retention_ms }
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

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<(Windowed<K>, V)> {
        let (key, rest) = split_key(k).ok_or_else(|| StreamsError::store(&self.topic, "a malformed session key"))?;
        if rest.len() < 16 {
            return Err(StreamsError::store(&self.topic, "a malformed session key"));
        }
        let window = Window { end_ms: read_ts(rest), start_ms: read_ts(&rest[8..]) };
        Ok((
            Windowed { key: self.key_serde.deserialize(&self.topic, Some(key))?, window },
            self.value_serde.deserialize(&self.topic, Some(v))?,
        ))
    }

    /// Puts the aggregate of a session (a session ended past the retention is dropped).
    pub fn put(&self, session: &Windowed<K>, value: &V) -> Result<()> {
        let k = entry_key(&self.prefix(&session.key)?, &session.window);
        let v = self.value_serde.serialize(&self.topic, value)?;
        let mut s = self.store.lock();
        let cutoff =
            if s.observed_time == i64::MIN { i64::MIN } else { s.observed_time.saturating_sub(self.retention_ms) };
        if session.window.end_ms < cutoff {
            return Ok(());
        }
        s.put(&k, v.as_deref())?;
        if session.window.end_ms > s.observed_time {
            let step = (self.retention_ms / 10).max(1);
            let old = s.observed_time;
            s.observed_time = session.window.end_ms;
            if old == i64::MIN || session.window.end_ms - old >= step {
                let cutoff = session.window.end_ms.saturating_sub(self.retention_ms);
                expire(&mut s, cutoff, |rest| (rest.len() >= 16).then(|| read_ts(rest)))?;
            }
        }
        Ok(())
    }

    pub fn remove(&self, session: &Windowed<K>) -> Result<()> {
        let k = entry_key(&self.prefix(&session.key)?, &session.window);
        self.store.lock().put(&k, None)
    }

    /// The aggregate of exactly this session.
    pub fn fetch_session(&self, key: &K, start_ms: i64, end_ms: i64) -> Result<Option<V>> {
        let k = entry_key(&self.prefix(key)?, &Window { start_ms, end_ms });
        match self.store.lock().get(&k)? {
            Some(v) => Ok(Some(self.value_serde.deserialize(&self.topic, Some(&v))?)),
            None => Ok(None),
        }
    }

    /// `key`'s sessions that end at or after `earliest_end` and start at or
    /// before `latest_start` (the sessions a record at a time may merge with).
    pub fn find_sessions(&self, key: &K, earliest_end: i64, latest_start: i64) -> Result<Vec<(Windowed<K>, V)>> {
        let prefix = self.prefix(key)?;
        let from = entry_key(&prefix, &Window { start_ms: i64::MIN, end_ms: earliest_end });
        let mut to = prefix.clone();
        to.extend_from_slice(&[0xff; 16]);
        let rows = self.store.lock().range(Bound::Included(&from), Bound::Included(&to))?;
        let mut out = Vec::new();
        for (k, v) in &rows {
            let (w, v) = self.decode(k, v)?;
            if w.window.start_ms <= latest_start {
                out.push((w, v));
            }
        }
        Ok(out)
    }

    /// Every session of `key`.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>> {
        self.find_sessions(key, i64::MIN, i64::MAX)
    }

    /// Every session of every key.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        let rows = self.store.lock().range(Bound::Unbounded, Bound::Unbounded)?;
        rows.iter().map(|(k, v)| self.decode(k, v)).collect()
    }
}
