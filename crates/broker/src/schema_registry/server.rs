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

#[cfg(test)]
mod tests {
    use crate::BrokerConfig;

    fn config(settings: &[(&str, &str)]) -> Result<BrokerConfig, crate::config::ConfigError> {
        let mut c = BrokerConfig::default();
        c.apply(&settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>())?;
        Ok(c)
    }

    #[test]
    fn on_by_default_for_a_single_node_only() {
        assert_eq!(config(&[]).unwrap().schema_registry_listen, Some("127.0.0.1:8081".parse().unwrap()));
        let cluster = [
            ("controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095"),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ];
        assert_eq!(config(&cluster).unwrap().schema_registry_listen, None);
        let mut set = cluster.to_vec();
        set.push(("schema.registry.listeners", "http://127.0.0.1:0"));
        assert_eq!(config(&set).unwrap().schema_registry_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(config(&[("schema.registry.listeners", "")]).unwrap().schema_registry_listen, None);
        assert!(config(&[("schema.registry.listeners", "https://127.0.0.1:1")]).is_err());
        assert!(config(&[("schema.registry.listeners", "8081")]).is_err());
        assert!(config(&[("schema.registry.authentication", "basic")]).unwrap().schema_registry_basic_auth);
        assert!(config(&[("schema.registry.authentication", "kerberos")]).is_err());
    }
}
