//! DescribeGroups: state, protocol, and members with their metadata and
//! assignments. An unknown group is described as Dead, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use vltava_protocol::StrBytes;

use super::Session;
use crate::authorized::{self, ResourceKind};
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let image = broker.controller.image();
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            if !broker.authorize_in(&image, session, AclOperation::Describe, ResourceType::Group, &id) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(vltava_protocol::ResponseError::GroupAuthorizationFailed.code())
                    .with_authorized_operations(authorized::NOT_PROVIDED);
            }
            let described = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(
                authorized::for_session(
                    broker,
                    &image,
                    session,
                    ResourceKind::Group,
                    &id,
                    request.include_authorized_operations,
                ),
            );
            if let Err(e) = broker.groups.check_coordinator(id.0.as_str()) {
                return described.with_error_code(e.code()).with_group_state(StrBytes::from_static_str("Dead"));
            }
            if broker.groups.group_type(id.0.as_str()) == Some("consumer") {
                // Kafka 4.x: DescribeGroups describes classic groups only
                let described = described.with_group_state(StrBytes::from_static_str("Dead"));
                return if version >= 6 {
                    described
                        .with_error_code(vltava_protocol::ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Group {} is not a classic group.",
                            id.0
                        ))))
                } else {
                    described
                };
            }
            match broker.groups.describe(id.0.as_str()) {
                None => described.with_group_state(StrBytes::from_static_str("Dead")),
                Some(d) => described
                    .with_group_state(StrBytes::from_static_str(d.state.name()))
                    .with_protocol_type(StrBytes::from_string(d.protocol_type))
                    .with_protocol_data(StrBytes::from_string(d.protocol_name))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|(member_id, instance, client_id, host, metadata, assignment)| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(member_id))
                                    .with_group_instance_id(instance.map(StrBytes::from_string))
                                    .with_client_id(StrBytes::from_string(client_id))
                                    .with_client_host(StrBytes::from_string(host))
                                    .with_member_metadata(metadata)
                                    .with_member_assignment(assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
