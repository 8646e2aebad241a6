//! DescribeCluster: this node as the only broker and the controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use vltava_protocol::StrBytes;

use crate::Broker;

pub fn handle(broker: &Arc<Broker>, _request: DescribeClusterRequest, _version: i16) -> DescribeClusterResponse {
    let c = &broker.config;
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(c.node_id))
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(c.node_id))
            .with_host(StrBytes::from_string(c.advertised_host.clone()))
            .with_port(c.advertised_port as i32)])
}
