//! AlterConfigs (replace a topic's dynamic configs) and
//! IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT per key).
//! Invalid names or values get INVALID_CONFIG naming the key; broker
//! configs are static (server.properties) and refused here.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use vltava_protocol::{ResponseError, StrBytes};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::topic_config::{self, ConfigType};
use crate::Broker;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Outcome = Result<(), (ResponseError, String)>;

fn invalid(msg: String) -> (ResponseError, String) {
    (ResponseError::InvalidConfig, msg)
}

/// Computes the changes against the topic's current configs, validates
/// them, and applies them unless `validate_only`.
fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    changes: impl FnOnce(&BTreeMap<String, String>) -> Result<Vec<(String, Option<String>)>, (ResponseError, String)>,
) -> Outcome {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err((
                ResponseError::InvalidRequest,
                "Dynamic broker configs are not supported; set them in server.properties or with --set.".into(),
            ))
        }
        other => return Err((ResponseError::InvalidRequest, format!("Unsupported resource type {other}"))),
    }
    let image = broker.controller.image();
    let topic =
        image.topic(name).ok_or((ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' does not exist.")))?;
    let changes = changes(&topic.configs)?;
    for (key, value) in &changes {
        match value {
            Some(v) => topic_config::validate_one(key, v).map_err(invalid)?,
            None if topic_config::def(key).is_none() => {
                return Err(invalid(format!("Unknown topic config name: {key}")))
            }
            None => {}
        }
    }
    if validate_only {
        return Ok(());
    }
    // every replica takes the new settings when it applies the change
    broker.controller.alter_topic_configs(topic.topic_id, &changes).map_err(|e| (e.error, e.message))?;
    tracing::info!(topic = name, changes = ?changes, "altered topic configs");
    Ok(())
}

fn to_parts(outcome: Outcome) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((e, msg)) => (e.code(), Some(StrBytes::from_string(msg))),
    }
}

pub fn handle_alter(broker: &Arc<Broker>, request: AlterConfigsRequest, _version: i16) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let outcome =
                apply(broker, res.resource_type, res.resource_name.as_str(), request.validate_only, |current| {
                    // The request's set replaces every dynamic config of the topic.
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
                });
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
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let statics = broker.config.static_settings.clone();
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let outcome =
                apply(broker, res.resource_type, res.resource_name.as_str(), request.validate_only, |current| {
                    let mut changes = Vec::new();
                    for c in &res.configs {
                        let key = c.name.to_string();
                        let value = c.value.as_ref().map(|v| v.to_string());
                        let def = topic_config::def(&key)
                            .ok_or_else(|| invalid(format!("Unknown topic config name: {key}")))?;
                        let change = match c.config_operation {
                            OP_SET => {
                                Some(value.ok_or_else(|| invalid(format!("Null value for configuration {key}")))?)
                            }
                            OP_DELETE => None,
                            OP_APPEND | OP_SUBTRACT => {
                                if def.kind != ConfigType::List {
                                    return Err(invalid(format!(
                                        "Config value append is not allowed for config key: {key}"
                                    )));
                                }
                                let effective = topic_config::resolve(def, current, &statics).value;
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
                });
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
