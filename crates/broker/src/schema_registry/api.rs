//! The REST API of Confluent Schema Registry v1 on axum: the same paths,
//! JSON fields, status codes and error bodies
//! (`{"error_code":40401,"message":"Subject 'x' not found."}`), answered
//! as `application/vnd.schemaregistry.v1+json` (any request content type
//! is read as JSON). Reads are answered from this node's state; writes go
//! through the writer (`store`), forwarded to it when it is another node.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use vltava_schema::{Compatibility, ParsedSchema, Reference, SchemaType};

use super::records::{ConfigValue, DeleteSubjectValue, Key, ModeValue, ReferenceJson, SchemaValue};
use super::store::Plan;
use super::{forward, Mode, RegisteredSchema, RegistryState, DEFAULT_COMPATIBILITY};
use crate::Broker;

pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// The largest request body read (a schema with its JSON envelope).
const BODY_BYTES_MAX: usize = 16 << 20;
/// How deep references may nest (a cycle stops here too).
pub const REFERENCE_DEPTH_MAX: usize = 32;
/// The header a forwarded write carries, so that it is not forwarded again.
pub const FORWARDED_HEADER: &str = "x-vltava-forwarded";

/// An error as Confluent's registry answers it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: i32,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: i32, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
        }
    }
    pub fn subject_not_found(s: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{s}' not found."))
    }
    pub fn version_not_found(v: i32) -> Self {
        Self::new(
            404,
            40402,
            format!("Version {} not found.", if v == -1 { "latest".to_string() } else { v.to_string() }),
        )
    }
    pub fn schema_not_found(id: Option<i32>) -> Self {
        Self::new(404, 40403, id.map_or("Schema not found".to_string(), |id| format!("Schema {id} not found")))
    }
    pub fn invalid_schema(reason: impl std::fmt::Display) -> Self {
        Self::new(422, 42201, format!("Invalid schema: {reason}"))
    }
    pub fn not_permitted(message: impl Into<String>) -> Self {
        Self::new(422, 42205, message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, 400, message)
    }
    pub fn store(message: String) -> Self {
        Self::new(500, 50001, message)
    }
    pub fn timeout(message: String) -> Self {
        Self::new(500, 50002, message)
    }
    pub fn forward(message: String) -> Self {
        Self::new(500, 50003, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(401, 401, "Unauthorized")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(self.status, &json!({"error_code": self.code, "message": self.message}))
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

fn ok(body: Value) -> Response {
    reply(StatusCode::OK, &body)
}

type ApiResult = Result<Response, ApiError>;

/// What the handlers serve from.
pub struct ApiState {
    pub broker: Arc<Broker>,
    /// `schema.registry.authentication=basic`: HTTP basic with the SASL users.
    pub basic_auth: bool,
}

/// Binds `addr` (port 0: the system picks) and returns the listener.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind the schema registry (schema.registry.listeners) on {addr}: {e}"))
}

/// Serves the registry on `listener` until `shutdown` flips.
pub fn serve(listener: tokio::net::TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let basic_auth = broker.config.schema_registry_basic_auth;
    let state = Arc::new(ApiState { broker, basic_auth });
    let app = router(state.clone()).layer(axum::middleware::from_fn_with_state(state, super::auth::check));
    tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "schema registry listener failed");
        }
    });
}

fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(list_versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(get_version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(get_version_schema))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(referenced_by))
        .route("/schemas", get(list_schemas))
        .route("/schemas/types", get(|| async { ok(json!(["JSON", "PROTOBUF", "AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_text_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/compatibility/subjects/{subject}/versions", post(check_all))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(check_version))
        .route("/config", get(get_global_config).put(put_global_config).delete(delete_global_config))
        .route("/config/{subject}", get(get_config).put(put_config).delete(delete_config))
        .route("/mode", get(get_global_mode).put(put_global_mode))
        .route("/mode/{subject}", get(get_mode).put(put_mode).delete(delete_mode))
        .route("/contexts", get(contexts))
        .fallback(|| async { ApiError::new(404, 404, "HTTP 404 Not Found") })
        .with_state(state)
}

/// The query string's parameters (percent-decoded, `+` as a space).
struct Query(HashMap<String, String>);
type Params = Query;

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(parse_query(parts.uri.query().unwrap_or(""))))
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A version in a path: a number from 1, `latest` or -1 (the latest).
fn parse_version(v: &str) -> Result<i32, ApiError> {
    match v {
        "latest" | "-1" => Ok(-1),
        _ => v.parse::<i32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::new(
                422,
                42202,
                format!("The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
            )
        }),
    }
}

fn check_subject(s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(ApiError::new(422, 42208, format!("The specified subject '{s}' is not a valid.")));
    }
    Ok(())
}

async fn body_of(req: Request) -> Result<(axum::http::request::Parts, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    Ok((parts, bytes))
}

fn json_body<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// The body of register, lookup and the compatibility check.
#[derive(Deserialize, Default)]
struct SchemaBody {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<ReferenceJson>>,
    id: Option<i32>,
    version: Option<i32>,
}

/// A schema given in a request, parsed on `st`.
struct Candidate {
    ty: SchemaType,
    text: String,
    references: Vec<Reference>,
    parsed: ParsedSchema,
}

fn candidate(st: &RegistryState, body: &SchemaBody, normalize: bool) -> Result<Candidate, ApiError> {
    let text = body
        .schema
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::new(422, 42201, "Empty schema"))?;
    let ty = match body.schema_type.as_deref() {
        None | Some("") => SchemaType::Avro,
        Some(t) => {
            t.parse::<SchemaType>().map_err(|_| ApiError::new(422, 42201, format!("Invalid schema type {t}")))?
        }
    };
    let references: Vec<Reference> = body.references.iter().flatten().map(Reference::from).collect();
    let resolved = st.resolve(&references).map_err(ApiError::invalid_schema)?;
    let parsed = vltava_schema::parse(ty, text, &resolved)
        .map_err(|e| ApiError::invalid_schema(format!("{text}, details: {e}")))?;
    let text = if normalize { parsed.normalized() } else { parsed.canonical() };
    Ok(Candidate { ty, text, references, parsed })
}

fn schema_json(subject: &str, version: i32, schema: &RegisteredSchema) -> Value {
    let mut v = json!({"subject": subject, "version": version, "id": schema.id});
    add_schema_fields(&mut v, schema);
    v
}

fn add_schema_fields(v: &mut Value, schema: &RegisteredSchema) {
    if schema.schema_type != SchemaType::Avro {
        v["schemaType"] = json!(schema.schema_type.as_str());
    }
    if !schema.references.is_empty() {
        v["references"] = json!(schema.references.iter().map(ReferenceJson::from).collect::<Vec<_>>());
    }
    v["schema"] = json!(schema.text);
}

/// Runs a write as the writer, or forwards the request to it.
async fn write(
    st: &ApiState,
    parts: &axum::http::request::Parts,
    body: Bytes,
    plan: impl FnOnce(&RegistryState) -> Result<Plan<Value>, ApiError>,
) -> ApiResult {
    match st.broker.schema_registry.store.write(&st.broker, plan).await {
        Ok(answer) => Ok(ok(answer)),
        Err(Some(e)) => Err(e),
        Err(None) if parts.headers.contains_key(FORWARDED_HEADER) => {
            Err(ApiError::forward("this node is no longer the schema registry's writer; retry".into()))
        }
        Err(None) => forward::forward(&st.broker, parts, body).await,
    }
}

fn read_only(st: &RegistryState, subject: Option<&str>) -> Result<(), ApiError> {
    if st.mode(subject) == Mode::ReadOnly {
        let what = subject.map_or("The registry".to_string(), |s| format!("Subject {s}"));
        return Err(ApiError::not_permitted(format!("{what} is in read-only mode")));
    }
    Ok(())
}

fn record<T: serde::Serialize>(key: Key, value: &T) -> (Key, Option<Vec<u8>>) {
    (key, Some(serde_json::to_vec(value).expect("a value serializes")))
}

// ---- subjects ---------------------------------------------------------

async fn list_subjects(State(st): State<Arc<ApiState>>, Query(q): Params) -> Response {
    let prefix = q.get("subjectPrefix").cloned().unwrap_or_default();
    let names = st.broker.schema_registry.read(|s| s.subject_names(flag(&q, "deleted")));
    ok(json!(names.into_iter().filter(|n| n.starts_with(&prefix)).collect::<Vec<_>>()))
}

async fn list_versions(State(st): State<Arc<ApiState>>, Path(subject): Path<String>, Query(q): Params) -> ApiResult {
    let versions = st.broker.schema_registry.read(|s| s.versions(&subject, flag(&q, "deleted")));
    if versions.is_empty() {
        return Err(ApiError::subject_not_found(&subject));
    }
    Ok(ok(json!(versions.iter().map(|(v, _)| *v).collect::<Vec<_>>())))
}

/// `subject` `version` (-1: latest) and its schema.
fn find_version(
    st: &RegistryState,
    subject: &str,
    version: i32,
    deleted: bool,
) -> Result<(i32, Arc<RegisteredSchema>), ApiError> {
    if st.versions(subject, true).is_empty() {
        return Err(ApiError::subject_not_found(subject));
    }
    let (v, e) = st.version(subject, version, deleted).ok_or_else(|| ApiError::version_not_found(version))?;
    let schema = st.schema(e.id).ok_or_else(|| ApiError::schema_not_found(Some(e.id)))?;
    Ok((v, schema))
}

/// The version a path names (`?deleted=true`: a soft-deleted one too).
fn path_version(
    st: &ApiState,
    subject: &str,
    version: &str,
    q: &HashMap<String, String>,
) -> Result<(i32, Arc<RegisteredSchema>), ApiError> {
    let version = parse_version(version)?;
    st.broker.schema_registry.read(|s| find_version(s, subject, version, flag(q, "deleted")))
}

/// `?format=serialized`: a Protobuf schema as the base64 of its
/// `FileDescriptorProto` (what confluent-kafka's Python client asks for),
/// whatever form it was registered in; other formats and types keep the
/// stored text.
fn with_format(mut v: Value, schema: &RegisteredSchema, q: &HashMap<String, String>) -> Value {
    if let (Some("serialized"), ParsedSchema::Protobuf(p)) = (q.get("format").map(String::as_str), &*schema.parsed) {
        v["schema"] = json!(p.serialized());
    }
    v
}

/// The schema's text as the body (`/schema` endpoints).
fn raw_schema(schema: &RegisteredSchema) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], schema.text.clone()).into_response()
}

type SubjectVersion = Path<(String, String)>;

async fn get_version(
    State(st): State<Arc<ApiState>>,
    Path((subject, version)): SubjectVersion,
    Query(q): Params,
) -> ApiResult {
    let (v, schema) = path_version(&st, &subject, &version, &q)?;
    Ok(ok(with_format(schema_json(&subject, v, &schema), &schema, &q)))
}

async fn get_version_schema(
    State(st): State<Arc<ApiState>>,
    Path((subject, version)): SubjectVersion,
    Query(q): Params,
) -> ApiResult {
    Ok(raw_schema(&path_version(&st, &subject, &version, &q)?.1))
}

async fn referenced_by(State(st): State<Arc<ApiState>>, Path((subject, version)): Path<(String, String)>) -> ApiResult {
    let version = parse_version(&version)?;
    let ids = st.broker.schema_registry.read(|s| {
        let (v, _) = find_version(s, &subject, version, true)?;
        Ok::<_, ApiError>(s.referenced_by(&subject, v))
    })?;
    Ok(ok(json!(ids)))
}

async fn register(
    State(st): State<Arc<ApiState>>,
    Path(subject): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    check_subject(&subject)?;
    let (parts, bytes) = body_of(req).await?;
    let body: SchemaBody = json_body(&bytes)?;
    let normalize = flag(&q, "normalize");
    // already registered under the subject: any node answers
    let known = st.broker.schema_registry.read(|s| {
        let c = candidate(s, &body, normalize).ok()?;
        let id = s.id_of(c.ty, &c.text, &c.references)?;
        let live = s.versions(&subject, false).iter().any(|(_, e)| e.id == id);
        (live && s.mode(Some(&subject)) != Mode::ReadOnly && body.id.is_none_or(|b| b == id)).then_some(id)
    });
    if let Some(id) = known {
        return Ok(ok(json!({"id": id})));
    }
    write(&st, &parts, bytes.clone(), move |s| plan_register(s, &subject, &body, normalize)).await
}

fn plan_register(
    st: &RegistryState,
    subject: &str,
    body: &SchemaBody,
    normalize: bool,
) -> Result<Plan<Value>, ApiError> {
    let mode = st.mode(Some(subject));
    read_only(st, Some(subject))?;
    let c = candidate(st, body, normalize)?;
    let existing = st.id_of(c.ty, &c.text, &c.references);
    let versions = st.versions(subject, true);
    if let Some(id) = existing {
        if versions.iter().any(|(_, e)| e.id == id && !e.deleted) && body.id.is_none_or(|b| b == id) {
            return Ok(Plan { records: Vec::new(), answer: json!({"id": id}) });
        }
    }
    let next_version = versions.last().map_or(1, |(v, _)| v + 1);
    let (id, version) = if mode == Mode::Import {
        let id = match body.id {
            Some(id) if id > 0 => {
                if let Some(other) = st.schema(id) {
                    if other.text != c.text || other.schema_type != c.ty || other.references != c.references {
                        return Err(ApiError::new(
                            422,
                            42207,
                            format!("Overwrite new schema with id {id} is not permitted."),
                        ));
                    }
                }
                id
            }
            Some(id) => return Err(ApiError::new(422, 42207, format!("Invalid schema id {id}"))),
            None => existing.unwrap_or(st.max_id + 1),
        };
        let version = body.version.unwrap_or(next_version);
        if version < 1 {
            return Err(parse_version(&version.to_string()).unwrap_err());
        }
        if st.version(subject, version, true).is_some_and(|(_, e)| e.id != id) {
            return Err(ApiError::not_permitted(format!(
                "Overwrite of subject '{subject}' version {version} is not permitted."
            )));
        }
        (id, version)
    } else {
        if body.id.is_some() {
            return Err(ApiError::not_permitted(format!(
                "Subject {subject} is not in import mode: a schema id may be given only in IMPORT mode"
            )));
        }
        if let Some(v) = body.version.filter(|v| *v != next_version && *v != -1) {
            return Err(ApiError::not_permitted(format!(
                "Version {v} is not the next version {next_version} of subject {subject}"
            )));
        }
        let previous: Vec<ParsedSchema> = st
            .versions(subject, false)
            .iter()
            .filter_map(|(_, e)| st.schema(e.id))
            .map(|s| (*s.parsed).clone())
            .collect();
        let level = st.compatibility(subject);
        let reasons = vltava_schema::check_compatibility(level, &c.parsed, &previous);
        if !reasons.is_empty() {
            return Err(ApiError::new(
                409,
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                    reasons.join(", ")
                ),
            ));
        }
        (existing.unwrap_or(st.max_id + 1), next_version)
    };
    let value = SchemaValue {
        subject: subject.to_string(),
        version,
        id,
        schema_type: SchemaValue::type_field(c.ty),
        references: c.references.iter().map(ReferenceJson::from).collect(),
        schema: c.text,
        deleted: false,
    };
    Ok(Plan {
        records: vec![record(Key::Schema { subject: subject.to_string(), version }, &value)],
        answer: json!({"id": id}),
    })
}

async fn lookup(
    State(st): State<Arc<ApiState>>,
    Path(subject): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    let (_, bytes) = body_of(req).await?;
    let body: SchemaBody = json_body(&bytes)?;
    let deleted = flag(&q, "deleted");
    st.broker.schema_registry.read(|s| {
        let versions = s.versions(&subject, deleted);
        if versions.is_empty() {
            return Err(ApiError::subject_not_found(&subject));
        }
        let c = candidate(s, &body, flag(&q, "normalize"))?;
        let id = s.id_of(c.ty, &c.text, &c.references).ok_or_else(|| ApiError::schema_not_found(None))?;
        let (v, _) = versions.iter().rev().find(|(_, e)| e.id == id).ok_or_else(|| ApiError::schema_not_found(None))?;
        let schema = s.schema(id).ok_or_else(|| ApiError::schema_not_found(None))?;
        Ok(ok(schema_json(&subject, *v, &schema)))
    })
}

async fn delete_version(
    State(st): State<Arc<ApiState>>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    let version = parse_version(&version)?;
    let permanent = flag(&q, "permanent");
    let (parts, bytes) = body_of(req).await?;
    write(&st, &parts, bytes, move |s| {
        read_only(s, Some(&subject))?;
        if s.versions(&subject, true).is_empty() {
            return Err(ApiError::subject_not_found(&subject));
        }
        // a number finds a soft-deleted version too (to say so); `latest` is the latest
        // live one, or for a permanent delete the latest soft-deleted one
        let (v, e) = s
            .version(&subject, version, version != -1 || permanent)
            .ok_or_else(|| ApiError::version_not_found(version))?;
        if !s.referenced_by(&subject, v).is_empty() {
            return Err(ApiError::new(
                422,
                42206,
                format!("One or more references exist to the schema {{subject={subject},version={v}}}."),
            ));
        }
        let key = Key::Schema { subject: subject.clone(), version: v };
        let records = match (permanent, e.deleted) {
            (false, true) => {
                return Err(ApiError::new(
                    404,
                    40406,
                    format!(
                        "Subject '{subject}' Version {v} was soft deleted.Set permanent=true to delete permanently"
                    ),
                ))
            }
            (true, false) => {
                return Err(ApiError::new(
                    404,
                    40407,
                    format!("Subject '{subject}' Version {v} was not deleted first before being permanently deleted"),
                ))
            }
            (true, true) => vec![(key, None)],
            (false, false) => {
                let schema = s.schema(e.id).ok_or_else(|| ApiError::schema_not_found(Some(e.id)))?;
                vec![record(key, &super::schema_value(&subject, v, &schema, true))]
            }
        };
        Ok(Plan { records, answer: json!(v) })
    })
    .await
}

async fn delete_subject(
    State(st): State<Arc<ApiState>>,
    Path(subject): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    let permanent = flag(&q, "permanent");
    let (parts, bytes) = body_of(req).await?;
    write(&st, &parts, bytes, move |s| {
        read_only(s, Some(&subject))?;
        let all = s.versions(&subject, true);
        if all.is_empty() {
            return Err(ApiError::subject_not_found(&subject));
        }
        let live = s.versions(&subject, false);
        if let Some((v, _)) = all.iter().find(|(v, _)| !s.referenced_by(&subject, *v).is_empty()) {
            return Err(ApiError::new(
                422,
                42206,
                format!("One or more references exist to the schema {{subject={subject},version={v}}}."),
            ));
        }
        let mut records = Vec::new();
        if permanent {
            if !live.is_empty() {
                return Err(ApiError::new(
                    404,
                    40405,
                    format!("Subject '{subject}' was not deleted first before being permanently deleted"),
                ));
            }
            records.extend(all.iter().map(|(v, _)| (Key::Schema { subject: subject.clone(), version: *v }, None)));
            if s.subject_compatibility.contains_key(&subject) {
                records.push((Key::Config { subject: Some(subject.clone()) }, None));
            }
            if s.subject_mode.contains_key(&subject) {
                records.push((Key::Mode { subject: Some(subject.clone()) }, None));
            }
            return Ok(Plan { records, answer: json!(all.iter().map(|(v, _)| *v).collect::<Vec<_>>()) });
        }
        if live.is_empty() {
            return Err(ApiError::new(
                404,
                40404,
                format!("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"),
            ));
        }
        for (v, e) in &live {
            let schema = s.schema(e.id).ok_or_else(|| ApiError::schema_not_found(Some(e.id)))?;
            records.push(record(
                Key::Schema { subject: subject.clone(), version: *v },
                &super::schema_value(&subject, *v, &schema, true),
            ));
        }
        let last = live.last().map_or(0, |(v, _)| *v);
        records.push(record(
            Key::DeleteSubject { subject: subject.clone() },
            &DeleteSubjectValue { subject: subject.clone(), version: last },
        ));
        Ok(Plan { records, answer: json!(live.iter().map(|(v, _)| *v).collect::<Vec<_>>()) })
    })
    .await
}

// ---- schemas by id ----------------------------------------------------

fn parse_id(id: &str) -> Result<i32, ApiError> {
    id.parse::<i32>().map_err(|_| ApiError::schema_not_found(None))
}

fn by_id(st: &ApiState, id: &str) -> Result<Arc<RegisteredSchema>, ApiError> {
    let id = parse_id(id)?;
    st.broker.schema_registry.schema_by_id(id).ok_or_else(|| ApiError::schema_not_found(Some(id)))
}

async fn schema_by_id(State(st): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Params) -> ApiResult {
    let schema = by_id(&st, &id)?;
    let mut v = json!({});
    add_schema_fields(&mut v, &schema);
    Ok(ok(with_format(v, &schema, &q)))
}

async fn schema_text_by_id(State(st): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult {
    let schema = by_id(&st, &id)?;
    Ok(raw_schema(&schema))
}

/// `(subject, version)` of the versions with schema `id` (soft-deleted
/// ones with `?deleted=true`).
fn versions_with_id(st: &ApiState, id: &str, q: &HashMap<String, String>) -> Result<Vec<(String, i32)>, ApiError> {
    let schema = by_id(st, id)?;
    let deleted = flag(q, "deleted");
    let all = st.broker.schema_registry.read(|s| s.versions_of_id(schema.id));
    Ok(all.into_iter().filter(|(_, _, d)| deleted || !d).map(|(s, v, _)| (s, v)).collect())
}

async fn subjects_by_id(State(st): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Params) -> ApiResult {
    let subjects: BTreeSet<String> = versions_with_id(&st, &id, &q)?.into_iter().map(|(s, _)| s).collect();
    Ok(ok(json!(subjects)))
}

async fn versions_by_id(State(st): State<Arc<ApiState>>, Path(id): Path<String>, Query(q): Params) -> ApiResult {
    let versions = versions_with_id(&st, &id, &q)?;
    Ok(ok(json!(versions.iter().map(|(s, v)| json!({"subject": s, "version": v})).collect::<Vec<_>>())))
}

async fn list_schemas(State(st): State<Arc<ApiState>>, Query(q): Params) -> Response {
    let prefix = q.get("subjectPrefix").cloned().unwrap_or_default();
    let (deleted, latest_only) = (flag(&q, "deleted"), flag(&q, "latestOnly"));
    let list: Vec<Value> = st.broker.schema_registry.read(|s| {
        let mut out = Vec::new();
        for subject in s.subject_names(deleted).into_iter().filter(|n| n.starts_with(&prefix)) {
            let mut versions = s.versions(&subject, deleted);
            if latest_only {
                versions = versions.split_off(versions.len().saturating_sub(1));
            }
            for (v, e) in versions {
                if let Some(schema) = s.schema(e.id) {
                    out.push(schema_json(&subject, v, &schema));
                }
            }
        }
        out
    });
    ok(json!(list))
}

// ---- compatibility ----------------------------------------------------

async fn check_all(
    State(st): State<Arc<ApiState>>,
    Path(subject): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    check(&st, subject, None, q, req).await
}

async fn check_version(
    State(st): State<Arc<ApiState>>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    let version = parse_version(&version)?;
    check(&st, subject, Some(version), q, req).await
}

async fn check(
    st: &ApiState,
    subject: String,
    version: Option<i32>,
    q: HashMap<String, String>,
    req: Request,
) -> ApiResult {
    let (_, bytes) = body_of(req).await?;
    let body: SchemaBody = json_body(&bytes)?;
    st.broker.schema_registry.read(|s| {
        let c = candidate(s, &body, flag(&q, "normalize"))?;
        let live = s.versions(&subject, false);
        let against: Vec<i32> = match version {
            // a version of a subject without any: nothing to be incompatible with
            Some(-1) | None => live.iter().map(|(_, e)| e.id).collect(),
            Some(v) => {
                if s.versions(&subject, true).is_empty() {
                    return Err(ApiError::subject_not_found(&subject));
                }
                vec![s.version(&subject, v, false).ok_or_else(|| ApiError::version_not_found(v))?.1.id]
            }
        };
        let previous: Vec<ParsedSchema> =
            against.iter().filter_map(|id| s.schema(*id)).map(|x| (*x.parsed).clone()).collect();
        let mut level = s.compatibility(&subject);
        if version.is_none() && !level.transitive() {
            // against all versions: the level's transitive form
            level = match level {
                Compatibility::Backward => Compatibility::BackwardTransitive,
                Compatibility::Forward => Compatibility::ForwardTransitive,
                Compatibility::Full => Compatibility::FullTransitive,
                l => l,
            };
        }
        let reasons = vltava_schema::check_compatibility(level, &c.parsed, &previous);
        let mut answer = json!({"is_compatible": reasons.is_empty()});
        if flag(&q, "verbose") {
            answer["messages"] = json!(reasons);
        }
        Ok(ok(answer))
    })
}

// ---- config -----------------------------------------------------------

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

fn level_of(body: &ConfigBody) -> Result<Compatibility, ApiError> {
    body.compatibility
        .as_deref()
        .or(body.compatibility_level.as_deref())
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                422,
                42203,
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
            )
        })
}

async fn get_global_config(State(st): State<Arc<ApiState>>) -> Response {
    let level = st.broker.schema_registry.read(|s| s.global_compatibility.unwrap_or(DEFAULT_COMPATIBILITY));
    ok(json!({"compatibilityLevel": level.as_str()}))
}

async fn get_config(State(st): State<Arc<ApiState>>, Path(subject): Path<String>, Query(q): Params) -> ApiResult {
    let level = st.broker.schema_registry.read(|s| match s.subject_compatibility.get(&subject) {
        Some(l) => Ok(*l),
        None if flag(&q, "defaultToGlobal") => Ok(s.global_compatibility.unwrap_or(DEFAULT_COMPATIBILITY)),
        None => Err(ApiError::new(
            404,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )),
    })?;
    Ok(ok(json!({"compatibilityLevel": level.as_str()})))
}

async fn put_global_config(State(st): State<Arc<ApiState>>, req: Request) -> ApiResult {
    put_config_of(&st, None, req).await
}

async fn put_config(State(st): State<Arc<ApiState>>, Path(subject): Path<String>, req: Request) -> ApiResult {
    check_subject(&subject)?;
    put_config_of(&st, Some(subject), req).await
}

async fn put_config_of(st: &ApiState, subject: Option<String>, req: Request) -> ApiResult {
    let (parts, bytes) = body_of(req).await?;
    let level = level_of(&json_body::<ConfigBody>(&bytes)?)?;
    write(st, &parts, bytes.clone(), move |_| {
        let value = ConfigValue { subject: subject.clone(), compatibility_level: level.as_str().to_string() };
        Ok(Plan {
            records: vec![record(Key::Config { subject }, &value)],
            answer: json!({"compatibility": level.as_str()}),
        })
    })
    .await
}

async fn delete_global_config(State(st): State<Arc<ApiState>>, req: Request) -> ApiResult {
    let (parts, bytes) = body_of(req).await?;
    write(&st, &parts, bytes, |s| {
        let previous = s.global_compatibility.unwrap_or(DEFAULT_COMPATIBILITY);
        Ok(Plan {
            records: vec![(Key::Config { subject: None }, None)],
            answer: json!({"compatibilityLevel": previous.as_str()}),
        })
    })
    .await
}

async fn delete_config(State(st): State<Arc<ApiState>>, Path(subject): Path<String>, req: Request) -> ApiResult {
    let (parts, bytes) = body_of(req).await?;
    write(&st, &parts, bytes, move |s| {
        let Some(previous) = s.subject_compatibility.get(&subject) else {
            if s.versions(&subject, true).is_empty() {
                return Err(ApiError::subject_not_found(&subject));
            }
            return Err(ApiError::new(
                404,
                40408,
                format!("Subject '{subject}' does not have subject-level compatibility configured"),
            ));
        };
        Ok(Plan {
            records: vec![(Key::Config { subject: Some(subject.clone()) }, None)],
            answer: json!({"compatibilityLevel": previous.as_str()}),
        })
    })
    .await
}

// ---- mode -------------------------------------------------------------

#[derive(Deserialize)]
struct ModeBody {
    mode: Option<String>,
}

async fn get_global_mode(State(st): State<Arc<ApiState>>) -> Response {
    ok(json!({"mode": st.broker.schema_registry.read(|s| s.mode(None)).as_str()}))
}

async fn get_mode(State(st): State<Arc<ApiState>>, Path(subject): Path<String>, Query(q): Params) -> ApiResult {
    let mode = st.broker.schema_registry.read(|s| match s.subject_mode.get(&subject) {
        Some(m) => Ok(*m),
        None if flag(&q, "defaultToGlobal") => Ok(s.mode(None)),
        None => {
            Err(ApiError::new(404, 40409, format!("Subject '{subject}' does not have subject-level mode configured")))
        }
    })?;
    Ok(ok(json!({"mode": mode.as_str()})))
}

async fn put_global_mode(State(st): State<Arc<ApiState>>, Query(q): Params, req: Request) -> ApiResult {
    put_mode_of(&st, None, q, req).await
}

async fn put_mode(
    State(st): State<Arc<ApiState>>,
    Path(subject): Path<String>,
    Query(q): Params,
    req: Request,
) -> ApiResult {
    check_subject(&subject)?;
    put_mode_of(&st, Some(subject), q, req).await
}

async fn put_mode_of(st: &ApiState, subject: Option<String>, q: HashMap<String, String>, req: Request) -> ApiResult {
    let (parts, bytes) = body_of(req).await?;
    let body: ModeBody = json_body(&bytes)?;
    let mode = body.mode.as_deref().and_then(Mode::parse).ok_or_else(|| {
        ApiError::new(422, 42204, "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT.")
    })?;
    let force = flag(&q, "force");
    write(st, &parts, bytes.clone(), move |s| {
        if mode == Mode::Import && !force {
            let used = match &subject {
                None => !s.is_empty(),
                Some(subject) => !s.versions(subject, true).is_empty(),
            };
            if used {
                return Err(ApiError::not_permitted("Cannot import since found existing subjects"));
            }
        }
        let value = ModeValue { subject: subject.clone(), mode: mode.as_str().to_string() };
        Ok(Plan { records: vec![record(Key::Mode { subject }, &value)], answer: json!({"mode": mode.as_str()}) })
    })
    .await
}

async fn delete_mode(State(st): State<Arc<ApiState>>, Path(subject): Path<String>, req: Request) -> ApiResult {
    let (parts, bytes) = body_of(req).await?;
    write(&st, &parts, bytes, move |s| {
        let Some(previous) = s.subject_mode.get(&subject) else {
            return Err(ApiError::subject_not_found(&subject));
        };
        Ok(Plan {
            records: vec![(Key::Mode { subject: Some(subject.clone()) }, None)],
            answer: json!({"mode": previous.as_str()}),
        })
    })
    .await
}

// ---- contexts ---------------------------------------------------------

/// The context of a subject named `:.ctx:subject` (the default one is `.`).
fn context_of(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(':')?;
    let (ctx, _) = rest.split_once(':')?;
    ctx.starts_with('.').then_some(ctx)
}

async fn contexts(State(st): State<Arc<ApiState>>) -> Response {
    let mut contexts: BTreeSet<String> = st
        .broker
        .schema_registry
        .read(|s| s.subject_names(false))
        .iter()
        .filter_map(|s| context_of(s).map(str::to_string))
        .collect();
    contexts.remove(".");
    let mut out = vec![".".to_string()];
    out.extend(contexts);
    ok(json!(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_paths() {
        assert_eq!(parse_version("latest").unwrap(), -1);
        assert_eq!(parse_version("-1").unwrap(), -1);
        assert_eq!(parse_version("3").unwrap(), 3);
        for bad in ["0", "-2", "x", ""] {
            assert_eq!(parse_version(bad).unwrap_err().code, 42202);
        }
    }

    #[test]
    fn query_strings() {
        let q = parse_query("subjectPrefix=a%2Fb&deleted=True&x=%zz+y&flag");
        assert_eq!(q["subjectPrefix"], "a/b");
        assert!(flag(&q, "deleted"));
        assert_eq!(q["x"], "%zz y");
        assert_eq!(q["flag"], "");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn contexts_of_subjects() {
        assert_eq!(context_of(":.ctx:orders"), Some(".ctx"));
        assert_eq!(context_of("orders"), None);
        assert_eq!(context_of(":x:orders"), None);
    }
}
