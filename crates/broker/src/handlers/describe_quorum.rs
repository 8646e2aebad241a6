//! DescribeQuorum: the metadata quorum (`__cluster_metadata` partition 0):
//! leader, epoch, high watermark, each voter's and observer's (learner's)
//! log end and when it was last heard from, and (v2) the members'
//! controller endpoints, all from the membership the log holds. Only the
//! quorum leader knows every member's progress, so a follower forwards the
//! request to it ([`super::quorum_leader`]); it answers with its own view
//! when the leader has no client listener or cannot be reached.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use vltava_protocol::{ResponseError, StrBytes};
use vltava_quorum::VoterStatus;

use super::{quorum_leader, ResponseFuture, Session};
use crate::Broker;

const METADATA_TOPIC: &str = "__cluster_metadata";
/// How long a follower waits for the leader's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

pub fn handle(broker: &Arc<Broker>, session: &Session, request: DescribeQuorumRequest, version: i16) -> ResponseFuture {
    let forward = quorum_leader::forward_address(broker, session);
    let broker = broker.clone();
    Box::pin(async move {
        if let Some(addr) = forward {
            let asked = quorum_leader::forward::<_, DescribeQuorumResponse>(
                &broker,
                &addr,
                ApiKey::DescribeQuorum,
                version,
                &request,
                FORWARD_TIMEOUT,
            );
            match asked.await {
                Ok(answer) => return Some(ResponseKind::DescribeQuorum(answer)),
                Err(e) => tracing::debug!(%addr, error = %e, "cannot forward DescribeQuorum; answering locally"),
            }
        }
        Some(ResponseKind::DescribeQuorum(local(&broker, request)))
    })
}

/// The quorum as this node sees it.
fn local(broker: &Broker, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let status = broker.controller.quorum().status();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let data = PartitionData::default().with_partition_index(p.partition_index);
                    if t.topic_name.0.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                        return data.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    let states = |members: &[VoterStatus]| -> Vec<ReplicaState> {
                        members
                            .iter()
                            .map(|v| {
                                ReplicaState::default()
                                    .with_replica_id(BrokerId(v.node_id))
                                    .with_log_end_offset(v.log_end_offset)
                                    .with_last_fetch_timestamp(v.last_fetch_ms)
                                    .with_last_caught_up_timestamp(v.last_caught_up_ms)
                            })
                            .collect()
                    };
                    data.with_leader_id(BrokerId(status.leader))
                        .with_leader_epoch(status.epoch)
                        .with_high_watermark(status.high_watermark)
                        .with_current_voters(states(&status.voters))
                        .with_observers(states(&status.observers))
                })
                .collect();
            TopicData::default().with_topic_name(TopicName(t.topic_name.0)).with_partitions(partitions)
        })
        .collect();
    let nodes = status
        .endpoints
        .iter()
        .filter_map(|(id, addr)| {
            let (host, port) = addr.rsplit_once(':')?;
            let listener = Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port.parse().ok()?);
            Some(Node::default().with_node_id(BrokerId(*id)).with_listeners(vec![listener]))
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics).with_nodes(nodes)
}
