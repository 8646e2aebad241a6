//! Configurations: [`Props`] (string key/values, as Connect's REST API and
//! properties files give them), [`ConfigDef`] (the keys a connector,
//! converter or transform takes, validated into Connect's
//! `/connector-plugins/{plugin}/config/validate` answer) and the worker's
//! own [`WorkerConfig`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::error::{ConnectError, Result};

/// A configuration: keys to string values.
pub type Props = BTreeMap<String, String>;

/// Reads a Java-style properties file (`key=value` or `key: value`, `#`
/// and `!` comments, no line continuations needed by the keys we take).
pub fn read_properties(path: &Path) -> anyhow::Result<Props> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(parse_properties(&text))
}

/// Parses properties text (see [`read_properties`]).
pub fn parse_properties(text: &str) -> Props {
    let mut props = Props::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).unwrap_or(line.len());
        let (key, value) = line.split_at(split);
        let value = value.get(1..).unwrap_or("").trim();
        props.insert(key.trim().to_string(), value.to_string());
    }
    props
}

/// Connect's config types (`ConfigDef.Type`), as the validate answer names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// Connect's `ConfigDef.Importance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Importance {
    High,
    Medium,
    Low,
}

/// One configuration key.
#[derive(Clone, Debug)]
pub struct ConfigKey {
    pub name: &'static str,
    pub ty: ConfigType,
    /// `None`: required (validation says it is missing).
    pub default: Option<&'static str>,
    pub importance: Importance,
    pub doc: &'static str,
    pub group: &'static str,
    /// Allowed values (validation refuses others), for enumerations.
    pub allowed: &'static [&'static str],
}

impl ConfigKey {
    /// A required key.
    pub const fn required(name: &'static str, ty: ConfigType, doc: &'static str) -> ConfigKey {
        ConfigKey { name, ty, default: None, importance: Importance::High, doc, group: "", allowed: &[] }
    }
    /// An optional key with a default.
    pub const fn optional(name: &'static str, ty: ConfigType, default: &'static str, doc: &'static str) -> ConfigKey {
        ConfigKey { name, ty, default: Some(default), importance: Importance::Medium, doc, group: "", allowed: &[] }
    }
    pub const fn group(mut self, group: &'static str) -> ConfigKey {
        self.group = group;
        self
    }
    pub const fn one_of(mut self, allowed: &'static [&'static str]) -> ConfigKey {
        self.allowed = allowed;
        self
    }
}

/// The keys a plugin takes.
#[derive(Clone, Debug, Default)]
pub struct ConfigDef {
    pub keys: Vec<ConfigKey>,
}

/// The errors of one key, as validation found them.
#[derive(Clone, Debug, Default)]
pub struct ConfigErrors {
    /// Key -> messages; only keys with errors.
    pub errors: BTreeMap<String, Vec<String>>,
}

impl ConfigErrors {
    pub fn add(&mut self, key: &str, message: impl Into<String>) {
        self.errors.entry(key.to_string()).or_default().push(message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
    pub fn count(&self) -> usize {
        self.errors.values().map(Vec::len).sum()
    }
    pub fn merge(&mut self, other: ConfigErrors) {
        for (k, v) in other.errors {
            self.errors.entry(k).or_default().extend(v);
        }
    }
    /// One line naming every error, for a 400 answer or a FAILED trace.
    pub fn summary(&self) -> String {
        self.errors.iter().flat_map(|(k, v)| v.iter().map(move |m| format!("{k}: {m}"))).collect::<Vec<_>>().join("; ")
    }
}

impl ConfigDef {
    pub fn new(keys: Vec<ConfigKey>) -> ConfigDef {
        ConfigDef { keys }
    }

    pub fn extend(mut self, other: &ConfigDef) -> ConfigDef {
        for k in &other.keys {
            if !self.keys.iter().any(|m| m.name == k.name) {
                self.keys.push(k.clone());
            }
        }
        self
    }

    /// Checks presence, type and allowed values of every key, with
    /// Connect's messages.
    pub fn validate(&self, props: &Props) -> ConfigErrors {
        let mut errors = ConfigErrors::default();
        for key in &self.keys {
            let value = props.get(key.name).map(String::as_str).or(key.default);
            let Some(value) = value else {
                errors.add(
                    key.name,
                    format!("Missing required configuration \"{}\" which has no default value.", key.name),
                );
                continue;
            };
            let bad_type = match key.ty {
                ConfigType::Boolean => !matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false"),
                ConfigType::Int | ConfigType::Short => value.trim().parse::<i32>().is_err(),
                ConfigType::Long => value.trim().parse::<i64>().is_err(),
                ConfigType::Double => value.trim().parse::<f64>().is_err(),
                _ => false,
            };
            if bad_type {
                errors.add(
                    key.name,
                    format!(
                        "Invalid value {value} for configuration {}: Not a {}",
                        key.name,
                        key.ty.name().to_ascii_lowercase()
                    ),
                );
            } else if !key.allowed.is_empty() && !key.allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim())) {
                errors.add(
                    key.name,
                    format!(
                        "Invalid value {value} for configuration {}: String must be one of: {}",
                        key.name,
                        key.allowed.join(", ")
                    ),
                );
            }
        }
        errors
    }

    /// Connect's validate answer (`ConfigInfos`): `name`, `error_count`,
    /// `groups`, and per key its `definition` and `value` with `errors`.
    pub fn validate_answer(&self, plugin: &str, props: &Props, errors: &ConfigErrors) -> serde_json::Value {
        let mut groups: Vec<&str> = Vec::new();
        for key in &self.keys {
            if !key.group.is_empty() && !groups.contains(&key.group) {
                groups.push(key.group);
            }
        }
        let mut configs: Vec<serde_json::Value> = self
            .keys
            .iter()
            .enumerate()
            .map(|(order, key)| {
                let value = props.get(key.name).map(String::as_str).or(key.default);
                let shown = if key.ty == ConfigType::Password { value.map(|_| "[hidden]") } else { value };
                json!({
                    "definition": {
                        "name": key.name,
                        "type": key.ty.name(),
                        "required": key.default.is_none(),
                        "default_value": key.default,
                        "importance": match key.importance { Importance::High => "HIGH", Importance::Medium => "MEDIUM", Importance::Low => "LOW" },
                        "documentation": key.doc,
                        "group": if key.group.is_empty() { serde_json::Value::Null } else { key.group.into() },
                        "width": "NONE",
                        "display_name": key.name,
                        "dependents": [],
                        "order": order as i64 + 1,
                    },
                    "value": {
                        "name": key.name,
                        "value": shown,
                        "recommended_values": key.allowed,
                        "errors": errors.errors.get(key.name).cloned().unwrap_or_default(),
                        "visible": true,
                    }
                })
            })
            .collect();
        // errors on keys the definition does not name (a transform's, say)
        for (name, messages) in &errors.errors {
            if !self.keys.iter().any(|k| k.name == name) {
                configs.push(json!({
                    "definition": {"name": name, "type": "STRING", "required": false, "default_value": null,
                                   "importance": "MEDIUM", "documentation": "", "group": null, "width": "NONE",
                                   "display_name": name, "dependents": [], "order": -1},
                    "value": {"name": name, "value": props.get(name), "recommended_values": [], "errors": messages, "visible": true},
                }));
            }
        }
        json!({ "name": plugin, "error_count": errors.count(), "groups": groups, "configs": configs })
    }
}

/// Typed reads of props, with Connect's messages on bad values.
pub trait PropsExt {
    fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str;
    fn required(&self, key: &str) -> Result<&str>;
    fn int_or(&self, key: &str, default: i64) -> Result<i64>;
    fn bool_or(&self, key: &str, default: bool) -> Result<bool>;
    /// A comma-separated list, trimmed, empty items dropped.
    fn list(&self, key: &str) -> Vec<String>;
    /// The keys under `prefix` with the prefix removed.
    fn with_prefix(&self, prefix: &str) -> Props;
}

impl PropsExt for Props {
    fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).map_or(default, String::as_str)
    }
    fn required(&self, key: &str) -> Result<&str> {
        self.get(key).map(String::as_str).ok_or_else(|| {
            ConnectError::config(format!("Missing required configuration \"{key}\" which has no default value."))
        })
    }
    fn int_or(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ConnectError::config(format!("Invalid value {v} for configuration {key}: Not a number of type LONG"))
            }),
        }
    }
    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(ConnectError::config(format!(
                "Invalid value {v} for configuration {key}: Expected value to be either true or false"
            ))),
        }
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }
    fn with_prefix(&self, prefix: &str) -> Props {
        self.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone()))).collect()
    }
}

/// The worker's configuration (Kafka Connect's distributed-mode keys).
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Everything given, for client settings passed through.
    pub props: Props,
    pub bootstrap_servers: String,
    pub group_id: String,
    pub config_topic: String,
    pub offset_topic: String,
    pub status_topic: String,
    pub config_replication_factor: i16,
    pub offset_replication_factor: i16,
    pub status_replication_factor: i16,
    pub offset_partitions: i32,
    pub status_partitions: i32,
    /// Where the REST API listens (`listeners`, the first one).
    pub listen: std::net::SocketAddr,
    /// The URL other workers reach this one at (`rest.advertised.host.name`/`port`, or `listeners`).
    pub advertised_url: String,
    pub key_converter: String,
    pub value_converter: String,
    pub header_converter: String,
    pub offset_flush_interval_ms: u64,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    pub rebalance_timeout_ms: i32,
    /// KIP-618: `enabled` gives source tasks transactions.
    pub exactly_once_source: bool,
    pub task_shutdown_timeout_ms: u64,
}

/// The worker keys whose values are passed to every Kafka client the worker
/// makes (security settings and the like), as Connect passes them.
pub const CLIENT_PASSTHROUGH_PREFIXES: &[&str] =
    &["security.", "ssl.", "sasl.", "client.dns.lookup", "socket.", "reconnect."];

impl WorkerConfig {
    pub fn from_props(props: Props) -> Result<WorkerConfig> {
        let int = |key: &str, default: i64| props.int_or(key, default);
        let listeners = props.str_or("listeners", "http://127.0.0.1:8083").to_string();
        let first = listeners.split(',').next().unwrap_or("").trim();
        let hostport = first
            .strip_prefix("http://")
            .ok_or_else(|| ConnectError::config(format!("listeners: {first}: only http:// listeners are supported")))?;
        let hostport = if hostport.starts_with(':') { format!("0.0.0.0{hostport}") } else { hostport.to_string() };
        let listen = tokio_lookup(&hostport)?;
        let adv_host = props.get("rest.advertised.host.name").cloned().unwrap_or_else(|| {
            if listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                listen.ip().to_string()
            }
        });
        let adv_port = props.int_or("rest.advertised.port", listen.port().into())?;
        let sr = props.str_or("exactly.once.source.support", "disabled").to_ascii_lowercase();
        if !matches!(sr.as_str(), "disabled" | "enabled" | "preparing") {
            return Err(ConnectError::config(format!(
                "Invalid value {sr} for configuration exactly.once.source.support: String must be one of: enabled, preparing, disabled"
            )));
        }
        Ok(WorkerConfig {
            bootstrap_servers: props.str_or("bootstrap.servers", "localhost:9092").to_string(),
            group_id: props.required("group.id")?.to_string(),
            config_topic: props.required("config.storage.topic")?.to_string(),
            offset_topic: props.required("offset.storage.topic")?.to_string(),
            status_topic: props.required("status.storage.topic")?.to_string(),
            config_replication_factor: int("config.storage.replication.factor", -1)? as i16,
            offset_replication_factor: int("offset.storage.replication.factor", -1)? as i16,
            status_replication_factor: int("status.storage.replication.factor", -1)? as i16,
            offset_partitions: int("offset.storage.partitions", 25)? as i32,
            status_partitions: int("status.storage.partitions", 5)? as i32,
            listen,
            advertised_url: format!("http://{adv_host}:{adv_port}"),
            key_converter: props.str_or("key.converter", "org.apache.kafka.connect.json.JsonConverter").to_string(),
            value_converter: props.str_or("value.converter", "org.apache.kafka.connect.json.JsonConverter").to_string(),
            header_converter: props
                .str_or("header.converter", "org.apache.kafka.connect.storage.SimpleHeaderConverter")
                .to_string(),
            offset_flush_interval_ms: int("offset.flush.interval.ms", 60_000)?.max(1) as u64,
            session_timeout_ms: int("session.timeout.ms", 10_000)? as i32,
            heartbeat_interval_ms: int("heartbeat.interval.ms", 3_000)?.max(1) as u64,
            rebalance_timeout_ms: int("rebalance.timeout.ms", 60_000)? as i32,
            exactly_once_source: sr == "enabled",
            task_shutdown_timeout_ms: int("task.shutdown.graceful.timeout.ms", 5_000)?.max(0) as u64,
            props,
        })
    }

    /// The worker's pass-through client settings (security and the like),
    /// then `prefix`-ed ones (`producer.`, `consumer.`, `admin.`) over them.
    pub fn client_props(&self, prefix: &str) -> Props {
        let mut out: Props = self
            .props
            .iter()
            .filter(|(k, _)| CLIENT_PASSTHROUGH_PREFIXES.iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.extend(self.props.with_prefix(prefix));
        out.insert("bootstrap.servers".into(), self.bootstrap_servers.clone());
        out
    }

    /// This worker's id in statuses (`worker_id`): its advertised host:port.
    pub fn worker_id(&self) -> String {
        self.advertised_url.trim_start_matches("http://").to_string()
    }
}

fn tokio_lookup(hostport: &str) -> Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConnectError::config(format!("listeners: cannot resolve {hostport}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_files_parse_as_java_reads_them() {
        let p = parse_properties("# c\n! c\na=1\nb : two words \n c= x=y\nempty=\n");
        assert_eq!(p.get("a").unwrap(), "1");
        assert_eq!(p.get("b").unwrap(), "two words");
        assert_eq!(p.get("c").unwrap(), "x=y");
        assert_eq!(p.get("empty").unwrap(), "");
    }

    #[test]
    fn validation_names_missing_and_mistyped_keys() {
        let def = ConfigDef::new(vec![
            ConfigKey::required("file", ConfigType::String, "path"),
            ConfigKey::optional("batch.size", ConfigType::Int, "2000", "batch"),
            ConfigKey::optional("mode", ConfigType::String, "insert", "mode").one_of(&["insert", "upsert"]),
        ]);
        let mut props = Props::new();
        props.insert("batch.size".into(), "many".into());
        props.insert("mode".into(), "merge".into());
        let errors = def.validate(&props);
        assert_eq!(errors.count(), 3, "{errors:?}");
        let answer = def.validate_answer("FileStreamSource", &props, &errors);
        assert_eq!(answer["error_count"], 3);
        assert_eq!(
            answer["configs"][0]["value"]["errors"][0],
            "Missing required configuration \"file\" which has no default value."
        );
    }
}
