//! GetTelemetrySubscriptions and PushTelemetry (KIP-714): see
//! `client_metrics` for the subscriptions, Kafka's checks and what becomes
//! of pushed metrics.

use std::sync::Arc;

use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest, PushTelemetryResponse,
};
use vltava_protocol::StrBytes;

use super::Session;
use crate::client_metrics::{ClientIdentity, Push};
use crate::Broker;

fn identity(broker: &Broker, session: &Session) -> ClientIdentity {
    let (software_name, software_version) = broker.client_metrics.software(&session.peer);
    ClientIdentity {
        client_id: session.client_id.clone(),
        principal: session.principal.to_string(),
        software_name,
        software_version,
        source: Some(session.peer),
    }
}

pub fn get_subscriptions(
    broker: &Arc<Broker>,
    session: &Session,
    r: GetTelemetrySubscriptionsRequest,
    _version: i16,
) -> GetTelemetrySubscriptionsResponse {
    let image = broker.controller.image();
    let requested = r.client_instance_id;
    match broker.client_metrics.subscriptions(&image, requested, identity(broker, session)) {
        Ok(s) => GetTelemetrySubscriptionsResponse::default()
            .with_client_instance_id(s.client_instance_id)
            .with_subscription_id(s.subscription_id)
            .with_accepted_compression_types(s.accepted_compression_types)
            .with_push_interval_ms(s.push_interval_ms)
            .with_telemetry_max_bytes(broker.config.telemetry_max_bytes)
            .with_delta_temporality(false)
            .with_requested_metrics(s.requested_metrics.into_iter().map(StrBytes::from_string).collect()),
        Err((error, message)) => {
            tracing::debug!(peer = %session.peer, client_id = %session.client_id, %message, "GetTelemetrySubscriptions refused");
            GetTelemetrySubscriptionsResponse::default().with_error_code(error.code())
        }
    }
}

pub fn push(broker: &Arc<Broker>, session: &Session, r: PushTelemetryRequest, _version: i16) -> PushTelemetryResponse {
    let image = broker.controller.image();
    let id = r.client_instance_id;
    let push = Push {
        subscription_id: r.subscription_id,
        terminating: r.terminating,
        compression: r.compression_type,
        metrics: &r.metrics,
        max_bytes: broker.config.telemetry_max_bytes as usize,
    };
    match broker.client_metrics.push(&image, id, identity(broker, session), push) {
        Ok(()) => PushTelemetryResponse::default(),
        Err((error, message)) => {
            tracing::debug!(peer = %session.peer, client_id = %session.client_id, %message, "PushTelemetry refused");
            PushTelemetryResponse::default().with_error_code(error.code())
        }
    }
}
