//! Startup, the accept loop, the connection limit, and clean shutdown.
//! Shutdown is one `watch` channel: the listener stops accepting, each
//! connection stops reading, and the logs are closed and marked clean.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use vltava_metadata::{AppliedIds, EntryData, MetaProperties, MetadataImage, MetadataRecord, RaftLog, METADATA_DIR};

use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::quorum::{raft_id, DriverSettings, Heartbeat, Publisher, Quorum};
use crate::replica_manager::ReplicaManager;
use crate::replication::ReplicaFetchers;
use crate::{connection, Broker, BrokerConfig};

/// Present in the data dir only after a clean shutdown; its absence at
/// start means logs must be recovered.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean_shutdown";

/// Tells a running broker to stop.
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), rx)
    }
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

fn open_broker(config: BrokerConfig) -> anyhow::Result<(Arc<Broker>, RaftLog)> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let meta = MetaProperties::load_or_create(&data_dir, config.node_id)?;
    if meta.node_id != config.node_id {
        anyhow::bail!(
            "data dir {} belongs to node.id {}, but this broker is node.id {}",
            data_dir.display(),
            meta.node_id,
            config.node_id
        );
    }
    let marker = data_dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    if clean {
        std::fs::remove_file(&marker)?;
        sync_dir(&data_dir);
    }
    let voters: Vec<u64> = config.voters().iter().map(|(id, _)| raft_id(*id)).collect();
    let (raft_log, committed) = RaftLog::open(&data_dir.join(METADATA_DIR), &voters)?;
    let mut image = MetadataImage::default();
    let mut applied = AppliedIds::default();
    for entry in committed {
        if let Some(data) = EntryData::decode(entry.get_data()) {
            if applied.first_time(data.id) {
                image = image.apply(&data.records);
            }
        }
    }
    if !clean && image.topic_count() > 0 {
        tracing::info!("no clean shutdown marker: recovering the newest segment of every partition");
    }
    let replicas = ReplicaManager::new(config.node_id, data_dir.clone(), config.static_settings.clone());
    replicas.load(&image, !clean)?;
    tracing::info!(cluster_id = %image.cluster_id.clone().unwrap_or(meta.cluster_id.clone()), node_id = config.node_id, topics = image.topic_count(), partitions = replicas.all().len(), "loaded data dir");
    let quorum = Arc::new(Quorum::new(config.node_id, image, applied));
    let groups = GroupCoordinator::new(config.group.clone(), config.offsets_topic_num_partitions);
    let incarnation =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1);
    let broker = Broker {
        controller: Controller::new(config.node_id, quorum),
        replicas,
        fetchers: ReplicaFetchers::default(),
        incarnation,
        shutting_down: AtomicBool::new(false),
        runtime: tokio::runtime::Handle::current(),
        groups,
        txns: crate::txn::TransactionCoordinator::new(
            config.transaction_state_partitions,
            config.transaction_max_timeout_ms,
        ),
        local_cluster_id: meta.cluster_id,
        config,
        stopping: watch::channel(false).0,
    };
    Ok((Arc::new(broker), raft_log))
}

/// Whether the image has this process's registration.
fn registered(broker: &Broker, image: &MetadataImage) -> bool {
    image.broker(broker.config.node_id).is_some_and(|b| b.incarnation == broker.incarnation)
}

/// Starts the metadata quorum; partition roles follow every image that
/// has this process registered (an older image may give roles the cluster
/// has moved on from).
fn start_quorum(broker: &Arc<Broker>, raft_log: RaftLog) -> anyhow::Result<()> {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let publisher: Publisher = Box::new(move |image| {
        if let Some(broker) = weak.upgrade() {
            if registered(&broker, image) {
                broker.replicas.reconcile(&broker, image);
            }
        }
    });
    let c = &broker.config;
    let settings = DriverSettings {
        session_timeout: Duration::from_millis(c.broker_session_timeout_ms),
        cluster_id: broker.local_cluster_id.clone(),
        auto_leader_rebalance: c
            .auto_leader_rebalance_enable
            .then(|| Duration::from_millis(c.leader_imbalance_check_interval_ms)),
    };
    broker.controller.quorum().start(raft_log, &c.voters(), c.controller_listen, settings, publisher)
}

/// Registers this broker with the controller (retrying until the quorum
/// has it) and then heartbeats every `broker.heartbeat.interval.ms`.
async fn register_and_heartbeat(broker: Arc<Broker>) {
    let quorum = broker.controller.quorum().clone();
    let c = &broker.config;
    let mut stopping = broker.stopping.subscribe();
    let mut last_register = None::<Instant>;
    loop {
        let image = quorum.image();
        if !registered(&broker, &image)
            && last_register.is_none_or(|t: Instant| t.elapsed() > Duration::from_millis(500))
        {
            quorum.propose(vec![MetadataRecord::RegisterBroker {
                broker_id: c.node_id,
                incarnation: broker.incarnation,
                host: c.advertised_host.clone(),
                port: c.advertised_port,
            }]);
            last_register = Some(Instant::now());
        }
        quorum.heartbeat(Heartbeat {
            broker_id: c.node_id,
            incarnation: broker.incarnation,
            shutting_down: broker.shutting_down.load(Ordering::Acquire),
        });
        let interval = if registered(&broker, &image) { c.broker_heartbeat_interval_ms } else { 100 };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// Leaders drop followers that stopped catching up from the ISR.
async fn shrink_isrs(broker: Arc<Broker>) {
    let lag_max = Duration::from_millis(broker.config.replica_lag_time_max_ms);
    let period = (lag_max / 4).max(Duration::from_millis(100));
    let mut stopping = broker.stopping.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stopping.changed() => return,
        }
        for partition in broker.replicas.all() {
            if let Some(change) = partition.isr_to_shrink(lag_max) {
                broker.controller.alter_isr(partition.topic_id, partition.index, change);
            }
        }
    }
}

/// Controlled shutdown: ask the controller to move this broker's
/// leaderships away and wait until the image shows it (or time runs out).
async fn controlled_shutdown(broker: &Arc<Broker>) {
    let quorum = broker.controller.quorum();
    let me = broker.config.node_id;
    let others = quorum.image().live_brokers().into_iter().filter(|b| *b != me).count();
    if !broker.config.controlled_shutdown_enable || others == 0 {
        return;
    }
    tracing::info!("controlled shutdown: moving leaderships away");
    broker.shutting_down.store(true, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        quorum.heartbeat(Heartbeat { broker_id: me, incarnation: broker.incarnation, shutting_down: true });
        let image = quorum.image();
        let leads = image.topics().flat_map(|t| t.partitions.iter()).any(|p| p.leader == me);
        if image.broker(me).is_some_and(|b| b.fenced) && !leads {
            tracing::info!("controlled shutdown: no leaderships left");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if quorum.is_leader() {
        quorum.resign();
        let deadline = Instant::now() + Duration::from_secs(3);
        while quorum.is_leader() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Runs a broker until `shutdown` flips to true.
pub async fn run(mut config: BrokerConfig, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    // Bound before anything is advertised: port 0 becomes the port bound.
    let socket = config.broker_role.then(|| crate::listener::bind(&mut config)).transpose()?;
    let listen = config.listen;
    let (broker, raft_log) = tokio::task::block_in_place(|| open_broker(config))?;
    start_quorum(&broker, raft_log)?;
    if !broker.config.broker_role {
        // process.roles=controller: a voter of the metadata quorum only
        tracing::info!(node_id = broker.config.node_id, "controller-only node started");
        let _ = shutdown.changed().await;
        broker.controller.quorum().resign();
        tokio::time::sleep(Duration::from_millis(300)).await;
        broker.controller.quorum().stop();
        return Ok(());
    }
    tokio::spawn(register_and_heartbeat(broker.clone()));
    tokio::spawn(shrink_isrs(broker.clone()));
    // serve once this broker is registered (its roles known), or anyway
    // after a while so that an operator can see it is up
    let waited = Instant::now();
    while !registered(&broker, &broker.controller.image()) && waited.elapsed() < Duration::from_secs(30) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = shutdown.changed() => break,
        }
    }
    if !registered(&broker, &broker.controller.image()) {
        tracing::warn!("not registered with the metadata quorum yet (are the other controllers up?); serving anyway");
    }
    let socket = socket.expect("a broker binds its client port");
    let listener = crate::listener::listen(socket, broker.config.port_file.as_deref())?;
    tracing::info!(%listen, advertised = %format!("{}:{}", broker.config.advertised_host, broker.config.advertised_port), "vltava broker started");
    tokio::spawn(GroupCoordinator::run_timers(broker.clone(), shutdown.clone()));
    tokio::spawn(crate::log_manager::run(broker.clone(), shutdown.clone()));
    let slots = Arc::new(Semaphore::new(broker.config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, max = broker.config.max_connections, "refusing connection: max.connections reached");
                    continue;
                };
                let (broker, shutdown) = (broker.clone(), shutdown.clone());
                connections.spawn(async move {
                    connection::serve(broker, stream, peer, shutdown).await;
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    controlled_shutdown(&broker).await;
    drop(listener);
    tracing::info!("shutting down: closing connections");
    // Waiting fetches answer now instead of at the end of their max wait.
    broker.stopping.send_replace(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drain).await.is_err() {
        connections.abort_all();
    }
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        broker.replicas.close_all()?;
        let marker = broker.config.data_dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::write(&marker, b"")?;
        sync_dir(&broker.config.data_dir);
        Ok(())
    })?;
    broker.controller.quorum().stop();
    tracing::info!("clean shutdown complete");
    Ok(())
}
