//! `KStream`: a record stream. Stateless operations add one processor node
//! each (named as Kafka Streams names them: `KSTREAM-MAP-0000000001`, ...);
//! `to` adds a sink; stateful operations downstream of a key change (`map`,
//! `flat_map`, `select_key`, `process`) first write to a repartition topic
//! and read it back (in a new sub-topology), so that all records of a key
//! reach one task. `split` makes a [`BranchedKStream`]; `process` plugs a
//! Processor API processor into the DSL, with stores added by
//! [`StreamsBuilder::add_state_store`].

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::options::{Consumed, Produced};
use super::{Shared, StreamsBuilder};
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::SerdeRef;
use crate::state::StoreBuilder;
use crate::topology::TopicName;
use crate::Data;

pub struct KStream<K, V> {
    pub(crate) builder: Shared,
    /// The node whose output this stream is.
    pub(crate) node: String,
    pub(crate) key_serde: Option<SerdeRef<K>>,
    pub(crate) value_serde: Option<SerdeRef<V>>,
    /// A key-changing operation happened since the last source or
    /// repartition: a stateful operation must repartition first.
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            builder: self.builder.clone(),
            node: self.node.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

/// A processor made of a closure: what most DSL operations are.
pub(crate) struct FnProcessor<KIn, VIn, KOut, VOut, F> {
    f: Arc<F>,
    _types: PhantomData<fn(KIn, VIn, KOut, VOut)>,
}

impl<KIn, VIn, KOut, VOut, F> FnProcessor<KIn, VIn, KOut, VOut, F> {
    pub(crate) fn new(f: Arc<F>) -> Self {
        FnProcessor { f, _types: PhantomData }
    }
}

impl<KIn, VIn, KOut, VOut, F> Processor<KIn, VIn, KOut, VOut> for FnProcessor<KIn, VIn, KOut, VOut, F>
where
    KIn: Data,
    VIn: Data,
    KOut: Data,
    VOut: Data,
    F: Fn(&mut ProcessorContext<'_, KOut, VOut>, Record<KIn, VIn>) -> Result<()> + Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>, record: Record<KIn, VIn>) -> Result<()> {
        (self.f)(ctx, record)
    }
}

impl StreamsBuilder {
    /// A stream of the records of `topic`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> Result<KStream<K, V>> {
        self.stream_topics(&[topic], consumed)
    }

    /// A stream of the records of several topics.
    pub fn stream_topics<K: Data, V: Data>(&self, topics: &[&str], consumed: Consumed<K, V>) -> Result<KStream<K, V>> {
        let mut b = self.inner.borrow_mut();
        let name = consumed.name.clone().unwrap_or_else(|| b.new_name("KSTREAM-SOURCE"));
        b.topology.add_source_topics(
            &name,
            topics.iter().map(|t| TopicName::user(t)).collect(),
            consumed.key.clone(),
            consumed.value.clone(),
        )?;
        Ok(KStream {
            builder: self.inner.clone(),
            node: name,
            key_serde: Some(consumed.key),
            value_serde: Some(consumed.value),
            repartition_required: false,
        })
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Adds a processor node fed by this stream that runs `f` on each record
    /// and returns its name (`prefix-NNNNNNNNNN` unless `name` is given).
    pub(crate) fn add_fn_node<KOut: Data, VOut: Data, F>(
        &self,
        prefix: &str,
        name: Option<&str>,
        f: F,
    ) -> Result<String>
    where
        F: Fn(&mut ProcessorContext<'_, KOut, VOut>, Record<K, V>) -> Result<()> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut b = self.builder.borrow_mut();
        let node = name.map(str::to_string).unwrap_or_else(|| b.new_name(prefix));
        b.topology.add_processor(&node, move || FnProcessor::<K, V, KOut, VOut, F>::new(f.clone()), &[&self.node])?;
        Ok(node)
    }

    /// A stream of `node`'s output with these serdes.
    pub(crate) fn derive<K2, V2>(
        &self,
        node: String,
        key_serde: Option<SerdeRef<K2>>,
        value_serde: Option<SerdeRef<V2>>,
        repartition_required: bool,
    ) -> KStream<K2, V2> {
        KStream { builder: self.builder.clone(), node, key_serde, value_serde, repartition_required }
    }

    /// The records for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Result<KStream<K, V>> {
        let node = self.add_fn_node("KSTREAM-FILTER", None, move |ctx, r: Record<K, V>| {
            if predicate(&r.key, &r.value) {
                ctx.forward(r)?;
            }
            Ok(())
        })?;
        Ok(self.derive(node, self.key_serde.clone(), self.value_serde.clone(), self.repartition_required))
    }

    /// Each value mapped by `f` (the key, and so the partitioning, is kept).
    pub fn map_values<V2: Data>(&self, f: impl Fn(&K, V) -> V2 + Send + Sync + 'static) -> Result<KStream<K, V2>> {
        let node = self.add_fn_node("KSTREAM-MAPVALUES", None, move |ctx, r: Record<K, V>| {
            let v = f(&r.key, r.value.clone());
            ctx.forward(r.with_value(v))
        })?;
        Ok(self.derive(node, self.key_serde.clone(), None, self.repartition_required))
    }

    /// Writes the stream to `topic` (serdes from `produced`, else the stream's).
    pub fn to(&self, topic: &str, produced: Produced<K, V>) -> Result<()> {
        let key = produced.key.or_else(|| self.key_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!("to({topic}) needs a key serde: give one with Produced::with"))
        })?;
        let value = produced.value.or_else(|| self.value_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!("to({topic}) needs a value serde: give one with Produced::with"))
        })?;
        let mut b = self.builder.borrow_mut();
        let name = produced.name.unwrap_or_else(|| b.new_name("KSTREAM-SINK"));
        b.topology.add_sink_topic(&name, TopicName::user(topic), key, value, &[&self.node])?;
        Ok(())
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// This stream if its records are partitioned by key; after a key
    /// change, the stream read back from the repartition topic
    /// `<application.id>-<name>-repartition` (nodes `<name>-repartition-sink`
    /// and `<name>-repartition-source`, as Kafka Streams names them). Serdes
    /// given here win over the stream's.
    pub(crate) fn repartition_if_required(
        &self,
        name: &str,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Result<KStream<K, V>> {
        if !self.repartition_required {
            let mut s = self.clone();
            s.key_serde = key.or(s.key_serde);
            s.value_serde = value.or(s.value_serde);
            return Ok(s);
        }
        self.repartition_through(name, key, value)
    }

    /// Always through the repartition topic `<application.id>-<name>-repartition`.
    /// Names as Kafka's `createRepartitionedSource`: three name indexes are
    /// taken (sink, null-key filter, source); the sink and source get the
    /// generated names when `name` is itself generated
    /// (`KSTREAM...-NNNNNNNNNN`), else `<name>-repartition-sink` / `-source`.
    pub(crate) fn repartition_through(
        &self,
        name: &str,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Result<KStream<K, V>> {
        let (key, value) = self.repartition_serdes(name, key, value)?;
        let (gen_sink, gen_source) = {
            let mut b = self.builder.borrow_mut();
            let sink = b.new_name("KSTREAM-SINK");
            b.new_name("KSTREAM-FILTER");
            (sink, b.new_name("KSTREAM-SOURCE"))
        };
        let (sink, source) = if is_generated_stream_name(name) {
            (gen_sink, gen_source)
        } else {
            (format!("{name}-repartition-sink"), format!("{name}-repartition-source"))
        };
        self.repartition_with_nodes(name, &sink, &source, Some(key), Some(value))
    }

    fn repartition_serdes(
        &self,
        name: &str,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Result<(SerdeRef<K>, SerdeRef<V>)> {
        let key = key.or_else(|| self.key_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!(
                "repartitioning for {name} needs a key serde (Grouped::with, Materialized::with or repartition's)"
            ))
        })?;
        let value = value.or_else(|| self.value_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!(
                "repartitioning for {name} needs a value serde (Grouped::with, Materialized::with or repartition's)"
            ))
        })?;
        Ok((key, value))
    }

    /// Through `<application.id>-<name>-repartition`, with sink and source
    /// nodes named `sink` and `source`.
    pub(crate) fn repartition_with_nodes(
        &self,
        name: &str,
        sink: &str,
        source: &str,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Result<KStream<K, V>> {
        let (key, value) = self.repartition_serdes(name, key, value)?;
        let topic = TopicName::internal(&format!("{name}-repartition"));
        let mut b = self.builder.borrow_mut();
        b.topology.add_sink_topic(sink, topic.clone(), key.clone(), value.clone(), &[&self.node])?;
        b.topology.add_source_topics(source, vec![topic], key.clone(), value.clone())?;
        Ok(self.derive(source.to_string(), Some(key), Some(value), false))
    }
}

/// Whether `name` is one Kafka Streams generated for a stream operation
/// (`KSTREAM...-` and ten digits: its regex `KSTREAM.*-[0-9]{10}`).
fn is_generated_stream_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with("KSTREAM")
        && b.len() >= 18
        && b[b.len() - 11] == b'-'
        && b[b.len() - 10..].iter().all(u8::is_ascii_digit)
}

/// A predicate of a branch.
type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

impl StreamsBuilder {
    /// Adds a state store that no node uses yet: [`KStream::process`]
    /// connects it to its processor by name (Kafka's `addStateStore`).
    pub fn add_state_store<S>(&self, store: StoreBuilder<S>) -> Result<()> {
        self.inner.borrow_mut().topology.add_state_store(store, &[])?;
        Ok(())
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    fn same_key(&self) -> (Option<SerdeRef<K>>, Option<SerdeRef<V>>, bool) {
        (self.key_serde.clone(), self.value_serde.clone(), self.repartition_required)
    }

    /// The records for which `predicate` does not hold.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Result<KStream<K, V>> {
        let node = self.add_fn_node("KSTREAM-FILTER", None, move |ctx, r: Record<K, V>| {
            if !predicate(&r.key, &r.value) {
                ctx.forward(r)?;
            }
            Ok(())
        })?;
        let (k, v, rep) = self.same_key();
        Ok(self.derive(node, k, v, rep))
    }

    /// Each record mapped to a new key and value: a stateful operation
    /// downstream repartitions first (the serdes of the new types come from
    /// that operation's options).
    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> Result<KStream<K2, V2>> {
        let node = self.add_fn_node("KSTREAM-MAP", None, move |ctx, r: Record<K, V>| {
            let (k, v) = f(r.key, r.value);
            ctx.forward(Record { key: k, value: v, timestamp: r.timestamp, headers: r.headers })
        })?;
        Ok(self.derive(node, None, None, true))
    }

    /// Each record replaced by zero or more records with new keys and values
    /// (repartitions before a stateful operation, as `map`).
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> Result<KStream<K2, V2>>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let node = self.add_fn_node("KSTREAM-FLATMAP", None, move |ctx, r: Record<K, V>| {
            for (k, v) in f(r.key, r.value) {
                ctx.forward(Record { key: k, value: v, timestamp: r.timestamp, headers: r.headers.clone() })?;
            }
            Ok(())
        })?;
        Ok(self.derive(node, None, None, true))
    }

    /// Each value replaced by zero or more values, each with the record's key.
    pub fn flat_map_values<V2: Data, I>(&self, f: impl Fn(&K, V) -> I + Send + Sync + 'static) -> Result<KStream<K, V2>>
    where
        I: IntoIterator<Item = V2>,
    {
        let node = self.add_fn_node("KSTREAM-FLATMAPVALUES", None, move |ctx, r: Record<K, V>| {
            for v in f(&r.key, r.value) {
                ctx.forward(Record {
                    key: r.key.clone(),
                    value: v,
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                })?;
            }
            Ok(())
        })?;
        Ok(self.derive(node, self.key_serde.clone(), None, self.repartition_required))
    }

    /// The records re-keyed by `f` (values kept; repartitions before a
    /// stateful operation).
    pub fn select_key<K2: Data>(&self, f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> Result<KStream<K2, V>> {
        let node = self.add_fn_node("KSTREAM-KEY-SELECT", None, move |ctx, r: Record<K, V>| {
            let k = f(&r.key, &r.value);
            ctx.forward(r.with_key(k))
        })?;
        Ok(self.derive(node, None, self.value_serde.clone(), true))
    }

    /// Calls `f` on each record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> Result<KStream<K, V>> {
        let node = self.add_fn_node("KSTREAM-PEEK", None, move |ctx, r: Record<K, V>| {
            f(&r.key, &r.value);
            ctx.forward(r)
        })?;
        let (k, v, rep) = self.same_key();
        Ok(self.derive(node, k, v, rep))
    }

    /// Calls `f` on each record (a terminal operation).
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> Result<()> {
        self.add_fn_node::<K, V, _>("KSTREAM-FOREACH", None, move |_ctx, r: Record<K, V>| {
            f(&r.key, &r.value);
            Ok(())
        })?;
        Ok(())
    }

    /// Splits the stream by predicates: each record goes to the first branch
    /// whose predicate holds (or to the default branch, else nowhere). The
    /// splitter node is named `name_prefix` (`KSTREAM-BRANCH-NNNNNNNNNN`
    /// when empty) and each branch `<splitter><branch name>`, the keys of
    /// the map the branches come back in, as Kafka's `split(Named)`.
    pub fn split(&self, name_prefix: &str) -> BranchedKStream<K, V> {
        let splitter = if name_prefix.is_empty() {
            self.builder.borrow_mut().new_name("KSTREAM-BRANCH")
        } else {
            name_prefix.to_string()
        };
        BranchedKStream { stream: self.clone(), splitter, branches: Vec::new() }
    }

    /// The records of this stream and of `other`, interleaved as they come.
    pub fn merge(&self, other: &KStream<K, V>) -> Result<KStream<K, V>> {
        if !Rc::ptr_eq(&self.builder, &other.builder) {
            return Err(StreamsError::Topology("merge: the two streams come from different StreamsBuilders".into()));
        }
        let mut b = self.builder.borrow_mut();
        let node = b.new_name("KSTREAM-MERGE");
        let f = Arc::new(|ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| ctx.forward(r));
        b.topology.add_processor(
            &node,
            move || FnProcessor::<K, V, K, V, _>::new(f.clone()),
            &[&self.node, &other.node],
        )?;
        drop(b);
        // the serdes of this stream (both have the same types); repartitioned
        // before a stateful operation if either side needs it
        Ok(self.derive(
            node,
            self.key_serde.clone().or_else(|| other.key_serde.clone()),
            self.value_serde.clone().or_else(|| other.value_serde.clone()),
            self.repartition_required || other.repartition_required,
        ))
    }

    /// Always writes the stream to the repartition topic
    /// `<application.id>-<name>-repartition` (`name` defaults to
    /// `KSTREAM-REPARTITION-NNNNNNNNNN`) and reads it back: records are then
    /// partitioned by their key. Serdes given here win over the stream's.
    pub fn repartition(
        &self,
        name: Option<&str>,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Result<KStream<K, V>> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.builder.borrow_mut().new_name("KSTREAM-REPARTITION"),
        };
        self.repartition_through(&name, key, value)
    }

    /// Writes the stream to the user topic `topic` and reads it back (Kafka's
    /// `through`: the topic must exist, partitioned as wanted).
    pub fn through(&self, topic: &str, produced: Produced<K, V>) -> Result<KStream<K, V>> {
        let key = produced.key.clone().or_else(|| self.key_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!("through({topic}) needs a key serde: give one with Produced::with"))
        })?;
        let value = produced.value.clone().or_else(|| self.value_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!("through({topic}) needs a value serde: give one with Produced::with"))
        })?;
        self.to(topic, Produced { key: Some(key.clone()), value: Some(value.clone()), name: produced.name })?;
        StreamsBuilder { inner: self.builder.clone() }.stream(topic, Consumed::with(key, value))
    }

    /// Runs a Processor API processor (one per task, made by `supplier`) on
    /// each record, with access to the stores named in `stores` (added with
    /// [`StreamsBuilder::add_state_store`]); what it forwards is the new
    /// stream (whose keys may have changed: repartitioned before a stateful
    /// operation; its serdes come from the operations downstream).
    pub fn process<KOut: Data, VOut: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> Result<KStream<KOut, VOut>>
    where
        P: Processor<K, V, KOut, VOut>,
    {
        let mut b = self.builder.borrow_mut();
        // checked first: a failed call leaves no node behind
        if let Some(s) = stores.iter().find(|s| !b.topology.stores.contains_key(**s)) {
            return Err(StreamsError::Topology(format!(
                "process: no state store named {s} (add it with StreamsBuilder::add_state_store first)"
            )));
        }
        let node = b.new_name("KSTREAM-PROCESSOR");
        b.topology.add_processor(&node, supplier, &[&self.node])?;
        if !stores.is_empty() {
            b.topology.connect_processor_and_state_stores(&node, stores)?;
        }
        drop(b);
        Ok(self.derive(node, None, None, true))
    }
}

/// The result of [`KStream::split`]: add branches with `branch`, then end
/// with `default_branch` or `no_default_branch`, which add the nodes and
/// return the branches by name (`<splitter><branch name>`; a branch named
/// `""` is named by its position, 1 for the first, 0 for the default one,
/// as Kafka does).
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    splitter: String,
    branches: Vec<(String, Predicate<K, V>)>,
}

/// Sends each record to the first branch whose predicate holds, else to the
/// default branch if there is one.
struct BranchProcessor<K, V> {
    branches: Arc<Vec<(String, Predicate<K, V>)>>,
    default: Option<String>,
}

impl<K: Data, V: Data> Processor<K, V, K, V> for BranchProcessor<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, V>, record: Record<K, V>) -> Result<()> {
        for (child, pred) in self.branches.iter() {
            if pred(&record.key, &record.value) {
                return ctx.forward_to(child, record);
            }
        }
        match &self.default {
            Some(child) => ctx.forward_to(child, record),
            None => Ok(()),
        }
    }
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    fn child_name(&self, name: &str, index: usize) -> String {
        if name.is_empty() {
            format!("{}{index}", self.splitter)
        } else {
            format!("{}{name}", self.splitter)
        }
    }

    /// A branch of the records for which `predicate` holds (and no earlier
    /// branch's did).
    pub fn branch(mut self, name: &str, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let child = self.child_name(name, self.branches.len() + 1);
        // Kafka burns a name index per branch
        self.stream.builder.borrow_mut().new_name("KSTREAM-BRANCHCHILD");
        self.branches.push((child, Arc::new(predicate)));
        self
    }

    /// Ends the split with a branch of the records no predicate matched.
    pub fn default_branch(self, name: &str) -> Result<BTreeMap<String, KStream<K, V>>> {
        let child = self.child_name(name, 0);
        self.stream.builder.borrow_mut().new_name("KSTREAM-BRANCHCHILD");
        self.finish(Some(child))
    }

    /// Ends the split: records no predicate matched are dropped.
    pub fn no_default_branch(self) -> Result<BTreeMap<String, KStream<K, V>>> {
        self.finish(None)
    }

    fn finish(self, default: Option<String>) -> Result<BTreeMap<String, KStream<K, V>>> {
        let branches = Arc::new(self.branches);
        let mut children: Vec<String> = branches.iter().map(|(c, _)| c.clone()).collect();
        children.extend(default.iter().cloned());
        {
            let mut b = self.stream.builder.borrow_mut();
            let (bs, d) = (branches.clone(), default.clone());
            b.topology.add_processor(
                &self.splitter,
                move || BranchProcessor { branches: bs.clone(), default: d.clone() },
                &[&self.stream.node],
            )?;
            for c in &children {
                let f = Arc::new(|ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| ctx.forward(r));
                b.topology.add_processor(c, move || FnProcessor::<K, V, K, V, _>::new(f.clone()), &[&self.splitter])?;
            }
        }
        let (k, v, rep) = self.stream.same_key();
        Ok(children.into_iter().map(|c| (c.clone(), self.stream.derive(c, k.clone(), v.clone(), rep))).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::serde::Serdes;
    use crate::state::{KeyValueStore, Stores};
    use crate::test_driver::TopologyTestDriver;

    fn ss() -> Consumed<String, String> {
        Consumed::with(Serdes::string(), Serdes::string())
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn stateless_operators_give_exact_outputs_and_kafka_names() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", ss()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (seen2, seen3) = (seen.clone(), seen.clone());
        s.filter_not(|_, v| v.starts_with('x'))
            .unwrap()
            .peek(move |k, v| seen2.lock().unwrap().push(format!("peek {k}={v}")))
            .unwrap()
            .map(|k, v| (v, k.len() as i64))
            .unwrap()
            .to("mapped", Produced::with(Serdes::string(), Serdes::i64()))
            .unwrap();
        s.flat_map_values(|_, v| v.split(' ').map(str::to_string).collect::<Vec<_>>())
            .unwrap()
            .to("words", Produced::value_serde(Serdes::string()))
            .unwrap();
        s.flat_map(|k, v| vec![(k.clone(), v.len() as i64), (format!("{k}{k}"), 0)])
            .unwrap()
            .to("flat", Produced::with(Serdes::string(), Serdes::i64()))
            .unwrap();
        s.select_key(|_, v| v.to_uppercase()).unwrap().to("rekeyed", Produced::key_serde(Serdes::string())).unwrap();
        s.foreach(move |k, v| seen3.lock().unwrap().push(format!("each {k}={v}"))).unwrap();
        let t = b.build().unwrap();
        let d = t.describe();
        for name in [
            "KSTREAM-SOURCE-0000000000",
            "KSTREAM-FILTER-0000000001",
            "KSTREAM-PEEK-0000000002",
            "KSTREAM-MAP-0000000003",
            "KSTREAM-FLATMAPVALUES-0000000005",
            "KSTREAM-FLATMAP-0000000007",
            "KSTREAM-KEY-SELECT-0000000009",
            "KSTREAM-FOREACH-0000000011",
        ] {
            assert!(d.contains(name), "{name} missing in\n{d}");
        }
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        input.pipe_input_at("ab".into(), "hello world".into(), 5).unwrap();
        input.pipe_input_at("c".into(), "xyz".into(), 6).unwrap();
        let mapped = driver.create_output_topic("mapped", Serdes::string(), Serdes::i64());
        let recs = mapped.read_records_to_list().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].key.as_str(), recs[0].value, recs[0].timestamp), ("hello world", 2, 5));
        let words = driver.create_output_topic("words", Serdes::string(), Serdes::string());
        assert_eq!(
            words.read_key_values_to_list().unwrap(),
            vec![kv("ab", "hello"), kv("ab", "world"), kv("c", "xyz")]
        );
        let flat = driver.create_output_topic("flat", Serdes::string(), Serdes::i64());
        assert_eq!(
            flat.read_key_values_to_list().unwrap(),
            vec![("ab".to_string(), 11), ("abab".to_string(), 0), ("c".to_string(), 3), ("cc".to_string(), 0)]
        );
        let rekeyed = driver.create_output_topic("rekeyed", Serdes::string(), Serdes::string());
        assert_eq!(
            rekeyed.read_key_values_to_list().unwrap(),
            vec![kv("HELLO WORLD", "hello world"), kv("XYZ", "xyz")]
        );
        assert_eq!(*seen.lock().unwrap(), vec!["peek ab=hello world", "each ab=hello world", "each c=xyz"]);
    }

    #[test]
    fn a_sink_after_a_type_change_without_serdes_is_a_build_error() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", ss()).unwrap();
        let err = s.map(|k, v| (k, v.len() as i64)).unwrap().to("out", Produced::default()).unwrap_err();
        assert!(err.to_string().contains("to(out) needs a key serde"), "{err}");
    }

    #[test]
    fn split_sends_each_record_to_the_first_matching_branch() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", Consumed::with(Serdes::string(), Serdes::i64())).unwrap();
        let branches = s
            .split("nums-")
            .branch("neg", |_, v| *v < 0)
            .branch("small", |_, v| *v < 10)
            .default_branch("big")
            .unwrap();
        assert_eq!(branches.keys().cloned().collect::<Vec<_>>(), vec!["nums-big", "nums-neg", "nums-small"]);
        for (name, stream) in &branches {
            stream.to(name, Produced::default()).unwrap();
        }
        // unnamed: KSTREAM-BRANCH-N, branches by position; no default drops the rest
        let unnamed = s.split("").branch("", |_, v| *v == 5).no_default_branch().unwrap();
        let keys: Vec<String> = unnamed.keys().cloned().collect();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].starts_with("KSTREAM-BRANCH-") && keys[0].ends_with('1'), "{keys:?}");
        unnamed[&keys[0]].to("fives", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::i64());
        for (i, v) in [-3, 5, 12, 0, 9, 5].into_iter().enumerate() {
            input.pipe_input_at(format!("k{i}"), v, i as i64).unwrap();
        }
        let read =
            |t: &str| driver.create_output_topic(t, Serdes::string(), Serdes::i64()).read_key_values_to_list().unwrap();
        assert_eq!(read("nums-neg"), vec![("k0".to_string(), -3)]);
        assert_eq!(
            read("nums-small"),
            vec![("k1".to_string(), 5), ("k3".into(), 0), ("k4".into(), 9), ("k5".into(), 5)]
        );
        assert_eq!(read("nums-big"), vec![("k2".to_string(), 12)]);
        assert_eq!(read("fives"), vec![("k1".to_string(), 5), ("k5".to_string(), 5)]);
    }

    #[test]
    fn merge_interleaves_two_streams() {
        let b = StreamsBuilder::new();
        let a = b.stream("a", ss()).unwrap();
        let c = b.stream("c", ss()).unwrap().map_values(|_, v| v.to_uppercase()).unwrap();
        let m = a.merge(&c).unwrap();
        assert!(m.node.starts_with("KSTREAM-MERGE-"));
        m.to("out", Produced::default()).unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 1);
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut ia = driver.create_input_topic("a", Serdes::string(), Serdes::string());
        let mut ic = driver.create_input_topic("c", Serdes::string(), Serdes::string());
        ia.pipe_input_at("1".into(), "x".into(), 1).unwrap();
        ic.pipe_input_at("2".into(), "y".into(), 2).unwrap();
        ia.pipe_input_at("3".into(), "z".into(), 3).unwrap();
        let out = driver.create_output_topic("out", Serdes::string(), Serdes::string());
        assert_eq!(out.read_key_values_to_list().unwrap(), vec![kv("1", "x"), kv("2", "Y"), kv("3", "z")]);
        let other = StreamsBuilder::new().stream("b", ss()).unwrap();
        assert!(a.merge(&other).is_err());
    }

    #[test]
    fn repartition_and_through_read_the_topic_back() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", ss()).unwrap();
        s.select_key(|_, v| v.clone())
            .unwrap()
            .repartition(None, Some(Serdes::string()), None)
            .unwrap()
            .to("out", Produced::default())
            .unwrap();
        s.through("mid", Produced::default())
            .unwrap()
            .map_values(|_, v| format!("{v}!"))
            .unwrap()
            .to("out2", Produced::value_serde(Serdes::string()))
            .unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 3);
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        input.pipe_input_at("k".into(), "v1".into(), 10).unwrap();
        let rep = driver.written("test-app-KSTREAM-REPARTITION-0000000002-repartition");
        assert_eq!(rep.len(), 1);
        assert_eq!((rep[0].key.as_deref(), rep[0].value.as_deref()), (Some(&b"v1"[..]), Some(&b"v1"[..])));
        let out = driver.create_output_topic("out", Serdes::string(), Serdes::string());
        assert_eq!(out.read_key_values_to_list().unwrap(), vec![kv("v1", "v1")]);
        assert_eq!(driver.written("mid").len(), 1);
        let out2 = driver.create_output_topic("out2", Serdes::string(), Serdes::string());
        assert_eq!(out2.read_key_values_to_list().unwrap(), vec![kv("k", "v1!")]);
    }

    /// Emits each key's running total of value lengths, kept in "totals".
    struct Totals(Option<KeyValueStore<String, i64>>);

    impl Processor<String, String, String, i64> for Totals {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
            self.0 = Some(ctx.state_store("totals")?);
            Ok(())
        }
        fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, r: Record<String, String>) -> Result<()> {
            let store = self.0.as_ref().ok_or_else(|| StreamsError::Processing("not initialized".into()))?;
            let n = store.get(&r.key)?.unwrap_or(0) + r.value.len() as i64;
            store.put(&r.key, &n)?;
            ctx.forward(r.with_value(n))
        }
    }

    #[test]
    fn process_runs_a_processor_with_a_store_added_to_the_builder() {
        let b = StreamsBuilder::new();
        b.add_state_store(Stores::key_value("totals", Serdes::string(), Serdes::i64())).unwrap();
        let s = b.stream("in", ss()).unwrap();
        let out = s.process(|| Totals(None), &["totals"]).unwrap();
        assert!(out.repartition_required);
        out.to("out", Produced::with(Serdes::string(), Serdes::i64())).unwrap();
        assert!(s.process(|| Totals(None), &["nope"]).is_err());
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        input.pipe_input_at("a".into(), "xx".into(), 1).unwrap();
        input.pipe_input_at("a".into(), "yyy".into(), 2).unwrap();
        input.pipe_input_at("b".into(), "z".into(), 3).unwrap();
        let o = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
        assert_eq!(
            o.read_key_values_to_list().unwrap(),
            vec![("a".to_string(), 2), ("a".to_string(), 5), ("b".to_string(), 1)]
        );
        assert_eq!(driver.written("test-app-totals-changelog").len(), 3);
    }
}
