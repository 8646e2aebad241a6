//! The controller side of a node: validates topic changes, places
//! replicas, and proposes the records to the metadata quorum (Raft). The
//! quorum's leader is the active controller; proposals from other nodes
//! are forwarded to it by raft-rs. Records that depend on the state they
//! apply to (ISR changes, elections) are decided when applied, so every
//! node reaches the same image.

use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;
use vltava_metadata::{MetadataImage, MetadataRecord, TopicImage};
use vltava_protocol::ResponseError;

use vltava_quorum::{ProposeError, Quorum};

pub use crate::limits::PARTITIONS_PER_TOPIC_MAX;
pub use crate::limits::TOPIC_NAME_BYTES_MAX;

/// A refused change: Kafka's error code and a message for the client.
#[derive(Debug, Clone)]
pub struct ControllerError {
    pub error: ResponseError,
    pub message: String,
}

impl ControllerError {
    fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self { error, message: message.into() }
    }
}

/// Kafka's topic name rule: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let invalid = |why: &str| {
        Err(ControllerError::new(
            ResponseError::InvalidTopicException,
            format!("Topic name \"{name}\" is illegal, {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("it can't be empty");
    }
    if name == "." || name == ".." {
        return invalid("it can't be '.' or '..'");
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return invalid("it can't be longer than 249 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

pub struct TopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// How long a metadata change may wait for the quorum.
use crate::limits::PROPOSE_TIMEOUT;

/// Validates changes against the current image, picks replica placement,
/// and proposes the records to the metadata quorum; returns once this node
/// has applied them (so its partition logs exist when a handler answers).
pub struct Controller {
    node_id: i32,
    quorum: Arc<Quorum>,
    /// Serialises this node's own changes (validation sees the last one).
    lock: Mutex<()>,
    /// Images published by the quorum, and how far this node has acted on
    /// them (opened partitions, taken roles): a change returns only once
    /// its image is acted on here.
    published: std::sync::atomic::AtomicU64,
    reconciled: Mutex<u64>,
    reconciled_changed: parking_lot::Condvar,
}

fn unavailable(_: ProposeError) -> ControllerError {
    ControllerError::new(
        ResponseError::RequestTimedOut,
        "The metadata quorum did not accept the change in time (no controller leader?).",
    )
}

impl Controller {
    pub fn new(node_id: i32, quorum: Arc<Quorum>) -> Self {
        Self {
            node_id,
            quorum,
            lock: Mutex::new(()),
            published: std::sync::atomic::AtomicU64::new(0),
            reconciled: Mutex::new(0),
            reconciled_changed: parking_lot::Condvar::new(),
        }
    }

    pub fn quorum(&self) -> &Arc<Quorum> {
        &self.quorum
    }

    /// The current image; cheap, and stable for the caller's lifetime.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The active controller's node id, or -1.
    pub fn active_controller(&self) -> i32 {
        self.quorum.leader()
    }

    /// The controller id given to clients (Metadata, DescribeCluster): the
    /// active controller when it is a live broker, else this broker. Clients
    /// send admin requests to that id, and a controller-only node
    /// (`process.roles=controller`) has no client listener; any broker
    /// proposes the change to the quorum itself. (Kafka's KRaft brokers
    /// likewise name a broker, never a controller.)
    pub fn controller_for_clients(&self) -> i32 {
        let active = self.active_controller();
        if self.image().broker(active).is_some_and(|b| !b.fenced) {
            active
        } else {
            self.node_id
        }
    }

    /// Number of live (registered, unfenced) brokers.
    pub fn broker_count(&self) -> usize {
        self.image().live_brokers().len()
    }

    fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        self.quorum.propose_and_wait(records, PROPOSE_TIMEOUT).map_err(unavailable)?;
        // the image holding the change is published before the proposer
        // hears back; wait until this node has acted on it
        if self.wait_reconciled(PROPOSE_TIMEOUT) {
            Ok(())
        } else {
            Err(unavailable(ProposeError::Timeout))
        }
    }

    /// Waits (at most `timeout`) until this node has acted on every image
    /// published so far (roles taken, coordinators loading); whether it
    /// has.
    pub fn wait_reconciled(&self, timeout: std::time::Duration) -> bool {
        let target = self.published.load(std::sync::atomic::Ordering::Acquire);
        let deadline = std::time::Instant::now() + timeout;
        let wait = || {
            let mut reconciled = self.reconciled.lock();
            while *reconciled < target {
                if self.reconciled_changed.wait_until(&mut reconciled, deadline).timed_out() {
                    return false;
                }
            }
            true
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(wait)
        } else {
            wait()
        }
    }

    /// The quorum published a new image; its sequence number.
    pub fn published(&self) -> u64 {
        self.published.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1
    }

    /// This node has acted on the images up to `seq`.
    pub fn reconciled(&self, seq: u64) {
        let mut reconciled = self.reconciled.lock();
        *reconciled = (*reconciled).max(seq);
        self.reconciled_changed.notify_all();
    }

    /// Checks a topic creation without doing it.
    pub fn validate_create(&self, spec: &TopicSpec) -> Result<(), ControllerError> {
        validate_topic_name(&spec.name)?;
        if self.image().topic(&spec.name).is_some() {
            return Err(ControllerError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", spec.name),
            ));
        }
        if spec.num_partitions < 1 || spec.num_partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(ControllerError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "Number of partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {}.",
                    spec.num_partitions
                ),
            ));
        }
        if spec.replication_factor < 1 {
            return Err(ControllerError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if spec.replication_factor as usize > self.broker_count() {
            return Err(ControllerError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only {} broker(s) are registered.", spec.replication_factor, spec.replication_factor, self.broker_count()),
            ));
        }
        crate::topic_config::validate(&spec.configs)
            .map_err(|m| ControllerError::new(ResponseError::InvalidConfig, m))?;
        Ok(())
    }

    /// Replicas for new partitions `from..to`: live brokers in turn from a
    /// random start, so that leaders (the first replica) are spread.
    fn place(&self, from: i32, to: i32, replication_factor: usize) -> Vec<Vec<i32>> {
        let live = self.image().live_brokers();
        if live.is_empty() {
            return (from..to).map(|_| vec![self.node_id]).collect();
        }
        let start = (Uuid::new_v4().as_u128() % live.len() as u128) as usize;
        let rf = replication_factor.clamp(1, live.len());
        (from..to).map(|p| (0..rf).map(|j| live[(start + p as usize + j) % live.len()]).collect()).collect()
    }

    /// Creates a topic: validated, placed, committed through the quorum,
    /// then visible in the image (with its logs open on this node).
    pub fn create_topic(&self, spec: &TopicSpec) -> Result<Arc<TopicImage>, ControllerError> {
        let _guard = self.lock.lock();
        self.validate_create(spec)?;
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic { name: spec.name.clone(), topic_id }];
        for (key, value) in &spec.configs {
            records.push(MetadataRecord::TopicConfig { topic_id, key: key.clone(), value: Some(value.clone()) });
        }
        let placement = self.place(0, spec.num_partitions, spec.replication_factor as usize);
        for (partition, replicas) in placement.into_iter().enumerate() {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: partition as i32,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                target_replicas: None,
            });
        }
        self.commit(records)?;
        match self.image().topic(&spec.name) {
            Some(t) if t.topic_id == topic_id => Ok(t.clone()),
            // another node created it first
            _ => Err(ControllerError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", spec.name),
            )),
        }
    }

    /// Removes a topic; returns its last image.
    pub fn delete_topic(&self, topic_id: Uuid) -> Result<Arc<TopicImage>, ControllerError> {
        let _guard = self.lock.lock();
        let topic = self.image().topic_by_id(&topic_id).cloned().ok_or_else(|| {
            ControllerError::new(ResponseError::UnknownTopicId, "This server does not host this topic ID.")
        })?;
        self.commit(vec![MetadataRecord::RemoveTopic { topic_id }])?;
        Ok(topic)
    }

    /// Sets (`Some`) or removes (`None`) dynamic configs of a topic.
    pub fn alter_topic_configs(
        &self,
        topic_id: Uuid,
        changes: &[(String, Option<String>)],
    ) -> Result<Arc<TopicImage>, ControllerError> {
        let _guard = self.lock.lock();
        let image = self.image();
        let topic = image
            .topic_by_id(&topic_id)
            .ok_or_else(|| ControllerError::new(ResponseError::UnknownTopicOrPartition, "unknown topic"))?;
        let records: Vec<MetadataRecord> = changes
            .iter()
            .map(|(key, value)| MetadataRecord::TopicConfig { topic_id, key: key.clone(), value: value.clone() })
            .collect();
        if !records.is_empty() {
            self.commit(records)?;
        }
        let name = topic.name.clone();
        self.image().topic(&name).cloned().ok_or_else(|| {
            ControllerError::new(ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' was deleted."))
        })
    }

    /// Sets (`Some`) or removes (`None`) dynamic configs of a broker
    /// resource (a broker id, or "" for the cluster-wide default); returns
    /// once this node has applied them.
    pub fn alter_broker_configs(
        &self,
        resource: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ControllerError> {
        self.commit_changes(
            changes
                .iter()
                .map(|(key, value)| MetadataRecord::BrokerConfig {
                    resource: resource.to_string(),
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        )
    }

    /// Commits `records` (already checked), if any, under the controller's
    /// lock; returns once this node has applied them.
    fn commit_changes(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        if records.is_empty() {
            return Ok(());
        }
        let _guard = self.lock.lock();
        self.commit(records)
    }

    /// Sets (`Some`) or removes (`None`) configs of a resource other than
    /// a topic or broker (a client-metrics subscription); returns once
    /// this node has applied them.
    pub fn alter_resource_configs(
        &self,
        resource_type: i8,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ControllerError> {
        self.commit_changes(
            changes
                .iter()
                .map(|(key, value)| MetadataRecord::ResourceConfig {
                    resource_type,
                    name: name.to_string(),
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        )
    }

    /// Sets or removes client quotas (records already checked); returns
    /// once this node has applied them.
    pub fn alter_client_quotas(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        self.commit_changes(records)
    }

    /// Adds ACL bindings (already checked); one equal to an existing
    /// binding is not added again. Returns once this node has applied them.
    pub fn create_acls(&self, bindings: Vec<vltava_metadata::AclBinding>) -> Result<(), ControllerError> {
        let _guard = self.lock.lock();
        let image = self.image();
        let mut records: Vec<MetadataRecord> = Vec::new();
        for acl in bindings {
            let duplicate = records.iter().any(|r| matches!(r, MetadataRecord::Acl { acl: a, .. } if *a == acl));
            if image.acls().find(&acl).is_none() && !duplicate {
                records.push(MetadataRecord::Acl { id: Uuid::new_v4(), acl });
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        self.commit(records)
    }

    /// Removes the ACL bindings with these ids; returns once this node has
    /// applied it.
    pub fn delete_acls(&self, ids: Vec<Uuid>) -> Result<(), ControllerError> {
        let _guard = self.lock.lock();
        let image = self.image();
        let records: Vec<MetadataRecord> = ids
            .into_iter()
            .filter(|id| image.acls().by_id_contains(id))
            .map(|id| MetadataRecord::RemoveAcl { id })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.commit(records)
    }

    /// Writes delegation token changes (already decided by
    /// `delegation_tokens`); returns once this node has applied them.
    pub fn alter_delegation_tokens(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        self.commit_changes(records)
    }

    /// Stores or removes SCRAM credentials (already checked by
    /// `handlers::scram_credentials`).
    pub fn alter_scram_credentials(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        self.commit_changes(records)
    }

    /// Finalizes feature levels (already checked by `features`); returns
    /// once this node has applied them.
    pub fn set_feature_levels(&self, levels: &[(String, i16)]) -> Result<(), ControllerError> {
        let _guard = self.lock.lock();
        let records = levels
            .iter()
            .map(|(name, level)| MetadataRecord::FeatureLevel { name: name.clone(), level: *level })
            .collect();
        self.commit(records)?;
        tracing::info!(?levels, "finalized feature levels");
        Ok(())
    }

    /// Removes a broker's registration (it is fenced first); BROKER_ID_NOT_REGISTERED
    /// when the cluster does not know it.
    pub fn unregister_broker(&self, broker_id: i32) -> Result<(), ControllerError> {
        let _guard = self.lock.lock();
        if self.image().broker(broker_id).is_none() {
            return Err(ControllerError::new(
                ResponseError::BrokerIdNotRegistered,
                format!("Broker ID {broker_id} is not currently registered"),
            ));
        }
        self.commit(vec![MetadataRecord::UnregisterBroker { broker_id }])?;
        tracing::info!(broker = broker_id, "unregistered broker");
        Ok(())
    }

    /// Grows a topic to `count` partitions (Kafka never shrinks one).
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, ControllerError> {
        let _guard = self.lock.lock();
        let image = self.image();
        let topic = image.topic(name).cloned().ok_or_else(|| {
            ControllerError::new(ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' does not exist."))
        })?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            let message = if count == current {
                format!("Topic already has {current} partitions.")
            } else {
                format!("Topic currently has {current} partitions, which is higher than the requested {count}.")
            };
            return Err(ControllerError::new(ResponseError::InvalidPartitions, message));
        }
        if count > PARTITIONS_PER_TOPIC_MAX {
            return Err(ControllerError::new(
                ResponseError::InvalidPartitions,
                format!("At most {PARTITIONS_PER_TOPIC_MAX} partitions per topic."),
            ));
        }
        if validate_only {
            return Ok(topic);
        }
        let rf = topic.partitions.first().map(|p| p.replicas.len()).unwrap_or(1);
        let records: Vec<MetadataRecord> = self
            .place(current, count, rf)
            .into_iter()
            .zip(current..count)
            .map(|(replicas, partition)| MetadataRecord::Partition {
                topic_id: topic.topic_id,
                partition,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                target_replicas: None,
            })
            .collect();
        self.commit(records)?;
        self.image().topic(name).cloned().ok_or_else(|| {
            ControllerError::new(ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' was deleted."))
        })
    }

    /// Hands out a block of `count` producer ids, recorded in the metadata
    /// log so that no id is ever given twice, across restarts and brokers.
    pub fn allocate_producer_ids(&self, count: i64) -> Result<std::ops::Range<i64>, ControllerError> {
        let _guard = self.lock.lock();
        let before = self.image().producer_block(self.node_id);
        self.commit(vec![MetadataRecord::AllocateProducerIds { broker_id: self.node_id, count }])?;
        match self.image().producer_block(self.node_id) {
            Some((start, end)) if Some((start, end)) != before => Ok(start..end),
            _ => Err(ControllerError::new(ResponseError::CoordinatorNotAvailable, "producer id block not allocated")),
        }
    }

    /// A leader's ISR change (not waited for: the image tells the outcome).
    pub fn alter_isr(&self, topic_id: Uuid, partition: i32, change: crate::replica_state::IsrChange) {
        let crate::replica_state::IsrChange { leader_epoch, partition_epoch, isr } = change;
        tracing::info!(%topic_id, partition, ?isr, "proposing ISR change");
        self.quorum.propose(vec![MetadataRecord::AlterIsr { topic_id, partition, leader_epoch, partition_epoch, isr }]);
    }

    /// Preferred leader election for the given partitions.
    pub fn elect_preferred(&self, partitions: &[(Uuid, i32)]) -> Result<(), ControllerError> {
        let records = partitions
            .iter()
            .map(|(topic_id, partition)| MetadataRecord::ElectPreferred { topic_id: *topic_id, partition: *partition })
            .collect();
        self.commit(records)
    }

    /// Starts moving a partition to `replicas`.
    pub fn reassign(&self, topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> Result<(), ControllerError> {
        self.commit(vec![MetadataRecord::Reassign { topic_id, partition, replicas }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert_eq!(validate_topic_name(bad).unwrap_err().error, ResponseError::InvalidTopicException, "{bad}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }
}
