//! ShareAcknowledge (KIP-932): acknowledgements without fetching, within
//! an open share session (epoch -1 also closes it and releases the
//! member's remaining locks). Each partition's answer comes once its
//! state change is durable.

use std::sync::Arc;

use kafka_protocol::messages::share_acknowledge_response::{
    LeaderIdAndEpoch, PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ResponseKind, ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use vltava_protocol::ResponseError;

use super::share_fetch::{acknowledge_all, check_group, PartitionAcks};
use super::{ResponseFuture, Session};
use crate::share::partition::AckRange;
use crate::share::session::SessionKey;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ShareAcknowledgeRequest,
    _version: i16,
) -> ResponseFuture {
    let broker = broker.clone();
    let session = session.clone();
    Box::pin(async move { Some(ResponseKind::ShareAcknowledge(run(&broker, &session, request).await)) })
}

async fn run(broker: &Arc<Broker>, session: &Session, request: ShareAcknowledgeRequest) -> ShareAcknowledgeResponse {
    let fail = |e: ResponseError| ShareAcknowledgeResponse::default().with_error_code(e.code());
    let (group, member) = match check_group(broker, session, request.group_id.as_ref(), request.member_id.as_ref()) {
        Ok(ids) => ids,
        Err(e) => return fail(e),
    };
    let key = SessionKey { group: group.clone(), member: member.clone() };
    let used = match broker.share_partitions.sessions.on_acknowledge(
        key,
        request.share_session_epoch,
        std::time::Instant::now(),
    ) {
        Ok(used) => used,
        Err(e) => return fail(e),
    };
    let acks: Vec<PartitionAcks> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let batches = p
                    .acknowledgement_batches
                    .iter()
                    .map(|b| AckRange::new(b.first_offset, b.last_offset, &b.acknowledge_types))
                    .collect();
                ((t.topic_id, p.partition_index), batches)
            })
        })
        .collect();
    let results = acknowledge_all(broker, session, &group, &member, acks).await;
    if used.closed {
        broker.share_partitions.release_member(broker, &group, &member);
    }
    let mut topics: Vec<ShareAcknowledgeTopicResponse> = Vec::new();
    for ((topic_id, index), code) in results {
        let data = PartitionData::default()
            .with_partition_index(index)
            .with_error_code(code)
            .with_current_leader(LeaderIdAndEpoch::default().with_leader_id(-1).with_leader_epoch(-1));
        match topics.last_mut() {
            Some(t) if t.topic_id == topic_id => t.partitions.push(data),
            _ => topics
                .push(ShareAcknowledgeTopicResponse::default().with_topic_id(topic_id).with_partitions(vec![data])),
        }
    }
    ShareAcknowledgeResponse::default().with_responses(topics)
}
