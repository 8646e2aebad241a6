//! KIP-848 consumer groups: the state machine behind ConsumerGroupHeartbeat,
//! without I/O. It takes `now` and the topics of the metadata image, and
//! returns the records to append to `__consumer_offsets` and the session
//! deadlines to watch.
//!
//! A heartbeat (1) admits, updates or removes the member, (2) bumps the
//! group epoch when a subscription or the subscribed topics changed, (3)
//! computes a new target assignment with the group's assignor when the
//! group epoch is ahead of the assignment epoch, and (4) moves the member
//! toward its target one step at a time, as Kafka's CurrentAssignmentBuilder:
//! partitions it must give up are revoked first (it keeps its epoch until it
//! reports them gone), and a partition still owned by another member is
//! given only once that member released it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use uuid::Uuid;
use vltava_protocol::ResponseError;

pub use super::assignor::Assignment;
use super::assignor::{self, AssignorMember};
use super::consumer_records::{
    self as rec, AssignmentEpochs, ClassicMeta, LoadedGroup, StoredCurrentAssignment, StoredMemberMetadata,
};

pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member is in reaching its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Must give up `pending_revocation` before it moves on.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }
    fn from_code(code: i8) -> Self {
        match code {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub meta: StoredMemberMetadata,
    pub state: MemberState,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// KIP-1251: the member epoch at which each partition of `assigned` and
    /// `pending_revocation` was assigned to it (absent: `member_epoch`).
    pub assignment_epochs: AssignmentEpochs,
    /// The session ends here unless a heartbeat comes.
    pub session_deadline: Instant,
    /// While it must revoke partitions: it is fenced unless it has done so
    /// by then (its rebalance timeout).
    pub revocation_deadline: Option<Instant>,
}

/// Topic name -> (topic id, partition count).
pub type TopicMap = BTreeMap<String, (Uuid, i32)>;

/// The topics of the metadata image, and the image's version: a group
/// resolves its subscriptions again only when either changed.
#[derive(Debug, Clone, Default)]
pub struct Topics {
    pub version: u64,
    pub names: TopicMap,
}

/// Effective settings of one group (broker `group.consumer.*` settings and
/// the group's overrides).
#[derive(Debug, Clone)]
pub struct Settings {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    /// `group.consumer.assignors`: the first is the default.
    pub assignors: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec!["uniform".into(), "range".into()],
        }
    }
}

/// A ConsumerGroupHeartbeat, decoded. `None` fields are "unchanged".
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    /// A classic member's JoinGroup, replayed as a heartbeat.
    pub classic: Option<ClassicMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<Assignment>,
}

/// An error code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: ResponseError,
    pub message: String,
}

fn refuse<T>(error: ResponseError, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal { error, message: message.into() })
}

/// Records to append (key, value or tombstone) and session deadlines.
#[derive(Debug, Default)]
pub struct Changes {
    pub records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub sessions: Vec<(String, Instant)>,
}

/// Kafka's request checks (InvalidRequest, UnsupportedAssignor,
/// InvalidRegularExpression) before the group is looked at.
pub fn validate(hb: &Heartbeat, group_id: &str, version: i16, assignors: &[String]) -> Result<(), Refusal> {
    let invalid = |m: &str| refuse(ResponseError::InvalidRequest, m);
    if group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if hb.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if hb.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    match hb.member_epoch {
        0 => {
            if version >= 1 && hb.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if hb.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if hb.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            let names = hb.subscribed_topic_names.as_ref().is_some_and(|n| !n.is_empty());
            if !names && hb.subscribed_topic_regex.as_ref().is_none_or(|r| r.is_empty()) {
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
        }
        e if e > 0 || e == LEAVE_EPOCH => {
            if hb.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
        }
        STATIC_LEAVE_EPOCH => {
            if hb.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if hb.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        }
        _ => return invalid("MemberEpoch is invalid."),
    }
    if let Some(a) = &hb.server_assignor {
        if !assignors.iter().any(|x| x == a) {
            return refuse(
                ResponseError::UnsupportedAssignor,
                format!("ServerAssignor {a} is not supported. Supported assignors: {}.", assignors.join(", ")),
            );
        }
    }
    if let Some(re) = hb.subscribed_topic_regex.as_ref().filter(|re| !re.is_empty()) {
        if let Err(e) = compile(re) {
            return refuse(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{re}` is not a valid regular expression: {e}"),
            );
        }
    }
    Ok(())
}

/// RE2/J `matches()` semantics: the whole topic name must match.
pub fn compile(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{re})$")).size_limit(1 << 20).build()
}

#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub group_id: String,
    /// Bumped when the members or their subscriptions change.
    pub epoch: i32,
    /// The epoch of `targets`.
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub targets: BTreeMap<String, Assignment>,
    /// Subscribed topics that exist, as of `subscribed_version`.
    subscribed: TopicMap,
    subscribed_version: Option<u64>,
    /// Owner epoch of every partition a member holds or is revoking.
    partition_epochs: HashMap<(Uuid, i32), i32>,
    regexes: HashMap<String, regex::Regex>,
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> Self {
        Self { group_id: group_id.to_string(), ..Default::default() }
    }

    /// Kafka's group states: Empty, Assigning, Reconciling, Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch != self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The assignor the group uses: the one most members ask for, else the
    /// first configured.
    pub fn assignor(&self, settings: &Settings) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.meta.server_assignor {
                *votes.entry(a).or_default() += 1;
            }
        }
        let best = votes.iter().max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name))).map(|(n, _)| n.to_string());
        best.or_else(|| settings.assignors.first().cloned()).unwrap_or_else(|| "uniform".into())
    }

    fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members.values().find(|m| m.meta.instance_id.as_deref() == Some(instance_id))
    }

    /// Topic names the members subscribe to (by name or by a matching
    /// regex), existing or not.
    pub fn subscribed_topic_names(&mut self, topics: &Topics) -> BTreeSet<String> {
        let members: Vec<StoredMemberMetadata> = self.members.values().map(|m| m.meta.clone()).collect();
        let mut out = BTreeSet::new();
        for m in &members {
            out.extend(self.member_topics(m, topics));
        }
        out
    }

    fn member_topics(&mut self, m: &StoredMemberMetadata, topics: &Topics) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m.subscribed_topic_names.iter().cloned().collect();
        if let Some(re) = &m.subscribed_topic_regex {
            if !self.regexes.contains_key(re) {
                if let Ok(compiled) = compile(re) {
                    self.regexes.insert(re.clone(), compiled);
                }
            }
            if let Some(compiled) = self.regexes.get(re) {
                out.extend(topics.names.keys().filter(|t| !t.starts_with("__") && compiled.is_match(t)).cloned());
            }
        }
        out
    }

    fn compute_subscribed(&mut self, topics: &Topics) -> TopicMap {
        self.subscribed_version = Some(topics.version);
        self.subscribed_topic_names(topics).into_iter().filter_map(|t| topics.names.get(&t).map(|v| (t, *v))).collect()
    }

    /// Handles one heartbeat (a leave included).
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &Topics,
        settings: &Settings,
        now: Instant,
        changes: &mut Changes,
    ) -> Result<HeartbeatAnswer, Refusal> {
        if hb.member_epoch == LEAVE_EPOCH || hb.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&hb, topics, changes);
        }
        let full_request = hb.member_epoch == 0
            || (hb.rebalance_timeout_ms != -1 && hb.subscribed_topic_names.is_some() && hb.owned.is_some());
        let mut member_id = hb.member_id.clone();
        if member_id.is_empty() {
            member_id = Uuid::new_v4().to_string();
        }
        let known_instance = hb.instance_id.as_deref().is_some_and(|i| self.static_member(i).is_some());
        if self.members.len() >= settings.max_size && !self.members.contains_key(&member_id) && !known_instance {
            return refuse(
                ResponseError::GroupMaxSizeReached,
                format!("The consumer group has reached its maximum capacity of {} members.", settings.max_size),
            );
        }
        let mut bump = false;
        let mut replaced = false;
        // 1. the member: new, replacing a static one, or known
        let before: Option<ConsumerMember> = match (&hb.instance_id, hb.member_epoch) {
            (Some(instance), 0) => match self.static_member(instance).cloned() {
                None => self.members.get(&member_id).cloned(),
                Some(old) if old.member_epoch != STATIC_LEAVE_EPOCH && old.member_id != member_id => {
                    return refuse(
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member {} with instance id {instance} is not released yet.", old.member_id),
                    );
                }
                Some(old) => {
                    // the new member takes over the old one's assignment
                    let mut new = old.clone();
                    new.member_id = member_id.clone();
                    new.member_epoch = 0;
                    new.previous_member_epoch = 0;
                    // its partitions count as assigned at its next epoch
                    new.assignment_epochs.clear();
                    if old.member_id != member_id {
                        replaced = true;
                        let target = self.targets.get(&old.member_id).cloned();
                        self.remove_member(&old.member_id, changes);
                        if let Some(t) = target {
                            self.targets.insert(member_id.clone(), t);
                            changes.records.push((
                                rec::target_member_key(&self.group_id, &member_id),
                                Some(rec::target_member_value(&self.targets[&member_id])),
                            ));
                        }
                        self.add_partition_epochs(&new);
                        self.members.insert(member_id.clone(), new.clone());
                        tracing::info!(group = %self.group_id, member = %member_id, old = %old.member_id, instance, "static member replaced");
                    }
                    Some(new)
                }
            },
            (Some(instance), _) => {
                let Some(old) = self.static_member(instance) else {
                    return refuse(ResponseError::UnknownMemberId, format!("Instance id {instance} is unknown."));
                };
                if old.member_id != member_id {
                    return refuse(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {member_id} with instance id {instance} was fenced by {}.",
                            old.member_id
                        ),
                    );
                }
                let old = old.clone();
                check_epoch(&old, hb.member_epoch, hb.owned.as_ref())?;
                Some(old)
            }
            (None, 0) => self.members.get(&member_id).cloned(),
            (None, _) => {
                let Some(old) = self.members.get(&member_id) else {
                    return refuse(
                        ResponseError::UnknownMemberId,
                        format!("Member {member_id} is not a member of group {}.", self.group_id),
                    );
                };
                let old = old.clone();
                check_epoch(&old, hb.member_epoch, hb.owned.as_ref())?;
                Some(old)
            }
        };
        let mut member = match before.clone() {
            Some(m) => m,
            None => {
                bump = true;
                tracing::info!(group = %self.group_id, member = %member_id, "member joins the consumer group");
                ConsumerMember {
                    member_id: member_id.clone(),
                    meta: StoredMemberMetadata { rebalance_timeout_ms: -1, ..Default::default() },
                    state: MemberState::Stable,
                    member_epoch: 0,
                    previous_member_epoch: 0,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    assignment_epochs: AssignmentEpochs::new(),
                    session_deadline: now,
                    revocation_deadline: None,
                }
            }
        };
        if hb.member_epoch == 0 && hb.instance_id.is_none() && member.member_epoch != 0 {
            // a dynamic member rejoining under its id owns nothing any more
            self.remove_partition_epochs(&member);
            member.assigned.clear();
            member.pending_revocation.clear();
            member.assignment_epochs.clear();
            member.state = MemberState::Stable;
            member.member_epoch = 0;
            member.previous_member_epoch = 0;
        }
        let mut meta = member.meta.clone();
        if hb.instance_id.is_some() {
            meta.instance_id = hb.instance_id.clone();
        }
        if hb.rack_id.is_some() {
            meta.rack_id = hb.rack_id.clone();
        }
        if hb.rebalance_timeout_ms != -1 {
            meta.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if hb.server_assignor.is_some() {
            meta.server_assignor = hb.server_assignor.clone();
        }
        if let Some(names) = &hb.subscribed_topic_names {
            meta.subscribed_topic_names = names.clone();
        }
        if let Some(re) = &hb.subscribed_topic_regex {
            // an empty regex clears it
            meta.subscribed_topic_regex = Some(re.clone()).filter(|r| !r.is_empty());
        }
        meta.client_id = hb.client_id.clone();
        meta.client_host = hb.client_host.clone();
        if hb.classic.is_some() {
            meta.classic = hb.classic.clone();
        }
        if meta != member.meta || before.is_none() || replaced {
            if meta.subscribed_topic_names != member.meta.subscribed_topic_names
                || meta.subscribed_topic_regex != member.meta.subscribed_topic_regex
                || meta.server_assignor != member.meta.server_assignor
            {
                bump = true;
            }
            member.meta = meta;
            changes.records.push((
                rec::member_metadata_key(&self.group_id, &member_id),
                Some(rec::member_metadata_value(&member.meta)),
            ));
        }
        member.session_deadline = now + session_timeout(&member.meta, settings);
        changes.sessions.push((member_id.clone(), member.session_deadline));
        self.members.insert(member_id.clone(), member.clone());
        // 2. the group epoch: subscriptions or subscribed topics changed
        // (resolved again only when either may have: regexes are not free)
        if bump || self.subscribed_version != Some(topics.version) {
            let subscribed = self.compute_subscribed(topics);
            if subscribed != self.subscribed {
                self.subscribed = subscribed;
                bump = true;
            }
        }
        if bump {
            self.bump_epoch(changes);
        }
        // 3. the target assignment
        if self.epoch > self.assignment_epoch {
            self.compute_targets(topics, settings, changes);
        }
        // 4. reconcile this member
        let target = self.targets.get(&member_id).cloned().unwrap_or_default();
        let mut updated = self.reconcile(&member, &target, hb.owned.as_ref());
        carry_assignment_epochs(&member, &mut updated);
        if updated.state != MemberState::UnrevokedPartitions {
            updated.revocation_deadline = None;
        } else if member.state != MemberState::UnrevokedPartitions || updated.revocation_deadline.is_none() {
            let timeout_ms = updated.meta.rebalance_timeout_ms.max(0) as u64;
            let at = now + Duration::from_millis(timeout_ms);
            updated.revocation_deadline = Some(at);
            changes.sessions.push((member_id.clone(), at));
        }
        if updated.assigned != member.assigned
            || updated.pending_revocation != member.pending_revocation
            || updated.member_epoch != member.member_epoch
            || updated.state != member.state
            || before.is_none()
        {
            self.remove_partition_epochs(&member);
            self.add_partition_epochs(&updated);
            changes.records.push(self.current_record(&updated));
        }
        let assignment_changed = before.as_ref().is_none_or(|b| b.assigned != updated.assigned);
        let answer = HeartbeatAnswer {
            member_id: member_id.clone(),
            member_epoch: updated.member_epoch,
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            assignment: (full_request || assignment_changed || updated.assigned != member.assigned)
                .then(|| updated.assigned.clone()),
        };
        self.members.insert(member_id, updated);
        Ok(answer)
    }

    fn leave(&mut self, hb: &Heartbeat, topics: &Topics, changes: &mut Changes) -> Result<HeartbeatAnswer, Refusal> {
        let answer = HeartbeatAnswer {
            member_id: hb.member_id.clone(),
            member_epoch: hb.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        let member_id = match &hb.instance_id {
            None => {
                if !self.members.contains_key(&hb.member_id) {
                    return refuse(
                        ResponseError::UnknownMemberId,
                        format!("Member {} is not a member of group {}.", hb.member_id, self.group_id),
                    );
                }
                hb.member_id.clone()
            }
            Some(instance) => {
                let Some(m) = self.static_member(instance) else {
                    return refuse(ResponseError::UnknownMemberId, format!("Instance id {instance} is unknown."));
                };
                if m.member_id != hb.member_id {
                    return refuse(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by {}.",
                            hb.member_id, m.member_id
                        ),
                    );
                }
                if hb.member_epoch == STATIC_LEAVE_EPOCH {
                    // leaves for a while: keeps its assignment until its session ends
                    let mut m = m.clone();
                    self.remove_partition_epochs(&m);
                    m.member_epoch = STATIC_LEAVE_EPOCH;
                    m.pending_revocation.clear();
                    self.add_partition_epochs(&m);
                    changes.records.push(self.current_record(&m));
                    tracing::info!(group = %self.group_id, member = %m.member_id, instance, "static member left temporarily");
                    self.members.insert(m.member_id.clone(), m);
                    return Ok(HeartbeatAnswer { member_epoch: STATIC_LEAVE_EPOCH, ..answer });
                }
                m.member_id.clone()
            }
        };
        tracing::info!(group = %self.group_id, member = %member_id, "member left the consumer group");
        self.fence(&member_id, topics, changes);
        Ok(answer)
    }

    /// Removes a member (left, or its session expired) and bumps the epoch
    /// so that the others take over its partitions.
    pub fn fence(&mut self, member_id: &str, topics: &Topics, changes: &mut Changes) {
        if !self.members.contains_key(member_id) {
            return;
        }
        self.remove_member(member_id, changes);
        self.subscribed = self.compute_subscribed(topics);
        self.bump_epoch(changes);
    }

    /// A session or revocation deadline passed: fences the member if no
    /// heartbeat came since, or if it still has not revoked what it must.
    pub fn on_session_wake(&mut self, member_id: &str, now: Instant, topics: &Topics, changes: &mut Changes) {
        match self.members.get(member_id) {
            Some(m) if m.session_deadline <= now => {
                tracing::info!(group = %self.group_id, member = %member_id, "consumer group member session expired");
                self.fence(member_id, topics, changes);
            }
            Some(m) if m.revocation_deadline.is_some_and(|d| d <= now) => {
                tracing::info!(group = %self.group_id, member = %member_id, "member did not revoke its partitions within its rebalance timeout");
                self.fence(member_id, topics, changes);
            }
            _ => {}
        }
    }

    fn remove_member(&mut self, member_id: &str, changes: &mut Changes) {
        let Some(m) = self.members.remove(member_id) else { return };
        self.remove_partition_epochs(&m);
        self.targets.remove(member_id);
        let g = &self.group_id;
        changes.records.push((rec::current_assignment_key(g, member_id), None));
        changes.records.push((rec::target_member_key(g, member_id), None));
        changes.records.push((rec::member_metadata_key(g, member_id), None));
    }

    fn bump_epoch(&mut self, changes: &mut Changes) {
        self.epoch += 1;
        changes.records.push((rec::group_metadata_key(&self.group_id), Some(rec::group_metadata_value(self.epoch))));
        tracing::info!(group = %self.group_id, epoch = self.epoch, "bumped consumer group epoch");
    }

    fn compute_targets(&mut self, topics: &Topics, settings: &Settings, changes: &mut Changes) {
        let assignor_name = self.assignor(settings);
        let metas: Vec<(String, StoredMemberMetadata)> =
            self.members.values().map(|m| (m.member_id.clone(), m.meta.clone())).collect();
        let mut resolved: Vec<(String, BTreeSet<Uuid>)> = Vec::with_capacity(metas.len());
        for (id, meta) in &metas {
            let ids =
                self.member_topics(meta, topics).iter().filter_map(|t| self.subscribed.get(t).map(|v| v.0)).collect();
            resolved.push((id.clone(), ids));
        }
        let partitions: BTreeMap<Uuid, i32> = self.subscribed.values().copied().collect();
        let members: Vec<AssignorMember<'_>> = resolved
            .iter()
            .map(|(id, t)| AssignorMember { member_id: id, topics: t.clone(), previous: self.targets.get(id) })
            .collect();
        let new_targets = assignor::assign(&assignor_name, &members, &partitions);
        for (id, target) in &new_targets {
            if self.targets.get(id) != Some(target) {
                changes
                    .records
                    .push((rec::target_member_key(&self.group_id, id), Some(rec::target_member_value(target))));
            }
        }
        self.targets = new_targets;
        self.assignment_epoch = self.epoch;
        changes
            .records
            .push((rec::target_metadata_key(&self.group_id), Some(rec::target_metadata_value(self.assignment_epoch))));
        tracing::info!(group = %self.group_id, epoch = self.epoch, assignor = %assignor_name, "computed target assignment");
    }

    /// One step toward `target` (Kafka's CurrentAssignmentBuilder).
    fn reconcile(&self, m: &ConsumerMember, target: &Assignment, owned: Option<&Assignment>) -> ConsumerMember {
        if m.member_epoch == STATIC_LEAVE_EPOCH {
            return m.clone();
        }
        match m.state {
            MemberState::Stable if m.member_epoch == self.assignment_epoch => m.clone(),
            MemberState::Stable | MemberState::UnreleasedPartitions => self.next(m, m.member_epoch, target, owned),
            MemberState::UnrevokedPartitions => {
                if owns_any(owned, &m.pending_revocation) {
                    m.clone()
                } else {
                    self.next(m, m.member_epoch + 1, target, owned)
                }
            }
        }
    }

    fn next(&self, m: &ConsumerMember, epoch: i32, target: &Assignment, owned: Option<&Assignment>) -> ConsumerMember {
        let mut assigned = Assignment::new();
        let mut revoking = Assignment::new();
        let mut pending = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<Uuid> = target.keys().chain(m.assigned.keys()).copied().collect();
        let empty = BTreeSet::new();
        for t in topics {
            let want = target.get(&t).unwrap_or(&empty);
            let have = m.assigned.get(&t).unwrap_or(&empty);
            let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
            let give_up: BTreeSet<i32> = have.difference(&keep).copied().collect();
            let mut add = BTreeSet::new();
            for p in want.difference(&keep) {
                match self.partition_epochs.get(&(t, *p)) {
                    Some(_) => unreleased = true,
                    None => {
                        add.insert(*p);
                    }
                }
            }
            if !keep.is_empty() {
                assigned.insert(t, keep);
            }
            if !give_up.is_empty() {
                revoking.insert(t, give_up);
            }
            if !add.is_empty() {
                pending.insert(t, add);
            }
        }
        let mut out = m.clone();
        let set_epoch = |out: &mut ConsumerMember, e: i32| {
            if out.member_epoch != e {
                out.previous_member_epoch = out.member_epoch;
                out.member_epoch = e;
            }
        };
        if !revoking.is_empty() && owns_any(owned, &revoking) {
            out.state = MemberState::UnrevokedPartitions;
            set_epoch(&mut out, epoch);
            out.assigned = assigned;
            out.pending_revocation = revoking;
            return out;
        }
        for (t, parts) in pending {
            assigned.entry(t).or_default().extend(parts);
        }
        out.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
        set_epoch(&mut out, self.assignment_epoch);
        out.assigned = assigned;
        out.pending_revocation.clear();
        out
    }

    fn add_partition_epochs(&mut self, m: &ConsumerMember) {
        for (t, parts) in m.assigned.iter().chain(m.pending_revocation.iter()) {
            for p in parts {
                self.partition_epochs.insert((*t, *p), m.member_epoch);
            }
        }
    }

    fn remove_partition_epochs(&mut self, m: &ConsumerMember) {
        for (t, parts) in m.assigned.iter().chain(m.pending_revocation.iter()) {
            for p in parts {
                self.partition_epochs.remove(&(*t, *p));
            }
        }
    }

    fn current_record(&self, m: &ConsumerMember) -> (Vec<u8>, Option<Vec<u8>>) {
        let value = StoredCurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: m.state.code(),
            assigned: m.assigned.clone(),
            pending_revocation: m.pending_revocation.clone(),
            assignment_epochs: m.assignment_epochs.clone(),
        };
        (rec::current_assignment_key(&self.group_id, &m.member_id), Some(rec::current_assignment_value(&value)))
    }

    /// OffsetCommit by a member of this group (Kafka's validateOffsetCommit
    /// with KIP-1251's assignment epochs): the member's current epoch may
    /// commit anything; an older epoch only the partitions the member was
    /// assigned at or before it (a commit sent before the member saw its
    /// epoch bump); a newer one nothing.
    pub fn check_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        transactional: bool,
        version: i16,
    ) -> Result<CommitFence, ResponseError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(CommitFence::Any);
        }
        let Some(m) = self.members.get(member_id) else { return Err(ResponseError::UnknownMemberId) };
        let classic = m.meta.classic.is_some();
        if !transactional && !classic && version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        if member_epoch == m.member_epoch {
            return Ok(CommitFence::Any);
        }
        // TxnOffsetCommit answers ILLEGAL_GENERATION, as Kafka does
        if classic || transactional {
            return Err(ResponseError::IllegalGeneration);
        }
        if member_epoch > m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        let owned = m.assigned.iter().chain(m.pending_revocation.iter());
        let allowed = owned
            .flat_map(|(t, parts)| parts.iter().map(move |p| (*t, *p)))
            .filter(|tp| m.assignment_epochs.get(tp).copied().unwrap_or(m.member_epoch) <= member_epoch)
            .collect();
        Ok(CommitFence::Partitions(allowed))
    }

    /// OffsetFetch v9 with a member id and epoch (validateOffsetFetch).
    pub fn check_fetch(&self, member_id: Option<&str>, member_epoch: i32) -> Result<(), ResponseError> {
        let Some(member_id) = member_id else {
            return if member_epoch < 0 { Ok(()) } else { Err(ResponseError::UnknownMemberId) };
        };
        let Some(m) = self.members.get(member_id) else { return Err(ResponseError::UnknownMemberId) };
        if member_epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Tombstones for the group's own records (DeleteGroups, or the group
    /// turning classic).
    pub fn tombstones(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let g = &self.group_id;
        let mut out = Vec::new();
        for id in self.members.keys() {
            out.push((rec::current_assignment_key(g, id), None));
            out.push((rec::target_member_key(g, id), None));
            out.push((rec::member_metadata_key(g, id), None));
        }
        out.push((rec::target_metadata_key(g), None));
        out.push((rec::group_metadata_key(g), None));
        out
    }

    /// A classic group's members taken over at `epoch` (online upgrade):
    /// each keeps its assignment, which is also its target.
    pub fn from_classic(group_id: &str, epoch: i32, members: Vec<ConsumerMember>, topics: &Topics) -> (Self, Changes) {
        let mut g = ConsumerGroup::new(group_id);
        let mut changes = Changes::default();
        g.epoch = epoch;
        g.assignment_epoch = epoch;
        changes.records.push((rec::group_metadata_key(group_id), Some(rec::group_metadata_value(epoch))));
        for m in members {
            g.add_partition_epochs(&m);
            g.targets.insert(m.member_id.clone(), m.assigned.clone());
            let id = &m.member_id;
            changes.records.push((rec::member_metadata_key(group_id, id), Some(rec::member_metadata_value(&m.meta))));
            changes.records.push((rec::target_member_key(group_id, id), Some(rec::target_member_value(&m.assigned))));
            changes.records.push(g.current_record(&m));
            changes.sessions.push((id.clone(), m.session_deadline));
            g.members.insert(id.clone(), m);
        }
        changes.records.push((rec::target_metadata_key(group_id), Some(rec::target_metadata_value(epoch))));
        g.subscribed = g.compute_subscribed(topics);
        (g, changes)
    }

    /// A classic member's Heartbeat: its session goes on; true when it must
    /// rejoin (its assignment or its epoch must change).
    pub fn classic_beat(&mut self, member_id: &str, now: Instant, changes: &mut Changes) -> bool {
        let target = self.targets.get(member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(member_id) else { return false };
        m.session_deadline = now + session_timeout(&m.meta, &Settings::default());
        changes.sessions.push((member_id.to_string(), m.session_deadline));
        m.member_epoch != assignment_epoch || m.state != MemberState::Stable || m.assigned != target
    }

    /// Rebuilds a group from its records; every member gets a fresh session.
    pub fn restore(
        group_id: &str,
        loaded: LoadedGroup,
        topics: &Topics,
        settings: &Settings,
        now: Instant,
    ) -> Option<(Self, Vec<(String, Instant)>)> {
        let epoch = loaded.epoch?;
        let mut g = ConsumerGroup::new(group_id);
        g.epoch = epoch;
        g.assignment_epoch = loaded.assignment_epoch;
        g.targets = loaded.targets;
        let mut sessions = Vec::new();
        for (id, meta) in loaded.members {
            let deadline = now + session_timeout(&meta, settings);
            let current = loaded.current.get(&id).cloned().unwrap_or_default();
            let m = ConsumerMember {
                member_id: id.clone(),
                meta,
                state: MemberState::from_code(current.state),
                member_epoch: current.member_epoch,
                previous_member_epoch: current.previous_member_epoch,
                assigned: current.assigned,
                pending_revocation: current.pending_revocation,
                assignment_epochs: current.assignment_epochs,
                session_deadline: deadline,
                revocation_deadline: None,
            };
            g.add_partition_epochs(&m);
            sessions.push((id.clone(), deadline));
            g.members.insert(id, m);
        }
        g.targets.retain(|id, _| g.members.contains_key(id));
        g.subscribed = g.compute_subscribed(topics);
        Some((g, sessions))
    }
}

/// Which partitions an offset commit may write (`check_commit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitFence {
    Any,
    /// Only these; the others are refused with STALE_MEMBER_EPOCH.
    Partitions(BTreeSet<(Uuid, i32)>),
}

impl CommitFence {
    pub fn allows(&self, topic_id: Option<Uuid>, partition: i32) -> bool {
        match self {
            CommitFence::Any => true,
            CommitFence::Partitions(set) => topic_id.is_some_and(|t| set.contains(&(t, partition))),
        }
    }
}

/// KIP-1251: a partition the member owned before keeps the epoch it was
/// assigned at; one it did not own (or any, for a member starting over at
/// epoch 0, such as a replaced static member) is assigned at its new
/// member epoch.
fn carry_assignment_epochs(before: &ConsumerMember, after: &mut ConsumerMember) {
    let owned_before = |t: &Uuid, p: &i32| {
        [&before.assigned, &before.pending_revocation].iter().any(|a| a.get(t).is_some_and(|ps| ps.contains(p)))
    };
    let mut epochs = AssignmentEpochs::new();
    for (t, parts) in after.assigned.iter().chain(after.pending_revocation.iter()) {
        for p in parts {
            let epoch = match before.assignment_epochs.get(&(*t, *p)) {
                Some(e) if owned_before(t, p) => *e,
                // owned under an epoch record without assignment epochs
                None if owned_before(t, p) && before.member_epoch > 0 => before.member_epoch,
                _ => after.member_epoch,
            };
            epochs.insert((*t, *p), epoch);
        }
    }
    after.assignment_epochs = epochs;
}

/// A member's session: its JoinGroup's for a classic member.
pub fn session_timeout(meta: &StoredMemberMetadata, settings: &Settings) -> Duration {
    let ms = meta.classic.as_ref().map_or(settings.session_timeout_ms, |c| c.session_timeout_ms);
    Duration::from_millis(ms.max(1) as u64)
}

fn owns_any(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    owned.iter().any(|(t, parts)| revoking.get(t).is_some_and(|r| parts.iter().any(|p| r.contains(p))))
}

fn is_subset(owned: Option<&Assignment>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else { return false };
    owned.iter().all(|(t, parts)| parts.is_empty() || assigned.get(t).is_some_and(|a| parts.is_subset(a)))
}

/// FENCED_MEMBER_EPOCH unless the epoch is the member's, or its previous
/// one with nothing owned beyond the assignment (the answer that bumped it
/// was lost).
fn check_epoch(m: &ConsumerMember, received: i32, owned: Option<&Assignment>) -> Result<(), Refusal> {
    if received > m.member_epoch
        || (received < m.member_epoch && (received != m.previous_member_epoch || !is_subset(owned, &m.assigned)))
    {
        return refuse(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a member epoch ({received}) other than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                m.member_epoch
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics { version: 1, names: [("t".to_string(), (Uuid::from_u128(1), 6))].into() }
    }

    fn join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            owned: Some(owned.clone()),
            rebalance_timeout_ms: -1,
            ..Default::default()
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    #[test]
    fn second_member_gets_partitions_only_after_the_first_revokes() {
        let (t, s, now) = (topics(), Settings::default(), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let mut ch = Changes::default();
        let a1 = g.heartbeat(join("a"), &t, &s, now, &mut ch).unwrap();
        assert_eq!((a1.member_epoch, count(a1.assignment.as_ref().unwrap())), (1, 6));
        let a_owned = a1.assignment.unwrap();
        let b1 = g.heartbeat(join("b"), &t, &s, now, &mut ch).unwrap();
        assert_eq!(b1.member_epoch, 2);
        assert_eq!(count(b1.assignment.as_ref().unwrap()), 0, "a still owns everything");
        assert_eq!(g.state_name(), "Reconciling");
        // a is told to revoke three, keeping epoch 1
        let a2 = g.heartbeat(beat("a", 1, &a_owned), &t, &s, now, &mut ch).unwrap();
        assert_eq!(a2.member_epoch, 1);
        let a_kept = a2.assignment.unwrap();
        assert_eq!(count(&a_kept), 3);
        // a reports the revocation done: epoch 2
        let a3 = g.heartbeat(beat("a", 1, &a_kept), &t, &s, now, &mut ch).unwrap();
        assert_eq!(a3.member_epoch, 2);
        // b now gets the released three
        let b2 = g.heartbeat(beat("b", 2, &Assignment::new()), &t, &s, now, &mut ch).unwrap();
        let b_owned = b2.assignment.unwrap();
        assert_eq!(count(&b_owned), 3);
        assert!(b_owned[&Uuid::from_u128(1)].is_disjoint(&a_kept[&Uuid::from_u128(1)]));
        assert_eq!(g.state_name(), "Stable");
        // stale epochs are fenced, a lost response (previous epoch, owned subset) is not
        assert_eq!(
            g.heartbeat(beat("a", 5, &a_kept), &t, &s, now, &mut ch).unwrap_err().error,
            ResponseError::FencedMemberEpoch
        );
        assert!(g.heartbeat(beat("a", 1, &a_kept), &t, &s, now, &mut ch).is_ok());
        assert_eq!(
            g.heartbeat(beat("zz", 1, &a_kept), &t, &s, now, &mut ch).unwrap_err().error,
            ResponseError::UnknownMemberId
        );
        // b leaves: a gets everything back
        g.heartbeat(beat("b", -1, &b_owned), &t, &s, now, &mut ch).unwrap();
        let a4 = g.heartbeat(beat("a", 2, &a_kept), &t, &s, now, &mut ch).unwrap();
        assert_eq!((a4.member_epoch, count(a4.assignment.as_ref().unwrap())), (3, 6));
    }

    #[test]
    fn an_older_epoch_commits_only_the_partitions_assigned_at_or_before_it() {
        // KIP-1251: a's revocation bumps it from epoch 1 to 2; a commit it sent
        // with epoch 1 before seeing that still covers the partitions it kept
        let (t, s, now) = (topics(), Settings::default(), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let mut ch = Changes::default();
        let topic = Uuid::from_u128(1);
        let owned = g.heartbeat(join("a"), &t, &s, now, &mut ch).unwrap().assignment.unwrap();
        g.heartbeat(join("b"), &t, &s, now, &mut ch).unwrap();
        let kept = g.heartbeat(beat("a", 1, &owned), &t, &s, now, &mut ch).unwrap().assignment.unwrap();
        assert_eq!(g.heartbeat(beat("a", 1, &kept), &t, &s, now, &mut ch).unwrap().member_epoch, 2);
        let b = g.heartbeat(beat("b", 2, &Assignment::new()), &t, &s, now, &mut ch).unwrap();
        let b_owned = b.assignment.unwrap();
        assert_eq!(g.check_commit("a", 2, false, 9), Ok(CommitFence::Any));
        let kept_set: BTreeSet<(Uuid, i32)> = kept[&topic].iter().map(|p| (topic, *p)).collect();
        assert_eq!(g.check_commit("a", 1, false, 9), Ok(CommitFence::Partitions(kept_set.clone())));
        let fence = g.check_commit("a", 1, false, 9).unwrap();
        let given_to_b = *b_owned[&topic].iter().next().unwrap();
        assert!(fence.allows(Some(topic), *kept[&topic].iter().next().unwrap()));
        assert!(!fence.allows(Some(topic), given_to_b), "a partition a no longer owns");
        assert!(!fence.allows(None, 0), "an unknown topic");
        // b got its partitions at epoch 2: an epoch-1 commit of them is refused
        assert_eq!(g.check_commit("b", 1, false, 9), Ok(CommitFence::Partitions(BTreeSet::new())));
        // a newer epoch than the member's, a transactional or classic member: strict
        assert_eq!(g.check_commit("a", 3, false, 9), Err(ResponseError::StaleMemberEpoch));
        assert_eq!(g.check_commit("a", 1, true, 0), Err(ResponseError::IllegalGeneration));
        assert_eq!(g.check_commit("zz", 1, false, 9), Err(ResponseError::UnknownMemberId));
        assert_eq!(g.check_commit("a", 2, false, 8), Err(ResponseError::UnsupportedVersion));
        // the epochs survive a reload from the records
        let current = g.current_record(&g.members["a"]).1.unwrap();
        let stored = rec::decode_current_assignment_value(&current).unwrap();
        assert_eq!(stored.assignment_epochs, kept_set.iter().map(|tp| (*tp, 1)).collect());
    }

    #[test]
    fn a_member_that_does_not_revoke_in_its_rebalance_timeout_is_fenced() {
        let (t, s, now) = (topics(), Settings::default(), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let mut ch = Changes::default();
        let owned = g.heartbeat(join("a"), &t, &s, now, &mut ch).unwrap().assignment.unwrap();
        g.heartbeat(join("b"), &t, &s, now, &mut ch).unwrap();
        let a2 = g.heartbeat(beat("a", 1, &owned), &t, &s, now, &mut ch).unwrap();
        assert_eq!(count(&a2.assignment.unwrap()), 3);
        // a keeps heartbeating but never reports the revocation done
        let later = now + Duration::from_millis(30_001);
        g.heartbeat(beat("a", 1, &owned), &t, &s, later, &mut ch).unwrap();
        g.on_session_wake("a", later, &t, &mut ch);
        assert!(!g.members.contains_key("a"));
    }

    #[test]
    fn session_expiry_fences_and_static_members_come_back() {
        let (t, s, now) = (topics(), Settings::default(), Instant::now());
        let mut g = ConsumerGroup::new("g");
        let mut ch = Changes::default();
        let mut j = join("a");
        j.instance_id = Some("i1".into());
        let a = g.heartbeat(j.clone(), &t, &s, now, &mut ch).unwrap();
        let owned = a.assignment.unwrap();
        // a live static member cannot be replaced
        let mut j2 = j.clone();
        j2.member_id = "a2".into();
        assert_eq!(
            g.heartbeat(j2.clone(), &t, &s, now, &mut ch).unwrap_err().error,
            ResponseError::UnreleasedInstanceId
        );
        let mut leave = beat("a", STATIC_LEAVE_EPOCH, &owned);
        leave.instance_id = Some("i1".into());
        assert_eq!(g.heartbeat(leave, &t, &s, now, &mut ch).unwrap().member_epoch, STATIC_LEAVE_EPOCH);
        let back = g.heartbeat(j2, &t, &s, now, &mut ch).unwrap();
        assert_eq!(back.assignment.unwrap(), owned, "the new instance keeps the assignment");
        assert_eq!(back.member_epoch, 1, "no rebalance");
        let later = now + Duration::from_millis(s.session_timeout_ms as u64 + 1);
        g.on_session_wake("a2", later, &t, &mut ch);
        assert!(g.members.is_empty());
        assert_eq!(g.state_name(), "Empty");
    }

    #[test]
    fn regex_is_a_full_match_and_new_topics_join_the_subscription() {
        let (s, now) = (Settings::default(), Instant::now());
        let names = [("topic".to_string(), (Uuid::from_u128(1), 1)), ("topic-1".to_string(), (Uuid::from_u128(2), 1))];
        let mut t = Topics { version: 1, names: names.into() };
        let mut g = ConsumerGroup::new("g");
        let mut ch = Changes::default();
        let mut j = join("a");
        j.subscribed_topic_names = None;
        j.subscribed_topic_regex = Some("^topic".into());
        let a = g.heartbeat(j, &t, &s, now, &mut ch).unwrap();
        assert_eq!(a.assignment.unwrap().keys().copied().collect::<Vec<_>>(), vec![Uuid::from_u128(1)]);
        t.names.insert("topic".into(), (Uuid::from_u128(1), 3));
        t.version += 1;
        let a2 = g.heartbeat(beat("a", 1, &[(Uuid::from_u128(1), [0].into())].into()), &t, &s, now, &mut ch).unwrap();
        assert_eq!(count(&a2.assignment.unwrap()), 3, "new partitions are picked up");
        assert!(validate(&Heartbeat { subscribed_topic_regex: Some("(".into()), ..join("x") }, "g", 1, &s.assignors)
            .is_err_and(|r| r.error == ResponseError::InvalidRegularExpression));
    }
}
