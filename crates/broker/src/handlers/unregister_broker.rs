//! UnregisterBroker: removes a broker from the cluster metadata, as
//! `kafka-cluster.sh unregister` does for a broker that is gone for good.
//! Its replicas stay assigned (shown offline) until they are reassigned; a
//! process still running registers again, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use vltava_protocol::StrBytes;

use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: UnregisterBrokerRequest, _version: i16) -> UnregisterBrokerResponse {
    match broker.controller.unregister_broker(request.broker_id.0) {
        Ok(()) => UnregisterBrokerResponse::default(),
        Err(e) => UnregisterBrokerResponse::default()
            .with_error_code(e.error.code())
            .with_error_message(Some(StrBytes::from_string(e.message))),
    }
}
