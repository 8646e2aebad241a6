//! Errors of a streams application.

use thiserror::Error;

pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum StreamsError {
    /// A key or value could not be turned into bytes or back.
    #[error("serde error on topic {topic}: {reason}")]
    Serde { topic: String, reason: String },
    /// A configuration key or value is wrong (names the key).
    #[error("invalid config {key}: {reason}")]
    Config { key: String, reason: String },
    /// The topology is wrong (unknown node or store, a cycle, a type mismatch
    /// between nodes added through the untyped Processor API, ...).
    #[error("topology error: {0}")]
    Topology(String),
    /// A state store failed (I/O, corruption, closed).
    #[error("state store {store}: {reason}")]
    Store { store: String, reason: String },
    /// The Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// This instance no longer owns the task (a rebalance moved it) or its
    /// producer was fenced: the task's uncommitted work is dropped.
    #[error("task migrated: {0}")]
    TaskMigrated(String),
    /// A user processor failed.
    #[error("processing failed: {0}")]
    Processing(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A store's local state is not to be trusted (its checkpoint names an
    /// offset past its changelog's end): Kafka Streams' TaskCorruptedException.
    /// The runtime rebuilds the store from the changelog's beginning.
    #[error("task state corrupted: {0}")]
    TaskCorrupted(String),
    /// The instance is closing: a long operation (a restoration) stopped
    /// early; not a failure.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The instance is not in a state where the call can be served (not
    /// running yet, rebalancing, stopped).
    #[error("invalid state: {0}")]
    InvalidState(String),
}

impl StreamsError {
    pub fn serde(topic: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Serde { topic: topic.to_string(), reason: reason.to_string() }
    }

    pub fn store(store: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Store { store: store.to_string(), reason: reason.to_string() }
    }

    pub fn config(key: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Config { key: key.to_string(), reason: reason.to_string() }
    }
}
