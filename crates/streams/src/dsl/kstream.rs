//! `KStream`: a record stream. Stateless operations add one processor node
//! each; `to` adds a sink; stateful operations downstream of a key change
//! first write to a repartition topic and read it back (in a new
//! sub-topology), so that all records of a key reach one task.

use std::marker::PhantomData;
use std::sync::Arc;

use super::options::{Consumed, Produced};
use super::{Shared, StreamsBuilder};
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::SerdeRef;
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

/// The result of `KStream::split`: branches by predicate (to be written).
pub struct BranchedKStream<K, V> {
    pub(crate) stream: KStream<K, V>,
}
