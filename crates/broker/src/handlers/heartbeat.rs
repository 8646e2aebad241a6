//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells
//! it to rejoin.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(broker: &Arc<Broker>, session: &Session, request: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &request.group_id) {
        return HeartbeatResponse::default()
            .with_error_code(vltava_protocol::ResponseError::GroupAuthorizationFailed.code());
    }
    let error = broker.groups.heartbeat(
        request.group_id.0.as_str(),
        request.member_id.as_str(),
        request.group_instance_id.as_ref().map(|s| s.as_str()),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(error.map(|e| e.code()).unwrap_or(0))
}
