//! One voter of the metadata quorum as a state machine: raft-rs's
//! `RawNode` over the [`MetadataLog`], the image its committed entries
//! build, and snapshots. No threads, sockets or clocks: the caller ticks
//! it, steps it with messages from peers, proposes, and calls
//! [`QuorumNode::process_ready`], which persists what Raft asks, applies
//! committed entries and returns the messages to send. The driver
//! ([`crate::driver`]) runs it on a thread with real sockets; the tests
//! drive several of them by hand (elections, partitions, restarts,
//! snapshots).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfChangeV2, Entry, EntryType, Message, MessageType};
use raft::prelude::{Config, RawNode};
use raft::StateRole;
use vltava_metadata::{EntryData, MetadataImage};

use crate::applied::AppliedIds;
use crate::log::{LogSettings, LogStorage, MetadataLog, OnCorruption};
use crate::membership::{self, Membership, VoterChange};
use crate::QuorumError;

/// raft-rs ids must be non-zero; Kafka node ids start at 0.
pub fn raft_id(node_id: i32) -> u64 {
    node_id as u64 + 1
}

pub fn node_id(raft_id: u64) -> i32 {
    raft_id as i32 - 1
}

/// Ticks without a leader's heartbeat before a follower campaigns.
pub const ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// Largest append message raft-rs builds.
const MESSAGE_BYTES_MAX: u64 = 1 << 20;
/// Appends in flight to one follower.
const INFLIGHT_MESSAGES_MAX: usize = 256;

#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub node_id: i32,
    /// Every voter's node id (this node's included); empty: this node alone.
    /// Only the start of a log: once the log holds a membership (a
    /// snapshot, a change), that decides.
    pub voters: Vec<i32>,
    /// The controller endpoints (`host:port`) known from the configuration.
    pub endpoints: Vec<(i32, String)>,
    /// This node joins an existing quorum (`controller.quorum.bootstrap.servers`
    /// naming others): a log without a membership starts with none, and
    /// the leader adds this node as a learner.
    pub join: bool,
    pub log: LogSettings,
    /// `metadata.log.max.record.bytes.between.snapshots`: snapshot after
    /// this many bytes of new entries.
    pub snapshot_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms`: snapshot at least this often
    /// when something changed (zero: never by time).
    pub snapshot_interval: Duration,
    pub on_corruption: OnCorruption,
}

impl NodeSettings {
    pub fn new(node_id: i32, voters: Vec<i32>) -> Self {
        Self {
            node_id,
            voters,
            endpoints: Vec::new(),
            join: false,
            log: LogSettings::default(),
            snapshot_bytes: 20 << 20,
            snapshot_interval: Duration::from_secs(3600),
            on_corruption: OnCorruption::Refuse,
        }
    }

    fn raft_voters(&self) -> Vec<u64> {
        if self.join {
            Vec::new()
        } else if self.voters.is_empty() {
            vec![raft_id(self.node_id)]
        } else {
            self.voters.iter().map(|v| raft_id(*v)).collect()
        }
    }
}

/// What one [`QuorumNode::process_ready`] produced.
#[derive(Debug, Default)]
pub struct Progress {
    /// Messages to send to peers.
    pub messages: Vec<Message>,
    /// Proposal ids of the entries applied (first copies and skipped
    /// retries alike: their proposers may stop waiting).
    pub applied: Vec<u64>,
    /// The image changed.
    pub image_changed: bool,
    /// The membership changed (voters, learners or endpoints).
    pub membership_changed: bool,
    /// Log indexes of the membership changes applied.
    pub applied_changes: Vec<u64>,
}

pub struct QuorumNode {
    raw: RawNode<LogStorage>,
    log: MetadataLog,
    image: Arc<MetadataImage>,
    applied_ids: AppliedIds,
    applied_index: u64,
    settings: NodeSettings,
    last_snapshot: Instant,
    /// Messages of our own to send with the next ready state.
    outbox: Vec<Message>,
    /// A member was added since the last snapshot taken for it.
    added_a_member: bool,
}

impl QuorumNode {
    /// Opens the metadata log in `dir` and rebuilds the image from its
    /// newest snapshot and the committed entries after it.
    pub fn open(dir: &Path, settings: NodeSettings, now: Instant) -> Result<Self, QuorumError> {
        let voters = settings.raft_voters();
        let (mut log, recovered) = MetadataLog::open(dir, &voters, &settings.log, settings.on_corruption)?;
        let (mut image, mut applied_ids, mut applied_index) = match recovered.snapshot {
            Some(s) => (s.image, s.applied, s.index),
            None => (MetadataImage::default(), AppliedIds::default(), 0),
        };
        let mut changes = Vec::new();
        for entry in &recovered.committed {
            if let Some(cc) = membership::conf_change_of(entry) {
                changes.push((entry.index, cc));
            } else if let Some(data) = decode(entry)? {
                if applied_ids.first_time(data.id) {
                    image.apply_mut(&data.records);
                }
            }
            applied_index = entry.index;
        }
        let config = Config {
            id: raft_id(settings.node_id),
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            applied: applied_index,
            max_size_per_msg: MESSAGE_BYTES_MAX,
            max_inflight_msgs: INFLIGHT_MESSAGES_MAX,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut raw = RawNode::new(&config, log.storage(), &logger)?;
        // the configured endpoints, then what the log says
        let (mut conf, logged) = log.membership();
        let mut endpoints: BTreeMap<u64, String> =
            settings.endpoints.iter().filter(|(_, e)| !e.is_empty()).map(|(id, e)| (raft_id(*id), e.clone())).collect();
        endpoints.extend(logged);
        // raft-rs starts from the membership as of the snapshot; the
        // committed changes after it are applied as they were the first time
        for (index, cc) in changes {
            if let Some(next) = apply_change(&mut raw, index, cc, &mut endpoints) {
                conf = next;
            }
        }
        endpoints.retain(|id, _| conf.voters.contains(id) || conf.learners.contains(id));
        log.set_membership(conf.clone(), endpoints);
        if conf.voters == [raft_id(settings.node_id)] {
            // a quorum of one elects itself at once
            let _ = raw.campaign();
        }
        Ok(Self {
            raw,
            log,
            image: Arc::new(image),
            applied_ids,
            applied_index,
            settings,
            last_snapshot: now,
            outbox: Vec::new(),
            added_a_member: false,
        })
    }

    /// Voters, learners and their endpoints, as of the last applied entry.
    pub fn membership(&self) -> Membership {
        let (conf, endpoints) = self.log.membership();
        Membership::new(&conf, &endpoints)
    }

    /// Whether a membership change is proposed and not applied yet (raft-rs
    /// takes one at a time).
    pub fn has_pending_change(&self) -> bool {
        self.raw.raft.has_pending_conf()
    }

    /// Proposes a membership change (on the leader); returns the index of
    /// its entry, whose application [`Progress::applied_changes`] reports.
    /// The caller checks that the change makes sense ([`Membership`]).
    pub fn propose_change(&mut self, change: &VoterChange) -> raft::Result<u64> {
        if !self.is_leader() || self.has_pending_change() {
            return Err(raft::Error::ProposalDropped);
        }
        self.raw.propose_conf_change(Vec::new(), change.conf_change())?;
        Ok(self.raw.raft.raft_log.last_index())
    }

    /// The leader's knowledge of how far `id`'s log matches its own.
    pub fn matched(&self, id: i32) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        self.raw.raft.prs().get(raft_id(id)).map(|pr| pr.matched)
    }

    /// A leader that is no longer a voter (RemoveRaftVoter of itself) hands
    /// the leadership to the voter furthest ahead, as Kafka's leader
    /// resigns once its removal commits. raft-rs keeps such a leader
    /// leading (without a vote of its own) until it is told.
    fn resign_if_removed(&mut self) {
        if !self.resigning() || self.raw.raft.lead_transferee.is_some() {
            return;
        }
        if let Some(target) = self.handover_target() {
            tracing::info!(to = node_id(target), "removed from the voters: handing the leadership over");
            self.raw.transfer_leader(target);
        }
    }

    pub fn image(&self) -> &Arc<MetadataImage> {
        &self.image
    }

    pub fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    /// The last entry applied to the image.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Whether this node leads the quorum. A leader removed from the voters
    /// does not: it only hands the leadership over (raft-rs still calls it
    /// leader until the next term reaches it).
    pub fn is_leader(&self) -> bool {
        self.raft_leader() && !self.resigning()
    }

    /// raft-rs's own view: this node is in the leader state.
    fn raft_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn resigning(&self) -> bool {
        self.raft_leader() && !self.raw.raft.prs().conf().voters().contains(self.raw.raft.id)
    }

    /// The leader's node id, or -1 (also while this node resigns).
    pub fn leader(&self) -> i32 {
        match self.raw.raft.leader_id {
            raft::INVALID_ID => -1,
            _ if self.resigning() => -1,
            id => node_id(id),
        }
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The last entry known committed.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// The leader's view of how far each voter's log goes (this node's own
    /// last index for itself); `None` on a follower, which knows only its own.
    pub fn voter_log_ends(&self) -> Option<Vec<(i32, u64)>> {
        if !self.raft_leader() {
            return None;
        }
        let me = self.raw.raft.id;
        let ends = self.raw.raft.prs().iter().map(|(id, pr)| {
            let end = if *id == me { self.log.last_index() } else { pr.matched };
            (node_id(*id), end)
        });
        Some(ends.collect())
    }

    pub fn log(&self) -> &MetadataLog {
        &self.log
    }

    pub fn tick(&mut self) {
        self.raw.tick();
        self.resign_if_removed();
    }

    /// Steps a message from a peer.
    ///
    /// raft-rs assumes a voter never loses what it acknowledged. One whose
    /// metadata directory was lost (or cut by
    /// `--truncate-corrupt-metadata-log`) restarts with less than the
    /// leader believes it has: a heartbeat would then commit entries it
    /// lacks (raft-rs panics), and the leader would ignore its rejections
    /// as stale and never send what it misses. So a follower lowers such a
    /// commit to its own log end and answers with a rejection naming that
    /// end; a leader receiving a rejection below what it thought the
    /// follower had probes it again from there (sending a snapshot when the
    /// entries are gone). Lowering the leader's view of a follower never
    /// un-commits anything.
    pub fn step(&mut self, mut message: Message) -> raft::Result<()> {
        let last = self.log.last_index();
        match message.get_msg_type() {
            MessageType::MsgHeartbeat if message.commit > last => {
                let mut behind = Message::default();
                behind.set_msg_type(MessageType::MsgAppendResponse);
                behind.to = message.from;
                behind.from = message.to;
                behind.term = message.term;
                behind.reject = true;
                behind.index = message.commit;
                behind.reject_hint = last;
                self.outbox.push(behind);
                message.commit = last;
            }
            MessageType::MsgAppendResponse if message.reject && self.raft_leader() => {
                if let Some(pr) = self.raw.raft.mut_prs().get_mut(message.from) {
                    if message.reject_hint < pr.matched {
                        tracing::warn!(
                            voter = node_id(message.from),
                            log_end = message.reject_hint,
                            acknowledged = pr.matched,
                            "a voter lost metadata entries it had acknowledged; sending them again"
                        );
                        pr.matched = message.reject_hint;
                        pr.become_probe();
                    }
                }
            }
            _ => {}
        }
        self.raw.step(message)
    }

    /// Proposes `data` (an encoded [`EntryData`]); fails while there is no
    /// leader to take it.
    pub fn propose(&mut self, data: Vec<u8>) -> raft::Result<()> {
        self.raw.propose(vec![], data)
    }

    pub fn campaign(&mut self) -> raft::Result<()> {
        self.raw.campaign()
    }

    /// Hands the leadership to another voter (before a clean stop).
    pub fn resign(&mut self) {
        if !self.is_leader() {
            return;
        }
        if let Some(target) = self.handover_target() {
            self.raw.transfer_leader(target);
        }
    }

    /// The voter (not a learner: raft-rs ignores a transfer to one) other
    /// than this node whose log is furthest ahead.
    fn handover_target(&self) -> Option<u64> {
        let me = self.raw.raft.id;
        let voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        voters
            .into_iter()
            .filter(|id| *id != me)
            .max_by_key(|id| self.raw.raft.prs().get(*id).map_or(0, |pr| pr.matched))
    }

    pub fn has_ready(&self) -> bool {
        !self.outbox.is_empty() || self.raw.has_ready()
    }

    /// Persists and applies what Raft has ready; returns the messages to
    /// send and what was applied. An error means this node can no longer
    /// keep its metadata: the caller must stop it.
    pub fn process_ready(&mut self, now: Instant) -> Result<Progress, QuorumError> {
        let mut progress = Progress { messages: std::mem::take(&mut self.outbox), ..Default::default() };
        if !self.raw.has_ready() {
            return Ok(progress);
        }
        let mut ready = self.raw.ready();
        progress.messages.extend(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let content = self.log.install_snapshot(ready.snapshot())?;
            self.image = Arc::new(content.image);
            self.applied_ids = content.applied;
            self.applied_index = content.index;
            progress.image_changed = true;
            progress.membership_changed = true;
        }
        self.apply(ready.take_committed_entries(), &mut progress)?;
        self.log.append(ready.entries())?;
        if let Some(hs) = ready.hs() {
            self.log.set_hard_state(hs)?;
        }
        progress.messages.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit)?;
        }
        progress.messages.extend(light.take_messages());
        self.apply(light.take_committed_entries(), &mut progress)?;
        self.raw.advance_apply();
        if progress.membership_changed && self.added_a_member {
            // A node that joins has no log to start from, and raft-rs
            // refuses a snapshot whose membership lacks it: a snapshot
            // taken now, after its addition, is what the leader sends it.
            self.added_a_member = false;
            self.snapshot_now(now)?;
        }
        self.maybe_snapshot(now)?;
        self.resign_if_removed();
        Ok(progress)
    }

    fn apply(&mut self, entries: Vec<Entry>, progress: &mut Progress) -> Result<(), QuorumError> {
        let mut image = (*self.image).clone();
        let mut changed = false;
        for entry in entries {
            self.applied_index = entry.index;
            if let Some(cc) = membership::conf_change_of(&entry) {
                let (before, mut endpoints) = self.log.membership();
                if let Some(conf) = apply_change(&mut self.raw, entry.index, cc, &mut endpoints) {
                    self.added_a_member |= conf
                        .learners
                        .iter()
                        .chain(&conf.voters)
                        .any(|id| !before.learners.contains(id) && !before.voters.contains(id));
                    self.log.set_membership(conf, endpoints);
                    progress.membership_changed = true;
                }
                progress.applied_changes.push(entry.index);
            } else if let Some(data) = decode(&entry)? {
                if self.applied_ids.first_time(data.id) {
                    image.apply_mut(&data.records);
                    changed = true;
                }
                progress.applied.push(data.id);
            }
        }
        if changed {
            self.image = Arc::new(image);
            progress.image_changed = true;
        }
        Ok(())
    }

    /// Takes a snapshot of the image when enough entries were added since
    /// the last one, or enough time passed.
    fn maybe_snapshot(&mut self, now: Instant) -> Result<(), QuorumError> {
        if self.applied_index <= self.log.snapshot_index() {
            return Ok(());
        }
        let by_size = self.log.bytes_since_snapshot() >= self.settings.snapshot_bytes;
        let interval = self.settings.snapshot_interval;
        let by_time = !interval.is_zero() && now.saturating_duration_since(self.last_snapshot) >= interval;
        if !(by_size || by_time) {
            return Ok(());
        }
        self.snapshot_now(now)
    }

    /// Writes a snapshot of the image as applied so far.
    pub fn snapshot_now(&mut self, now: Instant) -> Result<(), QuorumError> {
        if self.applied_index <= self.log.snapshot_index() {
            return Ok(());
        }
        let content = self.log.snapshot_content(self.applied_index, &self.image, &self.applied_ids);
        self.log.take_snapshot(&content)?;
        self.last_snapshot = now;
        Ok(())
    }
}

/// Applies a committed membership change to raft-rs and the endpoints;
/// returns the new membership. A change raft-rs refuses (or cannot read) is
/// skipped, the same way on every node: the leader checks changes before
/// proposing them, so this is a bug's trace, not a reason to stop.
fn apply_change(
    raw: &mut RawNode<LogStorage>,
    index: u64,
    cc: Result<ConfChangeV2, String>,
    endpoints: &mut BTreeMap<u64, String>,
) -> Option<raft::eraftpb::ConfState> {
    let applied = cc.and_then(|cc| raw.apply_conf_change(&cc).map(|conf| (cc, conf)).map_err(|e| e.to_string()));
    match applied {
        Ok((cc, conf)) => {
            membership::note_endpoints(&cc, &conf, endpoints);
            tracing::info!(index, voters = ?conf.voters.iter().map(|v| node_id(*v)).collect::<Vec<_>>(), learners = ?conf.learners.iter().map(|v| node_id(*v)).collect::<Vec<_>>(), "metadata quorum membership changed");
            Some(conf)
        }
        Err(reason) => {
            tracing::error!(index, %reason, "skipping a membership change raft-rs refuses");
            None
        }
    }
}

/// The records of a normal entry (`None`: a no-op or a configuration
/// change). Data this version cannot read stops the node: applying some
/// entries and not others would fork the image.
fn decode(entry: &Entry) -> Result<Option<EntryData>, QuorumError> {
    if entry.get_entry_type() != EntryType::EntryNormal {
        return Ok(None);
    }
    EntryData::decode(entry.get_data())
        .map_err(|e| QuorumError::Unreadable { index: entry.index, reason: e.to_string() })
}
