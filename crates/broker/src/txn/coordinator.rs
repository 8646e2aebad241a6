//! The transaction coordinator: producer ids and epochs for transactional
//! ids, the partitions and groups in each open transaction, and the
//! two-phase end (Prepare*, markers to every partition, Complete*). State
//! is written to `__transaction_state` (Kafka's formats, the partition
//! Kafka would pick) and reloaded at start. Transactions past their timeout
//! are aborted, with the producer's epoch bumped so it is fenced.
//!
//! Ending a transaction has two halves. [`TransactionCoordinator::prepare`]
//! runs under the coordinator's lock and does only local work: the Prepare*
//! record and the markers of the partitions led here. [`Completion::run`]
//! runs without the lock, on the async runtime: it waits for those writes,
//! sends WriteTxnMarkers to the leaders of the other partitions (retrying
//! while leaders move, as long as this node coordinates the transaction),
//! then writes Complete*. Meanwhile the transactional id answers
//! CONCURRENT_TRANSACTIONS, as in Kafka.
//!
//! Also hands out producer ids to idempotent producers.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use parking_lot::Mutex;
use vltava_protocol::batch::{build_keyed_batch, records_of, records_section};
use vltava_protocol::ResponseError;

use super::records;
use super::state::{epoch_exhausted, EndAction, TxnMetadata, TxnState};
use crate::controller::TopicSpec;
use crate::group::coordinator::Ownership;
use crate::group::records::partition_for_group;
use crate::group::OFFSETS_TOPIC;
use crate::partition::Partition;
use crate::Broker;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
use crate::limits::{
    INTER_BROKER_REQUEST_TIMEOUT as MARKER_REQUEST_TIMEOUT, INTER_BROKER_RETRY as MARKER_RETRY, PRODUCER_ID_BLOCK,
};

/// Writes to wait on (fsync) before answering.
pub type DurableWaits = Vec<(Arc<Partition>, i64)>;

/// The second half of ending a transaction (see the module documentation).
pub struct Completion {
    tid: String,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    /// Partitions led elsewhere: their markers go through WriteTxnMarkers.
    remote: Vec<(String, i32)>,
    /// The Prepare* record and the local markers.
    waits: DurableWaits,
    /// The producer id and epoch the client continues with (EndTxn v5).
    pub reply: (i64, i16),
}

impl Completion {
    /// Waits until the Prepare* record and the local markers are durable:
    /// from then on the decision stands.
    pub async fn wait_prepared(&mut self) -> Result<(), ResponseError> {
        for (partition, offset) in std::mem::take(&mut self.waits) {
            partition.wait_coordinator_write(offset).await?;
        }
        Ok(())
    }

    /// Waits for the local writes, writes the remote markers, then
    /// Complete*. Errors are what the prepared writes failed with (the
    /// end cannot finish here; the next coordinator will).
    pub async fn run(mut self, broker: Arc<Broker>) -> Result<(), ResponseError> {
        self.wait_prepared().await?;
        let mut remote = self.remote.clone();
        while !remote.is_empty() {
            remote = send_markers(&broker, self.producer_id, self.producer_epoch, self.commit, remote).await;
            if remote.is_empty() {
                break;
            }
            if broker.txns.check_coordinator(&self.tid).is_err() || *broker.stopping.borrow() {
                tracing::warn!(transactional_id = %self.tid, "no longer coordinating this transaction; its markers are left to the next coordinator");
                return Err(ResponseError::NotCoordinator);
            }
            tokio::time::sleep(MARKER_RETRY).await;
        }
        let waits = broker.txns.finish_completion(&broker, &self)?;
        for (partition, offset) in waits {
            partition.wait_coordinator_write(offset).await?;
        }
        Ok(())
    }
}

pub struct TransactionCoordinator {
    txns: Mutex<HashMap<String, TxnMetadata>>,
    /// `__transaction_state` partitions this node coordinates.
    ownership: Ownership,
    producer_ids: Mutex<Range<i64>>,
    /// `transaction.state.log.num.partitions`
    partitions: i32,
    /// `transaction.max.timeout.ms`
    max_timeout_ms: i32,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl TransactionCoordinator {
    pub fn new(partitions: i32, max_timeout_ms: i32) -> Self {
        Self {
            txns: Mutex::new(HashMap::new()),
            ownership: Ownership::default(),
            producer_ids: Mutex::new(0..0),
            partitions: partitions.max(1),
            max_timeout_ms,
        }
    }

    /// A fresh producer id (from this broker's block; a new block comes from
    /// the controller's metadata log when it runs out).
    pub fn next_producer_id(&self, broker: &Broker) -> Result<i64, ResponseError> {
        let mut ids = self.producer_ids.lock();
        if ids.is_empty() {
            *ids = broker.controller.allocate_producer_ids(PRODUCER_ID_BLOCK).map_err(|e| e.error)?;
        }
        let id = ids.start;
        ids.start += 1;
        Ok(id)
    }

    /// Takes a new block of producer ids now if the current one is used
    /// up, so that the coordinator's lock is (almost) never held while the
    /// metadata quorum allocates one.
    fn reserve_producer_ids(&self, broker: &Broker) -> Result<(), ResponseError> {
        let mut ids = self.producer_ids.lock();
        if ids.is_empty() {
            *ids = broker.controller.allocate_producer_ids(PRODUCER_ID_BLOCK).map_err(|e| e.error)?;
        }
        Ok(())
    }

    /// Creates `__transaction_state` if needed.
    pub fn ensure_state_topic(&self, broker: &Broker) -> Result<(), ResponseError> {
        if broker.controller.image().topic(TRANSACTION_STATE_TOPIC).is_some() {
            return Ok(());
        }
        let replication_factor = crate::group::coordinator::internal_topic_replication(
            broker,
            broker.config.transaction_state_replication_factor,
        )?;
        // transaction.state.log.min.isr, at most the replication factor (which
        // is itself capped to the controllers there are)
        let min_isr = broker.config.transaction_state_min_isr.min(replication_factor as i32);
        let spec = TopicSpec {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: self.partitions,
            replication_factor,
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("segment.bytes".into(), broker.config.transaction_state_segment_bytes.to_string()),
                ("min.insync.replicas".into(), min_isr.to_string()),
            ],
        };
        match broker.create_topic(&spec) {
            Ok(_) | Err(crate::controller::ControllerError { error: ResponseError::TopicAlreadyExists, .. }) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e.message, "could not create {TRANSACTION_STATE_TOPIC}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    fn persist(&self, broker: &Broker, m: &TxnMetadata, waits: &mut DurableWaits) -> Result<(), ResponseError> {
        self.ensure_state_topic(broker)?;
        let index = partition_for_group(&m.transactional_id, self.partitions);
        let (partition, _) =
            broker.partition(TRANSACTION_STATE_TOPIC, index).map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        let (k, v) = (records::key(&m.transactional_id), records::value(m));
        let mut batch = build_keyed_batch(0, now_ms(), &[(Some(&k[..]), Some(&v[..]))]);
        let info = partition.append(&mut batch, None).map_err(|e| {
            tracing::error!(error = %e, "append to {TRANSACTION_STATE_TOPIC} failed");
            ResponseError::KafkaStorageError
        })?;
        waits.push((partition, info.last_offset + 1));
        Ok(())
    }

    /// The first half of ending `m`'s transaction (under the lock): the
    /// Prepare* record and the markers of the partitions led here. The
    /// returned [`Completion`] does the rest. With `bump` (transactions
    /// v2) the epoch goes up by one first, so the markers fence whatever
    /// the producer sent at the old one; an epoch that runs out moves the
    /// producer to a new id when the end completes.
    fn prepare(
        &self,
        broker: &Broker,
        m: &mut TxnMetadata,
        commit: bool,
        bump: bool,
    ) -> Result<Completion, ResponseError> {
        if bump {
            if epoch_exhausted(m.producer_epoch) {
                m.next_producer_id = self.next_producer_id(broker)?;
            }
            m.producer_epoch = m.producer_epoch.saturating_add(1);
            m.client_version = 2;
        }
        let reply = if m.next_producer_id >= 0 { (m.next_producer_id, 0) } else { (m.producer_id, m.producer_epoch) };
        let mut waits = Vec::new();
        m.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        m.last_update_ms = now_ms();
        self.persist(broker, m, &mut waits)?;
        let mut remote = Vec::new();
        for (topic, index) in &m.partitions {
            match broker.partition(topic, *index) {
                Ok((partition, _)) => {
                    let end = write_marker(broker, &partition, m.producer_id, m.producer_epoch, commit)?;
                    waits.push((partition, end));
                }
                Err(ResponseError::UnknownTopicOrPartition) => {
                    tracing::warn!(topic, partition = index, "partition of a transaction is gone; no marker written")
                }
                Err(_) => remote.push((topic.clone(), *index)),
            }
        }
        Ok(Completion {
            tid: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit,
            remote,
            waits,
            reply,
        })
    }

    /// The end of [`Completion::run`] (under the lock): Complete*, unless
    /// the transactional id moved on meanwhile.
    fn finish_completion(&self, broker: &Broker, c: &Completion) -> Result<DurableWaits, ResponseError> {
        let mut waits = Vec::new();
        let mut txns = self.txns.lock();
        let Some(m) = txns.get_mut(&c.tid) else { return Ok(waits) };
        let prepared = if c.commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        if m.state != prepared || m.producer_id != c.producer_id || m.producer_epoch != c.producer_epoch {
            return Ok(waits);
        }
        m.state = if c.commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        if m.next_producer_id >= 0 {
            // the epoch ran out in this end: the producer continues on a new id
            m.previous_producer_id = m.producer_id;
            (m.producer_id, m.producer_epoch, m.next_producer_id) = (m.next_producer_id, 0, -1);
        }
        m.partitions.clear();
        m.groups.clear();
        m.last_update_ms = now_ms();
        let snapshot = m.clone();
        drop(txns);
        self.persist(broker, &snapshot, &mut waits)?;
        tracing::info!(transactional_id = %c.tid, producer_id = c.producer_id, epoch = c.producer_epoch, commit = c.commit, "transaction ended");
        Ok(waits)
    }

    fn bump_epoch(&self, broker: &Broker, m: &mut TxnMetadata) -> Result<(), ResponseError> {
        if m.producer_epoch >= i16::MAX - 1 {
            m.producer_id = self.next_producer_id(broker)?;
            m.producer_epoch = 0;
        } else {
            m.producer_epoch += 1;
        }
        Ok(())
    }

    /// InitProducerId: a new id (idempotent producers), or the transactional
    /// id's producer with its epoch bumped, aborting any open transaction so
    /// that an older instance is fenced.
    pub fn init_producer_id(
        &self,
        broker: &Arc<Broker>,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16, DurableWaits), ResponseError> {
        let Some(tid) = transactional_id.filter(|t| !t.is_empty()) else {
            if producer_id >= 0 && (0..i16::MAX - 1).contains(&producer_epoch) {
                return Ok((producer_id, producer_epoch + 1, Vec::new()));
            }
            return Ok((self.next_producer_id(broker)?, 0, Vec::new()));
        };
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.ensure_state_topic(broker)?;
        self.check_coordinator(tid)?;
        self.reserve_producer_ids(broker)?;
        let mut waits = Vec::new();
        let mut txns = self.txns.lock();
        let m = match txns.get_mut(tid) {
            Some(m) => m,
            None => {
                let pid = self.next_producer_id(broker)?;
                txns.insert(tid.to_string(), TxnMetadata::new(tid, pid, timeout_ms));
                txns.get_mut(tid).expect("inserted")
            }
        };
        if producer_id >= 0
            && (producer_id != m.producer_id || producer_epoch != m.producer_epoch)
            && m.producer_epoch >= 0
        {
            // KIP-360 recovery by an instance that is no longer current
            return Err(ResponseError::ProducerFenced);
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                // fence the old instance: abort with a bumped epoch; the
                // client retries until the abort has completed, as in Kafka
                self.bump_epoch(broker, m)?;
                let completion = self.prepare(broker, m, false, false)?;
                drop(txns);
                self.spawn(broker, completion);
                return Err(ResponseError::ConcurrentTransactions);
            }
            _ => {}
        }
        self.bump_epoch(broker, m)?;
        m.timeout_ms = timeout_ms;
        if m.state == TxnState::Dead {
            m.state = TxnState::Empty;
        }
        m.last_update_ms = now_ms();
        let (pid, epoch) = (m.producer_id, m.producer_epoch);
        let snapshot = m.clone();
        self.persist(broker, &snapshot, &mut waits)?;
        tracing::info!(transactional_id = tid, producer_id = pid, epoch, "initialized transactional producer");
        Ok((pid, epoch, waits))
    }

    /// The transactional id's metadata, if the request's producer id and
    /// epoch are its current ones.
    fn current<'a>(
        txns: &'a mut HashMap<String, TxnMetadata>,
        tid: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&'a mut TxnMetadata, ResponseError> {
        let m = txns.get_mut(tid).ok_or(ResponseError::InvalidProducerIdMapping)?;
        m.check_producer(producer_id, epoch)?;
        Ok(m)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: start the transaction if
    /// needed and add the partitions (and group) to it. `v2`: a broker adds
    /// them for a transactions v2 client (Produce v12, TxnOffsetCommit v5).
    #[allow(clippy::too_many_arguments)]
    pub fn add_to_txn(
        &self,
        broker: &Broker,
        tid: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
        v2: bool,
    ) -> Result<DurableWaits, ResponseError> {
        self.check_coordinator(tid)?;
        let mut txns = self.txns.lock();
        let m = Self::current(&mut txns, tid, producer_id, epoch)?;
        if v2 {
            m.client_version = 2;
        }
        let mut waits = Vec::new();
        if m.add(partitions, group, now_ms())? {
            let snapshot = m.clone();
            self.persist(broker, &snapshot, &mut waits)?;
        }
        Ok(waits)
    }

    /// AddPartitionsToTxn v4+ with `verify_only` (KIP-890 part 1): which of
    /// `partitions` the open transaction holds (NONE), or not
    /// (TRANSACTION_ABORTABLE); one error for all when the producer or
    /// state is wrong.
    pub fn verify_in_txn(
        &self,
        tid: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.check_coordinator(tid)?;
        let mut txns = self.txns.lock();
        let m = txns.get_mut(tid).ok_or(ResponseError::InvalidProducerIdMapping)?;
        if m.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if m.producer_epoch != epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|p| (!m.partitions.contains(p)).then_some(ResponseError::TransactionAbortable))
            .collect())
    }

    /// The `__consumer_offsets` partition a group's offsets go to.
    pub fn offsets_partition_of(&self, broker: &Broker, group: &str) -> (String, i32) {
        (OFFSETS_TOPIC.to_string(), partition_for_group(group, broker.config.offsets_topic_num_partitions))
    }

    /// EndTxn: commit or abort the open transaction. `v2` (EndTxn v5+,
    /// transactions v2) bumps the epoch in every end. Returns the second
    /// half of the end, if there is one to run, and the producer id and
    /// epoch the client continues with.
    pub fn end_txn(
        &self,
        broker: &Broker,
        tid: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
    ) -> Result<(Option<Completion>, (i64, i16)), ResponseError> {
        self.check_coordinator(tid)?;
        if v2 {
            self.reserve_producer_ids(broker)?;
        }
        let mut txns = self.txns.lock();
        if !v2 {
            let m = Self::current(&mut txns, tid, producer_id, epoch)?;
            let current = (m.producer_id, m.producer_epoch);
            if m.end_action(commit)? == EndAction::Complete {
                return self.prepare(broker, m, commit, false).map(|c| (Some(c), current));
            }
            return Ok((None, current));
        }
        let m = txns.get_mut(tid).ok_or(ResponseError::InvalidProducerIdMapping)?;
        match m.end_action_v2(producer_id, epoch, commit)? {
            EndAction::AlreadyDone => Ok((None, (m.producer_id, m.producer_epoch))),
            EndAction::Complete => self.prepare(broker, m, commit, true).map(|c| {
                let reply = c.reply;
                (Some(c), reply)
            }),
            EndAction::AbortEmpty => {
                m.partitions.clear();
                m.groups.clear();
                m.start_ms = now_ms();
                self.prepare(broker, m, false, true).map(|c| {
                    let reply = c.reply;
                    (Some(c), reply)
                })
            }
        }
    }

    /// Runs a completion on the runtime, logging how it ended.
    fn spawn(&self, broker: &Arc<Broker>, completion: Completion) {
        let (tid, b) = (completion.tid.clone(), broker.clone());
        broker.runtime.spawn(async move {
            if let Err(e) = completion.run(b).await {
                tracing::warn!(transactional_id = %tid, error = ?e, "ending a transaction did not finish here");
            }
        });
    }

    /// Aborts transactions open longer than their timeout (fencing their
    /// producers with a bumped epoch). Returns how many.
    pub fn abort_timed_out(&self, broker: &Arc<Broker>) -> usize {
        let now = now_ms();
        let mut completions = Vec::new();
        {
            let mut txns = self.txns.lock();
            for m in txns.values_mut() {
                if m.timed_out(now) {
                    tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, "aborting a transaction past its timeout");
                    // a v2 producer's end bumps again, as Kafka's: the client,
                    // still at the fenced epoch, is told PRODUCER_FENCED
                    let v2 = m.client_version >= 2;
                    if let Ok(c) = self.bump_epoch(broker, m).and_then(|_| self.prepare(broker, m, false, v2)) {
                        completions.push(c);
                    }
                }
            }
        }
        let aborted = completions.len();
        for c in completions {
            self.spawn(broker, c);
        }
        aborted
    }

    /// This node now leads (`leader`) or no longer leads partition `index`
    /// of `__transaction_state`: load its transactional ids, or drop them.
    pub fn on_partition_role(&self, broker: &Arc<Broker>, index: i32, leader: bool) {
        let parts = self.partitions;
        if !leader {
            if self.ownership.release(index) {
                self.txns.lock().retain(|id, _| partition_for_group(id, parts) != index);
            }
            return;
        }
        if !self.ownership.begin_load(index) {
            return;
        }
        let broker = broker.clone();
        // completing transactions found half-ended writes and may wait: not
        // on the metadata thread
        broker.runtime.clone().spawn_blocking(move || {
            let txns = &broker.txns;
            txns.txns.lock().retain(|id, _| partition_for_group(id, parts) != index);
            if let Err(e) = txns.load_partition(&broker, index) {
                tracing::error!(partition = index, error = %e, "loading transactions failed");
            }
            txns.ownership.end_load(index, broker.partition(TRANSACTION_STATE_TOPIC, index).is_ok());
        });
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_of(&self, tid: &str) -> i32 {
        partition_for_group(tid, self.partitions)
    }

    /// NOT_COORDINATOR unless this node leads the transactional id's
    /// partition (COORDINATOR_LOAD_IN_PROGRESS while loading it).
    pub fn check_coordinator(&self, tid: &str) -> Result<(), ResponseError> {
        self.ownership.check(partition_for_group(tid, self.partitions))
    }

    /// Rebuilds the transactional ids of one `__transaction_state`
    /// partition; transactions caught between Prepare* and Complete* are
    /// completed now.
    fn load_partition(&self, broker: &Arc<Broker>, index: i32) -> anyhow::Result<()> {
        let image = broker.controller.image();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else { return Ok(()) };
        let mut loaded: HashMap<String, Option<TxnMetadata>> = HashMap::new();
        if let Some(partition) = broker.replicas.get(&topic.topic_id, index) {
            partition.scan_batches(|_, batch| {
                let section = records_section(batch)?;
                for r in records_of(batch, &section)? {
                    let Some(tid) = r.key.and_then(records::decode_key) else { continue };
                    let value = r.value.and_then(|v| records::decode_value(&tid, v));
                    loaded.insert(tid, value);
                }
                Ok(())
            })?;
        }
        let mut txns = self.txns.lock();
        let mut max_pid = -1;
        for (tid, m) in loaded {
            if let Some(m) = m {
                max_pid = max_pid.max(m.producer_id);
                txns.insert(tid, m);
            }
        }
        let mut completions = Vec::new();
        for m in txns.values_mut().filter(|m| partition_for_group(&m.transactional_id, self.partitions) == index) {
            let commit = match m.state {
                TxnState::PrepareCommit => true,
                TxnState::PrepareAbort => false,
                _ => continue,
            };
            // the epoch of a v2 end was bumped before its Prepare* record
            completions.push(self.prepare(broker, m, commit, false).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        tracing::info!(transactional_ids = txns.len(), "loaded transactions from {TRANSACTION_STATE_TOPIC}");
        drop(txns);
        for c in completions {
            self.spawn(broker, c);
        }
        Ok(())
    }

    /// How many transactional ids this node coordinates.
    pub fn count(&self) -> usize {
        self.txns.lock().len()
    }

    /// Transactional ids with their metadata, for Describe/ListTransactions.
    pub fn snapshot(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = self.txns.lock().values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }
}

/// Appends a transaction marker to a partition led here; a marker in
/// `__consumer_offsets` also settles the transaction's pending offsets.
/// Returns the offset to wait on.
pub fn write_marker(
    broker: &Broker,
    partition: &Arc<Partition>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<i64, ResponseError> {
    let end = partition.append_txn_marker(producer_id, producer_epoch, commit, 0).map_err(|e| match e {
        vltava_storage::StorageError::NotLeader => ResponseError::NotLeaderOrFollower,
        e => {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "writing a transaction marker failed");
            ResponseError::KafkaStorageError
        }
    })?;
    if partition.topic == OFFSETS_TOPIC {
        broker.groups.complete_txn_in_partition(partition.index, producer_id, commit);
    }
    Ok(end)
}

/// Sends markers to the leaders of partitions led elsewhere, once; returns
/// the partitions still without one (leader unknown, unreachable, or
/// refusing: it may be moving).
async fn send_markers(
    broker: &Broker,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    pending: Vec<(String, i32)>,
) -> Vec<(String, i32)> {
    use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
    let image = broker.controller.image();
    let mut left = Vec::new();
    let mut by_leader: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
    for (topic, index) in pending {
        match image.topic(&topic).and_then(|t| t.partition(index)).map(|p| p.leader) {
            None => tracing::warn!(topic, partition = index, "partition of a transaction is gone; no marker written"),
            Some(leader) => by_leader.entry(leader).or_default().push((topic, index)),
        }
    }
    for (leader, parts) in by_leader {
        let Some(addr) = image.broker(leader).filter(|_| leader >= 0).map(|b| format!("{}:{}", b.host, b.port)) else {
            left.extend(parts);
            continue;
        };
        let mut topics: HashMap<&str, Vec<i32>> = HashMap::new();
        for (t, p) in &parts {
            topics.entry(t.as_str()).or_default().push(*p);
        }
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(vltava_protocol::StrBytes::from_string(t.to_string())))
                            .with_partition_indexes(ps)
                    })
                    .collect(),
            );
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let client_id = format!("vltava-txn-coordinator-{}", broker.config.node_id);
        let response: std::io::Result<WriteTxnMarkersResponse> = async {
            let mut conn = crate::replication::KafkaConn::connect_to_broker(broker, &addr, client_id).await?;
            conn.call(ApiKey::WriteTxnMarkers, 1, &request, MARKER_REQUEST_TIMEOUT).await
        }
        .await;
        match response {
            Ok(r) => {
                for result in r.markers.iter().flat_map(|m| m.topics.iter()) {
                    for p in &result.partitions {
                        if p.error_code != 0 {
                            tracing::debug!(topic = %result.name.0, partition = p.partition_index, error = p.error_code, "marker refused; retrying");
                            left.push((result.name.0.to_string(), p.partition_index));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "sending transaction markers failed; retrying");
                left.extend(parts);
            }
        }
    }
    left
}
