//! DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise).

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|id| {
            let error = if broker.authorize(session, AclOperation::Delete, ResourceType::Group, &id) {
                broker.groups.delete_group(broker, id.0.as_str()).err()
            } else {
                Some(vltava_protocol::ResponseError::GroupAuthorizationFailed)
            };
            if error.is_none() {
                tracing::info!(group = %id.0.as_str(), "deleted group");
            }
            DeletableGroupResult::default().with_group_id(id).with_error_code(error.map(|e| e.code()).unwrap_or(0))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
