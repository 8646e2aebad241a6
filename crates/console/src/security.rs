//! The security section: ACLs (`/acls`: DescribeAcls, CreateAcls,
//! DeleteAcls), SCRAM users (`/users`: DescribeUserScramCredentials,
//! AlterUserScramCredentials; the salt is generated here, the password is
//! only ever in a POST body and never logged or echoed) and client quotas
//! (`/quotas`: DescribeClientQuotas, AlterClientQuotas). Every operation is
//! a Kafka request as the console's user, so the broker's ACLs decide.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Form, Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Json;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest,
    DescribeAclsRequest, DescribeClientQuotasRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use vltava_metadata::{AclOperation, AclPermission, PatternType, ResourceType};
use vltava_security::sasl::{ScramCredential, ScramMechanism};

use crate::error::{ApiResult, ConsoleError, PageError, PageResult};
use crate::groups::{confirm_form, field, notice};
use crate::layout::{self, url_encode};
use crate::{Ctx, Routes};

/// Kafka's SECURITY_DISABLED: no authorizer is configured.
const SECURITY_DISABLED: i16 = 54;
/// The iterations of a SCRAM credential made from the form by default.
const DEFAULT_ITERATIONS: i32 = 8192;
/// The quota keys Kafka knows.
const QUOTA_KEYS: &[&str] = &[
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
    "connection_creation_rate",
];

pub fn routes() -> Routes {
    Routes::new()
        .route("/acls", get(acls_page).post(acl_create_post))
        .route("/acls/delete", get(acl_delete_page).post(acl_delete_post))
        .route("/api/v1/acls", get(acls_api).post(acl_create_api).delete(acl_delete_api))
        .route("/users", get(users_page).post(user_post))
        .route("/users/{name}/delete", get(user_delete_page).post(user_delete_post))
        .route("/api/v1/users", get(users_api).post(user_api))
        .route("/api/v1/users/{name}", axum::routing::delete(user_delete_api))
        .route("/quotas", get(quotas_page).post(quota_post))
        .route("/api/v1/quotas", get(quotas_api).post(quota_api))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn done(path: &str, what: &str) -> Response {
    Redirect::to(&format!("{path}?done={}", url_encode(what))).into_response()
}

fn page_or<T>(r: Result<T, ConsoleError>, ok: impl FnOnce(T) -> Response) -> Response {
    match r {
        Ok(v) => ok(v),
        Err(e) => PageError(e).into_response(),
    }
}

// ------------------------------------------------------------------ ACLs

/// One ACL binding, with Kafka's names (`TOPIC`, `LITERAL`, `READ`, `ALLOW`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Acl {
    pub resource_type: String,
    pub resource_name: String,
    #[serde(default = "literal")]
    pub pattern_type: String,
    pub principal: String,
    #[serde(default = "star")]
    pub host: String,
    pub operation: String,
    #[serde(default = "allow")]
    pub permission: String,
}

fn literal() -> String {
    "LITERAL".into()
}
fn star() -> String {
    "*".into()
}
fn allow() -> String {
    "ALLOW".into()
}

#[derive(Serialize, Debug)]
pub struct AclList {
    /// False when the broker has no authorizer (DescribeAcls answered
    /// SECURITY_DISABLED): there are no ACLs to list.
    pub authorizer: bool,
    pub acls: Vec<Acl>,
}

/// An ACL's codes, checked: (resource type, pattern, operation, permission).
fn acl_codes(a: &Acl) -> Result<(i8, i8, i8, i8), ConsoleError> {
    let rt = ResourceType::parse(&a.resource_type)
        .filter(|t| *t != ResourceType::Any)
        .ok_or_else(|| ConsoleError::bad_request(format!("unknown resource type {:?}", a.resource_type)))?;
    let pt = PatternType::parse(&a.pattern_type)
        .filter(|t| matches!(t, PatternType::Literal | PatternType::Prefixed))
        .ok_or_else(|| ConsoleError::bad_request(format!("pattern type {:?}: LITERAL or PREFIXED", a.pattern_type)))?;
    let op = AclOperation::parse(&a.operation)
        .filter(|o| *o != AclOperation::Any)
        .ok_or_else(|| ConsoleError::bad_request(format!("unknown operation {:?}", a.operation)))?;
    let perm = AclPermission::parse(&a.permission)
        .filter(|p| *p != AclPermission::Any)
        .ok_or_else(|| ConsoleError::bad_request(format!("permission {:?}: ALLOW or DENY", a.permission)))?;
    if a.resource_name.is_empty() {
        return Err(ConsoleError::bad_request("a resource name is needed (* for every resource)"));
    }
    if !a.principal.contains(':') {
        return Err(ConsoleError::bad_request(format!(
            "principal {:?}: expected Type:name, e.g. User:alice",
            a.principal
        )));
    }
    Ok((rt.code(), pt.code(), op.code(), perm.code()))
}

async fn acl_list(ctx: &Ctx) -> Result<AclList, ConsoleError> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(ResourceType::Any.code())
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(PatternType::Any.code())
        .with_operation(AclOperation::Any.code())
        .with_permission_type(AclPermission::Any.code());
    let r = ctx.call(request).await?;
    if r.error_code == SECURITY_DISABLED {
        return Ok(AclList { authorizer: false, acls: Vec::new() });
    }
    ConsoleError::check(r.error_code, "describe ACLs", r.error_message.as_deref())?;
    let name = |f: Option<&'static str>| f.unwrap_or("UNKNOWN").to_string();
    let mut acls = Vec::new();
    for res in r.resources {
        for a in res.acls {
            acls.push(Acl {
                resource_type: name(ResourceType::from_code(res.resource_type).map(|t| t.name())),
                resource_name: res.resource_name.to_string(),
                pattern_type: name(PatternType::from_code(res.pattern_type).map(|t| t.name())),
                principal: a.principal.to_string(),
                host: a.host.to_string(),
                operation: name(AclOperation::from_code(a.operation).map(|t| t.name())),
                permission: name(AclPermission::from_code(a.permission_type).map(|t| t.name())),
            });
        }
    }
    acls.sort_by(|a, b| {
        (&a.resource_type, &a.resource_name, &a.principal, &a.operation).cmp(&(
            &b.resource_type,
            &b.resource_name,
            &b.principal,
            &b.operation,
        ))
    });
    Ok(AclList { authorizer: true, acls })
}

async fn acl_create(ctx: &Ctx, a: &Acl) -> Result<(), ConsoleError> {
    let (rt, pt, op, perm) = acl_codes(a)?;
    let request = CreateAclsRequest::default().with_creations(vec![AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(s(&a.resource_name))
        .with_resource_pattern_type(pt)
        .with_principal(s(&a.principal))
        .with_host(s(&a.host))
        .with_operation(op)
        .with_permission_type(perm)]);
    let r = ctx.call(request).await?;
    for res in r.results {
        ConsoleError::check(res.error_code, "create the ACL", res.error_message.as_deref())?;
    }
    settle(|| has_acl(ctx, a)).await;
    Ok(())
}

/// Deletes exactly binding `a`; how many bindings were deleted.
async fn acl_delete(ctx: &Ctx, a: &Acl) -> Result<usize, ConsoleError> {
    let (rt, pt, op, perm) = acl_codes(a)?;
    let request = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(Some(s(&a.resource_name)))
        .with_pattern_type_filter(pt)
        .with_principal_filter(Some(s(&a.principal)))
        .with_host_filter(Some(s(&a.host)))
        .with_operation(op)
        .with_permission_type(perm)]);
    let r = ctx.call(request).await?;
    let mut deleted = 0;
    for f in r.filter_results {
        ConsoleError::check(f.error_code, "delete the ACL", f.error_message.as_deref())?;
        for m in f.matching_acls {
            ConsoleError::check(m.error_code, "delete the ACL", m.error_message.as_deref())?;
            deleted += 1;
        }
    }
    if deleted == 0 {
        return Err(ConsoleError::not_found("no such ACL"));
    }
    settle(|| async { !has_acl(ctx, a).await }).await;
    Ok(deleted)
}

/// Waits (up to 3 s) until `done()` holds: writes go through the
/// controller, and the page shown next should already list them.
async fn settle<F, Fut>(mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..60 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether `list` holds binding `a` (names in any case).
async fn has_acl(ctx: &Ctx, a: &Acl) -> bool {
    let Ok(codes) = acl_codes(a) else { return true };
    match acl_list(ctx).await {
        Ok(list) => list.acls.iter().any(|b| {
            acl_codes(b).ok() == Some(codes)
                && b.resource_name == a.resource_name
                && b.principal == a.principal
                && b.host == a.host
        }),
        Err(_) => true,
    }
}

fn acl_of_form(form: &HashMap<String, String>) -> Acl {
    let f = |k: &str, d: &str| field(form, k).unwrap_or(d).to_string();
    Acl {
        resource_type: f("resource_type", ""),
        resource_name: f("resource_name", ""),
        pattern_type: f("pattern_type", "LITERAL"),
        principal: f("principal", ""),
        host: f("host", "*"),
        operation: f("operation", ""),
        permission: f("permission", "ALLOW"),
    }
}

fn acl_query(a: &Acl) -> String {
    [
        ("resource_type", &a.resource_type),
        ("resource_name", &a.resource_name),
        ("pattern_type", &a.pattern_type),
        ("principal", &a.principal),
        ("host", &a.host),
        ("operation", &a.operation),
        ("permission", &a.permission),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", url_encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}

fn options(id: &str, label: &str, values: &[&str], selected: &str) -> Markup {
    html! {
        label { (label)
            select #(id) name=(id) {
                @for v in values { option value=(v) selected[*v == selected] { (v) } }
            }
        }
    }
}

async fn acls_api(ctx: Ctx) -> ApiResult<AclList> {
    Ok(Json(acl_list(&ctx).await?))
}

#[derive(Serialize)]
pub struct Done {
    pub done: String,
}

async fn acl_create_api(ctx: Ctx, body: Result<Json<Acl>, axum::extract::rejection::JsonRejection>) -> ApiResult<Done> {
    let Json(a) = body.map_err(|e| ConsoleError::bad_request(format!("create ACL: {}", e.body_text())))?;
    acl_create(&ctx, &a).await?;
    Ok(Json(Done { done: "created".into() }))
}

async fn acl_delete_api(ctx: Ctx, body: Result<Json<Acl>, axum::extract::rejection::JsonRejection>) -> ApiResult<Done> {
    let Json(a) = body.map_err(|e| ConsoleError::bad_request(format!("delete ACL: {}", e.body_text())))?;
    let n = acl_delete(&ctx, &a).await?;
    Ok(Json(Done { done: format!("deleted {n}") }))
}

async fn acls_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let list = acl_list(&ctx).await?;
    let types: Vec<&str> = ResourceType::ALL.iter().filter(|t| **t != ResourceType::Any).map(|t| t.name()).collect();
    let ops: Vec<&str> = AclOperation::ALL.iter().filter(|t| **t != AclOperation::Any).map(|t| t.name()).collect();
    let body = html! {
        (notice(&q))
        @if !list.authorizer {
            p.notice role="status" #no-authorizer {
                "No authorizer is configured on this cluster (authorizer.class.name is not set): every principal may do everything, and there are no ACLs."
            }
        } @else {
            form.row role="search" onsubmit="return false" {
                label for="acl-filter" { "Filter ACLs" }
                input #acl-filter type="search" data-filter-table="acls" placeholder="principal, topic, operation…";
            }
            div.table-wrap { table.sortable #acls {
                thead { tr { th { "Resource type" } th { "Resource name" } th { "Pattern" } th { "Principal" } th { "Host" } th { "Operation" } th { "Permission" } th data-nosort { span.sr-only { "Actions" } } } }
                tbody { @for a in &list.acls { tr {
                    td { (a.resource_type) } td.mono { (a.resource_name) } td { (a.pattern_type) }
                    td.mono { (a.principal) } td { (a.host) } td { (a.operation) }
                    td class=(if a.permission == "DENY" { "bad" } else { "" }) { (a.permission) }
                    td { a href={ "/acls/delete?" (acl_query(a)) } aria-label={ "Delete the ACL " (a.principal) " " (a.operation) " " (a.resource_name) } { "Delete…" } }
                } } }
            } }
            @if list.acls.is_empty() { p.muted { "No ACLs." } }
            h2 { "Create an ACL" }
            form.row method="post" action="/acls" {
                (options("resource_type", "Resource type", &types, "TOPIC"))
                label { "Resource name" input #resource_name name="resource_name" required placeholder="* for all"; }
                (options("pattern_type", "Pattern", &["LITERAL", "PREFIXED"], "LITERAL"))
                label { "Principal" input #principal name="principal" required placeholder="User:alice"; }
                label { "Host" input #host name="host" value="*"; }
                (options("operation", "Operation", &ops, "READ"))
                (options("permission", "Permission", &["ALLOW", "DENY"], "ALLOW"))
                button type="submit" { "Create ACL" }
            }
        }
    };
    Ok(layout::page(&ctx, "/acls", "ACLs", body))
}

async fn acl_create_post(ctx: Ctx, Form(form): Form<HashMap<String, String>>) -> Response {
    let a = acl_of_form(&form);
    page_or(acl_create(&ctx, &a).await, |_| {
        done(
            "/acls",
            &format!(
                "Created: {} {} {} on {} {}",
                a.permission, a.principal, a.operation, a.resource_type, a.resource_name
            ),
        )
    })
}

async fn acl_delete_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let a = acl_of_form(&q);
    acl_codes(&a)?;
    let body = html! {
        p { a href="/acls" { "Back to the ACLs" } }
        dl {
            dt { "Resource" } dd { (a.resource_type) " " span.mono { (a.resource_name) } " (" (a.pattern_type) ")" }
            dt { "Principal" } dd.mono { (a.principal) " from " (a.host) }
            dt { "Operation" } dd { (a.permission) " " (a.operation) }
        }
        (confirm_form("/acls/delete", "resource name", &a.resource_name, "Delete ACL", html! {
            @for (k, v) in [("resource_type", &a.resource_type), ("resource_name", &a.resource_name), ("pattern_type", &a.pattern_type), ("principal", &a.principal), ("host", &a.host), ("operation", &a.operation), ("permission", &a.permission)] {
                input type="hidden" name=(k) value=(v);
            }
        }))
    };
    Ok(layout::page(&ctx, "/acls", "Delete an ACL", body))
}

async fn acl_delete_post(ctx: Ctx, Form(form): Form<HashMap<String, String>>) -> Response {
    let a = acl_of_form(&form);
    if field(&form, "confirm") != Some(a.resource_name.as_str()) || a.resource_name.is_empty() {
        return PageError(ConsoleError::bad_request(format!(
            "to delete the ACL, type its resource name ({}) in the confirmation field; nothing was deleted",
            a.resource_name
        )))
        .into_response();
    }
    page_or(acl_delete(&ctx, &a).await, |_| {
        done("/acls", &format!("Deleted the ACL of {} on {}", a.principal, a.resource_name))
    })
}

// ----------------------------------------------------------------- users

#[derive(Serialize, Debug)]
pub struct ScramUser {
    pub user: String,
    /// (mechanism, iterations); never any secret.
    pub credentials: Vec<UserCredential>,
}

#[derive(Serialize, Debug)]
pub struct UserCredential {
    pub mechanism: String,
    pub iterations: i32,
}

#[derive(Serialize, Debug)]
pub struct UserList {
    pub users: Vec<ScramUser>,
}

/// `POST /api/v1/users`: creates or updates a SCRAM credential.
#[derive(Deserialize)]
pub struct UserUpsert {
    pub name: String,
    #[serde(default = "sha256")]
    pub mechanism: String,
    pub iterations: Option<i32>,
    pub password: String,
}

fn sha256() -> String {
    "SCRAM-SHA-256".into()
}

impl std::fmt::Debug for UserUpsert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpsert")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

async fn user_list(ctx: &Ctx) -> Result<UserList, ConsoleError> {
    let r = ctx.call(DescribeUserScramCredentialsRequest::default().with_users(None)).await?;
    ConsoleError::check(r.error_code, "describe SCRAM users", r.error_message.as_deref())?;
    let mut users = Vec::new();
    for u in r.results {
        if u.error_code != 0 {
            continue;
        }
        let credentials = u
            .credential_infos
            .iter()
            .map(|c| UserCredential {
                mechanism: ScramMechanism::ALL
                    .into_iter()
                    .find(|m| m.code() == c.mechanism)
                    .map(|m| m.name().to_string())
                    .unwrap_or_else(|| format!("UNKNOWN({})", c.mechanism)),
                iterations: c.iterations,
            })
            .collect();
        users.push(ScramUser { user: u.user.to_string(), credentials });
    }
    users.sort_by(|a, b| a.user.cmp(&b.user));
    Ok(UserList { users })
}

async fn user_upsert(ctx: &Ctx, u: &UserUpsert) -> Result<(), ConsoleError> {
    let name = u.name.trim();
    if name.is_empty() {
        return Err(ConsoleError::bad_request("a user name is needed"));
    }
    if u.password.is_empty() {
        return Err(ConsoleError::bad_request("a password is needed"));
    }
    let mechanism = ScramMechanism::parse(u.mechanism.trim()).ok_or_else(|| {
        ConsoleError::bad_request(format!("mechanism {:?}: SCRAM-SHA-256 or SCRAM-SHA-512", u.mechanism))
    })?;
    let iterations = u.iterations.unwrap_or(DEFAULT_ITERATIONS);
    if !(4096..=16384).contains(&iterations) {
        return Err(ConsoleError::bad_request(format!("iterations {iterations}: between 4096 and 16384")));
    }
    let salt = vltava_security::sasl::scram::random_salt();
    let salted = ScramCredential::salted_password(mechanism, u.password.as_bytes(), &salt, iterations);
    let request =
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
            .with_name(s(name))
            .with_mechanism(mechanism.code())
            .with_iterations(iterations)
            .with_salt(salt.into())
            .with_salted_password(salted.into())]);
    let r = ctx.call(request).await?;
    for res in r.results {
        ConsoleError::check(res.error_code, &format!("set the credential of {name}"), res.error_message.as_deref())?;
    }
    let shown = |l: UserList| {
        l.users.iter().any(|u| {
            u.user == name
                && u.credentials.iter().any(|c| c.mechanism == mechanism.name() && c.iterations == iterations)
        })
    };
    settle(|| async { user_list(ctx).await.map(shown).unwrap_or(true) }).await;
    Ok(())
}

/// Deletes the SCRAM credentials of `name` (all its mechanisms).
async fn user_delete(ctx: &Ctx, name: &str) -> Result<(), ConsoleError> {
    let users = user_list(ctx).await?;
    let user = users
        .users
        .into_iter()
        .find(|u| u.user == name)
        .ok_or_else(|| ConsoleError::not_found(format!("no SCRAM user {name}")))?;
    let deletions = user
        .credentials
        .iter()
        .filter_map(|c| ScramMechanism::parse(&c.mechanism))
        .map(|m| ScramCredentialDeletion::default().with_name(s(name)).with_mechanism(m.code()))
        .collect();
    let r = ctx.call(AlterUserScramCredentialsRequest::default().with_deletions(deletions)).await?;
    for res in r.results {
        ConsoleError::check(res.error_code, &format!("delete user {name}"), res.error_message.as_deref())?;
    }
    settle(|| async { user_list(ctx).await.map(|l| l.users.iter().all(|u| u.user != name)).unwrap_or(true) }).await;
    Ok(())
}

async fn users_api(ctx: Ctx) -> ApiResult<UserList> {
    Ok(Json(user_list(&ctx).await?))
}

async fn user_api(
    ctx: Ctx,
    body: Result<Json<UserUpsert>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Done> {
    // the rejection's text never holds the body (no password in errors)
    let Json(u) = body
        .map_err(|_| ConsoleError::bad_request("expected {\"name\", \"password\", \"mechanism\"?, \"iterations\"?}"))?;
    user_upsert(&ctx, &u).await?;
    Ok(Json(Done { done: format!("set the {} credential of {}", u.mechanism, u.name.trim()) }))
}

async fn user_delete_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<Done> {
    user_delete(&ctx, &name).await?;
    Ok(Json(Done { done: format!("deleted {name}") }))
}

async fn users_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let list = user_list(&ctx).await?;
    let body = html! {
        (notice(&q))
        p.muted { "SCRAM users stored in the metadata log (PLAIN users of the listeners' JAAS configs are not listed). Secrets are never shown." }
        form.row role="search" onsubmit="return false" {
            label for="user-filter" { "Filter users" }
            input #user-filter type="search" data-filter-table="users";
        }
        div.table-wrap { table.sortable #users {
            thead { tr { th { "User" } th { "Mechanisms" } th data-nosort { span.sr-only { "Actions" } } } }
            tbody { @for u in &list.users { tr {
                td.mono { (u.user) }
                td { @for c in &u.credentials { (c.mechanism) " (" (c.iterations) " iterations)" br; } }
                td { a href={ "/users/" (url_encode(&u.user)) "/delete" } aria-label={ "Delete user " (u.user) } { "Delete…" } }
            } } }
        } }
        @if list.users.is_empty() { p.muted { "No SCRAM users." } }
        h2 { "Create or update a user" }
        form.stack method="post" action="/users" autocomplete="off" {
            label for="name" { "User name" }
            input #name name="name" required;
            label for="password" { "Password" }
            input #password name="password" type="password" required autocomplete="new-password";
            label for="mechanism" { "Mechanism" }
            select #mechanism name="mechanism" { option value="SCRAM-SHA-256" { "SCRAM-SHA-256" } option value="SCRAM-SHA-512" { "SCRAM-SHA-512" } }
            label for="iterations" { "Iterations (4096-16384)" }
            input #iterations name="iterations" inputmode="numeric" value=(DEFAULT_ITERATIONS);
            div { button type="submit" { "Save user" } }
        }
    };
    Ok(layout::page(&ctx, "/users", "Users", body))
}

async fn user_post(ctx: Ctx, Form(form): Form<HashMap<String, String>>) -> Response {
    let iterations = match field(&form, "iterations").map(|v| v.parse::<i32>()) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(_)) => {
            return PageError(ConsoleError::bad_request("iterations: a whole number between 4096 and 16384"))
                .into_response()
        }
    };
    let u = UserUpsert {
        name: field(&form, "name").unwrap_or("").to_string(),
        mechanism: field(&form, "mechanism").unwrap_or("SCRAM-SHA-256").to_string(),
        iterations,
        password: form.get("password").cloned().unwrap_or_default(),
    };
    page_or(user_upsert(&ctx, &u).await, |_| {
        done("/users", &format!("Saved the {} credential of {}", u.mechanism, u.name))
    })
}

async fn user_delete_page(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let body = html! {
        p { a href="/users" { "Back to the users" } }
        p { "Deleting removes every SCRAM credential of " span.mono { (name) } "; its clients can no longer log in." }
        (confirm_form(&format!("/users/{}/delete", url_encode(&name)), "user's name", &name, "Delete user", html! {}))
    };
    Ok(layout::page(&ctx, "/users", &format!("Delete user {name}"), body))
}

async fn user_delete_post(ctx: Ctx, Path(name): Path<String>, Form(form): Form<HashMap<String, String>>) -> Response {
    if field(&form, "confirm") != Some(name.as_str()) {
        return PageError(ConsoleError::bad_request(format!(
            "to delete the user, type its name ({name}) in the confirmation field; nothing was deleted"
        )))
        .into_response();
    }
    page_or(user_delete(&ctx, &name).await, |_| done("/users", &format!("Deleted user {name}")))
}

// ---------------------------------------------------------------- quotas

/// One entity's quotas: entity type -> name (`null`: the type's default).
#[derive(Serialize, Debug)]
pub struct QuotaEntry {
    pub entity: BTreeMap<String, Option<String>>,
    pub values: BTreeMap<String, f64>,
}

#[derive(Serialize, Debug)]
pub struct QuotaList {
    pub quotas: Vec<QuotaEntry>,
}

/// `POST /api/v1/quotas`: sets `key` to `value`, or removes it (`value` null).
#[derive(Deserialize, Debug)]
pub struct QuotaChange {
    pub entity: BTreeMap<String, Option<String>>,
    pub key: String,
    pub value: Option<f64>,
}

async fn quota_list(ctx: &Ctx) -> Result<QuotaList, ConsoleError> {
    let r = ctx.call(DescribeClientQuotasRequest::default().with_components(Vec::new()).with_strict(false)).await?;
    ConsoleError::check(r.error_code, "describe client quotas", r.error_message.as_deref())?;
    let mut quotas: Vec<QuotaEntry> = r
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| QuotaEntry {
            entity: e
                .entity
                .into_iter()
                .map(|d| (d.entity_type.to_string(), d.entity_name.map(|n| n.to_string())))
                .collect(),
            values: e.values.into_iter().map(|v| (v.key.to_string(), v.value)).collect(),
        })
        .collect();
    quotas.sort_by(|a, b| format!("{:?}", a.entity).cmp(&format!("{:?}", b.entity)));
    Ok(QuotaList { quotas })
}

async fn quota_alter(ctx: &Ctx, c: &QuotaChange) -> Result<(), ConsoleError> {
    if c.entity.is_empty() {
        return Err(ConsoleError::bad_request("an entity is needed (user, client-id or ip)"));
    }
    if c.key.trim().is_empty() {
        return Err(ConsoleError::bad_request("a quota key is needed"));
    }
    if let Some(v) = c.value {
        if !v.is_finite() || v < 0.0 {
            return Err(ConsoleError::bad_request(format!("quota value {v}: a number at least 0")));
        }
    }
    let entity = c
        .entity
        .iter()
        .map(|(t, n)| EntityData::default().with_entity_type(s(t)).with_entity_name(n.as_deref().map(s)))
        .collect();
    let op =
        OpData::default().with_key(s(c.key.trim())).with_value(c.value.unwrap_or(0.0)).with_remove(c.value.is_none());
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default().with_entity(entity).with_ops(vec![op])])
        .with_validate_only(false);
    let r = ctx.call(request).await?;
    for e in r.entries {
        ConsoleError::check(e.error_code, "alter the client quota", e.error_message.as_deref())?;
    }
    let key = c.key.trim();
    let applied = |l: QuotaList| {
        let now = l.quotas.iter().find(|e| e.entity == c.entity).and_then(|e| e.values.get(key).copied());
        now == c.value
    };
    settle(|| async { quota_list(ctx).await.map(applied).unwrap_or(true) }).await;
    Ok(())
}

fn entity_text(e: &BTreeMap<String, Option<String>>) -> String {
    e.iter().map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>"))).collect::<Vec<_>>().join(", ")
}

async fn quotas_api(ctx: Ctx) -> ApiResult<QuotaList> {
    Ok(Json(quota_list(&ctx).await?))
}

async fn quota_api(
    ctx: Ctx,
    body: Result<Json<QuotaChange>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Done> {
    let Json(c) = body.map_err(|e| ConsoleError::bad_request(format!("alter quota: {}", e.body_text())))?;
    quota_alter(&ctx, &c).await?;
    Ok(Json(Done { done: format!("{} {}", if c.value.is_some() { "set" } else { "removed" }, c.key) }))
}

async fn quotas_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let list = quota_list(&ctx).await?;
    let body = html! {
        (notice(&q))
        form.row role="search" onsubmit="return false" {
            label for="quota-filter" { "Filter quotas" }
            input #quota-filter type="search" data-filter-table="quotas";
        }
        div.table-wrap { table.sortable #quotas {
            thead { tr { th { "Entity" } th { "Quota" } th.num { "Value" } th data-nosort { span.sr-only { "Actions" } } } }
            tbody { @for e in &list.quotas { @for (k, v) in &e.values { tr {
                td.mono { (entity_text(&e.entity)) }
                td { (k) }
                td.num data-sort=(v) { (v) }
                td { form.inline method="post" action="/quotas" {
                    @for (t, n) in &e.entity {
                        input type="hidden" name={ "entity_" (t) } value=(n.as_deref().unwrap_or(""));
                        @if n.is_none() { input type="hidden" name={ "default_" (t) } value="1"; }
                    }
                    input type="hidden" name="key" value=(k);
                    input type="hidden" name="remove" value="1";
                    button.secondary type="submit" aria-label={ "Remove " (k) " of " (entity_text(&e.entity)) } { "Remove" }
                } }
            } } } }
        } }
        @if list.quotas.is_empty() { p.muted { "No client quotas." } }
        h2 { "Set a quota" }
        form.row method="post" action="/quotas" {
            (options("entity_type", "Entity type", &["user", "client-id", "ip"], "user"))
            label { "Entity name (empty: the default)" input #entity_name name="entity_name"; }
            (options("key", "Quota", QUOTA_KEYS, "producer_byte_rate"))
            label { "Value" input #value name="value" inputmode="decimal" required; }
            button type="submit" { "Set quota" }
        }
    };
    Ok(layout::page(&ctx, "/quotas", "Quotas", body))
}

fn quota_of_form(form: &HashMap<String, String>) -> Result<QuotaChange, ConsoleError> {
    let mut entity = BTreeMap::new();
    if let Some(t) = field(form, "entity_type") {
        entity.insert(t.to_string(), field(form, "entity_name").map(str::to_string));
    }
    for (k, v) in form {
        if let Some(t) = k.strip_prefix("entity_").filter(|t| *t != "type" && *t != "name") {
            let default = form.contains_key(&format!("default_{t}"));
            entity.insert(t.to_string(), if default { None } else { Some(v.clone()) });
        }
    }
    let key = field(form, "key").unwrap_or("").to_string();
    let value = if form.contains_key("remove") {
        None
    } else {
        let text = field(form, "value").ok_or_else(|| ConsoleError::bad_request("a value is needed"))?;
        Some(text.parse::<f64>().map_err(|_| ConsoleError::bad_request(format!("value {text:?} is not a number")))?)
    };
    Ok(QuotaChange { entity, key, value })
}

async fn quota_post(ctx: Ctx, Form(form): Form<HashMap<String, String>>) -> Response {
    let c = match quota_of_form(&form) {
        Ok(c) => c,
        Err(e) => return PageError(e).into_response(),
    };
    let what = match c.value {
        Some(v) => format!("Set {} = {v} for {}", c.key, entity_text(&c.entity)),
        None => format!("Removed {} of {}", c.key, entity_text(&c.entity)),
    };
    page_or(quota_alter(&ctx, &c).await, |_| done("/quotas", &what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn acl_input_is_checked() {
        let mut a = Acl {
            resource_type: "topic".into(),
            resource_name: "t".into(),
            pattern_type: "literal".into(),
            principal: "User:alice".into(),
            host: "*".into(),
            operation: "read".into(),
            permission: "allow".into(),
        };
        assert_eq!(acl_codes(&a).unwrap(), (2, 3, 3, 3));
        a.principal = "alice".into();
        assert!(acl_codes(&a).unwrap_err().message.contains("Type:name"));
        a.principal = "User:alice".into();
        a.operation = "fly".into();
        assert_eq!(acl_codes(&a).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
