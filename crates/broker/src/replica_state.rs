//! One partition replica's role and the leader's view of its followers, as
//! a state machine without I/O (like `group/state.rs`): it is given the
//! local log end offset and `now`, and answers with role changes, high
//! watermarks and ISR changes to propose. `partition.rs` is its I/O shell
//! (the log, the waits, the wake-ups).
//!
//! Kafka's rules: the leader tracks each follower's log end offset from
//! its fetches; the high watermark is the smallest log end offset in the
//! ISR (the leader's included). A follower is caught up when it fetched
//! from the leader's log end; one not caught up for
//! `replica.lag.time.max.ms` leaves the ISR, and a follower that reaches
//! the high watermark (and the start of the current leader epoch) is
//! proposed back, counted in the ISR from the proposal on (KIP-497's
//! "maximal ISR"), so nothing is acknowledged that a member of the
//! committed ISR may lack.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vltava_metadata::PartitionImage;

use crate::limits::ISR_CHANGE_RESEND_AFTER;

/// Why an acks=all wait ended without success.
pub type ReplicationError = vltava_protocol::ResponseError;

/// How a metadata change moved this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    None,
    BecameLeader,
    /// Follow `leader` from now on (truncating first).
    BecameFollower {
        leader: i32,
    },
    /// Same role and epoch; the ISR or replica set changed.
    Updated,
}

/// An ISR the leader proposes, made at its leader and partition epochs
/// (the controller applies it only if they still hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset).
    leo: i64,
    last_fetch: Instant,
    /// The leader's log end offset at that fetch.
    leader_leo_at_last_fetch: i64,
    last_caught_up: Instant,
}

impl FollowerProgress {
    /// A follower not heard from yet: caught up as of `now` (it gets a full
    /// `replica.lag.time.max.ms` to fetch), log end unknown.
    fn new(now: Instant, leader_leo: i64) -> Self {
        Self { leo: -1, last_fetch: now, leader_leo_at_last_fetch: leader_leo, last_caught_up: now }
    }
}

/// What the metadata image says about this partition, and the leader's
/// view of its followers.
#[derive(Debug, Clone)]
pub struct ReplicaState {
    /// This broker.
    node_id: i32,
    /// The leader's node id, -1 when there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Leader only: progress of each follower.
    followers: HashMap<i32, FollowerProgress>,
    /// Leader only: log end offset when this leader epoch began.
    epoch_start_offset: i64,
    /// Leader only: when an ISR change was last proposed.
    isr_change_sent: Option<Instant>,
}

impl ReplicaState {
    /// A replica whose role is not known yet (`leo`: its log end offset).
    pub fn new(node_id: i32, leo: i64) -> Self {
        Self {
            node_id,
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            followers: HashMap::new(),
            epoch_start_offset: leo,
            isr_change_sent: None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.node_id
    }

    /// Takes what the image says of the partition.
    pub fn apply(&mut self, p: &PartitionImage, leo: i64, now: Instant) -> RoleChange {
        let was_leader = self.is_leader();
        let same_epoch = self.leader_epoch == p.leader_epoch && self.leader == p.leader;
        if same_epoch && self.partition_epoch == p.partition_epoch {
            return RoleChange::None;
        }
        self.replicas = p.replicas.clone();
        self.isr = p.isr.clone();
        self.partition_epoch = p.partition_epoch;
        self.isr_change_sent = None;
        let change = if same_epoch {
            RoleChange::Updated
        } else {
            self.leader = p.leader;
            self.leader_epoch = p.leader_epoch;
            // progress is unknown until each follower fetches again
            self.followers.clear();
            if p.leader == self.node_id {
                self.epoch_start_offset = leo;
                RoleChange::BecameLeader
            } else if was_leader || p.leader >= 0 {
                RoleChange::BecameFollower { leader: p.leader }
            } else {
                RoleChange::Updated
            }
        };
        if self.is_leader() {
            for r in p.replicas.iter().filter(|r| **r != self.node_id) {
                self.followers.entry(*r).or_insert_with(|| FollowerProgress::new(now, leo));
            }
            self.followers.retain(|r, _| p.replicas.contains(r));
        }
        change
    }

    /// Leader: the high watermark the ISR allows, the smallest log end
    /// offset in it (this log's is `leo`); `None` on a follower.
    pub fn high_watermark_bound(&self, leo: i64) -> Option<i64> {
        if !self.is_leader() {
            return None;
        }
        let followers = self.isr.iter().filter(|m| **m != self.node_id);
        Some(followers.map(|m| self.followers.get(m).map(|f| f.leo).unwrap_or(-1)).fold(leo, i64::min))
    }

    /// Leader: a follower fetched from `fetch_offset` while this log ends
    /// at `leo`.
    pub fn on_follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leo: i64,
        now: Instant,
    ) -> Result<(), ReplicationError> {
        if !self.is_leader() || !self.replicas.contains(&replica) {
            return Err(ReplicationError::NotLeaderOrFollower);
        }
        let progress = self.followers.entry(replica).or_insert_with(|| FollowerProgress::new(now, leo));
        if fetch_offset >= leo {
            progress.last_caught_up = now;
        } else if fetch_offset >= progress.leader_leo_at_last_fetch {
            progress.last_caught_up = progress.last_fetch;
        }
        progress.leo = fetch_offset;
        progress.last_fetch = now;
        progress.leader_leo_at_last_fetch = leo;
        Ok(())
    }

    /// Leader, after a follower's fetch counted: the ISR with `replica`
    /// added when it has reached the high watermark `hw` and the start of
    /// this leader epoch (and is `eligible`).
    pub fn isr_to_expand(&mut self, replica: i32, eligible: bool, hw: i64, now: Instant) -> Option<IsrChange> {
        let fetch_offset = self.followers.get(&replica)?.leo;
        let recently_sent = self.isr_change_sent.is_some_and(|t| now.duration_since(t) < ISR_CHANGE_RESEND_AFTER);
        if !eligible
            || self.isr.contains(&replica)
            || fetch_offset < hw
            || fetch_offset < self.epoch_start_offset
            || recently_sent
        {
            return None;
        }
        self.isr_change_sent = Some(now);
        self.isr.push(replica);
        Some(IsrChange {
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            isr: self.isr.clone(),
        })
    }

    /// Leader: the ISR without followers that have not caught up within
    /// `lag_max`, if any must go.
    pub fn isr_to_shrink(&mut self, lag_max: Duration, now: Instant) -> Option<IsrChange> {
        if !self.is_leader() || self.isr.len() <= 1 {
            return None;
        }
        if self.isr_change_sent.is_some_and(|t| now.duration_since(t) < ISR_CHANGE_RESEND_AFTER) {
            return None;
        }
        let lagging = |r: &i32| {
            *r != self.node_id && self.followers.get(r).is_none_or(|f| now.duration_since(f.last_caught_up) > lag_max)
        };
        if !self.isr.iter().any(lagging) {
            return None;
        }
        let isr: Vec<i32> = self.isr.iter().copied().filter(|r| !lagging(r)).collect();
        self.isr_change_sent = Some(now);
        Some(IsrChange { leader_epoch: self.leader_epoch, partition_epoch: self.partition_epoch, isr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(leader: i32, leader_epoch: i32, partition_epoch: i32, isr: &[i32]) -> PartitionImage {
        PartitionImage {
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch,
            target_replicas: None,
        }
    }

    #[test]
    fn roles_follow_the_image_and_a_repeat_changes_nothing() {
        let now = Instant::now();
        let mut st = ReplicaState::new(2, 10);
        assert_eq!(st.apply(&image(1, 0, 0, &[1, 2, 3]), 10, now), RoleChange::BecameFollower { leader: 1 });
        assert_eq!(st.apply(&image(1, 0, 0, &[1, 2, 3]), 10, now), RoleChange::None);
        assert_eq!(st.apply(&image(1, 0, 1, &[1, 2]), 10, now), RoleChange::Updated);
        assert_eq!(st.high_watermark_bound(10), None, "a follower has no say on the high watermark");
        assert_eq!(st.apply(&image(2, 1, 2, &[1, 2]), 12, now), RoleChange::BecameLeader);
        assert!(st.is_leader());
        assert_eq!(st.apply(&image(-1, 2, 3, &[2]), 12, now), RoleChange::BecameFollower { leader: -1 });
        assert!(!st.is_leader());
    }

    #[test]
    fn the_high_watermark_is_the_smallest_log_end_in_the_isr() {
        let now = Instant::now();
        let mut st = ReplicaState::new(1, 0);
        st.apply(&image(1, 0, 0, &[1, 2, 3]), 0, now);
        assert_eq!(st.high_watermark_bound(5), Some(-1), "followers not heard from hold it back");
        st.on_follower_fetch(2, 5, 5, now).unwrap();
        st.on_follower_fetch(3, 3, 5, now).unwrap();
        assert_eq!(st.high_watermark_bound(5), Some(3));
        // a follower outside the ISR does not hold it back
        st.apply(&image(1, 0, 1, &[1, 2]), 5, now);
        assert_eq!(st.high_watermark_bound(5), Some(5));
        assert_eq!(st.on_follower_fetch(4, 5, 5, now), Err(ReplicationError::NotLeaderOrFollower));
    }

    #[test]
    fn a_follower_rejoins_once_caught_up_and_counts_from_the_proposal() {
        let now = Instant::now();
        let mut st = ReplicaState::new(1, 0);
        st.apply(&image(1, 0, 0, &[1, 2]), 0, now);
        st.on_follower_fetch(2, 8, 8, now).unwrap();
        st.on_follower_fetch(3, 6, 8, now).unwrap();
        assert_eq!(st.isr_to_expand(3, true, 8, now), None, "behind the high watermark");
        st.on_follower_fetch(3, 8, 8, now).unwrap();
        assert_eq!(st.isr_to_expand(3, false, 8, now), None, "a fenced follower is not proposed");
        let change = st.isr_to_expand(3, true, 8, now).unwrap();
        assert_eq!(change, IsrChange { leader_epoch: 0, partition_epoch: 0, isr: vec![1, 2, 3] });
        assert_eq!(st.isr, vec![1, 2, 3], "counted before the controller commits it");
        assert_eq!(st.high_watermark_bound(9), Some(8));
    }

    #[test]
    fn lagging_followers_leave_the_isr_and_proposals_are_not_repeated_at_once() {
        let t0 = Instant::now();
        let lag = Duration::from_millis(50);
        let mut st = ReplicaState::new(1, 0);
        st.apply(&image(1, 0, 0, &[1, 2, 3]), 3, t0);
        let t1 = t0 + Duration::from_millis(60);
        st.on_follower_fetch(2, 3, 3, t1).unwrap(); // caught up: at the log end
        let change = st.isr_to_shrink(lag, t1).unwrap();
        assert_eq!(change.isr, vec![1, 2]);
        assert_eq!(st.isr_to_shrink(lag, t1), None, "not proposed again right away");
        // the leader alone is never shrunk
        st.apply(&image(1, 0, 1, &[1]), 3, t1);
        assert_eq!(st.isr_to_shrink(Duration::ZERO, t1 + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_new_leader_epoch_starts_where_the_log_ends() {
        let now = Instant::now();
        let mut st = ReplicaState::new(1, 0);
        st.apply(&image(1, 3, 0, &[1]), 20, now);
        // a follower at the high watermark but before this epoch began
        // is not yet in sync with this leader
        st.apply(&image(1, 3, 1, &[1]), 20, now);
        st.on_follower_fetch(2, 15, 20, now).unwrap();
        assert_eq!(st.isr_to_expand(2, true, 15, now), None);
        st.on_follower_fetch(2, 20, 20, now).unwrap();
        assert!(st.isr_to_expand(2, true, 20, now).is_some());
    }
}
