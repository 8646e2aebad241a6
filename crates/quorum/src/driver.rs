//! The quorum at work: one thread (the driver) owns the [`QuorumNode`],
//! ticks it every [`TICK`], steps it with messages from peers, proposes,
//! persists and applies what it has ready, sends its messages through the
//! transport's peer tasks, publishes each new image, and runs the active
//! controller's duties. [`Quorum`] is the handle the broker uses.
//!
//! The peers it sends to follow the membership the log holds
//! ([`crate::membership`]): a member added or removed gets or loses its
//! sender task. A controller that is no member (a new one started with
//! `controller.quorum.bootstrap.servers`, or a removed voter) asks the
//! bootstrap servers and the members it knows to let it join, every
//! [`JOIN_INTERVAL`]; the leader adds it as a learner. Voter changes
//! (AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter) run one at a time on
//! the leader ([`Quorum::change_voters`]).
//!
//! A node that cannot persist its metadata log (or read an entry) stops
//! the process at once with exit status [`EXIT_METADATA_LOG_FAILED`]: it
//! would otherwise serve a frozen image, drop proposals and keep
//! heartbeating, so it would never be fenced.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;
use raft::eraftpb::Message;
use tokio::sync::watch;
use vltava_metadata::{EntryData, MetadataImage, MetadataRecord};

use crate::controller::{ControllerDuties, DutySettings, Heartbeat};
use crate::membership::{Membership, VoterChange};
use crate::node::{raft_id, QuorumNode};
use crate::transport::{self, JoinRequest};
use crate::voter_change::{LeaderView, Step, VoterChangeInFlight, VoterError, VoterOp};

/// How often the Raft clock ticks.
pub const TICK: Duration = Duration::from_millis(100);
/// Commands queued for the driver (messages from peers beyond it are dropped).
const DRIVER_QUEUE: usize = 16_384;
/// A proposal not applied within this long may have been lost (forwarded
/// to a leader that died): it is proposed again.
const PROPOSAL_RETRY_AFTER: Duration = Duration::from_secs(3);
/// Waiters of proposals lost with a leader change are forgotten after this.
const PENDING_KEPT: Duration = Duration::from_secs(60);
/// Exit status of a node whose metadata log cannot be written (EX_IOERR).
pub const EXIT_METADATA_LOG_FAILED: i32 = 74;
/// How often a controller that is no member asks to join.
pub const JOIN_INTERVAL: Duration = Duration::from_secs(1);
/// A member that hears from no leader this long asks to join too: it may
/// have been removed without learning it (the leader stops sending to a
/// removed voter as soon as it applies the removal). The leader ignores a
/// member's request, and adds a removed node back as a learner.
pub const LEADERLESS_JOIN_AFTER: Duration = Duration::from_secs(5);

pub(crate) enum Cmd {
    Propose {
        data: Vec<u8>,
        id: u64,
        done: Option<mpsc::SyncSender<bool>>,
    },
    Step(Box<Message>),
    Heartbeat(Heartbeat),
    /// A controller that is no member asks to receive the log.
    Join(JoinRequest),
    /// The leader's answer to this node's join: where the members are.
    Members(Vec<(i32, String)>),
    ChangeVoters {
        op: VoterOp,
        timeout: Duration,
        done: mpsc::SyncSender<Result<(), VoterError>>,
    },
    /// Hand Raft leadership to another voter (before a clean stop).
    Resign,
    Stop,
}

/// Called with each new image, on the driver thread, before proposers are
/// told their records were applied.
pub type Publisher = Box<dyn Fn(&Arc<MetadataImage>) + Send + Sync>;

/// What DescribeQuorum reports: the quorum as this node sees it (a
/// follower knows only its own log end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumStatus {
    /// The leader's node id, or -1.
    pub leader: i32,
    /// The Raft term (Kafka's leader epoch of the metadata log).
    pub epoch: i32,
    /// Offsets below this are committed.
    pub high_watermark: i64,
    pub voters: Vec<VoterStatus>,
    /// Learners: controllers that receive the log without voting.
    pub observers: Vec<VoterStatus>,
    /// The controller endpoint (`host:port`) of each member, where known.
    pub endpoints: Vec<(i32, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterStatus {
    pub node_id: i32,
    /// -1 when unknown here.
    pub log_end_offset: i64,
    /// Wall-clock milliseconds of the last message from it, -1 if unknown.
    pub last_fetch_ms: i64,
    /// When it last had everything the leader had, -1 if unknown.
    pub last_caught_up_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Why a proposal did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposeError {
    /// No controller leader could take it in time.
    Timeout,
}

/// The handle the rest of the broker uses.
pub struct Quorum {
    node_id: i32,
    tx: mpsc::SyncSender<Cmd>,
    rx: parking_lot::Mutex<Option<mpsc::Receiver<Cmd>>>,
    image: RwLock<Arc<MetadataImage>>,
    /// The active controller's node id, or -1 while there is none.
    leader: AtomicI32,
    next_id: AtomicU64,
    peers: RwLock<HashMap<u64, Peer>>,
    /// Senders to the bootstrap servers (for join requests).
    bootstrap: OnceLock<Vec<tokio::sync::mpsc::Sender<Bytes>>>,
    runtime: OnceLock<tokio::runtime::Handle>,
    /// TLS to the other controllers, when the controller listener is SSL.
    tls: OnceLock<Option<Arc<transport::ControllerTls>>>,
    /// Stops the network tasks.
    stop: watch::Sender<bool>,
    status: RwLock<QuorumStatus>,
}

impl Quorum {
    pub fn new(node_id: i32, image: Arc<MetadataImage>) -> Self {
        let (tx, rx) = mpsc::sync_channel(DRIVER_QUEUE);
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
            as u64
            ^ ((node_id as u64) << 48);
        Self {
            node_id,
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
            image: RwLock::new(image),
            leader: AtomicI32::new(-1),
            next_id: AtomicU64::new(seed),
            peers: RwLock::new(HashMap::new()),
            bootstrap: OnceLock::new(),
            runtime: OnceLock::new(),
            tls: OnceLock::new(),
            stop: watch::channel(false).0,
            status: RwLock::new(QuorumStatus { leader: -1, ..QuorumStatus::default() }),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// The quorum as this node sees it (for DescribeQuorum).
    pub fn status(&self) -> QuorumStatus {
        self.status.read().clone()
    }

    /// The active controller, or -1.
    pub fn leader(&self) -> i32 {
        self.leader.load(Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == self.node_id
    }

    /// Proposes `records` as one entry and waits until this node applied
    /// them, at most `timeout`. While there is no leader it retries; when a
    /// proposal may have been lost (forwarded to a leader that died), it
    /// proposes the same entry again, whose copy is skipped if the first
    /// made it after all. Blocks: call it from request handlers, never from
    /// the driver thread.
    pub fn propose_and_wait(&self, records: Vec<MetadataRecord>, timeout: Duration) -> Result<(), ProposeError> {
        let deadline = Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        let data = EntryData { id, records }.encode();
        loop {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if self.tx.send(Cmd::Propose { data: data.clone(), id, done: Some(done_tx) }).is_err() {
                return Err(ProposeError::Timeout);
            }
            let wait = deadline.saturating_duration_since(Instant::now()).min(PROPOSAL_RETRY_AFTER);
            let wait = || done_rx.recv_timeout(wait);
            let outcome =
                if tokio::runtime::Handle::try_current().is_ok() { tokio::task::block_in_place(wait) } else { wait() };
            match outcome {
                Ok(true) => return Ok(()),
                _ if Instant::now() + Duration::from_millis(100) >= deadline => return Err(ProposeError::Timeout),
                // dropped (no leader yet): try again shortly
                Ok(false) => std::thread::sleep(Duration::from_millis(100)),
                // not applied in time: maybe lost on the way; propose it again
                Err(_) => tracing::debug!(id, "metadata proposal not applied yet; proposing it again"),
            }
        }
    }

    /// Proposes without waiting (ISR changes, registrations, fencing).
    pub fn propose(&self, records: Vec<MetadataRecord>) {
        let data = EntryData { id: self.next_id.fetch_add(1, Ordering::Relaxed).max(1), records }.encode();
        let _ = self.tx.try_send(Cmd::Propose { data, id: 0, done: None });
    }

    /// Sends this broker's heartbeat to every member (itself included).
    pub fn heartbeat(&self, hb: Heartbeat) {
        let frame = transport::heartbeat_frame(&hb);
        for peer in self.peers.read().values() {
            let _ = peer.tx.try_send(frame.clone());
        }
        let _ = self.tx.try_send(Cmd::Heartbeat(hb));
    }

    /// Asks the quorum (this node must lead it) for a voter change and
    /// waits for it to commit, at most `timeout`. Blocks, like
    /// [`Self::propose_and_wait`].
    pub fn change_voters(&self, op: VoterOp, timeout: Duration) -> Result<(), VoterError> {
        let (done, answer) = mpsc::sync_channel(1);
        let timed_out = || VoterError::TimedOut(format!("the voter change did not complete within {timeout:?}"));
        if self.tx.send(Cmd::ChangeVoters { op, timeout, done }).is_err() {
            return Err(VoterError::NotLeader);
        }
        // the driver answers by the deadline; the margin covers a busy driver
        let wait = || answer.recv_timeout(timeout + Duration::from_secs(5));
        let outcome =
            if tokio::runtime::Handle::try_current().is_ok() { tokio::task::block_in_place(wait) } else { wait() };
        outcome.unwrap_or_else(|_| Err(timed_out()))
    }

    /// Keeps one sender task per member with a known endpoint (`endpoints`):
    /// new members get one, removed ones lose theirs, a moved endpoint is
    /// reconnected.
    fn sync_peers(&self, endpoints: &BTreeMap<i32, String>) {
        let Some(runtime) = self.runtime.get() else { return };
        let mut peers = self.peers.write();
        peers.retain(|id, peer| endpoints.get(&crate::node::node_id(*id)) == Some(&peer.addr));
        for (id, addr) in endpoints {
            if *id == self.node_id || peers.contains_key(&raft_id(*id)) {
                continue;
            }
            let (tx, rx) = tokio::sync::mpsc::channel(transport::PEER_QUEUE);
            let tls = self.tls.get().cloned().flatten();
            runtime.spawn(transport::peer_sender(addr.clone(), tls, rx, self.stop.subscribe()));
            peers.insert(raft_id(*id), Peer { addr: addr.clone(), tx });
        }
    }

    /// Before a clean stop: let another voter lead the quorum.
    pub fn resign(&self) {
        let _ = self.tx.send(Cmd::Resign);
    }

    /// Stops the driver thread and the network tasks.
    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
        self.stop.send_replace(true);
    }

    /// Starts the driver thread and the network tasks (on the current
    /// tokio runtime). `publisher` sees every new image.
    pub fn start(
        self: &Arc<Self>,
        node: QuorumNode,
        network: QuorumNetwork,
        settings: DutySettings,
        publisher: Publisher,
    ) -> anyhow::Result<()> {
        let _ = self.runtime.set(tokio::runtime::Handle::current());
        let tls = network.tls.clone();
        let _ = self.tls.set(tls.clone());
        let membership = node.membership();
        self.sync_peers(&membership.endpoints);
        let bootstrap = network
            .bootstrap
            .iter()
            .map(|addr| {
                let (tx, rx) = tokio::sync::mpsc::channel(transport::PEER_QUEUE);
                tokio::spawn(transport::peer_sender(addr.clone(), tls.clone(), rx, self.stop.subscribe()));
                tx
            })
            .collect();
        let _ = self.bootstrap.set(bootstrap);
        if let Some(listen) = network.listen {
            let listener = std::net::TcpListener::bind(listen)
                .map_err(|e| anyhow::anyhow!("cannot listen on controller listener {listen}: {e}"))?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tokio::spawn(transport::accept_loop(listener, tls, self.tx.clone(), self.stop.subscribe()));
        }
        let rx = self.rx.lock().take().ok_or_else(|| anyhow::anyhow!("quorum already started"))?;
        let quorum = self.clone();
        std::thread::Builder::new().name("metadata-quorum".into()).spawn(move || {
            let mut driver = Driver {
                quorum,
                node,
                rx,
                publisher,
                pending: HashMap::new(),
                duties: ControllerDuties::new(settings),
                membership,
                told_endpoints: BTreeMap::new(),
                endpoint: network.endpoint,
                last_join: None,
                leaderless_since: None,
                voter_op: None,
                heard_ms: HashMap::new(),
                caught_up_ms: HashMap::new(),
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run()));
            if outcome.is_err() {
                // a node without its metadata thread would hang: stop loudly
                tracing::error!("the metadata quorum thread panicked; exiting");
                std::process::exit(70);
            }
        })?;
        Ok(())
    }
}

/// Where the quorum's network is.
#[derive(Clone, Default)]
pub struct QuorumNetwork {
    /// The controller listener to bind (none: a quorum of one without it).
    pub listen: Option<SocketAddr>,
    /// This node's controller endpoint as others reach it (`host:port`),
    /// sent when it asks to join.
    pub endpoint: Option<String>,
    /// `controller.quorum.bootstrap.servers`: where to ask to join.
    pub bootstrap: Vec<String>,
    /// TLS on the controller listener and to the other controllers.
    pub tls: Option<Arc<transport::ControllerTls>>,
}

struct Peer {
    addr: String,
    tx: tokio::sync::mpsc::Sender<Bytes>,
}

/// The voter change the leader is carrying out, and who waits for it.
struct VoterOpInFlight {
    change: VoterChangeInFlight,
    done: mpsc::SyncSender<Result<(), VoterError>>,
}

struct Driver {
    quorum: Arc<Quorum>,
    node: QuorumNode,
    rx: mpsc::Receiver<Cmd>,
    publisher: Publisher,
    pending: HashMap<u64, (Instant, mpsc::SyncSender<bool>)>,
    duties: ControllerDuties,
    membership: Membership,
    /// Endpoints the leader told this node while it joins (before its log
    /// has them).
    told_endpoints: BTreeMap<i32, String>,
    endpoint: Option<String>,
    last_join: Option<Instant>,
    /// Since when this node knows no leader.
    leaderless_since: Option<Instant>,
    voter_op: Option<VoterOpInFlight>,
    /// When each peer was last heard from (wall clock, ms).
    heard_ms: HashMap<i32, i64>,
    /// When each voter last had everything the leader had.
    caught_up_ms: HashMap<i32, i64>,
}

impl Driver {
    fn run(&mut self) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            match self.rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(Cmd::Propose { data, id, done }) => {
                    if self.node.propose(data).is_ok() {
                        if let Some(done) = done {
                            self.pending.insert(id, (Instant::now(), done));
                        }
                    } else if let Some(done) = done {
                        let _ = done.send(false);
                    }
                }
                Ok(Cmd::Step(msg)) => {
                    self.heard_ms.insert(crate::node::node_id(msg.from), now_ms());
                    let _ = self.node.step(*msg);
                }
                Ok(Cmd::Heartbeat(hb)) => self.duties.heard(&hb, Instant::now()),
                Ok(Cmd::Join(join)) => self.on_join(join),
                Ok(Cmd::Members(members)) => self.on_members(members),
                Ok(Cmd::ChangeVoters { op, timeout, done }) => self.start_voter_op(op, timeout, done),
                Ok(Cmd::Resign) => self.node.resign(),
                Ok(Cmd::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                self.node.tick();
                next_tick += TICK;
                if next_tick < now {
                    next_tick = now + TICK;
                }
                self.controller_duties(now);
                self.advance_voter_op();
                self.ask_to_join(now);
                self.publish_status();
            }
            if self.node.has_ready() {
                self.on_ready();
            }
        }
    }

    fn on_ready(&mut self) {
        let progress = match self.node.process_ready(Instant::now()) {
            Ok(p) => p,
            Err(e) => {
                let message = format!("cannot write or read the metadata log: {e}; stopping this node");
                tracing::error!("{message}");
                eprintln!("vltava: {message}");
                std::process::exit(EXIT_METADATA_LOG_FAILED);
            }
        };
        self.send(progress.messages);
        if progress.membership_changed {
            self.membership = self.node.membership();
            if self.membership.is_member(self.quorum.node_id) {
                self.told_endpoints.clear();
            }
            self.sync_peers();
        }
        if progress.image_changed {
            let image = self.node.image().clone();
            *self.quorum.image.write() = image.clone();
            (self.publisher)(&image);
        }
        for id in progress.applied {
            if let Some((_, waiter)) = self.pending.remove(&id) {
                let _ = waiter.send(true);
            }
        }
        self.quorum.leader.store(self.node.leader(), Ordering::Release);
        if !progress.applied_changes.is_empty() {
            self.advance_voter_op();
        }
        self.publish_status();
    }

    /// A controller that is no member (or hears from no leader) asks the
    /// bootstrap servers and the members it knows of (the leader among them
    /// adds it as a learner).
    fn ask_to_join(&mut self, now: Instant) {
        let me = self.quorum.node_id;
        if self.node.leader() >= 0 {
            self.leaderless_since = None;
        }
        let leaderless = *self.leaderless_since.get_or_insert(now);
        let Some(endpoint) = &self.endpoint else { return };
        let member = self.membership.is_member(me) && now.duration_since(leaderless) < LEADERLESS_JOIN_AFTER;
        if member || self.last_join.is_some_and(|t| now.duration_since(t) < JOIN_INTERVAL) {
            return;
        }
        self.last_join = Some(now);
        let frame = transport::join_frame(&JoinRequest { node_id: me, endpoint: endpoint.clone() });
        for tx in self.quorum.bootstrap.get().into_iter().flatten() {
            let _ = tx.try_send(frame.clone());
        }
        for peer in self.quorum.peers.read().values() {
            let _ = peer.tx.try_send(frame.clone());
        }
    }

    fn sync_peers(&self) {
        let mut endpoints = self.told_endpoints.clone();
        endpoints.extend(self.membership.endpoints.iter().map(|(id, e)| (*id, e.clone())));
        self.quorum.sync_peers(&endpoints);
    }

    /// A joining node learns where the members are (it answers the leader,
    /// which then sends it the log).
    fn on_members(&mut self, members: Vec<(i32, String)>) {
        if self.membership.is_member(self.quorum.node_id) {
            return;
        }
        let told: BTreeMap<i32, String> = members.into_iter().filter(|(_, e)| !e.is_empty()).collect();
        if told != self.told_endpoints {
            self.told_endpoints = told;
            self.sync_peers();
        }
    }

    /// The leader adds a controller that asks to join as a learner (one
    /// membership change at a time: it asks again until it is a member),
    /// and tells a learner that still asks (it has no log yet, so it does
    /// not know where to answer) where the members are.
    fn on_join(&mut self, join: JoinRequest) {
        if !self.node.is_leader() || join.node_id < 0 || join.node_id == self.quorum.node_id {
            return;
        }
        if self.membership.is_member(join.node_id) {
            let endpoints: Vec<(i32, String)> =
                self.membership.endpoints.iter().map(|(id, e)| (*id, e.clone())).collect();
            if let Some(peer) = self.quorum.peers.read().get(&raft_id(join.node_id)) {
                let _ = peer.tx.try_send(transport::members_frame(&endpoints));
            }
            return;
        }
        // one membership change at a time (a voter change in flight waits
        // for this one: AddRaftVoter may be waiting for this very node)
        if self.node.has_pending_change() {
            return;
        }
        if join.endpoint.is_empty() || join.endpoint.len() > transport::ENDPOINT_BYTES_MAX {
            return;
        }
        tracing::info!(node_id = join.node_id, endpoint = %join.endpoint, "a controller joins the metadata quorum as an observer");
        let change = VoterChange::AddLearner { id: join.node_id, endpoint: join.endpoint };
        if let Err(e) = self.node.propose_change(&change) {
            tracing::debug!(error = %e, "cannot add a learner now");
        }
    }

    fn start_voter_op(&mut self, op: VoterOp, timeout: Duration, done: mpsc::SyncSender<Result<(), VoterError>>) {
        let node = &self.node;
        let matched = |id| node.matched(id).unwrap_or(0);
        let view = leader_view(node, &self.membership, &matched);
        match VoterChangeInFlight::start(op, &view, self.voter_op.is_some(), Instant::now(), timeout) {
            Ok(change) => {
                tracing::info!(op = ?change.op, "voter change asked");
                self.voter_op = Some(VoterOpInFlight { change, done });
                self.advance_voter_op();
            }
            Err(refused) => {
                let _ = done.send(Err(refused));
            }
        }
    }

    /// Moves the voter change in flight on ([`VoterChangeInFlight::next`]).
    fn advance_voter_op(&mut self) {
        let Some(op) = &mut self.voter_op else { return };
        let node = &mut self.node;
        let step = {
            let matched = |id| node.matched(id).unwrap_or(0);
            op.change.next(&leader_view(node, &self.membership, &matched), Instant::now())
        };
        let outcome = match step {
            Step::Wait => return,
            Step::Done(outcome) => outcome,
            Step::Propose(change) => match node.propose_change(&change) {
                Ok(index) => {
                    op.change.proposed(index);
                    return;
                }
                Err(_) => Err(VoterError::NotLeader),
            },
        };
        if let Some(op) = self.voter_op.take() {
            tracing::info!(op = ?op.change.op, ?outcome, "voter change done");
            let _ = op.done.send(outcome);
        }
    }

    /// Refreshes what DescribeQuorum reports.
    fn publish_status(&mut self) {
        let now = now_ms();
        let me = self.quorum.node_id;
        let ends = self.node.voter_log_ends();
        let leader_end = ends.as_ref().and_then(|e| e.iter().find(|(id, _)| *id == me)).map(|(_, end)| *end);
        let (voter_ids, learner_ids) = (self.membership.voters.clone(), self.membership.learners.clone());
        let mut status_of = |&id: &i32| {
            let end = match &ends {
                Some(ends) => ends.iter().find(|(v, _)| *v == id).map(|(_, e)| *e as i64).unwrap_or(-1),
                None if id == me => self.node.log().last_index() as i64,
                None => -1,
            };
            if id == me || (leader_end.is_some() && end >= 0 && Some(end as u64) == leader_end) {
                self.caught_up_ms.insert(id, now);
            }
            VoterStatus {
                node_id: id,
                log_end_offset: end,
                last_fetch_ms: if id == me { now } else { self.heard_ms.get(&id).copied().unwrap_or(-1) },
                last_caught_up_ms: self.caught_up_ms.get(&id).copied().unwrap_or(-1),
            }
        };
        let voters = voter_ids.iter().map(&mut status_of).collect();
        let observers = learner_ids.iter().map(&mut status_of).collect();
        *self.quorum.status.write() = QuorumStatus {
            leader: self.node.leader(),
            epoch: self.node.term() as i32,
            high_watermark: self.node.commit_index() as i64,
            voters,
            observers,
            endpoints: self.membership.endpoints.iter().map(|(id, e)| (*id, e.clone())).collect(),
        };
    }

    fn send(&self, messages: Vec<Message>) {
        let peers = self.quorum.peers.read();
        for msg in messages {
            let Some(peer) = peers.get(&msg.to) else { continue };
            if let Some(frame) = transport::raft_frame(&msg) {
                let _ = peer.tx.try_send(frame);
            }
        }
    }

    fn controller_duties(&mut self, now: Instant) {
        // proposals lost with a leader change: their waiters gave up already
        self.pending.retain(|_, (at, _)| now.duration_since(*at) < PENDING_KEPT);
        let leader = self.node.is_leader();
        if leader && !self.quorum.is_leader() {
            tracing::info!(node_id = self.quorum.node_id, term = self.node.term(), "became the active controller");
        }
        let image = self.node.image().clone();
        let records = self.duties.on_tick(&image, leader, now);
        if !records.is_empty() {
            let data = EntryData { id: 0, records }.encode();
            let _ = self.node.propose(data);
        }
    }
}

/// What a voter change needs to know of the leader.
fn leader_view<'a>(node: &QuorumNode, membership: &'a Membership, matched: &'a dyn Fn(i32) -> u64) -> LeaderView<'a> {
    LeaderView {
        is_leader: node.is_leader(),
        pending_change: node.has_pending_change(),
        membership,
        applied_index: node.applied_index(),
        commit_index: node.commit_index(),
        matched,
    }
}
