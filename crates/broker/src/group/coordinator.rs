//! The group coordinator: owns every [`Group`], persists offsets and group
//! metadata to `__consumer_offsets` (the partition Kafka would pick for the
//! group), reloads them at start, and drives deadlines with a timer wheel
//! (`tokio_util::time::DelayQueue`) instead of polling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::time::DelayQueue;
use vltava_protocol::batch::{build_keyed_batch, records_of, records_section, KeyValue};
use vltava_protocol::ResponseError;

use super::consumer::CommitFence;
use super::records::{self, CommittedOffset, OffsetsKey};
use super::state::{Effects, Group, GroupConfig, GroupState, JoinRequest, JoinResult, SyncResult, Wake};
use crate::controller::TopicSpec;
use crate::partition::Partition;
use crate::Broker;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
type TimerMsg = (String, Wake, Instant);

pub struct GroupCoordinator {
    pub(super) groups: Mutex<HashMap<String, Group>>,
    /// `__consumer_offsets` partitions this node coordinates.
    ownership: Ownership,
    pub(super) config: GroupConfig,
    /// `offsets.topic.num.partitions`
    offsets_partitions: i32,
    pub(super) timer_tx: mpsc::UnboundedSender<TimerMsg>,
    /// The image's topics for KIP-848 subscriptions, per image version.
    pub(super) topics_cache: Mutex<Option<Arc<super::consumer::Topics>>>,
    timer_rx: Mutex<Option<mpsc::UnboundedReceiver<TimerMsg>>>,
}

/// An OffsetCommit's outcome: what to wait on for durability, and the
/// partitions refused with STALE_MEMBER_EPOCH.
pub struct Committed {
    pub durable: Option<(Arc<Partition>, i64)>,
    pub stale: Vec<(String, i32)>,
}

/// A group as DescribeGroups shows it.
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    /// member id, instance id, client id, client host, metadata, assignment
    pub members: Vec<(String, Option<String>, String, String, bytes::Bytes, bytes::Bytes)>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig, offsets_partitions: i32) -> Self {
        let (timer_tx, timer_rx) = mpsc::unbounded_channel();
        Self {
            groups: Mutex::new(HashMap::new()),
            ownership: Ownership::default(),
            config,
            offsets_partitions: offsets_partitions.max(1),
            timer_tx,
            topics_cache: Mutex::new(None),
            timer_rx: Mutex::new(Some(timer_rx)),
        }
    }

    pub(super) fn apply(&self, group_id: &str, effects: &Effects, group: &Group, broker: &Broker) {
        for (wake, at) in &effects.wakes {
            let _ = self.timer_tx.send((group_id.to_string(), wake.clone(), *at));
        }
        if effects.persist {
            let key = records::group_key(group_id);
            let value = records::group_value(&group.to_stored());
            if let Err(e) = self.write(broker, group_id, &[(Some(&key[..]), Some(&value[..]))]) {
                tracing::error!(group = group_id, error = ?e, "could not persist group metadata");
            }
        }
    }

    /// The `__consumer_offsets` partition holding `group_id`, created with
    /// the topic on first use.
    fn offsets_partition(&self, broker: &Broker, group_id: &str) -> Result<Arc<Partition>, ResponseError> {
        let index = records::partition_for_group(group_id, self.offsets_partitions);
        match broker.partition(OFFSETS_TOPIC, index) {
            Ok((p, _)) => Ok(p),
            Err(_) => {
                self.ensure_offsets_topic(broker)?;
                broker
                    .partition(OFFSETS_TOPIC, index)
                    .map(|(p, _)| p)
                    .map_err(|_| ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub fn ensure_offsets_topic(&self, broker: &Broker) -> Result<(), ResponseError> {
        if broker.controller.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let spec = TopicSpec {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: self.offsets_partitions,
            replication_factor: internal_topic_replication(broker, broker.config.offsets_topic_replication_factor)?,
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("segment.bytes".into(), broker.config.offsets_topic_segment_bytes.to_string()),
            ],
        };
        match broker.create_topic(&spec) {
            Ok(_) => {
                tracing::info!(partitions = self.offsets_partitions, "created {OFFSETS_TOPIC}");
                Ok(())
            }
            Err(e) if e.error == ResponseError::TopicAlreadyExists => Ok(()),
            Err(e) => {
                tracing::error!(error = %e.message, "could not create {OFFSETS_TOPIC}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// Appends records to the group's partition; returns what to wait on
    /// for durability.
    pub(super) fn write(
        &self,
        broker: &Broker,
        group_id: &str,
        recs: &[KeyValue<'_>],
    ) -> Result<(Arc<Partition>, i64), ResponseError> {
        let partition = self.offsets_partition(broker, group_id)?;
        let mut batch = build_keyed_batch(0, now_ms(), recs);
        let info = partition.append(&mut batch, None).map_err(|e| {
            tracing::error!(group = group_id, error = %e, "append to {OFFSETS_TOPIC} failed");
            ResponseError::KafkaStorageError
        })?;
        Ok((partition, info.last_offset + 1))
    }

    /// This node now leads (`leader`) or no longer leads partition `index`
    /// of `__consumer_offsets`: load its groups, or drop them.
    pub fn on_partition_role(&self, broker: &Arc<Broker>, index: i32, leader: bool) {
        let parts = self.offsets_partitions;
        if !leader {
            if self.ownership.release(index) {
                self.groups.lock().retain(|id, _| records::partition_for_group(id, parts) != index);
                tracing::info!(partition = index, "no longer coordinator for {OFFSETS_TOPIC} partition");
            }
            return;
        }
        if !self.ownership.begin_load(index) {
            return;
        }
        let small = broker.partition(OFFSETS_TOPIC, index).is_ok_and(|(p, _)| p.size_bytes() < 4 << 20);
        let load = {
            let broker = broker.clone();
            move || {
                let groups = &broker.groups;
                groups.groups.lock().retain(|id, _| records::partition_for_group(id, parts) != index);
                if let Err(e) = groups.load_partition(&broker, index) {
                    tracing::error!(partition = index, error = %e, "loading groups failed");
                }
                groups.ownership.end_load(index, broker.partition(OFFSETS_TOPIC, index).is_ok());
            }
        };
        if small {
            load();
        } else {
            broker.runtime.spawn_blocking(load);
        }
    }

    /// Whether this node coordinates `group_id` now: NOT_COORDINATOR when
    /// another broker leads its partition, COORDINATOR_LOAD_IN_PROGRESS
    /// while its state is read back.
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), ResponseError> {
        self.ownership.check(records::partition_for_group(group_id, self.offsets_partitions))
    }

    /// Rebuilds the groups and offsets of one `__consumer_offsets`
    /// partition (when this node becomes its leader).
    fn load_partition(&self, broker: &Broker, index: i32) -> anyhow::Result<()> {
        let image = broker.controller.image();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else { return Ok(()) };
        let now = Instant::now();
        let mut stored_groups = HashMap::new();
        // read without the coordinator's lock (other partitions' groups go
        // on meanwhile); this partition's groups were dropped when its
        // loading began, so the loaded ones are added as they are
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut offsets_loaded = 0usize;
        let mut consumer_loader = super::consumer_records::Loader::default();
        if let Some(partition) = broker.replicas.get(&topic.topic_id, index) {
            partition.scan_batches(|header, batch| {
                let section = records_section(batch)?;
                if header.is_control() {
                    // a transaction marker settles that producer's pending offsets
                    let commit = records_of(batch, &section)?
                        .first()
                        .and_then(|r| r.key)
                        .is_some_and(|k| k.len() >= 4 && i16::from_be_bytes([k[2], k[3]]) == 1);
                    for g in groups.values_mut() {
                        g.complete_txn(header.producer_id(), commit);
                    }
                    return Ok(());
                }
                for record in records_of(batch, &section)? {
                    if record.key.is_some_and(|k| consumer_loader.accept(k, record.value)) {
                        continue;
                    }
                    if record.key.is_some_and(|k| broker.share_groups.load_record(k, record.value)) {
                        continue;
                    }
                    let Some(key) = record.key.and_then(records::decode_key) else { continue };
                    match key {
                        OffsetsKey::Offset { group, topic, partition } => {
                            let g = groups.entry(group.clone()).or_insert_with(|| Group::new(&group));
                            match record.value.and_then(records::decode_offset_value) {
                                Some(v) if header.is_transactional() => {
                                    g.pending_txn_offsets
                                        .entry(header.producer_id())
                                        .or_default()
                                        .push((topic, partition, v));
                                }
                                Some(v) => {
                                    g.offsets.insert((topic, partition), v);
                                    offsets_loaded += 1;
                                }
                                None => {
                                    g.offsets.remove(&(topic, partition));
                                }
                            }
                        }
                        OffsetsKey::Group { group } => {
                            stored_groups.insert(group, record.value.and_then(records::decode_group_value));
                        }
                    }
                }
                Ok(())
            })?;
        }
        for (id, stored) in stored_groups {
            match stored {
                Some(stored) => {
                    let g = groups.entry(id.clone()).or_insert_with(|| Group::new(&id));
                    let effects = g.restore(stored, now);
                    for (wake, at) in effects.wakes {
                        let _ = self.timer_tx.send((id.clone(), wake, at));
                    }
                }
                None => {
                    // tombstone: the group was deleted (its offsets too, by their own tombstones)
                    if groups.get(&id).is_some_and(|g| g.offsets.is_empty()) {
                        groups.remove(&id);
                    }
                }
            }
        }
        self.restore_consumer_groups(broker, consumer_loader, &mut groups, now);
        tracing::info!(
            partition = index,
            groups = groups.len(),
            offsets = offsets_loaded,
            "loaded consumer groups from {OFFSETS_TOPIC}"
        );
        self.groups.lock().extend(groups);
        Ok(())
    }

    /// Runs the deadline timer until shutdown. Call once.
    pub async fn run_timers(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = broker.groups.timer_rx.lock().take() else { return };
        let mut queue: DelayQueue<(String, Wake)> = DelayQueue::new();
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some((group, wake, at)) => { queue.insert_at((group, wake), at.into()); }
                    None => return,
                },
                Some(expired) = std::future::poll_fn(|cx| queue.poll_expired(cx)), if !queue.is_empty() => {
                    let (group, wake) = expired.into_inner();
                    broker.groups.on_wake(&broker, &group, &wake);
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    fn on_wake(&self, broker: &Broker, group_id: &str, wake: &Wake) {
        if let Wake::ConsumerSession(member) = wake {
            return self.on_consumer_session(broker, group_id, member);
        }
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else { return };
        let effects = group.on_wake(wake, Instant::now(), &self.config);
        self.apply(group_id, &effects, group, broker);
    }

    pub fn join(&self, broker: &Broker, group_id: &str, req: JoinRequest) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.check_coordinator(group_id) {
            let _ = tx.send(JoinResult::error(e, &req.member_id));
            return rx;
        }
        let mut groups = self.groups.lock();
        if let Err(e) = room_for(&groups, group_id) {
            let _ = tx.send(JoinResult::error(e, &req.member_id));
            return rx;
        }
        let group = groups.entry(group_id.to_string()).or_insert_with(|| Group::new(group_id));
        if let Some(consumer) = &group.consumer {
            if !consumer.members.is_empty() {
                let _ = tx.send(self.classic_join(broker, group, req));
                return rx;
            }
            // an empty consumer group becomes a classic group (its offsets stay)
            let tombstones = consumer.tombstones();
            let recs: Vec<KeyValue<'_>> = tombstones.iter().map(|(k, _)| (Some(&k[..]), None)).collect();
            if let Err(e) = self.write(broker, group_id, &recs) {
                let _ = tx.send(JoinResult::error(e, &req.member_id));
                return rx;
            }
            group.consumer = None;
        }
        let effects = group.join(req, tx, Instant::now(), &self.config);
        self.apply(group_id, &effects, group, broker);
        rx
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        broker: &Broker,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.check_coordinator(group_id) {
            let _ = tx.send(SyncResult::error(e));
            return rx;
        }
        let mut groups = self.groups.lock();
        match groups.get_mut(group_id) {
            Some(group) if group.consumer.is_some() => {
                let _ =
                    tx.send(self.classic_sync(broker, group, member_id, generation_id, protocol_type, protocol_name));
            }
            Some(group) => {
                let effects = group.sync(
                    member_id,
                    instance_id,
                    generation_id,
                    protocol_type,
                    protocol_name,
                    assignments,
                    tx,
                    Instant::now(),
                );
                self.apply(group_id, &effects, group, broker);
            }
            None => {
                let _ = tx.send(SyncResult {
                    error: Some(ResponseError::UnknownMemberId),
                    protocol_type: None,
                    protocol_name: None,
                    assignment: Default::default(),
                });
            }
        }
        rx
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Option<ResponseError> {
        if let Err(e) = self.check_coordinator(group_id) {
            return Some(e);
        }
        let mut groups = self.groups.lock();
        match groups.get_mut(group_id) {
            Some(group) if group.consumer.is_some() => self.classic_heartbeat(group, member_id, generation_id),
            Some(group) => group.heartbeat(member_id, instance_id, generation_id, Instant::now()),
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    pub fn leave(
        &self,
        broker: &Broker,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.check_coordinator(group_id)?;
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(ResponseError::UnknownMemberId)?;
        if group.consumer.is_some() {
            return Ok(self.classic_leave(broker, group, members));
        }
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let (error, effects) = group.leave(member_id, instance_id.as_deref(), Instant::now(), &self.config);
            self.apply(group_id, &effects, group, broker);
            results.push(error);
        }
        Ok(results)
    }

    /// Validates and writes committed offsets; returns what to wait on for
    /// durability and the partitions refused with STALE_MEMBER_EPOCH (a
    /// consumer group member's older epoch, KIP-1251). `generation_id` is
    /// the member epoch for consumer groups.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &self,
        broker: &Broker,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        mut offsets: Vec<(String, i32, CommittedOffset)>,
        version: i16,
    ) -> Result<Committed, ResponseError> {
        self.check_coordinator(group_id)?;
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) {
            if generation_id >= 0 || !member_id.is_empty() {
                return Err(ResponseError::IllegalGeneration);
            }
            room_for(&groups, group_id)?;
            groups.insert(group_id.to_string(), Group::new(group_id));
        }
        let group = groups.get_mut(group_id).expect("present");
        let fence = match &group.consumer {
            Some(c) => c.check_commit(member_id, generation_id, false, version)?,
            None => {
                group.check_commit(member_id, instance_id, generation_id, Instant::now())?;
                CommitFence::Any
            }
        };
        let mut stale = Vec::new();
        if fence != CommitFence::Any {
            let image = broker.controller.image();
            offsets.retain(|(topic, partition, _)| {
                let allowed = fence.allows(image.topic(topic).map(|t| t.topic_id), *partition);
                if !allowed {
                    stale.push((topic.clone(), *partition));
                }
                allowed
            });
        }
        if offsets.is_empty() {
            return Ok(Committed { durable: None, stale });
        }
        let encoded: Vec<(Vec<u8>, Vec<u8>)> =
            offsets.iter().map(|(t, p, c)| (records::offset_key(group_id, t, *p), records::offset_value(c))).collect();
        let recs: Vec<KeyValue<'_>> = encoded.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect();
        let durable = self.write(broker, group_id, &recs)?;
        for (topic, partition, committed) in offsets {
            group.offsets.insert((topic, partition), committed);
        }
        Ok(Committed { durable: Some(durable), stale })
    }

    /// TxnOffsetCommit: offsets written as part of a transaction; they take
    /// effect when its COMMIT marker is written.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit(
        &self,
        broker: &Broker,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<Option<(Arc<Partition>, i64)>, ResponseError> {
        self.check_coordinator(group_id)?;
        let mut groups = self.groups.lock();
        room_for(&groups, group_id)?;
        let group = groups.entry(group_id.to_string()).or_insert_with(|| Group::new(group_id));
        if generation_id >= 0 || !member_id.is_empty() {
            match &group.consumer {
                Some(c) => {
                    c.check_commit(member_id, generation_id, true, 0)?;
                }
                None => group.check_commit(member_id, instance_id, generation_id, Instant::now())?,
            }
        }
        if offsets.is_empty() {
            return Ok(None);
        }
        let encoded: Vec<(Vec<u8>, Vec<u8>)> =
            offsets.iter().map(|(t, p, c)| (records::offset_key(group_id, t, *p), records::offset_value(c))).collect();
        let recs: Vec<KeyValue<'_>> = encoded.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect();
        let partition = self.offsets_partition(broker, group_id)?;
        let mut batch = build_keyed_batch(0, now_ms(), &recs);
        vltava_protocol::batch::make_transactional(&mut batch, producer_id, producer_epoch);
        let info = partition.append(&mut batch, None).map_err(|e| match e {
            vltava_storage::StorageError::Producer(p) => {
                ResponseError::try_from_code(p.error_code()).unwrap_or(ResponseError::InvalidProducerEpoch)
            }
            _ => ResponseError::KafkaStorageError,
        })?;
        group.pending_txn_offsets.entry(producer_id).or_default().extend(offsets);
        Ok(Some((partition, info.last_offset + 1)))
    }

    /// A transaction marker in `__consumer_offsets` partition `index`:
    /// settles the producer's pending offsets of the groups stored there.
    pub fn complete_txn_in_partition(&self, index: i32, producer_id: i64, commit: bool) {
        let parts = self.offsets_partitions;
        for (id, g) in self.groups.lock().iter_mut() {
            if records::partition_for_group(id, parts) == index {
                g.complete_txn(producer_id, commit);
            }
        }
    }

    /// Committed offsets of a group: `None` for "all partitions".
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, Option<CommittedOffset>)>, ResponseError> {
        self.check_coordinator(group_id)?;
        let groups = self.groups.lock();
        let group = groups.get(group_id);
        Ok(match wanted {
            Some(list) => list
                .into_iter()
                .map(|(t, p)| {
                    let c = group.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                    (t, p, c)
                })
                .collect(),
            None => {
                let mut all: Vec<_> = group
                    .map(|g| g.offsets.iter().map(|((t, p), c)| (t.clone(), *p, Some(c.clone()))).collect())
                    .unwrap_or_default();
                all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                all
            }
        })
    }

    /// Groups for ListGroups: id, protocol type, state name, group type
    /// (`classic` or `consumer`).
    pub fn list_typed(&self) -> Vec<(String, String, &'static str, &'static str)> {
        let groups = self.groups.lock();
        let mut out: Vec<_> = groups
            .values()
            .map(|g| match &g.consumer {
                Some(c) => (g.id.clone(), "consumer".to_string(), c.state_name(), "consumer"),
                None => (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state.name(), "classic"),
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `classic` or `consumer`; `None` for an unknown group.
    pub fn group_type(&self, group_id: &str) -> Option<&'static str> {
        self.groups.lock().get(group_id).map(|g| if g.consumer.is_some() { "consumer" } else { "classic" })
    }

    /// OffsetFetch v9 from a consumer group member: its id and epoch must
    /// be current (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).
    pub fn check_fetch_member(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        let groups = self.groups.lock();
        match groups.get(group_id).and_then(|g| g.consumer.as_ref()) {
            Some(c) => c.check_fetch(member_id, member_epoch),
            None => Ok(()),
        }
    }

    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = self.groups.lock();
        let mut out: Vec<_> =
            groups.values().map(|g| (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock();
        let g = groups.get(group_id)?;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let stable = matches!(g.state, GroupState::Stable);
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable || g.state == GroupState::CompletingRebalance {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| {
                    let assignment = if stable { m.assignment.clone() } else { Default::default() };
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        m.metadata(&protocol),
                        assignment,
                    )
                })
                .collect(),
        })
    }

    /// Deletes an empty group with its offsets (tombstones for every key).
    pub fn delete_group(&self, broker: &Broker, group_id: &str) -> Result<(), ResponseError> {
        self.check_coordinator(group_id)?;
        let mut groups = self.groups.lock();
        let group = groups.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        if !group.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let mut keys: Vec<Vec<u8>> = group.offsets.keys().map(|(t, p)| records::offset_key(group_id, t, *p)).collect();
        keys.push(records::group_key(group_id));
        if let Some(c) = &group.consumer {
            keys.extend(c.tombstones().into_iter().map(|(k, _)| k));
        }
        let recs: Vec<KeyValue<'_>> = keys.iter().map(|k| (Some(&k[..]), None)).collect();
        self.write(broker, group_id, &recs)?;
        groups.remove(group_id);
        Ok(())
    }

    /// OffsetDelete: per partition, an error or success. Partitions of
    /// topics an active consumer group subscribes to are refused.
    pub fn delete_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.check_coordinator(group_id)?;
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        let subscribed = match group.consumer.as_mut() {
            Some(c) if !c.members.is_empty() => {
                c.subscribed_topic_names(&super::consumer_coordinator::topics(broker)).into_iter().collect()
            }
            Some(_) => Vec::new(),
            None if group.members.is_empty() => Vec::new(),
            None => group.subscribed_topics(),
        };
        let mut results = Vec::with_capacity(partitions.len());
        let mut doomed = Vec::new();
        for (topic, partition) in partitions {
            if subscribed.contains(topic) {
                results.push(Some(ResponseError::GroupSubscribedToTopic));
            } else {
                if group.offsets.contains_key(&(topic.clone(), *partition)) {
                    doomed.push((topic.clone(), *partition));
                }
                results.push(None);
            }
        }
        if !doomed.is_empty() {
            let keys: Vec<Vec<u8>> = doomed.iter().map(|(t, p)| records::offset_key(group_id, t, *p)).collect();
            let recs: Vec<KeyValue<'_>> = keys.iter().map(|k| (Some(&k[..]), None)).collect();
            self.write(broker, group_id, &recs)?;
            for key in doomed {
                group.offsets.remove(&key);
            }
        }
        Ok(results)
    }
}

/// Which partitions of an internal topic (`__consumer_offsets`,
/// `__transaction_state`) this node coordinates: those it leads, once
/// their state is loaded.
#[derive(Default)]
pub struct Ownership {
    owned: Mutex<std::collections::HashSet<i32>>,
    loading: Mutex<std::collections::HashSet<i32>>,
}

impl Ownership {
    /// NOT_COORDINATOR unless owned; COORDINATOR_LOAD_IN_PROGRESS meanwhile.
    pub fn check(&self, index: i32) -> Result<(), ResponseError> {
        if self.loading.lock().contains(&index) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        if !self.owned.lock().contains(&index) {
            return Err(ResponseError::NotCoordinator);
        }
        Ok(())
    }

    /// Whether the caller should load `index` now (not owned nor loading).
    pub fn begin_load(&self, index: i32) -> bool {
        !self.owned.lock().contains(&index) && self.loading.lock().insert(index)
    }

    /// Loading ended; owned if this node still leads the partition.
    pub fn end_load(&self, index: i32, still_leader: bool) {
        if still_leader {
            self.owned.lock().insert(index);
        }
        self.loading.lock().remove(&index);
    }

    /// Leadership lost: whether it was owned (its state must go).
    pub fn release(&self, index: i32) -> bool {
        self.owned.lock().remove(&index)
    }
}

/// Replication factor of an internal topic: the configured one, capped by
/// the number of controller voters (a single node uses 1); while fewer
/// brokers are alive the coordinator is not available, as in Kafka.
/// A new group only while this broker coordinates fewer than
/// [`crate::limits::GROUPS_MAX`] (COORDINATOR_NOT_AVAILABLE beyond: clients
/// retry, as against a coordinator out of resources).
pub(super) fn room_for(groups: &HashMap<String, Group>, group_id: &str) -> Result<(), ResponseError> {
    if groups.len() >= crate::limits::GROUPS_MAX && !groups.contains_key(group_id) {
        tracing::warn!(group = group_id, max = crate::limits::GROUPS_MAX, "refusing a new group: too many groups");
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    Ok(())
}

pub fn internal_topic_replication(broker: &Broker, configured: i16) -> Result<i16, ResponseError> {
    let rf = (configured as usize).min(broker.config.voters().len()).max(1);
    if broker.controller.broker_count() < rf {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    Ok(rf as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_groups_stop_at_the_bound_known_ones_go_on() {
        let mut groups: HashMap<String, Group> =
            (0..crate::limits::GROUPS_MAX).map(|i| (format!("g{i}"), Group::new(&format!("g{i}")))).collect();
        assert_eq!(room_for(&groups, "g7"), Ok(()));
        assert_eq!(room_for(&groups, "new"), Err(ResponseError::CoordinatorNotAvailable));
        groups.remove("g7");
        assert_eq!(room_for(&groups, "new"), Ok(()));
    }
}
