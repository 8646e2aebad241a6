//! The classic consumer group state machine, as in Kafka's GroupCoordinator:
//! Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead.
//!
//! Pure logic: no I/O and no clock of its own. Every call takes `now`;
//! waiting JoinGroup and SyncGroup requests are oneshot senders kept in the
//! members; deadlines are returned as [`Wake`]s for the coordinator's timer
//! to call back into [`Group::on_wake`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use vltava_protocol::ResponseError;

use super::records::{CommittedOffset, StoredGroup, StoredMember};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Broker settings that shape every group (Kafka's names).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: u64,
    /// `group.max.size`
    pub max_size: usize,
    /// `group.coordinator.rebalance.protocols`
    pub rebalance_protocols: Vec<String>,
    /// `group.consumer.*` (KIP-848)
    pub consumer: crate::group_config::ConsumerGroupSettings,
    /// `group.share.*` (KIP-932)
    pub share: crate::group_config::ShareGroupSettings,
    /// `errors.deadletterqueue.topic.name.prefix`
    pub dead_letter_prefix: String,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: 1000,
            rebalance_protocols: ["classic", "consumer", "share"].map(String::from).to_vec(),
            consumer: Default::default(),
            share: Default::default(),
            dead_letter_prefix: "dlq.".into(),
        }
    }
}

/// What a JoinGroup request carries.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a first join without member id gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// The answer to a JoinGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    /// Only for the leader: every member with its metadata.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub(crate) fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub(crate) fn error(error: ResponseError) -> Self {
        Self { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// A deadline the coordinator must call back at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wake {
    /// A member's session may have expired.
    Session(String),
    /// A member id handed out with MEMBER_ID_REQUIRED may be unused.
    Pending(String),
    /// The join phase of this rebalance may be over.
    Join,
    /// Members that did not SyncGroup in this generation may be gone.
    Sync(i32),
    /// A KIP-848 consumer group member's session may have expired.
    ConsumerSession(String),
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// Session expiry.
    deadline: Instant,
    /// Order of first join: the first member becomes leader.
    join_order: u64,
}

impl Member {
    /// Metadata for `protocol`, empty if the member does not support it.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
    fn session(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms.max(0) as u64)
    }
    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    static_members: HashMap<String, String>,
    pending_members: HashMap<String, Instant>,
    pub offsets: HashMap<(String, i32), CommittedOffset>,
    /// Offsets committed inside open transactions, by producer id: they
    /// count once the transaction commits.
    pub pending_txn_offsets: HashMap<i64, Vec<(String, i32, CommittedOffset)>>,
    join_deadline: Option<Instant>,
    /// The first rebalance of an empty group waits until this instant for
    /// more members (`group.initial.rebalance.delay.ms`), as Kafka's
    /// InitialDelayedJoin: the whole delay even when the members'
    /// rebalance timeout is shorter, then again (at most the delay, at most
    /// what is left of the rebalance timeout) while new members keep coming.
    initial_delay_until: Option<Instant>,
    /// The length of the current initial-delay step and what is left of the
    /// rebalance timeout after it.
    initial_step: Duration,
    initial_remaining: Duration,
    /// A member joined during the current initial-delay step.
    new_member_added: bool,
    /// Set when this is a KIP-848 consumer group (the classic fields are
    /// then unused; offsets are shared).
    pub consumer: Option<super::consumer::ConsumerGroup>,
    /// Members of this generation that have not sent SyncGroup yet; those
    /// still here at `sync_deadline` (the rebalance timeout after the join
    /// phase) are removed, in CompletingRebalance and in Stable alike.
    pending_sync: HashSet<String>,
    sync_deadline: Option<Instant>,
    next_join_order: u64,
    pub state_timestamp_ms: i64,
}

/// What a call changed that the coordinator must act on.
#[derive(Debug, Default)]
pub struct Effects {
    pub wakes: Vec<(Wake, Instant)>,
    /// The group's metadata changed: write a group metadata record.
    pub persist: bool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Group {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            offsets: HashMap::new(),
            pending_txn_offsets: HashMap::new(),
            join_deadline: None,
            initial_delay_until: None,
            initial_step: Duration::ZERO,
            initial_remaining: Duration::ZERO,
            new_member_added: false,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            next_join_order: 0,
            state_timestamp_ms: now_ms(),
            consumer: None,
        }
    }

    /// Restores a group from its stored metadata (broker start). Members
    /// get a fresh session; those that do not come back expire.
    pub fn restore(&mut self, stored: StoredGroup, now: Instant) -> Effects {
        let mut effects = Effects::default();
        self.protocol_type = Some(stored.protocol_type).filter(|p| !p.is_empty());
        self.protocol_name = stored.protocol_name;
        self.generation_id = stored.generation_id;
        self.leader_id = stored.leader_id;
        self.state_timestamp_ms = stored.state_timestamp_ms;
        self.members.clear();
        self.static_members.clear();
        for m in stored.members {
            let protocol = self.protocol_name.clone().unwrap_or_default();
            let member = Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol, m.subscription)],
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                deadline: now + Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                join_order: self.next_join_order,
            };
            self.next_join_order += 1;
            if let Some(iid) = &m.group_instance_id {
                self.static_members.insert(iid.clone(), m.member_id.clone());
            }
            effects.wakes.push((Wake::Session(m.member_id.clone()), member.deadline));
            self.members.insert(m.member_id, member);
        }
        self.state = if self.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        effects
    }

    /// The metadata record for this group's current generation.
    pub fn to_stored(&self) -> StoredGroup {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
            && self.pending_members.is_empty()
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }

    /// Applies or drops a transaction's pending offsets.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        if let Some(pending) = self.pending_txn_offsets.remove(&producer_id) {
            if commit {
                for (topic, partition, committed) in pending {
                    self.offsets.insert((topic, partition), committed);
                }
            }
        }
    }

    fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_timestamp_ms = now_ms();
    }

    /// Protocols every member supports, in the first member's order.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut iter = self.members.values();
        let Some(first) = iter.next() else { return Vec::new() };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in iter {
            candidates.retain(|c| m.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    /// Kafka's vote: each member votes for its most preferred candidate.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes.into_iter().find(|(_, n)| *n == best).map(|(c, _)| c)
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    fn current_join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader_id.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| (m.member_id.clone(), m.group_instance_id.clone(), m.metadata(&protocol)))
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn add_member(&mut self, member_id: String, req: &JoinRequest, waiter: oneshot::Sender<JoinResult>, now: Instant) {
        if self.state == GroupState::PreparingRebalance && self.initial_delay_until.is_some() {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(iid) = &req.group_instance_id {
            self.static_members.insert(iid.clone(), member_id.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: Some(waiter),
            sync_waiter: None,
            deadline: now + Duration::from_millis(req.session_timeout_ms.max(0) as u64),
            join_order: self.next_join_order,
        };
        self.next_join_order += 1;
        self.members.insert(member_id, member);
    }

    fn update_member(&mut self, member_id: &str, req: &JoinRequest, waiter: oneshot::Sender<JoinResult>) {
        let m = self.members.get_mut(member_id).expect("member exists");
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        if let Some(old) = m.join_waiter.replace(waiter) {
            let _ = old.send(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        }
    }

    /// Handles JoinGroup. The result arrives on `waiter`, at once or when
    /// the rebalance completes.
    pub fn join(
        &mut self,
        req: JoinRequest,
        waiter: oneshot::Sender<JoinResult>,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Effects {
        let mut effects = Effects::default();
        let reply = |waiter: oneshot::Sender<JoinResult>, e: ResponseError| {
            let _ = waiter.send(JoinResult::error(e, &req.member_id));
        };
        if self.state == GroupState::Dead {
            reply(waiter, ResponseError::CoordinatorNotAvailable);
            return effects;
        }
        if req.session_timeout_ms < cfg.min_session_timeout_ms || req.session_timeout_ms > cfg.max_session_timeout_ms {
            reply(waiter, ResponseError::InvalidSessionTimeout);
            return effects;
        }
        if req.protocol_type.is_empty()
            || req.protocols.is_empty()
            || !self.supports(&req.protocol_type, &req.protocols)
        {
            reply(waiter, ResponseError::InconsistentGroupProtocol);
            return effects;
        }
        if req.member_id.is_empty() {
            return self.join_unknown_member(req, waiter, now, cfg);
        }
        if let Some(iid) = &req.group_instance_id {
            if let Some(known) = self.static_members.get(iid) {
                if known != &req.member_id {
                    reply(waiter, ResponseError::FencedInstanceId);
                    return effects;
                }
            }
        }
        if self.pending_members.remove(&req.member_id).is_some() {
            let member_id = req.member_id.clone();
            self.add_member(member_id, &req, waiter, now);
            self.rebalance_or_wait(now, cfg, &mut effects);
            return effects;
        }
        let Some(member) = self.members.get(&req.member_id) else {
            reply(waiter, ResponseError::UnknownMemberId);
            return effects;
        };
        let unchanged = member.same_protocols(&req.protocols);
        let is_leader = self.leader_id.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(&req.member_id, &req, waiter);
                self.try_complete_join(now, cfg, &mut effects);
            }
            GroupState::CompletingRebalance if unchanged => {
                let _ = waiter.send(self.current_join_result(&req.member_id));
            }
            GroupState::Stable if unchanged && !is_leader => {
                let _ = waiter.send(self.current_join_result(&req.member_id));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(&req.member_id, &req, waiter);
                self.prepare_rebalance(now, cfg, &mut effects);
            }
            GroupState::Empty | GroupState::Dead => reply(waiter, ResponseError::UnknownMemberId),
        }
        effects
    }

    fn join_unknown_member(
        &mut self,
        req: JoinRequest,
        waiter: oneshot::Sender<JoinResult>,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Effects {
        let mut effects = Effects::default();
        if self.members.len() + self.pending_members.len() >= cfg.max_size {
            let _ = waiter.send(JoinResult::error(ResponseError::GroupMaxSizeReached, ""));
            return effects;
        }
        let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
        if let Some(iid) = req.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&iid).cloned() {
                return self.replace_static_member(&old_id, new_id, req, waiter, now, cfg);
            }
            self.add_member(new_id, &req, waiter, now);
            self.rebalance_or_wait(now, cfg, &mut effects);
            return effects;
        }
        if req.require_known_member_id {
            let deadline = now + Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            self.pending_members.insert(new_id.clone(), deadline);
            effects.wakes.push((Wake::Pending(new_id.clone()), deadline));
            let _ = waiter.send(JoinResult::error(ResponseError::MemberIdRequired, &new_id));
            return effects;
        }
        self.add_member(new_id, &req, waiter, now);
        self.rebalance_or_wait(now, cfg, &mut effects);
        effects
    }

    /// A static member came back with a new member id: it takes over the old
    /// member's place; the old id is fenced. A stable group with unchanged
    /// protocols does not rebalance (KIP-345).
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        waiter: oneshot::Sender<JoinResult>,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Effects {
        let mut effects = Effects::default();
        let mut member = self.members.remove(old_id).expect("static member is a member");
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        let unchanged = member.same_protocols(&req.protocols);
        member.member_id = new_id.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.protocols = req.protocols.clone();
        member.deadline = now + member.session();
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        self.static_members.insert(req.group_instance_id.clone().expect("static"), new_id.clone());
        effects.wakes.push((Wake::Session(new_id.clone()), member.deadline));
        self.members.insert(new_id.clone(), member);
        match self.state {
            GroupState::Stable if unchanged => {
                effects.persist = true;
                let _ = waiter.send(self.current_join_result(&new_id));
            }
            GroupState::PreparingRebalance => {
                self.members.get_mut(&new_id).expect("inserted").join_waiter = Some(waiter);
                self.try_complete_join(now, cfg, &mut effects);
            }
            _ => {
                self.members.get_mut(&new_id).expect("inserted").join_waiter = Some(waiter);
                self.prepare_rebalance(now, cfg, &mut effects);
            }
        }
        effects
    }

    fn rebalance_or_wait(&mut self, now: Instant, cfg: &GroupConfig, effects: &mut Effects) {
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now, cfg, effects);
        } else {
            self.prepare_rebalance(now, cfg, effects);
        }
    }

    /// The group's rebalance timeout: the largest of its members' (Kafka's
    /// `ClassicGroup.rebalanceTimeoutMs`). Zero or negative timeouts count as
    /// zero: the join phase then ends at once and members that have not sent
    /// SyncGroup when it ends are removed at once, as in Kafka.
    fn max_rebalance_timeout(&self) -> Duration {
        let ms = self.members.values().map(|m| m.rebalance_timeout_ms.max(0)).max().unwrap_or(0);
        Duration::from_millis(ms as u64)
    }

    fn prepare_rebalance(&mut self, now: Instant, cfg: &GroupConfig, effects: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for an assignment must rejoin.
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let initial = self.state == GroupState::Empty;
        self.set_state(GroupState::PreparingRebalance);
        self.pending_sync.clear();
        self.sync_deadline = None;
        self.new_member_added = false;
        let timeout = self.max_rebalance_timeout();
        if initial {
            // Kafka waits the whole initial delay, whatever the rebalance
            // timeout; only later steps are bounded by it.
            let delay = Duration::from_millis(cfg.initial_rebalance_delay_ms);
            self.join_deadline = None;
            self.initial_step = delay;
            self.initial_remaining = timeout.saturating_sub(delay);
            self.initial_delay_until = Some(now + delay);
            effects.wakes.push((Wake::Join, now + delay));
        } else {
            self.initial_delay_until = None;
            self.join_deadline = Some(now + timeout);
            effects.wakes.push((Wake::Join, now + timeout));
        }
        tracing::info!(group = %self.id, generation = self.generation_id, members = self.members.len(), "preparing rebalance");
        self.try_complete_join(now, cfg, effects);
    }

    fn try_complete_join(&mut self, now: Instant, cfg: &GroupConfig, effects: &mut Effects) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(until) = self.initial_delay_until {
            if now < until {
                return;
            }
            if self.new_member_added && !self.initial_remaining.is_zero() {
                // Members are still arriving: wait another step.
                let step = Duration::from_millis(cfg.initial_rebalance_delay_ms).min(self.initial_remaining);
                self.initial_remaining = self.initial_remaining.saturating_sub(self.initial_step);
                self.initial_step = step;
                self.new_member_added = false;
                self.initial_delay_until = Some(now + step);
                effects.wakes.push((Wake::Join, now + step));
                return;
            }
            self.complete_join(now, cfg, effects);
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some()) && self.pending_members.is_empty();
        let expired = self.join_deadline.is_some_and(|t| now >= t);
        if all_joined || expired {
            self.complete_join(now, cfg, effects);
        }
    }

    fn complete_join(&mut self, now: Instant, cfg: &GroupConfig, effects: &mut Effects) {
        let gone: Vec<String> =
            self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.member_id.clone()).collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "removing member that did not rejoin in time");
            self.remove_member(&id);
        }
        self.pending_members.clear();
        self.join_deadline = None;
        self.initial_delay_until = None;
        self.new_member_added = false;
        self.generation_id += 1;
        if self.members.is_empty() {
            // The protocol type stays: an empty consumer group is still a consumer group.
            self.protocol_name = None;
            self.leader_id = None;
            self.set_state(GroupState::Empty);
            effects.persist = true;
            tracing::info!(group = %self.id, generation = self.generation_id, "group is empty");
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self.leader_id.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader_id = self.members.values().min_by_key(|m| m.join_order).map(|m| m.member_id.clone());
        }
        self.set_state(GroupState::CompletingRebalance);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.current_join_result(&id);
            let m = self.members.get_mut(&id).expect("listed");
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(result);
            }
            m.deadline = now + m.session();
            effects.wakes.push((Wake::Session(id.clone()), m.deadline));
            self.pending_sync.insert(id);
        }
        let sync_deadline = now + self.max_rebalance_timeout();
        self.sync_deadline = Some(sync_deadline);
        effects.wakes.push((Wake::Sync(self.generation_id), sync_deadline));
        tracing::info!(
            group = %self.id,
            generation = self.generation_id,
            protocol = self.protocol_name.as_deref().unwrap_or(""),
            leader = self.leader_id.as_deref().unwrap_or(""),
            members = self.members.len(),
            "rebalance: join phase complete"
        );
        if sync_deadline <= now {
            // A zero rebalance timeout: Kafka's sync expiry is queued before
            // any SyncGroup can arrive, so the members are gone at once.
            self.expire_pending_sync(now, cfg, effects);
        }
    }

    /// The sync deadline passed: members that never sent SyncGroup in this
    /// generation are removed and the group rebalances without them.
    fn expire_pending_sync(&mut self, now: Instant, cfg: &GroupConfig, effects: &mut Effects) {
        if !matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable) || self.pending_sync.is_empty() {
            return;
        }
        let lagging: Vec<String> = self.pending_sync.drain().collect();
        for id in lagging {
            tracing::info!(group = %self.id, member = %id, "removing member that did not sync in time");
            self.remove_member(&id);
        }
        self.prepare_rebalance(now, cfg, effects);
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let mut m = self.members.remove(member_id)?;
        self.pending_sync.remove(member_id);
        if let Some(iid) = &m.group_instance_id {
            if self.static_members.get(iid).map(String::as_str) == Some(member_id) {
                self.static_members.remove(iid);
            }
        }
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(ResponseError::UnknownMemberId));
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = None;
        }
        Some(m)
    }

    /// Checks member id, instance id and generation; shared by SyncGroup,
    /// Heartbeat and OffsetCommit.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(iid) = instance_id {
            if let Some(known) = self.static_members.get(iid) {
                if known != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.deadline = now + m.session();
        }
    }

    /// Handles SyncGroup; the result arrives on `waiter`.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        waiter: oneshot::Sender<SyncResult>,
        now: Instant,
    ) -> Effects {
        let mut effects = Effects::default();
        if let Err(e) = self.check_member(member_id, instance_id, generation_id) {
            let _ = waiter.send(SyncResult::error(e));
            return effects;
        }
        if protocol_type.is_some_and(|p| Some(p) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol_name.as_deref())
        {
            let _ = waiter.send(SyncResult::error(ResponseError::InconsistentGroupProtocol));
            return effects;
        }
        self.touch(member_id, now);
        if matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable) {
            self.pending_sync.remove(member_id);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                let _ = waiter.send(SyncResult::error(ResponseError::UnknownMemberId));
            }
            GroupState::PreparingRebalance => {
                let _ = waiter.send(SyncResult::error(ResponseError::RebalanceInProgress));
            }
            GroupState::Stable => {
                let _ = waiter.send(self.sync_result(member_id));
            }
            GroupState::CompletingRebalance => {
                self.members.get_mut(member_id).expect("checked").sync_waiter = Some(waiter);
                if self.leader_id.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = by_member.remove(&m.member_id).unwrap_or_default();
                    }
                    self.set_state(GroupState::Stable);
                    effects.persist = true;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let result = self.sync_result(&id);
                        if let Some(w) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                            let _ = w.send(result);
                        }
                    }
                    tracing::info!(group = %self.id, generation = self.generation_id, "rebalance complete: group stable");
                }
            }
        }
        effects
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default(),
        }
    }

    /// Handles Heartbeat; returns the error to answer with.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Empty {
            return Some(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.check_member(member_id, instance_id, generation_id) {
            return Some(e);
        }
        self.touch(member_id, now);
        match self.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Handles one member of a LeaveGroup request.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        cfg: &GroupConfig,
    ) -> (Option<ResponseError>, Effects) {
        let mut effects = Effects::default();
        if self.state == GroupState::Dead {
            return (Some(ResponseError::CoordinatorNotAvailable), effects);
        }
        let id = match instance_id {
            Some(iid) => match self.static_members.get(iid) {
                Some(known) if member_id.is_empty() || known == member_id => known.clone(),
                Some(_) => return (Some(ResponseError::FencedInstanceId), effects),
                None => return (Some(ResponseError::UnknownMemberId), effects),
            },
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&id).is_some() {
            self.try_complete_join(now, cfg, &mut effects);
            return (None, effects);
        }
        if self.remove_member(&id).is_none() {
            return (Some(ResponseError::UnknownMemberId), effects);
        }
        tracing::info!(group = %self.id, member = %id, "member left the group");
        self.after_member_removed(now, cfg, &mut effects);
        (None, effects)
    }

    /// A consumer group turned back into this classic group (online
    /// downgrade): its members, restored, must all rejoin.
    pub(super) fn rebalance_after_downgrade(&mut self, now: Instant, cfg: &GroupConfig) -> Effects {
        let mut effects = Effects { persist: true, ..Default::default() };
        self.prepare_rebalance(now, cfg, &mut effects);
        effects
    }

    fn after_member_removed(&mut self, now: Instant, cfg: &GroupConfig, effects: &mut Effects) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, cfg, effects),
            GroupState::PreparingRebalance => self.try_complete_join(now, cfg, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// A deadline came due.
    pub fn on_wake(&mut self, wake: &Wake, now: Instant, cfg: &GroupConfig) -> Effects {
        let mut effects = Effects::default();
        match wake {
            Wake::Session(id) => {
                let Some(m) = self.members.get(id) else { return effects };
                if m.join_waiter.is_some() || m.sync_waiter.is_some() {
                    return effects; // waiting on us; the join or sync deadline covers it
                }
                if now < m.deadline {
                    effects.wakes.push((Wake::Session(id.clone()), m.deadline));
                    return effects;
                }
                tracing::info!(group = %self.id, member = %id, "member session expired");
                self.remove_member(id);
                self.after_member_removed(now, cfg, &mut effects);
            }
            Wake::Pending(id) => {
                if self.pending_members.get(id).is_some_and(|d| now >= *d) {
                    self.pending_members.remove(id);
                    self.try_complete_join(now, cfg, &mut effects);
                }
            }
            Wake::Join => self.try_complete_join(now, cfg, &mut effects),
            Wake::ConsumerSession(_) => {} // the coordinator handles these
            Wake::Sync(generation) => {
                if *generation == self.generation_id && self.sync_deadline.is_some_and(|d| now >= d) {
                    self.expire_pending_sync(now, cfg, &mut effects);
                }
            }
        }
        effects
    }

    /// Validates an OffsetCommit: a "simple" commit (generation -1, no
    /// member) needs an empty group; otherwise member and generation must
    /// match and the group must not be waiting for assignments.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if generation_id < 0 && member_id.is_empty() {
            return if self.members.is_empty() { Ok(()) } else { Err(ResponseError::UnknownMemberId) };
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        self.check_member(member_id, instance_id, generation_id)?;
        self.touch(member_id, now);
        Ok(())
    }

    /// Topics the active members subscribe to (consumer protocol only).
    pub fn subscribed_topics(&self) -> Vec<String> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return Vec::new();
        }
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut topics: Vec<String> =
            self.members.values().flat_map(|m| super::records::subscribed_topics(&m.metadata(&protocol))).collect();
        topics.sort();
        topics.dedup();
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GroupConfig {
        GroupConfig { initial_rebalance_delay_ms: 0, ..Default::default() }
    }

    fn req(member_id: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        }
    }

    fn join(g: &mut Group, r: JoinRequest, now: Instant) -> (oneshot::Receiver<JoinResult>, Effects) {
        let (tx, rx) = oneshot::channel();
        let e = g.join(r, tx, now, &cfg());
        (rx, e)
    }

    /// Joins a new dynamic member through MEMBER_ID_REQUIRED.
    fn join_new(g: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinResult>) {
        let (mut rx, _) = join(g, req("", None), now);
        let first = rx.try_recv().unwrap();
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        let (rx, _) = join(g, req(&first.member_id, None), now);
        (first.member_id, rx)
    }

    fn sync(
        g: &mut Group,
        id: &str,
        gen: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        g.sync(id, None, gen, None, None, assignments, tx, now);
        rx
    }

    #[test]
    fn single_member_full_cycle() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (id, mut rx) = join_new(&mut g, now);
        let r = rx.try_recv().unwrap();
        assert_eq!((r.error, r.generation_id, r.leader_id.as_str()), (None, 1, id.as_str()));
        assert_eq!(r.members.len(), 1, "the leader sees every member");
        assert_eq!(g.state, GroupState::CompletingRebalance);
        let mut s = sync(&mut g, &id, 1, vec![(id.clone(), Bytes::from_static(b"a"))], now);
        assert_eq!(s.try_recv().unwrap().assignment, Bytes::from_static(b"a"));
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(g.heartbeat(&id, None, 1, now), None);
        assert_eq!(g.heartbeat(&id, None, 0, now), Some(ResponseError::IllegalGeneration));
        assert_eq!(g.heartbeat("nope", None, 1, now), Some(ResponseError::UnknownMemberId));
        let (err, _) = g.leave(&id, None, now, &cfg());
        assert_eq!(err, None);
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.generation_id, 2);
    }

    #[test]
    fn second_member_triggers_rebalance_and_follower_waits_for_leader() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (a, mut ra) = join_new(&mut g, now);
        ra.try_recv().unwrap();
        sync(&mut g, &a, 1, vec![], now).try_recv().unwrap();
        let (b, mut rb) = join_new(&mut g, now);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert!(rb.try_recv().is_err(), "b waits for a to rejoin");
        assert_eq!(g.heartbeat(&a, None, 1, now), Some(ResponseError::RebalanceInProgress));
        let (mut ra, _) = join(&mut g, req(&a, None), now);
        let (ja, jb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
        assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
        assert_eq!(ja.leader_id, a);
        assert_eq!((ja.members.len(), jb.members.len()), (2, 0));
        let mut sb = sync(&mut g, &b, 2, vec![], now);
        assert!(sb.try_recv().is_err(), "follower waits for the leader's assignment");
        let mut sa = sync(
            &mut g,
            &a,
            2,
            vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))],
            now,
        );
        assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from_static(b"A"));
        assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from_static(b"B"));
    }

    #[test]
    fn expired_member_is_removed_and_group_rebalances() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (a, mut ra) = join_new(&mut g, now);
        ra.try_recv().unwrap();
        sync(&mut g, &a, 1, vec![], now).try_recv().unwrap();
        let later = now + Duration::from_millis(5_000);
        let e = g.on_wake(&Wake::Session(a.clone()), later, &cfg());
        assert!(g.members.contains_key(&a), "not yet expired");
        assert_eq!(e.wakes.len(), 1, "re-armed");
        let e = g.on_wake(&Wake::Session(a.clone()), now + Duration::from_millis(10_001), &cfg());
        assert!(!g.members.contains_key(&a));
        assert_eq!(g.state, GroupState::Empty);
        assert!(e.persist);
    }

    #[test]
    fn join_deadline_drops_members_that_did_not_rejoin() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (a, mut ra) = join_new(&mut g, now);
        ra.try_recv().unwrap();
        sync(&mut g, &a, 1, vec![], now).try_recv().unwrap();
        let (_b, mut rb) = join_new(&mut g, now);
        g.on_wake(&Wake::Join, now + Duration::from_millis(20_001), &cfg());
        let jb = rb.try_recv().unwrap();
        assert_eq!(jb.error, None);
        assert_eq!(g.members.len(), 1, "a never rejoined");
        assert_eq!(g.heartbeat(&a, None, 2, now), Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn sync_errors() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (a, mut ra) = join_new(&mut g, now);
        ra.try_recv().unwrap();
        assert_eq!(sync(&mut g, "x", 1, vec![], now).try_recv().unwrap().error, Some(ResponseError::UnknownMemberId));
        assert_eq!(sync(&mut g, &a, 7, vec![], now).try_recv().unwrap().error, Some(ResponseError::IllegalGeneration));
        let (tx, mut rx) = oneshot::channel();
        g.sync(&a, None, 1, Some("consumer"), Some("roundrobin"), vec![], tx, now);
        assert_eq!(rx.try_recv().unwrap().error, Some(ResponseError::InconsistentGroupProtocol));
    }

    #[test]
    fn join_errors() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let mut bad = req("", None);
        bad.session_timeout_ms = 10;
        assert_eq!(join(&mut g, bad, now).0.try_recv().unwrap().error, Some(ResponseError::InvalidSessionTimeout));
        assert_eq!(
            join(&mut g, req("ghost", None), now).0.try_recv().unwrap().error,
            Some(ResponseError::UnknownMemberId)
        );
        let (_a, mut ra) = join_new(&mut g, now);
        ra.try_recv().unwrap();
        let mut other = req("", None);
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        assert_eq!(
            join(&mut g, other, now).0.try_recv().unwrap().error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        let small = GroupConfig { max_size: 1, ..cfg() };
        let (tx, mut rx) = oneshot::channel();
        g.join(req("", None), tx, now, &small);
        assert_eq!(rx.try_recv().unwrap().error, Some(ResponseError::GroupMaxSizeReached));
    }

    #[test]
    fn static_member_rejoins_without_rebalance_and_old_id_is_fenced() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (mut ra, _) = join(&mut g, req("", Some("i1")), now);
        let a = ra.try_recv().unwrap();
        assert_eq!(a.error, None, "static members need no MEMBER_ID_REQUIRED round");
        sync(&mut g, &a.member_id, 1, vec![(a.member_id.clone(), Bytes::from_static(b"P"))], now).try_recv().unwrap();
        let (mut rb, _) = join(&mut g, req("", Some("i1")), now);
        let b = rb.try_recv().unwrap();
        assert_eq!((b.error, b.generation_id), (None, 1), "no new generation");
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(sync(&mut g, &b.member_id, 1, vec![], now).try_recv().unwrap().assignment, Bytes::from_static(b"P"));
        let (tx, mut rx) = oneshot::channel();
        g.sync(&a.member_id, Some("i1"), 1, None, None, vec![], tx, now);
        assert_eq!(rx.try_recv().unwrap().error, Some(ResponseError::FencedInstanceId));
        let (err, _) = g.leave("", Some("i1"), now, &cfg());
        assert_eq!(err, None);
        assert!(g.members.is_empty());
    }

    #[test]
    fn commit_rules() {
        let now = Instant::now();
        let mut g = Group::new("g");
        assert_eq!(g.check_commit("", None, -1, now), Ok(()), "simple commit on an empty group");
        let (a, mut ra) = join_new(&mut g, now);
        ra.try_recv().unwrap();
        assert_eq!(g.check_commit(&a, None, 1, now), Err(ResponseError::RebalanceInProgress));
        sync(&mut g, &a, 1, vec![], now).try_recv().unwrap();
        assert_eq!(g.check_commit(&a, None, 1, now), Ok(()));
        assert_eq!(g.check_commit(&a, None, 0, now), Err(ResponseError::IllegalGeneration));
        assert_eq!(g.check_commit("", None, -1, now), Err(ResponseError::UnknownMemberId));
    }

    fn with_timeout(mut r: JoinRequest, rebalance_timeout_ms: i32) -> JoinRequest {
        r.rebalance_timeout_ms = rebalance_timeout_ms;
        r
    }

    /// Kafka's answers to a member that joined with a rebalance timeout of 0
    /// (or less): the join completes, but the sync deadline is the group's
    /// rebalance timeout, so the member is gone before its SyncGroup.
    #[test]
    fn zero_or_negative_rebalance_timeout_removes_the_member_before_it_syncs() {
        for timeout in [0, -1, i32::MIN] {
            let now = Instant::now();
            let mut g = Group::new("g");
            let (mut rx, _) = join(&mut g, with_timeout(req("", None), timeout), now);
            let id = rx.try_recv().unwrap().member_id;
            let (mut rx, e) = join(&mut g, with_timeout(req(&id, None), timeout), now);
            let joined = rx.try_recv().unwrap();
            assert_eq!((joined.error, joined.generation_id), (None, 1), "timeout {timeout}: JoinGroup succeeds");
            assert_eq!(g.state, GroupState::Empty, "timeout {timeout}: removed at the end of the join phase");
            assert_eq!(g.generation_id, 2);
            assert!(e.persist, "the empty generation is written");
            let mut s = sync(&mut g, &id, 1, vec![(id.clone(), Bytes::from_static(b"a"))], now);
            assert_eq!(s.try_recv().unwrap().error, Some(ResponseError::UnknownMemberId));
            assert_eq!(g.check_commit(&id, None, 1, now), Err(ResponseError::UnknownMemberId));
            assert_eq!(g.leave(&id, None, now, &cfg()).0, Some(ResponseError::UnknownMemberId));
            assert_eq!(g.heartbeat(&id, None, 1, now), Some(ResponseError::UnknownMemberId));
        }
    }

    #[test]
    fn the_largest_rebalance_timeout_of_the_group_counts() {
        let now = Instant::now();
        let slow = GroupConfig { initial_rebalance_delay_ms: 3_000, ..cfg() };
        let at = |n: u64| now + Duration::from_millis(n);
        let mut g = Group::new("g");
        let (tx, mut ra) = oneshot::channel();
        g.join(with_timeout(req("", Some("a")), 0), tx, now, &slow);
        let (tx, mut rb) = oneshot::channel();
        g.join(with_timeout(req("", Some("b")), 10_000), tx, now, &slow);
        g.on_wake(&Wake::Join, at(3_000), &slow);
        let (a, b) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
        assert_eq!(g.state, GroupState::CompletingRebalance, "the group's timeout is b's 10 s");
        let (leader, follower) = if a.members.is_empty() { (b, a) } else { (a, b) };
        let mut sf = sync(&mut g, &follower.member_id, 1, vec![], at(12_999));
        let mut sl = sync(&mut g, &leader.member_id, 1, vec![], at(12_999));
        assert_eq!((sf.try_recv().unwrap().error, sl.try_recv().unwrap().error), (None, None));
        g.on_wake(&Wake::Sync(1), at(13_000), &slow);
        assert_eq!((g.state, g.members.len()), (GroupState::Stable, 2));
    }

    #[test]
    fn initial_delay_is_not_cut_short_by_a_zero_rebalance_timeout() {
        let now = Instant::now();
        let slow = GroupConfig { initial_rebalance_delay_ms: 3_000, ..cfg() };
        let mut g = Group::new("g");
        let (tx, mut rx) = oneshot::channel();
        let e = g.join(with_timeout(req("", Some("i")), 0), tx, now, &slow);
        assert!(rx.try_recv().is_err(), "waits the initial delay");
        assert_eq!(e.wakes, vec![(Wake::Join, now + Duration::from_millis(3_000))]);
        g.on_wake(&Wake::Join, now + Duration::from_millis(2_999), &slow);
        assert!(rx.try_recv().is_err());
        g.on_wake(&Wake::Join, now + Duration::from_millis(3_000), &slow);
        assert_eq!(rx.try_recv().unwrap().generation_id, 1);
    }

    #[test]
    fn initial_delay_extends_while_members_arrive_within_the_rebalance_timeout() {
        let now = Instant::now();
        let slow = GroupConfig { initial_rebalance_delay_ms: 3_000, ..cfg() };
        let ms = |n: u64| now + Duration::from_millis(n);
        let mut g = Group::new("g");
        let (tx, mut ra) = oneshot::channel();
        g.join(with_timeout(req("", Some("a")), 7_000), tx, now, &slow);
        let (tx, mut rb) = oneshot::channel();
        g.join(with_timeout(req("", Some("b")), 7_000), tx, ms(1_000), &slow);
        let e = g.on_wake(&Wake::Join, ms(3_000), &slow);
        assert!(ra.try_recv().is_err() && rb.try_recv().is_err(), "b arrived: another step");
        assert_eq!(e.wakes, vec![(Wake::Join, ms(6_000))], "a step of the delay, within the 4 s left");
        let e = g.on_wake(&Wake::Join, ms(6_000), &slow);
        assert!(ra.try_recv().is_ok() && rb.try_recv().is_ok(), "nobody new: the join phase ends");
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert!(e.wakes.contains(&(Wake::Sync(1), ms(13_000))));
    }

    #[test]
    fn members_that_never_sync_are_removed_at_the_sync_deadline_even_when_stable() {
        let now = Instant::now();
        let slow = GroupConfig { initial_rebalance_delay_ms: 3_000, ..cfg() };
        let at = |n: u64| now + Duration::from_millis(n);
        let mut g = Group::new("g");
        let (tx, mut ra) = oneshot::channel();
        g.join(req("", Some("a")), tx, now, &slow);
        let (tx, mut rb) = oneshot::channel();
        g.join(req("", Some("b")), tx, now, &slow);
        g.on_wake(&Wake::Join, at(3_000), &slow); // b came during the delay: one more step
        g.on_wake(&Wake::Join, at(6_000), &slow);
        let (a, b) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
        let (leader, follower) = if a.members.is_empty() { (b, a) } else { (a, b) };
        sync(&mut g, &leader.member_id, 1, vec![], at(6_000)).try_recv().unwrap();
        assert_eq!(g.state, GroupState::Stable);
        g.on_wake(&Wake::Sync(1), at(25_999), &slow);
        assert_eq!(g.members.len(), 2, "not yet");
        g.on_wake(&Wake::Sync(1), at(26_000), &slow);
        assert!(!g.members.contains_key(&follower.member_id), "the follower never synced");
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(g.heartbeat(&leader.member_id, None, 1, at(26_000)), Some(ResponseError::RebalanceInProgress));
    }

    #[test]
    fn a_member_that_synced_in_time_stays() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let (id, mut rx) = join_new(&mut g, now);
        rx.try_recv().unwrap();
        sync(&mut g, &id, 1, vec![], now).try_recv().unwrap();
        let e = g.on_wake(&Wake::Sync(1), now + Duration::from_millis(20_000), &cfg());
        assert_eq!((g.state, g.members.len()), (GroupState::Stable, 1));
        assert!(e.wakes.is_empty() && !e.persist);
    }

    #[test]
    fn protocol_vote_prefers_common_first_choice() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let mut r1 = req("", Some("a"));
        r1.protocols = vec![("cooperative-sticky".into(), Bytes::new()), ("range".into(), Bytes::new())];
        let mut r2 = req("", Some("b"));
        r2.protocols = vec![("range".into(), Bytes::new()), ("cooperative-sticky".into(), Bytes::new())];
        let mut r3 = req("", Some("c"));
        r3.protocols = vec![("cooperative-sticky".into(), Bytes::new())];
        let (_x, _) = join(&mut g, r1, now);
        let (_y, _) = join(&mut g, r2, now);
        let (mut z, _) = join(&mut g, r3, now);
        g.on_wake(&Wake::Join, now + Duration::from_secs(30), &cfg());
        assert_eq!(z.try_recv().unwrap().protocol_name.as_deref(), Some("cooperative-sticky"));
    }
}
