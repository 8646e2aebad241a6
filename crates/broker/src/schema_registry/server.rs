//! Starting the registry inside `vltava server`: its port is bound before
//! the broker opens (port 0 becomes the port bound, written to
//! `PORT_FILE.registry` with `--port-file`), and it serves, with the
//! `_schemas` reader running, once the broker is open.

use std::sync::Arc;

use tokio::sync::watch;

use crate::{Broker, BrokerConfig};

pub async fn bind(config: &mut BrokerConfig) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = config.schema_registry_listen.filter(|_| config.broker_role) else { return Ok(None) };
    let listener = super::api::bind(addr).await?;
    let bound = listener.local_addr()?;
    config.schema_registry_listen = Some(bound);
    if let Some(path) = &config.port_file {
        // `--port-file PATH`: the registry's port goes to PATH.registry
        let mut file = path.clone().into_os_string();
        file.push(".registry");
        crate::listener::write_port_file(std::path::Path::new(&file), bound.port())?;
    }
    Ok(Some(listener))
}

pub fn start(broker: &Arc<Broker>, listener: Option<tokio::net::TcpListener>, shutdown: watch::Receiver<bool>) {
    if !broker.config.broker_role {
        return;
    }
    tokio::spawn(super::store::run_reader(broker.clone(), shutdown.clone()));
    if let Some(listener) = listener {
        let bound = listener.local_addr().ok();
        super::api::serve(listener, broker.clone(), shutdown);
        tracing::info!(bound = ?bound, "schema registry listening (Confluent Schema Registry REST API v1)");
    }
}
