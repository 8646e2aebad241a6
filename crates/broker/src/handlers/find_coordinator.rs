//! FindCoordinator: a group's coordinator is the leader of its
//! `__consumer_offsets` partition, a transactional id's the leader of its
//! `__transaction_state` partition (the topics are created on first use),
//! a share partition's (key type 2, `group:topicId:partition`, asked by
//! brokers with CLUSTER_ACTION) the leader of its `__share_group_state`
//! partition. v4+ answers a batch of keys.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::group::records::partition_for_group;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

fn locate(
    broker: &Broker,
    session: &Session,
    key_type: i8,
    key: &str,
) -> Result<(i32, String, i32), (ResponseError, String)> {
    let listener: &str = &session.listener;
    // ACLs: DESCRIBE on the group or transactional id
    let denied = |error: ResponseError| Err((error, error.to_string()));
    match key_type {
        KEY_TYPE_GROUP if !broker.authorize(session, AclOperation::Describe, ResourceType::Group, key) => {
            return denied(ResponseError::GroupAuthorizationFailed)
        }
        KEY_TYPE_TRANSACTION
            if !broker.authorize(session, AclOperation::Describe, ResourceType::TransactionalId, key) =>
        {
            return denied(ResponseError::TransactionalIdAuthorizationFailed)
        }
        KEY_TYPE_SHARE if !broker.authorize_cluster(session, AclOperation::ClusterAction) => {
            return denied(ResponseError::ClusterAuthorizationFailed)
        }
        _ => {}
    }
    let mut hashed = key.to_string();
    let (topic, partitions) = match key_type {
        KEY_TYPE_GROUP => {
            broker
                .groups
                .ensure_offsets_topic(broker)
                .map_err(|e| (e, "the offsets topic could not be created".into()))?;
            (crate::group::OFFSETS_TOPIC, broker.config.offsets_topic_num_partitions)
        }
        KEY_TYPE_TRANSACTION => {
            broker
                .txns
                .ensure_state_topic(broker)
                .map_err(|e| (e, "the transaction state topic could not be created".into()))?;
            (crate::txn::TRANSACTION_STATE_TOPIC, broker.config.transaction_state_partitions)
        }
        KEY_TYPE_SHARE => {
            let share_key = crate::share::coordinator::parse_coordinator_key(key)
                .ok_or_else(|| (ResponseError::InvalidRequest, format!("invalid share coordinator key {key:?}")))?;
            let coordinator = &broker.share_coordinator;
            coordinator
                .ensure_state_topic(broker)
                .map_err(|e| (e, "the share group state topic could not be created".into()))?;
            hashed = crate::share::coordinator::coordinator_key(&share_key);
            (crate::share::coordinator::SHARE_STATE_TOPIC, coordinator.num_partitions())
        }
        other => return Err((ResponseError::InvalidRequest, format!("unknown coordinator key type {other}"))),
    };
    let image = broker.controller.image();
    let index = partition_for_group(&hashed, partitions.max(1));
    let leader = image.topic(topic).and_then(|t| t.partition(index)).map(|p| p.leader).unwrap_or(-1);
    match image.broker(leader).filter(|b| !b.fenced).and_then(|b| Some((b.id, b.endpoint(listener)?))) {
        Some((id, (host, port))) => Ok((id, host.to_string(), port as i32)),
        None => Err((ResponseError::CoordinatorNotAvailable, "The coordinator is not available.".into())),
    }
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version < 4 {
        return match locate(broker, session, request.key_type, request.key.as_str()) {
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
            let found = locate(broker, session, request.key_type, key.as_str());
            let c = Coordinator::default().with_key(key);
            match found {
                Ok((node, host, port)) => {
                    c.with_node_id(BrokerId(node)).with_host(StrBytes::from_string(host)).with_port(port)
                }
                Err((e, msg)) => c
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(msg)))
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
