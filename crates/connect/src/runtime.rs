//! Runs tasks on this worker: a source task's loop (poll, transform,
//! convert, produce, commit offsets to the offsets topic; with
//! `exactly.once.source.support=enabled`, records and offsets in one
//! transaction) and a sink task's (consume in the `connect-NAME` group,
//! convert, transform, put, flush, then commit), with Connect's error
//! handling (`errors.tolerance`, retries, dead-letter queue).
//!
//! OWNER: runtime helper. The herder calls only what is below.

use std::sync::Arc;

use crate::config::{Props, WorkerConfig};
use crate::data::JsonMap;
use crate::error::{ConnectError, Result};
use crate::status::{StatusListener, TargetState, TaskId};

/// This worker's running tasks.
pub struct Runtime {
    pub config: Arc<WorkerConfig>,
    pub status: Arc<dyn StatusListener>,
}

impl Runtime {
    pub fn new(config: Arc<WorkerConfig>, status: Arc<dyn StatusListener>) -> Result<Arc<Runtime>> {
        Ok(Arc::new(Runtime { config, status }))
    }

    /// Starts a task of `connector_props`' connector with `task_props`;
    /// paused when `target` is Paused. Reports RUNNING (or FAILED) through
    /// the status listener. Starting a task already running restarts it.
    pub async fn start_task(
        &self,
        id: TaskId,
        connector_props: Props,
        task_props: Props,
        target: TargetState,
    ) -> Result<()> {
        let _ = (id, connector_props, task_props, target);
        Err(ConnectError::fatal("not yet"))
    }

    /// Stops a task gracefully (a sink flushes and commits, a source
    /// commits its offsets), waiting at most `task.shutdown.graceful.timeout.ms`.
    pub async fn stop_task(&self, id: &TaskId) {
        let _ = id;
    }

    /// Pauses or resumes the running tasks of a connector.
    pub fn set_target_state(&self, connector: &str, state: TargetState) {
        let _ = (connector, state);
    }

    /// The tasks running here.
    pub fn tasks(&self) -> Vec<TaskId> {
        Vec::new()
    }

    /// Stops every task (the worker shuts down or rebalances).
    pub async fn stop_all(&self) {}

    /// KIP-875: a source connector's committed offsets, `(partition, offset)`.
    pub async fn source_offsets(&self, connector: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
        let _ = connector;
        Ok(Vec::new())
    }

    /// KIP-875: writes (or, with `None`, removes) source offsets.
    pub async fn alter_source_offsets(&self, connector: &str, offsets: Vec<(JsonMap, Option<JsonMap>)>) -> Result<()> {
        let _ = (connector, offsets);
        Err(ConnectError::fatal("not yet"))
    }

    /// KIP-875: a sink connector's committed offsets in group `connect-NAME`, `(topic, partition, offset)`.
    pub async fn sink_offsets(&self, connector: &str, connector_props: &Props) -> Result<Vec<(String, i32, i64)>> {
        let _ = (connector, connector_props);
        Ok(Vec::new())
    }

    /// KIP-875: alters (or, with `None`, resets) a sink connector's group offsets.
    pub async fn alter_sink_offsets(
        &self,
        connector: &str,
        connector_props: &Props,
        offsets: Vec<(String, i32, Option<i64>)>,
    ) -> Result<()> {
        let _ = (connector, connector_props, offsets);
        Err(ConnectError::fatal("not yet"))
    }
}
