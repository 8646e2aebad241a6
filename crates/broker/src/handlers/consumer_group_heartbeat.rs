//! ConsumerGroupHeartbeat (KIP-848): joins, heartbeats and leaves of
//! consumer protocol members; answered once the records it wrote are
//! durable.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ResponseKind};
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::group::consumer::{self, Heartbeat};
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

fn failed(error: ResponseError, message: String) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error.code())
        .with_error_message((!message.is_empty()).then(|| StrBytes::from_string(message)))
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
) -> ResponseFuture {
    let group_id = request.group_id.0.to_string();
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &group_id) {
        let r = failed(ResponseError::GroupAuthorizationFailed, String::new());
        return Box::pin(std::future::ready(Some(ResponseKind::ConsumerGroupHeartbeat(r))));
    }
    let hb = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|s| s.to_string()),
        rack_id: request.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|v| v.into_iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: if version >= 1 { request.subscribed_topic_regex.map(|s| s.to_string()) } else { None },
        server_assignor: request.server_assignor.map(|s| s.to_string()),
        owned: request.topic_partitions.map(|v| {
            let mut owned = consumer::Assignment::new();
            for tp in v {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned
        }),
        client_id: session.client_id.clone(),
        client_host: format!("/{}", session.peer.ip()),
        classic: None,
    };
    let response = match broker.groups.consumer_heartbeat(broker, &group_id, hb, version) {
        Err(r) => {
            return Box::pin(std::future::ready(Some(ResponseKind::ConsumerGroupHeartbeat(failed(r.error, r.message)))))
        }
        Ok((answer, durable)) => {
            let response = ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(answer.member_id)))
                .with_member_epoch(answer.member_epoch)
                .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
                .with_assignment(answer.assignment.map(|a| {
                    Assignment::default().with_topic_partitions(
                        a.into_iter()
                            .map(|(id, parts)| {
                                TopicPartitions::default()
                                    .with_topic_id(id)
                                    .with_partitions(parts.into_iter().collect())
                            })
                            .collect(),
                    )
                }));
            (response, durable)
        }
    };
    Box::pin(async move {
        let (response, durable) = response;
        if let Some((partition, offset)) = durable {
            if let Err(e) = partition.wait_coordinator_write(offset).await {
                return Some(ResponseKind::ConsumerGroupHeartbeat(failed(e, String::new())));
            }
        }
        Some(ResponseKind::ConsumerGroupHeartbeat(response))
    })
}
