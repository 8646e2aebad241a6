//! `GlobalKTable`: every partition of a topic in a global store on every
//! instance (`StreamsBuilder::global_table`). The store is a key-value store
//! of `ValueAndTimestamp<V>` (Kafka's timestamped layout) named
//! `<topic>-STATE-STORE-NNNNNNNNNN` or after `Materialized`; it is not
//! logged (the topic is its changelog). Each record read from the topic is
//! checked with the serdes and put (a null value deletes the key; a null key
//! is skipped). Streams join it with `KStream::join_global` /
//! `left_join_global` (in [`super::joins`]) without repartitioning.

use std::sync::Arc;

use super::ktable::TimestampedSerde;
use super::options::{Consumed, Materialized};
use super::StreamsBuilder;
use crate::error::{Result, StreamsError};
use crate::record::RawRecord;
use crate::serde::SerdeRef;
use crate::state::{StoreInstance, Stores};
use crate::topology::{GlobalStoreSpec, GlobalUpdate};
use crate::Data;

/// A table with every partition of its topic on every instance.
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        GlobalKTable {
            store: self.store.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K: Data, V: Data> GlobalKTable<K, V> {
    /// The global store's name: query it as
    /// `KeyValueStore<K, ValueAndTimestamp<V>>`.
    pub fn queryable_store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// A global table of `topic` (see the module docs); serdes from
    /// `materialized` if given, else from `consumed`.
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> Result<GlobalKTable<K, V>> {
        let key = materialized.key.clone().unwrap_or(consumed.key);
        let value = materialized.value.clone().unwrap_or(consumed.value);
        let mut b = self.inner.borrow_mut();
        let store = materialized.name.clone().unwrap_or_else(|| b.new_name(&format!("{topic}-STATE-STORE")));
        // the source and table-source node names Kafka Streams gives a global table
        let _ = (b.new_name("KSTREAM-SOURCE"), b.new_name("KTABLE-SOURCE"));
        let mut builder =
            Stores::key_value(&store, key.clone(), TimestampedSerde::new_ref(value.clone())).with_logging_disabled();
        if materialized.in_memory {
            builder = builder.in_memory();
        }
        let (k, v, name) = (key.clone(), value.clone(), store.clone());
        let update: GlobalUpdate = Arc::new(move |s: &mut StoreInstance, raw: &RawRecord| {
            let Some(kb) = raw.key.as_deref() else {
                tracing::warn!(store = %name, topic = %raw.topic, partition = raw.partition, offset = raw.offset,
                    "skipping a global table record with a null key");
                return Ok(());
            };
            let key = k.deserialize(&raw.topic, Some(kb))?;
            let kb = k
                .serialize(&raw.topic, &key)?
                .ok_or_else(|| StreamsError::serde(&raw.topic, "a global table key serialized to null"))?;
            match raw.value.as_deref() {
                None => s.put(&kb, None),
                Some(vb) => {
                    v.deserialize(&raw.topic, Some(vb))?;
                    let mut out = Vec::with_capacity(8 + vb.len());
                    out.extend_from_slice(&raw.timestamp.to_be_bytes());
                    out.extend_from_slice(vb);
                    s.put(&kb, Some(&out))
                }
            }
        });
        b.topology.add_global_store_spec(GlobalStoreSpec { store: builder.spec, topic: topic.to_string(), update })?;
        Ok(GlobalKTable { store, key_serde: key, value_serde: value })
    }
}
