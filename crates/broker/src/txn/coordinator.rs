//! The transaction coordinator: producer ids and epochs for transactional
//! ids, the partitions and groups in each open transaction, and the
//! two-phase end (Prepare*, markers to every partition, Complete*). State
//! is written to `__transaction_state` (Kafka's formats, the partition
//! Kafka would pick) and reloaded at start. Transactions past their timeout
//! are aborted, with the producer's epoch bumped so it is fenced.
//!
//! Also hands out producer ids to idempotent producers.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use parking_lot::Mutex;
use vltava_protocol::batch::{build_keyed_batch, records_of, records_section, BatchHeader, Batches};
use vltava_protocol::ResponseError;

use super::records;
use super::state::{EndAction, TxnMetadata, TxnState};
use crate::controller::TopicSpec;
use crate::group::records::partition_for_group;
use crate::group::OFFSETS_TOPIC;
use crate::partition::Partition;
use crate::Broker;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Producer ids a broker takes from the controller at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Writes to wait on (fsync) before answering.
pub type DurableWaits = Vec<(Arc<Partition>, i64)>;

pub struct TransactionCoordinator {
    txns: Mutex<HashMap<String, TxnMetadata>>,
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

    /// Creates `__transaction_state` if needed.
    pub fn ensure_state_topic(&self, broker: &Broker) -> Result<(), ResponseError> {
        if broker.controller.image().topic(TRANSACTION_STATE_TOPIC).is_some() {
            return Ok(());
        }
        let spec = TopicSpec {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: self.partitions,
            replication_factor: 1,
            configs: vec![("cleanup.policy".into(), "compact".into()), ("segment.bytes".into(), "104857600".into())],
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

    /// Writes the markers that end `m`'s transaction to every partition in
    /// it, settles its groups' pending offsets, and moves it to Complete*.
    fn complete(
        &self,
        broker: &Broker,
        m: &mut TxnMetadata,
        commit: bool,
        waits: &mut DurableWaits,
    ) -> Result<(), ResponseError> {
        m.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        m.last_update_ms = now_ms();
        self.persist(broker, m, waits)?;
        for (topic, index) in &m.partitions {
            match broker.partition(topic, *index) {
                Ok((partition, _)) => match partition.append_txn_marker(m.producer_id, m.producer_epoch, commit, 0) {
                    Ok(end) => waits.push((partition, end)),
                    Err(e) => {
                        tracing::error!(topic, partition = index, error = %e, "writing a transaction marker failed");
                        return Err(ResponseError::KafkaStorageError);
                    }
                },
                Err(_) => {
                    tracing::warn!(topic, partition = index, "partition of a transaction is gone; no marker written")
                }
            }
        }
        for group in &m.groups {
            broker.groups.complete_txn(group, m.producer_id, commit);
        }
        m.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        m.partitions.clear();
        m.groups.clear();
        m.last_update_ms = now_ms();
        self.persist(broker, m, waits)?;
        tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, epoch = m.producer_epoch, commit, "transaction ended");
        Ok(())
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
        broker: &Broker,
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
                // fence the old instance: abort with a bumped epoch
                self.bump_epoch(broker, m)?;
                self.complete(broker, m, false, &mut waits)?;
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
    /// needed and add the partitions (and group) to it.
    pub fn add_to_txn(
        &self,
        broker: &Broker,
        tid: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
    ) -> Result<DurableWaits, ResponseError> {
        let mut txns = self.txns.lock();
        let m = Self::current(&mut txns, tid, producer_id, epoch)?;
        let mut waits = Vec::new();
        if m.add(partitions, group, now_ms())? {
            let snapshot = m.clone();
            self.persist(broker, &snapshot, &mut waits)?;
        }
        Ok(waits)
    }

    /// The `__consumer_offsets` partition a group's offsets go to.
    pub fn offsets_partition_of(&self, broker: &Broker, group: &str) -> (String, i32) {
        (OFFSETS_TOPIC.to_string(), partition_for_group(group, broker.config.offsets_topic_num_partitions))
    }

    /// EndTxn: commit or abort the open transaction.
    pub fn end_txn(
        &self,
        broker: &Broker,
        tid: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<DurableWaits, ResponseError> {
        let mut txns = self.txns.lock();
        let m = Self::current(&mut txns, tid, producer_id, epoch)?;
        let mut waits = Vec::new();
        if m.end_action(commit)? == EndAction::Complete {
            self.complete(broker, m, commit, &mut waits)?;
        }
        Ok(waits)
    }

    /// Aborts transactions open longer than their timeout (fencing their
    /// producers with a bumped epoch). Returns how many.
    pub fn abort_timed_out(&self, broker: &Broker) -> usize {
        let now = now_ms();
        let mut txns = self.txns.lock();
        let mut aborted = 0;
        for m in txns.values_mut() {
            if m.timed_out(now) {
                tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, "aborting a transaction past its timeout");
                let mut waits = Vec::new();
                if self.bump_epoch(broker, m).and_then(|_| self.complete(broker, m, false, &mut waits)).is_ok() {
                    aborted += 1;
                }
            }
        }
        aborted
    }

    /// Rebuilds transactional ids from `__transaction_state`; transactions
    /// caught between Prepare* and Complete* are completed now.
    pub fn load(&self, broker: &Broker) -> anyhow::Result<()> {
        let image = broker.controller.image();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else { return Ok(()) };
        let mut loaded: HashMap<String, Option<TxnMetadata>> = HashMap::new();
        for p in &topic.partitions {
            let Some(partition) = broker.replicas.get(&topic.topic_id, p.partition) else { continue };
            let mut offset = partition.watermarks().log_start_offset;
            while let Some(slice) = partition.read(offset, 1 << 20)? {
                let bytes = slice.read()?;
                let before = offset;
                for item in Batches::new(&bytes) {
                    let Ok((_, batch)) = item else { break };
                    let h = BatchHeader::parse(batch)?;
                    offset = h.last_offset() + 1;
                    let section = records_section(batch)?;
                    for r in records_of(batch, &section)? {
                        let Some(tid) = r.key.and_then(records::decode_key) else { continue };
                        let value = r.value.and_then(|v| records::decode_value(&tid, v));
                        loaded.insert(tid, value);
                    }
                }
                if offset == before {
                    break;
                }
            }
        }
        let mut txns = self.txns.lock();
        let mut max_pid = -1;
        for (tid, m) in loaded {
            if let Some(m) = m {
                max_pid = max_pid.max(m.producer_id);
                txns.insert(tid, m);
            }
        }
        let mut waits = Vec::new();
        for m in txns.values_mut() {
            match m.state {
                TxnState::PrepareCommit => {
                    self.complete(broker, m, true, &mut waits).map_err(|e| anyhow::anyhow!("{e}"))?
                }
                TxnState::PrepareAbort => {
                    self.complete(broker, m, false, &mut waits).map_err(|e| anyhow::anyhow!("{e}"))?
                }
                _ => {}
            }
        }
        tracing::info!(transactional_ids = txns.len(), "loaded transactions from {TRANSACTION_STATE_TOPIC}");
        Ok(())
    }

    /// Transactional ids with their metadata, for Describe/ListTransactions.
    pub fn snapshot(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = self.txns.lock().values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }
}
