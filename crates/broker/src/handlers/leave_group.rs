//! LeaveGroup: one member (v0-v2) or a batch by member or instance id (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(broker: &Arc<Broker>, session: &Session, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &request.group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(vltava_protocol::ResponseError::GroupAuthorizationFailed.code());
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    match broker.groups.leave(broker, request.group_id.0.as_str(), &members) {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(results) if version < 3 => {
            LeaveGroupResponse::default().with_error_code(results[0].map(|e| e.code()).unwrap_or(0))
        }
        Ok(results) => LeaveGroupResponse::default().with_members(
            request
                .members
                .into_iter()
                .zip(results)
                .map(|(m, e)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(e.map(|e| e.code()).unwrap_or(0))
                })
                .collect(),
        ),
    }
}
