//! Broker configuration with Kafka's names and defaults, read from a
//! `server.properties`-style file and `--set key=value` overrides.
//!
//! Every key of Kafka 4.1's broker config list is either parsed here (vltava
//! implements it), or classified in `broker_keys` (accepted because it has
//! no meaning here, or accepted only at values that ask for nothing vltava
//! lacks). A value vltava cannot honour stops the start with a message
//! naming the key; keys Kafka 4.1 does not have are logged and ignored, as
//! Kafka does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::broker_keys::{self, Verdict};
use crate::group::state::GroupConfig;
use crate::listeners::{self, ListenerConfig};
use crate::topic_config;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id` (`broker.id`).
    pub node_id: i32,
    /// The inter-broker listener's address (`listeners`) and its
    /// advertised host and port (`advertised.listeners`): what this broker
    /// registers, where other brokers reach it.
    pub listen: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Every client listener (not the controller's), each with its name,
    /// security protocol, advertised endpoint and TLS settings
    /// (`listeners.rs`).
    pub listeners: Vec<ListenerConfig>,
    /// `inter.broker.listener.name`: the listener replication and
    /// broker-to-broker calls use.
    pub inter_broker_listener: String,
    /// Not a Kafka key (`vltava server --port-file`): a file the client
    /// port is written to once the broker accepts connections, so that a
    /// `listeners` port of 0 (the system picks) can be read back.
    pub port_file: Option<PathBuf>,
    /// `log.dirs` (`log.dir`): the first data directory, which also holds
    /// `meta.properties` and the metadata log (`metadata.log.dir`).
    pub data_dir: PathBuf,
    /// The other directories of `log.dirs` (JBOD): partitions are spread
    /// over all of them.
    pub extra_data_dirs: Vec<PathBuf>,
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
    /// `max.request.partition.size.limit`: most partitions one
    /// DescribeTopicPartitions response describes.
    pub max_request_partition_size_limit: i32,
    /// `log.flush.on.acks.all` (vltava): fsync before acknowledging acks=all.
    pub flush_on_acks_all: bool,
    /// `admin.listeners` (vltava): the HTTP listener serving `/metrics` and
    /// `/health/*` (`http://host:port`; empty: none).
    pub admin_listen: Option<SocketAddr>,
    /// `admin.listeners=https://...`: the admin listener's TLS, from
    /// `listener.name.admin.ssl.*` over the top-level `ssl.*` keys.
    pub admin_ssl: Option<vltava_security::SslSettings>,
    /// `schema.registry.listeners` (vltava): the schema registry's HTTP
    /// listener (`http://host:port`; empty: none). On by default on
    /// loopback for a single node; off by default in a multi-node quorum.
    pub schema_registry_listen: Option<SocketAddr>,
    /// `schema.registry.authentication=basic` (vltava; default `none`):
    /// HTTP basic with the SASL users.
    pub schema_registry_basic_auth: bool,
    /// `console.enabled` (vltava; default true): the web console on the
    /// admin listener (`/`, `/api/v1`, see `vltava-console`).
    pub console_enabled: bool,
    /// `console.authentication=sasl` (vltava; default `none`): a login with
    /// the SASL users (PLAIN and SCRAM credentials); without it the console
    /// acts as `User:ANONYMOUS`.
    pub console_sasl_auth: bool,
    /// `console.session.timeout.ms` (vltava; default 1 hour): how long a
    /// console login lasts without a request.
    pub console_session_timeout_ms: u64,
    /// `metrics.per.partition.enable` (vltava): per-partition series on
    /// `/metrics` (log sizes and offsets); off for very many partitions.
    pub metrics_per_partition: bool,
    /// `telemetry.max.bytes`: the largest PushTelemetry payload (KIP-714).
    pub telemetry_max_bytes: i32,
    /// `log.dir.min.free.bytes` (vltava): produce is refused with
    /// KAFKA_STORAGE_ERROR rather than leave less free space in a log
    /// directory (0: never refused); the rest is kept for the metadata log,
    /// checkpoints, offset commits and transaction markers. Unset: the
    /// smaller of 64 MiB and a tenth of the file system.
    pub log_dir_min_free_bytes: Option<u64>,
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
    /// The controller listener's TLS settings when it is SSL: its
    /// connections, and this node's to the other controllers, use TLS.
    pub controller_ssl: Option<vltava_security::SslSettings>,
    /// The controller listener's name when it is SASL_SSL.
    pub controller_sasl_listener: Option<String>,
    /// `controller.quorum.voters`: `id@host:port` of every voter; empty
    /// means a quorum of this node alone.
    pub quorum_voters: Vec<(i32, String)>,
    /// `controller.quorum.bootstrap.servers` (KIP-853's dynamic quorum),
    /// `host:port` each; used without `controller.quorum.voters` only.
    pub quorum_bootstrap_servers: Vec<String>,
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
    /// `log.segment.delete.delay.ms`: how long a stray partition directory (one the
    /// metadata no longer assigns here) is kept, renamed `*-stray`, before
    /// it is deleted.
    pub file_delete_delay_ms: u64,
    /// `vltava server --truncate-corrupt-metadata-log` (no config key: a
    /// one-off decision of the operator): start on a metadata log that is
    /// corrupt before its tail by dropping everything from the corruption on.
    pub truncate_corrupt_metadata_log: bool,
    /// `vltava server --add-scram`: SCRAM users a new cluster starts with
    /// (written with its cluster id, as `kafka-storage format --add-scram`).
    pub bootstrap_scram: Vec<vltava_security::sasl::scram::AddScram>,
    /// `log.flush.offset.checkpoint.interval.ms`: how often the recovery
    /// points are checkpointed.
    pub recovery_point_checkpoint_interval_ms: u64,
    /// `metadata.log.segment.bytes`
    pub metadata_log_segment_bytes: u64,
    /// `metadata.log.max.record.bytes.between.snapshots`
    pub metadata_snapshot_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms`
    pub metadata_snapshot_interval_ms: u64,
    /// `delete.topic.enable`: false makes DeleteTopics fail with
    /// TOPIC_DELETION_DISABLED.
    pub delete_topic_enable: bool,
    /// `log.cleaner.enable`: false leaves compacted topics uncompacted.
    pub log_cleaner_enable: bool,
    /// `offsets.topic.segment.bytes` / `transaction.state.log.segment.bytes`:
    /// `segment.bytes` of the internal topics when they are created.
    pub offsets_topic_segment_bytes: i32,
    pub transaction_state_segment_bytes: i32,
    /// `transaction.state.log.min.isr`: `min.insync.replicas` of
    /// `__transaction_state` when it is created (at most its replication
    /// factor).
    pub transaction_state_min_isr: i32,
    /// `share.coordinator.*`: the share coordinator and `__share_group_state`.
    pub share_coordinator: crate::share::coordinator::ShareCoordinatorConfig,
    /// `offset.metadata.max.bytes`: the largest metadata string of a commit.
    pub offset_metadata_max_bytes: usize,
    /// `fetch.max.bytes`: the most a consumer's Fetch response holds (the
    /// first batch is returned whole regardless).
    pub fetch_max_bytes: i32,
    /// `replica.fetch.min.bytes`
    pub replica_fetch_min_bytes: i32,
    /// `socket.listen.backlog.size` of the client listener.
    pub socket_listen_backlog: u32,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authorizer: crate::authorizer::AuthorizerConfig,
    /// Keys given that Kafka 4.1 does not have: logged and ignored.
    pub unknown_keys: Vec<String>,
}

impl BrokerConfig {
    /// Every data directory (`log.dirs`), the first one first.
    pub fn log_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.data_dir.clone()).chain(self.extra_data_dirs.iter().cloned()).collect()
    }

    /// Whether this node joins a quorum that exists (its bootstrap servers
    /// name another controller than itself): it starts as an observer until
    /// the quorum adds it, instead of a quorum of its own.
    pub fn joins_quorum(&self) -> bool {
        let own_port = self.controller_listen.map(|l| l.port());
        let port_of = |e: &String| e.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
        self.quorum_voters.is_empty()
            && match &self.quorum_bootstrap_servers[..] {
                [] => false,
                [one] => port_of(one) != own_port,
                _ => true,
            }
    }

    /// Voters as (node id, address); a lone node votes for itself.
    pub fn voters(&self) -> Vec<(i32, String)> {
        if self.quorum_voters.is_empty() {
            vec![(self.node_id, String::new())]
        } else {
            self.quorum_voters.clone()
        }
    }

    /// The value this broker runs with for the keys where that is not the
    /// static setting as given nor Kafka's default: values from the command
    /// line (`--data-dir`, `--listen`), vltava's own defaults, and keys
    /// vltava adds. DescribeConfigs shows these.
    pub fn effective_values(&self) -> Vec<(&'static str, String)> {
        let roles = match (self.broker_role, self.controller_role) {
            (true, true) => "broker,controller",
            (true, false) => "broker",
            _ => "controller",
        };
        let voters: Vec<String> = self.quorum_voters.iter().map(|(id, addr)| format!("{id}@{addr}")).collect();
        vec![
            ("node.id", self.node_id.to_string()),
            ("broker.id", self.node_id.to_string()),
            ("process.roles", roles.to_string()),
            ("listeners", self.listeners_value()),
            ("advertised.listeners", self.advertised_listeners_value()),
            ("inter.broker.listener.name", self.inter_broker_listener.clone()),
            ("log.dirs", self.log_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",")),
            ("log.dir", self.data_dir.display().to_string()),
            ("metadata.log.dir", self.data_dir.display().to_string()),
            ("controller.quorum.voters", voters.join(",")),
            ("auto.create.topics.enable", self.auto_create_topics_enable.to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            ("default.replication.factor", self.default_replication_factor.to_string()),
            ("socket.request.max.bytes", self.socket_request_max_bytes.to_string()),
            ("max.connections", self.max_connections.to_string()),
            ("queued.max.requests", self.queued_max_requests.to_string()),
            ("group.max.size", self.group.max_size.to_string()),
            ("offsets.topic.num.partitions", self.offsets_topic_num_partitions.to_string()),
            ("transaction.state.log.num.partitions", self.transaction_state_partitions.to_string()),
            ("log.flush.on.acks.all", self.flush_on_acks_all.to_string()),
            (
                "admin.listeners",
                self.admin_listen
                    .map(|a| format!("{}://{a}", if self.admin_ssl.is_some() { "https" } else { "http" }))
                    .unwrap_or_default(),
            ),
            (
                "schema.registry.listeners",
                self.schema_registry_listen.map(|a| format!("http://{a}")).unwrap_or_default(),
            ),
            ("console.enabled", self.console_enabled.to_string()),
            ("console.authentication", if self.console_sasl_auth { "sasl" } else { "none" }.to_string()),
            ("console.session.timeout.ms", self.console_session_timeout_ms.to_string()),
            ("metrics.per.partition.enable", self.metrics_per_partition.to_string()),
            ("telemetry.max.bytes", self.telemetry_max_bytes.to_string()),
        ]
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
            listeners: vec![ListenerConfig::plaintext("PLAINTEXT", listen)],
            inter_broker_listener: "PLAINTEXT".to_string(),
            port_file: None,
            data_dir: PathBuf::from("./data"),
            extra_data_dirs: Vec::new(),
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            socket_request_max_bytes: 104_857_600,
            max_connections: 10_000,
            max_request_partition_size_limit: 2000,
            flush_on_acks_all: true,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9644))),
            admin_ssl: None,
            schema_registry_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
            schema_registry_basic_auth: false,
            console_enabled: true,
            console_sasl_auth: false,
            console_session_timeout_ms: 3_600_000,
            metrics_per_partition: true,
            telemetry_max_bytes: 1_048_576,
            log_dir_min_free_bytes: None,
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
            controller_ssl: None,
            controller_sasl_listener: None,
            quorum_voters: Vec::new(),
            quorum_bootstrap_servers: Vec::new(),
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
            file_delete_delay_ms: 60_000,
            truncate_corrupt_metadata_log: false,
            bootstrap_scram: Vec::new(),
            recovery_point_checkpoint_interval_ms: 60_000,
            metadata_log_segment_bytes: 16 << 20,
            metadata_snapshot_bytes: 20 << 20,
            metadata_snapshot_interval_ms: 3_600_000,
            delete_topic_enable: true,
            log_cleaner_enable: true,
            offsets_topic_segment_bytes: 104_857_600,
            transaction_state_segment_bytes: 104_857_600,
            transaction_state_min_isr: 2,
            share_coordinator: Default::default(),
            offset_metadata_max_bytes: 4096,
            fetch_max_bytes: 57_671_680,
            replica_fetch_min_bytes: 1,
            socket_listen_backlog: 50,
            authorizer: Default::default(),
            unknown_keys: Vec::new(),
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
/// Whether `key` is a broker config key vltava knows: one it implements or
/// one `broker_keys` lists (a probe: an unknown key is the only one that
/// applies without error and lands in `unknown_keys`).
pub fn is_known_key(key: &str) -> bool {
    let mut probe = BrokerConfig::default();
    match probe.apply(&[(key.to_string(), String::new())]) {
        Err(_) => true,
        Ok(()) => !probe.unknown_keys.iter().any(|k| k == key),
    }
}

pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    logical_lines(text)
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `admin.listeners`: one `http://host:port` (a name resolved now), or
/// nothing (`Some(None)`: no admin listener); `None` when malformed.
/// `admin.listeners`: nothing, or one `http://host:port` or
/// `https://host:port` (the address, and whether it is TLS).
fn parse_admin_listeners(value: &str) -> Option<Option<(SocketAddr, bool)>> {
    let value = value.trim();
    if value.is_empty() {
        return Some(None);
    }
    let (hostport, tls) = match value.strip_prefix("https://") {
        Some(rest) => (rest, true),
        None => (value.strip_prefix("http://")?, false),
    };
    if hostport.contains(',') {
        return None;
    }
    use std::net::ToSocketAddrs;
    hostport.to_socket_addrs().ok()?.next().map(|a| Some((a, tls)))
}

/// The lines of a properties file with Java's continuations joined: a line
/// ending in an odd number of backslashes goes on with the next one, whose
/// leading white space is dropped (how Kafka users write inline PEM values
/// such as `ssl.keystore.certificate.chain`). A comment line never continues.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = match &current {
            Some(_) => line.trim_start(),
            None if line.trim_start().starts_with(['#', '!']) => {
                lines.push(line.to_string());
                continue;
            }
            None => line,
        };
        let backslashes = line.len() - line.trim_end_matches('\\').len();
        let (part, continues) = if backslashes % 2 == 1 { (&line[..line.len() - 1], true) } else { (line, false) };
        let joined = current.get_or_insert_with(String::new);
        joined.push_str(part);
        if !continues {
            lines.extend(current.take());
        }
    }
    lines.extend(current);
    lines
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
        let mut bootstrap_servers: Option<String> = None;
        let mut metadata_log_dir: Option<String> = None;
        let mut ids: Vec<(String, i64)> = Vec::new();
        let mut extra = BTreeMap::new();
        for (key, value) in settings {
            let err = |reason: &str| ConfigError { key: key.clone(), value: value.clone(), reason: reason.to_string() };
            let num = |v: &str| v.parse::<i64>().map_err(|_| err("not a number"));
            let boolean = |v: &str| match v.trim() {
                t if t.eq_ignore_ascii_case("true") => Ok(true),
                f if f.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(err("expected true or false")),
            };
            let positive = |v: &str| match num(v)? {
                n if (1..=i32::MAX as i64).contains(&n) => Ok(n as i32),
                _ => Err(err("must be between 1 and 2147483647")),
            };
            match key.as_str() {
                "node.id" | "broker.id" => {
                    let id = num(value)?;
                    // broker.id=-1 is Kafka's default: no id given
                    if key == "broker.id" && id == -1 {
                    } else if !(0..=i32::MAX as i64).contains(&id) {
                        return Err(err("must be between 0 and 2147483647"));
                    } else if ids.iter().any(|(k, other)| k != key && *other != id) {
                        return Err(err("node.id and broker.id must be equal"));
                    } else {
                        ids.push((key.clone(), id));
                        self.node_id = id as i32
                    }
                }
                // resolved together once all are known (listeners.rs)
                "listeners" | "listen" | "advertised.listeners" | "controller.listener.names" => {}
                "inter.broker.listener.name" | "security.inter.broker.protocol" => {}
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
                "controller.quorum.bootstrap.servers" => bootstrap_servers = Some(value.clone()),
                "listener.security.protocol.map" => {
                    listeners::parse_protocol_map(value).ok_or_else(|| {
                        err("expected NAME:PROTOCOL,... with PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
                    })?;
                }
                "metadata.log.dir" => metadata_log_dir = Some(value.trim().to_string()),
                "delete.topic.enable" => self.delete_topic_enable = boolean(value)?,
                "log.cleaner.enable" => self.log_cleaner_enable = boolean(value)?,
                "offsets.topic.segment.bytes" => self.offsets_topic_segment_bytes = positive(value)?,
                "transaction.state.log.segment.bytes" => self.transaction_state_segment_bytes = positive(value)?,
                "transaction.state.log.min.isr" => self.transaction_state_min_isr = positive(value)?,
                "offset.metadata.max.bytes" => self.offset_metadata_max_bytes = num(value)?.max(0) as usize,
                "fetch.max.bytes" => {
                    let n = positive(value)?;
                    if n < 1024 {
                        return Err(err("must be at least 1024"));
                    }
                    self.fetch_max_bytes = n
                }
                "replica.fetch.min.bytes" => {
                    self.replica_fetch_min_bytes = num(value)?.clamp(1, i32::MAX as i64) as i32
                }
                "socket.listen.backlog.size" => self.socket_listen_backlog = positive(value)? as u32,
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
                "log.segment.delete.delay.ms" => self.file_delete_delay_ms = num(value)?.max(0) as u64,
                "log.flush.offset.checkpoint.interval.ms" => {
                    self.recovery_point_checkpoint_interval_ms = num(value)?.max(1) as u64
                }
                "metadata.log.segment.bytes" => {
                    self.metadata_log_segment_bytes = num(value)?.clamp(4096, i32::MAX as i64) as u64
                }
                "metadata.log.max.record.bytes.between.snapshots" => {
                    self.metadata_snapshot_bytes = num(value)?.max(1) as u64
                }
                "metadata.log.max.snapshot.interval.ms" => {
                    self.metadata_snapshot_interval_ms = num(value)?.max(0) as u64
                }
                "auto.leader.rebalance.enable" => self.auto_leader_rebalance_enable = boolean(value)?,
                "leader.imbalance.check.interval.seconds" => {
                    self.leader_imbalance_check_interval_ms = num(value)?.max(1) as u64 * 1000
                }
                "unclean.leader.election.enable" => {
                    if boolean(value)? {
                        return Err(err("unclean leader election is not supported"));
                    }
                }
                "log.dirs" | "log.dir" => {
                    let dirs: Vec<PathBuf> =
                        value.split(',').map(str::trim).filter(|d| !d.is_empty()).map(PathBuf::from).collect();
                    let Some((first, rest)) = dirs.split_first() else { return Err(err("expected a directory")) };
                    if dirs.iter().enumerate().any(|(i, d)| dirs[..i].contains(d)) {
                        return Err(err("a directory is listed twice"));
                    }
                    self.data_dir = first.clone();
                    self.extra_data_dirs = rest.to_vec();
                }
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
                "max.request.partition.size.limit" => {
                    self.max_request_partition_size_limit = num(value)?.clamp(1, i32::MAX as i64) as i32
                }
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
                "admin.listeners" => {
                    let parsed = parse_admin_listeners(value)
                        .ok_or_else(|| err("expected http://host:port, https://host:port, or nothing"))?;
                    self.admin_listen = parsed.map(|(addr, _)| addr);
                }
                "schema.registry.listeners" => {
                    let parsed =
                        parse_admin_listeners(value).ok_or_else(|| err("expected http://host:port or nothing"))?;
                    if parsed.is_some_and(|(_, tls)| tls) {
                        return Err(err("https is not supported yet: expected http://host:port or nothing"));
                    }
                    self.schema_registry_listen = parsed.map(|(addr, _)| addr);
                }
                "schema.registry.authentication" => {
                    self.schema_registry_basic_auth = match value.trim().to_ascii_lowercase().as_str() {
                        "basic" => true,
                        "none" | "" => false,
                        _ => return Err(err("expected basic or none")),
                    }
                }
                "console.enabled" => self.console_enabled = boolean(value)?,
                "console.authentication" => {
                    self.console_sasl_auth = match value.trim().to_ascii_lowercase().as_str() {
                        "sasl" => true,
                        "none" | "" => false,
                        _ => return Err(err("expected sasl or none")),
                    }
                }
                "console.session.timeout.ms" => {
                    let n = num(value)?;
                    if n < 1000 {
                        return Err(err("must be at least 1000"));
                    }
                    self.console_session_timeout_ms = n as u64
                }
                "metrics.per.partition.enable" => self.metrics_per_partition = boolean(value)?,
                "telemetry.max.bytes" => {
                    let n = num(value)?;
                    if !(1..=i32::MAX as i64).contains(&n) {
                        return Err(err("must be at least 1"));
                    }
                    self.telemetry_max_bytes = n as i32
                }
                "log.dir.min.free.bytes" => self.log_dir_min_free_bytes = Some(num(value)?.max(0) as u64),
                "transaction.state.log.num.partitions" => {
                    self.transaction_state_partitions = num(value)?.clamp(1, 1000) as i32
                }
                "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = num(value)?.max(1) as i32,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    self.transaction_abort_interval_ms = num(value)?.max(1) as u64
                }
                "log.retention.check.interval.ms" => self.retention_check_interval_ms = num(value)?.max(1) as u64,
                "log.cleaner.backoff.ms" => self.cleaner_backoff_ms = num(value)?.max(1) as u64,
                k if crate::share::coordinator::ShareCoordinatorConfig::is_key(k) => {
                    self.share_coordinator.set(k, value).map_err(|r| err(&r))?
                }
                k if crate::group_config::is_broker_key(k) => self.group.set(k, value).map_err(|r| err(&r))?,
                k if crate::authorizer::AuthorizerConfig::is_key(k) => {
                    self.authorizer.set(k, value).map_err(|r| err(&r))?
                }
                k if topic_config::is_broker_synonym(k) => {
                    topic_config::validate_broker_synonym(k, value).map_err(|r| err(&r))?
                }
                k => match broker_keys::check(k, value) {
                    Verdict::Accepted => {}
                    Verdict::Refused(reason) => return Err(err(reason)),
                    Verdict::Unknown => {
                        extra.insert(key.clone(), value.clone());
                    }
                },
            }
            self.static_settings.insert(key.clone(), value.clone());
        }
        if settings.iter().any(|(key, _)| listeners::is_listener_key(key)) {
            self.resolve_listeners()?;
        }
        // the registry is on by default for a single node only
        let multi_node = self.quorum_voters.len() > 1 || !self.quorum_bootstrap_servers.is_empty();
        if multi_node && !self.static_settings.contains_key("schema.registry.listeners") {
            self.schema_registry_listen = None;
        }
        // the admin listener's TLS settings, whichever call set them
        self.admin_ssl = match self.static_settings.get("admin.listeners") {
            Some(v) if v.trim().starts_with("https://") => {
                Some(listeners::ssl_settings_for(&self.static_settings, "admin")?)
            }
            _ => None,
        };
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
        if let Err((key, reason)) = self.group.check_bounds() {
            let value = self.static_settings.get(&key).cloned().unwrap_or_default();
            return Err(ConfigError { key, value, reason });
        }
        if let Some(servers) = bootstrap_servers {
            self.check_bootstrap_servers(&servers)?;
        }
        if let Err((key, reason)) = crate::delegation_tokens::TokenSettings::from_settings(&self.static_settings) {
            let value = self.static_settings.get(&key).cloned().unwrap_or_default();
            return Err(ConfigError { key, value, reason });
        }
        if let Some(dir) = metadata_log_dir {
            if std::path::Path::new(&dir) != self.data_dir {
                return Err(ConfigError {
                    key: "metadata.log.dir".into(),
                    value: dir,
                    reason: format!(
                        "the metadata log is kept in the data directory ({}); a separate directory is not supported",
                        self.data_dir.display()
                    ),
                });
            }
        }
        for key in extra.keys() {
            tracing::warn!(key, "unknown config key ignored: not a Kafka 4.1 broker config");
        }
        self.unknown_keys.extend(extra.into_keys());
        Ok(())
    }

    /// `controller.quorum.bootstrap.servers` (Kafka's dynamic quorum): with
    /// `controller.quorum.voters` the voters decide. Alone, naming only this
    /// node it starts a quorum of one (like `kafka-storage format
    /// --standalone`); naming others, this node joins their quorum as an
    /// observer, which needs a controller listener for the leader to reach.
    fn check_bootstrap_servers(&mut self, servers: &str) -> Result<(), ConfigError> {
        let err = |reason: String| ConfigError {
            key: "controller.quorum.bootstrap.servers".into(),
            value: servers.to_string(),
            reason,
        };
        if !self.quorum_voters.is_empty() {
            return Ok(());
        }
        let entries: Vec<String> =
            servers.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect();
        if entries.iter().any(|e| {
            e.rsplit_once(':')
                .and_then(|(h, p)| (!h.is_empty()).then_some(p))
                .and_then(|p| p.parse::<u16>().ok())
                .is_none()
        }) {
            return Err(err("expected HOST:PORT,...".into()));
        }
        self.quorum_bootstrap_servers = entries;
        if self.joins_quorum() && self.controller_listen.is_none() {
            return Err(err(
                "joining the quorum of other controllers needs a controller listener (controller.listener.names)"
                    .into(),
            ));
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
    fn properties_continue_lines_as_java_does() {
        let text = "a=1\\\n   2\\\n 3\nb=x\\\\\n# c=4\\\nd=5\\";
        assert_eq!(
            parse_properties(text),
            [("a", "123"), ("b", "x\\\\"), ("d", "5")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
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

    fn apply(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut c = BrokerConfig::default();
        let owned: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c.apply(&owned).map(|()| c)
    }

    fn refused(settings: &[(&str, &str)]) -> String {
        match apply(settings) {
            Ok(_) => panic!("{settings:?} should be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_kafka_41_broker_key_at_its_default_is_known() {
        // Kafka refuses inter.broker.listener.name and
        // security.inter.broker.protocol together: the latter is checked alone.
        let all: Vec<(&str, &str)> = crate::kafka_broker_defaults::KAFKA_41_BROKER_KEYS
            .iter()
            .copied()
            .filter(|(k, _)| *k != "security.inter.broker.protocol")
            .collect();
        let c = apply(&all).unwrap();
        assert!(c.unknown_keys.is_empty(), "unknown: {:?}", c.unknown_keys);
        assert_eq!(c.listen, "0.0.0.0:9092".parse().unwrap(), "an empty host binds every interface");
        assert_eq!((c.node_id, c.data_dir.to_str().unwrap()), (1, "/tmp/kraft-combined-logs"));
        assert!(c.delete_topic_enable && c.log_cleaner_enable);
        assert_eq!(c.fetch_max_bytes, 57_671_680);
        assert!(apply(&[("security.inter.broker.protocol", "PLAINTEXT")]).unwrap().unknown_keys.is_empty());
    }

    #[test]
    fn kafka_41_default_server_properties_loads_as_a_single_node() {
        let c = apply(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("advertised.listeners", "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093"),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            ),
            ("num.network.threads", "3"),
            ("num.io.threads", "8"),
            ("socket.send.buffer.bytes", "102400"),
            ("socket.receive.buffer.bytes", "102400"),
            ("socket.request.max.bytes", "104857600"),
            ("log.dirs", "/tmp/kraft-combined-logs"),
            ("num.partitions", "1"),
            ("num.recovery.threads.per.data.dir", "1"),
            ("offsets.topic.replication.factor", "1"),
            ("share.coordinator.state.topic.replication.factor", "1"),
            ("share.coordinator.state.topic.min.isr", "1"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.min.isr", "1"),
            ("log.retention.hours", "168"),
            ("log.segment.bytes", "1073741824"),
            ("log.retention.check.interval.ms", "300000"),
        ])
        .unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.listen, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(c.controller_listen, Some("0.0.0.0:9093".parse().unwrap()));
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("localhost", 9092));
        assert_eq!(c.voters(), vec![(1, String::new())], "a quorum of this node alone");
        assert_eq!((c.offsets_topic_replication_factor, c.transaction_state_min_isr), (1, 1));
    }

    #[test]
    fn security_that_does_not_exist_refuses_to_start() {
        assert!(refused(&[("listeners", "SSL://127.0.0.1:9093")]).contains("SSL"));
        assert!(refused(&[("listeners", "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094")]).contains("SASL_SSL"));
        let mapped = refused(&[
            ("listener.security.protocol.map", "CLIENT:SSL,CONTROLLER:PLAINTEXT"),
            ("listeners", "CLIENT://127.0.0.1:9092"),
        ]);
        assert!(mapped.contains("CLIENT uses SSL"), "{mapped}");
        assert!(refused(&[("listeners", "CLIENT://127.0.0.1:9092")]).contains("listener.security.protocol.map"));
        apply(&[("listener.security.protocol.map", "CLIENT:PLAINTEXT"), ("listeners", "CLIENT://127.0.0.1:9092")])
            .unwrap();
        assert!(refused(&[("security.inter.broker.protocol", "SSL")]).contains("PLAINTEXT only"));
        assert!(refused(&[("authorizer.class.name", "kafka.security.authorizer.AclAuthorizer")])
            .contains("StandardAuthorizer"));
        assert!(refused(&[("listener.security.protocol.map", "PLAINTEXT:TLS")]).contains("NAME:PROTOCOL"));
        // settings that only SSL/SASL listeners would use are accepted
        let c = apply(&[
            ("ssl.keystore.location", "/etc/ks.jks"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("super.users", "User:admin"),
        ])
        .unwrap();
        assert!(c.unknown_keys.is_empty());
    }

    #[test]
    fn behaviour_vltava_does_not_have_refuses_to_start() {
        for (key, value, why) in [
            ("remote.log.storage.system.enable", "true", "tiered"),
            ("broker.rack", "rack-1", "rack"),
            ("max.connections.per.ip", "50", "limits"),
            ("create.topic.policy.class.name", "com.example.Policy", "policies"),
            ("group.coordinator.rebalance.protocols", "consumer", "classic"),
            ("unclean.leader.election.enable", "true", "unclean"),
            ("process.roles", "broker", "broker-only"),
        ] {
            let e = refused(&[(key, value)]);
            assert!(e.contains(key) && e.contains(why), "{key}={value}: {e}");
        }
        let e = refused(&[("log.dirs", "/data/a"), ("metadata.log.dir", "/data/meta")]);
        assert!(e.contains("metadata.log.dir"), "{e}");
        apply(&[("log.dirs", "/data/a"), ("metadata.log.dir", "/data/a")]).unwrap();
        // several log directories (JBOD): the first holds the metadata log
        let c = apply(&[("log.dirs", "/data/a, /data/b,/data/c")]).unwrap();
        assert_eq!(c.log_dirs(), ["/data/a", "/data/b", "/data/c"].map(PathBuf::from));
        assert!(refused(&[("log.dirs", "/data/a,/data/a")]).contains("listed twice"));
        // several client listeners are served (listeners.rs tests them)
        let c = apply(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CLIENT2://127.0.0.1:9095"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CLIENT2:PLAINTEXT"),
        ])
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        let e = refused(&[("listeners", "PLAINTEXT://127.0.0.1:9092"), ("inter.broker.listener.name", "INTERNAL")]);
        assert!(e.contains("inter.broker.listener.name"), "{e}");
        let e =
            refused(&[("inter.broker.listener.name", "PLAINTEXT"), ("security.inter.broker.protocol", "PLAINTEXT")]);
        assert!(e.contains("not both"), "{e}");
        let e = refused(&[("node.id", "1"), ("broker.id", "2")]);
        assert!(e.contains("equal"), "{e}");
    }

    #[test]
    fn controller_quorum_bootstrap_servers_start_alone_or_join() {
        let own = [("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")];
        let with = |servers: &'static str| {
            let mut s = own.to_vec();
            s.push(("controller.quorum.bootstrap.servers", servers));
            s
        };
        // naming only this node: a quorum of one
        let alone = apply(&with("localhost:9093")).unwrap();
        assert!(!alone.joins_quorum());
        assert_eq!(alone.voters(), vec![(1, String::new())]);
        // naming others: this node joins them
        for servers in ["other:9193", "localhost:9093,other:9093"] {
            let c = apply(&with(servers)).unwrap();
            assert!(c.joins_quorum(), "{servers}");
            assert_eq!(c.quorum_bootstrap_servers.len(), servers.split(',').count());
        }
        assert!(refused(&with("other")).contains("HOST:PORT"));
        assert!(refused(&with(":9093")).contains("HOST:PORT"));
        let e =
            refused(&[("listeners", "PLAINTEXT://127.0.0.1:9092"), ("controller.quorum.bootstrap.servers", "h:9093")]);
        assert!(e.contains("controller listener"), "{e}");
        // with the voters listed, they decide
        let mut voters = with("h1:9093,h2:9093");
        voters.push(("controller.quorum.voters", "1@127.0.0.1:9093,2@h2:9093"));
        assert!(!apply(&voters).unwrap().joins_quorum());
    }

    #[test]
    fn implemented_keys_take_effect() {
        let c = apply(&[
            ("delete.topic.enable", "false"),
            ("log.cleaner.enable", "FALSE"),
            ("offsets.topic.segment.bytes", "1048576"),
            ("transaction.state.log.segment.bytes", "2097152"),
            ("transaction.state.log.min.isr", "1"),
            ("offset.metadata.max.bytes", "100"),
            ("fetch.max.bytes", "2048"),
            ("replica.fetch.min.bytes", "10"),
            ("socket.listen.backlog.size", "128"),
            ("broker.id", "-1"),
        ])
        .unwrap();
        assert!(!c.delete_topic_enable && !c.log_cleaner_enable);
        assert_eq!((c.offsets_topic_segment_bytes, c.transaction_state_segment_bytes), (1_048_576, 2_097_152));
        assert_eq!((c.transaction_state_min_isr, c.offset_metadata_max_bytes), (1, 100));
        assert_eq!((c.fetch_max_bytes, c.replica_fetch_min_bytes, c.socket_listen_backlog), (2048, 10, 128));
        assert_eq!(c.node_id, 1, "broker.id=-1 is Kafka's 'not set'");
        assert!(refused(&[("delete.topic.enable", "no")]).contains("true or false"));
        assert!(refused(&[("fetch.max.bytes", "100")]).contains("1024"));
    }

    #[test]
    fn unknown_keys_are_kept_out_and_listed() {
        let c =
            apply(&[("zookeeper.connect", "localhost:2181"), ("no.such.key", "1"), ("num.io.threads", "8")]).unwrap();
        assert_eq!(c.unknown_keys, vec!["no.such.key".to_string(), "zookeeper.connect".to_string()]);
    }
}
