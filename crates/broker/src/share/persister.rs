//! The contract between share partitions (on the partition leaders) and
//! the share coordinator that keeps their state in `__share_group_state`
//! (Kafka's `Persister`). A share partition reads its state once when it
//! is first used on this leader, then writes every change before
//! answering the acknowledgement that caused it.

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;
use vltava_protocol::ResponseError;

/// A state operation in flight.
pub type PersistFuture<T> = Pin<Box<dyn Future<Output = Result<T, ResponseError>> + Send>>;

/// Kafka's persisted delivery states (`RecordState`): acquired records are
/// persisted as available (their lock does not survive the leader).
pub const AVAILABLE: u8 = 0;
pub const ACKNOWLEDGED: u8 = 2;
pub const ARCHIVED: u8 = 4;

/// One share partition of one group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// A run of offsets with one delivery state and count (`StateBatch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_state: u8,
    pub delivery_count: i16,
}

/// A share partition's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareState {
    /// Bumped when the state is reset (AlterShareGroupOffsets, delete).
    pub state_epoch: i32,
    /// The partition leader epoch of the last writer (fences old leaders).
    pub leader_epoch: i32,
    /// Every offset below it is done (acknowledged or archived).
    pub start_offset: i64,
    /// Offsets at or above `start_offset` whose state is not AVAILABLE with
    /// count 0, in offset order, not overlapping.
    pub batches: Vec<StateBatch>,
}

/// Where share partition state lives. Errors are Kafka's:
/// NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS
/// (retry), FENCED_LEADER_EPOCH (a newer leader wrote), FENCED_STATE_EPOCH
/// (the state was reset meanwhile), KAFKA_STORAGE_ERROR.
pub trait SharePersister: Send + Sync {
    /// Creates the state at `start_offset` (InitializeShareGroupState):
    /// a new state epoch, no batches. Replaces any existing state.
    fn initialize(&self, key: ShareKey, state_epoch: i32, start_offset: i64) -> PersistFuture<()>;
    /// The state (ReadShareGroupState), `None` when never initialized.
    /// Records `leader_epoch` as the current writer.
    fn read(&self, key: ShareKey, leader_epoch: i32) -> PersistFuture<Option<ShareState>>;
    /// Applies a change (WriteShareGroupState): the new start offset and the
    /// batches whose state changed; stored batches below the start offset
    /// are dropped and the given ones override the ranges they cover.
    /// Refused with FENCED_LEADER_EPOCH below the recorded leader epoch and
    /// FENCED_STATE_EPOCH when `state.state_epoch` is not the stored one.
    fn write(&self, key: ShareKey, change: ShareState) -> PersistFuture<()>;
    /// (state epoch, start offset) without the batches
    /// (ReadShareGroupStateSummary), `None` when never initialized.
    fn summary(&self, key: ShareKey) -> PersistFuture<Option<(i32, i64)>>;
    /// Removes the state (DeleteShareGroupState).
    fn delete(&self, key: ShareKey) -> PersistFuture<()>;
    /// (state epoch, recorded leader epoch, start offset), for the admin
    /// APIs; the leader epoch is -1 where the persister does not know it.
    fn summary_with_leader_epoch(&self, key: ShareKey) -> PersistFuture<Option<(i32, i32, i64)>> {
        let summary = self.summary(key);
        Box::pin(async move { Ok(summary.await?.map(|(state_epoch, start)| (state_epoch, -1, start))) })
    }
}

/// State kept in memory only: what share partitions use until the share
/// coordinator is wired in, and in unit tests. Not durable.
#[derive(Default)]
pub struct MemoryPersister {
    states: parking_lot::Mutex<std::collections::HashMap<ShareKey, ShareState>>,
}

impl SharePersister for MemoryPersister {
    fn initialize(&self, key: ShareKey, state_epoch: i32, start_offset: i64) -> PersistFuture<()> {
        let state = ShareState { state_epoch, start_offset, ..Default::default() };
        self.states.lock().insert(key, state);
        Box::pin(async { Ok(()) })
    }

    fn read(&self, key: ShareKey, leader_epoch: i32) -> PersistFuture<Option<ShareState>> {
        let mut states = self.states.lock();
        let found = states.get_mut(&key).map(|s| {
            s.leader_epoch = s.leader_epoch.max(leader_epoch);
            s.clone()
        });
        Box::pin(async move { Ok(found) })
    }

    fn write(&self, key: ShareKey, change: ShareState) -> PersistFuture<()> {
        let result = match self.states.lock().get_mut(&key) {
            None => Err(ResponseError::InvalidRequest),
            Some(s) if change.leader_epoch < s.leader_epoch => Err(ResponseError::FencedLeaderEpoch),
            Some(s) if change.state_epoch != s.state_epoch => Err(ResponseError::FencedStateEpoch),
            Some(s) => {
                merge(s, change);
                Ok(())
            }
        };
        Box::pin(async move { result })
    }

    fn summary(&self, key: ShareKey) -> PersistFuture<Option<(i32, i64)>> {
        let found = self.states.lock().get(&key).map(|s| (s.state_epoch, s.start_offset));
        Box::pin(async move { Ok(found) })
    }

    fn delete(&self, key: ShareKey) -> PersistFuture<()> {
        self.states.lock().remove(&key);
        Box::pin(async { Ok(()) })
    }
}

/// Applies a write to a stored state: the new start offset and leader
/// epoch; batches below the start offset dropped, the changed ranges
/// replaced by the given batches.
pub fn merge(stored: &mut ShareState, change: ShareState) {
    stored.leader_epoch = change.leader_epoch;
    stored.start_offset = stored.start_offset.max(change.start_offset);
    let start = stored.start_offset;
    let mut out: Vec<StateBatch> = Vec::with_capacity(stored.batches.len() + change.batches.len());
    for b in stored.batches.drain(..) {
        // the parts of a stored batch that no changed batch covers
        let mut pieces = vec![b];
        for c in &change.batches {
            pieces = pieces
                .into_iter()
                .flat_map(|p| {
                    let mut keep = Vec::new();
                    if p.first_offset < c.first_offset {
                        keep.push(StateBatch { last_offset: p.last_offset.min(c.first_offset - 1), ..p.clone() });
                    }
                    if p.last_offset > c.last_offset {
                        keep.push(StateBatch { first_offset: p.first_offset.max(c.last_offset + 1), ..p.clone() });
                    }
                    keep
                })
                .collect();
        }
        out.extend(pieces);
    }
    out.extend(change.batches);
    out.retain(|b| b.last_offset >= start);
    for b in &mut out {
        b.first_offset = b.first_offset.max(start);
    }
    out.sort_by_key(|b| b.first_offset);
    stored.batches = out;
}

/// What a share partition's state says of the offsets at or above its start
/// offset (for `vltava group describe` and the console).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Delivered at least once and not finished: acquired now, released, or
    /// whose lock expired (persisted as available with a count above 0).
    pub in_flight: i64,
    pub acknowledged: i64,
    pub archived: i64,
}

impl DeliveryCounts {
    /// Counts the offsets of `batches` (first, last, delivery state, delivery
    /// count: a ReadShareGroupState answer's or a [`ShareState`]'s) at or
    /// above `start_offset`.
    pub fn of(start_offset: i64, batches: impl IntoIterator<Item = (i64, i64, u8, i16)>) -> DeliveryCounts {
        let mut c = DeliveryCounts::default();
        for (first, last, state, count) in batches {
            let n = last - first.max(start_offset) + 1;
            if n <= 0 {
                continue;
            }
            match state {
                ACKNOWLEDGED => c.acknowledged += n,
                ARCHIVED => c.archived += n,
                AVAILABLE if count > 0 => c.in_flight += n,
                _ => {}
            }
        }
        c
    }

    /// A share partition's lag (KIP-1226): the offsets from the start offset
    /// to the high watermark whose delivery is not complete. Without counts,
    /// every offset from the start offset on.
    pub fn lag(counts: Option<DeliveryCounts>, start_offset: i64, high_watermark: i64) -> i64 {
        let complete = counts.map_or(0, |c| c.acknowledged + c.archived);
        (high_watermark - start_offset - complete).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_counts_and_lag_count_only_offsets_at_or_above_the_start() {
        let batches = [
            (0, 9, ACKNOWLEDGED, 1),   // 5..=9 above the start
            (10, 11, ARCHIVED, 5),     // 2
            (12, 14, AVAILABLE, 2),    // in flight: 3
            (15, 15, AVAILABLE, 0),    // never delivered: not counted
            (16, 19, ACKNOWLEDGED, 1), // 4
        ];
        let c = DeliveryCounts::of(5, batches);
        assert_eq!(c, DeliveryCounts { in_flight: 3, acknowledged: 9, archived: 2 });
        // offsets 5..25: 20, of which 11 are done
        assert_eq!(DeliveryCounts::lag(Some(c), 5, 25), 9);
        assert_eq!(DeliveryCounts::lag(None, 5, 25), 20);
        assert_eq!(DeliveryCounts::lag(Some(c), 5, 5), 0, "never negative");
    }

    fn batch(first: i64, last: i64, state: u8, count: i16) -> StateBatch {
        StateBatch { first_offset: first, last_offset: last, delivery_state: state, delivery_count: count }
    }

    #[test]
    fn a_write_overrides_what_it_covers_and_drops_what_is_below_the_start() {
        let mut stored =
            ShareState { start_offset: 0, batches: vec![batch(0, 9, ACKNOWLEDGED, 1)], ..Default::default() };
        merge(
            &mut stored,
            ShareState { start_offset: 3, batches: vec![batch(5, 6, ARCHIVED, 5)], ..Default::default() },
        );
        assert_eq!(stored.start_offset, 3);
        assert_eq!(
            stored.batches,
            vec![batch(3, 4, ACKNOWLEDGED, 1), batch(5, 6, ARCHIVED, 5), batch(7, 9, ACKNOWLEDGED, 1)]
        );
    }

    #[test]
    fn memory_persister_fences_old_leaders_and_reset_states() {
        let p = MemoryPersister::default();
        let key = ShareKey { group: "g".into(), topic_id: Uuid::nil(), partition: 0 };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            p.initialize(key.clone(), 1, 0).await.unwrap();
            assert_eq!(p.read(key.clone(), 4).await.unwrap().unwrap().leader_epoch, 4);
            let stale = ShareState { state_epoch: 1, leader_epoch: 3, ..Default::default() };
            assert_eq!(p.write(key.clone(), stale).await, Err(ResponseError::FencedLeaderEpoch));
            let reset = ShareState { state_epoch: 0, leader_epoch: 4, ..Default::default() };
            assert_eq!(p.write(key.clone(), reset).await, Err(ResponseError::FencedStateEpoch));
            let ok = ShareState { state_epoch: 1, leader_epoch: 4, start_offset: 2, ..Default::default() };
            p.write(key.clone(), ok).await.unwrap();
            assert_eq!(p.summary(key).await.unwrap(), Some((1, 2)));
        });
    }
}
