//! State stores. Every store is, at the bottom, an ordered map of bytes
//! ([`ByteStore`]): in memory ([`memory`]) or on disk in a redb file
//! ([`redb_store`]). A [`StoreInstance`] wraps one for one task and, when
//! logging is on, records every write as a record for the store's changelog
//! topic (`<application.id>-<store>-changelog`, partition = the task's
//! partition), which the task sends after each input record; restoring
//! replays that changelog into the byte store unlogged.
//!
//! Typed handles turn keys and values into bytes with the store's serdes and
//! lay composite keys out so the byte order is the order queries need:
//! [`KeyValueStore`] (serialized key), [`WindowStore`] (key, window start,
//! sequence number) and [`SessionStore`] (key, session end, session start).
//! Ranges are over serialized bytes, as in Kafka Streams.

use std::any::Any;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Result;
use crate::record::{Headers, OutRecord};
use crate::serde::SerdeRef;
use crate::Data;

pub mod checkpoint;
pub mod key_value;
pub mod memory;
pub mod redb_store;
pub mod restore;
pub mod session;
pub mod window;

pub use key_value::KeyValueStore;
pub use session::SessionStore;
pub use window::{Window, WindowStore, Windowed};

/// An ordered map of byte keys to byte values.
pub trait ByteStore: Send {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// `None` deletes.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()>;
    /// Many writes at once (restoration): one transaction where that matters.
    fn put_all(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        for (k, v) in entries {
            self.put(k, v.as_deref())?;
        }
        Ok(())
    }
    /// Entries between the bounds, in key order.
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    fn approximate_len(&self) -> u64;
    /// Makes the writes so far durable (before a checkpoint names them).
    fn flush(&mut self) -> Result<()>;
    fn persistent(&self) -> bool;
}

/// Where a logged store's writes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangelogTarget {
    pub topic: String,
    pub partition: i32,
}

/// One task's instance of a store (see the module docs).
pub struct StoreInstance {
    pub name: String,
    inner: Box<dyn ByteStore>,
    changelog: Option<ChangelogTarget>,
    pending: Vec<OutRecord>,
    /// Timestamp of the record being processed: changelog records carry it.
    pub(crate) timestamp: i64,
    /// The largest timestamp written (window and session stores expire what
    /// falls behind it by more than their retention).
    pub(crate) observed_time: i64,
}

/// A store instance shared by the nodes of its task (and read by
/// interactive queries from other threads).
pub type SharedStore = Arc<Mutex<StoreInstance>>;

impl StoreInstance {
    pub fn new(name: &str, inner: Box<dyn ByteStore>, changelog: Option<ChangelogTarget>) -> Self {
        StoreInstance {
            name: name.to_string(),
            inner,
            changelog,
            pending: Vec::new(),
            timestamp: 0,
            observed_time: i64::MIN,
        }
    }

    pub fn shared(self) -> SharedStore {
        Arc::new(Mutex::new(self))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    /// Writes and, when logged, records the write for the changelog.
    pub fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.inner.put(key, value)?;
        if let Some(target) = &self.changelog {
            self.pending.push(OutRecord {
                topic: target.topic.clone(),
                partition: Some(target.partition),
                key: Some(key.to_vec()),
                value: value.map(<[u8]>::to_vec),
                timestamp: self.timestamp,
                headers: Headers::default(),
            });
        }
        Ok(())
    }

    /// Writes without logging (expiry of old windows: the changelog's own
    /// retention drops them there).
    pub fn put_unlogged(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.inner.put(key, value)
    }

    pub fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.range(from, to)
    }

    /// Replays changelog records (restoration): written unlogged.
    pub fn restore(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.inner.put_all(batch)
    }

    /// The changelog records written since the last call.
    pub fn take_changelog(&mut self) -> Vec<OutRecord> {
        std::mem::take(&mut self.pending)
    }

    pub fn changelog(&self) -> Option<&ChangelogTarget> {
        self.changelog.as_ref()
    }

    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    pub fn approximate_len(&self) -> u64 {
        self.inner.approximate_len()
    }

    pub fn persistent(&self) -> bool {
        self.inner.persistent()
    }
}

/// What kind of store, with its time parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    KeyValue,
    Window { size_ms: i64, retention_ms: i64, retain_duplicates: bool },
    Session { retention_ms: i64 },
}

/// Kafka Streams' `windowstore.changelog.additional.retention.ms` default:
/// a windowed changelog keeps records this much longer than the store.
pub const CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

type HandleMaker = Arc<dyn Fn(SharedStore, &str) -> Box<dyn Any + Send + Sync> + Send + Sync>;

/// A store's definition in a topology.
#[derive(Clone)]
pub struct StoreSpec {
    pub name: String,
    pub kind: StoreKind,
    /// On disk (redb) when true, in memory otherwise.
    pub persistent: bool,
    /// Extra changelog topic configs; `None`: not logged (nothing restores it).
    pub logging: Option<BTreeMap<String, String>>,
    /// Makes the typed handle over an instance; the `&str` names the topic
    /// the handle's serdes see (the changelog topic, or the store's name).
    pub(crate) make_handle: HandleMaker,
}

impl StoreSpec {
    /// The changelog topic's configs, or `None` when logging is off.
    pub fn changelog_configs(&self) -> Option<BTreeMap<String, String>> {
        let extra = self.logging.as_ref()?;
        let mut c = BTreeMap::new();
        match self.kind {
            StoreKind::KeyValue => {
                c.insert("cleanup.policy".to_string(), "compact".to_string());
            }
            StoreKind::Window { retention_ms, .. } | StoreKind::Session { retention_ms } => {
                c.insert("cleanup.policy".to_string(), "compact,delete".to_string());
                c.insert(
                    "retention.ms".to_string(),
                    retention_ms.saturating_add(CHANGELOG_ADDITIONAL_RETENTION_MS).to_string(),
                );
            }
        }
        c.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Some(c)
    }

    /// The typed handle over `store`.
    pub fn handle(&self, store: SharedStore, serde_topic: &str) -> Box<dyn Any + Send + Sync> {
        (self.make_handle)(store, serde_topic)
    }
}

/// A store definition that yields handles of type `S`.
pub struct StoreBuilder<S> {
    pub(crate) spec: StoreSpec,
    _handle: PhantomData<fn() -> S>,
}

impl<S> StoreBuilder<S> {
    pub(crate) fn from_spec(spec: StoreSpec) -> Self {
        StoreBuilder { spec, _handle: PhantomData }
    }
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }
    pub fn with_logging_disabled(mut self) -> Self {
        self.spec.logging = None;
        self
    }
    /// Logged, with these extra changelog topic configs.
    pub fn with_logging_enabled(mut self, configs: BTreeMap<String, String>) -> Self {
        self.spec.logging = Some(configs);
        self
    }
    pub fn in_memory(mut self) -> Self {
        self.spec.persistent = false;
        self
    }
    pub fn persistent(mut self) -> Self {
        self.spec.persistent = true;
        self
    }
}

/// Store builders (Kafka's `Stores`): persistent and logged by default.
pub struct Stores;

impl Stores {
    pub fn key_value<K: Data, V: Data>(
        name: &str,
        key: SerdeRef<K>,
        value: SerdeRef<V>,
    ) -> StoreBuilder<KeyValueStore<K, V>> {
        let make: HandleMaker = Arc::new(move |store, topic| {
            Box::new(KeyValueStore::new(store, topic, key.clone(), value.clone())) as Box<dyn Any + Send + Sync>
        });
        StoreBuilder::from_spec(StoreSpec {
            name: name.to_string(),
            kind: StoreKind::KeyValue,
            persistent: true,
            logging: Some(BTreeMap::new()),
            make_handle: make,
        })
    }

    /// A window store of windows `size` long, kept `retention` (at least
    /// `size`) behind the newest; `retain_duplicates` keeps every value put
    /// for the same key and window (stream-stream joins).
    pub fn window<K: Data, V: Data>(
        name: &str,
        retention: Duration,
        size: Duration,
        retain_duplicates: bool,
        key: SerdeRef<K>,
        value: SerdeRef<V>,
    ) -> StoreBuilder<WindowStore<K, V>> {
        let (size_ms, retention_ms) = (size.as_millis() as i64, retention.as_millis() as i64);
        let make: HandleMaker = Arc::new(move |store, topic| {
            Box::new(WindowStore::new(
                store,
                topic,
                key.clone(),
                value.clone(),
                size_ms,
                retention_ms,
                retain_duplicates,
            )) as Box<dyn Any + Send + Sync>
        });
        StoreBuilder::from_spec(StoreSpec {
            name: name.to_string(),
            kind: StoreKind::Window { size_ms, retention_ms, retain_duplicates },
            persistent: true,
            logging: Some(BTreeMap::new()),
            make_handle: make,
        })
    }

    pub fn session<K: Data, V: Data>(
        name: &str,
        retention: Duration,
        key: SerdeRef<K>,
        value: SerdeRef<V>,
    ) -> StoreBuilder<SessionStore<K, V>> {
        let retention_ms = retention.as_millis() as i64;
        let make: HandleMaker = Arc::new(move |store, topic| {
            Box::new(SessionStore::new(store, topic, key.clone(), value.clone(), retention_ms))
                as Box<dyn Any + Send + Sync>
        });
        StoreBuilder::from_spec(StoreSpec {
            name: name.to_string(),
            kind: StoreKind::Session { retention_ms },
            persistent: true,
            logging: Some(BTreeMap::new()),
            make_handle: make,
        })
    }
}

/// Opens the byte store for `spec`: a redb file under `dir` when the store
/// is persistent and a directory is given, in memory otherwise.
pub fn open_byte_store(spec: &StoreSpec, dir: Option<&Path>) -> Result<Box<dyn ByteStore>> {
    match dir {
        Some(dir) if spec.persistent => Ok(Box::new(redb_store::RedbStore::open(&spec.name, dir)?)),
        _ => Ok(Box::new(memory::MemoryStore::default())),
    }
}

/// Order-preserving encodings for composite keys.
pub(crate) mod encoding {
    /// `i64` as 8 bytes that sort like the numbers (sign bit flipped, big-endian).
    pub fn ts(v: i64) -> [u8; 8] {
        ((v as u64) ^ (1 << 63)).to_be_bytes()
    }
    /// The first 8 bytes of `b` (callers check the length: a shorter slice is our bug).
    pub fn read_ts(b: &[u8]) -> i64 {
        (u64::from_be_bytes(b[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64
    }
    /// A length prefix, so that every entry of one key is contiguous and
    /// sorted by what follows the key.
    pub fn key_prefix(key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + key.len() + 20);
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        out
    }
    /// Splits `[len][key]rest` into (key, rest).
    pub fn split_key(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        Some((b.get(4..4 + len)?, &b[4 + len..]))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn timestamps_sort_as_numbers() {
            let vals = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
            for w in vals.windows(2) {
                assert!(super::ts(w[0]) < super::ts(w[1]));
                assert_eq!(super::read_ts(&super::ts(w[0])), w[0]);
            }
        }
    }
}
