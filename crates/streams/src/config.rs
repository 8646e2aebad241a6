//! Configuration with Kafka Streams' names. Built from key/value pairs
//! (`StreamsConfig::from_pairs`) or the builder methods; unknown keys with a
//! client prefix (`consumer.`, `main.consumer.`, `restore.consumer.`,
//! `global.consumer.`, `producer.`, `admin.`) go to those clients, and
//! unprefixed client keys (`security.protocol`, `sasl.*`, `ssl.*`,
//! `client.id`, ...) go to every client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, StreamsError};
use crate::task::DeserializationHandler;

/// `processing.guarantee`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    #[default]
    AtLeastOnce,
    /// One transactional producer per thread; input offsets committed in the
    /// transaction; consumers read committed.
    ExactlyOnceV2,
}

impl std::str::FromStr for ProcessingGuarantee {
    type Err = StreamsError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly_once_v2" => Ok(ProcessingGuarantee::ExactlyOnceV2),
            "exactly_once" | "exactly_once_beta" => Err(StreamsError::config(
                "processing.guarantee",
                format!("{s} was removed in Kafka Streams 4.0: use exactly_once_v2"),
            )),
            other => Err(StreamsError::config(
                "processing.guarantee",
                format!("{other:?} is not one of at_least_once, exactly_once_v2"),
            )),
        }
    }
}

/// Which group protocol the stream threads' consumers use (`group.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// KIP-848 (`group.protocol=consumer`) with the broker's `range` assignor
    /// (co-partitioned: partition N of every source topic goes to one
    /// member), reconciled incrementally: members keep their tasks through a
    /// rebalance unless the assignment moves them.
    #[default]
    Consumer,
    /// The classic protocol with the client-side `range` assignor (eager):
    /// for clusters without KIP-848.
    Classic,
}

#[derive(Clone, Debug)]
pub struct StreamsConfig {
    pub application_id: String,
    pub bootstrap_servers: String,
    pub processing_guarantee: ProcessingGuarantee,
    /// `commit.interval.ms`: 30000, or 100 under exactly_once_v2.
    pub commit_interval: Duration,
    pub num_stream_threads: usize,
    /// `state.dir`: stores live in `<state.dir>/<application.id>/<task>/`.
    pub state_dir: PathBuf,
    /// `replication.factor` of internal topics (-1: the broker's default).
    pub replication_factor: i16,
    pub num_standby_replicas: usize,
    /// `application.server`: `host:port` other instances reach this one at
    /// for interactive queries.
    pub application_server: Option<String>,
    pub deserialization_handler: DeserializationHandler,
    pub group_protocol: GroupProtocol,
    /// `poll.ms`: how long a stream thread's poll blocks waiting for records.
    pub poll_timeout: Duration,
    /// Every other key, passed to the clients (see the module docs).
    pub client_configs: BTreeMap<String, String>,
    /// Every key as given.
    pairs: BTreeMap<String, String>,
}

pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 30_000;
pub const DEFAULT_EOS_COMMIT_INTERVAL_MS: u64 = 100;

impl StreamsConfig {
    pub fn new(application_id: &str, bootstrap_servers: &str) -> Self {
        let pairs = BTreeMap::from([
            ("application.id".to_string(), application_id.to_string()),
            ("bootstrap.servers".to_string(), bootstrap_servers.to_string()),
        ]);
        StreamsConfig {
            pairs,
            application_id: application_id.to_string(),
            bootstrap_servers: bootstrap_servers.to_string(),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
            num_stream_threads: 1,
            state_dir: std::env::temp_dir().join("vltava-streams"),
            replication_factor: -1,
            num_standby_replicas: 0,
            application_server: None,
            deserialization_handler: DeserializationHandler::LogAndFail,
            group_protocol: GroupProtocol::Consumer,
            poll_timeout: Duration::from_millis(100),
            client_configs: BTreeMap::new(),
        }
    }

    /// From Kafka Streams' keys; `application.id` and `bootstrap.servers` are required.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let given: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut map = given.clone();
        let app = map.remove("application.id").ok_or_else(|| StreamsError::config("application.id", "required"))?;
        let servers =
            map.remove("bootstrap.servers").ok_or_else(|| StreamsError::config("bootstrap.servers", "required"))?;
        let mut c = StreamsConfig::new(&app, &servers);
        let mut commit_set = false;
        for (k, v) in std::mem::take(&mut map) {
            let num = |k: &str, v: &str| -> Result<u64> {
                v.parse::<u64>().map_err(|_| StreamsError::config(k, format!("{v:?} is not a number")))
            };
            match k.as_str() {
                "processing.guarantee" => c.processing_guarantee = v.parse()?,
                "commit.interval.ms" => {
                    c.commit_interval = Duration::from_millis(num(&k, &v)?);
                    commit_set = true;
                }
                "num.stream.threads" => {
                    c.num_stream_threads = num(&k, &v)? as usize;
                    if c.num_stream_threads == 0 {
                        return Err(StreamsError::config(&k, "must be at least 1"));
                    }
                }
                "state.dir" => c.state_dir = PathBuf::from(v),
                "replication.factor" => {
                    c.replication_factor =
                        v.parse().map_err(|_| StreamsError::config(&k, format!("{v:?} is not a number")))?
                }
                "num.standby.replicas" => c.num_standby_replicas = num(&k, &v)? as usize,
                "application.server" => {
                    if !v.is_empty() {
                        if v.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                            return Err(StreamsError::config(&k, format!("{v:?} is not host:port")));
                        }
                        c.application_server = Some(v)
                    }
                }
                "default.deserialization.exception.handler" | "deserialization.exception.handler" => {
                    c.deserialization_handler = match v.rsplit('.').next().unwrap_or("") {
                        "LogAndFailExceptionHandler" => DeserializationHandler::LogAndFail,
                        "LogAndContinueExceptionHandler" => DeserializationHandler::LogAndContinue,
                        _ => {
                            return Err(StreamsError::config(
                                &k,
                                format!("{v:?}: LogAndFailExceptionHandler or LogAndContinueExceptionHandler"),
                            ))
                        }
                    }
                }
                "group.protocol" => {
                    c.group_protocol = match v.to_ascii_lowercase().as_str() {
                        "consumer" => GroupProtocol::Consumer,
                        "classic" => GroupProtocol::Classic,
                        _ => return Err(StreamsError::config(&k, format!("{v:?} is not consumer or classic"))),
                    }
                }
                "poll.ms" => c.poll_timeout = Duration::from_millis(num(&k, &v)?),
                _ => {
                    c.client_configs.insert(k, v);
                }
            }
        }
        c.pairs = given;
        if !commit_set && c.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
            c.commit_interval = Duration::from_millis(DEFAULT_EOS_COMMIT_INTERVAL_MS);
        }
        Ok(c)
    }

    /// This config with `key` set to `value` (any key `from_pairs` takes).
    pub fn with(&self, key: &str, value: &str) -> Result<Self> {
        let mut pairs = self.pairs.clone();
        pairs.insert(key.to_string(), value.to_string());
        StreamsConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Client configs for one client kind: unprefixed client keys, then the
    /// keys with one of `prefixes` (later prefixes win).
    pub fn client_props(&self, prefixes: &[&str]) -> BTreeMap<String, String> {
        const ALL_PREFIXES: &[&str] =
            &["consumer.", "main.consumer.", "restore.consumer.", "global.consumer.", "producer.", "admin."];
        let mut out: BTreeMap<String, String> = self
            .client_configs
            .iter()
            .filter(|(k, _)| !ALL_PREFIXES.iter().any(|p| k.starts_with(p)) && !is_serde_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for p in prefixes {
            for (k, v) in &self.client_configs {
                if let Some(rest) = k.strip_prefix(p) {
                    out.insert(rest.to_string(), v.clone());
                }
            }
        }
        out.insert("bootstrap.servers".into(), self.bootstrap_servers.clone());
        out
    }
}

/// Keys the schema-registry serdes read (Confluent's names): not client configs
/// (librdkafka refuses properties it does not know).
pub fn is_serde_key(key: &str) -> bool {
    key.starts_with("schema.registry.")
        || key.starts_with("basic.auth.")
        || matches!(
            key,
            "auto.register.schemas"
                | "use.latest.version"
                | "key.subject.name.strategy"
                | "value.subject.name.strategy"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_streams_keys_parse() {
        let c = StreamsConfig::from_pairs([
            ("application.id", "wc"),
            ("bootstrap.servers", "127.0.0.1:9092"),
            ("processing.guarantee", "exactly_once_v2"),
            ("num.stream.threads", "2"),
            ("consumer.fetch.min.bytes", "10"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("schema.registry.url", "http://127.0.0.1:8081"),
        ])
        .unwrap();
        assert_eq!(c.processing_guarantee, ProcessingGuarantee::ExactlyOnceV2);
        assert_eq!(c.commit_interval, Duration::from_millis(100));
        assert_eq!(c.num_stream_threads, 2);
        let consumer = c.client_props(&["consumer.", "main.consumer."]);
        assert_eq!(consumer["fetch.min.bytes"], "10");
        assert_eq!(consumer["security.protocol"], "SASL_PLAINTEXT");
        assert!(!c.client_props(&["producer."]).contains_key("fetch.min.bytes"));
        assert!(!consumer.contains_key("schema.registry.url"), "serde keys are not client configs");
        assert_eq!(c.client_configs["schema.registry.url"], "http://127.0.0.1:8081");
        assert!(StreamsConfig::from_pairs([("application.id", "a")]).is_err());
        let e = StreamsConfig::from_pairs([
            ("application.id", "a"),
            ("bootstrap.servers", "b"),
            ("processing.guarantee", "exactly_once"),
        ]);
        assert!(e.unwrap_err().to_string().contains("exactly_once_v2"));
    }
}
