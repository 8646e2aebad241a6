//! DescribeConfigs: a topic's configs with their effective values and
//! sources (topic, static broker config, default), synonyms and
//! documentation when asked; or the broker's own settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use vltava_protocol::{ResponseError, StrBytes};

use crate::topic_config::{self, ConfigType, SOURCE_DEFAULT, SOURCE_STATIC_BROKER, TOPIC_CONFIGS};
use crate::Broker;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

struct Entry {
    name: String,
    value: String,
    source: i8,
    kind: ConfigType,
    doc: &'static str,
    synonyms: Vec<(String, String, i8)>,
}

fn topic_entries(topic: &BTreeMap<String, String>, broker_static: &BTreeMap<String, String>) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let r = topic_config::resolve(def, topic, broker_static);
            Entry {
                name: def.name.to_string(),
                value: r.value,
                source: r.source,
                kind: def.kind,
                doc: def.doc,
                synonyms: r.synonyms,
            }
        })
        .collect()
}

/// Broker-level settings: every topic config's broker synonym plus the
/// broker's own keys.
fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let c = &broker.config;
    let statics = &c.static_settings;
    let mut entries: Vec<Entry> = TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let r = topic_config::resolve(def, &BTreeMap::new(), statics);
            let name = def.synonyms.first().map(|s| s.0).unwrap_or(def.name).to_string();
            let synonyms = r.synonyms.clone();
            Entry { name, value: r.value, source: r.source, kind: def.kind, doc: def.doc, synonyms }
        })
        .collect();
    let own: [(&str, String, ConfigType, &'static str); 8] = [
        ("node.id", c.node_id.to_string(), ConfigType::Int, "This broker's id."),
        ("num.partitions", c.num_partitions.to_string(), ConfigType::Int, "Partitions of auto-created topics."),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            ConfigType::Boolean,
            "Create unknown topics on Metadata requests.",
        ),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
            ConfigType::Int,
            "Replication factor of auto-created topics.",
        ),
        (
            "log.retention.check.interval.ms",
            c.retention_check_interval_ms.to_string(),
            ConfigType::Long,
            "How often retention runs.",
        ),
        (
            "log.cleaner.backoff.ms",
            c.cleaner_backoff_ms.to_string(),
            ConfigType::Long,
            "How often the log cleaner looks for work.",
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            ConfigType::Int,
            "Largest request accepted.",
        ),
        (
            "offsets.topic.num.partitions",
            c.offsets_topic_num_partitions.to_string(),
            ConfigType::Int,
            "Partitions of __consumer_offsets.",
        ),
    ];
    for (name, value, kind, doc) in own {
        let source = if statics.contains_key(name) { SOURCE_STATIC_BROKER } else { SOURCE_DEFAULT };
        entries.push(Entry {
            name: name.to_string(),
            synonyms: vec![(name.to_string(), value.clone(), source)],
            value,
            source,
            kind,
            doc,
        });
    }
    entries
}

pub fn handle(broker: &Arc<Broker>, request: DescribeConfigsRequest, _version: i16) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|res| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let entries = match res.resource_type {
                RESOURCE_TOPIC => match broker.controller.image().topic(res.resource_name.as_str()) {
                    Some(t) => topic_entries(&t.configs, &broker.config.static_settings),
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
                    if !name.is_empty() && name != broker.config.node_id.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(StrBytes::from_string(format!("Unexpected broker id {name}"))));
                    }
                    broker_entries(broker)
                }
                other => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(format!("Unsupported resource type {other}"))));
                }
            };
            let wanted: Option<Vec<String>> =
                res.configuration_keys.map(|ks| ks.iter().map(|k| k.to_string()).collect());
            let configs = entries
                .into_iter()
                .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                .map(|e| {
                    let synonyms = if request.include_synonyms {
                        e.synonyms
                            .into_iter()
                            .map(|(n, v, s)| {
                                DescribeConfigsSynonym::default()
                                    .with_name(StrBytes::from_string(n))
                                    .with_value(Some(StrBytes::from_string(v)))
                                    .with_source(s)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_string(e.name))
                        .with_value(Some(StrBytes::from_string(e.value)))
                        .with_config_source(e.source)
                        .with_config_type(e.kind as i8)
                        .with_synonyms(synonyms)
                        .with_documentation(request.include_documentation.then(|| StrBytes::from_static_str(e.doc)))
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
