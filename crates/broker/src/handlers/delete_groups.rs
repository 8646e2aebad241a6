//! DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise).
//! A share group's persisted states are deleted first
//! (`share_group_offsets::delete_share_group`).

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, ResponseKind};

use super::{ResponseFuture, Session};
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(broker: &Arc<Broker>, session: &Session, request: DeleteGroupsRequest, _version: i16) -> ResponseFuture {
    let broker = broker.clone();
    let session = session.clone();
    Box::pin(async move {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for id in request.groups_names {
            let group = id.0.as_str();
            let error = if !broker.authorize(&session, AclOperation::Delete, ResourceType::Group, group) {
                Some(vltava_protocol::ResponseError::GroupAuthorizationFailed)
            } else if broker.share_groups.exists(group) {
                super::share_group_offsets::delete_share_group(&broker, group).await.err()
            } else {
                broker.groups.delete_group(&broker, group).err()
            };
            if error.is_none() {
                tracing::info!(group = %group, "deleted group");
            }
            results.push(
                DeletableGroupResult::default().with_group_id(id).with_error_code(error.map(|e| e.code()).unwrap_or(0)),
            );
        }
        Some(ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results)))
    })
}
