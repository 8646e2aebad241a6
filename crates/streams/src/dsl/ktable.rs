//! `KTable`: a changelog stream (each record a [`Change`] of a key's value)
//! plus, when materialized, a key-value store of [`ValueAndTimestamp`]s.
//! Operations: to be written by the DSL helper (`StreamsBuilder::table`,
//! filter, map_values, joins, group_by); `to_stream` is here.

use std::sync::Arc;

use super::kstream::KStream;
use super::Shared;
use crate::error::{Result, StreamsError};
use crate::record::Record;
use crate::serde::{OptionSerde, Serde, SerdeRef};
use crate::Data;

/// A table update: the key's new value (`None`: deleted) and, when the
/// downstream needs it (aggregations of a table, joins), the old one.
#[derive(Clone, Debug, PartialEq)]
pub struct Change<V> {
    pub new: Option<V>,
    pub old: Option<V>,
}

/// A table value with the timestamp of the record that set it (stored as
/// Kafka's timestamped stores do: 8 bytes of timestamp, big-endian, then
/// the value's bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueAndTimestamp<V> {
    pub value: V,
    pub timestamp: i64,
}

/// The serde of [`ValueAndTimestamp`] over the value's serde.
pub struct TimestampedSerde<V>(pub SerdeRef<V>);

impl<V: Data> TimestampedSerde<V> {
    pub fn new_ref(inner: SerdeRef<V>) -> SerdeRef<ValueAndTimestamp<V>> {
        Arc::new(TimestampedSerde(inner))
    }
}

impl<V: Data> Serde<ValueAndTimestamp<V>> for TimestampedSerde<V> {
    fn serialize(&self, topic: &str, v: &ValueAndTimestamp<V>) -> Result<Option<Vec<u8>>> {
        let inner = self.0.serialize(topic, &v.value)?.unwrap_or_default();
        let mut out = Vec::with_capacity(8 + inner.len());
        out.extend_from_slice(&v.timestamp.to_be_bytes());
        out.extend_from_slice(&inner);
        Ok(Some(out))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<ValueAndTimestamp<V>> {
        let data = data.ok_or_else(|| StreamsError::serde(topic, "null bytes for a timestamped value"))?;
        if data.len() < 8 {
            return Err(StreamsError::serde(topic, "a timestamped value shorter than its 8-byte timestamp"));
        }
        let timestamp = i64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        Ok(ValueAndTimestamp { value: self.0.deserialize(topic, Some(&data[8..]))?, timestamp })
    }
}

pub struct KTable<K, V> {
    pub(crate) builder: Shared,
    /// The node whose output (`Record<K, Change<V>>`) this table is.
    pub(crate) node: String,
    pub(crate) key_serde: Option<SerdeRef<K>>,
    pub(crate) value_serde: Option<SerdeRef<V>>,
    /// The store holding the table: `KeyValueStore<K, ValueAndTimestamp<V>>`
    /// (or a window / session store for windowed aggregations), if materialized.
    pub(crate) store: Option<String>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            builder: self.builder.clone(),
            node: self.node.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// The name of the store holding this table, if materialized (for
    /// interactive queries and the test driver).
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The table's updates as a stream: each change's new value, `None` for
    /// a delete (written as a tombstone by `to`; the serde is the table's
    /// value serde wrapped in [`OptionSerde`]).
    pub fn to_stream(&self) -> Result<KStream<K, Option<V>>> {
        let stream: KStream<K, Change<V>> = KStream {
            builder: self.builder.clone(),
            node: self.node.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: None,
            repartition_required: false,
        };
        let node = stream.add_fn_node("KTABLE-TOSTREAM", None, |ctx, r: Record<K, Change<V>>| {
            let v = r.value.new.clone();
            ctx.forward(r.with_value(v))
        })?;
        let value_serde: Option<SerdeRef<Option<V>>> =
            self.value_serde.clone().map(|s| Arc::new(OptionSerde(s)) as SerdeRef<Option<V>>);
        Ok(stream.derive(node, self.key_serde.clone(), value_serde, false))
    }
}
