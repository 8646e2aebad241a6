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
    /// Not a Kafka key (`vltava server --port-file`): a file the client
    /// port is written to once the broker accepts connections, so that a
    /// `listeners` port of 0 (the system picks) can be read back.
    pub port_file: Option<PathBuf>,
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
    /// `process.roles`: this node serves clients (broker) and/or votes in
    /// the metadata quorum (controller).
    pub broker_role: bool,
    pub controller_role: bool,
    /// The listener named in `controller.listener.names`: where the quorum
    /// and broker heartbeats reach this node.
    pub controller_listen: Option<SocketAddr>,
    /// `controller.quorum.voters`: `id@host:port` of every voter; empty
    /// means a quorum of this node alone.
    pub quorum_voters: Vec<(i32, String)>,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`
    pub broker_heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long
    /// leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms`
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.max.bytes` (per partition) and
    /// `replica.fetch.response.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    /// `offsets.topic.replication.factor` / `transaction.state.log.replication.factor`
    /// (capped to the live brokers when the topic is created).
    pub offsets_topic_replication_factor: i16,
    pub transaction_state_replication_factor: i16,
    /// `controlled.shutdown.enable`: move leaderships away before stopping.
    pub controlled_shutdown_enable: bool,
    /// `auto.leader.rebalance.enable`: give leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`
    pub leader_imbalance_check_interval_ms: u64,
}

impl BrokerConfig {
    /// Voters as (node id, address); a lone node votes for itself.
    pub fn voters(&self) -> Vec<(i32, String)> {
        if self.quorum_voters.is_empty() {
            vec![(self.node_id, String::new())]
        } else {
            self.quorum_voters.clone()
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listen: SocketAddr = "127.0.0.1:9092".parse().expect("valid");
        Self {
            node_id: 1,
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            port_file: None,
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
            broker_role: true,
            controller_role: true,
            controller_listen: None,
            quorum_voters: Vec::new(),
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_response_max_bytes: 10_485_760,
            offsets_topic_replication_factor: 3,
            transaction_state_replication_factor: 3,
            controlled_shutdown_enable: true,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
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

/// `NAME://host:port` entries of a listeners list (`PLAINTEXT` when a
/// bare `host:port` is given).
fn listener_entries(v: &str) -> Vec<(String, String)> {
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once("://") {
            Some((name, addr)) => (name.to_ascii_uppercase(), addr.to_string()),
            None => ("PLAINTEXT".to_string(), e.to_string()),
        })
        .collect()
}

fn parse_voters(v: &str) -> Option<Vec<(i32, String)>> {
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (id, addr) = e.split_once('@')?;
            let id: i32 = id.trim().parse().ok()?;
            addr.rsplit_once(':')?.1.parse::<u16>().ok()?;
            (id >= 0).then(|| (id, addr.trim().to_string()))
        })
        .collect()
}

impl BrokerConfig {
    /// Applies settings in order; later ones win. Unknown keys are kept
    /// out with a warning so that a Kafka `server.properties` loads.
    pub fn apply(&mut self, settings: &[(String, String)]) -> Result<(), ConfigError> {
        let mut advertised: Option<(String, String)> = None;
        let mut listeners: Option<(String, String)> = None;
        let mut controller_names = vec!["CONTROLLER".to_string()];
        let mut extra = BTreeMap::new();
        for (key, value) in settings {
            let err = |reason: &str| ConfigError { key: key.clone(), value: value.clone(), reason: reason.to_string() };
            let num = |v: &str| v.parse::<i64>().map_err(|_| err("not a number"));
            let boolean = |v: &str| v.parse::<bool>().map_err(|_| err("expected true or false"));
            match key.as_str() {
                "node.id" | "broker.id" => self.node_id = num(value)? as i32,
                "listeners" | "listen" => listeners = Some((key.clone(), value.clone())),
                "advertised.listeners" => advertised = Some((key.clone(), value.clone())),
                "controller.listener.names" => {
                    controller_names = value.split(',').map(|n| n.trim().to_ascii_uppercase()).collect()
                }
                "process.roles" => {
                    let roles: Vec<&str> = value.split(',').map(str::trim).collect();
                    self.broker_role = roles.contains(&"broker");
                    self.controller_role = roles.contains(&"controller");
                    if roles.iter().any(|r| *r != "broker" && *r != "controller") || !self.controller_role {
                        return Err(err(
                            "expected controller or broker,controller (broker-only nodes are not supported yet)",
                        ));
                    }
                }
                "controller.quorum.voters" => {
                    self.quorum_voters = parse_voters(value).ok_or_else(|| err("expected id@host:port,..."))?
                }
                "controller.quorum.bootstrap.servers" => {}
                "broker.session.timeout.ms" => self.broker_session_timeout_ms = num(value)?.max(100) as u64,
                "broker.heartbeat.interval.ms" => self.broker_heartbeat_interval_ms = num(value)?.max(10) as u64,
                "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = num(value)?.max(100) as u64,
                "replica.fetch.wait.max.ms" => self.replica_fetch_wait_max_ms = num(value)?.clamp(0, 60_000) as i32,
                "replica.fetch.max.bytes" => {
                    self.replica_fetch_max_bytes = num(value)?.clamp(1024, i32::MAX as i64) as i32
                }
                "replica.fetch.response.max.bytes" => {
                    self.replica_fetch_response_max_bytes = num(value)?.clamp(1024, i32::MAX as i64) as i32
                }
                "offsets.topic.replication.factor" => {
                    self.offsets_topic_replication_factor = num(value)?.clamp(1, i16::MAX as i64) as i16
                }
                "transaction.state.log.replication.factor" => {
                    self.transaction_state_replication_factor = num(value)?.clamp(1, i16::MAX as i64) as i16
                }
                "controlled.shutdown.enable" => self.controlled_shutdown_enable = boolean(value)?,
                "auto.leader.rebalance.enable" => self.auto_leader_rebalance_enable = boolean(value)?,
                "leader.imbalance.check.interval.seconds" => {
                    self.leader_imbalance_check_interval_ms = num(value)?.max(1) as u64 * 1000
                }
                "unclean.leader.election.enable" => {
                    if boolean(value)? {
                        return Err(err("unclean leader election is not supported"));
                    }
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
        let is_controller = |name: &str| controller_names.iter().any(|c| c == name);
        if let Some((key, value)) = listeners {
            let err = |reason: &str| ConfigError { key: key.clone(), value: value.clone(), reason: reason.to_string() };
            let mut client = None;
            for (name, addr) in listener_entries(&value) {
                let addr: SocketAddr = addr.parse().map_err(|_| err("expected NAME://IP:PORT,..."))?;
                if is_controller(&name) {
                    self.controller_listen = Some(addr);
                } else if client.is_none() {
                    client = Some(addr);
                }
            }
            match client {
                Some(addr) => self.listen = addr,
                None if !self.broker_role => {}
                None => return Err(err("no client (non-controller) listener")),
            }
            self.advertised_host = self.listen.ip().to_string();
            self.advertised_port = self.listen.port();
        }
        if let Some((key, value)) = advertised {
            let err = |reason: &str| ConfigError { key: key.clone(), value: value.clone(), reason: reason.to_string() };
            let (_, addr) = listener_entries(&value)
                .into_iter()
                .find(|(name, _)| !is_controller(name))
                .ok_or_else(|| err("expected PLAINTEXT://HOST:PORT"))?;
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| err("expected HOST:PORT"))?;
            self.advertised_host = host.to_string();
            self.advertised_port = port.parse().map_err(|_| err("bad port"))?;
        }
        if self.quorum_voters.len() > 1 || self.quorum_voters.iter().any(|(id, _)| *id != self.node_id) {
            if !self.quorum_voters.iter().any(|(id, _)| *id == self.node_id) {
                return Err(ConfigError {
                    key: "controller.quorum.voters".into(),
                    value: format!("{:?}", self.quorum_voters),
                    reason: format!(
                        "node.id {} is not a voter (broker-only nodes are not supported yet)",
                        self.node_id
                    ),
                });
            }
            if self.controller_listen.is_none() {
                return Err(ConfigError {
                    key: "listeners".into(),
                    value: String::new(),
                    reason: "a controller listener (controller.listener.names) is required with several voters".into(),
                });
            }
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

    #[test]
    fn kraft_keys() {
        let mut c = BrokerConfig::default();
        c.apply(&parse_properties(
            "node.id=2\nprocess.roles=broker,controller\n\
             listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
             advertised.listeners=PLAINTEXT://kafka2:9092\ncontroller.listener.names=CONTROLLER\n\
             controller.quorum.voters=1@h1:9093,2@127.0.0.1:9093,3@h3:9093\nlog.dirs=/tmp/x\n",
        ))
        .unwrap();
        assert_eq!(c.node_id, 2);
        assert_eq!(c.listen.port(), 9092);
        assert_eq!(c.controller_listen.unwrap().port(), 9093);
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("kafka2", 9092));
        assert_eq!(c.voters().len(), 3);
        let mut bad = BrokerConfig::default();
        assert!(bad.apply(&[("controller.quorum.voters".into(), "1@h1:9093,2@h2:9093".into())]).is_err());
        assert!(bad.apply(&[("process.roles".into(), "broker".into())]).is_err());
        assert_eq!(BrokerConfig::default().voters(), vec![(1, String::new())]);
    }
}
