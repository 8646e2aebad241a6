//! The worker cluster: membership in the Kafka group `group.id` (JoinGroup
//! with protocol type `connect`), the leader's assignment of connectors and
//! tasks, the config topic (connector configs, task configs, target
//! states), the status topic, and what the REST API asks of them.
//!
//! OWNER: herder helper.

use crate::config::WorkerConfig;

/// Runs the worker (see [`crate::run`]).
pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let _ = config;
    anyhow::bail!("not yet")
}
