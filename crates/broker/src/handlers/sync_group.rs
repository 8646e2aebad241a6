//! SyncGroup: the leader hands in the assignment; every member waits for
//! its share.

use std::sync::Arc;

use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use vltava_protocol::{ResponseError, StrBytes};

use super::ResponseFuture;
use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(broker: &Arc<Broker>, session: &Session, request: SyncGroupRequest, _version: i16) -> ResponseFuture {
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &request.group_id) {
        let r = SyncGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
        return Box::pin(std::future::ready(Some(ResponseKind::SyncGroup(r))));
    }
    let assignments = request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
    let rx = broker.groups.sync(
        broker,
        request.group_id.0.as_str(),
        request.member_id.as_str(),
        request.group_instance_id.as_ref().map(|s| s.as_str()),
        request.generation_id,
        request.protocol_type.as_ref().map(|s| s.as_str()),
        request.protocol_name.as_ref().map(|s| s.as_str()),
        assignments,
    );
    Box::pin(async move {
        let response = match rx.await {
            Ok(r) => SyncGroupResponse::default()
                .with_error_code(r.error.map(|e| e.code()).unwrap_or(0))
                .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
                .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
                .with_assignment(r.assignment),
            Err(_) => SyncGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code()),
        };
        Some(ResponseKind::SyncGroup(response))
    })
}
