//! A voter change the quorum leader carries out (KIP-853's AddRaftVoter,
//! RemoveRaftVoter, UpdateRaftVoter), as a state machine without I/O: it
//! is given what the leader knows ([`LeaderView`]) and `now`, and says what
//! to do next ([`Step`]). The driver proposes what it asks and tells it the
//! index of the entry; raft-rs takes one membership change at a time.
//!
//! AddRaftVoter waits for the node to have joined (a learner: Kafka's
//! observer), then until the learner's log reaches the commit index of the
//! moment it was first seen a learner (Kafka's "caught up"), then promotes
//! it; past the deadline it fails with REQUEST_TIMED_OUT, as Kafka's does,
//! having written nothing.

use std::time::{Duration, Instant};

use crate::membership::{Membership, VoterChange};

/// A voter change asked of the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterOp {
    /// Make `id` a voter once it has joined and its log has caught up.
    Add { id: i32, endpoint: String },
    /// Remove a voter (or an observer).
    Remove { id: i32 },
    /// Record a voter's new controller endpoint.
    Update { id: i32, endpoint: String },
}

/// Why a voter change was refused; each is one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterError {
    /// This node does not lead the quorum (any more).
    NotLeader,
    /// AddRaftVoter of a voter.
    Duplicate,
    /// Remove or update of a node that is no voter.
    NotFound,
    /// Another voter change is in flight, or this one did not finish in
    /// time (the new voter did not catch up).
    TimedOut(String),
    Invalid(String),
}

/// What the leader knows when the change moves on.
pub struct LeaderView<'a> {
    pub is_leader: bool,
    /// A membership change is proposed and not applied yet.
    pub pending_change: bool,
    pub membership: &'a Membership,
    pub applied_index: u64,
    pub commit_index: u64,
    /// How far the leader knows each member's log matches its own.
    pub matched: &'a dyn Fn(i32) -> u64,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Propose this change, then [`VoterChangeInFlight::proposed`] its index.
    Propose(VoterChange),
    Done(Result<(), VoterError>),
}

#[derive(Debug)]
pub struct VoterChangeInFlight {
    pub op: VoterOp,
    deadline: Instant,
    /// The index of the change proposed last, until it is applied.
    waiting_for: Option<u64>,
    /// The change proposed last is the one the operation asked for.
    final_proposed: bool,
    /// AddRaftVoter: the learner must have the log up to here.
    catch_up_to: Option<u64>,
}

impl VoterChangeInFlight {
    /// Starts `op`, or refuses it at once. `busy`: another voter change is
    /// in flight.
    pub fn start(
        op: VoterOp,
        view: &LeaderView<'_>,
        busy: bool,
        now: Instant,
        timeout: Duration,
    ) -> Result<Self, VoterError> {
        let m = view.membership;
        let refused = match &op {
            _ if !view.is_leader => Some(VoterError::NotLeader),
            _ if busy || view.pending_change => {
                Some(VoterError::TimedOut("another voter change is in flight; try again once it completes".into()))
            }
            VoterOp::Add { id, .. } if m.is_voter(*id) => Some(VoterError::Duplicate),
            VoterOp::Add { endpoint, .. } | VoterOp::Update { endpoint, .. } if endpoint.is_empty() => {
                Some(VoterError::Invalid("no controller endpoint given".into()))
            }
            VoterOp::Remove { id } if !m.is_member(*id) => Some(VoterError::NotFound),
            VoterOp::Remove { id } if m.voters == [*id] => {
                Some(VoterError::Invalid(format!("node {id} is the last voter; a quorum cannot be empty")))
            }
            VoterOp::Update { id, .. } if !m.is_voter(*id) => Some(VoterError::NotFound),
            _ => None,
        };
        match refused {
            Some(e) => Err(e),
            None => {
                Ok(Self { op, deadline: now + timeout, waiting_for: None, final_proposed: false, catch_up_to: None })
            }
        }
    }

    /// The change asked for by the last [`Step::Propose`] is the entry at
    /// `index`.
    pub fn proposed(&mut self, index: u64) {
        self.waiting_for = Some(index);
    }

    pub fn next(&mut self, view: &LeaderView<'_>, now: Instant) -> Step {
        let late = now >= self.deadline;
        let applied = self.waiting_for.is_some_and(|index| view.applied_index >= index);
        // applied before leading stopped: a leader that removed itself no
        // longer leads once its removal applies, and its change is done
        if applied && self.final_proposed {
            return Step::Done(Ok(()));
        }
        if !view.is_leader {
            return Step::Done(Err(VoterError::NotLeader));
        }
        if self.waiting_for.is_some() {
            if !applied {
                return if late {
                    Step::Done(Err(VoterError::TimedOut("the voter change did not commit in time".into())))
                } else {
                    Step::Wait
                };
            }
            self.waiting_for = None;
        }
        if view.pending_change {
            // a learner added on its own join request: wait for it
            return if late {
                Step::Done(Err(VoterError::TimedOut("another change did not commit".into())))
            } else {
                Step::Wait
            };
        }
        let m = view.membership;
        let (change, last) = match &self.op {
            VoterOp::Add { id, .. } if m.is_voter(*id) => return Step::Done(Ok(())),
            // as Kafka's leader waits for the new voter to fetch: nothing is
            // written for a node that never shows up
            VoterOp::Add { id, .. } if !m.is_member(*id) => {
                return if late {
                    Step::Done(Err(VoterError::TimedOut(format!(
                        "node {id} did not join the metadata quorum in time: start it with \
                         controller.quorum.bootstrap.servers naming the controllers"
                    ))))
                } else {
                    Step::Wait
                };
            }
            VoterOp::Add { id, endpoint } => {
                let target = *self.catch_up_to.get_or_insert(view.commit_index);
                let has = (view.matched)(*id);
                if has < target {
                    return if late {
                        Step::Done(Err(VoterError::TimedOut(format!(
                            "node {id} did not catch up with the metadata log in time (it has {has} of {target} \
                             entries): is it running with controller.quorum.bootstrap.servers?"
                        ))))
                    } else {
                        Step::Wait
                    };
                }
                (VoterChange::AddVoter { id: *id, endpoint: endpoint.clone() }, true)
            }
            VoterOp::Remove { id } => (VoterChange::Remove { id: *id }, true),
            // raft-rs applies adding a voter again as no change: the entry
            // carries the new endpoint
            VoterOp::Update { id, endpoint } => (VoterChange::AddVoter { id: *id, endpoint: endpoint.clone() }, true),
        };
        self.final_proposed = last;
        Step::Propose(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(voters: &[i32], learners: &[i32]) -> Membership {
        Membership { voters: voters.to_vec(), learners: learners.to_vec(), ..Default::default() }
    }

    fn view<'a>(m: &'a Membership, applied: u64, matched: &'a dyn Fn(i32) -> u64) -> LeaderView<'a> {
        LeaderView {
            is_leader: true,
            pending_change: false,
            membership: m,
            applied_index: applied,
            commit_index: 50,
            matched,
        }
    }

    const NO_LOG: &dyn Fn(i32) -> u64 = &|_| 0;

    #[test]
    fn refusals_are_kafkas_errors() {
        let now = Instant::now();
        let t = Duration::from_secs(5);
        let m = membership(&[1, 2, 3], &[4]);
        let v = view(&m, 10, NO_LOG);
        let add = |id| VoterOp::Add { id, endpoint: "h:1".into() };
        assert_eq!(VoterChangeInFlight::start(add(2), &v, false, now, t).unwrap_err(), VoterError::Duplicate);
        assert!(matches!(VoterChangeInFlight::start(add(4), &v, true, now, t), Err(VoterError::TimedOut(_))));
        let empty = VoterOp::Add { id: 5, endpoint: String::new() };
        assert!(matches!(VoterChangeInFlight::start(empty, &v, false, now, t), Err(VoterError::Invalid(_))));
        let remove = |id| VoterOp::Remove { id };
        assert_eq!(VoterChangeInFlight::start(remove(9), &v, false, now, t).unwrap_err(), VoterError::NotFound);
        assert!(VoterChangeInFlight::start(remove(4), &v, false, now, t).is_ok(), "an observer may be removed");
        let update = VoterOp::Update { id: 4, endpoint: "h:2".into() };
        assert_eq!(VoterChangeInFlight::start(update, &v, false, now, t).unwrap_err(), VoterError::NotFound);
        let alone = membership(&[1], &[]);
        let v1 = view(&alone, 10, NO_LOG);
        assert!(matches!(VoterChangeInFlight::start(remove(1), &v1, false, now, t), Err(VoterError::Invalid(_))));
        let follower = LeaderView { is_leader: false, ..view(&m, 10, NO_LOG) };
        assert_eq!(VoterChangeInFlight::start(add(5), &follower, false, now, t).unwrap_err(), VoterError::NotLeader);
    }

    #[test]
    fn add_waits_for_the_learner_then_its_catching_up_then_promotes_it() {
        let now = Instant::now();
        let op = VoterOp::Add { id: 4, endpoint: "h4:9093".into() };
        let m = membership(&[1, 2, 3], &[]);
        let mut c = VoterChangeInFlight::start(op, &view(&m, 10, NO_LOG), false, now, Duration::from_secs(30)).unwrap();
        assert_eq!(c.next(&view(&m, 10, NO_LOG), now), Step::Wait, "not joined yet: nothing proposed");
        // it joined (a learner added on its own request is being applied)
        let joining = LeaderView { pending_change: true, ..view(&m, 10, NO_LOG) };
        assert_eq!(c.next(&joining, now), Step::Wait);
        let m = membership(&[1, 2, 3], &[4]);
        // the commit index (50) when it is first seen a learner is the mark to reach
        let behind: &dyn Fn(i32) -> u64 = &|_| 49;
        assert_eq!(c.next(&view(&m, 11, behind), now), Step::Wait);
        let caught_up: &dyn Fn(i32) -> u64 = &|_| 50;
        let promote = c.next(&view(&m, 11, caught_up), now);
        assert_eq!(promote, Step::Propose(VoterChange::AddVoter { id: 4, endpoint: "h4:9093".into() }));
        c.proposed(12);
        assert_eq!(c.next(&view(&m, 11, caught_up), now), Step::Wait, "not applied yet");
        let m = membership(&[1, 2, 3, 4], &[]);
        assert_eq!(c.next(&view(&m, 12, caught_up), now), Step::Done(Ok(())));
    }

    #[test]
    fn a_node_that_never_joins_times_out_and_nothing_is_written() {
        let now = Instant::now();
        let m = membership(&[1, 2, 3], &[]);
        let op = VoterOp::Add { id: 7, endpoint: "h7:9093".into() };
        let mut c = VoterChangeInFlight::start(op, &view(&m, 10, NO_LOG), false, now, Duration::from_secs(3)).unwrap();
        assert_eq!(c.next(&view(&m, 10, NO_LOG), now), Step::Wait);
        let later = now + Duration::from_secs(3);
        let step = c.next(&view(&m, 10, NO_LOG), later);
        assert!(
            matches!(&step, Step::Done(Err(VoterError::TimedOut(why))) if why.contains("did not join")),
            "{step:?}"
        );
    }

    #[test]
    fn a_learner_that_does_not_catch_up_times_out() {
        let now = Instant::now();
        let m = membership(&[1, 2, 3], &[4]);
        let op = VoterOp::Add { id: 4, endpoint: "h4:9093".into() };
        let mut c = VoterChangeInFlight::start(op, &view(&m, 10, NO_LOG), false, now, Duration::from_secs(3)).unwrap();
        assert_eq!(c.next(&view(&m, 10, NO_LOG), now), Step::Wait);
        let later = now + Duration::from_secs(3);
        assert!(
            matches!(c.next(&view(&m, 10, NO_LOG), later), Step::Done(Err(VoterError::TimedOut(why))) if why.contains("catch up"))
        );
    }

    /// A removal of `id` from voters 1, 2, 3, proposed as entry 11.
    fn removal_proposed(id: i32, now: Instant) -> VoterChangeInFlight {
        let m = membership(&[1, 2, 3], &[]);
        let op = VoterOp::Remove { id };
        let mut c = VoterChangeInFlight::start(op, &view(&m, 10, NO_LOG), false, now, Duration::from_secs(3)).unwrap();
        assert_eq!(c.next(&view(&m, 10, NO_LOG), now), Step::Propose(VoterChange::Remove { id }));
        c.proposed(11);
        c
    }

    #[test]
    fn a_leader_that_removed_itself_reports_success() {
        let now = Instant::now();
        let mut c = removal_proposed(1, now);
        let m = membership(&[2, 3], &[]);
        let resigning = LeaderView { is_leader: false, ..view(&m, 11, NO_LOG) };
        assert_eq!(c.next(&resigning, now), Step::Done(Ok(())));
    }

    #[test]
    fn losing_the_leadership_ends_the_change() {
        let now = Instant::now();
        let mut c = removal_proposed(3, now);
        let m = membership(&[1, 2, 3], &[]);
        let follower = LeaderView { is_leader: false, ..view(&m, 10, NO_LOG) };
        assert_eq!(c.next(&follower, now), Step::Done(Err(VoterError::NotLeader)));
    }
}
