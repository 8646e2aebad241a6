//! Startup, the accept loop, the connection limit, and clean shutdown.
//! Shutdown is one `watch` channel: the listener stops accepting, each
//! connection stops reading, and the logs are closed and marked clean.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use vltava_metadata::{MetaProperties, MetadataLog, METADATA_DIR};

use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::replica_manager::ReplicaManager;
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

fn open_broker(config: BrokerConfig) -> anyhow::Result<Broker> {
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
    let (metadata_log, image) = MetadataLog::open(&data_dir.join(METADATA_DIR))?;
    if !clean && image.topic_count() > 0 {
        tracing::info!("no clean shutdown marker: recovering the newest segment of every partition");
    }
    let replicas = ReplicaManager::new(data_dir.clone(), config.static_settings.clone());
    replicas.load(&image, !clean)?;
    tracing::info!(cluster_id = %meta.cluster_id, node_id = config.node_id, topics = image.topic_count(), partitions = replicas.all().len(), "loaded data dir");
    let groups = GroupCoordinator::new(config.group.clone(), config.offsets_topic_num_partitions);
    let broker = Broker {
        controller: Controller::new(config.node_id, metadata_log, image),
        replicas,
        groups,
        txns: crate::txn::TransactionCoordinator::new(
            config.transaction_state_partitions,
            config.transaction_max_timeout_ms,
        ),
        cluster_id: meta.cluster_id,
        config,
        stopping: watch::channel(false).0,
    };
    broker.groups.load(&broker)?;
    broker.txns.load(&broker)?;
    Ok(broker)
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Runs a broker until `shutdown` flips to true.
pub async fn run(config: BrokerConfig, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let listen = config.listen;
    let broker = Arc::new(tokio::task::block_in_place(|| open_broker(config))?);
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
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
    tracing::info!("clean shutdown complete");
    Ok(())
}
