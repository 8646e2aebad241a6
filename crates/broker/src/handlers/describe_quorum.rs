//! DescribeQuorum: the metadata quorum (`__cluster_metadata` partition 0):
//! leader, epoch, high watermark, each voter's log end and when it was last
//! heard from, and (v2) the voters' controller endpoints. Only the quorum
//! leader knows every voter's progress, so a follower forwards the request
//! to it, as Kafka forwards it to the active controller; it answers with its
//! own view when the leader has no client listener or cannot be reached.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::Broker;

const METADATA_TOPIC: &str = "__cluster_metadata";
/// The client id of a forwarded request: its receiver answers it itself.
const FORWARDED: &str = "vltava-describe-quorum-forward";
/// How long a follower waits for the leader's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

pub fn handle(broker: &Arc<Broker>, session: &Session, request: DescribeQuorumRequest, version: i16) -> ResponseFuture {
    let leader = broker.controller.quorum().status().leader;
    let me = broker.config.node_id;
    let leader_address = broker.controller.image().broker(leader).map(|b| format!("{}:{}", b.host, b.port));
    let forward = match leader_address {
        Some(addr) if leader != me && session.client_id != FORWARDED => Some(addr),
        _ => None,
    };
    let broker = broker.clone();
    Box::pin(async move {
        if let Some(addr) = forward {
            let asked = async {
                let mut conn = crate::replication::KafkaConn::connect(
                    &addr,
                    broker.inter_broker_tls.as_deref(),
                    FORWARDED.to_string(),
                )
                .await?;
                conn.call::<_, DescribeQuorumResponse>(ApiKey::DescribeQuorum, version, &request, FORWARD_TIMEOUT).await
            };
            match asked.await {
                Ok(answer) => return Some(ResponseKind::DescribeQuorum(answer)),
                Err(e) => {
                    tracing::debug!(leader, %addr, error = %e, "cannot forward DescribeQuorum; answering locally")
                }
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
                    data.with_leader_id(BrokerId(status.leader))
                        .with_leader_epoch(status.epoch)
                        .with_high_watermark(status.high_watermark)
                        .with_current_voters(
                            status
                                .voters
                                .iter()
                                .map(|v| {
                                    ReplicaState::default()
                                        .with_replica_id(BrokerId(v.node_id))
                                        .with_log_end_offset(v.log_end_offset)
                                        .with_last_fetch_timestamp(v.last_fetch_ms)
                                        .with_last_caught_up_timestamp(v.last_caught_up_ms)
                                })
                                .collect(),
                        )
                })
                .collect();
            TopicData::default().with_topic_name(TopicName(t.topic_name.0)).with_partitions(partitions)
        })
        .collect();
    let nodes = broker
        .config
        .voters()
        .into_iter()
        .filter_map(|(id, addr)| {
            let (host, port) = addr.rsplit_once(':')?;
            let listener = Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port.parse().ok()?);
            Some(Node::default().with_node_id(BrokerId(id)).with_listeners(vec![listener]))
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics).with_nodes(nodes)
}
