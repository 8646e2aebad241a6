//! The metadata quorum: raft-rs replicates the metadata log among the
//! controller voters (`controller.quorum.voters`); every node applies the
//! committed records to its [`MetadataImage`] and acts on the result.
//!
//! raft-rs does no I/O of its own. One thread (the driver) owns the
//! `RawNode`: it ticks it every 100 ms, steps it with messages from peers,
//! proposes records, persists what `Ready` asks to [`RaftLog`] (fsynced
//! before any message that depends on it leaves), sends messages to peers,
//! and applies committed entries. The network side is tokio tasks: one
//! sender per peer (dropping messages while the peer is unreachable; Raft
//! retries) and the controller listener, whose frames are
//! `u32 length, u8 kind, payload` with kind 1 = a raft message (protobuf)
//! and kind 2 = a broker heartbeat (JSON).
//!
//! The Raft leader is the active controller: it fences brokers whose
//! heartbeats stop (and those shutting down), unfences them when they
//! come back, writes the cluster id once, and moves leaderships back to
//! preferred replicas. Other nodes' proposals are forwarded to it by
//! raft-rs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{Entry, EntryType, Message};
use raft::prelude::{Config, RawNode};
use raft::storage::MemStorage;
use raft::StateRole;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vltava_metadata::{AppliedIds, EntryData, MetadataImage, MetadataRecord, RaftLog};

const TICK: Duration = Duration::from_millis(100);
const FRAME_RAFT: u8 = 1;
const FRAME_HEARTBEAT: u8 = 2;
/// Largest quorum frame accepted.
const FRAME_BYTES_MAX: usize = 64 << 20;
/// Frames queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// Exit status of a node whose metadata log cannot be written (EX_IOERR).
pub const EXIT_METADATA_LOG_FAILED: i32 = 74;

/// raft-rs ids must be non-zero; Kafka node ids start at 0.
pub fn raft_id(node_id: i32) -> u64 {
    node_id as u64 + 1
}

fn node_id(raft_id: u64) -> i32 {
    raft_id as i32 - 1
}

/// What a broker tells the controllers every `broker.heartbeat.interval.ms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub incarnation: u64,
    /// Controlled shutdown: move my leaderships away.
    pub shutting_down: bool,
    /// Log directories that failed (I/O errors): this broker serves nothing
    /// from them until it restarts, so the controller fences it (one log
    /// directory per broker today) and its leaderships move.
    #[serde(default)]
    pub offline_log_dirs: Vec<String>,
}

enum Cmd {
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

/// The handle the rest of the broker uses.
pub struct Quorum {
    node_id: i32,
    tx: mpsc::Sender<Cmd>,
    rx: parking_lot::Mutex<Option<mpsc::Receiver<Cmd>>>,
    image: RwLock<Arc<MetadataImage>>,
    /// The active controller's node id, or -1 while there is none.
    leader: AtomicI32,
    next_id: AtomicU64,
    publisher: OnceLock<Publisher>,
    peers: OnceLock<HashMap<u64, tokio::sync::mpsc::Sender<Bytes>>>,
    /// Ids of the entries applied so far (handed to the driver at start).
    applied: parking_lot::Mutex<Option<AppliedIds>>,
}

/// Why a proposal did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposeError {
    /// No controller leader could take it in time.
    Timeout,
}

impl Quorum {
    pub fn new(node_id: i32, image: MetadataImage, applied: AppliedIds) -> Self {
        let (tx, rx) = mpsc::channel();
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
            as u64
            ^ ((node_id as u64) << 48);
        Self {
            node_id,
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
            image: RwLock::new(Arc::new(image)),
            leader: AtomicI32::new(-1),
            next_id: AtomicU64::new(seed),
            publisher: OnceLock::new(),
            peers: OnceLock::new(),
            applied: parking_lot::Mutex::new(Some(applied)),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
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
        const RETRY_AFTER: Duration = Duration::from_secs(3);
        let deadline = Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        let data = EntryData { id, records }.encode();
        loop {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if self.tx.send(Cmd::Propose { data: data.clone(), id, done: Some(done_tx) }).is_err() {
                return Err(ProposeError::Timeout);
            }
            let wait = deadline.saturating_duration_since(Instant::now()).min(RETRY_AFTER);
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
        let data = EntryData { id: self.next_id.fetch_add(1, Ordering::Relaxed), records }.encode();
        let _ = self.tx.send(Cmd::Propose { data, id: 0, done: None });
    }

    /// Sends this broker's heartbeat to every voter (itself included).
    pub fn heartbeat(&self, hb: Heartbeat) {
        let _ = self.tx.send(Cmd::Heartbeat(hb.clone()));
        if let Some(peers) = self.peers.get() {
            let frame = frame(FRAME_HEARTBEAT, &serde_json::to_vec(&hb).unwrap_or_default());
            for peer in peers.values() {
                let _ = peer.try_send(frame.clone());
            }
        }
    }

    /// Before a clean stop: let another voter lead the quorum.
    pub fn resign(&self) {
        let _ = self.tx.send(Cmd::Resign);
    }

    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
    }

    /// Starts the driver thread and the network tasks. `publisher` sees
    /// every new image.
    pub fn start(
        self: &Arc<Self>,
        log: RaftLog,
        voters: &[(i32, String)],
        listen: Option<SocketAddr>,
        settings: DriverSettings,
        publisher: Publisher,
    ) -> anyhow::Result<()> {
        let _ = self.publisher.set(publisher);
        let mut peers = HashMap::new();
        for (id, addr) in voters {
            if *id == self.node_id {
                continue;
            }
            let (tx, rx) = tokio::sync::mpsc::channel(PEER_QUEUE);
            tokio::spawn(peer_sender(addr.clone(), rx));
            peers.insert(raft_id(*id), tx);
        }
        let _ = self.peers.set(peers);
        if let Some(listen) = listen {
            let listener = std::net::TcpListener::bind(listen)
                .map_err(|e| anyhow::anyhow!("cannot listen on controller listener {listen}: {e}"))?;
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tokio::spawn(accept_loop(listener, self.tx.clone()));
        }
        let voter_ids: Vec<u64> = voters.iter().map(|(id, _)| raft_id(*id)).collect();
        let rx = self.rx.lock().take().ok_or_else(|| anyhow::anyhow!("quorum already started"))?;
        let applied = log.storage().rl().hard_state().commit;
        let config = Config {
            id: raft_id(self.node_id),
            election_tick: 10,
            heartbeat_tick: 2,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config.validate().map_err(|e| anyhow::anyhow!("raft config: {e}"))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut node = RawNode::new(&config, log.storage(), &logger)?;
        if voter_ids == [raft_id(self.node_id)] {
            // a quorum of one elects itself at once
            let _ = node.campaign();
        }
        let quorum = self.clone();
        std::thread::Builder::new().name("metadata-quorum".into()).spawn(move || {
            let applied = quorum.applied.lock().take().unwrap_or_default();
            let mut driver =
                Driver { quorum, node, log, settings, rx, pending: HashMap::new(), duty: Duty::default(), applied };
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

/// Timings the active controller works with.
#[derive(Debug, Clone)]
pub struct DriverSettings {
    pub session_timeout: Duration,
    /// Proposed as the cluster id if the log has none yet.
    pub cluster_id: String,
    pub auto_leader_rebalance: Option<Duration>,
}

/// The last heartbeat the active controller heard from a broker.
#[derive(Debug, Clone, Copy)]
struct Heard {
    at: Instant,
    incarnation: u64,
    shutting_down: bool,
    log_dir_failed: bool,
}

impl Heard {
    fn new(at: Instant, hb: &Heartbeat) -> Self {
        Self {
            at,
            incarnation: hb.incarnation,
            shutting_down: hb.shutting_down,
            log_dir_failed: !hb.offline_log_dirs.is_empty(),
        }
    }

    /// Whether the broker asks not to serve (controlled shutdown, or a
    /// failed log directory).
    fn must_be_fenced(&self) -> bool {
        self.shutting_down || self.log_dir_failed
    }
}

#[derive(Default)]
struct Duty {
    was_leader: bool,
    /// Last heartbeat per broker.
    heard: HashMap<i32, Heard>,
    /// Don't repeat a proposal about a broker within a second.
    proposed: HashMap<i32, Instant>,
    cluster_id_proposed: Option<Instant>,
    last_rebalance: Option<Instant>,
}

struct Driver {
    quorum: Arc<Quorum>,
    node: RawNode<MemStorage>,
    log: RaftLog,
    settings: DriverSettings,
    rx: mpsc::Receiver<Cmd>,
    pending: HashMap<u64, (Instant, mpsc::SyncSender<bool>)>,
    duty: Duty,
    applied: AppliedIds,
}

impl Driver {
    fn run(&mut self) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            match self.rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(Cmd::Propose { data, id, done }) => {
                    if self.node.propose(vec![], data).is_ok() {
                        if let Some(done) = done {
                            self.pending.insert(id, (Instant::now(), done));
                        }
                    } else if let Some(done) = done {
                        let _ = done.send(false);
                    }
                }
                Ok(Cmd::Step(msg)) => {
                    let _ = self.node.step(*msg);
                }
                Ok(Cmd::Heartbeat(hb)) => {
                    self.duty.heard.insert(hb.broker_id, Heard::new(Instant::now(), &hb));
                }
                Ok(Cmd::Resign) => {
                    if self.node.raft.state == StateRole::Leader {
                        let me = self.node.raft.id;
                        let target = self.node.raft.prs().iter().map(|(id, _)| *id).find(|id| *id != me);
                        if let Some(target) = target {
                            self.node.transfer_leader(target);
                        }
                    }
                }
                Ok(Cmd::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_tick {
                self.node.tick();
                next_tick += TICK;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + TICK;
                }
                self.controller_duties();
            }
            if self.node.has_ready() {
                if let Err(e) = self.on_ready() {
                    // A node that cannot persist Raft state must not linger:
                    // it would serve a frozen image, drop proposals and keep
                    // heartbeating, so it would never be fenced. Stop now
                    // (no clean-shutdown marker: the next start recovers).
                    let message = format!("cannot write the metadata log: {e:#}; stopping this node");
                    tracing::error!("{message}");
                    eprintln!("vltava: {message}");
                    std::process::exit(EXIT_METADATA_LOG_FAILED);
                }
            }
        }
    }

    fn on_ready(&mut self) -> anyhow::Result<()> {
        let mut ready = self.node.ready();
        self.send(ready.take_messages());
        let committed = ready.take_committed_entries();
        self.apply(committed);
        self.log.append(ready.entries())?;
        if let Some(hs) = ready.hs() {
            self.log.set_hard_state(hs)?;
        }
        self.send(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit)?;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.node.advance_apply();
        let leader = self.node.raft.leader_id;
        let leader = if leader == raft::INVALID_ID { -1 } else { node_id(leader) };
        self.quorum.leader.store(leader, Ordering::Release);
        Ok(())
    }

    fn send(&self, messages: Vec<Message>) {
        let Some(peers) = self.quorum.peers.get() else { return };
        for msg in messages {
            let Some(peer) = peers.get(&msg.to) else { continue };
            match msg.write_to_bytes() {
                Ok(bytes) => {
                    let _ = peer.try_send(frame(FRAME_RAFT, &bytes));
                }
                Err(e) => tracing::error!(error = %e, "cannot encode raft message"),
            }
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut image = self.quorum.image();
        let mut done = Vec::new();
        let mut changed = false;
        for entry in entries {
            if entry.get_entry_type() != EntryType::EntryNormal {
                continue;
            }
            let Some(data) = EntryData::decode(entry.get_data()) else {
                if !entry.get_data().is_empty() {
                    tracing::error!(index = entry.index, "unreadable metadata entry skipped");
                }
                continue;
            };
            if self.applied.first_time(data.id) {
                image = Arc::new(image.apply(&data.records));
                changed = true;
            }
            if let Some((_, waiter)) = self.pending.remove(&data.id) {
                done.push(waiter);
            }
        }
        if changed {
            *self.quorum.image.write() = image.clone();
            if let Some(publish) = self.quorum.publisher.get() {
                publish(&image);
            }
        }
        for waiter in done {
            let _ = waiter.send(true);
        }
    }

    /// What the active controller does on every tick.
    fn controller_duties(&mut self) {
        let leader = self.node.raft.state == StateRole::Leader;
        let now = Instant::now();
        // proposals lost with a leader change: their waiters gave up already
        self.pending.retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(60));
        if leader && !self.duty.was_leader {
            // a new controller gives every broker a full session to be heard
            tracing::info!(node_id = self.quorum.node_id, term = self.node.raft.term, "became the active controller");
            let image = self.quorum.image();
            for b in image.brokers() {
                // what was heard stays (which process, shutting down or not,
                // its log directory); only the clock restarts
                let heard = self.duty.heard.get(&b.id).copied().unwrap_or(Heard {
                    at: now,
                    incarnation: b.incarnation,
                    shutting_down: false,
                    log_dir_failed: false,
                });
                self.duty.heard.insert(b.id, Heard { at: now, ..heard });
            }
        }
        self.duty.was_leader = leader;
        if !leader {
            return;
        }
        let image = self.quorum.image();
        let mut records = Vec::new();
        if image.cluster_id.is_none()
            && self.duty.cluster_id_proposed.is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            records.push(MetadataRecord::ClusterId { cluster_id: self.settings.cluster_id.clone() });
            self.duty.cluster_id_proposed = Some(now);
        }
        for b in image.brokers() {
            if self.duty.proposed.get(&b.id).is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1)) {
                continue;
            }
            let heard = self.duty.heard.get(&b.id).copied().unwrap_or(Heard {
                at: now,
                incarnation: 0,
                shutting_down: false,
                log_dir_failed: false,
            });
            let (seen, current) = (heard.at, heard.incarnation == b.incarnation);
            let record = if !b.fenced && current && heard.must_be_fenced() {
                if heard.log_dir_failed {
                    tracing::warn!(broker = b.id, "broker's log directory failed: fencing it");
                } else {
                    tracing::info!(broker = b.id, "controlled shutdown: fencing broker");
                }
                Some(MetadataRecord::FenceBroker { broker_id: b.id, incarnation: b.incarnation, controlled: true })
            } else if !b.fenced && now.duration_since(seen) > self.settings.session_timeout {
                tracing::warn!(
                    broker = b.id,
                    silent_ms = now.duration_since(seen).as_millis() as u64,
                    "broker missed heartbeats: fencing it"
                );
                Some(MetadataRecord::FenceBroker { broker_id: b.id, incarnation: b.incarnation, controlled: false })
            } else if b.fenced
                && current
                && !heard.must_be_fenced()
                && now.duration_since(seen) < self.settings.session_timeout
            {
                tracing::info!(broker = b.id, "broker heartbeating again: unfencing it");
                Some(MetadataRecord::UnfenceBroker { broker_id: b.id, incarnation: b.incarnation })
            } else {
                None
            };
            if let Some(r) = record {
                self.duty.proposed.insert(b.id, now);
                records.push(r);
            }
        }
        if let Some(interval) = self.settings.auto_leader_rebalance {
            if self.duty.last_rebalance.is_none_or(|t| now.duration_since(t) >= interval) {
                self.duty.last_rebalance = Some(now);
                let live = image.live_brokers();
                for topic in image.topics() {
                    for p in &topic.partitions {
                        let preferred = p.replicas.first().copied().unwrap_or(-1);
                        if p.leader != preferred && p.isr.contains(&preferred) && live.contains(&preferred) {
                            records.push(MetadataRecord::ElectPreferred {
                                topic_id: topic.topic_id,
                                partition: p.partition,
                            });
                        }
                    }
                }
            }
        }
        if !records.is_empty() {
            let data = EntryData { id: 0, records }.encode();
            let _ = self.node.propose(vec![], data);
        }
    }
}

fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u32(payload.len() as u32 + 1);
    buf.put_u8(kind);
    buf.put_slice(payload);
    buf.freeze()
}

/// Keeps a connection to one peer and writes its frames; frames queued
/// while it is unreachable are dropped (Raft resends what matters).
async fn peer_sender(addr: String, mut rx: tokio::sync::mpsc::Receiver<Bytes>) {
    loop {
        let connect = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(&addr)).await;
        let mut stream = match connect {
            Ok(Ok(s)) => s,
            _ => {
                // drain what piled up, then retry
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(Duration::from_millis(200)).await;
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        loop {
            let Some(frame) = rx.recv().await else { return };
            let write = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&frame)).await;
            if !matches!(write, Ok(Ok(()))) {
                tracing::debug!(peer = %addr, "quorum connection lost");
                break;
            }
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, tx: mpsc::Sender<Cmd>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(read_frames(stream, tx.clone()));
    }
}

async fn read_frames(mut stream: tokio::net::TcpStream, tx: mpsc::Sender<Cmd>) {
    loop {
        let Ok(len) = stream.read_u32().await else { return };
        let len = len as usize;
        if len == 0 || len > FRAME_BYTES_MAX {
            tracing::warn!(len, "bad frame on the controller listener; closing");
            return;
        }
        let mut buf = vec![0u8; len];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let cmd = match buf[0] {
            FRAME_RAFT => match Message::parse_from_bytes(&buf[1..]) {
                Ok(m) => Cmd::Step(Box::new(m)),
                Err(_) => return,
            },
            FRAME_HEARTBEAT => match serde_json::from_slice::<Heartbeat>(&buf[1..]) {
                Ok(h) => Cmd::Heartbeat(h),
                Err(_) => return,
            },
            _ => return,
        };
        if tx.send(cmd).is_err() {
            return;
        }
    }
}
