//! A task: one sub-topology's node instances over one partition number, the
//! store instances those nodes use, its stream time and punctuations. The
//! runtime and the test driver both feed a task raw records and give it a
//! [`RecordCollector`] for what it writes; nothing here knows about Kafka
//! clients.
//!
//! Processing a record: the source node for its topic decodes it (a record
//! that cannot be decoded fails the task, or is logged and skipped with
//! `LogAndContinue`), stream time moves to the record's timestamp if later,
//! the record flows depth-first through the nodes, then the changelog
//! records the stores took are sent and due stream-time punctuations run.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Result, StreamsError};
use crate::processor::{PunctuationType, ScheduleId};
use crate::record::{OutRecord, RawRecord, Record, RecordMetadata};
use crate::state::{ChangelogTarget, SharedStore, StoreInstance, StoreSpec};
use crate::topology::{erase, AnyRecord, ErasedNode, NodeId, NodeKind, TaskId, TopicName, Topology};
use crate::Data;

/// Where a task's output goes (the producer, or the test driver's buffer).
pub trait RecordCollector: Send {
    fn send(&mut self, record: OutRecord) -> Result<()>;
}

/// What to do with a record a source cannot decode
/// (`default.deserialization.exception.handler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeserializationHandler {
    /// `LogAndFailExceptionHandler` (Kafka's default): the task fails.
    #[default]
    LogAndFail,
    /// `LogAndContinueExceptionHandler`: the record is logged and skipped.
    LogAndContinue,
}

pub(crate) struct Schedule {
    pub id: ScheduleId,
    pub node: NodeId,
    pub interval_ms: i64,
    pub kind: PunctuationType,
    pub next_ms: i64,
}

/// The part of a task its nodes see while they run.
pub struct TaskCore {
    pub(crate) id: TaskId,
    pub(crate) application_id: String,
    topology: Arc<Topology>,
    nodes: Vec<Option<Box<dyn ErasedNode>>>,
    stores: BTreeMap<String, SharedStore>,
    handles: HashMap<String, Box<dyn Any + Send + Sync>>,
    collector: Box<dyn RecordCollector>,
    pub(crate) stream_time: i64,
    pub(crate) current: Option<RecordMetadata>,
    pub(crate) schedules: Vec<Schedule>,
    next_schedule: u64,
    pub(crate) clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl TaskCore {
    pub(crate) fn node_name(&self, node: NodeId) -> &str {
        &self.topology.nodes[node].name
    }

    pub(crate) fn child_named(&self, node: NodeId, child: &str) -> Result<NodeId> {
        self.topology.nodes[node]
            .children
            .iter()
            .copied()
            .find(|c| self.topology.nodes[*c].name == child)
            .ok_or_else(|| StreamsError::Topology(format!("{child} is not a child of {}", self.node_name(node))))
    }

    /// Runs node `target` on `record`.
    pub(crate) fn deliver(&mut self, target: NodeId, record: AnyRecord) -> Result<()> {
        let mut node = self.nodes[target].take().ok_or_else(|| {
            StreamsError::Topology(format!("node {} reached while it runs (a cycle?)", self.node_name(target)))
        })?;
        let out = node.process(self, target, record);
        self.nodes[target] = Some(node);
        out
    }

    /// Sends `record` to every child of `node`.
    pub(crate) fn forward_typed<K: Data, V: Data>(&mut self, node: NodeId, record: Record<K, V>) -> Result<()> {
        let topology = self.topology.clone();
        let children = &topology.nodes[node].children;
        let Some((&last, rest)) = children.split_last() else { return Ok(()) };
        for &c in rest {
            self.deliver(c, erase(record.clone()))?;
        }
        self.deliver(last, erase(record))
    }

    pub(crate) fn send(&mut self, record: OutRecord) -> Result<()> {
        self.collector.send(record)
    }

    pub(crate) fn schedule(&mut self, node: NodeId, interval: Duration, kind: PunctuationType) -> ScheduleId {
        self.next_schedule += 1;
        let id = ScheduleId(self.next_schedule);
        let interval_ms = (interval.as_millis() as i64).max(1);
        let now = match kind {
            PunctuationType::StreamTime => self.stream_time.max(0),
            PunctuationType::WallClockTime => (self.clock)(),
        };
        self.schedules.push(Schedule { id, node, interval_ms, kind, next_ms: now + interval_ms });
        id
    }

    pub(crate) fn store_connected(&self, node: NodeId, store: &str) -> bool {
        self.topology.nodes[node].stores.contains(store) || self.topology.globals.iter().any(|g| g.store.name == store)
    }

    pub(crate) fn store_handle<S: Clone + 'static>(&self, name: &str) -> Result<S> {
        let h = self.handles.get(name).ok_or_else(|| StreamsError::Topology(format!("no state store named {name}")))?;
        h.downcast_ref::<S>().cloned().ok_or_else(|| {
            StreamsError::Topology(format!("state store {name} is not a {}", std::any::type_name::<S>()))
        })
    }

    fn drain_changelogs(&mut self) -> Result<()> {
        let mut out = Vec::new();
        for s in self.stores.values() {
            out.extend(s.lock().take_changelog());
        }
        for r in out {
            self.collector.send(r)?;
        }
        Ok(())
    }

    fn set_store_timestamps(&self, ts: i64) {
        for s in self.stores.values() {
            s.lock().timestamp = ts;
        }
    }

    fn run_punctuations(&mut self, kind: PunctuationType, now: i64) -> Result<usize> {
        let mut ran = 0;
        loop {
            let due = self.schedules.iter().position(|s| s.kind == kind && s.next_ms <= now);
            let Some(i) = due else { break };
            let (id, node, at) = {
                let s = &mut self.schedules[i];
                let at = s.next_ms;
                // skip missed intervals: fire once, then at the next multiple after now
                s.next_ms = at + ((now - at) / s.interval_ms + 1) * s.interval_ms;
                (s.id, s.node, at)
            };
            self.current = None;
            self.set_store_timestamps(at.max(0));
            let mut n = self.nodes[node].take().ok_or_else(|| {
                StreamsError::Topology(format!("node {} punctuated while it runs", self.node_name(node)))
            })?;
            let r = n.punctuate(self, node, id, at);
            self.nodes[node] = Some(n);
            r?;
            self.drain_changelogs()?;
            ran += 1;
        }
        Ok(ran)
    }
}

/// One task (see the module docs).
pub struct Task {
    core: TaskCore,
    sources: HashMap<String, NodeId>,
    handler: DeserializationHandler,
    processed: u64,
}

/// How a task gets its stores: the spec, and the changelog topic's name and
/// partition if the store is logged; returns the open instance (restored
/// already, if the runtime restores before processing).
pub type StoreOpener<'a> = dyn FnMut(&StoreSpec, Option<ChangelogTarget>) -> Result<StoreInstance> + 'a;

/// What a task needs besides its topology and stores.
pub struct TaskSetup {
    pub application_id: String,
    /// The instance's global stores by name.
    pub globals: BTreeMap<String, SharedStore>,
    pub collector: Box<dyn RecordCollector>,
    /// Wall-clock milliseconds (the test driver's mock clock in tests).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    pub handler: DeserializationHandler,
}

impl Task {
    /// Instantiates sub-topology `id.subtopology` of `topology` for partition
    /// `id.partition`, opening its stores with `open_store`.
    pub fn new(
        id: TaskId,
        topology: Arc<Topology>,
        open_store: &mut StoreOpener<'_>,
        setup: TaskSetup,
    ) -> Result<Task> {
        let TaskSetup { application_id, globals, collector, clock, handler } = setup;
        let application_id = application_id.as_str();
        let sub = topology
            .subtopologies()
            .into_iter()
            .find(|s| s.id == id.subtopology)
            .ok_or_else(|| StreamsError::Topology(format!("no sub-topology {}", id.subtopology)))?;
        let mut nodes: Vec<Option<Box<dyn ErasedNode>>> = (0..topology.nodes.len()).map(|_| None).collect();
        let mut sources = HashMap::new();
        for &n in &sub.nodes {
            nodes[n] = Some((topology.nodes[n].factory)());
            if let NodeKind::Source { topics } = &topology.nodes[n].kind {
                for t in topics {
                    sources.insert(t.resolve(application_id), n);
                }
            }
        }
        let mut stores = BTreeMap::new();
        let mut handles: HashMap<String, Box<dyn Any + Send + Sync>> = HashMap::new();
        for name in &sub.stores {
            let spec = &topology.stores[name];
            let changelog = spec.logging.as_ref().map(|_| ChangelogTarget {
                topic: TopicName::internal(&format!("{name}-changelog")).resolve(application_id),
                partition: id.partition,
            });
            let serde_topic = changelog.as_ref().map(|c| c.topic.clone()).unwrap_or_else(|| name.clone());
            let shared = open_store(spec, changelog)?.shared();
            handles.insert(name.clone(), spec.handle(shared.clone(), &serde_topic));
            stores.insert(name.clone(), shared);
        }
        for g in &topology.globals {
            if let Some(shared) = globals.get(&g.store.name) {
                handles.insert(g.store.name.clone(), g.store.handle(shared.clone(), &g.topic));
            }
        }
        let mut core = TaskCore {
            id,
            application_id: application_id.to_string(),
            topology: topology.clone(),
            nodes,
            stores,
            handles,
            collector,
            stream_time: -1,
            current: None,
            schedules: Vec::new(),
            next_schedule: 0,
            clock,
        };
        for &n in &sub.nodes {
            let mut node = core.nodes[n].take().expect("instantiated above");
            let r = node.init(&mut core, n);
            core.nodes[n] = Some(node);
            r?;
        }
        core.drain_changelogs()?;
        Ok(Task { core, sources, handler, processed: 0 })
    }

    pub fn id(&self) -> TaskId {
        self.core.id
    }

    /// The topics (actual names) this task reads.
    pub fn source_topics(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    pub fn stream_time(&self) -> i64 {
        self.core.stream_time
    }

    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// This task's store instances by name.
    pub fn stores(&self) -> &BTreeMap<String, SharedStore> {
        &self.core.stores
    }

    /// The typed handle of one of this task's stores.
    pub fn store_handle<S: Clone + 'static>(&self, name: &str) -> Result<S> {
        self.core.store_handle(name)
    }

    /// Processes one record read from `raw.topic` (see the module docs).
    pub fn process(&mut self, raw: &RawRecord) -> Result<()> {
        let node = *self.sources.get(&raw.topic).ok_or_else(|| {
            StreamsError::Topology(format!("task {} does not read topic {}", self.core.id, raw.topic))
        })?;
        let decoder = self.core.topology.nodes[node].decoder.clone().expect("a source node has a decoder");
        let record = match decoder(raw) {
            Ok(r) => r,
            Err(e) => match self.handler {
                DeserializationHandler::LogAndFail => return Err(e),
                DeserializationHandler::LogAndContinue => {
                    tracing::warn!(task = %self.core.id, topic = %raw.topic, partition = raw.partition,
                        offset = raw.offset, error = %e, "skipping a record that cannot be deserialized");
                    return Ok(());
                }
            },
        };
        self.core.current =
            Some(RecordMetadata { topic: raw.topic.clone(), partition: raw.partition, offset: raw.offset });
        if raw.timestamp > self.core.stream_time {
            self.core.stream_time = raw.timestamp;
        }
        self.core.set_store_timestamps(raw.timestamp);
        let r = self.core.deliver(node, record);
        self.core.current = None;
        r?;
        self.core.drain_changelogs()?;
        self.processed += 1;
        let now = self.core.stream_time;
        self.core.run_punctuations(PunctuationType::StreamTime, now)?;
        Ok(())
    }

    /// Runs the wall-clock punctuations due at `now_ms`; how many ran.
    pub fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<usize> {
        self.core.run_punctuations(PunctuationType::WallClockTime, now_ms)
    }

    /// Flushes every store (before a checkpoint or a commit).
    pub fn flush_stores(&mut self) -> Result<()> {
        for s in self.core.stores.values() {
            s.lock().flush()?;
        }
        Ok(())
    }

    /// Closes the processors (stores stay open: the caller owns them).
    pub fn close(&mut self) {
        for n in self.core.nodes.iter_mut().flatten() {
            n.close();
        }
    }
}
