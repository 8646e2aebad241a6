//! ConsumerGroupDescribe (KIP-848): a consumer group's epochs, assignor and
//! members with their current and target assignments. Unknown and classic
//! groups get GROUP_ID_NOT_FOUND, as Kafka answers.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName};
use vltava_metadata::MetadataImage;
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::authorized::{self, ResourceKind};
use crate::group::consumer;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

/// Kafka's member type (v1): 1 for a consumer protocol member.
const CONSUMER_MEMBER: i8 = 1;
const CLASSIC_MEMBER: i8 = 0;

fn assignment(image: &MetadataImage, a: &consumer::Assignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, parts)| {
                let name = image.topic_by_id(id).map(|t| t.name.clone()).unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(parts.iter().copied().collect())
            })
            .collect(),
    )
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ConsumerGroupDescribeRequest,
    _version: i16,
) -> ConsumerGroupDescribeResponse {
    let image = broker.controller.image();
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let group_id = id.0.to_string();
            if !broker.authorize_in(&image, session, AclOperation::Describe, ResourceType::Group, &group_id) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
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
            match broker.groups.consumer_describe(broker, &group_id) {
                Err(r) => described
                    .with_error_code(r.error.code())
                    .with_error_message((!r.message.is_empty()).then(|| StrBytes::from_string(r.message))),
                Ok(g) => described
                    .with_group_state(StrBytes::from_static_str(g.state))
                    .with_group_epoch(g.epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(StrBytes::from_string(g.assignor))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|(m, target)| {
                                Member::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_instance_id(m.meta.instance_id.clone().map(StrBytes::from_string))
                                    .with_rack_id(m.meta.rack_id.clone().map(StrBytes::from_string))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(StrBytes::from_string(m.meta.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.meta.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.meta
                                            .subscribed_topic_names
                                            .iter()
                                            .map(|t| TopicName(StrBytes::from_string(t.clone())))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.meta.subscribed_topic_regex.clone().map(StrBytes::from_string),
                                    )
                                    .with_assignment(assignment(&image, &m.assigned))
                                    .with_target_assignment(assignment(&image, &target))
                                    .with_member_type(if m.meta.classic.is_some() {
                                        CLASSIC_MEMBER
                                    } else {
                                        CONSUMER_MEMBER
                                    })
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
