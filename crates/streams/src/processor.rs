//! The Processor API: a [`Processor`] gets each record of its input, may
//! read and write state stores, forwards records to its children, and may
//! schedule punctuations on stream time (the largest timestamp the task has
//! seen) or wall-clock time. Records flow depth-first: `forward` returns
//! once every node downstream has processed the record, as in Kafka Streams.

use std::marker::PhantomData;
use std::time::Duration;

use crate::error::{Result, StreamsError};
use crate::record::{Record, RecordMetadata};
use crate::task::TaskCore;
use crate::topology::{NodeId, TaskId};
use crate::Data;

/// A node of a topology written against the Processor API. One instance per
/// task (made by the supplier given to `Topology::add_processor`).
pub trait Processor<KIn, VIn, KOut, VOut>: Send + 'static {
    /// Called once the task's stores are open, before any record.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<()> {
        Ok(())
    }
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>, record: Record<KIn, VIn>) -> Result<()>;
    /// A punctuation scheduled with [`ProcessorContext::schedule`] is due;
    /// `timestamp` is the stream time or wall-clock time it fires at.
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KOut, VOut>,
        _id: ScheduleId,
        _timestamp: i64,
    ) -> Result<()> {
        Ok(())
    }
    /// The task is closing (its stores are still open).
    fn close(&mut self) {}
}

/// What a punctuation's time is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PunctuationType {
    /// Stream time: advances only with the timestamps of the records the task
    /// processes.
    StreamTime,
    /// The wall clock (the test driver's mock clock in tests).
    WallClockTime,
}

/// Names a scheduled punctuation (to cancel it, or to tell several apart in
/// `punctuate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduleId(pub u64);

/// A processor's view of its task while it processes a record or a
/// punctuation: forward downstream, read the record's origin, reach the
/// stores connected to it, schedule punctuations.
pub struct ProcessorContext<'a, KOut, VOut> {
    pub(crate) task: &'a mut TaskCore,
    pub(crate) node: NodeId,
    pub(crate) _types: PhantomData<fn(KOut, VOut)>,
}

impl<'a, KOut: Data, VOut: Data> ProcessorContext<'a, KOut, VOut> {
    pub(crate) fn new(task: &'a mut TaskCore, node: NodeId) -> Self {
        ProcessorContext { task, node, _types: PhantomData }
    }

    /// Sends `record` to every child of this node (each gets a clone but the
    /// last); returns when they have processed it.
    pub fn forward(&mut self, record: Record<KOut, VOut>) -> Result<()> {
        self.task.forward_typed(self.node, record)
    }

    /// Sends `record` to the child named `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record<KOut, VOut>) -> Result<()> {
        let target = self.task.child_named(self.node, child)?;
        self.task.deliver(target, crate::topology::erase(record))
    }

    /// Where the record being processed was read; `None` in a punctuation.
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.task.current.as_ref()
    }

    pub fn task_id(&self) -> TaskId {
        self.task.id
    }

    pub fn application_id(&self) -> &str {
        &self.task.application_id
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        self.task.node_name(self.node)
    }

    /// The largest record timestamp this task has processed (-1 before any).
    pub fn stream_time(&self) -> i64 {
        self.task.stream_time
    }

    /// Milliseconds since the epoch by the task's clock.
    pub fn wall_clock_time(&self) -> i64 {
        (self.task.clock)()
    }

    /// Calls this processor's `punctuate` every `interval` of `kind` time,
    /// first at the current time plus `interval`.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> ScheduleId {
        self.task.schedule(self.node, interval, kind)
    }

    pub fn cancel(&mut self, id: ScheduleId) {
        self.task.schedules.retain(|s| s.id != id);
    }

    /// A state store connected to this node (or a global store), as the
    /// typed handle its builder makes, e.g. `KeyValueStore<String, i64>`.
    pub fn state_store<S: Clone + 'static>(&self, name: &str) -> Result<S> {
        if !self.task.store_connected(self.node, name) {
            return Err(StreamsError::Topology(format!(
                "processor {} is not connected to state store {name} (connect it when adding the store)",
                self.task.node_name(self.node)
            )));
        }
        self.task.store_handle(name)
    }
}
