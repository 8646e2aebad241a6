//! DescribeCluster: the live brokers and the controller (a broker, see
//! `Controller::controller_for_clients`).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use vltava_protocol::StrBytes;

use crate::authorized::{self, ResourceKind};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    session: &super::Session,
    request: DescribeClusterRequest,
    _version: i16,
) -> DescribeClusterResponse {
    let image = broker.controller.image();
    // v2: fenced brokers too when asked, flagged
    let brokers = image
        .brokers()
        .filter(|b| !b.fenced || request.include_fenced_brokers)
        .filter_map(|b| {
            let (host, port) = b.endpoint(&session.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port as i32)
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id()))
        .with_controller_id(BrokerId(broker.controller.controller_for_clients()))
        .with_endpoint_type(1)
        .with_cluster_authorized_operations(authorized::for_session(
            broker,
            &image,
            session,
            ResourceKind::Cluster,
            crate::authorizer::CLUSTER_NAME,
            request.include_cluster_authorized_operations,
        ))
        .with_brokers(brokers)
}
