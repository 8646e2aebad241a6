//! JoinGroup: answered when the rebalance's join phase completes (or at
//! once for errors and members whose join changes nothing).

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::group::state::{JoinRequest, JoinResult};
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

fn response(result: JoinResult) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(id))
                .with_group_instance_id(instance.map(StrBytes::from_string))
                .with_metadata(metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(result.error.map(|e| e.code()).unwrap_or(0))
        .with_generation_id(result.generation_id)
        .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
        .with_protocol_name(result.protocol_name.map(StrBytes::from_string))
        .with_leader(StrBytes::from_string(result.leader_id))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members)
}

pub fn handle(broker: &Arc<Broker>, session: &Session, request: JoinGroupRequest, version: i16) -> ResponseFuture {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        let r = JoinGroupResponse::default()
            .with_error_code(ResponseError::InvalidGroupId.code())
            .with_generation_id(-1)
            .with_member_id(request.member_id);
        return Box::pin(std::future::ready(Some(ResponseKind::JoinGroup(r))));
    }
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &group_id) {
        let r = JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1)
            .with_member_id(request.member_id);
        return Box::pin(std::future::ready(Some(ResponseKind::JoinGroup(r))));
    }
    if broker.share_groups.exists(&group_id) {
        let r = JoinGroupResponse::default()
            .with_error_code(ResponseError::InconsistentGroupProtocol.code())
            .with_generation_id(-1)
            .with_member_id(request.member_id);
        return Box::pin(std::future::ready(Some(ResponseKind::JoinGroup(r))));
    }
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: session.client_id.clone(),
        client_host: format!("/{}", session.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: version >= 4,
    };
    let rx = broker.groups.join(broker, &group_id, join);
    Box::pin(async move {
        let result = rx.await.unwrap_or(JoinResult {
            error: Some(ResponseError::UnknownMemberId),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            member_id: String::new(),
            members: Vec::new(),
        });
        Some(ResponseKind::JoinGroup(response(result)))
    })
}
