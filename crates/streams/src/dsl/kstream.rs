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
    pub(crate) fn repartition_through(
        &self,
        name: &str,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Result<KStream<K, V>> {
        let key = key.or_else(|| self.key_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!(
                "repartitioning for {name} needs a key serde (Grouped::with / Repartitioned)"
            ))
        })?;
        let value = value.or_else(|| self.value_serde.clone()).ok_or_else(|| {
            StreamsError::Topology(format!(
                "repartitioning for {name} needs a value serde (Grouped::with / Repartitioned)"
            ))
        })?;
        let topic = TopicName::internal(&format!("{name}-repartition"));
        let (sink, source) = (format!("{name}-repartition-sink"), format!("{name}-repartition-source"));
        let mut b = self.builder.borrow_mut();
        b.topology.add_sink_topic(&sink, topic.clone(), key.clone(), value.clone(), &[&self.node])?;
        b.topology.add_source_topics(&source, vec![topic], key.clone(), value.clone())?;
        Ok(self.derive(source, Some(key), Some(value), false))
    }
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
