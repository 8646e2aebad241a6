//! DescribeConfigs: a topic's configs with their effective values and
//! sources (topic, dynamic broker or cluster default, static broker config,
//! default), synonyms and documentation when asked; or a broker's settings
//! (this broker's id), or the cluster-wide dynamic defaults (""); or a
//! client-metrics subscription's keys (KIP-714).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use vltava_protocol::{ResponseError, StrBytes};

use crate::dynamic_broker_config;
use crate::topic_config::{
    self, BrokerLevels, ConfigType, SOURCE_DEFAULT, SOURCE_DYNAMIC_DEFAULT_BROKER, SOURCE_STATIC_BROKER, TOPIC_CONFIGS,
};
use crate::Broker;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Kafka's `ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG`.
const SOURCE_BROKER_LOGGER: i8 = 6;
/// Kafka's `ConfigSource.CLIENT_METRICS_CONFIG`.
const SOURCE_CLIENT_METRICS: i8 = 7;
/// Kafka's `ConfigSource.GROUP_CONFIG`.
const SOURCE_GROUP: i8 = 8;

struct Entry {
    name: String,
    value: String,
    source: i8,
    kind: ConfigType,
    doc: &'static str,
    synonyms: Vec<(String, String, i8)>,
    /// Not changeable while running (a broker key vltava reads at start).
    read_only: bool,
}

fn topic_entries(topic: &BTreeMap<String, String>, levels: BrokerLevels<'_>) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let r = topic_config::resolve(def, topic, levels);
            Entry {
                name: def.name.to_string(),
                value: r.value,
                source: r.source,
                kind: def.kind,
                doc: def.doc,
                synonyms: r.synonyms,
                read_only: false,
            }
        })
        .collect()
}

/// The type and documentation of a dynamic broker key.
fn broker_key_info(key: &str) -> (ConfigType, &'static str) {
    match topic_config::def_of_synonym(key) {
        Some(def) => (def.kind, def.doc),
        None => (ConfigType::String, "Accepted and shown; no effect in vltava."),
    }
}

/// The cluster-wide dynamic defaults, as Kafka describes the "" broker
/// resource: only what is set.
fn cluster_default_entries(defaults: &BTreeMap<String, String>) -> Vec<Entry> {
    defaults
        .iter()
        .map(|(key, value)| {
            let (kind, doc) = broker_key_info(key);
            Entry {
                name: key.clone(),
                value: value.clone(),
                source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                kind,
                doc,
                synonyms: vec![(key.clone(), value.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER)],
                read_only: false,
            }
        })
        .collect()
}

/// Whether a broker key is secret (Kafka's PASSWORD type): described
/// without its value.
fn is_sensitive(key: &str) -> bool {
    key.ends_with(".password") || key == "sasl.jaas.config" || key == "ssl.keystore.key"
}

/// Everything a broker runs with, as Kafka describes its own id: every
/// topic config's broker synonym (with the dynamic levels), every other
/// Kafka 4.1 broker key and vltava's own keys, and any other key set
/// dynamically. Keys vltava reads at start only are read-only.
fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let c = &broker.config;
    let statics = &c.static_settings;
    let image = broker.controller.image();
    let levels = broker.replicas.broker_levels(&image);
    let mut entries: Vec<Entry> = TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let r = topic_config::resolve(def, &BTreeMap::new(), levels);
            let name = def.synonyms.first().map(|s| s.0).unwrap_or(def.name).to_string();
            let synonyms = r.synonyms.clone();
            Entry { name, value: r.value, source: r.source, kind: def.kind, doc: def.doc, synonyms, read_only: false }
        })
        .collect();
    let mut named: std::collections::HashSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    let effective = c.effective_values();
    let min_free = broker.replicas.log_dirs()[0].min_free_bytes().to_string();
    let vltava_keys = [
        ("log.flush.on.acks.all", "true"),
        ("log.dir.min.free.bytes", min_free.as_str()),
        // where other nodes forward schema registry writes (schema_registry::forward)
        ("schema.registry.listeners", ""),
    ];
    let keys = crate::kafka_broker_defaults::KAFKA_41_BROKER_KEYS.iter().chain(vltava_keys.iter());
    for (key, kafka_default) in keys {
        if !named.insert(key.to_string()) {
            continue;
        }
        // the other synonyms of a topic config (log.retention.hours, ...)
        // change dynamically too
        let dynamic = dynamic_broker_config::WITHOUT_EFFECT.contains(key) || topic_config::is_broker_synonym(key);
        let given = |k: &str| statics.contains_key(k) || (*key == "listeners" && statics.contains_key("listen"));
        let static_source = if given(key) { SOURCE_STATIC_BROKER } else { SOURCE_DEFAULT };
        let (value, source) = levels
            .dynamic_levels()
            .into_iter()
            .filter(|_| dynamic)
            .find_map(|(level, source)| level.get(*key).map(|v| (v.clone(), source)))
            // what the broker runs with, in Kafka's form (listeners as
            // PLAINTEXT://host:port even when given as host:port)
            .or_else(|| effective.iter().find(|(k, _)| k == key).map(|(_, v)| (v.clone(), static_source)))
            .or_else(|| statics.get(*key).map(|v| (v.clone(), SOURCE_STATIC_BROKER)))
            .unwrap_or_else(|| (kafka_default.to_string(), SOURCE_DEFAULT));
        entries.push(Entry {
            name: key.to_string(),
            synonyms: vec![(key.to_string(), value.clone(), source)],
            value,
            source,
            kind: ConfigType::Unknown,
            doc: "",
            read_only: !dynamic,
        });
    }
    // other keys set dynamically (replication throttles)
    for (level, source) in levels.dynamic_levels() {
        for (key, value) in level {
            if !named.insert(key.clone()) {
                continue;
            }
            let (kind, doc) = broker_key_info(key);
            let synonyms = vec![(key.clone(), value.clone(), source)];
            entries.push(Entry {
                name: key.clone(),
                value: value.clone(),
                source,
                kind,
                doc,
                synonyms,
                read_only: false,
            });
        }
    }
    entries
}

/// ACLs of the config APIs: `op` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on
/// the topic, on the group, or on the cluster for broker, logger and
/// client-metrics resources; the error when the session may not.
pub fn config_denied(
    broker: &Broker,
    session: &super::Session,
    resource_type: i8,
    name: &str,
    op: vltava_metadata::AclOperation,
) -> Option<(ResponseError, String)> {
    use crate::group_config::RESOURCE_GROUP;
    use vltava_metadata::ResourceType;
    let (allowed, error) = match resource_type {
        RESOURCE_TOPIC => {
            (broker.authorize(session, op, ResourceType::Topic, name), ResponseError::TopicAuthorizationFailed)
        }
        RESOURCE_GROUP => {
            (broker.authorize(session, op, ResourceType::Group, name), ResponseError::GroupAuthorizationFailed)
        }
        _ => (broker.authorize_cluster(session, op), ResponseError::ClusterAuthorizationFailed),
    };
    (!allowed).then(|| (error, error.to_string()))
}

/// A subscription's keys: those set, and Kafka's defaults of the others
/// (nothing for a subscription that does not exist).
fn client_metrics_entries(image: &vltava_metadata::MetadataImage, name: &str) -> Vec<Entry> {
    use crate::client_metrics::{self, RESOURCE_CLIENT_METRICS};
    let Some(set) = image.resource_config(RESOURCE_CLIENT_METRICS, name) else {
        return Vec::new();
    };
    client_metrics::defaults()
        .into_iter()
        .map(|(key, default)| {
            let (value, source) = match set.get(key) {
                Some(v) => (v.clone(), SOURCE_CLIENT_METRICS),
                None => (default, SOURCE_DEFAULT),
            };
            Entry {
                name: key.to_string(),
                synonyms: vec![(key.to_string(), value.clone(), source)],
                value,
                source,
                kind: if key == client_metrics::INTERVAL_MS { ConfigType::Int } else { ConfigType::List },
                doc: match key {
                    client_metrics::METRICS => "Metric name prefixes the matching clients push (* for all).",
                    client_metrics::INTERVAL_MS => "How often the matching clients push their metrics.",
                    _ => "selector=regex pairs a client must all match (client_id, client_instance_id, client_software_name, client_software_version, client_source_address, client_source_port).",
                },
                read_only: false,
            }
        })
        .collect()
}

/// A group's keys: its own values, the broker's for the others.
fn group_entries(broker: &Broker, name: &str) -> Vec<Entry> {
    use crate::group_config::{self, RESOURCE_GROUP};
    let image = broker.controller.image();
    group_config::entries(&broker.config.group, image.resource_config(RESOURCE_GROUP, name))
        .into_iter()
        .map(|(key, value, set)| {
            let source = if set { SOURCE_GROUP } else { SOURCE_DEFAULT };
            Entry {
                name: key.to_string(),
                synonyms: vec![(key.to_string(), value.clone(), source)],
                value,
                source,
                kind: match key {
                    "share.auto.offset.reset" | "share.isolation.level" | "errors.deadletterqueue.topic.name" => {
                        ConfigType::String
                    }
                    _ => ConfigType::Int,
                },
                doc: match key {
                    "consumer.session.timeout.ms" => "The timeout to detect client failures when using the consumer group protocol.",
                    "consumer.heartbeat.interval.ms" => "The heartbeat interval given to the members of a consumer group.",
                    "share.session.timeout.ms" => "The timeout to detect client failures when using the share group protocol.",
                    "share.heartbeat.interval.ms" => "The heartbeat interval given to the members of a share group.",
                    "share.record.lock.duration.ms" => "How long a share consumer holds a record it was given before it becomes available again.",
                    "share.delivery.count.limit" => "Deliveries of a record after which it is archived (and written to the dead-letter topic, if any).",
                    "share.auto.offset.reset" => "Where a share group starts on a partition it has no state for: latest, earliest or by_duration:<ISO-8601 duration>.",
                    "share.isolation.level" => "read_committed: share consumers get only committed transactional records.",
                    "share.redelivery.backoff.ms" => "vltava: how long a released record, or one whose lock expired, waits before it is delivered again.",
                    _ => "The topic where records rejected or archived at the delivery limit are written, with headers naming where they came from.",
                },
                read_only: false,
            }
        })
        .collect()
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &super::Session,
    request: DescribeConfigsRequest,
    _version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|res| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let op = vltava_metadata::AclOperation::DescribeConfigs;
            if let Some((e, message)) = config_denied(broker, session, res.resource_type, &res.resource_name, op) {
                return result.with_error_code(e.code()).with_error_message(Some(StrBytes::from_string(message)));
            }
            let entries = match res.resource_type {
                RESOURCE_TOPIC => match broker.controller.image().topic(res.resource_name.as_str()) {
                    Some(t) => {
                        let image = broker.controller.image();
                        topic_entries(&t.configs, broker.replicas.broker_levels(&image))
                    }
                    None => {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "Topic '{}' does not exist.",
                                res.resource_name.as_str()
                            ))));
                    }
                },
                RESOURCE_BROKER => {
                    let name = res.resource_name.as_str();
                    if name.is_empty() {
                        cluster_default_entries(broker.controller.image().broker_configs(""))
                    } else if name != broker.config.node_id.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(StrBytes::from_string(format!("Unexpected broker id {name}"))));
                    } else {
                        broker_entries(broker)
                    }
                }
                RESOURCE_BROKER_LOGGER => {
                    if res.resource_name.as_str() != broker.config.node_id.to_string() {
                        return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                            StrBytes::from_string(format!("Unexpected broker id {}", res.resource_name.as_str())),
                        ));
                    }
                    crate::log_levels::levels()
                        .into_iter()
                        .map(|(logger, level)| Entry {
                            synonyms: vec![(logger.clone(), level.clone(), SOURCE_BROKER_LOGGER)],
                            name: logger,
                            value: level,
                            source: SOURCE_BROKER_LOGGER,
                            kind: ConfigType::String,
                            doc: "",
                            read_only: false,
                        })
                        .collect()
                }
                crate::client_metrics::RESOURCE_CLIENT_METRICS => {
                    client_metrics_entries(&broker.controller.image(), res.resource_name.as_str())
                }
                crate::group_config::RESOURCE_GROUP => group_entries(broker, res.resource_name.as_str()),
                other => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(format!("Unsupported resource type {other}"))));
                }
            };
            // null or empty: every key (Kafka's ConfigHelper reads both so)
            let wanted: Option<Vec<String>> =
                res.configuration_keys.filter(|ks| !ks.is_empty()).map(|ks| ks.iter().map(|k| k.to_string()).collect());
            let configs = entries
                .into_iter()
                .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                .map(|e| {
                    let sensitive = is_sensitive(&e.name);
                    let synonyms = if request.include_synonyms {
                        e.synonyms
                            .into_iter()
                            .map(|(n, v, s)| {
                                DescribeConfigsSynonym::default()
                                    .with_name(StrBytes::from_string(n))
                                    .with_value((!sensitive).then(|| StrBytes::from_string(v)))
                                    .with_source(s)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_is_sensitive(sensitive)
                        .with_value((!sensitive).then(|| StrBytes::from_string(e.value)))
                        .with_name(StrBytes::from_string(e.name))
                        .with_config_source(e.source)
                        .with_read_only(e.read_only)
                        .with_config_type(e.kind as i8)
                        .with_synonyms(synonyms)
                        .with_documentation(
                            (request.include_documentation && !e.doc.is_empty())
                                .then(|| StrBytes::from_static_str(e.doc)),
                        )
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
