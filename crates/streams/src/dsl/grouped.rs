//! `KGroupedStream` and `KGroupedTable`: count, reduce, aggregate into a
//! table (a `KeyValueStore<K, ValueAndTimestamp<VA>>` named by
//! `Materialized`, else `KSTREAM-AGGREGATE-STATE-STORE-N` /
//! `KSTREAM-REDUCE-STATE-STORE-N` / `KTABLE-AGGREGATE-STATE-STORE-N` /
//! `KTABLE-REDUCE-STATE-STORE-N`, as Kafka Streams names them). The result
//! table's node forwards `Change{new, old}` (`old: None` when the key had
//! no aggregate yet).
//!
//! A grouped stream is repartitioned before aggregating when its key changed
//! (`group_by`, or a `map`/`select_key`/... upstream), through
//! `<Grouped name, else the store name>-repartition`.
//!
//! A grouped table is always repartitioned (`KTable::group_by` maps each row
//! to a new key and value, node `KTABLE-SELECT-N`): an update of a row
//! subtracts its old mapped value from the old group and adds its new mapped
//! value to the new group. Old and new travel as one [`Change`] in the
//! repartition topic's value, with Kafka's `ChangedSerializer` layout
//! ([`ChangeSerde`]): one record carrying both when the row stays in its
//! group (same serialized key: the subtractor runs before the adder, in one
//! store update, as Kafka 3.5+ does), else two records, `{old}` to the old
//! group's key and `{new}` to the new one's.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use super::kstream::KStream;
use super::ktable::{add_table_store, put_or_delete, serde_or, store_name, Change, KTable, TsStore, ValueAndTimestamp};
use super::options::{Grouped, Materialized};
use super::Shared;
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{Serde, SerdeRef, Serdes};
use crate::Data;

/// A stream grouped by key, to aggregate (see the module docs).
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    /// `Grouped`'s serdes and name (win over the stream's).
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Groups the records by their key (repartitioned before aggregating if
    /// the key changed upstream).
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> Result<KGroupedStream<K, V>> {
        Ok(KGroupedStream::new(self.clone(), grouped))
    }

    /// Groups the records by the key `f` selects (node `KSTREAM-KEY-SELECT-N`;
    /// always repartitioned before aggregating).
    pub fn group_by<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> Result<KGroupedStream<K2, V>> {
        Ok(KGroupedStream::new(self.select_key(f)?, grouped))
    }
}

/// Updates a stream aggregate: (key, value, the key's aggregate so far) ->
/// the new aggregate.
type StreamAggFn<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;

/// Kafka's `KStreamAggregate` / `KStreamReduce`.
struct StreamAggregate<K, V, VA> {
    f: StreamAggFn<K, V, VA>,
    /// To find keys that serialize to null bytes (Kafka's null keys: skipped).
    key_serde: SerdeRef<K>,
    store_name: String,
    store: Option<TsStore<K, VA>>,
}

/// Whether `key` is what Kafka calls a null key: one its serde writes as
/// null bytes (`None` of an `Option` key); aggregations skip those records.
/// (`store`: serdes see the store's changelog topic, as the store's own do.)
fn null_key<K: Data, V: Data>(
    key_serde: &SerdeRef<K>,
    key: &K,
    store: &str,
    ctx: &ProcessorContext<'_, K, V>,
) -> Result<bool> {
    let topic = format!("{}-{store}-changelog", ctx.application_id());
    if key_serde.serialize(&topic, key)?.is_some() {
        return Ok(false);
    }
    let at = ctx.record_metadata().map(|m| format!("{}-{}@{}", m.topic, m.partition, m.offset));
    tracing::warn!(node = %ctx.node_name(), at = ?at, "skipping a record with a null key (nothing to group it by)");
    Ok(true)
}

fn opened<'a, S>(store: &'a Option<S>, name: &str) -> Result<&'a S> {
    store.as_ref().ok_or_else(|| StreamsError::store(name, "used before its processor was initialized"))
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, K, Change<VA>> for StreamAggregate<K, V, VA> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>, record: Record<K, V>) -> Result<()> {
        if null_key(&self.key_serde, &record.key, &self.store_name, ctx)? {
            return Ok(());
        }
        let store = opened(&self.store, &self.store_name)?;
        let old = store.get(&record.key)?;
        let ts = old.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
        let old = old.map(|o| o.value);
        let new = (self.f)(&record.key, record.value.clone(), old.clone());
        store.put(&record.key, &ValueAndTimestamp { value: new.clone(), timestamp: ts })?;
        let Record { key, headers, .. } = record;
        ctx.forward(Record { key, value: Change { new: Some(new), old }, timestamp: ts, headers })
    }
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// `Grouped`'s serdes are also set on `stream` (windowed aggregations
    /// read them there).
    fn new(mut stream: KStream<K, V>, grouped: Grouped<K, V>) -> Self {
        stream.key_serde = grouped.key.clone().or(stream.key_serde);
        stream.value_serde = grouped.value.clone().or(stream.value_serde);
        KGroupedStream { stream, key: grouped.key, value: grouped.value, name: grouped.name }
    }

    /// The stream to aggregate: repartitioned through `<name>-repartition`
    /// if its key changed (name: `Grouped`'s, else `default_name`), with
    /// `Grouped`'s serdes winning, then the stream's, then `key_fallback`
    /// (the store's key serde, from `Materialized`).
    pub(crate) fn repartitioned(&self, default_name: &str, key_fallback: Option<SerdeRef<K>>) -> Result<KStream<K, V>> {
        let name = self.name.clone().unwrap_or_else(|| default_name.to_string());
        let key = self.key.clone().or_else(|| self.stream.key_serde.clone()).or(key_fallback);
        self.stream.repartition_if_required(&name, key, self.value.clone())
    }

    fn aggregate_with<VA: Data>(
        &self,
        prefix: &str,
        f: StreamAggFn<K, V, VA>,
        m: Materialized<K, VA>,
        value_fallback: Option<SerdeRef<VA>>,
        op: &str,
    ) -> Result<KTable<K, VA>> {
        let (store, node) = {
            let mut b = self.stream.builder.borrow_mut();
            let store = store_name(&mut b, &m, &format!("{prefix}-"))?;
            (store, b.new_name(prefix))
        };
        let value = serde_or(m.value.clone(), value_fallback, op, "value")?;
        let source = self.repartitioned(&store, m.key.clone())?;
        let key = serde_or(m.key.clone(), source.key_serde.clone(), op, "key")?;
        let mut b = self.stream.builder.borrow_mut();
        let (sn, ks) = (store.clone(), key.clone());
        b.topology.add_processor(
            &node,
            move || StreamAggregate { f: f.clone(), key_serde: ks.clone(), store_name: sn.clone(), store: None },
            &[&source.node],
        )?;
        add_table_store(&mut b, &store, key.clone(), value.clone(), &m, &[&node])?;
        Ok(KTable {
            builder: self.stream.builder.clone(),
            node,
            key_serde: Some(key),
            value_serde: Some(value),
            store: Some(store),
        })
    }

    /// The number of records per key (value serde: `Materialized`'s, else
    /// Kafka's long serde).
    pub fn count(&self, materialized: Materialized<K, i64>) -> Result<KTable<K, i64>> {
        let f: StreamAggFn<K, V, i64> = Arc::new(|_, _, old| old.unwrap_or(0) + 1);
        self.aggregate_with("KSTREAM-AGGREGATE", f, materialized, Some(Serdes::i64()), "count")
    }

    /// Per key, the first value, then `reducer(aggregate, value)` for each next one.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<K, V>> {
        let f: StreamAggFn<K, V, V> = Arc::new(move |_, v, old| match old {
            Some(agg) => reducer(agg, v),
            None => v,
        });
        let fallback = self.value.clone().or_else(|| self.stream.value_serde.clone());
        self.aggregate_with("KSTREAM-REDUCE", f, materialized, fallback, "reduce")
    }

    /// Per key, `aggregator(key, value, aggregate)` from `initializer()`.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> Result<KTable<K, VA>> {
        let f: StreamAggFn<K, V, VA> = Arc::new(move |k, v, old| aggregator(k, v, old.unwrap_or_else(&initializer)));
        self.aggregate_with("KSTREAM-AGGREGATE", f, materialized, None, "aggregate")
    }
}

/// Makes the repartitioned stream of a grouped table's changes, given the
/// repartition name and the serdes of the new key and value.
type GroupedSource<K, V> = Rc<dyn Fn(&str, [&str; 2], SerdeRef<K>, SerdeRef<V>) -> Result<KStream<K, Change<V>>>>;

/// A table grouped by a new key, to aggregate (see the module docs).
pub struct KGroupedTable<K, V> {
    pub(crate) builder: Shared,
    source: GroupedSource<K, V>,
    key: Option<SerdeRef<K>>,
    value: Option<SerdeRef<V>>,
    name: Option<String>,
}

/// Maps a table row to its group's key and the value to aggregate.
type Selector<K, V, K2, V2> = Arc<dyn Fn(&K, &V) -> (K2, V2) + Send + Sync>;

/// Kafka's `KTableRepartitionMap` (`KTABLE-SELECT-N`): maps a row's old and
/// new values to their groups (see the module docs).
struct TableSelect<K, V, K2, V2> {
    f: Selector<K, V, K2, V2>,
    key_serde: SerdeRef<K2>,
    /// The repartition topic's name without the application id.
    topic: String,
}

impl<K: Data, V: Data, K2: Data, V2: Data> Processor<K, Change<V>, K2, Change<V2>> for TableSelect<K, V, K2, V2> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K2, Change<V2>>, record: Record<K, Change<V>>) -> Result<()> {
        let new = record.value.new.as_ref().map(|v| (self.f)(&record.key, v));
        let old = record.value.old.as_ref().map(|v| (self.f)(&record.key, v));
        let at = |key: K2, change: Change<V2>| Record {
            key,
            value: change,
            timestamp: record.timestamp,
            headers: record.headers.clone(),
        };
        // a pair whose key serializes to null bytes (Kafka's null key) is skipped
        let topic = format!("{}-{}", ctx.application_id(), self.topic);
        let with_bytes = |pair: Option<(K2, V2)>| -> Result<Option<(K2, V2, Vec<u8>)>> {
            let Some((k, v)) = pair else { return Ok(None) };
            Ok(self.key_serde.serialize(&topic, &k)?.map(|b| (k, v, b)))
        };
        let (new, old) = (with_bytes(new)?, with_bytes(old)?);
        match (new, old) {
            (Some((nk, nv, nb)), Some((ok, ov, ob))) => {
                if nb == ob {
                    ctx.forward(at(nk, Change { new: Some(nv), old: Some(ov) }))
                } else {
                    ctx.forward(at(ok, Change { new: None, old: Some(ov) }))?;
                    ctx.forward(at(nk, Change { new: Some(nv), old: None }))
                }
            }
            (None, Some((ok, ov, _))) => ctx.forward(at(ok, Change { new: None, old: Some(ov) })),
            (Some((nk, nv, _)), None) => ctx.forward(at(nk, Change { new: Some(nv), old: None })),
            (None, None) => Ok(()),
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Groups the table's rows by the key and value `f` maps each to (node
    /// `KTABLE-SELECT-N`), to aggregate: always repartitioned (see the
    /// module docs).
    pub fn group_by<K2: Data, V2: Data>(
        &self,
        f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped<K2, V2>,
    ) -> Result<KGroupedTable<K2, V2>> {
        let select = self.builder.borrow_mut().new_name("KTABLE-SELECT");
        let f: Selector<K, V, K2, V2> = Arc::new(f);
        let added = Rc::new(Cell::new(false));
        let table = self.clone();
        let source: GroupedSource<K2, V2> = Rc::new(move |name, [sink, source], key, value| {
            let selected: KStream<K2, Change<V2>> = KStream {
                builder: table.builder.clone(),
                node: select.clone(),
                key_serde: Some(key.clone()),
                value_serde: None,
                repartition_required: true,
            };
            if !added.get() {
                let (f, key_serde, topic) = (f.clone(), key.clone(), format!("{name}-repartition"));
                table.builder.borrow_mut().topology.add_processor(
                    &select,
                    move || TableSelect { f: f.clone(), key_serde: key_serde.clone(), topic: topic.clone() },
                    &[&table.node],
                )?;
                added.set(true);
            }
            let change: SerdeRef<Change<V2>> = Arc::new(ChangeSerde(value));
            selected.repartition_with_nodes(name, sink, source, Some(key), Some(change))
        });
        Ok(KGroupedTable {
            builder: self.builder.clone(),
            source,
            key: grouped.key,
            value: grouped.value,
            name: grouped.name,
        })
    }
}

/// A table aggregate's adder: (key, value, the aggregate so far) -> the new aggregate.
type TableAddFn<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;
/// A table aggregate's subtractor.
type TableSubFn<K, V, VA> = Arc<dyn Fn(&K, V, VA) -> VA + Send + Sync>;

/// Kafka's `KTableAggregate` / `KTableReduce`: subtracts the old value from
/// the group's aggregate, then adds the new one.
struct TableAggregate<K, V, VA> {
    add: TableAddFn<K, V, VA>,
    sub: TableSubFn<K, V, VA>,
    store_name: String,
    store: Option<TsStore<K, VA>>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, Change<V>, K, Change<VA>> for TableAggregate<K, V, VA> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>, record: Record<K, Change<V>>) -> Result<()> {
        let store = opened(&self.store, &self.store_name)?;
        let old = store.get(&record.key)?;
        let ts = old.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
        let old = old.map(|o| o.value);
        let Change { new: new_value, old: old_value } = record.value.clone();
        let intermediate = match (old_value, old.clone()) {
            (Some(v), Some(agg)) => Some((self.sub)(&record.key, v, agg)),
            (_, agg) => agg,
        };
        let new = match new_value {
            Some(v) => Some((self.add)(&record.key, v, intermediate)),
            None => intermediate,
        };
        put_or_delete(store, &record.key, new.clone(), ts)?;
        let Record { key, headers, .. } = record;
        ctx.forward(Record { key, value: Change { new, old }, timestamp: ts, headers })
    }
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    #[allow(clippy::too_many_arguments)]
    fn aggregate_with<VA: Data>(
        &self,
        prefix: &str,
        add: TableAddFn<K, V, VA>,
        sub: TableSubFn<K, V, VA>,
        m: Materialized<K, VA>,
        value_fallback: Option<SerdeRef<VA>>,
        repartition_value_fallback: Option<SerdeRef<V>>,
        op: &str,
    ) -> Result<KTable<K, VA>> {
        // names in Kafka's order: store, repartition sink and source, aggregation
        let (store, sink, source, node) = {
            let mut b = self.builder.borrow_mut();
            let store = store_name(&mut b, &m, &format!("{prefix}-"))?;
            (store, b.new_name("KSTREAM-SINK"), b.new_name("KSTREAM-SOURCE"), b.new_name(prefix))
        };
        let key = serde_or(self.key.clone(), m.key.clone(), op, "key")?;
        let grouped_value = serde_or(self.value.clone(), repartition_value_fallback, op, "value (Grouped)")?;
        let value = serde_or(m.value.clone(), value_fallback, op, "value")?;
        let name = self.name.clone().unwrap_or_else(|| store.clone());
        let source = (self.source)(&name, [&sink, &source], key.clone(), grouped_value)?;
        let store_key = m.key.clone().unwrap_or_else(|| key.clone());
        let mut b = self.builder.borrow_mut();
        let sn = store.clone();
        b.topology.add_processor(
            &node,
            move || TableAggregate { add: add.clone(), sub: sub.clone(), store_name: sn.clone(), store: None },
            &[&source.node],
        )?;
        add_table_store(&mut b, &store, store_key.clone(), value.clone(), &m, &[&node])?;
        Ok(KTable {
            builder: self.builder.clone(),
            node,
            key_serde: Some(store_key),
            value_serde: Some(value),
            store: Some(store),
        })
    }

    /// The number of rows per group.
    pub fn count(&self, materialized: Materialized<K, i64>) -> Result<KTable<K, i64>> {
        let add: TableAddFn<K, V, i64> = Arc::new(|_, _, agg| agg.unwrap_or(0) + 1);
        let sub: TableSubFn<K, V, i64> = Arc::new(|_, _, agg| agg - 1);
        self.aggregate_with(
            "KTABLE-AGGREGATE",
            add,
            sub,
            materialized,
            Some(Serdes::i64()),
            None,
            "KGroupedTable.count",
        )
    }

    /// Per group, `adder(aggregate, value)` for each new row value (the first
    /// one is the aggregate) and `subtractor(aggregate, value)` for each old one.
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<K, V>> {
        let add: TableAddFn<K, V, V> = Arc::new(move |_, v, agg| match agg {
            Some(a) => adder(a, v),
            None => v,
        });
        let sub: TableSubFn<K, V, V> = Arc::new(move |_, v, agg| subtractor(agg, v));
        let fallback = materialized.value.clone();
        self.aggregate_with(
            "KTABLE-REDUCE",
            add,
            sub,
            materialized,
            self.value.clone(),
            fallback,
            "KGroupedTable.reduce",
        )
    }

    /// Per group, from `initializer()`: `adder(key, value, aggregate)` for each
    /// new row value, `subtractor(key, value, aggregate)` for each old one.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> Result<KTable<K, VA>> {
        let add: TableAddFn<K, V, VA> = Arc::new(move |k, v, agg| adder(k, v, agg.unwrap_or_else(&initializer)));
        let sub: TableSubFn<K, V, VA> = Arc::new(subtractor);
        self.aggregate_with("KTABLE-AGGREGATE", add, sub, materialized, None, None, "KGroupedTable.aggregate")
    }
}

/// A [`Change`] in Kafka's `ChangedSerializer` layout over the value's
/// serde: `{old}{0}`, `{new}{1}`, or `{varint len(new)}{new}{old}{2}` (the
/// varint zig-zag encoded, as Kafka's `ByteUtils.writeVarint`). A change
/// with neither value is refused (nothing sends one).
pub struct ChangeSerde<V>(pub SerdeRef<V>);

fn write_varint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a zig-zag varint; (value, bytes read).
fn read_varint(b: &[u8]) -> Option<(i32, usize)> {
    let mut v: u32 = 0;
    for (i, byte) in b.iter().enumerate().take(5) {
        v |= ((byte & 0x7f) as u32) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((((v >> 1) as i32) ^ -((v & 1) as i32), i + 1));
        }
    }
    None
}

impl<V: Data> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, topic: &str, c: &Change<V>) -> Result<Option<Vec<u8>>> {
        let bytes = |v: &V| -> Result<Vec<u8>> { Ok(self.0.serialize(topic, v)?.unwrap_or_default()) };
        let out = match (&c.new, &c.old) {
            (Some(n), Some(o)) => {
                let (n, o) = (bytes(n)?, bytes(o)?);
                let len = i32::try_from(n.len())
                    .map_err(|_| StreamsError::serde(topic, "a value longer than 2 GiB in a table change"))?;
                let mut out = Vec::with_capacity(n.len() + o.len() + 6);
                write_varint(((len << 1) ^ (len >> 31)) as u32, &mut out);
                out.extend_from_slice(&n);
                out.extend_from_slice(&o);
                out.push(2);
                out
            }
            (Some(n), None) => {
                let mut out = bytes(n)?;
                out.push(1);
                out
            }
            (None, Some(o)) => {
                let mut out = bytes(o)?;
                out.push(0);
                out
            }
            (None, None) => {
                return Err(StreamsError::serde(topic, "a table change with neither an old nor a new value"))
            }
        };
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Change<V>> {
        let data = data.ok_or_else(|| StreamsError::serde(topic, "null bytes for a table change"))?;
        let (flag, body) =
            data.split_last().ok_or_else(|| StreamsError::serde(topic, "an empty table change (no encoding flag)"))?;
        let value = |b: &[u8]| self.0.deserialize(topic, Some(b));
        match flag {
            0 => Ok(Change { new: None, old: Some(value(body)?) }),
            1 => Ok(Change { new: Some(value(body)?), old: None }),
            2 => {
                let bad = || StreamsError::serde(topic, "a table change whose new value's length is out of bounds");
                let (len, n) = read_varint(body).ok_or_else(bad)?;
                let len = usize::try_from(len).map_err(|_| bad())?;
                let rest = &body[n..];
                if len > rest.len() {
                    return Err(bad());
                }
                Ok(Change { new: Some(value(&rest[..len])?), old: Some(value(&rest[len..])?) })
            }
            f => Err(StreamsError::serde(topic, format!("a table change with the unknown encoding flag {f}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::options::{Consumed, Produced};
    use crate::dsl::StreamsBuilder;
    use crate::test_driver::TopologyTestDriver;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn word_count_repartitions_by_word_and_counts() {
        let b = StreamsBuilder::new();
        let lines = b.stream("lines", Consumed::with(Serdes::option(Serdes::string()), Serdes::string())).unwrap();
        let counts = lines
            .flat_map_values(|_, l| l.to_lowercase().split_whitespace().map(String::from).collect::<Vec<_>>())
            .unwrap()
            .group_by(|_, w| w.clone(), Grouped::with(Serdes::string(), Serdes::string()))
            .unwrap()
            .count(Materialized::default())
            .unwrap();
        assert_eq!(counts.queryable_store_name(), Some("KSTREAM-AGGREGATE-STATE-STORE-0000000003"));
        assert_eq!(counts.node, "KSTREAM-AGGREGATE-0000000004");
        counts.to_stream().unwrap().to("counts", Produced::default()).unwrap();
        let t = b.build().unwrap();
        let subs = t.subtopologies();
        assert_eq!(subs.len(), 2, "{}", t.describe());
        assert_eq!(subs[1].stores, vec![s("KSTREAM-AGGREGATE-STATE-STORE-0000000003")]);
        // Kafka's names: the repartition takes three indexes (sink, filter, source)
        let names = |i: usize| subs[i].nodes.iter().map(|n| t.nodes[*n].name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(0),
            vec![
                "KSTREAM-SOURCE-0000000000",
                "KSTREAM-FLATMAPVALUES-0000000001",
                "KSTREAM-KEY-SELECT-0000000002",
                "KSTREAM-SINK-0000000005"
            ]
        );
        assert_eq!(
            names(1),
            vec![
                "KSTREAM-SOURCE-0000000007",
                "KSTREAM-AGGREGATE-0000000004",
                "KTABLE-TOSTREAM-0000000008",
                "KSTREAM-SINK-0000000009"
            ]
        );
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("lines", Serdes::option(Serdes::string()), Serdes::string());
        input.pipe_value_at(s("Hello world"), 1).unwrap();
        input.pipe_value_at(s("hello  Kafka"), 2).unwrap();
        let rep = driver.written("test-app-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition");
        let rep: Vec<(Vec<u8>, Vec<u8>)> =
            rep.into_iter().map(|r| (r.key.unwrap_or_default(), r.value.unwrap_or_default())).collect();
        let words: Vec<(Vec<u8>, Vec<u8>)> = ["hello", "world", "hello", "kafka"]
            .iter()
            .map(|w| (w.as_bytes().to_vec(), w.as_bytes().to_vec()))
            .collect();
        assert_eq!(rep, words);
        let out = driver.create_output_topic("counts", Serdes::string(), Serdes::option(Serdes::i64()));
        assert_eq!(
            out.read_key_values_to_list().unwrap(),
            vec![(s("hello"), Some(1)), (s("world"), Some(1)), (s("hello"), Some(2)), (s("kafka"), Some(1))]
        );
        let store: TsStore<String, i64> = driver.state_store("KSTREAM-AGGREGATE-STATE-STORE-0000000003").unwrap();
        assert_eq!(store.get(&s("hello")).unwrap(), Some(ValueAndTimestamp { value: 2, timestamp: 2 }));
        assert_eq!(driver.written("test-app-KSTREAM-AGGREGATE-STATE-STORE-0000000003-changelog").len(), 4);
    }

    #[test]
    fn grouped_stream_reduce_and_aggregate() {
        let b = StreamsBuilder::new();
        let st = b.stream("in", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        // by key: no repartition
        let joined = st
            .group_by_key(Grouped::default())
            .unwrap()
            .reduce(|a, v| format!("{a},{v}"), Materialized::as_store("joined"))
            .unwrap();
        assert_eq!(joined.node, "KSTREAM-REDUCE-0000000001");
        joined.to_stream().unwrap().to("joined", Produced::default()).unwrap();
        // by first letter of the value, through the Grouped name's topic
        let lens = st
            .group_by(|_, v| v[..1].to_string(), Grouped::key_serde(Serdes::string()).with_name("by-letter"))
            .unwrap()
            .aggregate(|| 100i64, |_, v, agg| agg + v.len() as i64, Materialized::with(Serdes::string(), Serdes::i64()))
            .unwrap();
        lens.to_stream().unwrap().to("lens", Produced::default()).unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 2);
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        input.pipe_input_at(s("k"), s("ab"), 5).unwrap();
        input.pipe_input_at(s("k"), s("cde"), 3).unwrap();
        input.pipe_input_at(s("j"), s("af"), 4).unwrap();
        let out = driver.create_output_topic("joined", Serdes::string(), Serdes::option(Serdes::string()));
        let recs = out.read_records_to_list().unwrap();
        assert_eq!(
            recs.iter().map(|r| (r.key.clone(), r.value.clone(), r.timestamp)).collect::<Vec<_>>(),
            // an aggregate's timestamp is the latest of its records'
            vec![(s("k"), Some(s("ab")), 5), (s("k"), Some(s("ab,cde")), 5), (s("j"), Some(s("af")), 4)]
        );
        assert_eq!(driver.written("test-app-by-letter-repartition").len(), 3);
        let lens = driver.create_output_topic("lens", Serdes::string(), Serdes::option(Serdes::i64()));
        assert_eq!(
            lens.read_key_values_to_list().unwrap(),
            vec![(s("a"), Some(102)), (s("c"), Some(103)), (s("a"), Some(104))]
        );
    }

    #[test]
    fn aggregating_a_stream_without_a_value_serde_is_a_build_error() {
        let b = StreamsBuilder::new();
        let st = b.stream("in", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        let Err(e) =
            st.group_by_key(Grouped::default()).unwrap().aggregate(|| 0u8, |_, _, a| a, Materialized::default())
        else {
            panic!("built without a value serde")
        };
        assert!(e.to_string().contains("aggregate needs a value serde"), "{e}");
    }

    #[test]
    fn grouped_table_moves_a_row_between_groups() {
        let b = StreamsBuilder::new();
        let users =
            b.table("users", Consumed::with(Serdes::string(), Serdes::string()), Materialized::default()).unwrap();
        let by_region = users
            .group_by(|user, region| (region.clone(), user.clone()), Grouped::with(Serdes::string(), Serdes::string()))
            .unwrap();
        let counts = by_region.count(Materialized::as_store("region-counts")).unwrap();
        counts.to_stream().unwrap().to("counts", Produced::default()).unwrap();
        let members = by_region
            .aggregate(
                String::new,
                |_, user, agg| {
                    let mut v: Vec<String> = agg.split(',').filter(|u| !u.is_empty()).map(String::from).collect();
                    v.push(user);
                    v.sort();
                    v.join(",")
                },
                |_, user, agg| agg.split(',').filter(|u| *u != user).collect::<Vec<_>>().join(","),
                Materialized::as_store("region-users").with_value_serde(Serdes::string()),
            )
            .unwrap();
        members.to_stream().unwrap().to("members", Produced::default()).unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 3, "{}", t.describe());
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("users", Serdes::string(), Serdes::string());
        input.pipe_input_at(s("alice"), s("eu"), 1).unwrap();
        input.pipe_input_at(s("bob"), s("eu"), 2).unwrap();
        input.pipe_input_at(s("alice"), s("us"), 3).unwrap(); // moves group: two records
        input.pipe_input_at(s("bob"), s("eu"), 4).unwrap(); // same group: one record, subtract then add
        input.pipe_tombstone_at(s("alice"), 5).unwrap();
        let counts = driver.create_output_topic("counts", Serdes::string(), Serdes::option(Serdes::i64()));
        assert_eq!(
            counts.read_key_values_to_list().unwrap(),
            vec![
                (s("eu"), Some(1)),
                (s("eu"), Some(2)),
                (s("eu"), Some(1)),
                (s("us"), Some(1)),
                (s("eu"), Some(1)),
                (s("us"), Some(0))
            ]
        );
        let members = driver.create_output_topic("members", Serdes::string(), Serdes::option(Serdes::string()));
        assert_eq!(
            members.read_key_values_to_list().unwrap(),
            vec![
                (s("eu"), Some(s("alice"))),
                (s("eu"), Some(s("alice,bob"))),
                (s("eu"), Some(s("bob"))),
                (s("us"), Some(s("alice"))),
                (s("eu"), Some(s("bob"))),
                (s("us"), Some(s("")))
            ]
        );
        // the repartition topic carries Kafka's Change layout
        let rep: Vec<(Vec<u8>, Vec<u8>)> = driver
            .written("test-app-region-counts-repartition")
            .into_iter()
            .map(|r| (r.key.unwrap_or_default(), r.value.unwrap_or_default()))
            .collect();
        let rec = |k: &str, v: &[u8]| (k.as_bytes().to_vec(), v.to_vec());
        assert_eq!(
            rep,
            vec![
                rec("eu", b"alice\x01"),
                rec("eu", b"bob\x01"),
                rec("eu", b"alice\x00"),
                rec("us", b"alice\x01"),
                rec("eu", b"\x06bobbob\x02"),
                rec("us", b"alice\x00"),
            ]
        );
        assert_eq!(driver.written("test-app-region-users-repartition").len(), 6);
    }

    #[test]
    fn grouped_table_reduce_sums_with_adder_and_subtractor() {
        let b = StreamsBuilder::new();
        let items = b.table("items", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::default()).unwrap();
        let total = items
            .group_by(|_, p| (s("total"), *p), Grouped::with(Serdes::string(), Serdes::i64()).with_name("all-items"))
            .unwrap()
            .reduce(|a, b| a + b, |a, b| a - b, Materialized::default())
            .unwrap();
        assert!(total.queryable_store_name().is_some_and(|n| n.starts_with("KTABLE-REDUCE-STATE-STORE-")));
        total.to_stream().unwrap().to("total", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut input = driver.create_input_topic("items", Serdes::string(), Serdes::i64());
        input.pipe_input_at(s("a"), 5, 1).unwrap();
        input.pipe_input_at(s("b"), 7, 2).unwrap();
        input.pipe_input_at(s("a"), 3, 3).unwrap();
        input.pipe_tombstone_at(s("b"), 4).unwrap();
        let out = driver.create_output_topic("total", Serdes::string(), Serdes::option(Serdes::i64()));
        let got: Vec<Option<i64>> = out.read_key_values_to_list().unwrap().into_iter().map(|(_, v)| v).collect();
        assert_eq!(got, vec![Some(5), Some(12), Some(10), Some(3)]);
        // the Grouped name names the repartition topic; a: 5 -> 3 stays in its group: one record
        assert_eq!(driver.written("test-app-all-items-repartition").len(), 4);
    }

    #[test]
    fn change_serde_round_trips_and_refuses_bad_bytes() {
        let serde = ChangeSerde(Serdes::string());
        for c in [
            Change { new: Some(s("n")), old: None },
            Change { new: None, old: Some(s("o")) },
            Change { new: Some(s("")), old: Some(s("old")) },
            Change { new: Some("x".repeat(300)), old: Some(s("y")) },
        ] {
            let bytes = serde.serialize("t", &c).unwrap();
            assert_eq!(serde.deserialize("t", bytes.as_deref()).unwrap(), c);
        }
        assert!(serde.serialize("t", &Change { new: None, old: None }).is_err());
        for bad in [&b""[..], b"\x07", b"\x7fab\x02", b"\xff\xff\xff\xff\xff\xff\x02", b"\x03ab\x02"] {
            assert!(serde.deserialize("t", Some(bad)).is_err(), "{bad:?}");
        }
        assert!(serde.deserialize("t", None).is_err());
    }

    #[test]
    fn records_with_null_keys_are_not_aggregated() {
        let b = StreamsBuilder::new();
        let st = b.stream("in", Consumed::with(Serdes::option(Serdes::string()), Serdes::string())).unwrap();
        st.group_by_key(Grouped::default())
            .unwrap()
            .count(Materialized::as_store("n"))
            .unwrap()
            .to_stream()
            .unwrap()
            .to("out", Produced::default())
            .unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::option(Serdes::string()), Serdes::string());
        input.pipe_input_at(Some(s("k")), s("v"), 1).unwrap();
        input.pipe_value_at(s("v"), 2).unwrap();
        input.pipe_input_at(Some(s("k")), s("v"), 3).unwrap();
        let out = driver.create_output_topic("out", Serdes::option(Serdes::string()), Serdes::option(Serdes::i64()));
        assert_eq!(out.read_key_values_to_list().unwrap(), vec![(Some(s("k")), Some(1)), (Some(s("k")), Some(2))]);
    }
}
