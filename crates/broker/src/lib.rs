//! The vltava broker.
//!
//! - [`server`]: the listener, connection limit and shutdown;
//! - [`connection`]: framing and in-order pipelined responses per client;
//! - [`handlers`]: one module per Kafka API;
//! - [`controller`]: topic changes through the metadata log;
//! - [`group`]: consumer groups and committed offsets;
//! - [`txn`]: producer ids and transactions;
//! - [`log_manager`]: retention and compaction in the background;
//! - [`replica_manager`] and [`partition`]: the partition logs this node hosts;
//! - [`config`]: broker settings with Kafka's names.

pub mod config;
pub mod connection;
pub mod controller;
pub mod group;
pub mod handlers;
pub mod log_manager;
pub mod partition;
pub mod replica_manager;
pub mod server;
pub mod topic_config;
pub mod txn;

use std::sync::Arc;

use uuid::Uuid;
use vltava_metadata::TopicImage;
use vltava_protocol::ResponseError;

pub use config::BrokerConfig;
use controller::{Controller, ControllerError, TopicSpec};
use partition::Partition;
use replica_manager::ReplicaManager;
pub use server::{run, ShutdownHandle};

/// Everything a request handler may touch.
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub controller: Controller,
    pub replicas: ReplicaManager,
    pub groups: group::GroupCoordinator,
    pub txns: txn::TransactionCoordinator,
    /// Flips to true when the broker starts shutting down.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl Broker {
    /// The partition `index` of topic `name`, if this broker leads it.
    pub fn partition(&self, name: &str, index: i32) -> Result<(Arc<Partition>, Arc<TopicImage>), ResponseError> {
        let image = self.controller.image();
        let topic = image.topic(name).ok_or(ResponseError::UnknownTopicOrPartition)?;
        let partition = self.replicas.get(&topic.topic_id, index).ok_or(ResponseError::UnknownTopicOrPartition)?;
        Ok((partition, topic.clone()))
    }

    /// Creates a topic in the metadata log and opens its partition logs.
    pub fn create_topic(&self, spec: &TopicSpec) -> Result<Arc<TopicImage>, ControllerError> {
        let topic = self.controller.create_topic(spec)?;
        self.replicas.open_topic(&topic, false).map_err(|e| {
            tracing::error!(topic = %spec.name, error = %e, "could not open partition logs");
            ControllerError { error: ResponseError::KafkaStorageError, message: e.to_string() }
        })?;
        Ok(topic)
    }

    /// Removes a topic from the metadata log and deletes its data.
    pub fn delete_topic(&self, topic_id: Uuid) -> Result<(), ControllerError> {
        let topic = self.controller.delete_topic(topic_id)?;
        self.replicas.delete_topic(&topic);
        Ok(())
    }
}
