//! The broker's listeners as Kafka configures them: `listeners` (any mix
//! of names), `listener.security.protocol.map` (a listener named after a
//! protocol uses it), `advertised.listeners` per listener name,
//! `inter.broker.listener.name` / `security.inter.broker.protocol` (the
//! listener replication and broker-to-broker calls use) and
//! `controller.listener.names`. Each TLS listener's `ssl.*` settings are
//! read with Kafka's per-listener overrides,
//! `listener.name.<lowercase name>.ssl.*` before `ssl.*`.
//!
//! Every protocol is served on client listeners; a SASL listener's own
//! settings are read by `sasl` when the listener is prepared.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use vltava_security::{SecurityProtocol, SslSettings};

use crate::config::{BrokerConfig, ConfigError};

/// One listener that serves Kafka clients (and other brokers).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Upper-case, as Kafka normalizes it (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    pub protocol: SecurityProtocol,
    /// Where it accepts; port 0 becomes the port bound at start.
    pub addr: SocketAddr,
    /// What Metadata tells clients of this listener (`advertised.listeners`).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Its TLS settings, for SSL listeners.
    pub ssl: Option<SslSettings>,
}

impl ListenerConfig {
    pub fn plaintext(name: &str, addr: SocketAddr) -> Self {
        Self {
            name: name.to_string(),
            protocol: SecurityProtocol::Plaintext,
            addr,
            advertised_host: addr.ip().to_string(),
            advertised_port: addr.port(),
            ssl: None,
        }
    }
}

/// Whether `key` changes which listeners there are or how they are secured.
pub fn is_listener_key(key: &str) -> bool {
    matches!(
        key,
        "listeners"
            | "listen"
            | "advertised.listeners"
            | "listener.security.protocol.map"
            | "controller.listener.names"
            | "inter.broker.listener.name"
            | "security.inter.broker.protocol"
    ) || key.starts_with("ssl.")
        || key.starts_with("listener.name.")
}

/// `NAME://host:port` entries of a listeners list; a bare `host:port` has
/// no name (`None`).
pub fn listener_entries(v: &str) -> Vec<(Option<String>, String)> {
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once("://") {
            Some((name, addr)) => (Some(name.trim().to_ascii_uppercase()), addr.to_string()),
            None => (None, e.to_string()),
        })
        .collect()
}

/// A listener's `host:port`; an empty host binds every interface, as in
/// Kafka (`PLAINTEXT://:9092`).
pub fn listener_addr(addr: &str) -> Option<SocketAddr> {
    let addr = addr.trim();
    match addr.strip_prefix(':') {
        Some(port) => Some(SocketAddr::from(([0, 0, 0, 0], port.parse::<u16>().ok()?))),
        None => addr.parse().ok(),
    }
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL,...`.
pub fn parse_protocol_map(v: &str) -> Option<Vec<(String, SecurityProtocol)>> {
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, protocol) = e.split_once(':')?;
            Some((name.trim().to_ascii_uppercase(), SecurityProtocol::parse(protocol)?))
        })
        .collect()
}

/// The `ssl.*` settings of listener `name`: `listener.name.<name>.<key>`
/// first (Kafka lower-cases the name there), then `<key>`.
pub fn ssl_settings_for(settings: &BTreeMap<String, String>, name: &str) -> Result<SslSettings, ConfigError> {
    let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
    SslSettings::from_keys(|key| settings.get(&format!("{prefix}{key}")).or_else(|| settings.get(key)).cloned())
        .map_err(|e| ConfigError { key: format!("{prefix}ssl.*"), value: String::new(), reason: e.to_string() })
}

impl BrokerConfig {
    /// Resolves the listeners from every listener key given so far (kept
    /// in `static_settings`, so settings applied in several calls add up).
    pub(crate) fn resolve_listeners(&mut self) -> Result<(), ConfigError> {
        let s = &self.static_settings;
        let get = |key: &str| s.get(key).map(|v| v.trim().to_string());
        let controller_names: Vec<String> = get("controller.listener.names")
            .unwrap_or_else(|| "CONTROLLER".into())
            .split(',')
            .map(|n| n.trim().to_ascii_uppercase())
            .collect();
        let is_controller = |name: &str| controller_names.iter().any(|c| c == name);
        let explicit_map =
            get("listener.security.protocol.map").and_then(|v| parse_protocol_map(&v)).unwrap_or_default();
        // Kafka: the map names each listener's protocol; a listener named
        // after a protocol uses it; controller listeners default to PLAINTEXT.
        let protocol_of = |name: &str| -> Option<SecurityProtocol> {
            match explicit_map.iter().find(|(n, _)| n == name) {
                Some((_, p)) => Some(*p),
                None if is_controller(name) => {
                    Some(SecurityProtocol::parse(name).unwrap_or(SecurityProtocol::Plaintext))
                }
                None => SecurityProtocol::parse(name),
            }
        };
        let (listeners_key, listeners_value) = match (get("listeners"), get("listen")) {
            (Some(v), _) => ("listeners", v),
            (None, Some(v)) => ("listen", v),
            (None, None) => ("listeners", format!("PLAINTEXT://{}", BrokerConfig::default().listen)),
        };
        let err = |key: &str, value: &str, reason: String| ConfigError {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        let mut clients: Vec<ListenerConfig> = Vec::new();
        let mut controller = None;
        let mut controller_sasl_listener = None;
        for (name, addr) in listener_entries(&listeners_value) {
            let name = name.unwrap_or_else(|| "PLAINTEXT".into());
            let addr = listener_addr(&addr)
                .ok_or_else(|| err(listeners_key, &listeners_value, "expected NAME://IP:PORT,...".into()))?;
            let protocol = protocol_of(&name).ok_or_else(|| {
                err(
                    listeners_key,
                    &listeners_value,
                    format!("no security protocol for listener {name}: map it in listener.security.protocol.map"),
                )
            })?;
            if protocol == SecurityProtocol::SaslPlaintext && is_controller(&name) && self.quorum_voters.len() > 1 {
                return Err(err(
                    listeners_key,
                    &listeners_value,
                    format!(
                        "controller listener {name} uses {protocol}: the controller quorum speaks PLAINTEXT, SSL or SASL_SSL"
                    ),
                ));
            }
            if is_controller(&name) && protocol.uses_sasl() {
                controller_sasl_listener = Some(name.clone());
            }
            let ssl = if protocol.uses_tls() { Some(ssl_settings_for(s, &name)?) } else { None };
            if ssl.as_ref().is_some_and(|ssl| !ssl.has_keystore()) {
                return Err(err(
                    listeners_key,
                    &listeners_value,
                    format!(
                        "listener {name} uses {protocol}: it needs a certificate, ssl.keystore.location (or \
                         ssl.keystore.key and ssl.keystore.certificate.chain; per listener \
                         listener.name.{}.ssl.keystore.location)",
                        name.to_ascii_lowercase()
                    ),
                ));
            }
            if is_controller(&name) {
                controller = Some((addr, name, ssl));
                continue;
            }
            if clients.iter().any(|l| l.name == name) {
                return Err(err(listeners_key, &listeners_value, format!("listener {name} is listed twice")));
            }
            if let Some(other) = clients.iter().find(|l| l.addr.port() == addr.port() && addr.port() != 0) {
                return Err(err(
                    listeners_key,
                    &listeners_value,
                    format!("listeners {} and {name} use the same port {}", other.name, addr.port()),
                ));
            }
            clients.push(ListenerConfig { protocol, ssl, ..ListenerConfig::plaintext(&name, addr) });
        }
        if clients.is_empty() && self.broker_role {
            return Err(err(listeners_key, &listeners_value, "no client (non-controller) listener".into()));
        }
        if let Some(value) = get("advertised.listeners") {
            for (name, addr) in listener_entries(&value) {
                if name.as_deref().is_some_and(&is_controller) {
                    continue;
                }
                // a bare HOST:PORT (`--advertised-listener`) is the first
                // client listener's
                let listener = match &name {
                    None => clients.first_mut(),
                    Some(n) => clients.iter_mut().find(|l| &l.name == n),
                };
                let Some(listener) = listener else {
                    return Err(err(
                        "advertised.listeners",
                        &value,
                        format!("{} is not a listener in {listeners_key}", name.unwrap_or_default()),
                    ));
                };
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| err("advertised.listeners", &value, "expected HOST:PORT".into()))?;
                if !host.is_empty() {
                    listener.advertised_host = host.to_string();
                }
                listener.advertised_port =
                    port.parse().map_err(|_| err("advertised.listeners", &value, "bad port".into()))?;
            }
        }
        let inter_broker = match (get("inter.broker.listener.name"), get("security.inter.broker.protocol")) {
            (Some(name), Some(_)) => {
                return Err(err(
                    "inter.broker.listener.name",
                    &name,
                    "set either inter.broker.listener.name or security.inter.broker.protocol, not both".into(),
                ))
            }
            (Some(name), None) => {
                let name = name.to_ascii_uppercase();
                if !clients.iter().any(|l| l.name == name) && self.broker_role {
                    return Err(err(
                        "inter.broker.listener.name",
                        &name,
                        format!("{name} is not a client listener in {listeners_key}={listeners_value}"),
                    ));
                }
                name
            }
            (None, Some(protocol)) => {
                let p = SecurityProtocol::parse(&protocol)
                    .ok_or_else(|| err("security.inter.broker.protocol", &protocol, "unknown protocol".into()))?;
                // Kafka: the listener named after the protocol
                match clients.iter().find(|l| l.name == p.name()).or_else(|| clients.iter().find(|l| l.protocol == p)) {
                    Some(l) => l.name.clone(),
                    None if !self.broker_role => p.name().to_string(),
                    None => {
                        let mut have: Vec<&str> = clients.iter().map(|l| l.protocol.name()).collect();
                        have.dedup();
                        return Err(err(
                            "security.inter.broker.protocol",
                            &protocol,
                            format!("no {p} listener: {listeners_key}={listeners_value} has {} only", have.join(", ")),
                        ));
                    }
                }
            }
            // Kafka's default is the PLAINTEXT listener; with none, the
            // first client listener
            (None, None) => clients
                .iter()
                .find(|l| l.name == "PLAINTEXT")
                .or(clients.first())
                .map_or_else(|| "PLAINTEXT".to_string(), |l| l.name.clone()),
        };
        // a lone node never connects to itself; brokers of a cluster
        // check each other's certificates
        let several_nodes = self.quorum_voters.len() > 1;
        let inter_broker_ssl = clients.iter().find(|l| l.name == inter_broker).and_then(|l| l.ssl.as_ref());
        let controller_ssl = controller.as_ref().and_then(|(_, name, ssl)| Some((name, ssl.as_ref()?)));
        for (what, name, ssl) in [("inter-broker", &inter_broker, inter_broker_ssl)]
            .into_iter()
            .chain(controller_ssl.map(|(name, ssl)| ("controller", name, Some(ssl))))
        {
            if several_nodes && ssl.is_some_and(|ssl| !ssl.has_truststore()) {
                return Err(err(
                    "ssl.truststore.location",
                    "",
                    format!(
                        "the {what} listener {name} is SSL: nodes need a truststore to check each other \
                         (ssl.truststore.location or listener.name.{}.ssl.truststore.location)",
                        name.to_ascii_lowercase()
                    ),
                ));
            }
        }
        let (controller_listen, controller_ssl) = match controller {
            Some((addr, _, ssl)) => (Some(addr), ssl),
            None => (None, None),
        };
        self.controller_listen = controller_listen;
        self.controller_ssl = controller_ssl;
        self.controller_sasl_listener = controller_sasl_listener;
        self.listeners = clients;
        self.inter_broker_listener = inter_broker;
        self.sync_inter_broker_endpoint();
        Ok(())
    }

    /// The listener brokers use to reach each other.
    pub fn inter_broker(&self) -> Option<&ListenerConfig> {
        self.listeners.iter().find(|l| l.name == self.inter_broker_listener)
    }

    /// `listen` and `advertised_*` are the inter-broker listener's (what
    /// `RegisterBroker` records).
    pub(crate) fn sync_inter_broker_endpoint(&mut self) {
        if let Some(l) = self.inter_broker().cloned() {
            self.listen = l.addr;
            self.advertised_host = l.advertised_host;
            self.advertised_port = l.advertised_port;
        }
    }

    /// `listeners` as this broker runs with them (ports bound).
    pub fn listeners_value(&self) -> String {
        let mut all: Vec<String> = self.listeners.iter().map(|l| format!("{}://{}", l.name, l.addr)).collect();
        if let Some(controller) = self.controller_listen {
            all.push(format!("CONTROLLER://{controller}"));
        }
        all.join(",")
    }

    /// `advertised.listeners` as this broker runs with them.
    pub fn advertised_listeners_value(&self) -> String {
        let all: Vec<String> = self
            .listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
            .collect();
        all.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut c = BrokerConfig::default();
        let owned: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c.apply(&owned).map(|()| c)
    }

    #[test]
    fn several_listeners_each_advertised_and_secured() {
        let c = apply(&[
            ("listeners", "INTERNAL://127.0.0.1:9093,EXTERNAL://0.0.0.0:9094,CONTROLLER://127.0.0.1:9095"),
            ("listener.security.protocol.map", "INTERNAL:SSL,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("advertised.listeners", "INTERNAL://kafka-1:9093,EXTERNAL://kafka.example:443"),
            ("inter.broker.listener.name", "internal"),
            ("ssl.keystore.location", "/etc/broker.pem"),
            ("ssl.truststore.location", "/etc/ca.pem"),
            ("listener.name.internal.ssl.client.auth", "required"),
            ("ssl.client.auth", "none"),
        ])
        .unwrap();
        let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["INTERNAL", "EXTERNAL"]);
        let internal = &c.listeners[0];
        assert_eq!(internal.protocol, SecurityProtocol::Ssl);
        assert_eq!(internal.ssl.as_ref().unwrap().client_auth, vltava_security::ClientAuth::Required);
        assert_eq!((c.listeners[1].advertised_host.as_str(), c.listeners[1].advertised_port), ("kafka.example", 443));
        assert!(c.listeners[1].ssl.is_none());
        assert_eq!(c.inter_broker_listener, "INTERNAL");
        assert_eq!((c.listen.port(), c.advertised_host.as_str()), (9093, "kafka-1"), "the inter-broker listener's");
        assert_eq!(c.controller_listen.unwrap().port(), 9095);
        assert!(c.controller_ssl.is_none());
        let c = apply(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"),
            ("listener.name.controller.ssl.keystore.location", "/etc/controller.pem"),
            ("listener.name.controller.ssl.truststore.location", "/etc/ca.pem"),
        ])
        .unwrap();
        let ssl = c.controller_ssl.expect("an SSL controller listener");
        assert_eq!(ssl.keystore_location.unwrap().to_str(), Some("/etc/controller.pem"));
    }

    #[test]
    fn the_inter_broker_listener_by_protocol_or_default() {
        let c = apply(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093"),
            ("security.inter.broker.protocol", "SSL"),
            ("ssl.keystore.location", "/etc/broker.pem"),
            ("ssl.truststore.location", "/etc/ca.pem"),
        ])
        .unwrap();
        assert_eq!((c.inter_broker_listener.as_str(), c.listen.port()), ("SSL", 9093));
        let c = apply(&[
            ("listeners", "SSL://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092"),
            ("ssl.keystore.location", "/etc/broker.pem"),
        ])
        .unwrap();
        assert_eq!(c.inter_broker_listener, "PLAINTEXT", "Kafka's default security.inter.broker.protocol");
        // a bare --advertised-listener HOST:PORT is the first listener's
        let c = apply(&[
            ("listeners", "CLIENT://127.0.0.1:9092"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT"),
            ("advertised.listeners", "kafka1:19092"),
        ])
        .unwrap();
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("kafka1", 19092));
    }

    #[test]
    fn what_cannot_be_served_refuses_to_start() {
        let refused = |s: &[(&str, &str)]| apply(s).unwrap_err().to_string();
        let e = refused(&[("listeners", "SASL_SSL://127.0.0.1:9094")]);
        assert!(e.contains("SASL_SSL") && e.contains("ssl.keystore.location"), "{e}");
        let e = refused(&[("security.inter.broker.protocol", "SASL_PLAINTEXT")]);
        assert!(e.contains("no SASL_PLAINTEXT listener"), "{e}");
        let e = refused(&[("listeners", "SSL://127.0.0.1:9093"), ("ssl.keystore.type", "JKS")]);
        assert!(e.contains("PKCS12"), "{e}");
        let e = refused(&[("listeners", "SSL://127.0.0.1:9093")]);
        assert!(e.contains("listener SSL uses SSL") && e.contains("ssl.keystore.location"), "{e}");
        let e = refused(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,OTHER://127.0.0.1:9092"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT"),
        ]);
        assert!(e.contains("same port"), "{e}");
        let e = refused(&[
            ("listeners", "SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"),
            ("controller.quorum.voters", "1@127.0.0.1:9094,2@127.0.0.1:9194"),
            ("ssl.keystore.location", "/etc/broker.pem"),
        ]);
        assert!(e.contains("truststore"), "{e}");
        apply(&[("listeners", "SSL://127.0.0.1:9093"), ("ssl.keystore.location", "/etc/broker.pem")])
            .expect("a lone node needs no truststore");
        let e = refused(&[("listeners", "PLAINTEXT://127.0.0.1:9092"), ("security.inter.broker.protocol", "SSL")]);
        assert!(e.contains("no SSL listener") && e.contains("PLAINTEXT only"), "{e}");
        let e = refused(&[("listeners", "PLAINTEXT://127.0.0.1:9092"), ("advertised.listeners", "SSL://h:1")]);
        assert!(e.contains("not a listener"), "{e}");
        let e = refused(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"),
            ("listener.name.controller.ssl.keystore.location", "/etc/controller.pem"),
            ("controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.1:9193"),
        ]);
        assert!(e.contains("controller listener CONTROLLER is SSL") && e.contains("truststore"), "{e}");
    }

    #[test]
    fn per_listener_ssl_overrides_use_the_lowercase_name() {
        let mut settings = BTreeMap::new();
        settings.insert("ssl.keystore.location".to_string(), "/global.pem".to_string());
        settings.insert("listener.name.internal.ssl.keystore.location".to_string(), "/internal.pem".to_string());
        let internal = ssl_settings_for(&settings, "INTERNAL").unwrap();
        let external = ssl_settings_for(&settings, "EXTERNAL").unwrap();
        assert_eq!(internal.keystore_location.unwrap().to_str(), Some("/internal.pem"));
        assert_eq!(external.keystore_location.unwrap().to_str(), Some("/global.pem"));
    }
}
