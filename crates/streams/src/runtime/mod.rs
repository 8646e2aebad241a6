//! [`KafkaStreams`]: runs a topology against a Kafka cluster. To be written
//! by the runtime helper: stream threads (one consumer each, in the group
//! `application.id`; tasks created and closed as partitions are assigned
//! and revoked), internal topic creation, changelog restoration and
//! checkpoints, at-least-once and exactly-once v2 commits, the global
//! stores' thread, interactive queries.

use std::collections::BTreeMap;

use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::topology::Topology;

/// The instance's state (Kafka Streams' `KafkaStreams.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamsState {
    Created,
    Rebalancing,
    Running,
    PendingShutdown,
    NotRunning,
    PendingError,
    Error,
}

/// Where a key lives: the partition of the store's source topic it maps to
/// and the instance (`application.server`) that holds that partition's task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    pub partition: i32,
    pub active_host: Option<String>,
    pub standby_hosts: Vec<String>,
}

pub struct KafkaStreams {
    _topology: Topology,
    config: StreamsConfig,
    _extra: BTreeMap<String, String>,
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        Ok(KafkaStreams { _topology: topology, config, _extra: BTreeMap::new() })
    }

    pub fn start(&mut self) -> Result<()> {
        Err(StreamsError::InvalidState(format!("{}: the runtime is not written yet", self.config.application_id)))
    }

    pub fn state(&self) -> StreamsState {
        StreamsState::Created
    }
}
