//! ListGroups, with the state (v4+) and type (v5+) filters: classic and
//! consumer groups, and share groups (type `share`).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use vltava_protocol::StrBytes;

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ListGroupsRequest,
    _version: i16,
) -> ListGroupsResponse {
    // DESCRIBE on the cluster lists every group; otherwise only the groups
    // the principal may DESCRIBE
    let image = broker.controller.image();
    let all = broker.authorize_in(
        &image,
        session,
        AclOperation::Describe,
        ResourceType::Cluster,
        crate::authorizer::CLUSTER_NAME,
    );
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let shares = broker.share_groups.list().into_iter().map(|(id, state)| (id, "share".to_string(), state, "share"));
    let groups = broker
        .groups
        .list_typed()
        .into_iter()
        .chain(shares)
        .filter(|(id, _, _, _)| {
            all || broker.authorize_in(&image, session, AclOperation::Describe, ResourceType::Group, id)
        })
        .filter(|(_, _, state, _)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|(_, _, _, kind)| types.is_empty() || types.iter().any(|t| t == kind))
        .map(|(id, protocol_type, state, kind)| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type))
                .with_group_state(StrBytes::from_static_str(state))
                .with_group_type(StrBytes::from_static_str(kind))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
