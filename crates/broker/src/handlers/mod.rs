//! One module per Kafka API. A handler does the part that must happen in
//! request order (appends, topic changes) before it returns, and returns a
//! future for the part that may wait (fsync, long polling); the connection
//! writes the futures' results in request order.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use vltava_protocol::request::Request;

use crate::Broker;

pub mod api_versions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_cluster;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;

/// The eventual response; `None` means send nothing (acks=0 produce).
pub type ResponseFuture = BoxFuture<'static, Option<ResponseKind>>;

fn ready(response: ResponseKind) -> ResponseFuture {
    Box::pin(std::future::ready(Some(response)))
}

pub fn dispatch(broker: &Arc<Broker>, request: Request) -> ResponseFuture {
    let version = request.version();
    match request.body {
        RequestKind::ApiVersions(_) => ready(ResponseKind::ApiVersions(api_versions::response(0))),
        RequestKind::Metadata(r) => ready(ResponseKind::Metadata(metadata::handle(broker, r, version))),
        RequestKind::Produce(r) => produce::handle(broker, r, version),
        RequestKind::Fetch(r) => fetch::handle(broker, r, version),
        RequestKind::ListOffsets(r) => ready(ResponseKind::ListOffsets(list_offsets::handle(broker, r, version))),
        RequestKind::CreateTopics(r) => ready(ResponseKind::CreateTopics(create_topics::handle(broker, r, version))),
        RequestKind::DeleteTopics(r) => ready(ResponseKind::DeleteTopics(delete_topics::handle(broker, r, version))),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ready(ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, r, version)))
        }
        RequestKind::DescribeCluster(r) => {
            ready(ResponseKind::DescribeCluster(describe_cluster::handle(broker, r, version)))
        }
        other => {
            // decode_request only lets supported APIs through.
            tracing::error!(api = ?std::mem::discriminant(&other), "request kind without a handler");
            Box::pin(std::future::ready(None))
        }
    }
}
