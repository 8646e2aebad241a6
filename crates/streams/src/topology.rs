//! A topology: source, processor and sink nodes, the state stores connected
//! to them, and global stores. Built with the DSL ([`crate::StreamsBuilder`])
//! or the Processor API (`add_source`, `add_processor`, `add_sink`,
//! `add_state_store`), as in Kafka Streams.
//!
//! Nodes that are connected (by a parent/child edge or a shared store) form
//! a sub-topology; sub-topologies are numbered in the order of their first
//! node and talk only through topics (repartition topics). A task is one
//! sub-topology over one partition number of its source topics: task `1_3`
//! processes partition 3 of sub-topology 1's topics.
//!
//! Internal topics (repartition and changelog topics) are named without the
//! application id here (`KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition`)
//! and get it as a prefix at run time (`wordcount-KSTREAM-...-repartition`),
//! as Kafka Streams names them.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext, ScheduleId};
use crate::record::{RawRecord, Record};
use crate::serde::SerdeRef;
use crate::state::{StoreBuilder, StoreInstance, StoreSpec};
use crate::task::TaskCore;
use crate::Data;

/// Index of a node in its topology.
pub type NodeId = usize;

/// A task: a sub-topology and a partition number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub subtopology: u32,
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

impl std::str::FromStr for TaskId {
    type Err = StreamsError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || StreamsError::Topology(format!("bad task id {s:?} (expected SUBTOPOLOGY_PARTITION)"));
        let (a, b) = s.split_once('_').ok_or_else(bad)?;
        Ok(TaskId { subtopology: a.parse().map_err(|_| bad())?, partition: b.parse().map_err(|_| bad())? })
    }
}

/// A topic a node reads or writes: a user topic, or an internal one whose
/// actual name is `<application.id>-<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName {
    pub name: String,
    pub internal: bool,
}

impl TopicName {
    pub fn user(name: &str) -> Self {
        TopicName { name: name.to_string(), internal: false }
    }
    pub fn internal(name: &str) -> Self {
        TopicName { name: name.to_string(), internal: true }
    }
    /// The topic's name on the cluster.
    pub fn resolve(&self, application_id: &str) -> String {
        if self.internal {
            format!("{application_id}-{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

pub(crate) type AnyBox = Box<dyn Any + Send>;
/// A record whose key and value types only the nodes at both ends of an edge know.
pub(crate) type AnyRecord = Record<AnyBox, AnyBox>;

pub(crate) fn erase<K: Data, V: Data>(r: Record<K, V>) -> AnyRecord {
    Record { key: Box::new(r.key), value: Box::new(r.value), timestamp: r.timestamp, headers: r.headers }
}

pub(crate) fn unerase<K: Data, V: Data>(r: AnyRecord, node: &str) -> Result<Record<K, V>> {
    let key = r.key.downcast::<K>().map_err(|_| {
        StreamsError::Topology(format!("node {node} got a key of another type than {}", std::any::type_name::<K>()))
    })?;
    let value = r.value.downcast::<V>().map_err(|_| {
        StreamsError::Topology(format!("node {node} got a value of another type than {}", std::any::type_name::<V>()))
    })?;
    Ok(Record { key: *key, value: *value, timestamp: r.timestamp, headers: r.headers })
}

/// One node's instance in one task, its types erased.
pub(crate) trait ErasedNode: Send {
    fn init(&mut self, task: &mut TaskCore, me: NodeId) -> Result<()>;
    fn process(&mut self, task: &mut TaskCore, me: NodeId, record: AnyRecord) -> Result<()>;
    fn punctuate(&mut self, task: &mut TaskCore, me: NodeId, id: ScheduleId, timestamp: i64) -> Result<()>;
    fn close(&mut self) {}
}

pub(crate) type NodeFactory = Arc<dyn Fn() -> Box<dyn ErasedNode> + Send + Sync>;
/// Decodes a record read from a source topic into the source's types.
pub(crate) type Decoder = Arc<dyn Fn(&RawRecord) -> Result<AnyRecord> + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Source { topics: Vec<TopicName> },
    Processor,
    Sink { topic: TopicName },
}

#[derive(Clone)]
pub(crate) struct NodeSpec {
    pub name: String,
    pub kind: NodeKind,
    pub factory: NodeFactory,
    /// Sources only.
    pub decoder: Option<Decoder>,
    pub parents: Vec<NodeId>,
    pub children: Vec<NodeId>,
    pub stores: BTreeSet<String>,
}

/// Applies one record of a global topic to its global store.
pub(crate) type GlobalUpdate = Arc<dyn Fn(&mut StoreInstance, &RawRecord) -> Result<()> + Send + Sync>;

/// A global store: a full copy of every partition of `topic` on every
/// instance, updated by `update` for each record read (GlobalKTable).
#[derive(Clone)]
pub struct GlobalStoreSpec {
    pub store: StoreSpec,
    pub topic: String,
    pub(crate) update: GlobalUpdate,
}

/// What kind of internal topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InternalTopicKind {
    /// Written by one sub-topology, read by another; `cleanup.policy=delete`.
    Repartition,
    /// A store's changelog: compacted (plus `delete` with a retention for
    /// window and session stores); one partition per task.
    Changelog { store: String },
}

/// An internal topic the topology needs, with the configs to create it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: TopicName,
    pub kind: InternalTopicKind,
    pub configs: BTreeMap<String, String>,
    /// The sub-topology whose tasks decide its partition count: for a
    /// changelog, the one that owns the store; for a repartition topic, the
    /// one that reads it (which takes the count of the one that writes it).
    pub subtopology: u32,
}

/// One sub-topology: its nodes, the topics it reads and writes, its stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subtopology {
    pub id: u32,
    pub nodes: Vec<NodeId>,
    pub source_topics: Vec<TopicName>,
    pub sink_topics: Vec<TopicName>,
    pub stores: Vec<String>,
}

/// A processing topology (see the module docs).
#[derive(Clone, Default)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) stores: BTreeMap<String, StoreSpec>,
    pub(crate) globals: Vec<GlobalStoreSpec>,
}

impl Topology {
    pub fn new() -> Self {
        Self::default()
    }

    fn node_id(&self, name: &str) -> Result<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| StreamsError::Topology(format!("no node named {name}")))
    }

    fn add_node(&mut self, mut spec: NodeSpec, parents: &[&str]) -> Result<NodeId> {
        if self.nodes.iter().any(|n| n.name == spec.name) {
            return Err(StreamsError::Topology(format!("node {} added twice", spec.name)));
        }
        let id = self.nodes.len();
        for p in parents {
            let pid = self.node_id(p)?;
            if matches!(self.nodes[pid].kind, NodeKind::Sink { .. }) {
                return Err(StreamsError::Topology(format!("sink {p} cannot have children")));
            }
            spec.parents.push(pid);
        }
        for &pid in &spec.parents {
            self.nodes[pid].children.push(id);
        }
        self.nodes.push(spec);
        Ok(id)
    }

    /// A source node reading `topics` (user topics).
    pub fn add_source<K: Data, V: Data>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> Result<&mut Self> {
        self.add_source_topics(name, topics.iter().map(|t| TopicName::user(t)).collect(), key_serde, value_serde)?;
        Ok(self)
    }

    /// A source node reading `topics` (user or internal).
    pub(crate) fn add_source_topics<K: Data, V: Data>(
        &mut self,
        name: &str,
        topics: Vec<TopicName>,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> Result<NodeId> {
        if topics.is_empty() {
            return Err(StreamsError::Topology(format!("source {name} reads no topic")));
        }
        for t in &topics {
            if self.source_node_of(t).is_some() {
                return Err(StreamsError::Topology(format!("topic {} is read by two sources", t.name)));
            }
        }
        let decoder: Decoder = Arc::new(move |raw: &RawRecord| {
            let key = key_serde.deserialize(&raw.topic, raw.key.as_deref())?;
            let value = value_serde.deserialize(&raw.topic, raw.value.as_deref())?;
            Ok(erase(Record { key, value, timestamp: raw.timestamp, headers: raw.headers.clone() }))
        });
        let node_name = name.to_string();
        let factory: NodeFactory = Arc::new(move || Box::new(PassThrough::<K, V>::new(&node_name)));
        self.add_node(
            NodeSpec {
                name: name.to_string(),
                kind: NodeKind::Source { topics },
                factory,
                decoder: Some(decoder),
                parents: vec![],
                children: vec![],
                stores: BTreeSet::new(),
            },
            &[],
        )
    }

    /// A processor node fed by `parents`; `supplier` makes one instance per task.
    pub fn add_processor<KIn, VIn, KOut, VOut, P, F>(
        &mut self,
        name: &str,
        supplier: F,
        parents: &[&str],
    ) -> Result<&mut Self>
    where
        KIn: Data,
        VIn: Data,
        KOut: Data,
        VOut: Data,
        P: Processor<KIn, VIn, KOut, VOut>,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let node_name = name.to_string();
        let factory: NodeFactory =
            Arc::new(move || Box::new(ProcessorNode::<KIn, VIn, KOut, VOut, P>::new(supplier(), &node_name)));
        self.add_node(
            NodeSpec {
                name: name.to_string(),
                kind: NodeKind::Processor,
                factory,
                decoder: None,
                parents: vec![],
                children: vec![],
                stores: BTreeSet::new(),
            },
            parents,
        )?;
        Ok(self)
    }

    /// A sink node writing what `parents` forward to the user topic `topic`.
    pub fn add_sink<K: Data, V: Data>(
        &mut self,
        name: &str,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
        parents: &[&str],
    ) -> Result<&mut Self> {
        self.add_sink_topic(name, TopicName::user(topic), key_serde, value_serde, parents)?;
        Ok(self)
    }

    pub(crate) fn add_sink_topic<K: Data, V: Data>(
        &mut self,
        name: &str,
        topic: TopicName,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
        parents: &[&str],
    ) -> Result<NodeId> {
        let (node_name, t) = (name.to_string(), topic.clone());
        let factory: NodeFactory = Arc::new(move || {
            Box::new(SinkNode::<K, V> {
                name: node_name.clone(),
                topic: t.clone(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
            })
        });
        self.add_node(
            NodeSpec {
                name: name.to_string(),
                kind: NodeKind::Sink { topic },
                factory,
                decoder: None,
                parents: vec![],
                children: vec![],
                stores: BTreeSet::new(),
            },
            parents,
        )
    }

    /// A state store, connected to `processors` (which may then open it with
    /// `ProcessorContext::state_store`).
    pub fn add_state_store<S>(&mut self, builder: StoreBuilder<S>, processors: &[&str]) -> Result<&mut Self> {
        let name = builder.spec.name.clone();
        if self.stores.contains_key(&name) || self.globals.iter().any(|g| g.store.name == name) {
            return Err(StreamsError::Topology(format!("state store {name} added twice")));
        }
        self.stores.insert(name.clone(), builder.spec);
        self.connect_processor_and_state_stores_list(processors, &[name.as_str()])?;
        Ok(self)
    }

    /// Gives each of `processors` access to each of `stores`.
    pub fn connect_processor_and_state_stores(&mut self, processor: &str, stores: &[&str]) -> Result<&mut Self> {
        self.connect_processor_and_state_stores_list(&[processor], stores)?;
        Ok(self)
    }

    fn connect_processor_and_state_stores_list(&mut self, processors: &[&str], stores: &[&str]) -> Result<()> {
        for s in stores {
            if !self.stores.contains_key(*s) {
                return Err(StreamsError::Topology(format!("no state store named {s}")));
            }
        }
        for p in processors {
            let id = self.node_id(p)?;
            if self.nodes[id].kind != NodeKind::Processor {
                return Err(StreamsError::Topology(format!("{p} is not a processor: only processors use stores")));
            }
            self.nodes[id].stores.extend(stores.iter().map(|s| s.to_string()));
        }
        Ok(())
    }

    /// A global store fed by every partition of `topic` through `update`.
    pub(crate) fn add_global_store_spec(&mut self, spec: GlobalStoreSpec) -> Result<()> {
        if self.stores.contains_key(&spec.store.name) || self.globals.iter().any(|g| g.store.name == spec.store.name) {
            return Err(StreamsError::Topology(format!("state store {} added twice", spec.store.name)));
        }
        self.globals.push(spec);
        Ok(())
    }

    pub(crate) fn source_node_of(&self, topic: &TopicName) -> Option<NodeId> {
        self.nodes.iter().position(|n| matches!(&n.kind, NodeKind::Source { topics } if topics.contains(topic)))
    }

    /// The sub-topologies, numbered in the order of their first node.
    pub fn subtopologies(&self) -> Vec<Subtopology> {
        // union-find over edges and shared stores
        let mut parent: Vec<usize> = (0..self.nodes.len()).collect();
        fn find(p: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while p[r] != r {
                r = p[r];
            }
            let mut y = x;
            while p[y] != r {
                let next = p[y];
                p[y] = r;
                y = next;
            }
            r
        }
        let union = |p: &mut [usize], a: usize, b: usize| {
            let (ra, rb) = (find(p, a), find(p, b));
            if ra != rb {
                p[ra.max(rb)] = ra.min(rb);
            }
        };
        let mut by_store: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, n) in self.nodes.iter().enumerate() {
            for &c in &n.children {
                union(&mut parent, id, c);
            }
            for s in &n.stores {
                if let Some(&other) = by_store.get(s.as_str()) {
                    union(&mut parent, id, other);
                } else {
                    by_store.insert(s.as_str(), id);
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
        for id in 0..self.nodes.len() {
            let root = find(&mut parent, id);
            groups.entry(root).or_default().push(id);
        }
        groups
            .into_values()
            .enumerate()
            .map(|(i, nodes)| {
                let mut source_topics = Vec::new();
                let mut sink_topics = Vec::new();
                let mut stores = BTreeSet::new();
                for &n in &nodes {
                    match &self.nodes[n].kind {
                        NodeKind::Source { topics } => source_topics.extend(topics.iter().cloned()),
                        NodeKind::Sink { topic } => sink_topics.push(topic.clone()),
                        NodeKind::Processor => {}
                    }
                    stores.extend(self.nodes[n].stores.iter().cloned());
                }
                Subtopology { id: i as u32, nodes, source_topics, sink_topics, stores: stores.into_iter().collect() }
            })
            .collect()
    }

    /// The internal topics to create before running: repartition topics
    /// (internal topics some source reads) and the changelogs of logged stores.
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        let mut out = Vec::new();
        for sub in self.subtopologies() {
            for t in sub.source_topics.iter().filter(|t| t.internal) {
                out.push(InternalTopic {
                    name: t.clone(),
                    kind: InternalTopicKind::Repartition,
                    configs: BTreeMap::from([("cleanup.policy".to_string(), "delete".to_string())]),
                    subtopology: sub.id,
                });
            }
            for s in &sub.stores {
                let spec = &self.stores[s];
                if let Some(configs) = spec.changelog_configs() {
                    out.push(InternalTopic {
                        name: TopicName::internal(&format!("{s}-changelog")),
                        kind: InternalTopicKind::Changelog { store: s.clone() },
                        configs,
                        subtopology: sub.id,
                    });
                }
            }
        }
        out
    }

    pub fn global_stores(&self) -> &[GlobalStoreSpec] {
        &self.globals
    }

    pub fn store_spec(&self, name: &str) -> Option<&StoreSpec> {
        self.stores.get(name).or_else(|| self.globals.iter().find(|g| g.store.name == name).map(|g| &g.store))
    }

    /// The topology in Kafka Streams' `describe()` layout.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n");
        for sub in self.subtopologies() {
            out.push_str(&format!("   Sub-topology: {}\n", sub.id));
            for &n in &sub.nodes {
                let node = &self.nodes[n];
                let names =
                    |ids: &[NodeId]| ids.iter().map(|i| self.nodes[*i].name.clone()).collect::<Vec<_>>().join(", ");
                match &node.kind {
                    NodeKind::Source { topics } => {
                        let t: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
                        out.push_str(&format!("    Source: {} (topics: [{}])\n", node.name, t.join(", ")));
                    }
                    NodeKind::Processor => {
                        let s: Vec<&str> = node.stores.iter().map(|s| s.as_str()).collect();
                        out.push_str(&format!("    Processor: {} (stores: [{}])\n", node.name, s.join(", ")));
                    }
                    NodeKind::Sink { topic } => {
                        out.push_str(&format!("    Sink: {} (topic: {})\n", node.name, topic.name))
                    }
                }
                if !node.children.is_empty() {
                    out.push_str(&format!("      --> {}\n", names(&node.children)));
                } else {
                    out.push_str("      --> none\n");
                }
                if !node.parents.is_empty() {
                    out.push_str(&format!("      <-- {}\n", names(&node.parents)));
                }
            }
        }
        for g in &self.globals {
            out.push_str(&format!("   Global store: {} (topic: {})\n", g.store.name, g.topic));
        }
        out
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Forwards what it gets to its children (source nodes).
pub(crate) struct PassThrough<K, V> {
    name: String,
    _types: std::marker::PhantomData<fn(K, V)>,
}

impl<K, V> PassThrough<K, V> {
    pub(crate) fn new(name: &str) -> Self {
        PassThrough { name: name.to_string(), _types: std::marker::PhantomData }
    }
}

impl<K: Data, V: Data> ErasedNode for PassThrough<K, V> {
    fn init(&mut self, _task: &mut TaskCore, _me: NodeId) -> Result<()> {
        Ok(())
    }
    fn process(&mut self, task: &mut TaskCore, me: NodeId, record: AnyRecord) -> Result<()> {
        let r = unerase::<K, V>(record, &self.name)?;
        task.forward_typed(me, r)
    }
    fn punctuate(&mut self, _task: &mut TaskCore, _me: NodeId, _id: ScheduleId, _ts: i64) -> Result<()> {
        Ok(())
    }
}

/// A user (or DSL) processor with its types.
pub(crate) struct ProcessorNode<KIn, VIn, KOut, VOut, P> {
    processor: P,
    name: String,
    _types: std::marker::PhantomData<fn(KIn, VIn, KOut, VOut)>,
}

impl<KIn, VIn, KOut, VOut, P> ProcessorNode<KIn, VIn, KOut, VOut, P> {
    pub(crate) fn new(processor: P, name: &str) -> Self {
        ProcessorNode { processor, name: name.to_string(), _types: std::marker::PhantomData }
    }
}

impl<KIn: Data, VIn: Data, KOut: Data, VOut: Data, P: Processor<KIn, VIn, KOut, VOut>> ErasedNode
    for ProcessorNode<KIn, VIn, KOut, VOut, P>
{
    fn init(&mut self, task: &mut TaskCore, me: NodeId) -> Result<()> {
        self.processor.init(&mut ProcessorContext::new(task, me))
    }
    fn process(&mut self, task: &mut TaskCore, me: NodeId, record: AnyRecord) -> Result<()> {
        let r = unerase::<KIn, VIn>(record, &self.name)?;
        self.processor.process(&mut ProcessorContext::new(task, me), r)
    }
    fn punctuate(&mut self, task: &mut TaskCore, me: NodeId, id: ScheduleId, ts: i64) -> Result<()> {
        self.processor.punctuate(&mut ProcessorContext::new(task, me), id, ts)
    }
    fn close(&mut self) {
        self.processor.close()
    }
}

/// Serializes what it gets and hands it to the task's record collector.
struct SinkNode<K, V> {
    name: String,
    topic: TopicName,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
}

impl<K: Data, V: Data> ErasedNode for SinkNode<K, V> {
    fn init(&mut self, _task: &mut TaskCore, _me: NodeId) -> Result<()> {
        Ok(())
    }
    fn process(&mut self, task: &mut TaskCore, _me: NodeId, record: AnyRecord) -> Result<()> {
        let r = unerase::<K, V>(record, &self.name)?;
        let topic = self.topic.resolve(&task.application_id);
        let key = self.key_serde.serialize(&topic, &r.key)?;
        let value = self.value_serde.serialize(&topic, &r.value)?;
        task.send(crate::record::OutRecord {
            topic,
            partition: None,
            key,
            value,
            timestamp: r.timestamp,
            headers: r.headers,
        })
    }
    fn punctuate(&mut self, _task: &mut TaskCore, _me: NodeId, _id: ScheduleId, _ts: i64) -> Result<()> {
        Ok(())
    }
}
