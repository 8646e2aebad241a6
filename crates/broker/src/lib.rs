//! The vltava broker.
//!
//! - [`server`]: the accept loop, connection limit and shutdown;
//! - [`listeners`]: which listeners, their security protocols and TLS settings;
//! - [`listener`]: binding the listeners' ports (port 0: the system picks);
//! - [`connection`]: framing and in-order pipelined responses per client;
//! - [`handlers`]: one module per Kafka API;
//! - [`controller`]: topic changes through the metadata log;
//! - [`group`]: consumer groups and committed offsets;
//! - [`txn`]: producer ids and transactions;
//! - [`log_manager`]: retention and compaction in the background;
//! - [`replica_manager`] and [`partition`]: the partition logs this node hosts;
//! - [`authorizer`]: ACL checks (Kafka's StandardAuthorizer);
//! - [`config`]: broker settings with Kafka's names.

pub mod admin;
pub mod authorized;
pub mod authorizer;
pub mod broker_keys;
pub mod broker_metrics;
pub mod client_metrics;
pub mod config;
pub mod connection;
pub mod controller;
pub mod delegation_tokens;
pub mod dynamic_broker_config;
pub mod features;
pub mod group;
pub mod group_config;
pub mod handlers;
pub mod kafka_broker_defaults;
pub mod limits;
pub mod listener;
pub mod listeners;
pub mod log_levels;
pub mod log_manager;
pub mod log_mover;
pub mod oauthbearer;
pub mod partition;
pub mod quotas;
pub mod replica_manager;
pub mod replica_state;
pub mod replication;
pub mod sasl;
pub mod schema_registry;
pub mod schema_validation;
pub mod server;
pub mod share;
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
    /// From meta.properties; the image's cluster id wins once written.
    pub local_cluster_id: String,
    pub controller: Controller,
    pub replicas: ReplicaManager,
    pub fetchers: replication::ReplicaFetchers,
    /// This process's registration incarnation.
    pub incarnation: u64,
    /// Set by a controlled shutdown; heartbeats carry it.
    pub shutting_down: std::sync::atomic::AtomicBool,
    pub runtime: tokio::runtime::Handle,
    pub groups: group::GroupCoordinator,
    pub txns: txn::TransactionCoordinator,
    /// Share group membership (KIP-932) at the group coordinator.
    pub share_groups: share::groups::ShareGroups,
    /// Share partitions and share sessions on the partitions this node leads.
    pub share_partitions: share::partitions::SharePartitions,
    /// Where share partitions keep their state.
    pub share_persister: Arc<dyn share::persister::SharePersister>,
    /// The share coordinator: share partition states in `__share_group_state`.
    pub share_coordinator: share::coordinator::ShareCoordinator,
    /// Client quota sensors (the quotas are in the metadata image).
    pub quotas: quotas::QuotaManager,
    /// Client instances pushing their metrics (KIP-714).
    pub client_metrics: client_metrics::ClientMetrics,
    /// `delegation.token.*` (tokens are in the metadata image).
    pub delegation_tokens: delegation_tokens::TokenSettings,
    /// TLS to other brokers, when the inter-broker listener is SSL.
    pub inter_broker_tls: Option<Arc<vltava_security::TlsConnectorSource>>,
    /// SASL login to other brokers, when the inter-broker listener is SASL.
    pub inter_broker_sasl: Option<Arc<sasl::login::InterBrokerLogin>>,
    /// The schema registry's state on this node (it follows `_schemas`).
    pub schema_registry: Arc<schema_registry::SchemaRegistry>,
    /// Flips to true when the broker starts shutting down.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl Broker {
    /// The partition `index` of topic `name`, if this broker leads it.
    pub fn partition(&self, name: &str, index: i32) -> Result<(Arc<Partition>, Arc<TopicImage>), ResponseError> {
        let image = self.controller.image();
        let topic = image.topic(name).ok_or(ResponseError::UnknownTopicOrPartition)?;
        let p = topic.partition(index).ok_or(ResponseError::UnknownTopicOrPartition)?;
        let partition = self.replicas.get(&topic.topic_id, index).ok_or(if p.leader < 0 {
            ResponseError::LeaderNotAvailable
        } else {
            ResponseError::NotLeaderOrFollower
        })?;
        if partition.is_offline() {
            return Err(ResponseError::KafkaStorageError);
        }
        if !partition.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        Ok((partition, topic.clone()))
    }

    /// The cluster id: the one in the metadata log, once written.
    pub fn cluster_id(&self) -> String {
        self.controller.image().cluster_id.clone().unwrap_or_else(|| self.local_cluster_id.clone())
    }

    /// Creates a topic through the quorum; its logs are open here when
    /// this returns.
    pub fn create_topic(&self, spec: &TopicSpec) -> Result<Arc<TopicImage>, ControllerError> {
        self.controller.create_topic(spec)
    }

    /// Removes a topic; every replica deletes its data when it applies it.
    pub fn delete_topic(&self, topic_id: Uuid) -> Result<(), ControllerError> {
        self.controller.delete_topic(topic_id).map(|_| ())
    }

    /// A log directory failed: every wait on its partitions looks again
    /// (and fails with KAFKA_STORAGE_ERROR); the next heartbeat tells the
    /// controller, which moves the leaderships away.
    pub fn on_log_dir_failure(&self) {
        for partition in self.replicas.all() {
            partition.wake();
        }
    }

    /// A partition of an internal topic changed role here: its
    /// coordinator loads or unloads the state kept there.
    pub fn on_leadership(self: &Arc<Self>, topic: &str, index: i32, leader: bool) {
        if topic == group::OFFSETS_TOPIC {
            self.groups.on_partition_role(self, index, leader);
        } else if topic == txn::TRANSACTION_STATE_TOPIC {
            self.txns.on_partition_role(self, index, leader);
        } else if topic == share::coordinator::SHARE_STATE_TOPIC {
            self.share_coordinator.on_partition_role(self, index, leader);
        }
    }
}
