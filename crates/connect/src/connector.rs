//! The plugin interfaces: a connector [`Plugin`] (its configuration, how it
//! splits into task configurations) and the tasks that do the work, a
//! [`SourceTask`] (polled for records) or a [`SinkTask`] (given records,
//! then asked to make them durable). The worker's runtime drives them;
//! built-in connectors live in [`crate::connectors`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ConfigDef, ConfigErrors, Props};
use crate::data::{JsonMap, Record};
use crate::error::Result;

/// Source or sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Source,
    Sink,
}

impl ConnectorKind {
    /// As the REST API writes it (`"source"`, `"sink"`).
    pub fn name(self) -> &'static str {
        match self {
            ConnectorKind::Source => "source",
            ConnectorKind::Sink => "sink",
        }
    }
}

/// A connector class: what `connector.class` names.
#[async_trait]
pub trait Plugin: Send + Sync {
    /// The class name, as Kafka or Confluent spell it
    /// (`org.apache.kafka.connect.file.FileStreamSourceConnector`).
    fn class(&self) -> &'static str;
    /// Other names `connector.class` may use (the simple class name, with
    /// and without the `Connector` suffix, as Connect accepts aliases).
    fn aliases(&self) -> &'static [&'static str];
    fn kind(&self) -> ConnectorKind;
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    /// The connector's own keys (the worker adds the common ones: `name`,
    /// `connector.class`, `tasks.max`, converters, transforms, errors.*).
    fn config_def(&self) -> ConfigDef;
    /// Validation beyond the definition's (cross-key rules, reachability).
    async fn validate(&self, props: &Props) -> ConfigErrors {
        self.config_def().validate(props)
    }
    /// The task configurations for this connector configuration, at most
    /// `max_tasks` (`tasks.max`) of them. Each is what a task's `start` gets.
    async fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>>;
    /// A new task of a source connector.
    fn source_task(&self) -> Option<Box<dyn SourceTask>> {
        None
    }
    /// A new task of a sink connector.
    fn sink_task(&self) -> Option<Box<dyn SinkTask>> {
        None
    }
    /// KIP-618: whether a source connector can run with exactly-once
    /// delivery (its offsets are exact positions it restarts from).
    fn exactly_once_source(&self) -> bool {
        true
    }
}

/// Reads committed source offsets (the offsets topic) for a task.
#[async_trait]
pub trait OffsetReader: Send + Sync {
    /// The last committed offset of `partition`, if any.
    async fn offset(&self, partition: &JsonMap) -> Result<Option<JsonMap>>;
}

/// What a source task is given at start.
#[derive(Clone)]
pub struct SourceTaskContext {
    pub connector: String,
    pub task: u32,
    pub offsets: Arc<dyn OffsetReader>,
}

/// What a sink task is given at start.
#[derive(Clone, Debug)]
pub struct SinkTaskContext {
    pub connector: String,
    pub task: u32,
}

/// A source task: polled in a loop by its runner.
#[async_trait]
pub trait SourceTask: Send {
    /// Starts with its task configuration; reads its committed offsets
    /// through `ctx.offsets` to know where to resume.
    async fn start(&mut self, props: &Props, ctx: SourceTaskContext) -> Result<()>;
    /// The records available now, each with `source_partition` and
    /// `source_offset`. May wait a little (say up to a second) when there are
    /// none; an empty answer is fine. `Retriable` errors are logged and
    /// polling goes on; others fail the task.
    async fn poll(&mut self) -> Result<Vec<Record>>;
    /// The offsets of everything polled so far were committed.
    async fn commit(&mut self) -> Result<()> {
        Ok(())
    }
    async fn stop(&mut self) {}
}

/// A sink task: given batches of records, asked to flush before the runner
/// commits the consumer offsets of what it was given.
#[async_trait]
pub trait SinkTask: Send {
    async fn start(&mut self, props: &Props, ctx: SinkTaskContext) -> Result<()>;
    /// Writes (or buffers) records. A `Retriable` error makes the runner
    /// give the same batch again after a backoff, until
    /// `errors.retry.timeout.ms`; others fail the task.
    async fn put(&mut self, records: Vec<Record>) -> Result<()>;
    /// Makes everything given to `put` durable in the external system. The
    /// runner commits the consumer offsets only after this succeeds.
    async fn flush(&mut self) -> Result<()>;
    /// These partitions were taken from this task (a rebalance of the
    /// connector's group) before what it was given of them since the last
    /// flush was committed: another task reads those records again from
    /// the last commit, so this one must drop whatever it still holds of
    /// them (buffered files, a dedup position) and write none of it.
    async fn close(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        let _ = partitions;
        Ok(())
    }
    async fn stop(&mut self) {}
}
