//! CreateAcls, DescribeAcls and DeleteAcls (v1-3): ACL bindings kept in
//! the metadata log, through the controller as other metadata writes.
//! Creating and deleting need ALTER on the cluster, describing DESCRIBE;
//! without an authorizer the three answer SECURITY_DISABLED, as Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    create_acls_response, delete_acls_response, describe_acls_response, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
};
use vltava_metadata::{AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType};
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::Broker;

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Whether `principal` reads as Kafka's `Type:name`.
fn valid_principal(principal: &str) -> bool {
    principal.split_once(':').is_some_and(|(t, n)| !t.is_empty() && !n.is_empty())
}

/// A creation, checked as Kafka's controller checks a new ACL.
fn binding(c: &kafka_protocol::messages::create_acls_request::AclCreation) -> Result<AclBinding, String> {
    let resource_type = ResourceType::from_code(c.resource_type)
        .filter(|t| *t != ResourceType::Any)
        .ok_or_else(|| format!("Invalid resourceType {}", c.resource_type))?;
    let pattern_type = PatternType::from_code(c.resource_pattern_type)
        .filter(|p| matches!(p, PatternType::Literal | PatternType::Prefixed))
        .ok_or_else(|| format!("Invalid patternType {}", c.resource_pattern_type))?;
    let operation = AclOperation::from_code(c.operation)
        .filter(|o| *o != AclOperation::Any)
        .ok_or_else(|| format!("Invalid operation {}", c.operation))?;
    let permission = AclPermission::from_code(c.permission_type)
        .filter(|p| *p != AclPermission::Any)
        .ok_or_else(|| format!("Invalid permissionType {}", c.permission_type))?;
    if c.resource_name.is_empty() {
        return Err("Resource name should not be empty".into());
    }
    if !valid_principal(&c.principal) {
        return Err(format!("Could not parse principal from `{}` (no colon is found)", &*c.principal));
    }
    if c.host.is_empty() {
        return Err("Invalid null or empty host".into());
    }
    Ok(AclBinding {
        resource_type,
        resource_name: c.resource_name.to_string(),
        pattern_type,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation,
        permission,
    })
}

/// A DescribeAcls / DeleteAcls filter; an unknown code makes it invalid.
#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    resource_name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let invalid = |what: &str, code: i8| format!("Filter has an unknown {what}: {code}");
    Ok(AclFilter {
        resource_type: ResourceType::from_code(resource_type).ok_or_else(|| invalid("resource type", resource_type))?,
        resource_name: resource_name.as_ref().map(|n| n.to_string()),
        pattern_type: PatternType::from_code(pattern_type).ok_or_else(|| invalid("pattern type", pattern_type))?,
        principal: principal.as_ref().map(|p| p.to_string()),
        host: host.as_ref().map(|h| h.to_string()),
        operation: AclOperation::from_code(operation).ok_or_else(|| invalid("operation", operation))?,
        permission: AclPermission::from_code(permission).ok_or_else(|| invalid("permission type", permission))?,
    })
}

pub fn create(broker: &Arc<Broker>, session: &Session, r: CreateAclsRequest, _version: i16) -> CreateAclsResponse {
    let failed = |error: ResponseError, message: &str| {
        let results = r
            .creations
            .iter()
            .map(|_| {
                create_acls_response::AclCreationResult::default()
                    .with_error_code(error.code())
                    .with_error_message(Some(text(message)))
            })
            .collect();
        CreateAclsResponse::default().with_results(results)
    };
    if !broker.authorizer_enabled() {
        return failed(ResponseError::SecurityDisabled, NO_AUTHORIZER);
    }
    if !broker.authorize_cluster(session, AclOperation::Alter) {
        return failed(ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    let mut results = Vec::with_capacity(r.creations.len());
    let mut accepted = Vec::new();
    let mut bindings = Vec::new();
    for c in &r.creations {
        let mut result = create_acls_response::AclCreationResult::default();
        match binding(c) {
            Ok(b) => {
                accepted.push(results.len());
                bindings.push(b);
            }
            Err(message) => {
                result = result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(text(&message)))
            }
        }
        results.push(result);
    }
    if !bindings.is_empty() {
        if let Err(e) = broker.controller.create_acls(bindings) {
            for i in accepted {
                results[i].error_code = e.error.code();
                results[i].error_message = Some(text(&e.message));
            }
        }
    }
    CreateAclsResponse::default().with_results(results)
}

pub fn describe(
    broker: &Arc<Broker>,
    session: &Session,
    r: DescribeAclsRequest,
    _version: i16,
) -> DescribeAclsResponse {
    let failed = |error: ResponseError, message: &str| {
        DescribeAclsResponse::default().with_error_code(error.code()).with_error_message(Some(text(message)))
    };
    if !broker.authorizer_enabled() {
        return failed(ResponseError::SecurityDisabled, NO_AUTHORIZER);
    }
    if !broker.authorize_cluster(session, AclOperation::Describe) {
        return failed(ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    let f = match filter(
        r.resource_type_filter,
        &r.resource_name_filter,
        r.pattern_type_filter,
        &r.principal_filter,
        &r.host_filter,
        r.operation,
        r.permission_type,
    ) {
        Ok(f) => f,
        Err(message) => return failed(ResponseError::InvalidRequest, &message),
    };
    let image = broker.controller.image();
    let mut by_resource: BTreeMap<(i8, &str, i8), Vec<describe_acls_response::AclDescription>> = BTreeMap::new();
    for acl in image.acls().iter().map(|a| &a.binding).filter(|b| f.matches(b)) {
        by_resource.entry((acl.resource_type.code(), &acl.resource_name, acl.pattern_type.code())).or_default().push(
            describe_acls_response::AclDescription::default()
                .with_principal(text(&acl.principal))
                .with_host(text(&acl.host))
                .with_operation(acl.operation.code())
                .with_permission_type(acl.permission.code()),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            describe_acls_response::DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(text(name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub fn delete(broker: &Arc<Broker>, session: &Session, r: DeleteAclsRequest, _version: i16) -> DeleteAclsResponse {
    let failed = |error: ResponseError, message: &str| {
        let results = r
            .filters
            .iter()
            .map(|_| {
                delete_acls_response::DeleteAclsFilterResult::default()
                    .with_error_code(error.code())
                    .with_error_message(Some(text(message)))
            })
            .collect();
        DeleteAclsResponse::default().with_filter_results(results)
    };
    if !broker.authorizer_enabled() {
        return failed(ResponseError::SecurityDisabled, NO_AUTHORIZER);
    }
    if !broker.authorize_cluster(session, AclOperation::Alter) {
        return failed(ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    let image = broker.controller.image();
    let mut results = Vec::with_capacity(r.filters.len());
    let mut ids = Vec::new();
    for d in &r.filters {
        let f = filter(
            d.resource_type_filter,
            &d.resource_name_filter,
            d.pattern_type_filter,
            &d.principal_filter,
            &d.host_filter,
            d.operation,
            d.permission_type,
        );
        let result = match f {
            Err(message) => delete_acls_response::DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(text(&message))),
            Ok(f) => {
                let matching = image
                    .acls()
                    .iter()
                    .filter(|a| f.matches(&a.binding))
                    .map(|a| {
                        ids.push(a.id);
                        let b = &a.binding;
                        delete_acls_response::DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(text(&b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(text(&b.principal))
                            .with_host(text(&b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect();
                delete_acls_response::DeleteAclsFilterResult::default().with_matching_acls(matching)
            }
        };
        results.push(result);
    }
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        if let Err(e) = broker.controller.delete_acls(ids) {
            for result in results.iter_mut().filter(|r| r.error_code == 0) {
                result.error_code = e.error.code();
                result.error_message = Some(text(&e.message));
                result.matching_acls.clear();
            }
        }
    }
    DeleteAclsResponse::default().with_filter_results(results)
}
