//! Requests only the metadata quorum's leader can answer (DescribeQuorum
//! with every voter's progress, the voter changes of KIP-853): another
//! node forwards them to the leader's client listener, as Kafka's brokers
//! forward them to the active controller. A forwarded request carries
//! [`FORWARDED`] as its client id, and its receiver answers it itself.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::Session;
use crate::Broker;

/// The client id of a forwarded request.
pub const FORWARDED: &str = "vltava-quorum-leader-forward";

/// Where to forward a request that `session` sent here: the quorum
/// leader's client address, unless this node leads, the request was
/// forwarded already, or the leader has no client listener (a
/// controller-only node).
pub fn forward_address(broker: &Broker, session: &Session) -> Option<String> {
    let leader = broker.controller.quorum().status().leader;
    if leader == broker.config.node_id || session.client_id == FORWARDED {
        return None;
    }
    broker.controller.image().broker(leader).map(|b| format!("{}:{}", b.host, b.port))
}

/// Sends `request` to the leader at `addr` (over TLS when the
/// inter-broker listener is SSL) and returns its answer.
pub async fn forward<Req, Resp>(
    broker: &Broker,
    addr: &str,
    api_key: ApiKey,
    version: i16,
    request: &Req,
    timeout: Duration,
) -> std::io::Result<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let mut conn = crate::replication::KafkaConn::connect_to_broker(broker, addr, FORWARDED.to_string()).await?;
    conn.call::<Req, Resp>(api_key, version, request, timeout).await
}
