//! Startup, the accept loop, the connection limit, and clean shutdown.
//!
//! Stopping has one path: the [`ShutdownHandle`] (SIGTERM) stops the accept
//! loop and the connections' reading; [`run`] then does the controlled
//! shutdown (leaderships move away), flips `Broker::stopping`, which every
//! background task (replica fetchers, coordinators' timers, the log
//! manager, heartbeats) watches, drains the connections, closes the logs,
//! writes the clean-shutdown marker and stops the quorum (its driver thread
//! and network tasks).
//! Shutdown is one `watch` channel: the listener stops accepting, each
//! connection stops reading, and the logs are closed and marked clean.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use vltava_metadata::{BrokerEndpoint, MetaProperties, MetadataImage, MetadataRecord};
use vltava_quorum::{
    DutySettings, Heartbeat, NodeSettings, OnCorruption, Publisher, Quorum, QuorumNetwork, QuorumNode, METADATA_DIR,
};

use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::replica_manager::ReplicaManager;
use crate::replication::ReplicaFetchers;
use crate::{connection, limits, Broker, BrokerConfig};

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

fn open_broker(config: BrokerConfig) -> anyhow::Result<(Arc<Broker>, QuorumNode)> {
    let inter_broker_tls = inter_broker_tls(&config)?;
    let inter_broker_sasl = crate::sasl::login::inter_broker_login(&config)?;
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let (meta, fresh) = match MetaProperties::load(&data_dir, config.node_id)? {
        Some(meta) => (meta, false),
        None => (MetaProperties::load_or_create(&data_dir, config.node_id)?, true),
    };
    check_other_log_dirs(&config, &meta, fresh)?;
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
    let own_endpoint = controller_endpoint(&config);
    let settings = NodeSettings {
        node_id: config.node_id,
        voters: config.voters().iter().map(|(id, _)| *id).collect(),
        endpoints: config
            .voters()
            .into_iter()
            .map(|(id, addr)| match own_endpoint.clone() {
                Some(own) if id == config.node_id && addr.is_empty() => (id, own),
                _ => (id, addr),
            })
            .collect(),
        join: config.joins_quorum(),
        log: vltava_quorum::LogSettings { segment_bytes: config.metadata_log_segment_bytes },
        snapshot_bytes: config.metadata_snapshot_bytes,
        snapshot_interval: Duration::from_millis(config.metadata_snapshot_interval_ms),
        on_corruption: if config.truncate_corrupt_metadata_log { OnCorruption::Truncate } else { OnCorruption::Refuse },
    };
    let node = QuorumNode::open(&data_dir.join(METADATA_DIR), settings, Instant::now())?;
    let image: Arc<MetadataImage> = node.image().clone();
    if !clean && image.topic_count() > 0 {
        tracing::info!("no clean shutdown marker: recovering every partition from its recovery point");
    }
    let replicas = ReplicaManager::new(
        config.node_id,
        &config.log_dirs(),
        config.static_settings.clone(),
        Duration::from_millis(config.file_delete_delay_ms),
    );
    for dir in replicas.log_dirs() {
        let min_free = config.log_dir_min_free_bytes.unwrap_or_else(|| {
            let tenth = dir.space().map_or(u64::MAX, |s| s.total_bytes / 10);
            tenth.min(crate::limits::LOG_DIR_MIN_FREE_BYTES_DEFAULT)
        });
        dir.set_min_free_bytes(min_free);
    }
    replicas.load(&image, !clean)?;
    tracing::info!(cluster_id = %image.cluster_id.clone().unwrap_or(meta.cluster_id.clone()), node_id = config.node_id, topics = image.topic_count(), partitions = replicas.all().len(), "loaded data dir");
    let quorum = Arc::new(Quorum::new(config.node_id, image));
    let groups = GroupCoordinator::new(config.group.clone(), config.offsets_topic_num_partitions);
    let incarnation =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1);
    let share_persister = Arc::new(crate::share::remote_persister::RemotePersister::default());
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
        share_groups: crate::share::groups::ShareGroups::default(),
        share_partitions: crate::share::partitions::SharePartitions::default(),
        share_persister: share_persister.clone(),
        share_coordinator: crate::share::coordinator::ShareCoordinator::new(config.share_coordinator.clone()),
        quotas: crate::quotas::QuotaManager::default(),
        client_metrics: crate::client_metrics::ClientMetrics::default(),
        delegation_tokens: crate::delegation_tokens::TokenSettings::from_settings(&config.static_settings)
            .map_err(|(key, reason)| anyhow::anyhow!("invalid config {key}: {reason}"))?,
        local_cluster_id: meta.cluster_id,
        inter_broker_tls,
        inter_broker_sasl,
        schema_registry: Default::default(),
        config,
        stopping: watch::channel(false).0,
    };
    let broker = Arc::new(broker);
    share_persister.bind(&broker);
    broker.share_groups.attach(&broker);
    for dir in broker.replicas.log_dirs() {
        let weak = Arc::downgrade(&broker);
        dir.on_failure(move |_| {
            if let Some(broker) = weak.upgrade() {
                broker.on_log_dir_failure();
            }
        });
    }
    Ok((broker, node))
}

/// The client side of TLS to other brokers when the inter-broker listener
/// is SSL: its truststore checks them, its keystore (if any) is this
/// broker's client certificate.
fn inter_broker_tls(config: &BrokerConfig) -> anyhow::Result<Option<Arc<vltava_security::TlsConnectorSource>>> {
    let Some(listener) = config.inter_broker().filter(|l| l.protocol.uses_tls()) else { return Ok(None) };
    let ssl = listener.ssl.clone().context("an SSL listener has ssl settings")?;
    if !ssl.has_truststore() {
        // a lone node (config.rs requires a truststore with several)
        return Ok(None);
    }
    let connector = vltava_security::TlsConnectorSource::new(ssl)
        .with_context(|| format!("inter-broker listener {} (connecting to other brokers)", listener.name))?;
    Ok(Some(Arc::new(connector)))
}

/// TLS for the quorum's traffic when the controller listener is SSL: the
/// listener's settings serve both sides (its keystore is this node's
/// certificate to the other controllers, as in Kafka).
fn controller_tls(config: &BrokerConfig) -> anyhow::Result<Option<Arc<vltava_quorum::ControllerTls>>> {
    let Some(ssl) = &config.controller_ssl else { return Ok(None) };
    let acceptor = vltava_security::TlsAcceptorSource::new(ssl.clone()).context("the controller listener")?;
    // without a truststore, a lone controller (config.rs requires one with several)
    let connector = ssl
        .has_truststore()
        .then(|| vltava_security::TlsConnectorSource::new(ssl.clone()))
        .transpose()
        .context("the controller listener (connecting to the other controllers)")?;
    let sasl = match &config.controller_sasl_listener {
        Some(name) => Some(crate::sasl::login::controller_sasl(config, name)?),
        None => None,
    };
    Ok(Some(Arc::new(vltava_quorum::ControllerTls { acceptor, connector, sasl })))
}

/// Every log directory carries this node's `meta.properties`, as in Kafka
/// (where `kafka-storage format` writes it into each). A node's first start
/// writes it into all of them; after that a directory without it is either a
/// new disk or one that is not mounted (its partitions would be created
/// again, empty), so the start is refused with what to do.
fn check_other_log_dirs(config: &BrokerConfig, meta: &MetaProperties, fresh: bool) -> anyhow::Result<()> {
    for dir in &config.extra_data_dirs {
        match MetaProperties::load(dir, config.node_id)? {
            Some(theirs) if theirs == *meta => {}
            Some(theirs) => anyhow::bail!(
                "log directory {} belongs to node.id {} of cluster {}, not to node.id {} of cluster {}",
                dir.display(),
                theirs.node_id,
                theirs.cluster_id,
                meta.node_id,
                meta.cluster_id
            ),
            None if fresh => meta.write(dir).with_context(|| format!("cannot initialize log directory {}", dir.display()))?,
            None => anyhow::bail!(
                "log directory {dir} has no meta.properties, but {first} does: {dir} is a new disk or one that is not mounted. \
                 If it should hold data, mount it; if it is new and empty, copy {first}/meta.properties into it (as kafka-storage format would)",
                dir = dir.display(),
                first = config.data_dir.display()
            ),
        }
    }
    Ok(())
}

/// Whether the image has this process's registration.
fn registered(broker: &Broker, image: &MetadataImage) -> bool {
    image.broker(broker.config.node_id).is_some_and(|b| b.incarnation == broker.incarnation)
}

/// Starts the metadata quorum; partition roles follow every image that
/// has this process registered (an older image may give roles the cluster
/// has moved on from). The quorum's thread only hands each image over: a
/// thread of its own acts on it (opening partitions is file I/O that must
/// not delay Raft), always on the newest one.
fn start_quorum(broker: &Arc<Broker>, node: QuorumNode) -> anyhow::Result<()> {
    let (tx, mut rx) = watch::channel((0u64, broker.controller.image()));
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let publisher: Publisher = Box::new(move |image| {
        if let Some(broker) = weak.upgrade() {
            let seq = broker.controller.published();
            tx.send_replace((seq, image.clone()));
        }
    });
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let runtime = broker.runtime.clone();
    std::thread::Builder::new().name("metadata-reconcile".into()).spawn(move || {
        while runtime.block_on(rx.changed()).is_ok() {
            let (seq, image) = rx.borrow_and_update().clone();
            let Some(broker) = weak.upgrade() else { return };
            if registered(&broker, &image) {
                broker.replicas.reconcile(&broker, &image);
            }
            broker.controller.reconciled(seq);
        }
    })?;
    let c = &broker.config;
    let settings = DutySettings {
        session_timeout: Duration::from_millis(c.broker_session_timeout_ms),
        cluster_id: broker.local_cluster_id.clone(),
        bootstrap_features: crate::features::BOOTSTRAP.iter().map(|(name, level)| (name.to_string(), *level)).collect(),
        bootstrap_records: crate::sasl::bootstrap_records(&c.bootstrap_scram),
        auto_leader_rebalance: c
            .auto_leader_rebalance_enable
            .then(|| Duration::from_millis(c.leader_imbalance_check_interval_ms)),
    };
    let network = QuorumNetwork {
        listen: c.controller_listen,
        endpoint: controller_endpoint(c),
        bootstrap: c.quorum_bootstrap_servers.clone(),
        tls: controller_tls(c)?,
    };
    broker.controller.quorum().start(node, network, settings, publisher)
}

/// This node's controller endpoint as the other controllers reach it: the
/// controller listener, with the advertised host when it binds every
/// interface.
fn controller_endpoint(c: &BrokerConfig) -> Option<String> {
    let listen = c.controller_listen?;
    Some(if listen.ip().is_unspecified() {
        format!("{}:{}", c.advertised_host, listen.port())
    } else {
        listen.to_string()
    })
}

fn heartbeat(broker: &Broker, shutting_down: bool) -> Heartbeat {
    let dirs = broker.replicas.log_dirs();
    let offline = dirs.iter().filter(|d| d.is_offline());
    let offline_replicas =
        broker.replicas.all().iter().filter(|p| p.is_offline()).map(|p| (p.topic_id, p.index)).collect();
    Heartbeat {
        broker_id: broker.config.node_id,
        incarnation: broker.incarnation,
        shutting_down,
        offline_log_dirs: offline.map(|d| d.path().display().to_string()).collect(),
        log_dirs: dirs.len(),
        offline_replicas,
    }
}

/// This broker's registration: the inter-broker listener's endpoint, and
/// with several client listeners every one of them by name (older nodes
/// do not know `BrokerEndpoints`: a single listener needs none).
fn registration(broker: &Broker) -> Vec<MetadataRecord> {
    let c = &broker.config;
    let mut records = vec![MetadataRecord::RegisterBroker {
        broker_id: c.node_id,
        incarnation: broker.incarnation,
        host: c.advertised_host.clone(),
        port: c.advertised_port,
    }];
    if c.listeners.len() > 1 {
        records.push(MetadataRecord::BrokerEndpoints {
            broker_id: c.node_id,
            incarnation: broker.incarnation,
            endpoints: c
                .listeners
                .iter()
                .map(|l| BrokerEndpoint {
                    listener: l.name.clone(),
                    host: l.advertised_host.clone(),
                    port: l.advertised_port,
                })
                .collect(),
        });
    }
    records
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
        if !registered(&broker, &image) && last_register.is_none_or(|t: Instant| t.elapsed() > limits::REGISTER_RETRY) {
            quorum.propose(registration(&broker));
            last_register = Some(Instant::now());
        }
        quorum.heartbeat(heartbeat(&broker, broker.shutting_down.load(Ordering::Acquire)));
        let interval = if registered(&broker, &image) {
            Duration::from_millis(c.broker_heartbeat_interval_ms)
        } else {
            limits::UNREGISTERED_HEARTBEAT
        };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// Leaders drop followers that stopped catching up from the ISR.
async fn shrink_isrs(broker: Arc<Broker>) {
    let lag_max = Duration::from_millis(broker.config.replica_lag_time_max_ms);
    let period = (lag_max / 4).max(limits::ISR_SHRINK_CHECK_MIN);
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
    let deadline = Instant::now() + limits::CONTROLLED_SHUTDOWN_TIMEOUT;
    while Instant::now() < deadline {
        quorum.heartbeat(heartbeat(broker, true));
        let image = quorum.image();
        let leads = image.topics().flat_map(|t| t.partitions.iter()).any(|p| p.leader == me);
        if image.broker(me).is_some_and(|b| b.fenced) && !leads {
            tracing::info!("controlled shutdown: no leaderships left");
            break;
        }
        tokio::time::sleep(limits::CONTROLLED_SHUTDOWN_POLL).await;
    }
    if quorum.is_leader() {
        quorum.resign();
        let deadline = Instant::now() + limits::RESIGN_TIMEOUT;
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
    // Key stores load first: a bad one refuses the start.
    let listeners = crate::listener::prepare(&config)?;
    // Bound before anything is advertised: port 0 becomes the port bound.
    let sockets = config.broker_role.then(|| crate::listener::bind(&mut config)).transpose()?;
    // up before the logs are recovered: live, not ready
    let admin = Arc::new(crate::admin::AdminState::default());
    if let Some(addr) = config.admin_listen {
        let tls = match &config.admin_ssl {
            Some(ssl) => Some(Arc::new(
                vltava_security::TlsAcceptorSource::new(ssl.clone()).context("the admin listener (admin.listeners)")?,
            )),
            None => None,
        };
        let bound = crate::admin::start(addr, tls, admin.clone(), shutdown.clone()).await?;
        config.admin_listen = Some(bound);
        if let Some(path) = &config.port_file {
            // `--port-file PATH`: the admin port goes to PATH.admin
            let mut admin_file = path.clone().into_os_string();
            admin_file.push(".admin");
            crate::listener::write_port_file(std::path::Path::new(&admin_file), bound.port())?;
        }
    }
    // the schema registry's port is bound now (its bound address is what
    // other nodes are told), served once the broker is open
    let registry = crate::schema_registry::server::bind(&mut config).await?;
    let (broker, node) = tokio::task::block_in_place(|| open_broker(config))?;
    admin.set_broker(broker.clone());
    crate::schema_registry::server::start(&broker, registry, shutdown.clone());
    start_quorum(&broker, node)?;
    tokio::spawn(crate::delegation_tokens::run_expiry_sweep(broker.clone()));
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
    // serve once this broker is registered (its roles known) in a cluster
    // whose id is written (until then each node would report the id it
    // proposes), or anyway after a while so that an operator can see it is up
    let ready = |image: &MetadataImage| registered(&broker, image) && image.cluster_id.is_some();
    let waited = Instant::now();
    while !ready(&broker.controller.image()) && waited.elapsed() < limits::SERVE_UNREGISTERED_AFTER {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = shutdown.changed() => break,
        }
    }
    if !registered(&broker, &broker.controller.image()) {
        tracing::warn!("not registered with the metadata quorum yet (are the other controllers up?); serving anyway");
    } else if !broker.controller.wait_reconciled(limits::SERVE_UNREGISTERED_AFTER) {
        // the first requests should find the partitions this registration
        // gives it led here, and their coordinators loading
        tracing::warn!("the partitions' roles are still being taken; serving anyway");
    }
    let sockets = sockets.expect("a broker binds its client ports");
    let accepting =
        crate::listener::listen(sockets, broker.config.socket_listen_backlog, broker.config.port_file.as_deref())?;
    for l in &broker.config.listeners {
        tracing::info!(listener = %l.name, protocol = %l.protocol, listen = %l.addr, advertised = %format!("{}:{}", l.advertised_host, l.advertised_port), "listening");
    }
    tracing::info!(inter_broker_listener = %broker.config.inter_broker_listener, "vltava broker started");
    // background work stops with the broker (`stopping`), after the
    // controlled shutdown, not at the signal
    tokio::spawn(GroupCoordinator::run_timers(broker.clone(), broker.stopping.subscribe()));
    tokio::spawn(crate::log_manager::run(broker.clone(), broker.stopping.subscribe()));
    let slots = Arc::new(Semaphore::new(broker.config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepts = accepting.iter().enumerate().map(|(i, l)| Box::pin(async move { (i, l.accept().await) }));
        tokio::select! {
            ((index, accepted), _, _) = futures::future::select_all(accepts) => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(limits::ACCEPT_RETRY).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, max = broker.config.max_connections, "refusing connection: max.connections reached");
                    continue;
                };
                let image = broker.controller.image();
                let hold = if image.client_quotas().next().is_some() {
                    broker.quotas.connection_created(&image, peer.ip())
                } else {
                    std::time::Duration::ZERO
                };
                if !hold.is_zero() {
                    tracing::info!(%peer, ?hold, "closing connection: its address is over connection_creation_rate");
                    let mut stop = shutdown.clone();
                    connections.spawn(async move {
                        tokio::select! {
                            _ = tokio::time::sleep(hold) => {}
                            _ = stop.changed() => {}
                        }
                        drop((stream, permit));
                    });
                    continue;
                }
                let (broker, shutdown, listener) = (broker.clone(), shutdown.clone(), listeners[index].clone());
                connections.spawn(async move {
                    connection::serve(broker, stream, peer, listener, shutdown).await;
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    controlled_shutdown(&broker).await;
    drop(accepting);
    tracing::info!("shutting down: closing connections");
    // Waiting fetches answer now instead of at the end of their max wait.
    broker.stopping.send_replace(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits::CONNECTION_DRAIN_TIMEOUT, drain).await.is_err() {
        connections.abort_all();
    }
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        broker.replicas.close_all()?;
        if let Some(failure) = broker.replicas.log_dirs().iter().find_map(|d| d.failure()) {
            // no clean-shutdown marker: the next start recovers every log
            tracing::error!(%failure, "a log directory failed earlier: its logs are recovered at the next start");
            return Ok(());
        }
        let marker = broker.config.data_dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::write(&marker, b"")?;
        sync_dir(&broker.config.data_dir);
        Ok(())
    })?;
    broker.controller.quorum().stop();
    tracing::info!("clean shutdown complete");
    Ok(())
}
