//! The share coordinator (KIP-932, Kafka's `ShareCoordinatorShard`): keeps
//! every share partition's state (state epoch, leader epoch, start offset,
//! delivery states and counts) in `__share_group_state`, in the partition
//! `abs(javaHashCode("group:topicId:partition")) % num.partitions`, and
//! answers the share-state RPCs for the partitions this node leads.
//!
//! Each change is written as one `ShareSnapshot` record holding the whole
//! merged state (Kafka writes `ShareUpdate` deltas between snapshots, every
//! `share.coordinator.snapshot.update.records.per.snapshot`; vltava behaves
//! as that setting at 0). The topic is compacted, so the latest snapshot
//! per share partition is all a load reads, and a delete is a tombstone.
//! A change is answered once its record is committed like an acks=all
//! write (fsynced here, in every ISR member), so no acknowledgement is lost
//! when the coordinator moves. A partition's states are loaded when this
//! node becomes its leader (COORDINATOR_LOAD_IN_PROGRESS meanwhile,
//! NOT_COORDINATOR on the other nodes), as the group coordinator does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use vltava_protocol::batch::{build_keyed_batch, records_of, records_section};
use vltava_protocol::ResponseError;

use super::persister::{merge, ShareKey, ShareState};
use super::records::{self, StateValue};
use crate::controller::TopicSpec;
use crate::group::coordinator::{internal_topic_replication, Ownership};
use crate::group::records::partition_for_group;
use crate::partition::Partition;
use crate::Broker;

pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// The share coordinator's settings, Kafka's `share.coordinator.*` keys.
#[derive(Debug, Clone)]
pub struct ShareCoordinatorConfig {
    /// `share.coordinator.state.topic.num.partitions`
    pub num_partitions: i32,
    /// `share.coordinator.state.topic.replication.factor` (capped like the
    /// other internal topics' when the topic is created).
    pub replication_factor: i16,
    /// `share.coordinator.state.topic.min.isr` (at most the replication factor).
    pub min_isr: i32,
    /// `share.coordinator.state.topic.segment.bytes`
    pub segment_bytes: i32,
    /// `share.coordinator.write.timeout.ms`: how long a write waits for the
    /// ISR before COORDINATOR_NOT_AVAILABLE (the persister retries).
    pub write_timeout_ms: u64,
    /// `share.coordinator.snapshot.update.records.per.snapshot`: accepted
    /// (0-500); every write is a snapshot here.
    pub snapshot_update_records_per_snapshot: i32,
}

impl Default for ShareCoordinatorConfig {
    fn default() -> Self {
        Self {
            num_partitions: 50,
            replication_factor: 3,
            min_isr: 2,
            segment_bytes: 100 * 1024 * 1024,
            write_timeout_ms: 5000,
            snapshot_update_records_per_snapshot: 500,
        }
    }
}

impl ShareCoordinatorConfig {
    pub fn is_key(key: &str) -> bool {
        matches!(
            key,
            "share.coordinator.state.topic.num.partitions"
                | "share.coordinator.state.topic.replication.factor"
                | "share.coordinator.state.topic.min.isr"
                | "share.coordinator.state.topic.segment.bytes"
                | "share.coordinator.write.timeout.ms"
                | "share.coordinator.snapshot.update.records.per.snapshot"
        )
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let n: i64 = value.trim().parse().map_err(|_| "not a number".to_string())?;
        let at_least_one = |n: i64, max: i64| {
            if (1..=max).contains(&n) {
                Ok(n)
            } else {
                Err(format!("must be between 1 and {max}"))
            }
        };
        match key {
            "share.coordinator.state.topic.num.partitions" => self.num_partitions = at_least_one(n, 1000)? as i32,
            "share.coordinator.state.topic.replication.factor" => {
                self.replication_factor = at_least_one(n, i16::MAX as i64)? as i16
            }
            "share.coordinator.state.topic.min.isr" => self.min_isr = at_least_one(n, i16::MAX as i64)? as i32,
            "share.coordinator.state.topic.segment.bytes" => {
                self.segment_bytes = at_least_one(n, i32::MAX as i64)? as i32
            }
            "share.coordinator.write.timeout.ms" => self.write_timeout_ms = at_least_one(n, i32::MAX as i64)? as u64,
            "share.coordinator.snapshot.update.records.per.snapshot" => {
                if !(0..=500).contains(&n) {
                    return Err("must be between 0 and 500".into());
                }
                self.snapshot_update_records_per_snapshot = n as i32
            }
            _ => return Err("not a share coordinator key".into()),
        }
        Ok(())
    }
}

/// Kafka's coordinator key of a share partition (`SharePartitionKey`):
/// `group:topicId:partition`, the topic id in Kafka's base64 form.
pub fn coordinator_key(key: &ShareKey) -> String {
    use base64::Engine;
    let topic = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.topic_id.as_bytes());
    format!("{}:{}:{}", key.group, topic, key.partition)
}

/// The share partition a coordinator key names (FindCoordinator key type
/// 2); `None` unless it is `group:topicId:partition` as Kafka validates it.
pub fn parse_coordinator_key(key: &str) -> Option<ShareKey> {
    use base64::Engine;
    let parts: Vec<&str> = key.split(':').collect();
    let [group, topic, partition] = parts[..] else { return None };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(topic).ok()?;
    let topic_id = uuid::Uuid::from_slice(&bytes).ok()?;
    let partition: i32 = partition.parse().ok().filter(|p| *p >= 0)?;
    (!group.is_empty()).then(|| ShareKey { group: group.to_string(), topic_id, partition })
}

/// A share partition's state as stored, with its snapshot bookkeeping.
#[derive(Clone, Debug)]
struct Stored {
    state: ShareState,
    snapshot_epoch: i32,
    create_timestamp_ms: i64,
}

/// A state read back: the state, or `None` when never initialized.
pub type ReadOutcome = Option<ShareState>;

/// What a share partition's state summary holds (ReadShareGroupStateSummary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSummary {
    pub state_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
}

/// A record appended, to wait on before answering.
struct Pending {
    partition: Arc<Partition>,
    end_offset: i64,
    epoch: i32,
}

pub struct ShareCoordinator {
    states: Mutex<HashMap<ShareKey, Stored>>,
    /// `__share_group_state` partitions this node coordinates.
    ownership: Ownership,
    config: ShareCoordinatorConfig,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl ShareCoordinator {
    pub fn new(config: ShareCoordinatorConfig) -> Self {
        Self { states: Mutex::new(HashMap::new()), ownership: Ownership::default(), config }
    }

    pub fn num_partitions(&self) -> i32 {
        self.config.num_partitions.max(1)
    }

    /// The `__share_group_state` partition holding `key`'s state.
    pub fn partition_of(&self, key: &ShareKey) -> i32 {
        partition_for_group(&coordinator_key(key), self.num_partitions())
    }

    /// Creates `__share_group_state` if it does not exist yet.
    pub fn ensure_state_topic(&self, broker: &Broker) -> Result<(), ResponseError> {
        if broker.controller.image().topic(SHARE_STATE_TOPIC).is_some() {
            return Ok(());
        }
        let replication_factor = internal_topic_replication(broker, self.config.replication_factor)?;
        let min_isr = self.config.min_isr.min(replication_factor as i32);
        let spec = TopicSpec {
            name: SHARE_STATE_TOPIC.to_string(),
            num_partitions: self.num_partitions(),
            replication_factor,
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("segment.bytes".into(), self.config.segment_bytes.to_string()),
                ("min.insync.replicas".into(), min_isr.to_string()),
            ],
        };
        match broker.create_topic(&spec) {
            Ok(_) => {
                tracing::info!(partitions = self.num_partitions(), "created {SHARE_STATE_TOPIC}");
                Ok(())
            }
            Err(e) if e.error == ResponseError::TopicAlreadyExists => Ok(()),
            Err(e) => {
                tracing::error!(error = %e.message, "could not create {SHARE_STATE_TOPIC}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// NOT_COORDINATOR unless this node leads `key`'s partition with its
    /// states loaded; COORDINATOR_LOAD_IN_PROGRESS while they load.
    pub fn check_coordinator(&self, key: &ShareKey) -> Result<(), ResponseError> {
        self.ownership.check(self.partition_of(key))
    }

    /// This node now leads (`leader`) or no longer leads partition `index`
    /// of `__share_group_state`: load its states, or drop them.
    pub fn on_partition_role(&self, broker: &Arc<Broker>, index: i32, leader: bool) {
        let parts = self.num_partitions();
        let of = move |k: &ShareKey| partition_for_group(&coordinator_key(k), parts);
        if !leader {
            if self.ownership.release(index) {
                self.states.lock().retain(|k, _| of(k) != index);
                tracing::info!(partition = index, "no longer share coordinator for {SHARE_STATE_TOPIC} partition");
            }
            return;
        }
        if !self.ownership.begin_load(index) {
            return;
        }
        let runtime = broker.runtime.clone();
        let broker = broker.clone();
        let load = move || {
            let coordinator = &broker.share_coordinator;
            coordinator.states.lock().retain(|k, _| of(k) != index);
            match coordinator.load_partition(&broker, index) {
                Ok(loaded) => {
                    tracing::info!(
                        partition = index,
                        states = loaded.len(),
                        "loaded share states from {SHARE_STATE_TOPIC}"
                    );
                    coordinator.states.lock().extend(loaded);
                }
                Err(e) => tracing::error!(partition = index, error = %e, "loading share states failed"),
            }
            coordinator.ownership.end_load(index, broker.partition(SHARE_STATE_TOPIC, index).is_ok());
        };
        runtime.spawn_blocking(load);
    }

    /// Reads one `__share_group_state` partition back: the latest snapshot
    /// of each share partition, with any later updates merged on, without
    /// the deleted ones.
    fn load_partition(&self, broker: &Broker, index: i32) -> anyhow::Result<HashMap<ShareKey, Stored>> {
        let mut loaded: HashMap<ShareKey, Stored> = HashMap::new();
        let image = broker.controller.image();
        let Some(topic) = image.topic(SHARE_STATE_TOPIC) else { return Ok(loaded) };
        let Some(partition) = broker.replicas.get(&topic.topic_id, index) else { return Ok(loaded) };
        partition.scan_batches(|header, batch| {
            if header.is_control() {
                return Ok(());
            }
            let section = records_section(batch)?;
            for record in records_of(batch, &section)? {
                let Some((record_type, key)) = record.key.and_then(records::decode_key) else { continue };
                let Some(value) = record.value else {
                    loaded.remove(&key);
                    continue;
                };
                match records::decode_value(record_type, value) {
                    Some(StateValue::Snapshot { snapshot_epoch, state, create_timestamp_ms }) => {
                        loaded.insert(key, Stored { state, snapshot_epoch, create_timestamp_ms });
                    }
                    Some(StateValue::Update { leader_epoch, start_offset, batches }) => {
                        if let Some(stored) = loaded.get_mut(&key) {
                            let change = ShareState {
                                state_epoch: stored.state.state_epoch,
                                leader_epoch: if leader_epoch < 0 { stored.state.leader_epoch } else { leader_epoch },
                                start_offset: if start_offset < 0 { stored.state.start_offset } else { start_offset },
                                batches,
                            };
                            merge(&mut stored.state, change);
                        }
                    }
                    None => tracing::warn!(
                        partition = index,
                        offset = record.offset,
                        "unreadable share state record skipped"
                    ),
                }
            }
            Ok(())
        })?;
        Ok(loaded)
    }

    /// Writes `stored` as `key`'s snapshot (or a tombstone for `None`).
    /// Call with the states locked, so that the log has changes in the
    /// order the states took them.
    fn append(&self, broker: &Broker, key: &ShareKey, stored: Option<&Stored>) -> Result<Pending, ResponseError> {
        let index = self.partition_of(key);
        let (partition, _) = broker.partition(SHARE_STATE_TOPIC, index).map_err(|e| match e {
            ResponseError::KafkaStorageError => e,
            _ => ResponseError::NotCoordinator,
        })?;
        let snapshot_key = records::key(records::SNAPSHOT, key);
        let now = now_ms();
        let mut batch = match stored {
            Some(s) => {
                let value = records::snapshot_value(s.snapshot_epoch, &s.state, s.create_timestamp_ms, now);
                build_keyed_batch(0, now, &[(Some(&snapshot_key[..]), Some(&value[..]))])
            }
            None => {
                let update_key = records::key(records::UPDATE, key);
                build_keyed_batch(0, now, &[(Some(&snapshot_key[..]), None), (Some(&update_key[..]), None)])
            }
        };
        let epoch = partition.leader_epoch();
        let info = partition.append(&mut batch, None).map_err(|e| match e {
            vltava_storage::StorageError::NotLeader => ResponseError::NotCoordinator,
            e => {
                tracing::error!(group = %key.group, error = %e, "append to {SHARE_STATE_TOPIC} failed");
                ResponseError::KafkaStorageError
            }
        })?;
        Ok(Pending { partition, end_offset: info.last_offset + 1, epoch })
    }

    async fn wait(&self, pending: Option<Pending>) -> Result<(), ResponseError> {
        let Some(p) = pending else { return Ok(()) };
        let timeout = Duration::from_millis(self.config.write_timeout_ms);
        p.partition.wait_committed(p.end_offset, p.epoch, true, timeout).await.map_err(|e| match e {
            ResponseError::NotLeaderOrFollower => ResponseError::NotCoordinator,
            ResponseError::KafkaStorageError => e,
            _ => ResponseError::CoordinatorNotAvailable,
        })
    }

    /// Whether an operation on `key` may go on here: INVALID_REQUEST for a
    /// negative partition, NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS
    /// (see [`Self::check_coordinator`]), and UNKNOWN_TOPIC_OR_PARTITION for
    /// a share partition the image lacks.
    fn admit(&self, broker: &Broker, key: &ShareKey) -> Result<(), ResponseError> {
        if key.partition < 0 {
            return Err(ResponseError::InvalidRequest);
        }
        self.check_coordinator(key)?;
        let image = broker.controller.image();
        match image.topic_by_id(&key.topic_id) {
            Some(t) if t.partition(key.partition).is_some() => Ok(()),
            _ => Err(ResponseError::UnknownTopicOrPartition),
        }
    }

    /// InitializeShareGroupState: the state at `start_offset` with
    /// `state_epoch`, no batches; FENCED_STATE_EPOCH below the stored
    /// state epoch. The recorded leader epoch is kept (it only grows).
    pub async fn initialize(
        &self,
        broker: &Broker,
        key: ShareKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<(), ResponseError> {
        self.admit(broker, &key)?;
        let pending = {
            let mut states = self.states.lock();
            let old = states.get(&key);
            if old.is_some_and(|o| o.state.state_epoch > state_epoch) {
                return Err(ResponseError::FencedStateEpoch);
            }
            let stored = Stored {
                state: ShareState {
                    state_epoch,
                    leader_epoch: old.map_or(0, |o| o.state.leader_epoch.max(0)),
                    start_offset,
                    batches: Vec::new(),
                },
                snapshot_epoch: old.map_or(0, |o| o.snapshot_epoch + 1),
                create_timestamp_ms: now_ms(),
            };
            let pending = self.append(broker, &key, Some(&stored))?;
            states.insert(key, stored);
            pending
        };
        self.wait(Some(pending)).await
    }

    /// ReadShareGroupState: `None` when never initialized. A read at a
    /// newer leader epoch records it (durably) before answering, which
    /// fences the writes of older leaders; an older one is
    /// FENCED_LEADER_EPOCH.
    pub async fn read(&self, broker: &Broker, key: ShareKey, leader_epoch: i32) -> Result<ReadOutcome, ResponseError> {
        self.admit(broker, &key)?;
        let (state, pending) = {
            let mut states = self.states.lock();
            let Some(stored) = states.get(&key) else { return Ok(None) };
            let recorded = stored.state.leader_epoch;
            if leader_epoch < recorded && leader_epoch != -1 {
                return Err(ResponseError::FencedLeaderEpoch);
            }
            if leader_epoch > recorded {
                let mut newer = stored.clone();
                newer.state.leader_epoch = leader_epoch;
                newer.snapshot_epoch += 1;
                let pending = self.append(broker, &key, Some(&newer))?;
                let state = newer.state.clone();
                states.insert(key, newer);
                (state, Some(pending))
            } else {
                (stored.state.clone(), None)
            }
        };
        self.wait(pending).await?;
        Ok(Some(state))
    }

    /// WriteShareGroupState: merges `change` (see
    /// [`super::persister::merge`]). FENCED_LEADER_EPOCH below the
    /// recorded leader epoch, FENCED_STATE_EPOCH when the state epoch is not
    /// the stored one (-1 in either: not given, not checked) or no state is
    /// stored (never initialized, or deleted since: the writer's share
    /// partition must be read again).
    pub async fn write(&self, broker: &Broker, key: ShareKey, mut change: ShareState) -> Result<(), ResponseError> {
        self.admit(broker, &key)?;
        let pending = {
            let mut states = self.states.lock();
            let Some(stored) = states.get(&key) else { return Err(ResponseError::FencedStateEpoch) };
            if change.leader_epoch == -1 {
                change.leader_epoch = stored.state.leader_epoch;
            } else if change.leader_epoch < stored.state.leader_epoch {
                return Err(ResponseError::FencedLeaderEpoch);
            }
            if change.state_epoch == -1 {
                change.state_epoch = stored.state.state_epoch;
            } else if change.state_epoch != stored.state.state_epoch {
                return Err(ResponseError::FencedStateEpoch);
            }
            if change.start_offset < 0 {
                change.start_offset = stored.state.start_offset;
            }
            let mut next = stored.clone();
            merge(&mut next.state, change);
            next.snapshot_epoch += 1;
            let pending = self.append(broker, &key, Some(&next))?;
            states.insert(key, next);
            pending
        };
        self.wait(Some(pending)).await
    }

    /// ReadShareGroupStateSummary: `None` when never initialized.
    pub fn summary(&self, broker: &Broker, key: &ShareKey) -> Result<Option<StateSummary>, ResponseError> {
        self.admit(broker, key)?;
        Ok(self.states.lock().get(key).map(|s| StateSummary {
            state_epoch: s.state.state_epoch,
            leader_epoch: s.state.leader_epoch,
            start_offset: s.state.start_offset,
        }))
    }

    /// DeleteShareGroupState: tombstones for the share partition's keys.
    pub async fn delete(&self, broker: &Broker, key: ShareKey) -> Result<(), ResponseError> {
        if key.partition < 0 {
            return Err(ResponseError::InvalidRequest);
        }
        self.check_coordinator(&key)?;
        let pending = {
            let mut states = self.states.lock();
            if !states.contains_key(&key) {
                return Ok(());
            }
            let pending = self.append(broker, &key, None)?;
            states.remove(&key);
            pending
        };
        self.wait(Some(pending)).await
    }

    /// Share partitions coordinated here (for metrics and tests).
    pub fn state_count(&self) -> usize {
        self.states.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_key_is_kafkas() {
        let key = ShareKey { group: "g1".into(), topic_id: uuid::Uuid::nil(), partition: 4 };
        assert_eq!(coordinator_key(&key), "g1:AAAAAAAAAAAAAAAAAAAAAA:4");
        assert_eq!(parse_coordinator_key("g1:AAAAAAAAAAAAAAAAAAAAAA:4"), Some(key));
        assert_eq!(parse_coordinator_key("g1:AAAA:4"), None);
        assert_eq!(parse_coordinator_key("g1:AAAAAAAAAAAAAAAAAAAAAA:-1"), None);
        assert_eq!(parse_coordinator_key("a:b:AAAAAAAAAAAAAAAAAAAAAA:1"), None);
    }

    #[test]
    fn config_keys_are_checked() {
        let mut c = ShareCoordinatorConfig::default();
        assert!(ShareCoordinatorConfig::is_key("share.coordinator.state.topic.num.partitions"));
        c.set("share.coordinator.state.topic.num.partitions", "7").unwrap();
        assert_eq!(c.num_partitions, 7);
        assert!(c.set("share.coordinator.state.topic.num.partitions", "0").is_err());
        assert!(c.set("share.coordinator.snapshot.update.records.per.snapshot", "501").is_err());
        c.set("share.coordinator.snapshot.update.records.per.snapshot", "0").unwrap();
    }
}
