//! A typed key-value store over a store instance: keys and values through
//! the store's serdes, ranges over serialized keys (inclusive at both ends,
//! as Kafka's `range`).

use std::ops::Bound;
use std::sync::Arc;

use super::SharedStore;
use crate::error::{Result, StreamsError};
use crate::serde::SerdeRef;
use crate::Data;

pub struct KeyValueStore<K, V> {
    store: SharedStore,
    topic: Arc<str>,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
}

impl<K, V> Clone for KeyValueStore<K, V> {
    fn clone(&self) -> Self {
        KeyValueStore {
            store: self.store.clone(),
            topic: self.topic.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K: Data, V: Data> KeyValueStore<K, V> {
    pub(crate) fn new(store: SharedStore, topic: &str, key_serde: SerdeRef<K>, value_serde: SerdeRef<V>) -> Self {
        KeyValueStore { store, topic: topic.into(), key_serde, value_serde }
    }

    pub fn name(&self) -> String {
        self.store.lock().name.clone()
    }

    fn key_bytes(&self, key: &K) -> Result<Vec<u8>> {
        self.key_serde
            .serialize(&self.topic, key)?
            .ok_or_else(|| StreamsError::serde(&self.topic, "a store key serialized to null"))
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<(K, V)> {
        Ok((self.key_serde.deserialize(&self.topic, Some(k))?, self.value_serde.deserialize(&self.topic, Some(v))?))
    }

    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = self.key_bytes(key)?;
        match self.store.lock().get(&k)? {
            Some(v) => Ok(Some(self.value_serde.deserialize(&self.topic, Some(&v))?)),
            None => Ok(None),
        }
    }

    pub fn put(&self, key: &K, value: &V) -> Result<()> {
        let k = self.key_bytes(key)?;
        let v = self.value_serde.serialize(&self.topic, value)?;
        self.store.lock().put(&k, v.as_deref())
    }

    /// Puts unless the key has a value; returns the value it had.
    pub fn put_if_absent(&self, key: &K, value: &V) -> Result<Option<V>> {
        match self.get(key)? {
            Some(old) => Ok(Some(old)),
            None => {
                self.put(key, value)?;
                Ok(None)
            }
        }
    }

    /// Removes the key; returns the value it had.
    pub fn delete(&self, key: &K) -> Result<Option<V>> {
        let old = self.get(key)?;
        if old.is_some() {
            let k = self.key_bytes(key)?;
            self.store.lock().put(&k, None)?;
        }
        Ok(old)
    }

    /// Entries with `from <= key <= to` by serialized bytes.
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        let (a, b) = (self.key_bytes(from)?, self.key_bytes(to)?);
        let rows = self.store.lock().range(Bound::Included(&a), Bound::Included(&b))?;
        rows.iter().map(|(k, v)| self.decode(k, v)).collect()
    }

    /// Every entry, in serialized key order.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let rows = self.store.lock().range(Bound::Unbounded, Bound::Unbounded)?;
        rows.iter().map(|(k, v)| self.decode(k, v)).collect()
    }

    pub fn approximate_num_entries(&self) -> u64 {
        self.store.lock().approximate_len()
    }
}
