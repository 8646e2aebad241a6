//! ShareGroupDescribe (KIP-932): a share group's state, epochs and members
//! with their assignments.

use std::sync::Arc;

use kafka_protocol::messages::share_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName};
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ShareGroupDescribeRequest,
    _version: i16,
) -> ShareGroupDescribeResponse {
    let image = broker.controller.image();
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(i32::MIN);
            let group_id = id.0.as_str();
            if !broker.authorize(session, AclOperation::Describe, ResourceType::Group, group_id) {
                return described.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if let Err(e) = broker.groups.check_coordinator(group_id) {
                return described.with_error_code(e.code());
            }
            let Some(view) = broker.share_groups.describe(group_id) else {
                return described.with_error_code(ResponseError::GroupIdNotFound.code()).with_error_message(Some(
                    StrBytes::from_string(format!("Group {group_id} is not a share group.")),
                ));
            };
            let members = view
                .members
                .into_iter()
                .map(|m| {
                    let partitions = m
                        .assignment
                        .iter()
                        .map(|(topic_id, partitions)| {
                            let name = image.topic_by_id(topic_id).map(|t| t.name.clone()).unwrap_or_default();
                            TopicPartitions::default()
                                .with_topic_id(*topic_id)
                                .with_topic_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(partitions.clone())
                        })
                        .collect();
                    Member::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_rack_id(m.rack_id.map(StrBytes::from_string))
                        .with_member_epoch(m.epoch)
                        .with_client_id(StrBytes::from_string(m.client_id))
                        .with_client_host(StrBytes::from_string(m.client_host))
                        .with_subscribed_topic_names(
                            m.subscribed.into_iter().map(|t| TopicName(StrBytes::from_string(t))).collect(),
                        )
                        .with_assignment(Assignment::default().with_topic_partitions(partitions))
                })
                .collect();
            described
                .with_group_state(StrBytes::from_static_str(view.state))
                .with_group_epoch(view.epoch)
                .with_assignment_epoch(view.assignment_epoch)
                .with_assignor_name(StrBytes::from_static_str("simple"))
                .with_members(members)
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}
