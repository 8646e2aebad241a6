//! FindCoordinator: this node coordinates every group (it leads every
//! `__consumer_offsets` partition). v4+ answers a batch of keys.
//! Transactional ids (key type 1) are coordinated here too.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use vltava_protocol::{ResponseError, StrBytes};

use crate::Broker;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

fn locate(broker: &Broker, key_type: i8) -> Result<(i32, String, i32), (ResponseError, String)> {
    match key_type {
        KEY_TYPE_GROUP => broker
            .groups
            .ensure_offsets_topic(broker)
            .map_err(|e| (e, "the offsets topic could not be created".into()))?,
        KEY_TYPE_TRANSACTION => broker
            .txns
            .ensure_state_topic(broker)
            .map_err(|e| (e, "the transaction state topic could not be created".into()))?,
        other => return Err((ResponseError::InvalidRequest, format!("unknown coordinator key type {other}"))),
    }
    let c = &broker.config;
    Ok((c.node_id, c.advertised_host.clone(), c.advertised_port as i32))
}

pub fn handle(broker: &Arc<Broker>, request: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let found = locate(broker, request.key_type);
    if version < 4 {
        return match found {
            Ok((node, host, port)) => FindCoordinatorResponse::default()
                .with_node_id(BrokerId(node))
                .with_host(StrBytes::from_string(host))
                .with_port(port),
            Err((e, msg)) => FindCoordinatorResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
                .with_node_id(BrokerId(-1))
                .with_port(-1),
        };
    }
    let coordinators = request
        .coordinator_keys
        .into_iter()
        .map(|key| {
            let c = Coordinator::default().with_key(key);
            match &found {
                Ok((node, host, port)) => {
                    c.with_node_id(BrokerId(*node)).with_host(StrBytes::from_string(host.clone())).with_port(*port)
                }
                Err((e, msg)) => c
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(msg.clone())))
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
