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
    /// The transaction version the client uses (0 or 2, KIP-890 part 2):
    /// 2 once a transaction was started by a broker's implicit add or ended
    /// by EndTxn v5.
    pub client_version: i16,
    /// The producer id before the last rotation (transactions v2: an epoch
    /// that runs out ends a transaction with a new producer id), so a
    /// retried EndTxn of that transaction is recognised; -1 when none.
    pub previous_producer_id: i64,
    /// The producer id the ending transaction moves to (epoch exhausted);
    /// -1 when none.
    pub next_producer_id: i64,
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
            client_version: 0,
            previous_producer_id: -1,
            next_producer_id: -1,
        }
    }
}

/// Kafka never hands out the last epochs of a producer id, so that the
/// coordinator can always fence with a bump.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// What EndTxn has to do, decided from the state alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndAction {
    /// Write markers and complete.
    Complete,
    /// A retry of an EndTxn that already completed the same way.
    AlreadyDone,
    /// Transactions v2: an abort with no transaction open still bumps the
    /// epoch (the client aborts to fence what it may have sent).
    AbortEmpty,
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

    /// EndTxn v5+ (transactions v2, KIP-890 part 2): every end bumps the
    /// epoch, so a request at the epoch before the current one is a retry
    /// of an end that happened, and one at the current epoch is a new end.
    /// Checks the producer too (its id may have rotated in that end).
    pub fn end_action_v2(&self, producer_id: i64, epoch: i16, commit: bool) -> Result<EndAction, ResponseError> {
        let retry_on_bump = self.producer_epoch > 0 && epoch == self.producer_epoch - 1;
        let retry_on_rotation = self.previous_producer_id == producer_id
            && producer_id != self.producer_id
            && epoch_exhausted(epoch)
            && self.producer_epoch == 0;
        if self.producer_id != producer_id && !retry_on_rotation {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let retry = (retry_on_bump && self.producer_id == producer_id) || retry_on_rotation;
        let valid = match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry,
            TxnState::CompleteCommit | TxnState::CompleteAbort => retry || epoch == self.producer_epoch,
            _ => epoch == self.producer_epoch,
        };
        if !valid {
            return Err(ResponseError::ProducerFenced);
        }
        match (self.state, commit) {
            (TxnState::Ongoing, _) => Ok(EndAction::Complete),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => Ok(EndAction::AlreadyDone),
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false) if !retry => {
                Ok(EndAction::AbortEmpty)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
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
    fn v2_ends_bump_the_epoch_so_retries_are_told_from_new_ends() {
        let mut m = txn(); // epoch 2
        assert_eq!(m.end_action_v2(7, 2, false), Ok(EndAction::AbortEmpty), "abort with nothing open");
        assert_eq!(m.end_action_v2(7, 2, true), Err(ResponseError::InvalidTxnState), "commit with nothing open");
        m.add(&[("a".into(), 0)], None, 0).unwrap();
        assert_eq!(m.end_action_v2(7, 2, true), Ok(EndAction::Complete));
        assert_eq!(m.end_action_v2(7, 1, true), Err(ResponseError::ProducerFenced));
        assert_eq!(m.end_action_v2(7, 3, true), Err(ResponseError::ProducerFenced));
        assert_eq!(m.end_action_v2(8, 2, true), Err(ResponseError::InvalidProducerIdMapping));
        // ended: the epoch is now 3
        m.producer_epoch = 3;
        m.state = TxnState::PrepareCommit;
        assert_eq!(m.end_action_v2(7, 2, true), Err(ResponseError::ConcurrentTransactions), "retry while ending");
        assert_eq!(m.end_action_v2(7, 2, false), Err(ResponseError::InvalidTxnState));
        assert_eq!(m.end_action_v2(7, 3, true), Err(ResponseError::ProducerFenced), "not a retry while ending");
        m.state = TxnState::CompleteCommit;
        assert_eq!(m.end_action_v2(7, 2, true), Ok(EndAction::AlreadyDone), "retried commit");
        assert_eq!(m.end_action_v2(7, 2, false), Err(ResponseError::InvalidTxnState), "retried abort of a commit");
        assert_eq!(m.end_action_v2(7, 3, false), Ok(EndAction::AbortEmpty), "a new, empty abort");
        assert_eq!(m.end_action_v2(7, 3, true), Err(ResponseError::InvalidTxnState), "a new, empty commit");
        // the epoch ran out: the producer id rotated in the last end
        let mut r = TxnMetadata::new("t", 9, 1000);
        (r.previous_producer_id, r.producer_epoch, r.state) = (7, 0, TxnState::CompleteAbort);
        assert_eq!(r.end_action_v2(7, i16::MAX - 1, false), Ok(EndAction::AlreadyDone));
        assert_eq!(r.end_action_v2(7, 5, false), Err(ResponseError::InvalidProducerIdMapping));
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
