//! One share partition (a group's view of one topic partition) as a state
//! machine without I/O, Kafka's `SharePartition`: every offset from the
//! start offset to the end offset has a delivery state and a delivery
//! count; offsets at and above the end offset are new (available, never
//! delivered). `now` is an argument everywhere.
//!
//! - acquiring hands available records to one member under a lock that
//!   expires after `group.share.record.lock.duration.ms`;
//! - ACCEPT acknowledges, RELEASE makes available again (after the
//!   redelivery backoff), REJECT archives, GAP (offsets without a record)
//!   archives, RENEW extends the lock; only the lock holder may;
//! - a record released or expired at the delivery count limit is archived;
//! - the start offset moves over the prefix that is done.
//!
//! Archived-by-the-group records (rejected, delivery limit) are reported
//! so that they can be written to the dead-letter topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::persister::{self, ShareState, StateBatch};

/// How far past its start offset a persisted share partition state may
/// name offsets (far above `group.share.partition.max.record.locks`).
const STATE_SPAN_MAX: i64 = 1_000_000;

/// Acknowledge types of ShareFetch/ShareAcknowledge.
pub const ACK_GAP: i8 = 0;
pub const ACK_ACCEPT: i8 = 1;
pub const ACK_RELEASE: i8 = 2;
pub const ACK_REJECT: i8 = 3;
pub const ACK_RENEW: i8 = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Delivery {
    Available,
    Acquired { member: Arc<str>, deadline: Instant },
    Acknowledged,
    Archived,
}

#[derive(Clone, Debug)]
struct Record {
    state: Delivery,
    count: i16,
    /// Not acquirable before (redelivery backoff).
    not_before: Option<Instant>,
}

impl Record {
    fn done(&self) -> bool {
        matches!(self.state, Delivery::Acknowledged | Delivery::Archived)
    }
}

/// Why a record left for the dead-letter topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterReason {
    Rejected,
    DeliveryLimit,
}

impl DeadLetterReason {
    pub fn name(self) -> &'static str {
        match self {
            DeadLetterReason::Rejected => "rejected",
            DeadLetterReason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// A record given up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub offset: i64,
    pub delivery_count: i16,
    pub reason: DeadLetterReason,
}

/// A log batch as acquisition sees it.
#[derive(Clone, Copy, Debug)]
pub struct LogBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Control batches and aborted transactions' batches (read_committed)
    /// are never delivered: archived as they are passed.
    pub skip: bool,
}

/// One acknowledgement batch: `types` has one type for the whole range or
/// one per offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRange {
    pub first_offset: i64,
    pub last_offset: i64,
    pub types: Vec<i8>,
}

impl AckRange {
    pub fn new(first_offset: i64, last_offset: i64, types: &[i8]) -> Self {
        AckRange { first_offset, last_offset, types: types.to_vec() }
    }
}

/// A run of acquired offsets with their delivery count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquired {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

/// The group's limits as acquisition and acknowledgement use them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub lock: Duration,
    pub delivery_count_limit: i16,
    pub max_locks: usize,
    pub redelivery_backoff: Duration,
}

pub struct SharePartition {
    pub state_epoch: i32,
    pub leader_epoch: i32,
    start_offset: i64,
    end_offset: i64,
    /// Offsets in `[start_offset, end_offset)`; a missing one is done (a
    /// gap in the log).
    records: BTreeMap<i64, Record>,
}

impl SharePartition {
    /// From the persisted state.
    pub fn from_state(state: &ShareState, leader_epoch: i32) -> Self {
        let mut records = BTreeMap::new();
        let mut end_offset = state.start_offset;
        // persisted batches past what could ever be in flight are not ours
        // to trust (a state read back from disk): they are ignored
        let span_end = state.start_offset.saturating_add(STATE_SPAN_MAX);
        for b in state.batches.iter().filter(|b| b.first_offset <= b.last_offset && b.last_offset < span_end) {
            let delivery = match b.delivery_state {
                persister::ACKNOWLEDGED => Delivery::Acknowledged,
                persister::ARCHIVED => Delivery::Archived,
                _ => Delivery::Available,
            };
            for o in b.first_offset.max(state.start_offset)..=b.last_offset {
                records.insert(o, Record { state: delivery.clone(), count: b.delivery_count, not_before: None });
            }
            end_offset = end_offset.max(b.last_offset + 1);
        }
        // offsets between the start and the last batch that no batch names
        // are available, never delivered
        for o in state.start_offset..end_offset {
            records.entry(o).or_insert(Record { state: Delivery::Available, count: 0, not_before: None });
        }
        let mut p = SharePartition {
            state_epoch: state.state_epoch,
            leader_epoch,
            start_offset: state.start_offset,
            end_offset,
            records,
        };
        p.advance_start();
        p
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// Records in flight (what `group.share.partition.max.record.locks` bounds).
    pub fn in_flight(&self) -> usize {
        (self.end_offset - self.start_offset) as usize
    }

    /// Locks past their deadline make their records available again (or
    /// archived at the delivery limit). Whether anything changed.
    pub fn expire(&mut self, now: Instant, limits: &Limits, dead: &mut Vec<DeadLetter>) -> bool {
        let mut changed = false;
        for (&offset, r) in self.records.iter_mut() {
            if let Delivery::Acquired { deadline, .. } = r.state {
                if deadline <= now {
                    release(offset, r, now, limits, dead);
                    changed = true;
                }
            }
        }
        if changed {
            self.advance_start();
        }
        changed
    }

    /// When something held back becomes acquirable (a lock deadline or a
    /// redelivery backoff), for long polls.
    pub fn next_change(&self) -> Option<Instant> {
        self.records
            .values()
            .filter_map(|r| match &r.state {
                Delivery::Acquired { deadline, .. } => Some(*deadline),
                Delivery::Available => r.not_before,
                _ => None,
            })
            .min()
    }

    /// The lowest offset that might be acquired now, `None` when nothing
    /// is (everything in flight is locked and the lock limit is reached).
    pub fn first_acquirable(&self, now: Instant, limits: &Limits) -> Option<i64> {
        let waiting = self.records.iter().find(|(_, r)| acquirable(r, now)).map(|(o, _)| *o);
        waiting.or((self.in_flight() < limits.max_locks).then_some(self.end_offset))
    }

    /// Acquires for `member` what is acquirable in `batches` (in offset
    /// order, as read from the log), at most `max_records` records. Returns
    /// the acquired runs and, per batch, whether it holds any of them.
    pub fn acquire(
        &mut self,
        member: &Arc<str>,
        batches: &[LogBatch],
        max_records: usize,
        now: Instant,
        limits: &Limits,
    ) -> (Vec<Acquired>, Vec<bool>) {
        let deadline = now + limits.lock;
        let mut runs: Vec<Acquired> = Vec::new();
        let mut used = vec![false; batches.len()];
        let mut taken = 0usize;
        'batches: for (i, b) in batches.iter().enumerate() {
            for offset in b.base_offset.max(self.start_offset)..=b.last_offset {
                if taken >= max_records {
                    break 'batches;
                }
                let count = if offset < self.end_offset {
                    let Some(r) = self.records.get_mut(&offset) else { continue };
                    if !acquirable(r, now) {
                        continue;
                    }
                    if b.skip {
                        r.state = Delivery::Archived;
                        continue;
                    }
                    r.count = r.count.saturating_add(1);
                    r.state = Delivery::Acquired { member: member.clone(), deadline };
                    r.not_before = None;
                    r.count
                } else {
                    if self.in_flight() >= limits.max_locks {
                        break 'batches;
                    }
                    // offsets the log skipped (compaction) are done
                    self.end_offset = offset + 1;
                    let state = if b.skip {
                        Delivery::Archived
                    } else {
                        Delivery::Acquired { member: member.clone(), deadline }
                    };
                    let count = if b.skip { 0 } else { 1 };
                    self.records.insert(offset, Record { state, count, not_before: None });
                    if b.skip {
                        continue;
                    }
                    1
                };
                taken += 1;
                used[i] = true;
                match runs.last_mut() {
                    Some(run) if run.last_offset + 1 == offset && run.delivery_count == count => {
                        run.last_offset = offset
                    }
                    _ => runs.push(Acquired { first_offset: offset, last_offset: offset, delivery_count: count }),
                }
            }
        }
        self.advance_start();
        (runs, used)
    }

    /// Applies one acknowledgement batch of `member`. Nothing changes when
    /// any offset is not acquired by `member` (INVALID_RECORD_STATE) or a
    /// type is unknown (INVALID_REQUEST).
    pub fn acknowledge(
        &mut self,
        member: &str,
        ack: &AckRange,
        now: Instant,
        limits: &Limits,
        dead: &mut Vec<DeadLetter>,
    ) -> Result<(), vltava_protocol::ResponseError> {
        use vltava_protocol::ResponseError;
        let (first, last, types) = (ack.first_offset, ack.last_offset, &ack.types[..]);
        if first < 0 || last < first {
            return Err(ResponseError::InvalidRequest);
        }
        let len = last - first + 1; // no overflow: 0 <= first <= last
        if (types.len() != 1 && types.len() as i64 != len) || types.iter().any(|t| !(ACK_GAP..=ACK_RENEW).contains(t)) {
            return Err(ResponseError::InvalidRequest);
        }
        // only offsets in flight can be acquired (this also bounds the work)
        if first < self.start_offset || last >= self.end_offset {
            return Err(ResponseError::InvalidRecordState);
        }
        for offset in first..=last {
            let held = match self.records.get(&offset) {
                Some(Record { state: Delivery::Acquired { member: m, .. }, .. }) => &**m == member,
                _ => false,
            };
            if !held {
                return Err(ResponseError::InvalidRecordState);
            }
        }
        for (i, offset) in (first..=last).enumerate() {
            let kind = if types.len() == 1 { types[0] } else { types[i] };
            let r = self.records.get_mut(&offset).expect("checked above");
            match kind {
                ACK_ACCEPT => r.state = Delivery::Acknowledged,
                ACK_GAP => r.state = Delivery::Archived,
                ACK_REJECT => {
                    r.state = Delivery::Archived;
                    dead.push(DeadLetter { offset, delivery_count: r.count, reason: DeadLetterReason::Rejected });
                }
                ACK_RELEASE => release(offset, r, now, limits, dead),
                _ => {
                    if let Delivery::Acquired { deadline, .. } = &mut r.state {
                        *deadline = now + limits.lock;
                    }
                }
            }
        }
        self.advance_start();
        Ok(())
    }

    /// Releases every lock `member` holds (it left the group or closed its
    /// session). Whether anything changed.
    pub fn release_member(&mut self, member: &str, now: Instant, limits: &Limits, dead: &mut Vec<DeadLetter>) -> bool {
        let mut changed = false;
        for (&offset, r) in self.records.iter_mut() {
            if matches!(&r.state, Delivery::Acquired { member: m, .. } if &**m == member) {
                release(offset, r, now, limits, dead);
                changed = true;
            }
        }
        if changed {
            self.advance_start();
        }
        changed
    }

    /// What to persist now: the start offset and every delivery state that
    /// is not "available, never delivered" (locks persist as available).
    pub fn to_state(&self) -> ShareState {
        let mut batches: Vec<StateBatch> = Vec::new();
        for (&offset, r) in &self.records {
            let state = match r.state {
                Delivery::Acknowledged => persister::ACKNOWLEDGED,
                Delivery::Archived => persister::ARCHIVED,
                _ => persister::AVAILABLE,
            };
            if state == persister::AVAILABLE && r.count == 0 {
                continue;
            }
            match batches.last_mut() {
                Some(b) if b.last_offset + 1 == offset && b.delivery_state == state && b.delivery_count == r.count => {
                    b.last_offset = offset
                }
                _ => batches.push(StateBatch {
                    first_offset: offset,
                    last_offset: offset,
                    delivery_state: state,
                    delivery_count: r.count,
                }),
            }
        }
        ShareState {
            state_epoch: self.state_epoch,
            leader_epoch: self.leader_epoch,
            start_offset: self.start_offset,
            batches,
        }
    }

    /// Moves the start offset over the done prefix.
    fn advance_start(&mut self) {
        while let Some((&offset, r)) = self.records.first_key_value() {
            if !r.done() {
                self.start_offset = offset;
                return;
            }
            self.records.remove(&offset);
        }
        self.start_offset = self.end_offset;
    }

    /// The states of offsets (tests).
    #[cfg(test)]
    fn state_of(&self, offset: i64) -> Option<(&'static str, i16)> {
        self.records.get(&offset).map(|r| {
            let name = match r.state {
                Delivery::Available => "available",
                Delivery::Acquired { .. } => "acquired",
                Delivery::Acknowledged => "acknowledged",
                Delivery::Archived => "archived",
            };
            (name, r.count)
        })
    }
}

fn acquirable(r: &Record, now: Instant) -> bool {
    r.state == Delivery::Available && r.not_before.is_none_or(|t| t <= now)
}

/// A lock given up: available again after the backoff, or archived when
/// the record has been delivered as often as allowed.
fn release(offset: i64, r: &mut Record, now: Instant, limits: &Limits, dead: &mut Vec<DeadLetter>) {
    if r.count >= limits.delivery_count_limit {
        r.state = Delivery::Archived;
        dead.push(DeadLetter { offset, delivery_count: r.count, reason: DeadLetterReason::DeliveryLimit });
    } else {
        r.state = Delivery::Available;
        r.not_before = (!limits.redelivery_backoff.is_zero()).then(|| now + limits.redelivery_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            lock: Duration::from_secs(30),
            delivery_count_limit: 2,
            max_locks: 100,
            redelivery_backoff: Duration::ZERO,
        }
    }

    fn batch(base: i64, last: i64) -> LogBatch {
        LogBatch { base_offset: base, last_offset: last, skip: false }
    }

    fn ack(first: i64, last: i64, types: &[i8]) -> AckRange {
        AckRange::new(first, last, types)
    }

    fn fresh(start: i64) -> SharePartition {
        SharePartition::from_state(&ShareState { start_offset: start, ..Default::default() }, 0)
    }

    #[test]
    fn two_members_get_disjoint_records_and_the_start_moves_over_the_done_prefix() {
        let mut p = fresh(0);
        let now = Instant::now();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let (runs, used) = p.acquire(&a, &[batch(0, 4), batch(5, 9)], 5, now, &limits());
        assert_eq!(runs, vec![Acquired { first_offset: 0, last_offset: 4, delivery_count: 1 }]);
        assert_eq!(used, vec![true, false]);
        let (runs, _) = p.acquire(&b, &[batch(0, 4), batch(5, 9)], 100, now, &limits());
        assert_eq!(runs, vec![Acquired { first_offset: 5, last_offset: 9, delivery_count: 1 }]);
        let mut dead = Vec::new();
        assert_eq!(
            p.acknowledge("b", &ack(0, 0, &[ACK_ACCEPT]), now, &limits(), &mut dead),
            Err(vltava_protocol::ResponseError::InvalidRecordState)
        );
        p.acknowledge("a", &ack(0, 4, &[ACK_ACCEPT]), now, &limits(), &mut dead).unwrap();
        assert_eq!(p.start_offset(), 5);
        p.acknowledge("b", &ack(5, 9, &[ACK_ACCEPT]), now, &limits(), &mut dead).unwrap();
        assert_eq!(p.start_offset(), 10);
        assert!(dead.is_empty());
    }

    #[test]
    fn release_redelivers_until_the_delivery_limit_then_archives() {
        let mut p = fresh(0);
        let now = Instant::now();
        let a: Arc<str> = "a".into();
        let mut dead = Vec::new();
        p.acquire(&a, &[batch(0, 0)], 10, now, &limits());
        p.acknowledge("a", &ack(0, 0, &[ACK_RELEASE]), now, &limits(), &mut dead).unwrap();
        assert_eq!(p.state_of(0), Some(("available", 1)));
        let (runs, _) = p.acquire(&a, &[batch(0, 0)], 10, now, &limits());
        assert_eq!(runs[0].delivery_count, 2);
        p.acknowledge("a", &ack(0, 0, &[ACK_RELEASE]), now, &limits(), &mut dead).unwrap();
        assert_eq!(dead, vec![DeadLetter { offset: 0, delivery_count: 2, reason: DeadLetterReason::DeliveryLimit }]);
        assert_eq!(p.start_offset(), 1);
    }

    #[test]
    fn expired_locks_and_backoff() {
        let mut p = fresh(0);
        let now = Instant::now();
        let a: Arc<str> = "a".into();
        let l = Limits { redelivery_backoff: Duration::from_secs(5), ..limits() };
        p.acquire(&a, &[batch(0, 1)], 10, now, &l);
        let mut dead = Vec::new();
        assert!(!p.expire(now + Duration::from_secs(29), &l, &mut dead));
        assert!(p.expire(now + Duration::from_secs(30), &l, &mut dead));
        assert_eq!(p.state_of(0), Some(("available", 1)));
        // held back by the backoff
        let later = now + Duration::from_secs(31);
        assert_eq!(p.acquire(&a, &[batch(0, 1)], 10, later, &l).0, vec![]);
        assert_eq!(p.next_change(), Some(now + Duration::from_secs(35)));
        let (runs, _) = p.acquire(&a, &[batch(0, 1)], 10, now + Duration::from_secs(35), &l);
        assert_eq!(runs, vec![Acquired { first_offset: 0, last_offset: 1, delivery_count: 2 }]);
    }

    #[test]
    fn reject_goes_to_the_dead_letters_and_state_round_trips() {
        let mut p = fresh(3);
        let now = Instant::now();
        let a: Arc<str> = "a".into();
        let mut dead = Vec::new();
        p.acquire(&a, &[batch(3, 6)], 10, now, &limits());
        p.acknowledge("a", &ack(3, 6, &[ACK_ACCEPT, ACK_REJECT, ACK_RELEASE, ACK_ACCEPT]), now, &limits(), &mut dead)
            .unwrap();
        assert_eq!(dead, vec![DeadLetter { offset: 4, delivery_count: 1, reason: DeadLetterReason::Rejected }]);
        let state = p.to_state();
        assert_eq!(state.start_offset, 5);
        let back = SharePartition::from_state(&state, 1);
        assert_eq!(back.state_of(5), Some(("available", 1)));
        assert_eq!(back.state_of(6), Some(("acknowledged", 1)));
        assert_eq!(back.start_offset(), 5);
    }

    #[test]
    fn bad_ranges_are_refused_without_walking_them() {
        let mut p = fresh(0);
        let now = Instant::now();
        let a: Arc<str> = "a".into();
        p.acquire(&a, &[batch(0, 1)], 10, now, &limits());
        let mut dead = Vec::new();
        let refused = |p: &mut SharePartition, first, last, types: &[i8], dead: &mut Vec<DeadLetter>| {
            p.acknowledge("a", &ack(first, last, types), now, &limits(), dead).unwrap_err()
        };
        use vltava_protocol::ResponseError::{InvalidRecordState, InvalidRequest};
        assert_eq!(refused(&mut p, 0, i64::MAX, &[ACK_ACCEPT], &mut dead), InvalidRecordState);
        assert_eq!(refused(&mut p, i64::MIN, 1, &[ACK_ACCEPT], &mut dead), InvalidRequest);
        assert_eq!(refused(&mut p, 1, 0, &[ACK_ACCEPT], &mut dead), InvalidRequest);
        assert_eq!(refused(&mut p, 0, 1, &[ACK_ACCEPT, ACK_ACCEPT, ACK_ACCEPT], &mut dead), InvalidRequest);
        assert_eq!(refused(&mut p, 0, 1, &[9], &mut dead), InvalidRequest);
        p.acknowledge("a", &ack(0, 1, &[ACK_ACCEPT, ACK_RENEW]), now, &limits(), &mut dead).unwrap();
        assert_eq!(p.start_offset(), 1);
    }

    #[test]
    fn the_lock_limit_bounds_new_acquisitions() {
        let mut p = fresh(0);
        let a: Arc<str> = "a".into();
        let l = Limits { max_locks: 3, ..limits() };
        let (runs, _) = p.acquire(&a, &[batch(0, 9)], 100, Instant::now(), &l);
        assert_eq!(runs, vec![Acquired { first_offset: 0, last_offset: 2, delivery_count: 1 }]);
        assert_eq!(p.first_acquirable(Instant::now(), &l), None);
    }
}
