//! A transactional id's metadata and its states, as in Kafka's
//! TransactionMetadata (status codes are those of `__transaction_state`).

use std::collections::BTreeSet;

use vltava_protocol::ResponseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }
    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions written in the open transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

impl TxnMetadata {
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32) -> Self {
        Self {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            last_update_ms: -1,
            start_ms: -1,
        }
    }
}

/// What EndTxn has to do, decided from the state alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndAction {
    /// Write markers and complete.
    Complete,
    /// A retry of an EndTxn that already completed the same way.
    AlreadyDone,
}

impl TxnMetadata {
    /// A request's producer id and epoch against the current ones.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
        if self.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < self.producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch > self.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: starts the transaction when
    /// none is open. Returns whether anything changed.
    pub fn add(
        &mut self,
        partitions: &[(String, i32)],
        group: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, ResponseError> {
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(ResponseError::InvalidTxnState),
            TxnState::Ongoing => {}
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                self.state = TxnState::Ongoing;
                self.start_ms = now_ms;
                self.partitions.clear();
                self.groups.clear();
                self.last_update_ms = now_ms;
                self.partitions.extend(partitions.iter().cloned());
                self.groups.extend(group.map(str::to_string));
                return Ok(true);
            }
        }
        let before = (self.partitions.len(), self.groups.len());
        self.partitions.extend(partitions.iter().cloned());
        self.groups.extend(group.map(str::to_string));
        let changed = before != (self.partitions.len(), self.groups.len());
        if changed {
            self.last_update_ms = now_ms;
        }
        Ok(changed)
    }

    /// EndTxn: what to do for `commit` in the current state.
    pub fn end_action(&self, commit: bool) -> Result<EndAction, ResponseError> {
        match (self.state, commit) {
            (TxnState::Ongoing, _) => Ok(EndAction::Complete),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(EndAction::AlreadyDone),
            (TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence, _) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Whether the open transaction is past its timeout at `now_ms`.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing && now_ms - self.start_ms > self.timeout_ms as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn() -> TxnMetadata {
        let mut m = TxnMetadata::new("t", 7, 1000);
        m.producer_epoch = 2;
        m
    }

    #[test]
    fn producer_checks() {
        let m = txn();
        assert_eq!(m.check_producer(7, 2), Ok(()));
        assert_eq!(m.check_producer(8, 2), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(m.check_producer(7, 1), Err(ResponseError::ProducerFenced));
        assert_eq!(m.check_producer(7, 3), Err(ResponseError::InvalidProducerEpoch));
    }

    #[test]
    fn add_starts_and_extends_a_transaction() {
        let mut m = txn();
        assert_eq!(m.end_action(true), Err(ResponseError::InvalidTxnState), "nothing to end while Empty");
        assert_eq!(m.add(&[("a".into(), 0)], None, 100), Ok(true));
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 100));
        assert_eq!(m.add(&[("a".into(), 0)], None, 150), Ok(false), "already in");
        assert_eq!(m.add(&[("a".into(), 1)], Some("g"), 200), Ok(true));
        assert_eq!(m.partitions.len(), 2);
        assert!(m.groups.contains("g"));
        assert!(!m.timed_out(1100) && m.timed_out(1101));
    }

    #[test]
    fn end_transitions() {
        let mut m = txn();
        m.add(&[("a".into(), 0)], None, 0).unwrap();
        assert_eq!(m.end_action(true), Ok(EndAction::Complete));
        assert_eq!(m.end_action(false), Ok(EndAction::Complete));
        m.state = TxnState::PrepareCommit;
        assert_eq!(m.end_action(true), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(m.add(&[], None, 0), Err(ResponseError::ConcurrentTransactions));
        m.state = TxnState::CompleteCommit;
        assert_eq!(m.end_action(true), Ok(EndAction::AlreadyDone), "a retried commit");
        assert_eq!(m.end_action(false), Err(ResponseError::InvalidTxnState), "abort after commit");
        assert_eq!(m.add(&[("b".into(), 0)], None, 5), Ok(true), "a new transaction starts");
        assert_eq!(m.partitions.len(), 1, "partitions of the last transaction are gone");
    }
}
