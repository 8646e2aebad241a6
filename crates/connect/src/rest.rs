//! Kafka Connect's REST API (axum), on the worker's `listeners`: the same
//! paths, bodies, status codes and error bodies
//! (`{"error_code":N,"message":"..."}`) as Connect's. Reads answer from
//! this worker's view of the config and status topics; writes are done by
//! the leader (other workers forward them to the leader's URL with
//! `?forward=false`), a task restart by the worker running the task.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value as Json};

use crate::config::{ConfigDef, ConfigErrors, ConfigKey, ConfigType, Props};
use crate::connector::{ConnectorKind, Plugin};
use crate::herder::Herder;
use crate::status::{State, TargetState, TaskId};
use crate::store::{self, ConfigSnapshot};

/// How long a write waits for the worker to be a member (a rebalance).
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// The longest a forwarded request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest request body taken.
const BODY_BYTES_MAX: usize = 4 << 20;

const STALE: &str =
    "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)";

type H = AxState<Arc<Herder>>;

/// A REST error with Connect's body.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error_code": self.0.as_u16(), "message": self.1}))).into_response()
    }
}

type Answer = Result<Response, ApiError>;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}
fn not_found(name: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
}
fn conflict(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::CONFLICT, msg.into())
}
fn internal(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}
fn ok(status: StatusCode, body: Json) -> Answer {
    Ok((status, axum::Json(body)).into_response())
}

pub fn router(herder: Arc<Herder>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list).post(create))
        .route("/connectors/{name}", get(info).delete(delete))
        .route("/connectors/{name}/config", get(get_config).put(put_config).patch(patch_config))
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route("/connectors/{name}/tasks/{task}/restart", post(task_restart))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/restart", post(restart))
        .route("/connectors/{name}/offsets", get(get_offsets).patch(alter_offsets).delete(reset_offsets))
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "HTTP 404 Not Found".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(herder)
}

/// Every error answer in Connect's body, also axum's own (a bad path, a
/// method not allowed, a body too large).
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() {
        format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
    } else {
        text
    };
    ApiError(status, message).into_response()
}

// -- query strings, bodies --------------------------------------------------

fn query_values(q: &Option<String>, key: &str) -> Vec<String> {
    q.as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| v.to_string())
        })
        .collect()
}

fn query_bool(q: &Option<String>, key: &str) -> Result<bool, ApiError> {
    match query_values(q, key).last().map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" || v.is_empty() => Ok(false),
        Some(v) => Err(bad(format!("Invalid value {v} for query parameter {key}: expected true or false"))),
    }
}

fn parse_json(body: &Bytes) -> Result<Json, ApiError> {
    if body.is_empty() {
        return Err(bad("Request body is missing"));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("Cannot deserialize the request body: {e}")))
}

/// A JSON object of strings (a connector config); other values are taken as their text.
fn props_from(v: &Json) -> Result<Props, ApiError> {
    let o = v.as_object().ok_or_else(|| bad("The connector configuration must be a JSON object"))?;
    Ok(o.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect())
}

// -- forwarding to the leader ---------------------------------------------------

/// `None`: handle here (this worker is the leader). Otherwise the leader's
/// answer, or 409 when there is no leader to ask.
async fn to_leader(h: &Herder, method: Method, path: &str, query: &Option<String>, body: Bytes) -> Option<Answer> {
    if !h.wait_joined(JOIN_WAIT).await {
        return Some(Err(conflict(STALE)));
    }
    if h.is_leader() {
        return None;
    }
    if query_values(query, "forward").iter().any(|v| v == "false") {
        return Some(Err(conflict(STALE)));
    }
    let leader_url = h.group.read().assignment.leader_url.clone();
    Some(forward(&leader_url, method, path, query, body).await)
}

async fn forward(base: &str, method: Method, path: &str, query: &Option<String>, body: Bytes) -> Answer {
    let mut q: Vec<String> = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("forward="))
        .map(str::to_string)
        .collect();
    q.push("forward=false".into());
    let url = format!("{base}{path}?{}", q.join("&"));
    tracing::debug!(url, %method, "forwarding");
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder().timeout(FORWARD_TIMEOUT).build().unwrap_or_else(|_| reqwest::Client::new())
    });
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).map_err(|e| internal(e.to_string()))?;
    let resp = client
        .request(method, &url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| conflict(format!("{STALE}: forwarding to {base}: {e}")))?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = resp.bytes().await.map_err(|e| internal(e.to_string()))?;
    let mut headers = HeaderMap::new();
    if !bytes.is_empty() {
        headers.insert("content-type", "application/json".parse().expect("a valid header"));
    }
    Ok((status, headers, bytes.to_vec()).into_response())
}

/// Reads need a worker that joined at least once (it read the config topic).
fn ready(h: &Herder) -> Result<(), ApiError> {
    if h.is_joined() || !h.group.read().member_id.is_empty() {
        Ok(())
    } else {
        Err(conflict(STALE))
    }
}

// -- worker and listing ----------------------------------------------------------

async fn root(AxState(h): H) -> Answer {
    ok(
        StatusCode::OK,
        json!({"version": env!("CARGO_PKG_VERSION"), "commit": "vltava", "kafka_cluster_id": h.kafka_cluster_id}),
    )
}

async fn list(AxState(h): H, RawQuery(q): RawQuery) -> Answer {
    ready(&h)?;
    let snap = h.snapshot();
    let expand = query_values(&q, "expand");
    if expand.is_empty() {
        return ok(StatusCode::OK, json!(snap.connectors.keys().collect::<Vec<_>>()));
    }
    let mut out = serde_json::Map::new();
    for name in snap.connectors.keys() {
        let mut entry = serde_json::Map::new();
        if expand.iter().any(|e| e == "status") {
            entry.insert("status".into(), status_in(&h, &snap, name)?);
        }
        if expand.iter().any(|e| e == "info") {
            entry.insert("info".into(), info_in(&snap, name)?);
        }
        out.insert(name.clone(), Json::Object(entry));
    }
    ok(StatusCode::OK, Json::Object(out))
}

fn kind_of(props: &Props) -> &'static str {
    props.get("connector.class").and_then(|c| crate::connectors::find(c)).map_or("unknown", |p| p.kind().name())
}

fn info_of(h: &Herder, name: &str) -> Result<Json, ApiError> {
    info_in(&h.snapshot(), name)
}

fn info_in(snap: &ConfigSnapshot, name: &str) -> Result<Json, ApiError> {
    let props = snap.connectors.get(name).ok_or_else(|| not_found(name))?;
    let tasks: Vec<Json> = (0..snap.task_count(name)).map(|t| json!({"connector": name, "task": t})).collect();
    Ok(json!({"name": name, "config": props, "tasks": tasks, "type": kind_of(props)}))
}

fn state_json(rec: Option<store::StatusRecord>, id: Option<u32>) -> Json {
    let mut o = serde_json::Map::new();
    if let Some(id) = id {
        o.insert("id".into(), json!(id));
    }
    match rec {
        Some(r) => {
            o.insert("state".into(), json!(r.state.name()));
            o.insert("worker_id".into(), json!(r.worker_id));
            if let Some(t) = r.trace {
                o.insert("trace".into(), json!(t));
            }
        }
        None => {
            o.insert("state".into(), json!(State::Unassigned.name()));
            o.insert("worker_id".into(), Json::Null);
        }
    }
    Json::Object(o)
}

fn status_of(h: &Herder, name: &str) -> Result<Json, ApiError> {
    status_in(h, &h.snapshot(), name)
}

fn status_in(h: &Herder, snap: &ConfigSnapshot, name: &str) -> Result<Json, ApiError> {
    let props = snap.connectors.get(name).ok_or_else(|| not_found(name))?;
    let connector = state_json(h.stores.status(&store::connector_status_key(name)), None);
    let tasks: Vec<Json> = (0..snap.task_count(name) as u32)
        .map(|t| state_json(h.stores.status(&store::task_status_key(&TaskId::new(name, t))), Some(t)))
        .collect();
    Ok(json!({"name": name, "connector": connector, "tasks": tasks, "type": kind_of(props)}))
}

async fn info(AxState(h): H, Path(name): Path<String>) -> Answer {
    ready(&h)?;
    ok(StatusCode::OK, info_of(&h, &name)?)
}

async fn get_config(AxState(h): H, Path(name): Path<String>) -> Answer {
    ready(&h)?;
    let snap = h.snapshot();
    ok(StatusCode::OK, json!(snap.connectors.get(&name).ok_or_else(|| not_found(&name))?))
}

async fn status(AxState(h): H, Path(name): Path<String>) -> Answer {
    ready(&h)?;
    ok(StatusCode::OK, status_of(&h, &name)?)
}

async fn tasks(AxState(h): H, Path(name): Path<String>) -> Answer {
    ready(&h)?;
    let snap = h.snapshot();
    if !snap.connectors.contains_key(&name) {
        return Err(not_found(&name));
    }
    let tasks: Vec<Json> = snap
        .tasks
        .get(&name)
        .map(|ts| {
            ts.iter().enumerate().map(|(i, c)| json!({"id": {"connector": name, "task": i}, "config": c})).collect()
        })
        .unwrap_or_default();
    ok(StatusCode::OK, json!(tasks))
}

fn task_id(name: &str, task: &str) -> Result<TaskId, ApiError> {
    let n =
        task.parse::<u32>().map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("Task {name}-{task} not found")))?;
    Ok(TaskId::new(name, n))
}

async fn task_status(AxState(h): H, Path((name, task)): Path<(String, String)>) -> Answer {
    ready(&h)?;
    let id = task_id(&name, &task)?;
    let snap = h.snapshot();
    if !snap.connectors.contains_key(&name) {
        return Err(not_found(&name));
    }
    if id.task as usize >= snap.task_count(&name) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("No status found for task {id}")));
    }
    ok(StatusCode::OK, state_json(h.stores.status(&store::task_status_key(&id)), Some(id.task)))
}

async fn task_restart(AxState(h): H, Path((name, task)): Path<(String, String)>, RawQuery(q): RawQuery) -> Answer {
    let id = task_id(&name, &task)?;
    if !h.wait_joined(JOIN_WAIT).await {
        return Err(conflict(STALE));
    }
    let snap = h.snapshot();
    if !snap.connectors.contains_key(&name) {
        return Err(not_found(&name));
    }
    if id.task as usize >= snap.task_count(&name) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("Unknown task: {id}")));
    }
    let owner = h.group.read().assignment.owner_of_task(&name, id.task).map(str::to_string);
    match owner {
        Some(url) if url == h.config.advertised_url => {
            if h.restart_local_task(&id).await {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(conflict(STALE))
            }
        }
        Some(url) if !query_values(&q, "forward").iter().any(|v| v == "false") => {
            forward(
                &url,
                Method::POST,
                &format!("/connectors/{}/tasks/{}/restart", enc(&name), id.task),
                &None,
                Bytes::new(),
            )
            .await
        }
        _ => Err(conflict(STALE)),
    }
}

/// A path segment, percent-encoded.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// -- writes (on the leader) ------------------------------------------------------

async fn create(AxState(h): H, RawQuery(q): RawQuery, body: Bytes) -> Answer {
    let req = parse_json(&body)?;
    if let Some(a) = to_leader(&h, Method::POST, "/connectors", &q, body).await {
        return a;
    }
    let name = req["name"].as_str().unwrap_or("").trim().to_string();
    let mut props = props_from(req.get("config").unwrap_or(&Json::Null))?;
    check_name(&name, &mut props)?;
    let initial = match req["initial_state"].as_str() {
        None => None,
        Some("RUNNING") => Some(TargetState::Started),
        Some("PAUSED") => Some(TargetState::Paused),
        Some("STOPPED") => Some(TargetState::Stopped),
        Some(s) => return Err(bad(format!("Invalid initial state {s}: must be one of RUNNING, PAUSED, STOPPED"))),
    };
    if h.snapshot().connectors.contains_key(&name) {
        return Err(conflict(format!("Connector {name} already exists")));
    }
    put_connector(&h, &name, props, initial).await?;
    ok(StatusCode::CREATED, info_of(&h, &name)?)
}

fn check_name(name: &str, props: &mut Props) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(bad("Connector name must not be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("Connector name must not contain ISO control characters"));
    }
    match props.get("name") {
        Some(n) if n != name => {
            Err(bad(format!("Connector name configuration ({n}) doesn't match connector name in the URL ({name})")))
        }
        Some(_) => Ok(()),
        None => {
            props.insert("name".into(), name.to_string());
            Ok(())
        }
    }
}

/// Validates, then writes `connector-NAME` (and a target state when given).
async fn put_connector(h: &Herder, name: &str, props: Props, target: Option<TargetState>) -> Result<(), ApiError> {
    let (plugin, errors) = validate_props(&props).await?;
    if !errors.is_empty() {
        let mut msg =
            format!("Connector configuration is invalid and contains the following {} error(s):", errors.count());
        for m in errors.errors.values().flatten() {
            msg.push('\n');
            msg.push_str(m);
        }
        msg.push_str("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`");
        return Err(bad(msg));
    }
    tracing::info!(connector = name, class = plugin.class(), "writing connector config");
    if let Some(t) = target {
        write(h, &format!("target-state-{name}"), Some(store::target_state_value(t))).await?;
    }
    write(h, &format!("connector-{name}"), Some(json!({ "properties": props }))).await?;
    h.request_rejoin();
    Ok(())
}

async fn write(h: &Herder, key: &str, value: Option<Json>) -> Result<(), ApiError> {
    h.stores.write_config(key, value).await.map_err(|e| internal(format!("{e:#}")))
}

async fn put_config(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery, body: Bytes) -> Answer {
    let req = parse_json(&body)?;
    let mut props = props_from(&req)?;
    check_name(name.trim(), &mut props)?;
    if let Some(a) = to_leader(&h, Method::PUT, &format!("/connectors/{}/config", enc(&name)), &q, body).await {
        return a;
    }
    let created = !h.snapshot().connectors.contains_key(&name);
    put_connector(&h, &name, props, None).await?;
    ok(if created { StatusCode::CREATED } else { StatusCode::OK }, info_of(&h, &name)?)
}

/// KIP-477: the body's keys over the current config (`null` removes one).
async fn patch_config(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery, body: Bytes) -> Answer {
    let req = parse_json(&body)?;
    let patch = req.as_object().ok_or_else(|| bad("The connector configuration patch must be a JSON object"))?.clone();
    if let Some(a) = to_leader(&h, Method::PATCH, &format!("/connectors/{}/config", enc(&name)), &q, body).await {
        return a;
    }
    let mut props = h.snapshot().connectors.get(&name).cloned().ok_or_else(|| not_found(&name))?;
    for (k, v) in patch {
        match v {
            Json::Null => {
                props.remove(&k);
            }
            Json::String(v) => {
                props.insert(k, v);
            }
            v => {
                props.insert(k, v.to_string());
            }
        }
    }
    check_name(&name, &mut props)?;
    put_connector(&h, &name, props, None).await?;
    ok(StatusCode::OK, info_of(&h, &name)?)
}

async fn delete(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery) -> Answer {
    if let Some(a) = to_leader(&h, Method::DELETE, &format!("/connectors/{}", enc(&name)), &q, Bytes::new()).await {
        return a;
    }
    let snap = h.snapshot();
    if !snap.connectors.contains_key(&name) {
        return Err(not_found(&name));
    }
    tracing::info!(connector = name, "deleting connector");
    write(&h, &format!("connector-{name}"), None).await?;
    write(&h, &format!("target-state-{name}"), None).await?;
    h.stores.put_status(store::connector_status_key(&name), None);
    for t in 0..snap.task_count(&name) as u32 {
        h.stores.put_status(store::task_status_key(&TaskId::new(&name, t)), None);
    }
    h.request_rejoin();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_target(h: &Herder, name: &str, verb: &str, q: &Option<String>, target: TargetState) -> Answer {
    if let Some(a) = to_leader(h, Method::PUT, &format!("/connectors/{}/{verb}", enc(name)), q, Bytes::new()).await {
        return a;
    }
    let snap = h.snapshot();
    if !snap.connectors.contains_key(name) {
        return Err(not_found(name));
    }
    tracing::info!(connector = name, target = target.name(), "target state");
    write(h, &format!("target-state-{name}"), Some(store::target_state_value(target))).await?;
    if target == TargetState::Stopped && snap.task_count(name) > 0 {
        // Connect stops a connector by removing its task configs with its target state
        write(h, &format!("commit-{name}"), Some(json!({"tasks": 0}))).await?;
    }
    h.request_rejoin();
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn pause(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery) -> Answer {
    set_target(&h, &name, "pause", &q, TargetState::Paused).await
}
async fn resume(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery) -> Answer {
    set_target(&h, &name, "resume", &q, TargetState::Started).await
}
async fn stop(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery) -> Answer {
    set_target(&h, &name, "stop", &q, TargetState::Stopped).await
}

async fn restart(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery) -> Answer {
    let include_tasks = query_bool(&q, "includeTasks")?;
    let only_failed = query_bool(&q, "onlyFailed")?;
    if let Some(a) = to_leader(&h, Method::POST, &format!("/connectors/{}/restart", enc(&name)), &q, Bytes::new()).await
    {
        return a;
    }
    if !h.snapshot().connectors.contains_key(&name) {
        return Err(not_found(&name));
    }
    let mut answer = status_of(&h, &name)?;
    write(
        &h,
        &format!("restart-connector-{name}"),
        Some(json!({"include-tasks": include_tasks, "only-failed": only_failed})),
    )
    .await?;
    if !include_tasks && !only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // the answer shows what will restart as RESTARTING, as Connect's does
    let restarting = |s: &mut Json| {
        if !only_failed || s["state"] == "FAILED" {
            s["state"] = json!(State::Restarting.name());
        }
    };
    restarting(&mut answer["connector"]);
    if include_tasks {
        if let Some(ts) = answer["tasks"].as_array_mut() {
            ts.iter_mut().for_each(restarting);
        }
    }
    ok(StatusCode::ACCEPTED, answer)
}

// -- offsets (KIP-875) --------------------------------------------------------------

async fn get_offsets(AxState(h): H, Path(name): Path<String>) -> Answer {
    ready(&h)?;
    let snap = h.snapshot();
    let props = snap.connectors.get(&name).ok_or_else(|| not_found(&name))?;
    let offsets: Vec<Json> = match kind_of(props) {
        "sink" => h
            .runtime
            .sink_offsets(&name, props)
            .await
            .map_err(|e| internal(e.to_string()))?
            .into_iter()
            .map(|(t, p, o)| json!({"partition": {"kafka_topic": t, "kafka_partition": p}, "offset": {"kafka_offset": o}}))
            .collect(),
        "source" => h
            .runtime
            .source_offsets(&name)
            .await
            .map_err(|e| internal(e.to_string()))?
            .into_iter()
            .map(|(p, o)| json!({"partition": p, "offset": o}))
            .collect(),
        _ => return Err(bad(class_not_found(props.get("connector.class").map_or("", String::as_str)))),
    };
    ok(StatusCode::OK, json!({ "offsets": offsets }))
}

fn require_stopped(h: &Herder, name: &str) -> Result<Props, ApiError> {
    let snap = h.snapshot();
    let props = snap.connectors.get(name).ok_or_else(|| not_found(name))?;
    if snap.target(name) != TargetState::Stopped || snap.task_count(name) != 0 {
        return Err(bad(format!(
            "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
        )));
    }
    Ok(props.clone())
}

async fn alter_offsets(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery, body: Bytes) -> Answer {
    let req = parse_json(&body)?;
    if let Some(a) = to_leader(&h, Method::PATCH, &format!("/connectors/{}/offsets", enc(&name)), &q, body).await {
        return a;
    }
    let props = require_stopped(&h, &name)?;
    let entries = req["offsets"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("Partitions / offsets need to be provided for an alter offsets request"))?;
    match kind_of(&props) {
        "sink" => {
            let mut offsets = Vec::new();
            for e in entries {
                let p = &e["partition"];
                let topic = p["kafka_topic"].as_str().ok_or_else(|| {
                    bad("Failed to alter consumer group offsets for connector: partitions must have a 'kafka_topic' key with a string value")
                })?;
                let partition = p["kafka_partition"].as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| {
                    bad("Failed to alter consumer group offsets for connector: partitions must have a 'kafka_partition' key with an integer value")
                })?;
                let offset = match &e["offset"] {
                    Json::Null => None,
                    o => Some(o["kafka_offset"].as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                        bad("Failed to alter consumer group offsets for connector: offsets must have a 'kafka_offset' key with a non-negative integer value")
                    })?),
                };
                offsets.push((topic.to_string(), partition, offset));
            }
            h.runtime.alter_sink_offsets(&name, &props, offsets).await.map_err(|e| offsets_error(&e))?;
            ok(StatusCode::OK, json!({"message": "The offsets for this connector have been altered successfully"}))
        }
        "source" => {
            let mut offsets = Vec::new();
            for e in entries {
                let p = e["partition"].as_object().ok_or_else(|| bad("Source partitions must be JSON objects"))?;
                let o = match &e["offset"] {
                    Json::Null => None,
                    Json::Object(o) => Some(o.clone()),
                    _ => return Err(bad("Source offsets must be JSON objects or null")),
                };
                offsets.push((p.clone(), o));
            }
            h.runtime.alter_source_offsets(&name, offsets).await.map_err(|e| offsets_error(&e))?;
            ok(
                StatusCode::OK,
                json!({"message": "The Connect framework-managed offsets for this connector have been altered successfully. However, if this connector manages offsets externally, they will need to be manually altered in the system that the connector uses."}),
            )
        }
        _ => Err(bad(class_not_found(props.get("connector.class").map_or("", String::as_str)))),
    }
}

fn offsets_error(e: &crate::error::ConnectError) -> ApiError {
    match e {
        crate::error::ConnectError::Config(m) | crate::error::ConnectError::Data(m) => bad(m.clone()),
        e => internal(e.to_string()),
    }
}

async fn reset_offsets(AxState(h): H, Path(name): Path<String>, RawQuery(q): RawQuery) -> Answer {
    if let Some(a) =
        to_leader(&h, Method::DELETE, &format!("/connectors/{}/offsets", enc(&name)), &q, Bytes::new()).await
    {
        return a;
    }
    let props = require_stopped(&h, &name)?;
    match kind_of(&props) {
        "sink" => {
            let current = h.runtime.sink_offsets(&name, &props).await.map_err(|e| offsets_error(&e))?;
            let offsets = current.into_iter().map(|(t, p, _)| (t, p, None)).collect();
            h.runtime.alter_sink_offsets(&name, &props, offsets).await.map_err(|e| offsets_error(&e))?;
            ok(StatusCode::OK, json!({"message": "The offsets for this connector have been reset successfully"}))
        }
        "source" => {
            let current = h.runtime.source_offsets(&name).await.map_err(|e| offsets_error(&e))?;
            let offsets = current.into_iter().map(|(p, _)| (p, None)).collect();
            h.runtime.alter_source_offsets(&name, offsets).await.map_err(|e| offsets_error(&e))?;
            ok(
                StatusCode::OK,
                json!({"message": "The Connect framework-managed offsets for this connector have been reset successfully. However, if this connector manages offsets externally, they will need to be manually reset in the system that the connector uses."}),
            )
        }
        _ => Err(bad(class_not_found(props.get("connector.class").map_or("", String::as_str)))),
    }
}

// -- plugins and validation ---------------------------------------------------------

async fn plugins(RawQuery(q): RawQuery) -> Answer {
    let connectors_only = !query_values(&q, "connectorsOnly").iter().any(|v| v.eq_ignore_ascii_case("false"));
    let version = env!("CARGO_PKG_VERSION");
    let mut out: Vec<Json> = crate::connectors::plugins()
        .iter()
        .map(|p| json!({"class": p.class(), "type": p.kind().name(), "version": p.version()}))
        .collect();
    if !connectors_only {
        for c in crate::converter::CLASSES {
            out.push(json!({"class": c, "type": "converter", "version": version}));
        }
        out.push(json!({"class": "org.apache.kafka.connect.storage.SimpleHeaderConverter", "type": "header_converter", "version": version}));
        for c in crate::converter::CLASSES {
            out.push(json!({"class": c, "type": "header_converter", "version": version}));
        }
        for c in crate::transforms::CLASSES {
            let kind = if c.contains(".predicates.") { "predicate" } else { "transformation" };
            out.push(json!({"class": c, "type": kind, "version": version}));
        }
    }
    ok(StatusCode::OK, json!(out))
}

/// Connect's message for a `connector.class` no plugin has.
pub fn class_not_found(class: &str) -> String {
    let available: Vec<String> = crate::connectors::plugins()
        .iter()
        .map(|p| {
            format!(
                "PluginDesc{{klass=class {}, name='{}', version='{}', type={}}}",
                p.class(),
                p.class(),
                p.version(),
                p.kind().name()
            )
        })
        .collect();
    format!(
        "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
        available.join(", ")
    )
}

const ERROR_GROUP: &str = "Error Handling";
const COMMON_GROUP: &str = "Common";

/// The keys every connector takes (Connect's `ConnectorConfig`), with the
/// sink's or the source's own.
fn common_def(kind: ConnectorKind) -> ConfigDef {
    let mut keys = vec![
        ConfigKey::required("name", ConfigType::String, "Globally unique name to use for this connector.").group(COMMON_GROUP),
        ConfigKey::required("connector.class", ConfigType::String, "Name or alias of the class for this connector.")
            .group(COMMON_GROUP),
        ConfigKey::optional("tasks.max", ConfigType::Int, "1", "Maximum number of tasks to use for this connector.")
            .group(COMMON_GROUP),
        ConfigKey::optional("key.converter", ConfigType::Class, "", "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.").group(COMMON_GROUP),
        ConfigKey::optional("value.converter", ConfigType::Class, "", "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.").group(COMMON_GROUP),
        ConfigKey::optional("header.converter", ConfigType::Class, "", "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.").group(COMMON_GROUP),
        ConfigKey::optional("transforms", ConfigType::List, "", "Aliases for the transformations to be applied to records.").group("Transforms"),
        ConfigKey::optional("predicates", ConfigType::List, "", "Aliases for the predicates used by transformations.").group("Predicates"),
        ConfigKey::optional("errors.retry.timeout.ms", ConfigType::Long, "0", "The maximum duration in milliseconds that a failed operation will be reattempted.").group(ERROR_GROUP),
        ConfigKey::optional("errors.retry.delay.max.ms", ConfigType::Long, "60000", "The maximum duration in milliseconds between consecutive retry attempts.").group(ERROR_GROUP),
        ConfigKey::optional("errors.tolerance", ConfigType::String, "none", "Behavior for tolerating errors during connector operation.").group(ERROR_GROUP).one_of(&["none", "all"]),
        ConfigKey::optional("errors.log.enable", ConfigType::Boolean, "false", "If true, write each error and the details of the failed operation and problematic record to the Connect application log.").group(ERROR_GROUP),
        ConfigKey::optional("errors.log.include.messages", ConfigType::Boolean, "false", "Whether to include in the log the Connect record that resulted in a failure.").group(ERROR_GROUP),
    ];
    match kind {
        ConnectorKind::Sink => keys.extend([
            ConfigKey::optional("topics", ConfigType::List, "", "List of topics to consume, separated by commas").group(COMMON_GROUP),
            ConfigKey::optional("topics.regex", ConfigType::String, "", "Regular expression giving topics to consume.").group(COMMON_GROUP),
            ConfigKey::optional("errors.deadletterqueue.topic.name", ConfigType::String, "", "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error when processed by this sink connector, or its transformations or converters.").group(ERROR_GROUP),
            ConfigKey::optional("errors.deadletterqueue.topic.replication.factor", ConfigType::Short, "3", "Replication factor used to create the dead letter queue topic when it doesn't already exist.").group(ERROR_GROUP),
            ConfigKey::optional("errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, "false", "If true, add headers containing error context to the messages written to the dead letter queue.").group(ERROR_GROUP),
        ]),
        ConnectorKind::Source => keys.extend([
            ConfigKey::optional("exactly.once.support", ConfigType::String, "requested", "Permitted values are requested, required.").group("Exactly Once Support").one_of(&["requested", "required"]),
            ConfigKey::optional("transaction.boundary", ConfigType::String, "poll", "Permitted values are: poll, interval, connector.").group("Exactly Once Support").one_of(&["poll", "interval", "connector"]),
        ]),
    }
    ConfigDef::new(keys)
}

/// The plugin and every error of a connector config (definition, plugin
/// rules, transforms, the sink's topics).
async fn validate_props(props: &Props) -> Result<(&'static dyn Plugin, ConfigErrors), ApiError> {
    let class = props.get("connector.class").map(String::as_str).unwrap_or("");
    if class.is_empty() {
        return Err(bad(format!("Connector config {} contains no connector type", display_props(props))));
    }
    let plugin = crate::connectors::find(class).ok_or_else(|| bad(class_not_found(class)))?;
    let mut errors = common_def(plugin.kind()).validate(props);
    errors.merge(plugin.validate(props).await);
    if props.get("tasks.max").and_then(|v| v.trim().parse::<i32>().ok()).is_some_and(|n| n < 1) {
        errors.add(
            "tasks.max",
            format!("Invalid value {} for configuration tasks.max: Value must be at least 1", props["tasks.max"]),
        );
    }
    if plugin.kind() == ConnectorKind::Sink {
        let topics = props.get("topics").is_some_and(|v| !v.trim().is_empty());
        let regex = props.get("topics.regex").is_some_and(|v| !v.trim().is_empty());
        if topics && regex {
            let m = "topics and topics.regex are mutually exclusive options, but both are set.";
            errors.add("topics", m);
            errors.add("topics.regex", m);
        } else if !topics && !regex {
            let m = "Must configure one of topics or topics.regex";
            errors.add("topics", m);
            errors.add("topics.regex", m);
        } else if regex {
            if let Err(e) = regex::Regex::new(&props["topics.regex"]) {
                errors.add(
                    "topics.regex",
                    format!("Invalid value {} for configuration topics.regex: {e}", props["topics.regex"]),
                );
            }
        }
    }
    if let Err(e) = crate::transforms::Transforms::from_config(props) {
        errors.merge(e);
    }
    Ok((plugin, errors))
}

fn display_props(props: &Props) -> String {
    let inner: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

async fn validate(Path(plugin): Path<String>, body: Bytes) -> Answer {
    let req = parse_json(&body)?;
    let mut props = props_from(&req)?;
    let found = crate::connectors::find(&plugin).ok_or_else(|| bad(class_not_found(&plugin)))?;
    match props.get("connector.class") {
        Some(c) if crate::connectors::find(c).map(|p| p.class()) != Some(found.class()) => {
            return Err(bad(format!("Included connector type {c} does not match request type {plugin}")));
        }
        Some(_) => {}
        None => {
            props.insert("connector.class".into(), plugin.clone());
        }
    }
    let (plugin, errors) = validate_props(&props).await?;
    let def = plugin.config_def().extend(&common_def(plugin.kind()));
    ok(StatusCode::OK, def.validate_answer(plugin.class(), &props, &errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sink_configs_need_topics_and_a_known_class() {
        let mut props = Props::new();
        props.insert("name".into(), "s".into());
        props.insert("connector.class".into(), "FileStreamSink".into());
        props.insert("file".into(), "/tmp/x".into());
        let (_, errors) = validate_props(&props).await.ok().expect("a known class");
        assert_eq!(errors.errors["topics"], vec!["Must configure one of topics or topics.regex".to_string()]);
        props.insert("topics".into(), "t".into());
        assert!(validate_props(&props).await.ok().expect("known").1.is_empty());
        props.insert("connector.class".into(), "Nope".into());
        assert!(validate_props(&props).await.is_err());
    }

    #[test]
    fn names_in_the_url_and_the_config_must_agree() {
        let mut props = Props::new();
        assert!(check_name("a", &mut props).is_ok());
        assert_eq!(props["name"], "a");
        props.insert("name".into(), "b".into());
        assert!(check_name("a", &mut props).is_err());
    }
}
