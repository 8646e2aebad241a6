//! AlterConfigs (replace a resource's dynamic configs) and
//! IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT per key), for
//! topics, for BROKER resources (one broker, or "" for the cluster-wide
//! default: see `dynamic_broker_config` for which keys change) and for
//! CLIENT_METRICS subscriptions (see `client_metrics`). Invalid
//! names or values get INVALID_CONFIG naming the key.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use vltava_metadata::TopicImage;
use vltava_protocol::{ResponseError, StrBytes};

use super::describe_configs::{config_denied, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC};
use super::Session;
use crate::client_metrics::{self, RESOURCE_CLIENT_METRICS};
use crate::dynamic_broker_config;
use crate::group_config::{self, RESOURCE_GROUP};
use crate::topic_config::{self, ConfigType};
use crate::Broker;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Outcome = Result<(), (ResponseError, String)>;
type Changes = Vec<(String, Option<String>)>;

fn invalid(msg: String) -> (ResponseError, String) {
    (ResponseError::InvalidConfig, msg)
}

/// The resource whose dynamic configs change.
enum Target {
    Topic(Arc<TopicImage>),
    /// A broker id, or "" for the cluster-wide default.
    Broker(String),
    /// A client-metrics subscription (KIP-714).
    ClientMetrics(String),
    /// A group's own settings (`group_config`).
    Group(String),
}

impl Target {
    fn find(broker: &Broker, resource_type: i8, name: &str) -> Result<Self, (ResponseError, String)> {
        match resource_type {
            RESOURCE_TOPIC => {
                let image = broker.controller.image();
                let topic = image
                    .topic(name)
                    .cloned()
                    .ok_or((ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' does not exist.")))?;
                Ok(Target::Topic(topic))
            }
            RESOURCE_BROKER if dynamic_broker_config::valid_resource(name) => Ok(Target::Broker(name.to_string())),
            RESOURCE_BROKER => Err((ResponseError::InvalidRequest, format!("Invalid broker name {name}"))),
            RESOURCE_CLIENT_METRICS if client_metrics::valid_name(name) => Ok(Target::ClientMetrics(name.to_string())),
            RESOURCE_CLIENT_METRICS => Err((ResponseError::InvalidRequest, "Subscription name can't be empty".into())),
            RESOURCE_GROUP if !name.is_empty() => Ok(Target::Group(name.to_string())),
            RESOURCE_GROUP => Err((ResponseError::InvalidRequest, "Group name can't be empty".into())),
            other => Err((ResponseError::InvalidRequest, format!("Unsupported resource type {other}"))),
        }
    }

    /// The resource's dynamic configs now.
    fn current(&self, broker: &Broker) -> BTreeMap<String, String> {
        match self {
            Target::Topic(t) => t.configs.clone(),
            Target::Broker(name) => broker.controller.image().broker_configs(name).clone(),
            Target::ClientMetrics(name) => {
                broker.controller.image().resource_config(RESOURCE_CLIENT_METRICS, name).cloned().unwrap_or_default()
            }
            Target::Group(name) => {
                broker.controller.image().resource_config(RESOURCE_GROUP, name).cloned().unwrap_or_default()
            }
        }
    }

    /// Whether `key` is a LIST config here (APPEND and SUBTRACT need one);
    /// an error for a key the resource does not have.
    fn is_list(&self, key: &str) -> Result<bool, (ResponseError, String)> {
        let def = match self {
            Target::Topic(_) => topic_config::def(key),
            Target::Broker(_) => topic_config::def_of_synonym(key),
            Target::ClientMetrics(_) => {
                client_metrics::check(key, None).map_err(invalid)?;
                return Ok(key != client_metrics::INTERVAL_MS);
            }
            Target::Group(_) => {
                if !group_config::GROUP_KEYS.contains(&key) {
                    return Err(invalid(format!("Unknown group config name: {key}")));
                }
                return Ok(false);
            }
        };
        match (def, self) {
            (Some(d), _) => Ok(d.kind == ConfigType::List),
            (None, Target::Topic(_)) => Err(invalid(format!("Unknown topic config name: {key}"))),
            (None, Target::Broker(_)) => Ok(key == "metric.reporters"),
            (None, Target::ClientMetrics(_) | Target::Group(_)) => unreachable!("answered above"),
        }
    }

    /// The value APPEND and SUBTRACT start from: a topic's effective value,
    /// a broker resource's own dynamic value (empty when unset).
    fn list_value(&self, broker: &Broker, key: &str, current: &BTreeMap<String, String>) -> String {
        match self {
            Target::Topic(_) => {
                let def = topic_config::def(key).expect("checked by is_list");
                let image = broker.controller.image();
                topic_config::resolve(def, current, broker.replicas.broker_levels(&image)).value
            }
            Target::Broker(_) | Target::ClientMetrics(_) | Target::Group(_) => {
                current.get(key).cloned().unwrap_or_default()
            }
        }
    }

    fn check(&self, broker: &Broker, key: &str, value: Option<&str>) -> Outcome {
        match (self, value) {
            (Target::Topic(_), Some(v)) => topic_config::validate_one(key, v).map_err(invalid),
            (Target::Topic(_), None) if topic_config::def(key).is_none() => {
                Err(invalid(format!("Unknown topic config name: {key}")))
            }
            (Target::Topic(_), None) => Ok(()),
            (Target::Broker(_), value) => dynamic_broker_config::check(key, value),
            (Target::ClientMetrics(_), value) => client_metrics::check(key, value).map_err(invalid),
            (Target::Group(_), value) => group_config::check(&broker.config.group, key, value).map_err(invalid),
        }
    }
}

/// Computes the changes against the resource's current configs, validates
/// them, and applies them unless `validate_only`.
fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    changes: impl FnOnce(&Target, &BTreeMap<String, String>) -> Result<Changes, (ResponseError, String)>,
) -> Outcome {
    let target = Target::find(broker, resource_type, name)?;
    let changes = changes(&target, &target.current(broker))?;
    for (key, value) in &changes {
        target.check(broker, key, value.as_deref())?;
    }
    if validate_only {
        return Ok(());
    }
    // every node takes the new settings when it applies the change
    match &target {
        Target::Topic(topic) => {
            broker.controller.alter_topic_configs(topic.topic_id, &changes).map_err(|e| (e.error, e.message))?;
            tracing::info!(topic = name, changes = ?changes, "altered topic configs");
        }
        Target::Broker(resource) => {
            broker.controller.alter_broker_configs(resource, &changes).map_err(|e| (e.error, e.message))?;
            let scope = if resource.is_empty() { "cluster default" } else { resource.as_str() };
            tracing::info!(broker = scope, changes = ?changes, "altered dynamic broker configs");
        }
        Target::ClientMetrics(subscription) => {
            broker
                .controller
                .alter_resource_configs(RESOURCE_CLIENT_METRICS, subscription, &changes)
                .map_err(|e| (e.error, e.message))?;
            tracing::info!(subscription, changes = ?changes, "altered client metrics subscription");
        }
        Target::Group(group) => {
            broker
                .controller
                .alter_resource_configs(RESOURCE_GROUP, group, &changes)
                .map_err(|e| (e.error, e.message))?;
            tracing::info!(group, changes = ?changes, "altered group configs");
        }
    }
    Ok(())
}

/// BROKER_LOGGER: this broker's log levels, changed in this process (SET a
/// level, DELETE back to the root level), never through the metadata log.
fn alter_loggers(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Outcome {
    if name != broker.config.node_id.to_string() {
        return Err((ResponseError::InvalidRequest, format!("Unexpected broker id {name}")));
    }
    let mut changes = Vec::new();
    for c in configs {
        let logger = c.name.to_string();
        let level = match c.config_operation {
            OP_SET => Some(c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()),
            OP_DELETE => None,
            op => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Operation {op} is not allowed for the broker logger {logger}"),
                ))
            }
        };
        crate::log_levels::check(&logger, level.as_deref()).map_err(invalid)?;
        changes.push((logger, level));
    }
    if validate_only {
        return Ok(());
    }
    crate::log_levels::apply(&changes).map_err(|e| (ResponseError::InvalidRequest, e))
}

fn to_parts(outcome: Outcome) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((e, msg)) => (e.code(), Some(StrBytes::from_string(msg))),
    }
}

const ALTER_CONFIGS: vltava_metadata::AclOperation = vltava_metadata::AclOperation::AlterConfigs;

pub fn handle_alter(
    broker: &Arc<Broker>,
    session: &Session,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let denied = config_denied(broker, session, res.resource_type, &res.resource_name, ALTER_CONFIGS);
            let outcome = if let Some(denied) = denied {
                Err(denied)
            } else {
                apply(broker, res.resource_type, res.resource_name.as_str(), request.validate_only, |_, current| {
                    // The request's set replaces every dynamic config of the resource.
                    let mut changes: Vec<(String, Option<String>)> = res
                        .configs
                        .iter()
                        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                        .collect();
                    for key in current.keys() {
                        if !changes.iter().any(|(k, _)| k == key) {
                            changes.push((key.clone(), None));
                        }
                    }
                    Ok(changes)
                })
            };
            let (code, msg) = to_parts(outcome);
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub fn handle_incremental(
    broker: &Arc<Broker>,
    session: &Session,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            if let Some(denied) = config_denied(broker, session, res.resource_type, &res.resource_name, ALTER_CONFIGS) {
                let (code, msg) = to_parts(Err(denied));
                return AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(msg)
                    .with_resource_type(res.resource_type)
                    .with_resource_name(res.resource_name);
            }
            if res.resource_type == RESOURCE_BROKER_LOGGER {
                let outcome = alter_loggers(broker, res.resource_name.as_str(), request.validate_only, &res.configs);
                let (code, msg) = to_parts(outcome);
                return AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(msg)
                    .with_resource_type(res.resource_type)
                    .with_resource_name(res.resource_name);
            }
            let outcome = apply(
                broker,
                res.resource_type,
                res.resource_name.as_str(),
                request.validate_only,
                |target, current| {
                    let mut changes = Vec::new();
                    for c in &res.configs {
                        let key = c.name.to_string();
                        let value = c.value.as_ref().map(|v| v.to_string());
                        let change = match c.config_operation {
                            OP_SET => {
                                Some(value.ok_or_else(|| invalid(format!("Null value for configuration {key}")))?)
                            }
                            OP_DELETE => None,
                            OP_APPEND | OP_SUBTRACT => {
                                if !target.is_list(&key)? {
                                    return Err(invalid(format!(
                                        "Config value append is not allowed for config key: {key}"
                                    )));
                                }
                                let effective = target.list_value(broker, &key, current);
                                let mut items: Vec<String> = effective
                                    .split(',')
                                    .map(|s| s.trim().to_string())
                                    .filter(|s| !s.is_empty())
                                    .collect();
                                let given: Vec<String> = value
                                    .unwrap_or_default()
                                    .split(',')
                                    .map(|s| s.trim().to_string())
                                    .filter(|s| !s.is_empty())
                                    .collect();
                                if c.config_operation == OP_APPEND {
                                    for g in given {
                                        if !items.contains(&g) {
                                            items.push(g);
                                        }
                                    }
                                } else {
                                    items.retain(|i| !given.contains(i));
                                }
                                Some(items.join(","))
                            }
                            op => {
                                return Err((ResponseError::InvalidRequest, format!("Unknown config operation {op}")))
                            }
                        };
                        changes.push((key, change));
                    }
                    Ok(changes)
                },
            );
            let (code, msg) = to_parts(outcome);
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
