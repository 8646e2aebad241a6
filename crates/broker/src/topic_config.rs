//! Topic configs with Kafka's names, types, defaults, broker-level synonyms
//! and documentation. A topic's effective value comes from, in order: its
//! own dynamic config (metadata log), this broker's dynamic config for a
//! synonym, the cluster-wide dynamic default (both in the metadata log),
//! the broker's static config (`server.properties` / `--set`), the default:
//! Kafka's order.

use std::collections::BTreeMap;

use vltava_storage::LogConfig;

/// Kafka's `ConfigEntry.ConfigType` codes (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// A broker key whose type vltava does not record.
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Kafka's `ConfigSource` codes.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// Broker keys for the same setting, most specific first, with the
    /// factor that turns their unit into this config's unit.
    pub synonyms: &'static [(&'static str, i64)],
    pub doc: &'static str,
    /// Extra check on top of the type; `None` accepts any value of the type.
    pub valid: Option<fn(&str) -> bool>,
}

const MAX_LONG: &str = "9223372036854775807";

/// The items of a LIST config as Kafka's ConfigDef parses them: an empty
/// (or blank) value is the empty list, otherwise items split at commas and
/// trimmed (an item may then be empty: "a,,b").
pub fn list_items(v: &str) -> Vec<&str> {
    let v = v.trim();
    if v.is_empty() {
        Vec::new()
    } else {
        v.split(',').map(str::trim).collect()
    }
}

/// Kafka 4.1: `ValidList.in("compact", "delete")`. The empty list is valid
/// and means neither: segments are kept for ever and never compacted.
fn cleanup_policy(v: &str) -> bool {
    list_items(v).iter().all(|p| matches!(*p, "delete" | "compact"))
}
/// Kafka's ThrottledReplicaListValidator: `*`, or `partition:broker` items
/// (empty items allowed), or the empty list.
fn throttled_replicas(v: &str) -> bool {
    let items = list_items(v);
    items.concat() == "*"
        || items.iter().all(|i| {
            i.is_empty()
                || i.split_once(':').is_some_and(|(p, b)| {
                    !p.is_empty()
                        && !b.is_empty()
                        && p.bytes().all(|c| c.is_ascii_digit())
                        && b.bytes().all(|c| c.is_ascii_digit())
                })
        })
}
fn compression(v: &str) -> bool {
    matches!(v, "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd")
}
fn timestamp_type(v: &str) -> bool {
    matches!(v, "CreateTime" | "LogAppendTime")
}
/// A Kafka release ("0.10.2", "2.8", "3.0-IV1"): digits and dots, then an
/// optional "-IV<n>".
fn message_format_version(v: &str) -> bool {
    let release =
        v.split_once("-IV")
            .map_or(v, |(r, iv)| if iv.bytes().all(|c| c.is_ascii_digit()) && !iv.is_empty() { r } else { "" });
    !release.is_empty() && release.split('.').all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}
fn ratio(v: &str) -> bool {
    v.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r))
}
fn segment_bytes(v: &str) -> bool {
    v.parse::<i64>().is_ok_and(|n| (14..=i32::MAX as i64).contains(&n))
}
fn at_least_minus_one(v: &str) -> bool {
    v.parse::<i64>().is_ok_and(|n| n >= -1)
}
fn non_negative(v: &str) -> bool {
    v.parse::<i64>().is_ok_and(|n| n >= 0)
}
fn positive(v: &str) -> bool {
    v.parse::<i64>().is_ok_and(|n| n >= 1)
}

/// The topic portal's configs (`vltava.portal.*`, shown in the console's
/// catalog): free text of bounded length, the docs link an http(s) URL.
pub const PORTAL_DESCRIPTION: &str = "vltava.portal.description";
pub const PORTAL_OWNER: &str = "vltava.portal.owner";
pub const PORTAL_TAGS: &str = "vltava.portal.tags";
pub const PORTAL_DOCS_URL: &str = "vltava.portal.docs.url";

fn portal_description(v: &str) -> bool {
    v.chars().count() <= 4096
}
fn portal_owner(v: &str) -> bool {
    v.chars().count() <= 256 && !v.chars().any(char::is_control)
}
fn portal_tags(v: &str) -> bool {
    let items = list_items(v);
    items.len() <= 32 && items.iter().all(|t| t.chars().count() <= 64 && !t.chars().any(char::is_control))
}
fn portal_docs_url(v: &str) -> bool {
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    v.is_empty()
        || (v.len() <= 2048
            && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            && !v.chars().any(|c| c.is_whitespace() || c.is_control()))
}

pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef { name: "cleanup.policy", kind: ConfigType::List, default: "delete", synonyms: &[("log.cleanup.policy", 1)], doc: "\"delete\" discards old segments by time or size; \"compact\" keeps the latest value per key; both may be given; an empty list keeps everything (no retention, no compaction).", valid: Some(cleanup_policy) },
    ConfigDef { name: "compression.type", kind: ConfigType::String, default: "producer", synonyms: &[("compression.type", 1)], doc: "Codec stored batches end up with: \"producer\" keeps the producer's, a codec name recompresses to it.", valid: Some(compression) },
    ConfigDef { name: "confluent.key.schema.validation", kind: ConfigType::Boolean, default: "false", synonyms: &[], doc: "Confluent Server's: refuse (INVALID_RECORD) batches whose non-null keys do not carry the schema registry's wire header (magic byte 0, schema id) with an id registered under the subject confluent.key.subject.name.strategy names.", valid: None },
    ConfigDef { name: "confluent.key.subject.name.strategy", kind: ConfigType::String, default: "io.confluent.kafka.serializers.subject.TopicNameStrategy", synonyms: &[], doc: "Subject a key's schema must be registered under: TopicNameStrategy (<topic>-key), RecordNameStrategy (the record name), TopicRecordNameStrategy (<topic>-<record name>); short or Confluent class names.", valid: Some(crate::schema_validation::is_strategy) },
    ConfigDef { name: "confluent.value.schema.validation", kind: ConfigType::Boolean, default: "false", synonyms: &[], doc: "Confluent Server's: refuse (INVALID_RECORD) batches whose non-null values do not carry the schema registry's wire header (magic byte 0, schema id) with an id registered under the subject confluent.value.subject.name.strategy names.", valid: None },
    ConfigDef { name: "confluent.value.subject.name.strategy", kind: ConfigType::String, default: "io.confluent.kafka.serializers.subject.TopicNameStrategy", synonyms: &[], doc: "Subject a value's schema must be registered under: TopicNameStrategy (<topic>-value), RecordNameStrategy (the record name), TopicRecordNameStrategy (<topic>-<record name>); short or Confluent class names.", valid: Some(crate::schema_validation::is_strategy) },
    ConfigDef { name: "delete.retention.ms", kind: ConfigType::Long, default: "86400000", synonyms: &[("log.cleaner.delete.retention.ms", 1)], doc: "How long tombstones are kept in compacted topics.", valid: Some(non_negative) },
    ConfigDef { name: "file.delete.delay.ms", kind: ConfigType::Long, default: "60000", synonyms: &[("log.segment.delete.delay.ms", 1)], doc: "Delay before a deleted segment's files are removed.", valid: Some(non_negative) },
    ConfigDef { name: "follower.replication.throttled.replicas", kind: ConfigType::List, default: "", synonyms: &[], doc: "Replicas (partition:broker, or *) whose follower replication is throttled; accepted and shown, replication is not throttled.", valid: Some(throttled_replicas) },
    ConfigDef { name: "flush.messages", kind: ConfigType::Long, default: MAX_LONG, synonyms: &[("log.flush.interval.messages", 1)], doc: "Accepted for compatibility; durability follows log.flush.on.acks.all.", valid: Some(positive) },
    ConfigDef { name: "flush.ms", kind: ConfigType::Long, default: MAX_LONG, synonyms: &[("log.flush.interval.ms", 1)], doc: "Accepted for compatibility; durability follows log.flush.on.acks.all.", valid: Some(non_negative) },
    ConfigDef { name: "index.interval.bytes", kind: ConfigType::Int, default: "4096", synonyms: &[("log.index.interval.bytes", 1)], doc: "Bytes of log between entries of the offset index.", valid: Some(non_negative) },
    ConfigDef { name: "leader.replication.throttled.replicas", kind: ConfigType::List, default: "", synonyms: &[], doc: "Replicas (partition:broker, or *) whose leader-side replication is throttled; accepted and shown, replication is not throttled.", valid: Some(throttled_replicas) },
    ConfigDef { name: "max.compaction.lag.ms", kind: ConfigType::Long, default: MAX_LONG, synonyms: &[("log.cleaner.max.compaction.lag.ms", 1)], doc: "Longest a record may stay uncompacted.", valid: Some(positive) },
    ConfigDef { name: "max.message.bytes", kind: ConfigType::Int, default: "1048588", synonyms: &[("message.max.bytes", 1)], doc: "Largest record batch accepted.", valid: Some(non_negative) },
    ConfigDef { name: "message.format.version", kind: ConfigType::String, default: "3.0-IV1", synonyms: &[("log.message.format.version", 1)], doc: "Accepted and ignored, as Kafka 3.x does: records are always stored in format v2.", valid: Some(message_format_version) },
    ConfigDef { name: "message.timestamp.after.max.ms", kind: ConfigType::Long, default: "3600000", synonyms: &[("log.message.timestamp.after.max.ms", 1)], doc: "How far in the future a CreateTime timestamp may be.", valid: Some(non_negative) },
    ConfigDef { name: "message.timestamp.before.max.ms", kind: ConfigType::Long, default: MAX_LONG, synonyms: &[("log.message.timestamp.before.max.ms", 1)], doc: "How far in the past a CreateTime timestamp may be.", valid: Some(non_negative) },
    ConfigDef { name: "message.timestamp.type", kind: ConfigType::String, default: "CreateTime", synonyms: &[("log.message.timestamp.type", 1)], doc: "CreateTime keeps the producer's timestamps, LogAppendTime stamps the broker's clock.", valid: Some(timestamp_type) },
    ConfigDef { name: "min.cleanable.dirty.ratio", kind: ConfigType::Double, default: "0.5", synonyms: &[("log.cleaner.min.cleanable.ratio", 1)], doc: "Share of uncompacted bytes that triggers compaction.", valid: Some(ratio) },
    ConfigDef { name: "min.compaction.lag.ms", kind: ConfigType::Long, default: "0", synonyms: &[("log.cleaner.min.compaction.lag.ms", 1)], doc: "Shortest time a record stays uncompacted.", valid: Some(non_negative) },
    ConfigDef { name: "min.insync.replicas", kind: ConfigType::Int, default: "1", synonyms: &[("min.insync.replicas", 1)], doc: "Replicas that must acknowledge an acks=all write.", valid: Some(positive) },
    ConfigDef { name: "preallocate", kind: ConfigType::Boolean, default: "false", synonyms: &[("log.preallocate", 1)], doc: "Accepted for compatibility; segments are not preallocated.", valid: None },
    ConfigDef { name: "retention.bytes", kind: ConfigType::Long, default: "-1", synonyms: &[("log.retention.bytes", 1)], doc: "Bytes a partition keeps before old segments are deleted; -1 for no limit.", valid: Some(at_least_minus_one) },
    ConfigDef { name: "retention.ms", kind: ConfigType::Long, default: "604800000", synonyms: &[("log.retention.ms", 1), ("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000)], doc: "How long segments are kept; -1 for ever.", valid: Some(at_least_minus_one) },
    ConfigDef { name: "segment.bytes", kind: ConfigType::Int, default: "1073741824", synonyms: &[("log.segment.bytes", 1)], doc: "Size at which a segment rolls.", valid: Some(segment_bytes) },
    ConfigDef { name: "segment.index.bytes", kind: ConfigType::Int, default: "10485760", synonyms: &[("log.index.size.max.bytes", 1)], doc: "Largest offset index of a segment.", valid: Some(positive) },
    ConfigDef { name: "segment.jitter.ms", kind: ConfigType::Long, default: "0", synonyms: &[("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)], doc: "Accepted for compatibility.", valid: Some(non_negative) },
    ConfigDef { name: "segment.ms", kind: ConfigType::Long, default: "604800000", synonyms: &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)], doc: "Age at which a segment rolls.", valid: Some(positive) },
    ConfigDef { name: "unclean.leader.election.enable", kind: ConfigType::Boolean, default: "false", synonyms: &[("unclean.leader.election.enable", 1)], doc: "Whether a replica outside the ISR may become leader.", valid: None },
    ConfigDef { name: PORTAL_DESCRIPTION, kind: ConfigType::String, default: "", synonyms: &[], doc: "vltava's topic portal: what the topic carries, for the console's catalog (at most 4096 characters).", valid: Some(portal_description) },
    ConfigDef { name: PORTAL_DOCS_URL, kind: ConfigType::String, default: "", synonyms: &[], doc: "vltava's topic portal: an http(s) link to the topic's documentation (at most 2048 characters).", valid: Some(portal_docs_url) },
    ConfigDef { name: PORTAL_OWNER, kind: ConfigType::String, default: "", synonyms: &[], doc: "vltava's topic portal: the team or person owning the topic (at most 256 characters).", valid: Some(portal_owner) },
    ConfigDef { name: PORTAL_TAGS, kind: ConfigType::List, default: "", synonyms: &[], doc: "vltava's topic portal: comma-separated tags (at most 32 of at most 64 characters).", valid: Some(portal_tags) },
    ConfigDef { name: "vltava.schema.validation.decode", kind: ConfigType::Boolean, default: "false", synonyms: &[], doc: "vltava's: with confluent.*.schema.validation on, also decode each validated key/value against its schema (costs a full decode per record).", valid: None },
];

pub fn def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The topic config whose broker-level synonym `key` is.
pub fn def_of_synonym(key: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.synonyms.iter().any(|(s, _)| *s == key))
}

/// Whether `key` is a broker-level synonym of some topic config.
pub fn is_broker_synonym(key: &str) -> bool {
    def_of_synonym(key).is_some()
}

fn type_ok(kind: ConfigType, v: &str) -> bool {
    match kind {
        ConfigType::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        ConfigType::Int => v.trim().parse::<i32>().is_ok(),
        ConfigType::Long => v.trim().parse::<i64>().is_ok(),
        ConfigType::Double => v.trim().parse::<f64>().is_ok(),
        ConfigType::String | ConfigType::List | ConfigType::Unknown => true,
    }
}

/// Checks a broker-level synonym's value against its topic config's type.
pub fn validate_broker_synonym(key: &str, value: &str) -> Result<(), String> {
    let def = def_of_synonym(key).ok_or("not a topic config synonym")?;
    let factor = def.synonyms.iter().find(|(s, _)| *s == key).map(|s| s.1).unwrap_or(1);
    let scaled = if factor == 1 {
        value.to_string()
    } else {
        value.trim().parse::<i64>().map(|n| (n * factor).to_string()).unwrap_or_default()
    };
    validate_one(def.name, &scaled).map_err(|_| format!("not a valid value for {key} (see {})", def.name))
}

/// Checks one key and value; the message names the key, as Kafka's does.
pub fn validate_one(key: &str, value: &str) -> Result<(), String> {
    let def = def(key).ok_or_else(|| format!("Unknown topic config name: {key}"))?;
    if !type_ok(def.kind, value) || def.valid.is_some_and(|f| !f(value.trim())) {
        let hint = if key.ends_with(".subject.name.strategy") {
            format!(": must be {}", crate::schema_validation::STRATEGY_VALUES)
        } else if key == PORTAL_DOCS_URL {
            ": must be an http:// or https:// URL of at most 2048 characters".to_string()
        } else if key.starts_with("vltava.portal.") {
            format!(": {}", def.doc.trim_start_matches("vltava's topic portal: "))
        } else {
            String::new()
        };
        return Err(format!("Invalid value {value} for configuration {key}{hint}"));
    }
    Ok(())
}

/// Returns a message naming the first bad key or value.
pub fn validate(configs: &[(String, String)]) -> Result<(), String> {
    configs.iter().try_for_each(|(k, v)| validate_one(k, v))
}

/// A config's effective value, where it came from, and the chain of
/// synonyms (DescribeConfigs `synonyms`), most specific first.
pub struct Resolved {
    pub value: String,
    pub source: i8,
    pub synonyms: Vec<(String, String, i8)>,
}

/// The broker-level configs a topic config falls back on: this broker's
/// dynamic configs, the cluster-wide dynamic default, the static ones.
#[derive(Clone, Copy)]
pub struct BrokerLevels<'a> {
    pub dynamic: &'a BTreeMap<String, String>,
    pub dynamic_default: &'a BTreeMap<String, String>,
    pub statics: &'a BTreeMap<String, String>,
}

impl<'a> BrokerLevels<'a> {
    /// Only static configs (no dynamic ones set).
    pub fn statics(statics: &'a BTreeMap<String, String>) -> Self {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        Self { dynamic: &NONE, dynamic_default: &NONE, statics }
    }

    /// The levels, most specific first, with their `ConfigSource`.
    pub fn in_order(&self) -> [(&'a BTreeMap<String, String>, i8); 3] {
        let [broker, cluster] = self.dynamic_levels();
        [broker, cluster, (self.statics, SOURCE_STATIC_BROKER)]
    }

    /// The two dynamic levels (the metadata log's), most specific first.
    pub fn dynamic_levels(&self) -> [(&'a BTreeMap<String, String>, i8); 2] {
        [(self.dynamic, SOURCE_DYNAMIC_BROKER), (self.dynamic_default, SOURCE_DYNAMIC_DEFAULT_BROKER)]
    }
}

pub fn resolve(def: &ConfigDef, topic: &BTreeMap<String, String>, broker: BrokerLevels<'_>) -> Resolved {
    let mut synonyms = Vec::new();
    if let Some(v) = topic.get(def.name) {
        synonyms.push((def.name.to_string(), v.clone(), SOURCE_TOPIC));
    }
    // as Kafka lists them: every synonym at one level, then the next level
    for (level, source) in broker.in_order() {
        for (name, factor) in def.synonyms {
            if let Some(v) = level.get(*name) {
                let scaled = if *factor == 1 {
                    v.clone()
                } else {
                    v.trim().parse::<i64>().map(|n| (n * factor).to_string()).unwrap_or(v.clone())
                };
                synonyms.push((name.to_string(), scaled, source));
            }
        }
    }
    synonyms.push((
        def.synonyms.first().map(|s| s.0).unwrap_or(def.name).to_string(),
        def.default.to_string(),
        SOURCE_DEFAULT,
    ));
    let (value, source) = synonyms.first().map(|(_, v, s)| (v.clone(), *s)).expect("default is always there");
    Resolved { value, source, synonyms }
}

/// The effective settings of one topic, parsed.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub delete: bool,
    pub compact: bool,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `None` for "producer": keep what the producer sent.
    pub compression: Option<&'static str>,
    /// `min.insync.replicas`
    pub min_insync_replicas: i32,
    pub log: LogConfig,
    /// `confluent.*.schema.validation` and their strategies.
    pub schema_validation: crate::schema_validation::SchemaValidation,
}

pub fn settings(topic: &BTreeMap<String, String>, broker: BrokerLevels<'_>) -> TopicSettings {
    let get = |name: &str| resolve(def(name).expect("known config"), topic, broker).value;
    let long = |name: &str| get(name).trim().parse::<i64>().unwrap_or(i64::MAX);
    let policy = get("cleanup.policy");
    let policy = list_items(&policy);
    let compression = match get("compression.type").as_str() {
        "uncompressed" => Some("uncompressed"),
        "gzip" => Some("gzip"),
        "snappy" => Some("snappy"),
        "lz4" => Some("lz4"),
        "zstd" => Some("zstd"),
        _ => None,
    };
    TopicSettings {
        retention_ms: long("retention.ms"),
        retention_bytes: long("retention.bytes"),
        delete: policy.contains(&"delete"),
        compact: policy.contains(&"compact"),
        delete_retention_ms: long("delete.retention.ms"),
        min_compaction_lag_ms: long("min.compaction.lag.ms"),
        max_compaction_lag_ms: long("max.compaction.lag.ms"),
        min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").trim().parse().unwrap_or(0.5),
        max_message_bytes: long("max.message.bytes").clamp(0, i32::MAX as i64) as usize,
        log_append_time: get("message.timestamp.type") == "LogAppendTime",
        timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
        timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
        compression,
        min_insync_replicas: long("min.insync.replicas").clamp(1, i32::MAX as i64) as i32,
        log: LogConfig {
            segment_bytes: long("segment.bytes").max(14) as u64,
            segment_ms: long("segment.ms").max(1) as u64,
            index_interval_bytes: long("index.interval.bytes").max(0) as u64,
            segment_index_bytes: long("segment.index.bytes").max(8) as u64,
        },
        schema_validation: crate::schema_validation::SchemaValidation::from_configs(get),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn precedence_topic_then_broker_then_default() {
        let def = def("retention.ms").unwrap();
        let r = resolve(def, &map(&[]), BrokerLevels::statics(&map(&[])));
        assert_eq!((r.value.as_str(), r.source), ("604800000", SOURCE_DEFAULT));
        let r = resolve(def, &map(&[]), BrokerLevels::statics(&map(&[("log.retention.hours", "2")])));
        assert_eq!((r.value.as_str(), r.source), ("7200000", SOURCE_STATIC_BROKER));
        let r =
            resolve(def, &map(&[("retention.ms", "5")]), BrokerLevels::statics(&map(&[("log.retention.hours", "2")])));
        assert_eq!((r.value.as_str(), r.source), ("5", SOURCE_TOPIC));
        assert_eq!(r.synonyms.len(), 3);
    }

    #[test]
    fn dynamic_levels_come_before_static_in_kafkas_order() {
        let def = def("retention.ms").unwrap();
        let statics = map(&[("log.retention.hours", "2")]);
        let default = map(&[("log.retention.minutes", "3"), ("log.retention.ms", "4")]);
        let mine = map(&[("log.retention.minutes", "1")]);
        let levels = BrokerLevels { dynamic: &mine, dynamic_default: &default, statics: &statics };
        let r = resolve(def, &map(&[]), levels);
        assert_eq!((r.value.as_str(), r.source), ("60000", SOURCE_DYNAMIC_BROKER));
        let named: Vec<(&str, i8)> = r.synonyms.iter().map(|(n, _, s)| (n.as_str(), *s)).collect();
        assert_eq!(
            named,
            [
                ("log.retention.minutes", SOURCE_DYNAMIC_BROKER),
                ("log.retention.ms", SOURCE_DYNAMIC_DEFAULT_BROKER),
                ("log.retention.minutes", SOURCE_DYNAMIC_DEFAULT_BROKER),
                ("log.retention.hours", SOURCE_STATIC_BROKER),
                ("log.retention.ms", SOURCE_DEFAULT),
            ]
        );
        let none = map(&[]);
        let r = resolve(def, &map(&[]), BrokerLevels { dynamic: &none, ..levels });
        assert_eq!((r.value.as_str(), r.source), ("4", SOURCE_DYNAMIC_DEFAULT_BROKER));
        assert_eq!(settings(&map(&[]), levels).retention_ms, 60_000);
    }

    #[test]
    fn portal_configs_are_bounded_and_the_docs_link_is_http() {
        assert!(validate_one(PORTAL_DOCS_URL, "https://wiki.example/orders").is_ok());
        assert!(validate_one(PORTAL_DOCS_URL, "").is_ok());
        let e = validate_one(PORTAL_DOCS_URL, "javascript:alert(1)").unwrap_err();
        assert!(e.contains("http"), "{e}");
        assert!(validate_one(PORTAL_DOCS_URL, "https://").is_err());
        assert!(validate_one(PORTAL_TAGS, "payments, orders").is_ok());
        assert!(validate_one(PORTAL_TAGS, &"x,".repeat(40)).is_err());
        assert!(validate_one(PORTAL_OWNER, &"o".repeat(300)).is_err());
        assert!(validate_one(PORTAL_DESCRIPTION, "Orders as placed, one per order id.").is_ok());
    }

    #[test]
    fn validation_names_the_key() {
        assert!(validate_one("retention.ms", "-1").is_ok());
        assert!(validate_one("retention.ms", "abc").unwrap_err().contains("retention.ms"));
        assert!(validate_one("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_one("cleanup.policy", "shred").is_err());
        assert!(validate_one("no.such.config", "1").unwrap_err().contains("no.such.config"));
        assert!(validate_one("segment.bytes", "10").is_err());
    }

    #[test]
    fn list_configs_accept_the_empty_list_as_kafka_does() {
        for ok in ["", " ", "delete", "compact", "compact,delete", "delete, compact", "delete,delete"] {
            assert!(validate_one("cleanup.policy", ok).is_ok(), "{ok:?}");
        }
        for bad in ["delete,", ",", "Delete", "shred", "delete;compact"] {
            assert!(validate_one("cleanup.policy", bad).is_err(), "{bad:?}");
        }
        for key in ["leader.replication.throttled.replicas", "follower.replication.throttled.replicas"] {
            for ok in ["", "*", " * ", "0:1", "0:1,1:2", "0:1, 1:2", "0:1,,1:2"] {
                assert!(validate_one(key, ok).is_ok(), "{key}={ok:?}");
            }
            for bad in ["x", "0", "0:", ":1", "*,0:1", "0:1:2", "-1:2"] {
                assert!(validate_one(key, bad).is_err(), "{key}={bad:?}");
            }
            assert_eq!(def(key).unwrap().kind, ConfigType::List);
        }
        assert!(validate_broker_synonym("log.cleanup.policy", "").is_ok());
    }

    #[test]
    fn an_empty_cleanup_policy_neither_deletes_nor_compacts() {
        let s = settings(&map(&[("cleanup.policy", "")]), BrokerLevels::statics(&map(&[])));
        assert!(!s.delete && !s.compact);
        let s = settings(&map(&[]), BrokerLevels::statics(&map(&[("log.cleanup.policy", "")])));
        assert!(!s.delete && !s.compact, "the broker default may be empty too");
        let s = settings(&map(&[("cleanup.policy", " compact , delete ")]), BrokerLevels::statics(&map(&[])));
        assert!(s.delete && s.compact);
    }

    #[test]
    fn settings_parse() {
        let s = settings(
            &map(&[("cleanup.policy", "compact"), ("segment.bytes", "1024")]),
            BrokerLevels::statics(&map(&[])),
        );
        assert!(s.compact && !s.delete);
        assert_eq!(s.log.segment_bytes, 1024);
        assert_eq!(s.retention_bytes, -1);
    }
}
