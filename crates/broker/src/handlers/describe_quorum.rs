//! DescribeQuorum: the metadata quorum (`__cluster_metadata` partition 0)
//! as this node sees it: leader, epoch, high watermark, each voter's log
//! end and when it was last heard from (a follower knows only its own; the
//! leader knows all), and (v2) the voters' controller endpoints.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use vltava_protocol::{ResponseError, StrBytes};

use crate::Broker;

const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn handle(broker: &Arc<Broker>, request: DescribeQuorumRequest, _version: i16) -> DescribeQuorumResponse {
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
