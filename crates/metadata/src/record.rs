//! The records of the metadata log. Field names follow KRaft's records
//! (TopicRecord, PartitionRecord, ConfigRecord, RemoveTopicRecord,
//! RegisterBrokerRecord, FenceBrokerRecord, PartitionChangeRecord, ...).
//!
//! Some records are requests the image decides on when it applies them
//! (`AlterIsr` applies only at the partition epoch it was made for,
//! `FenceBroker` elects new leaders): applying is deterministic, so every
//! node of the quorum reaches the same image from the same log.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// The cluster's id, written once by the first controller leader.
    ClusterId { cluster_id: String },
    /// A topic exists with this name and id (ignored if the name is taken).
    Topic { name: String, topic_id: Uuid },
    /// A partition's replica set, leader and epochs.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        /// An ongoing reassignment's target (in snapshots; `None` otherwise).
        #[serde(default)]
        target_replicas: Option<Vec<i32>>,
    },
    /// A dynamic topic config: `value: None` removes the key.
    TopicConfig { topic_id: Uuid, key: String, value: Option<String> },
    /// The topic and all its partitions are gone.
    RemoveTopic { topic_id: Uuid },
    /// Producer ids below `next_producer_id` have been handed out (found in
    /// pre-Raft metadata logs, which are imported at start).
    ProducerIds { broker_id: i32, next_producer_id: i64 },
    /// `broker_id` takes the next `count` producer ids.
    AllocateProducerIds { broker_id: i32, count: i64 },
    /// `broker_id` holds the producer ids `[start, end)` (in snapshots).
    ProducerIdBlock { broker_id: i32, start: i64, end: i64 },
    /// A broker process started (`incarnation` is new for each start) and
    /// is reachable at `host:port`. It is unfenced; a previous incarnation
    /// is fenced first, so its leaderships get new epochs.
    RegisterBroker { broker_id: i32, incarnation: u64, host: String, port: u16 },
    /// A broker missed heartbeats or is shutting down (`controlled`): it
    /// leaves every ISR and its leaderships move to other ISR members.
    /// Applies only to that incarnation (a late record never fences the
    /// broker's next process).
    FenceBroker { broker_id: i32, incarnation: u64, controlled: bool },
    /// The broker is removed from the cluster (Kafka's UnregisterBroker):
    /// fenced first (it leaves every ISR, its leaderships move), then its
    /// registration is gone. A process still running registers again.
    UnregisterBroker { broker_id: i32 },
    /// Replicas of that broker incarnation that sit in a failed log
    /// directory (JBOD): each leaves its partition's ISR and leadership,
    /// as a fenced broker would, until the broker registers again.
    OfflineReplicas { broker_id: i32, incarnation: u64, replicas: Vec<(Uuid, i32)> },
    /// Every listener of that broker incarnation, by listener name (Kafka's
    /// BrokerRegistration endpoints): Metadata answers a client with the
    /// endpoints of the listener it connected to. Written after
    /// `RegisterBroker` by brokers with more than one client listener; a
    /// broker without it is reached at its registered host and port on
    /// every listener.
    BrokerEndpoints { broker_id: i32, incarnation: u64, endpoints: Vec<BrokerEndpoint> },
    /// A fenced broker (that incarnation) is heartbeating again.
    UnfenceBroker { broker_id: i32, incarnation: u64 },
    /// A leader's ISR change (KIP-497 AlterPartition); applies only if the
    /// partition is still at `leader_epoch` / `partition_epoch`.
    AlterIsr { topic_id: Uuid, partition: i32, leader_epoch: i32, partition_epoch: i32, isr: Vec<i32> },
    /// Make the first replica the leader if it is in the ISR and alive.
    ElectPreferred { topic_id: Uuid, partition: i32 },
    /// Reassignment: the partition's replica set becomes `replicas`; the
    /// ISR keeps its members that stay and the leader moves if it left.
    Reassign { topic_id: Uuid, partition: i32, replicas: Vec<i32> },
    /// A dynamic broker config (Kafka's ConfigRecord for a BROKER
    /// resource): `resource` is a broker id, or "" for the cluster-wide
    /// default; `value: None` removes the key.
    BrokerConfig { resource: String, key: String, value: Option<String> },
    /// A feature flag's finalized level (KIP-584, Kafka's
    /// FeatureLevelRecord); level 0 removes it from the finalized list.
    FeatureLevel { name: String, level: i16 },
    /// A client quota (Kafka's ClientQuotaRecord): for the entity (entity
    /// types `user`, `client-id`, `ip`, each with a name, or `None` for the
    /// type's default), `key` (e.g. `producer_byte_rate`) is set to
    /// `value`, or removed (`None`).
    ClientQuota { entity: Vec<(String, Option<String>)>, key: String, value: Option<QuotaValue> },
    /// An ACL exists (Kafka's AccessControlEntryRecord), with its id.
    Acl { id: Uuid, acl: crate::acl::AclBinding },
    /// The ACL with this id is gone (RemoveAccessControlEntryRecord).
    RemoveAcl { id: Uuid },
    /// A config of a resource other than a topic or a broker (Kafka's
    /// ConfigRecord): `resource_type` is Kafka's ConfigResource type (16
    /// CLIENT_METRICS: a client-metrics subscription, KIP-714), `name` the
    /// resource; `value: None` removes the key, and a resource without keys
    /// is gone.
    ResourceConfig { resource_type: i8, name: String, key: String, value: Option<String> },
    /// A delegation token was created or renewed (Kafka's
    /// DelegationTokenRecord): the whole token, replacing any with its id.
    DelegationToken(DelegationTokenInfo),
    /// A delegation token was expired, or passed its expiry (Kafka's
    /// RemoveDelegationTokenRecord).
    RemoveDelegationToken { token_id: String },
    /// A user's SCRAM credential for one mechanism (Kafka's
    /// UserScramCredentialRecord; `mechanism` is Kafka's ScramMechanism
    /// code, 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512): salted, never the
    /// password. Replaces the user's credential of that mechanism.
    UserScramCredential { name: String, mechanism: i8, credential: ScramCredentialData },
    /// The user's credential of that mechanism is gone (Kafka's
    /// RemoveUserScramCredentialRecord).
    RemoveUserScramCredential { name: String, mechanism: i8 },
}

/// A delegation token as the metadata log keeps it (never its HMAC, which
/// every node derives from `delegation.token.secret.key`). Principals are
/// in `Type:name` form; times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationTokenInfo {
    pub token_id: String,
    pub owner: String,
    /// Who asked for it (CreateDelegationToken v3 may name another owner).
    pub requester: String,
    pub renewers: Vec<String>,
    pub issue_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub expiry_timestamp_ms: i64,
}

/// A stored SCRAM credential: salt, StoredKey, ServerKey and iterations
/// (RFC 5802).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredentialData {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredentialData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialData").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// A quota's value: an `f64` kept as its bits, so that records and images
/// compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaValue(pub u64);

impl QuotaValue {
    pub fn new(value: f64) -> Self {
        QuotaValue(value.to_bits())
    }
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// One listener of a broker: its name (`PLAINTEXT`, `SSL`, `INTERNAL`, ...)
/// and the host and port advertised for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}
