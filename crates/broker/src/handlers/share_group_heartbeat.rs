//! ShareGroupHeartbeat (KIP-932): joins, keeps and leaves share group
//! members at the group coordinator; the answer carries the member's
//! epoch and its assignment (see `share::groups`).

use std::sync::Arc;

use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::share::groups::Heartbeat;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ShareGroupHeartbeatRequest,
    _version: i16,
) -> ShareGroupHeartbeatResponse {
    let fail = |e: ResponseError| ShareGroupHeartbeatResponse::default().with_error_code(e.code());
    let group_id = request.group_id.0.as_str();
    if group_id.is_empty() || request.member_id.is_empty() || request.member_epoch < -1 {
        return fail(ResponseError::InvalidRequest);
    }
    if !broker.config.group.protocol_enabled("share") {
        return fail(ResponseError::UnsupportedVersion);
    }
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, group_id) {
        return fail(ResponseError::GroupAuthorizationFailed);
    }
    if let Err(e) = broker.groups.check_coordinator(group_id) {
        return fail(e);
    }
    // a group id belongs to one group type
    if broker.groups.describe(group_id).is_some() {
        return fail(ResponseError::GroupIdNotFound)
            .with_error_message(Some(StrBytes::from_string(format!("Group {group_id} is not a share group."))));
    }
    let subscribed = request.subscribed_topic_names.map(|names| names.into_iter().map(|t| t.0.to_string()).collect());
    let host = session.peer.ip().to_string();
    let hb = Heartbeat {
        member_id: request.member_id.as_str(),
        member_epoch: request.member_epoch,
        rack_id: request.rack_id.map(|r| r.to_string()),
        subscribed,
        client_id: &session.client_id,
        client_host: &host,
    };
    match broker.share_groups.heartbeat(broker, group_id, hb) {
        Err(e) => fail(e),
        Ok(answer) => ShareGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(answer.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, partitions)| {
                            TopicPartitions::default().with_topic_id(topic_id).with_partitions(partitions)
                        })
                        .collect(),
                )
            })),
    }
}
