//! ListConfigResources (KIP-1142; v0 was KIP-714's
//! ListClientMetricsResources): the resources DescribeConfigs can describe.
//! TOPIC lists every topic, BROKER every registered broker, BROKER_LOGGER
//! every registered broker too; CLIENT_METRICS every client-metrics
//! subscription; GROUP every group with configs and every group this node
//! coordinates. No types
//! means all of them; an unknown type is INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use vltava_protocol::{ResponseError, StrBytes};

use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = crate::client_metrics::RESOURCE_CLIENT_METRICS;
const GROUP: i8 = crate::group_config::RESOURCE_GROUP;
const ALL: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

pub fn handle(broker: &Arc<Broker>, request: ListConfigResourcesRequest, version: i16) -> ListConfigResourcesResponse {
    // v0 lists client-metrics resources only
    let types: Vec<i8> = match version {
        0 => vec![CLIENT_METRICS],
        _ if request.resource_types.is_empty() => ALL.to_vec(),
        _ => request.resource_types.clone(),
    };
    if types.iter().any(|t| !ALL.contains(t)) {
        return ListConfigResourcesResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let image = broker.controller.image();
    let resource = |name: String, kind: i8| {
        ConfigResource::default().with_resource_name(StrBytes::from_string(name)).with_resource_type(kind)
    };
    let mut resources = Vec::new();
    for kind in types {
        match kind {
            TOPIC => resources.extend(image.topics().map(|t| resource(t.name.clone(), TOPIC))),
            BROKER | BROKER_LOGGER => resources.extend(image.brokers().map(|b| resource(b.id.to_string(), kind))),
            CLIENT_METRICS => {
                resources.extend(image.resource_configs(CLIENT_METRICS).map(|(name, _)| resource(name.into(), kind)))
            }
            GROUP => {
                let mut names: std::collections::BTreeSet<String> =
                    image.resource_configs(GROUP).map(|(name, _)| name.to_string()).collect();
                names.extend(broker.groups.list().into_iter().map(|(id, _, _)| id));
                names.extend(broker.share_groups.list().into_iter().map(|(id, _)| id));
                resources.extend(names.into_iter().map(|name| resource(name, kind)));
            }
            _ => {}
        }
    }
    ListConfigResourcesResponse::default().with_config_resources(resources)
}
