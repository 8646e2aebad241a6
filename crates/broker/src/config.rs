//! Broker configuration with Kafka's names and defaults, read from a
//! `server.properties`-style file and `--set key=value` overrides.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::group::state::GroupConfig;
use crate::topic_config;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id` (`broker.id`).
    pub node_id: i32,
    /// `listeners`: where to accept connections.
    pub listen: SocketAddr,
    /// `advertised.listeners`: host and port clients are told to use.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// `log.dirs` (`log.dir`): the data directory.
    pub data_dir: PathBuf,
    /// `auto.create.topics.enable`
    pub auto_create_topics_enable: bool,
    /// `num.partitions`: partitions of auto-created topics.
    pub num_partitions: i32,
    /// `default.replication.factor`
    pub default_replication_factor: i16,
    /// `socket.request.max.bytes`: largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `max.connections`
    pub max_connections: usize,
    /// `log.flush.on.acks.all` (vltava): fsync before acknowledging acks=all.
    pub flush_on_acks_all: bool,
    /// Every setting given in the config file or with `--set`, as given:
    /// topic configs fall back to their broker synonyms here.
    pub static_settings: BTreeMap<String, String>,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms`
    pub cleaner_backoff_ms: u64,
    /// `queued.max.requests`: pipelined requests in flight per connection.
    pub queued_max_requests: usize,
    /// `group.*` settings of the group coordinator.
    pub group: GroupConfig,
    /// `offsets.topic.num.partitions`
    pub offsets_topic_num_partitions: i32,
    /// `transaction.state.log.num.partitions`
    pub transaction_state_partitions: i32,
    /// `transaction.max.timeout.ms`
    pub transaction_max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub transaction_abort_interval_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listen: SocketAddr = "127.0.0.1:9092".parse().expect("valid");
        Self {
            node_id: 1,
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            data_dir: PathBuf::from("./data"),
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            socket_request_max_bytes: 104_857_600,
            max_connections: 10_000,
            flush_on_acks_all: true,
            static_settings: BTreeMap::new(),
            retention_check_interval_ms: 300_000,
            cleaner_backoff_ms: 15_000,
            queued_max_requests: 500,
            group: GroupConfig::default(),
            offsets_topic_num_partitions: 50,
            transaction_state_partitions: 50,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_interval_ms: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid config {key}={value}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// Parses `key=value` lines (`#` comments, blank lines ignored).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn strip_listener_scheme(v: &str) -> &str {
    let first = v.split(',').next().unwrap_or(v);
    first.split_once("://").map(|(_, a)| a).unwrap_or(first)
}

impl BrokerConfig {
    /// Applies settings in order; later ones win. Unknown keys are kept
    /// out with a warning so that a Kafka `server.properties` loads.
    pub fn apply(&mut self, settings: &[(String, String)]) -> Result<(), ConfigError> {
        let mut advertised_set = false;
        let mut extra = BTreeMap::new();
        for (key, value) in settings {
            let err = |reason: &str| ConfigError { key: key.clone(), value: value.clone(), reason: reason.to_string() };
            let num = |v: &str| v.parse::<i64>().map_err(|_| err("not a number"));
            let boolean = |v: &str| v.parse::<bool>().map_err(|_| err("expected true or false"));
            match key.as_str() {
                "node.id" | "broker.id" => self.node_id = num(value)? as i32,
                "listeners" | "listen" => {
                    self.listen = strip_listener_scheme(value)
                        .parse()
                        .map_err(|_| err("expected HOST:PORT or PLAINTEXT://HOST:PORT"))?
                }
                "advertised.listeners" => {
                    let addr = strip_listener_scheme(value);
                    let (host, port) = addr.rsplit_once(':').ok_or_else(|| err("expected HOST:PORT"))?;
                    self.advertised_host = host.to_string();
                    self.advertised_port = port.parse().map_err(|_| err("bad port"))?;
                    advertised_set = true;
                }
                "log.dirs" | "log.dir" => self.data_dir = PathBuf::from(value.split(',').next().unwrap_or(value)),
                "auto.create.topics.enable" => self.auto_create_topics_enable = boolean(value)?,
                "num.partitions" => {
                    let n = num(value)?;
                    if n < 1 {
                        return Err(err("must be at least 1"));
                    }
                    self.num_partitions = n as i32
                }
                "default.replication.factor" => self.default_replication_factor = num(value)? as i16,
                "socket.request.max.bytes" => self.socket_request_max_bytes = num(value)?.max(1024) as usize,
                "max.connections" => self.max_connections = num(value)?.max(1) as usize,
                "queued.max.requests" => self.queued_max_requests = num(value)?.max(1) as usize,
                "group.initial.rebalance.delay.ms" => self.group.initial_rebalance_delay_ms = num(value)?.max(0) as u64,
                "group.min.session.timeout.ms" => self.group.min_session_timeout_ms = num(value)? as i32,
                "group.max.session.timeout.ms" => self.group.max_session_timeout_ms = num(value)? as i32,
                "group.max.size" => self.group.max_size = num(value)?.max(1) as usize,
                "offsets.topic.num.partitions" => {
                    let n = num(value)?;
                    if !(1..=1000).contains(&n) {
                        return Err(err("must be between 1 and 1000"));
                    }
                    self.offsets_topic_num_partitions = n as i32
                }
                "log.flush.on.acks.all" => self.flush_on_acks_all = boolean(value)?,
                "transaction.state.log.num.partitions" => {
                    self.transaction_state_partitions = num(value)?.clamp(1, 1000) as i32
                }
                "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = num(value)?.max(1) as i32,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    self.transaction_abort_interval_ms = num(value)?.max(1) as u64
                }
                "log.retention.check.interval.ms" => self.retention_check_interval_ms = num(value)?.max(1) as u64,
                "log.cleaner.backoff.ms" => self.cleaner_backoff_ms = num(value)?.max(1) as u64,
                k if topic_config::is_broker_synonym(k) => {
                    topic_config::validate_broker_synonym(k, value).map_err(|r| err(&r))?
                }
                _ => {
                    extra.insert(key.clone(), value.clone());
                }
            }
            self.static_settings.insert(key.clone(), value.clone());
        }
        if !advertised_set && settings.iter().any(|(k, _)| k == "listeners" || k == "listen") {
            self.advertised_host = self.listen.ip().to_string();
            self.advertised_port = self.listen.port();
        }
        for key in extra.keys() {
            tracing::warn!(key, "ignoring config key vltava does not know yet");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_and_advertised() {
        let mut c = BrokerConfig::default();
        c.apply(&parse_properties("listeners=PLAINTEXT://127.0.0.1:19092\n# comment\nnum.partitions = 3\n")).unwrap();
        assert_eq!(c.listen.port(), 19092);
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("127.0.0.1", 19092));
        assert_eq!(c.num_partitions, 3);
        c.apply(&[("advertised.listeners".into(), "PLAINTEXT://kafka.example:9092".into())]).unwrap();
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("kafka.example", 9092));
        assert!(c.apply(&[("num.partitions".into(), "0".into())]).is_err());
    }
}
