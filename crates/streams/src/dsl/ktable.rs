//! `KTable`: a changelog stream (each record a [`Change`] of a key's value)
//! plus a key-value store of [`ValueAndTimestamp`]s. Every table the DSL
//! makes is materialized (its store named by `Materialized`, else generated
//! as Kafka Streams generates it, e.g. `KTABLE-FILTER-STATE-STORE-0000000003`),
//! so that joins look the other side up in its store and each node knows a
//! key's old value. Every table node forwards `Change{new, old}` (Kafka's
//! "send old values" always on); `new: None` is a delete.
//!
//! - [`StreamsBuilder::table`]: a topic read as a table (null value =
//!   delete; updates applied in offset order, a timestamp older than the
//!   stored one is applied too, with a warning, as Kafka does).
//! - `KStream::to_table`, `KTable::filter` / `filter_not` / `map_values`,
//!   table-table `join` / `left_join` / `outer_join` (each side's update
//!   looks the other side up; deletes become tombstones), `to_stream`.
//! - `KTable::group_by` is in [`super::grouped`].

use std::rc::Rc;
use std::sync::Arc;

use super::kstream::KStream;
use super::options::{Consumed, Materialized};
use super::{BuilderInner, Shared, StreamsBuilder};
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{OptionSerde, Serde, SerdeRef};
use crate::state::{KeyValueStore, Stores};
use crate::topology::TopicName;
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

/// A table's store: values with the timestamp of the record that set them.
pub(crate) type TsStore<K, V> = KeyValueStore<K, ValueAndTimestamp<V>>;

/// The handle opened in `init`.
fn opened<'a, S>(store: &'a Option<S>, name: &str) -> Result<&'a S> {
    store.as_ref().ok_or_else(|| StreamsError::store(name, "used before its processor was initialized"))
}

/// Writes `value` (a delete when `None`) for `key`.
pub(crate) fn put_or_delete<K: Data, V: Data>(
    store: &TsStore<K, V>,
    key: &K,
    value: Option<V>,
    timestamp: i64,
) -> Result<()> {
    match value {
        Some(v) => store.put(key, &ValueAndTimestamp { value: v, timestamp }),
        None => store.delete(key).map(|_| ()),
    }
}

/// `m`'s store name, or `<prefix>STATE-STORE-NNNNNNNNNN` (takes a name
/// index); an error if the topology has a store of that name already
/// (checked before the operation adds any node).
pub(crate) fn store_name<K, V>(b: &mut BuilderInner, m: &Materialized<K, V>, prefix: &str) -> Result<String> {
    let name = m.name.clone().unwrap_or_else(|| b.new_name(&format!("{prefix}STATE-STORE")));
    if b.topology.store_spec(&name).is_some() {
        return Err(StreamsError::Topology(format!(
            "state store {name} exists already: give each Materialized its own name"
        )));
    }
    Ok(name)
}

/// Adds a table store `KeyValueStore<K, ValueAndTimestamp<V>>` named `name`
/// as `m` says (logging, in memory), connected to `processors`.
pub(crate) fn add_table_store<K: Data, V: Data, X>(
    b: &mut BuilderInner,
    name: &str,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
    m: &Materialized<K, X>,
    processors: &[&str],
) -> Result<()> {
    let mut sb = Stores::key_value(name, key, TimestampedSerde::new_ref(value));
    sb = match &m.logging {
        Some(configs) => sb.with_logging_enabled(configs.clone()),
        None => sb.with_logging_disabled(),
    };
    if m.in_memory {
        sb = sb.in_memory();
    }
    b.topology.add_state_store(sb, processors)?;
    Ok(())
}

/// The serde `given` (from the operation's options), else `fallback` (the
/// stream's or table's), else an error naming the operation.
pub(crate) fn serde_or<T>(
    given: Option<SerdeRef<T>>,
    fallback: Option<SerdeRef<T>>,
    op: &str,
    what: &str,
) -> Result<SerdeRef<T>> {
    given.or(fallback).ok_or_else(|| {
        StreamsError::Topology(format!("{op} needs a {what} serde: give one with Materialized::with / Grouped::with"))
    })
}

/// Kafka's `KTableSource`: puts each update into the table's store and
/// forwards `Change{new, old}`; a null value deletes; a null key is skipped.
pub(crate) struct TableSource<K, V> {
    store_name: String,
    store: Option<TsStore<K, V>>,
}

impl<K: Data, V: Data> TableSource<K, V> {
    pub(crate) fn new(store_name: &str) -> Self {
        TableSource { store_name: store_name.to_string(), store: None }
    }

    fn open(&mut self, ctx: &ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }

    fn upsert(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, record: Record<K, Option<V>>) -> Result<()> {
        let store = opened(&self.store, &self.store_name)?;
        let old = store.get(&record.key)?;
        if let Some(o) = &old {
            if record.timestamp < o.timestamp {
                tracing::warn!(store = %self.store_name, old_timestamp = o.timestamp, new_timestamp = record.timestamp,
                    "out-of-order KTable update (applied: the latest offset wins)");
            }
        }
        put_or_delete(store, &record.key, record.value.clone(), record.timestamp)?;
        let change = Change { new: record.value.clone(), old: old.map(|o| o.value) };
        ctx.forward(record.with_value(change))
    }
}

impl<K: Data, V: Data> Processor<Option<K>, Option<V>, K, Change<V>> for TableSource<K, V> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        self.open(ctx)
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<Option<K>, Option<V>>,
    ) -> Result<()> {
        let Some(key) = record.key.clone() else {
            let at = ctx.record_metadata().map(|m| format!("{}-{}@{}", m.topic, m.partition, m.offset));
            tracing::warn!(store = %self.store_name, at = ?at, "skipping a table record with a null key");
            return Ok(());
        };
        self.upsert(ctx, record.with_key(key))
    }
}

impl<K: Data, V: Data> Processor<K, Option<V>, K, Change<V>> for TableSource<K, V> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        self.open(ctx)
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, record: Record<K, Option<V>>) -> Result<()> {
        self.upsert(ctx, record)
    }
}

/// `KStream::to_table`: every record an upsert.
struct StreamToTable<K, V>(TableSource<K, V>);

impl<K: Data, V: Data> Processor<K, V, K, Change<V>> for StreamToTable<K, V> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        self.0.open(ctx)
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, record: Record<K, V>) -> Result<()> {
        let v = Some(record.value.clone());
        self.0.upsert(ctx, record.with_value(v))
    }
}

impl StreamsBuilder {
    /// The topic `topic` read as a table: source node `KSTREAM-SOURCE-N`,
    /// then `KTABLE-SOURCE-N` putting each update into the store named by
    /// `materialized` (else `<topic>-STATE-STORE-NNNNNNNNNN`). Serdes:
    /// `materialized`'s for the store, else `consumed`'s. A record with a
    /// null value deletes its key; one with a null key is skipped.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<K, V>> {
        let mut b = self.inner.borrow_mut();
        let store = store_name(&mut b, &materialized, &format!("{topic}-"))?;
        let (source, table_source) = match &consumed.name {
            Some(n) => (format!("{n}-source"), n.clone()),
            None => (b.new_name("KSTREAM-SOURCE"), b.new_name("KTABLE-SOURCE")),
        };
        let key_in: SerdeRef<Option<K>> = Arc::new(OptionSerde(consumed.key.clone()));
        let value_in: SerdeRef<Option<V>> = Arc::new(OptionSerde(consumed.value.clone()));
        b.topology.add_source_topics(&source, vec![TopicName::user(topic)], key_in, value_in)?;
        let sn = store.clone();
        b.topology.add_processor::<Option<K>, Option<V>, K, Change<V>, _, _>(
            &table_source,
            move || TableSource::<K, V>::new(&sn),
            &[&source],
        )?;
        let key = materialized.key.clone().unwrap_or(consumed.key);
        let value = materialized.value.clone().unwrap_or(consumed.value);
        add_table_store(&mut b, &store, key.clone(), value.clone(), &materialized, &[&table_source])?;
        Ok(KTable {
            builder: self.inner.clone(),
            node: table_source,
            key_serde: Some(key),
            value_serde: Some(value),
            store: Some(store),
        })
    }
}

impl<K: Data, VIn: Data> KStream<K, VIn> {
    /// Node `KSTREAM-TOTABLE-N` (made by `make` from the store's name),
    /// repartitioned first after a key change, and its store.
    fn to_table_node<V: Data, P: Processor<K, VIn, K, Change<V>>>(
        &self,
        m: Materialized<K, V>,
        value: Result<SerdeRef<V>>,
        in_value: Option<SerdeRef<VIn>>,
        make: impl Fn(&str) -> P + Send + Sync + 'static,
    ) -> Result<KTable<K, V>> {
        let key = serde_or(m.key.clone(), self.key_serde.clone(), "to_table", "key")?;
        let value = value?;
        let (name, store) = {
            let mut b = self.builder.borrow_mut();
            let name = b.new_name("KSTREAM-TOTABLE");
            (name, store_name(&mut b, &m, "KSTREAM-TOTABLE-")?)
        };
        let parent = self.repartition_if_required(&name, Some(key.clone()), in_value)?;
        let mut b = self.builder.borrow_mut();
        let sn = store.clone();
        b.topology.add_processor(&name, move || make(&sn), &[&parent.node])?;
        add_table_store(&mut b, &store, key.clone(), value.clone(), &m, &[&name])?;
        Ok(KTable {
            builder: self.builder.clone(),
            node: name,
            key_serde: Some(key),
            value_serde: Some(value),
            store: Some(store),
        })
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// The stream read as a table (each record an upsert of its key), node
    /// `KSTREAM-TOTABLE-N`, store from `materialized` or
    /// `KSTREAM-TOTABLE-STATE-STORE-N`; repartitioned first (through
    /// `<node>-repartition`) after a key change. For deletes, a stream of
    /// `Option`s has [`KStream::to_table_with_deletes`].
    pub fn to_table(&self, materialized: Materialized<K, V>) -> Result<KTable<K, V>> {
        let value = serde_or(materialized.value.clone(), self.value_serde.clone(), "to_table", "value");
        let in_value = materialized.value.clone().or_else(|| self.value_serde.clone());
        self.to_table_node(materialized, value, in_value, |store| StreamToTable(TableSource::<K, V>::new(store)))
    }
}

impl<K: Data, V: Data> KStream<K, Option<V>> {
    /// `to_table` of a stream whose `None` values delete their key (Kafka's
    /// null values), e.g. a table's `to_stream()`.
    pub fn to_table_with_deletes(&self, materialized: Materialized<K, V>) -> Result<KTable<K, V>> {
        let value = match (&materialized.value, &self.value_serde) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(opt)) => Ok(Arc::new(SomeSerde(opt.clone())) as SerdeRef<V>),
            (None, None) => serde_or(None, None, "to_table_with_deletes", "value"),
        };
        let in_value = self
            .value_serde
            .clone()
            .or_else(|| materialized.value.clone().map(|v| Arc::new(OptionSerde(v)) as SerdeRef<Option<V>>));
        self.to_table_node(materialized, value, in_value, |store| TableSource::<K, V>::new(store))
    }
}

/// The serde of `V` inside a serde of `Option<V>` (for values that are
/// never `None`: the store of a table, which deletes instead).
struct SomeSerde<V>(SerdeRef<Option<V>>);

impl<V: Data> Serde<V> for SomeSerde<V> {
    fn serialize(&self, topic: &str, value: &V) -> Result<Option<Vec<u8>>> {
        self.0.serialize(topic, &Some(value.clone()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<V> {
        self.0.deserialize(topic, data)?.ok_or_else(|| StreamsError::serde(topic, "null bytes for a table value"))
    }
}

/// What a table node computes from an update: the new value (`None`:
/// delete) from the key and the update's new value.
type TableFn<K, V, V2> = Arc<dyn Fn(&K, Option<V>) -> Option<V2> + Send + Sync>;

/// `filter` / `filter_not` / `map_values` of a table: computes the new
/// value, takes the old one from its own store, stores the new one and
/// forwards the change (a filter forwards nothing when the key was and
/// stays filtered out).
struct TableMapProcessor<K, V, V2> {
    f: TableFn<K, V, V2>,
    skip_absent: bool,
    store_name: String,
    store: Option<TsStore<K, V2>>,
}

impl<K: Data, V: Data, V2: Data> Processor<K, Change<V>, K, Change<V2>> for TableMapProcessor<K, V, V2> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V2>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V2>>, record: Record<K, Change<V>>) -> Result<()> {
        let store = opened(&self.store, &self.store_name)?;
        let new = (self.f)(&record.key, record.value.new.clone());
        let old = store.get(&record.key)?.map(|o| o.value);
        if self.skip_absent && new.is_none() && old.is_none() {
            return Ok(());
        }
        put_or_delete(store, &record.key, new.clone(), record.timestamp)?;
        ctx.forward(record.with_value(Change { new, old }))
    }
}

/// How a join side treats a missing value on the other side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum JoinMode {
    /// Nothing to emit unless the other side has the key (inner join; the
    /// right side of a left join).
    RequireOther,
    /// Emit unless neither side has anything (left side of a left join;
    /// both sides of an outer join).
    Lenient,
}

/// A joiner seen from one side: (this side's value, the other side's) ->
/// the result, `None` when the join type has no result for them.
type SideJoiner<A, B, R> = Arc<dyn Fn(Option<&A>, Option<&B>) -> Option<R> + Send + Sync>;

/// One side of a table-table join (Kafka's `KTableKTable{Inner,Left,Right,Outer}Join`):
/// on an update of this side, looks the key up in the other side's store
/// and forwards the change of the joined value, at the later timestamp.
struct JoinSide<K, A, B, R> {
    mode: JoinMode,
    joiner: SideJoiner<A, B, R>,
    other_store: String,
    store: Option<TsStore<K, B>>,
}

impl<K: Data, A: Data, B: Data, R: Data> Processor<K, Change<A>, K, Change<R>> for JoinSide<K, A, B, R> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<R>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.other_store)?);
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<R>>, record: Record<K, Change<A>>) -> Result<()> {
        let other = opened(&self.store, &self.other_store)?.get(&record.key)?;
        let Change { new, old } = &record.value;
        let skip = match self.mode {
            JoinMode::RequireOther => other.is_none(),
            JoinMode::Lenient => other.is_none() && new.is_none() && old.is_none(),
        };
        if skip {
            return Ok(());
        }
        let ov = other.as_ref().map(|o| &o.value);
        let join = |x: &Option<A>| if x.is_some() || ov.is_some() { (self.joiner)(x.as_ref(), ov) } else { None };
        let change = Change { new: join(new), old: join(old) };
        let ts = other.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
        ctx.forward(record.with_value(change).with_timestamp(ts))
    }
}

/// Kafka's `KTableKTableJoinMerger`: stores the join's result and forwards it.
struct JoinMerger<K, R> {
    store_name: String,
    store: Option<TsStore<K, R>>,
}

impl<K: Data, R: Data> Processor<K, Change<R>, K, Change<R>> for JoinMerger<K, R> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<R>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<R>>, record: Record<K, Change<R>>) -> Result<()> {
        let store = opened(&self.store, &self.store_name)?;
        put_or_delete(store, &record.key, record.value.new.clone(), record.timestamp)?;
        ctx.forward(record)
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    fn store_of(&self, op: &str) -> Result<String> {
        self.store.clone().ok_or_else(|| {
            StreamsError::Topology(format!("{op} needs a materialized table (give the table a Materialized)"))
        })
    }

    /// Adds a node `prefix-N` (store from `m` or `<prefix>-STATE-STORE-N`)
    /// computing each key's new value with `f`.
    fn map_node<V2: Data>(
        &self,
        prefix: &str,
        f: TableFn<K, V, V2>,
        skip_absent: bool,
        m: Materialized<K, V2>,
        value_fallback: Option<SerdeRef<V2>>,
        op: &str,
    ) -> Result<KTable<K, V2>> {
        let key = serde_or(m.key.clone(), self.key_serde.clone(), op, "key")?;
        let value = serde_or(m.value.clone(), value_fallback, op, "value")?;
        let mut b = self.builder.borrow_mut();
        let store = store_name(&mut b, &m, &format!("{prefix}-"))?;
        let node = b.new_name(prefix);
        let sn = store.clone();
        b.topology.add_processor(
            &node,
            move || TableMapProcessor { f: f.clone(), skip_absent, store_name: sn.clone(), store: None },
            &[&self.node],
        )?;
        add_table_store(&mut b, &store, key.clone(), value.clone(), &m, &[&node])?;
        Ok(KTable {
            builder: self.builder.clone(),
            node,
            key_serde: Some(key),
            value_serde: Some(value),
            store: Some(store),
        })
    }

    /// The rows for which `predicate` holds (a row that stops matching is
    /// deleted downstream); store `KTABLE-FILTER-STATE-STORE-N`.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Result<KTable<K, V>> {
        self.filter_materialized(predicate, Materialized::default())
    }

    /// `filter` into the store `materialized` describes.
    pub fn filter_materialized(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<K, V>> {
        let f: TableFn<K, V, V> = Arc::new(move |k, v| v.filter(|v| predicate(k, v)));
        self.map_node("KTABLE-FILTER", f, true, materialized, self.value_serde.clone(), "KTable.filter")
    }

    /// The rows for which `predicate` does not hold.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Result<KTable<K, V>> {
        self.filter_not_materialized(predicate, Materialized::default())
    }

    /// `filter_not` into the store `materialized` describes.
    pub fn filter_not_materialized(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<K, V>> {
        let f: TableFn<K, V, V> = Arc::new(move |k, v| v.filter(|v| !predicate(k, v)));
        self.map_node("KTABLE-FILTER", f, true, materialized, self.value_serde.clone(), "KTable.filter_not")
    }

    /// Each row's value mapped by `f` (store from `materialized`, whose value
    /// serde is needed, or `KTABLE-MAPVALUES-STATE-STORE-N`).
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(&K, &V) -> V2 + Send + Sync + 'static,
        materialized: Materialized<K, V2>,
    ) -> Result<KTable<K, V2>> {
        let f: TableFn<K, V, V2> = Arc::new(move |k, v| v.map(|v| f(k, &v)));
        self.map_node("KTABLE-MAPVALUES", f, false, materialized, None, "KTable.map_values")
    }

    /// Nodes `KTABLE-JOINTHIS-N` (fed by this table, reads the other's
    /// store), `KTABLE-JOINOTHER-N` (the reverse) and `KTABLE-MERGE-N`
    /// (stores the result in `m`'s store or `KTABLE-MERGE-STATE-STORE-N`).
    #[allow(clippy::too_many_arguments)]
    fn join_tables<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        this_mode: JoinMode,
        other_mode: JoinMode,
        this_joiner: SideJoiner<V, VO, VR>,
        other_joiner: SideJoiner<VO, V, VR>,
        m: Materialized<K, VR>,
        op: &str,
    ) -> Result<KTable<K, VR>> {
        if !Rc::ptr_eq(&self.builder, &other.builder) {
            return Err(StreamsError::Topology(format!("{op}: the two tables come from different StreamsBuilders")));
        }
        let this_store = self.store_of(op)?;
        let other_store = other.store_of(op)?;
        let key = serde_or(m.key.clone(), self.key_serde.clone().or_else(|| other.key_serde.clone()), op, "key")?;
        let value = serde_or(m.value.clone(), None, op, "value")?;
        let mut b = self.builder.borrow_mut();
        let store = store_name(&mut b, &m, "KTABLE-MERGE-")?;
        let merge = b.new_name("KTABLE-MERGE");
        let this_node = b.new_name("KTABLE-JOINTHIS");
        let other_node = b.new_name("KTABLE-JOINOTHER");
        let os = other_store.clone();
        b.topology.add_processor(
            &this_node,
            move || JoinSide::<K, V, VO, VR> {
                mode: this_mode,
                joiner: this_joiner.clone(),
                other_store: os.clone(),
                store: None,
            },
            &[&self.node],
        )?;
        let ts = this_store.clone();
        b.topology.add_processor(
            &other_node,
            move || JoinSide::<K, VO, V, VR> {
                mode: other_mode,
                joiner: other_joiner.clone(),
                other_store: ts.clone(),
                store: None,
            },
            &[&other.node],
        )?;
        b.topology.connect_processor_and_state_stores(&this_node, &[&other_store])?;
        b.topology.connect_processor_and_state_stores(&other_node, &[&this_store])?;
        let sn = store.clone();
        b.topology.add_processor(
            &merge,
            move || JoinMerger::<K, VR> { store_name: sn.clone(), store: None },
            &[&this_node, &other_node],
        )?;
        add_table_store(&mut b, &store, key.clone(), value.clone(), &m, &[&merge])?;
        Ok(KTable {
            builder: self.builder.clone(),
            node: merge,
            key_serde: Some(key),
            value_serde: Some(value),
            store: Some(store),
        })
    }

    /// Inner join with `other` on the key: a row for each key both tables
    /// have, `joiner(this, other)`; deleting either side deletes the row.
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> Result<KTable<K, VR>> {
        let j = Arc::new(joiner);
        let j2 = j.clone();
        let this: SideJoiner<V, VO, VR> = Arc::new(move |a, b| Some(j(a?, b?)));
        let that: SideJoiner<VO, V, VR> = Arc::new(move |b, a| Some(j2(a?, b?)));
        self.join_tables(other, JoinMode::RequireOther, JoinMode::RequireOther, this, that, materialized, "KTable.join")
    }

    /// Left join: a row for each key of this table, `joiner(this, other)`
    /// with `None` while `other` lacks the key.
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> Result<KTable<K, VR>> {
        let j = Arc::new(joiner);
        let j2 = j.clone();
        let this: SideJoiner<V, VO, VR> = Arc::new(move |a, b| Some(j(a?, b)));
        let that: SideJoiner<VO, V, VR> = Arc::new(move |b, a| Some(j2(a?, b)));
        self.join_tables(other, JoinMode::Lenient, JoinMode::RequireOther, this, that, materialized, "KTable.left_join")
    }

    /// Outer join: a row for each key of either table, `joiner(this, other)`
    /// with `None` for the side that lacks the key.
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> Result<KTable<K, VR>> {
        let j = Arc::new(joiner);
        let j2 = j.clone();
        let this: SideJoiner<V, VO, VR> = Arc::new(move |a, b| Some(j(a, b)));
        let that: SideJoiner<VO, V, VR> = Arc::new(move |b, a| Some(j2(a, b)));
        self.join_tables(other, JoinMode::Lenient, JoinMode::Lenient, this, that, materialized, "KTable.outer_join")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::options::Produced;
    use crate::serde::Serdes;
    use crate::test_driver::{TestInputTopic, TopologyTestDriver};

    fn ss() -> Consumed<String, String> {
        Consumed::with(Serdes::string(), Serdes::string())
    }

    fn some(k: &str, v: &str) -> (String, Option<String>) {
        (k.to_string(), Some(v.to_string()))
    }

    fn none(k: &str) -> (String, Option<String>) {
        (k.to_string(), None)
    }

    fn read(driver: &TopologyTestDriver, topic: &str) -> Vec<(String, Option<String>)> {
        driver
            .create_output_topic(topic, Serdes::string(), Serdes::option(Serdes::string()))
            .read_key_values_to_list()
            .unwrap()
    }

    fn input(driver: &TopologyTestDriver, topic: &str) -> TestInputTopic<String, String> {
        driver.create_input_topic(topic, Serdes::string(), Serdes::string())
    }

    #[test]
    fn table_source_applies_updates_deletes_and_out_of_order_records() {
        let b = StreamsBuilder::new();
        let t = b.table("in", ss(), Materialized::default()).unwrap();
        assert_eq!(t.queryable_store_name(), Some("in-STATE-STORE-0000000000"));
        assert_eq!(t.node, "KTABLE-SOURCE-0000000002");
        t.to_stream().unwrap().to("out", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = input(&driver, "in");
        i.pipe_input_at("a".into(), "1".into(), 10).unwrap();
        i.pipe_input_at("b".into(), "2".into(), 11).unwrap();
        i.pipe_input_at("a".into(), "3".into(), 5).unwrap(); // older timestamp, later offset: applied
        i.pipe_tombstone_at("a".into(), 12).unwrap();
        i.pipe_raw(None, Some(b"x".to_vec()), 13).unwrap(); // null key: skipped
        assert_eq!(read(&driver, "out"), vec![some("a", "1"), some("b", "2"), some("a", "3"), none("a")]);
        let store: TsStore<String, String> = driver.state_store("in-STATE-STORE-0000000000").unwrap();
        assert_eq!(store.get(&"a".to_string()).unwrap(), None);
        assert_eq!(
            store.get(&"b".to_string()).unwrap(),
            Some(ValueAndTimestamp { value: "2".to_string(), timestamp: 11 })
        );
        let changelog = driver.written("test-app-in-STATE-STORE-0000000000-changelog");
        assert_eq!(changelog.len(), 4);
        let mut b_value = 11i64.to_be_bytes().to_vec();
        b_value.extend_from_slice(b"2");
        assert_eq!(changelog[1].value, Some(b_value));
        assert_eq!((changelog[3].key.as_deref(), changelog[3].value.as_deref()), (Some(&b"a"[..]), None));
    }

    #[test]
    fn table_filter_filter_not_and_map_values_forward_changes() {
        let b = StreamsBuilder::new();
        let t = b.table("in", ss(), Materialized::as_store("source")).unwrap();
        let even = |_: &String, v: &String| v.parse::<i64>().is_ok_and(|n| n % 2 == 0);
        let f = t.filter(even).unwrap();
        assert_eq!(f.queryable_store_name(), Some("KTABLE-FILTER-STATE-STORE-0000000002"));
        f.to_stream().unwrap().to("even", Produced::default()).unwrap();
        t.filter_not(even).unwrap().to_stream().unwrap().to("odd", Produced::default()).unwrap();
        let lens = t
            .map_values(|_, v| v.len() as i64, Materialized::as_store("lens").with_value_serde(Serdes::i64()))
            .unwrap();
        lens.to_stream().unwrap().to("lens", Produced::default()).unwrap();
        assert!(t.map_values(|_, v| v.len() as i64, Materialized::default()).is_err(), "no value serde");
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = input(&driver, "in");
        i.pipe_input_at("a".into(), "2".into(), 1).unwrap();
        i.pipe_input_at("a".into(), "3".into(), 2).unwrap();
        i.pipe_input_at("a".into(), "15".into(), 3).unwrap();
        i.pipe_input_at("b".into(), "4".into(), 4).unwrap();
        i.pipe_tombstone_at("b".into(), 5).unwrap();
        i.pipe_tombstone_at("c".into(), 6).unwrap();
        assert_eq!(read(&driver, "even"), vec![some("a", "2"), none("a"), some("b", "4"), none("b")]);
        assert_eq!(read(&driver, "odd"), vec![some("a", "3"), some("a", "15")]);
        let lens = driver
            .create_output_topic("lens", Serdes::string(), Serdes::option(Serdes::i64()))
            .read_key_values_to_list()
            .unwrap();
        let s = |k: &str| k.to_string();
        assert_eq!(
            lens,
            vec![
                (s("a"), Some(1)),
                (s("a"), Some(1)),
                (s("a"), Some(2)),
                (s("b"), Some(1)),
                (s("b"), None),
                (s("c"), None)
            ]
        );
        let store: TsStore<String, i64> = driver.state_store("lens").unwrap();
        assert_eq!(store.all().unwrap().into_iter().map(|(k, v)| (k, v.value)).collect::<Vec<_>>(), vec![(s("a"), 2)]);
    }

    #[test]
    fn table_table_inner_left_and_outer_joins_with_deletes() {
        let b = StreamsBuilder::new();
        let l = b.table("left", ss(), Materialized::default()).unwrap();
        let r = b.table("right", ss(), Materialized::default()).unwrap();
        let opt = |v: Option<&String>| v.cloned().unwrap_or_else(|| "null".to_string());
        let inner = l
            .join(
                &r,
                |a, b| format!("{a}+{b}"),
                Materialized::as_store("inner-store").with_value_serde(Serdes::string()),
            )
            .unwrap();
        assert!(inner.node.starts_with("KTABLE-MERGE-"));
        inner.to_stream().unwrap().to("inner", Produced::default()).unwrap();
        l.left_join(
            &r,
            move |a, b| format!("{a}+{}", opt(b)),
            Materialized::default().with_value_serde(Serdes::string()),
        )
        .unwrap()
        .to_stream()
        .unwrap()
        .to("left-out", Produced::default())
        .unwrap();
        l.outer_join(
            &r,
            move |a, b| format!("{}+{}", opt(a), opt(b)),
            Materialized::default().with_value_serde(Serdes::string()),
        )
        .unwrap()
        .to_stream()
        .unwrap()
        .to("outer", Produced::default())
        .unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 1, "both tables and the joins share one sub-topology");
        let d = t.describe();
        assert!(d.contains("KTABLE-JOINTHIS-") && d.contains("KTABLE-JOINOTHER-"), "{d}");
        let driver = TopologyTestDriver::new(t).unwrap();
        let (mut li, mut ri) = (input(&driver, "left"), input(&driver, "right"));
        li.pipe_input_at("a".into(), "1".into(), 1).unwrap();
        ri.pipe_input_at("a".into(), "x".into(), 2).unwrap();
        ri.pipe_input_at("b".into(), "y".into(), 3).unwrap();
        li.pipe_input_at("a".into(), "2".into(), 4).unwrap();
        let store: TsStore<String, String> = driver.state_store("inner-store").unwrap();
        assert_eq!(store.get(&"a".to_string()).unwrap().map(|v| v.value), Some("2+x".to_string()));
        ri.pipe_tombstone_at("a".into(), 5).unwrap();
        li.pipe_tombstone_at("a".into(), 6).unwrap();
        ri.pipe_tombstone_at("b".into(), 7).unwrap();
        let inner_records = driver
            .create_output_topic("inner", Serdes::string(), Serdes::option(Serdes::string()))
            .read_records_to_list()
            .unwrap();
        assert_eq!(
            inner_records.iter().map(|r| (r.key.clone(), r.value.clone(), r.timestamp)).collect::<Vec<_>>(),
            vec![
                ("a".to_string(), Some("1+x".to_string()), 2),
                ("a".to_string(), Some("2+x".to_string()), 4),
                ("a".to_string(), None, 5)
            ]
        );
        assert_eq!(store.get(&"a".to_string()).unwrap(), None);
        assert_eq!(
            read(&driver, "left-out"),
            vec![some("a", "1+null"), some("a", "1+x"), some("a", "2+x"), some("a", "2+null"), none("a")]
        );
        assert_eq!(
            read(&driver, "outer"),
            vec![
                some("a", "1+null"),
                some("a", "1+x"),
                some("b", "null+y"),
                some("a", "2+x"),
                some("a", "2+null"),
                none("a"),
                none("b")
            ]
        );
    }

    #[test]
    fn stream_to_table_upserts_and_repartitions_after_a_key_change() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", ss()).unwrap();
        let t = s.to_table(Materialized::as_store("latest")).unwrap();
        t.to_stream().unwrap().to("out", Produced::default()).unwrap();
        let Err(rekeyed) = s.select_key(|_, v| v.clone()).unwrap().to_table(Materialized::default()) else {
            panic!("a table of a re-keyed stream without a key serde was built")
        };
        assert!(rekeyed.to_string().contains("to_table needs a key serde"), "{rekeyed}");
        let by_value = s
            .select_key(|_, v| v.clone())
            .unwrap()
            .to_table(Materialized::default().with_key_serde(Serdes::string()))
            .unwrap();
        by_value.to_stream().unwrap().to("by-value", Produced::default()).unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 2);
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut i = input(&driver, "in");
        i.pipe_input_at("k".into(), "v1".into(), 1).unwrap();
        i.pipe_input_at("k".into(), "v2".into(), 2).unwrap();
        assert_eq!(read(&driver, "out"), vec![some("k", "v1"), some("k", "v2")]);
        assert_eq!(read(&driver, "by-value"), vec![some("v1", "v1"), some("v2", "v2")]);
        let rep: Vec<String> = driver
            .written("test-app-KSTREAM-TOTABLE-0000000006-repartition")
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap_or_default()).unwrap_or_default())
            .collect();
        assert_eq!(rep, vec!["v1", "v2"]);
        let store: TsStore<String, String> = driver.state_store("latest").unwrap();
        assert_eq!(store.get(&"k".to_string()).unwrap().map(|v| v.value), Some("v2".to_string()));
    }

    #[test]
    fn a_stream_of_options_becomes_a_table_with_deletes() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", ss()).unwrap();
        let opts = s.map_values(|_, v| if v == "del" { None } else { Some(v) }).unwrap();
        assert!(opts.to_table_with_deletes(Materialized::default()).is_err(), "no value serde");
        let t = opts.to_table_with_deletes(Materialized::as_store("t").with_value_serde(Serdes::string())).unwrap();
        // a table's changelog stream read back as a table: serdes come from the stream
        let copy = t.to_stream().unwrap().to_table_with_deletes(Materialized::as_store("copy")).unwrap();
        copy.to_stream().unwrap().to("out", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = input(&driver, "in");
        i.pipe_input_at("a".into(), "1".into(), 1).unwrap();
        i.pipe_input_at("b".into(), "2".into(), 2).unwrap();
        i.pipe_input_at("a".into(), "del".into(), 3).unwrap();
        assert_eq!(read(&driver, "out"), vec![some("a", "1"), some("b", "2"), none("a")]);
        let store: TsStore<String, String> = driver.state_store("copy").unwrap();
        let rows: Vec<(String, String)> = store.all().unwrap().into_iter().map(|(k, v)| (k, v.value)).collect();
        assert_eq!(rows, vec![("b".to_string(), "2".to_string())]);
    }
}
