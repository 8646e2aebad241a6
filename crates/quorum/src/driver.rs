//! The quorum at work: one thread (the driver) owns the [`QuorumNode`],
//! ticks it every [`TICK`], steps it with messages from peers, proposes,
//! persists and applies what it has ready, sends its messages through the
//! transport's peer tasks, publishes each new image, and runs the active
//! controller's duties. [`Quorum`] is the handle the broker uses.
//!
//! A node that cannot persist its metadata log (or read an entry) stops
//! the process at once with exit status [`EXIT_METADATA_LOG_FAILED`]: it
//! would otherwise serve a frozen image, drop proposals and keep
//! heartbeating, so it would never be fenced.

use std::collections::HashMap;
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
use crate::node::{raft_id, QuorumNode};
use crate::transport;

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

pub(crate) enum Cmd {
    Propose {
        data: Vec<u8>,
        id: u64,
        done: Option<mpsc::SyncSender<bool>>,
    },
    Step(Box<Message>),
    Heartbeat(Heartbeat),
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
    peers: OnceLock<HashMap<u64, tokio::sync::mpsc::Sender<Bytes>>>,
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
            peers: OnceLock::new(),
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

    /// Sends this broker's heartbeat to every voter (itself included).
    pub fn heartbeat(&self, hb: Heartbeat) {
        if let Some(peers) = self.peers.get() {
            let frame = transport::heartbeat_frame(&hb);
            for peer in peers.values() {
                let _ = peer.try_send(frame.clone());
            }
        }
        let _ = self.tx.try_send(Cmd::Heartbeat(hb));
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

    /// Starts the driver thread and the network tasks. `publisher` sees
    /// every new image.
    pub fn start(
        self: &Arc<Self>,
        node: QuorumNode,
        voters: &[(i32, String)],
        listen: Option<SocketAddr>,
        settings: DutySettings,
        publisher: Publisher,
        tls: Option<Arc<transport::ControllerTls>>,
    ) -> anyhow::Result<()> {
        let mut peers = HashMap::new();
        for (id, addr) in voters {
            if *id == self.node_id {
                continue;
            }
            let (tx, rx) = tokio::sync::mpsc::channel(transport::PEER_QUEUE);
            tokio::spawn(transport::peer_sender(addr.clone(), tls.clone(), rx, self.stop.subscribe()));
            peers.insert(raft_id(*id), tx);
        }
        let _ = self.peers.set(peers);
        if let Some(listen) = listen {
            let listener = std::net::TcpListener::bind(listen)
                .map_err(|e| anyhow::anyhow!("cannot listen on controller listener {listen}: {e}"))?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tokio::spawn(transport::accept_loop(listener, tls, self.tx.clone(), self.stop.subscribe()));
        }
        let rx = self.rx.lock().take().ok_or_else(|| anyhow::anyhow!("quorum already started"))?;
        let mut voter_ids: Vec<i32> = voters.iter().map(|(id, _)| *id).collect();
        voter_ids.sort_unstable();
        let quorum = self.clone();
        std::thread::Builder::new().name("metadata-quorum".into()).spawn(move || {
            let mut driver = Driver {
                quorum,
                node,
                rx,
                publisher,
                pending: HashMap::new(),
                duties: ControllerDuties::new(settings),
                voter_ids,
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

struct Driver {
    quorum: Arc<Quorum>,
    node: QuorumNode,
    rx: mpsc::Receiver<Cmd>,
    publisher: Publisher,
    pending: HashMap<u64, (Instant, mpsc::SyncSender<bool>)>,
    duties: ControllerDuties,
    voter_ids: Vec<i32>,
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
        self.publish_status();
    }

    /// Refreshes what DescribeQuorum reports.
    fn publish_status(&mut self) {
        let now = now_ms();
        let me = self.quorum.node_id;
        let ends = self.node.voter_log_ends();
        let leader_end = ends.as_ref().and_then(|e| e.iter().find(|(id, _)| *id == me)).map(|(_, end)| *end);
        let voters = self
            .voter_ids
            .iter()
            .map(|&id| {
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
            })
            .collect();
        *self.quorum.status.write() = QuorumStatus {
            leader: self.node.leader(),
            epoch: self.node.term() as i32,
            high_watermark: self.node.commit_index() as i64,
            voters,
        };
    }

    fn send(&self, messages: Vec<Message>) {
        let Some(peers) = self.quorum.peers.get() else { return };
        for msg in messages {
            let Some(peer) = peers.get(&msg.to) else { continue };
            if let Some(frame) = transport::raft_frame(&msg) {
                let _ = peer.try_send(frame);
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
