//! Per-partition producer state, as Kafka's ProducerStateManager: for each
//! producer id, its epoch, the metadata of its last five batches (to answer
//! a retried batch with its original offset instead of appending it again),
//! and its open transaction, if any. Ongoing transactions give the last
//! stable offset; aborted ones are remembered for read_committed fetches.
//!
//! The state is rebuilt on open from a snapshot (`<offset>.snapshot`,
//! written at segment roll and clean close) plus the batches after it.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many recent batches per producer are kept for duplicate detection.
pub const PRODUCER_BATCHES_CACHED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction.
    pub txn_first_offset: Option<i64>,
    pub last_timestamp: i64,
}

/// A transaction that was aborted: read_committed fetches skip its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
}

/// Why a producer's batch is refused (Kafka's error codes in comments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45)
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence { producer_id: i64, expected: i32, got: i32 },
    /// INVALID_PRODUCER_EPOCH (47)
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, current: i16, got: i16 },
    /// INVALID_TXN_STATE (48)
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
}

impl ProducerError {
    pub fn error_code(&self) -> i16 {
        match self {
            ProducerError::OutOfOrderSequence { .. } => 45,
            ProducerError::InvalidProducerEpoch { .. } => 47,
            ProducerError::InvalidTxnState(_) => 48,
        }
    }
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    Append,
    /// A retry of a batch already in the log.
    Duplicate(BatchMetadata),
}

/// One batch's producer fields, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub record_count: i32,
    pub transactional: bool,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

impl ProducerBatch {
    pub fn last_seq(&self) -> i32 {
        if self.first_seq < 0 {
            return -1;
        }
        // sequences wrap at i32::MAX
        ((self.first_seq as i64 + self.record_count as i64 - 1) % (i32::MAX as i64 + 1)) as i32
    }
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions by first offset.
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStateManager {
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn producers(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks a producer's batch against its state (idempotence rules).
    pub fn check(&self, b: &ProducerBatch) -> Result<ProducerCheck, ProducerError> {
        if b.first_seq < 0 {
            // No sequence (the broker's own transactional writes): only fencing applies.
            return match self.producers.get(&b.producer_id) {
                Some(e) if b.epoch < e.epoch => Err(ProducerError::InvalidProducerEpoch {
                    producer_id: b.producer_id,
                    current: e.epoch,
                    got: b.epoch,
                }),
                _ => Ok(ProducerCheck::Append),
            };
        }
        let Some(entry) = self.producers.get(&b.producer_id) else {
            if b.first_seq != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: b.producer_id,
                    expected: 0,
                    got: b.first_seq,
                });
            }
            return Ok(ProducerCheck::Append);
        };
        if b.epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: b.producer_id,
                current: entry.epoch,
                got: b.epoch,
            });
        }
        if b.epoch > entry.epoch {
            if b.first_seq != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: b.producer_id,
                    expected: 0,
                    got: b.first_seq,
                });
            }
            return Ok(ProducerCheck::Append);
        }
        if let Some(dup) = entry.batches.iter().find(|m| m.first_seq == b.first_seq && m.last_seq == b.last_seq()) {
            return Ok(ProducerCheck::Duplicate(*dup));
        }
        let expected = entry.batches.back().map(|m| next_seq(m.last_seq)).unwrap_or(0);
        if b.first_seq != expected {
            return Err(ProducerError::OutOfOrderSequence { producer_id: b.producer_id, expected, got: b.first_seq });
        }
        Ok(ProducerCheck::Append)
    }

    /// Records an appended producer batch.
    pub fn update(&mut self, b: &ProducerBatch) {
        let entry = self.producers.entry(b.producer_id).or_default();
        if b.epoch > entry.epoch {
            entry.epoch = b.epoch;
            entry.batches.clear();
        }
        if b.first_seq >= 0 {
            entry.batches.push_back(BatchMetadata {
                first_seq: b.first_seq,
                last_seq: b.last_seq(),
                base_offset: b.base_offset,
                last_offset: b.last_offset,
            });
            while entry.batches.len() > PRODUCER_BATCHES_CACHED {
                entry.batches.pop_front();
            }
        }
        entry.last_timestamp = entry.last_timestamp.max(b.max_timestamp);
        if b.transactional && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(b.base_offset);
            self.ongoing.insert(b.base_offset, b.producer_id);
        }
    }

    /// Records a transaction marker at `offset`; returns the aborted
    /// transaction for an abort that closed one.
    pub fn end_txn(&mut self, producer_id: i64, epoch: i16, commit: bool, offset: i64) -> Option<AbortedTxn> {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        let first = entry.txn_first_offset.take()?;
        self.ongoing.remove(&first);
        (!commit).then_some(AbortedTxn { producer_id, first_offset: first, last_offset: offset })
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// The open transaction of `producer_id`, if any.
    pub fn ongoing_txn(&self, producer_id: i64) -> Option<i64> {
        self.producers.get(&producer_id).and_then(|e| e.txn_first_offset)
    }

    /// Serialises the state: one line per producer,
    /// `pid epoch txn_first(-1) last_ts [first_seq last_seq base last]*`.
    pub fn to_snapshot(&self) -> String {
        let mut out = String::from("vltava-producer-state 1\n");
        for (pid, e) in &self.producers {
            out.push_str(&format!("{pid} {} {} {}", e.epoch, e.txn_first_offset.unwrap_or(-1), e.last_timestamp));
            for m in &e.batches {
                out.push_str(&format!(" {} {} {} {}", m.first_seq, m.last_seq, m.base_offset, m.last_offset));
            }
            out.push('\n');
        }
        out
    }

    /// Parses [`Self::to_snapshot`]; `None` when the text is damaged.
    pub fn from_snapshot(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != "vltava-producer-state 1" {
            return None;
        }
        let mut state = Self::default();
        for line in lines {
            let nums: Vec<i64> = line.split_whitespace().map(|w| w.parse().ok()).collect::<Option<_>>()?;
            if nums.len() < 4 || !(nums.len() - 4).is_multiple_of(4) {
                return None;
            }
            let mut entry = ProducerEntry {
                epoch: nums[1] as i16,
                batches: VecDeque::new(),
                txn_first_offset: (nums[2] >= 0).then_some(nums[2]),
                last_timestamp: nums[3],
            };
            for m in nums[4..].chunks_exact(4) {
                entry.batches.push_back(BatchMetadata {
                    first_seq: m[0] as i32,
                    last_seq: m[1] as i32,
                    base_offset: m[2],
                    last_offset: m[3],
                });
            }
            if let Some(first) = entry.txn_first_offset {
                state.ongoing.insert(first, nums[0]);
            }
            state.producers.insert(nums[0], entry);
        }
        Some(state)
    }

    /// Forgets batches and transactions at or above `offset` (truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|m| m.last_offset < offset);
            if e.txn_first_offset.is_some_and(|f| f >= offset) {
                e.txn_first_offset = None;
            }
        }
        self.ongoing.retain(|first, _| *first < offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, first_seq: i32, count: i32, base: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            epoch,
            first_seq,
            record_count: count,
            transactional: false,
            base_offset: base,
            last_offset: base + count as i64 - 1,
            max_timestamp: 0,
        }
    }

    #[test]
    fn sequences_duplicates_and_epochs() {
        let mut s = ProducerStateManager::default();
        let b0 = batch(7, 0, 0, 10, 100);
        assert_eq!(s.check(&b0), Ok(ProducerCheck::Append));
        s.update(&b0);
        let dup = s.check(&b0).unwrap();
        assert!(matches!(dup, ProducerCheck::Duplicate(m) if m.base_offset == 100 && m.last_offset == 109));
        assert_eq!(s.check(&batch(7, 0, 15, 1, 0)).unwrap_err().error_code(), 45, "a gap");
        let b1 = batch(7, 0, 10, 5, 110);
        assert_eq!(s.check(&b1), Ok(ProducerCheck::Append));
        s.update(&b1);
        assert_eq!(s.check(&batch(7, 1, 3, 1, 0)).unwrap_err().error_code(), 45, "new epoch starts at 0");
        s.update(&batch(7, 1, 0, 1, 120));
        assert_eq!(s.check(&batch(7, 0, 15, 1, 0)).unwrap_err().error_code(), 47, "old epoch is fenced");
        assert_eq!(s.check(&batch(8, 0, 4, 1, 0)).unwrap_err().error_code(), 45, "unknown producer must start at 0");
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStateManager::default();
        for i in 0..7 {
            s.update(&batch(1, 0, i, 1, i as i64));
        }
        assert!(matches!(s.check(&batch(1, 0, 6, 1, 0)), Ok(ProducerCheck::Duplicate(_))));
        assert!(matches!(s.check(&batch(1, 0, 2, 1, 0)), Ok(ProducerCheck::Duplicate(_))));
        assert!(s.check(&batch(1, 0, 1, 1, 0)).is_err(), "older than the cache: out of order");
    }

    #[test]
    fn transactions_and_snapshot() {
        let mut s = ProducerStateManager::default();
        let mut t = batch(3, 0, 0, 2, 50);
        t.transactional = true;
        s.update(&t);
        assert_eq!(s.first_unstable_offset(), Some(50));
        let snap = s.to_snapshot();
        let mut r = ProducerStateManager::from_snapshot(&snap).unwrap();
        assert_eq!(r.first_unstable_offset(), Some(50));
        assert_eq!(r.end_txn(3, 0, false, 60), Some(AbortedTxn { producer_id: 3, first_offset: 50, last_offset: 60 }));
        assert_eq!(r.first_unstable_offset(), None);
        assert!(ProducerStateManager::from_snapshot("garbage").is_none());
        assert_eq!(r.check(&batch(3, 0, 2, 1, 61)), Ok(ProducerCheck::Append));
    }

    #[test]
    fn sequence_wraps() {
        let b = batch(1, 0, i32::MAX - 1, 3, 0);
        assert_eq!(b.last_seq(), 0);
        assert_eq!(next_seq(i32::MAX), 0);
    }
}
