//! The topics section: `/topics` (the list, create), `/topics/{name}`
//! (partitions, configs, consumers, the portal fields), adding partitions,
//! deleting with a confirmation, and the JSON API under `/api/v1/topics`.
//! Writes go through Kafka's own requests as the console's user
//! (CreateTopics, IncrementalAlterConfigs, CreatePartitions, DeleteTopics);
//! the structure comes from the metadata image, filtered by Describe ACLs.
//! `/topics/{name}/messages*` belongs to [`crate::messages`].

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeLogDirsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use vltava_broker::topic_config::{self, PORTAL_DESCRIPTION, PORTAL_DOCS_URL, PORTAL_OWNER, PORTAL_TAGS};
use vltava_metadata::{AclOperation, ResourceType};

use crate::error::{ApiResult, ConsoleError, PageResult};
use crate::lag::{self, GroupLag};
use crate::layout::{self, human_bytes, url_encode};
use crate::{Ctx, Routes};

/// Kafka's ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// How long the console's admin requests may take at the controller.
const TIMEOUT_MS: i32 = 30_000;

pub fn routes() -> Routes {
    Routes::new()
        .route("/topics", get(list_page).post(create_form))
        .route("/topics/{name}", get(topic_page))
        .route("/topics/{name}/configs", post(configs_form))
        .route("/topics/{name}/portal", post(portal_form))
        .route("/topics/{name}/partitions", post(partitions_form))
        .route("/topics/{name}/delete", get(delete_page).post(delete_form))
        .route("/api/v1/topics", get(list_api).post(create_api))
        .route("/api/v1/topics/{name}", get(topic_api).delete(delete_api))
        .route("/api/v1/topics/{name}/configs", axum::routing::patch(configs_api))
        .route("/api/v1/topics/{name}/partitions", post(partitions_api))
        .route("/api/v1/topics/{name}/throughput", get(throughput_api))
}

// ---------------------------------------------------------------- models

/// One row of `/topics`.
#[derive(Serialize, Debug, Clone)]
pub struct TopicRow {
    pub name: String,
    /// Kafka's internal topics (`__consumer_offsets`, ...) and `_schemas`.
    pub internal: bool,
    pub partitions: usize,
    pub replication_factor: usize,
    /// Bytes on disk over every replica (none: no broker answered).
    pub size_bytes: Option<i64>,
    /// The latest sample of `messages_in:{topic}` (none: no sample yet).
    pub messages_per_sec: Option<f64>,
    /// Effective `retention.ms` and `retention.bytes` (-1: unlimited).
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// `vltava.portal.owner` ("" when not set).
    pub owner: String,
}

/// `GET /api/v1/topics`: the topics the user may describe.
#[derive(Serialize, Debug)]
pub struct TopicList {
    pub topics: Vec<TopicRow>,
    /// Whether internal topics are listed (`?internal=true`).
    pub internal_shown: bool,
    /// Internal topics left out.
    pub internal_hidden: usize,
}

/// The portal fields of a topic (`vltava.portal.*` topic configs).
#[derive(Serialize, Debug, Clone, Default)]
pub struct Portal {
    pub description: String,
    pub owner: String,
    pub tags: Vec<String>,
    pub docs_url: String,
}

impl Portal {
    pub fn of(configs: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| configs.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        Portal {
            description: get(PORTAL_DESCRIPTION),
            owner: get(PORTAL_OWNER),
            tags: topic_config::list_items(&get(PORTAL_TAGS))
                .into_iter()
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            docs_url: get(PORTAL_DOCS_URL),
        }
    }
}

/// One partition of `/topics/{name}`.
#[derive(Serialize, Debug, Clone)]
pub struct PartitionRow {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// ListOffsets EARLIEST / LATEST at the leader (none: not answered).
    pub start_offset: Option<i64>,
    pub end_offset: Option<i64>,
    /// The leader replica's bytes on disk.
    pub size_bytes: Option<i64>,
}

/// One config as DescribeConfigs describes it.
#[derive(Serialize, Debug, Clone)]
pub struct ConfigRow {
    pub name: String,
    pub value: Option<String>,
    /// Kafka's source name (`DYNAMIC_TOPIC_CONFIG`, `DEFAULT_CONFIG`, ...).
    pub source: String,
    pub read_only: bool,
    pub sensitive: bool,
    pub documentation: Option<String>,
    /// Where else a value comes from, most specific first.
    pub synonyms: Vec<Synonym>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: String,
}

/// `GET /api/v1/topics/{name}`.
#[derive(Serialize, Debug)]
pub struct TopicDetail {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionRow>,
    pub configs: Vec<ConfigRow>,
    pub consumers: Vec<GroupLag>,
    pub portal: Portal,
    pub size_bytes: Option<i64>,
    pub messages_per_sec: Option<f64>,
}

/// Kafka's name of a `ConfigSource` code.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

fn name_of(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn internal(name: &str) -> bool {
    name.starts_with("__") || name == vltava_broker::schema_registry::SCHEMAS_TOPIC
}

/// The latest messages/s sample of `topic`.
pub fn messages_per_sec(ctx: &Ctx, topic: &str) -> Option<f64> {
    ctx.console.history.points(&format!("messages_in:{topic}")).last().map(|(_, v)| *v)
}

/// Bytes on disk of every replica, by (topic, partition): (node, bytes),
/// from DescribeLogDirs at every live broker (one request each). A broker
/// that fails to answer is left out.
pub async fn replica_sizes(ctx: &Ctx) -> HashMap<(String, i32), Vec<(i32, i64)>> {
    let nodes: Vec<i32> = ctx.broker.controller.image().brokers().filter(|b| !b.fenced).map(|b| b.id).collect();
    let mut out: HashMap<(String, i32), Vec<(i32, i64)>> = HashMap::new();
    for node in nodes {
        let request = DescribeLogDirsRequest::default().with_topics(None);
        let authorize = [(AclOperation::Describe, ResourceType::Cluster, "kafka-cluster")];
        let response = match ctx.call_at(node, request, &authorize).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node, error = %e, "console: DescribeLogDirs failed");
                continue;
            }
        };
        if response.error_code != 0 {
            continue;
        }
        for dir in response.results.into_iter().filter(|d| d.error_code == 0) {
            for t in dir.topics {
                let topic = t.name.0.to_string();
                for p in t.partitions {
                    out.entry((topic.clone(), p.partition_index)).or_default().push((node, p.partition_size));
                }
            }
        }
    }
    out
}

/// The topics the user may describe, from the metadata image: (name, the
/// topic's image).
fn visible_topics(ctx: &Ctx) -> Vec<std::sync::Arc<vltava_metadata::TopicImage>> {
    let image = ctx.broker.controller.image();
    let mut topics: Vec<_> = image
        .topics()
        .filter(|t| ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, &t.name))
        .cloned()
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    topics
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// `true`: list internal topics too.
    pub internal: Option<String>,
    /// Only topics whose name or owner contains this (case-insensitive).
    pub q: Option<String>,
    /// What a form did (shown as a notice).
    pub done: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| matches!(v, "true" | "1" | "on" | "yes"))
}

/// The model of `/topics`.
pub async fn list(ctx: &Ctx, query: &ListQuery) -> Result<TopicList, ConsoleError> {
    let show_internal = flag(&query.internal);
    let q = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let image = ctx.broker.controller.image();
    let levels = ctx.broker.replicas.broker_levels(&image);
    let sizes = replica_sizes(ctx).await;
    let mut by_topic: HashMap<&str, i64> = HashMap::new();
    for ((topic, _), replicas) in &sizes {
        *by_topic.entry(topic.as_str()).or_default() += replicas.iter().map(|(_, s)| s).sum::<i64>();
    }
    let answered = !sizes.is_empty();
    let mut hidden = 0;
    let mut topics = Vec::new();
    for t in visible_topics(ctx) {
        let is_internal = internal(&t.name);
        if is_internal && !show_internal {
            hidden += 1;
            continue;
        }
        let owner = t.configs.get(PORTAL_OWNER).cloned().unwrap_or_default();
        if !q.is_empty() && !t.name.to_lowercase().contains(&q) && !owner.to_lowercase().contains(&q) {
            continue;
        }
        let long = |key: &str| {
            topic_config::def(key)
                .map(|def| topic_config::resolve(def, &t.configs, levels).value)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(-1)
        };
        topics.push(TopicRow {
            internal: is_internal,
            partitions: t.partitions.len(),
            replication_factor: t.partitions.first().map(|p| p.replicas.len()).unwrap_or(0),
            size_bytes: by_topic.get(t.name.as_str()).copied().or(answered.then_some(0)),
            messages_per_sec: messages_per_sec(ctx, &t.name),
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            owner,
            name: t.name.clone(),
        });
    }
    Ok(TopicList { topics, internal_shown: show_internal, internal_hidden: hidden })
}

/// The topic `name` as the user may see it: 404 with
/// UNKNOWN_TOPIC_OR_PARTITION when it does not exist, 403 without Describe.
pub fn topic_image(ctx: &Ctx, name: &str) -> Result<std::sync::Arc<vltava_metadata::TopicImage>, ConsoleError> {
    let image = ctx.broker.controller.image();
    let topic = image.topic(name).cloned();
    match topic {
        None => Err(ConsoleError::kafka(3, &format!("topic {name}"), Some("This server does not host this topic"))),
        Some(_) if !ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, name) => {
            Err(ConsoleError::kafka(29, &format!("topic {name}"), None))
        }
        Some(t) => Ok(t),
    }
}

/// DescribeConfigs of topic `name` with synonyms and documentation.
pub async fn describe_configs(ctx: &Ctx, name: &str) -> Result<Vec<ConfigRow>, ConsoleError> {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)])
        .with_include_synonyms(true)
        .with_include_documentation(true);
    let response = ctx.call(request).await?;
    let context = format!("describe the configs of topic {name}");
    let mut rows = Vec::new();
    for r in response.results {
        ConsoleError::check(r.error_code, &context, r.error_message.as_deref())?;
        for c in r.configs {
            rows.push(ConfigRow {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: source_name(c.config_source).to_string(),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
                documentation: c.documentation.map(|d| d.to_string()),
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|s| Synonym {
                        name: s.name.to_string(),
                        value: s.value.map(|v| v.to_string()),
                        source: source_name(s.source).to_string(),
                    })
                    .collect(),
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The model of `/topics/{name}`.
pub async fn detail(ctx: &Ctx, name: &str) -> Result<TopicDetail, ConsoleError> {
    let t = topic_image(ctx, name)?;
    let keys: Vec<(String, i32)> = t.partitions.iter().map(|p| (name.to_string(), p.partition)).collect();
    let starts = lag::offsets_at(ctx, &keys, -2).await?;
    let ends = lag::offsets_at(ctx, &keys, -1).await?;
    let sizes = replica_sizes(ctx).await;
    let configs = describe_configs(ctx, name).await?;
    let consumers = lag::topic_consumers(ctx, name).await.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "console: consumers of a topic");
        Vec::new()
    });
    let partitions: Vec<PartitionRow> = t
        .partitions
        .iter()
        .map(|p| {
            let key = (name.to_string(), p.partition);
            let replicas = sizes.get(&key);
            PartitionRow {
                partition: p.partition,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                start_offset: starts.get(&key).copied(),
                end_offset: ends.get(&key).copied(),
                size_bytes: replicas
                    .and_then(|r| r.iter().find(|(node, _)| *node == p.leader).or(r.first()).map(|(_, s)| *s)),
            }
        })
        .collect();
    let size_bytes = (!sizes.is_empty()).then(|| {
        sizes.iter().filter(|((topic, _), _)| topic == name).flat_map(|(_, r)| r.iter().map(|(_, s)| s)).sum()
    });
    Ok(TopicDetail {
        topic_id: t.topic_id.to_string(),
        internal: internal(name),
        partitions,
        configs,
        consumers,
        portal: Portal::of(&t.configs),
        size_bytes,
        messages_per_sec: messages_per_sec(ctx, name),
        name: name.to_string(),
    })
}

// ---------------------------------------------------------------- writes

/// `POST /api/v1/topics`.
#[derive(Deserialize, Debug, Default)]
pub struct CreateTopic {
    pub name: String,
    /// -1 or absent: the broker's `num.partitions`.
    #[serde(default)]
    pub partitions: Option<i32>,
    /// -1 or absent: the broker's `default.replication.factor`.
    #[serde(default)]
    pub replication_factor: Option<i16>,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// What CreateTopics answered.
#[derive(Serialize, Debug)]
pub struct Created {
    pub name: String,
    pub topic_id: String,
    pub partitions: i32,
    pub replication_factor: i16,
}

pub async fn create(ctx: &Ctx, c: &CreateTopic) -> Result<Created, ConsoleError> {
    let name = c.name.trim();
    if name.is_empty() {
        return Err(ConsoleError::kafka(17, "create a topic", Some("Topic name is empty")));
    }
    let topic = CreatableTopic::default()
        .with_name(name_of(name))
        .with_num_partitions(c.partitions.unwrap_or(-1))
        .with_replication_factor(c.replication_factor.unwrap_or(-1))
        .with_configs(
            c.configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.trim().to_string()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(TIMEOUT_MS);
    let response = ctx.call(request).await?;
    let context = format!("create topic {name}");
    let r =
        response.topics.into_iter().next().ok_or_else(|| ConsoleError::internal("CreateTopics answered nothing"))?;
    ConsoleError::check(r.error_code, &context, r.error_message.as_deref())?;
    Ok(Created {
        name: name.to_string(),
        topic_id: r.topic_id.to_string(),
        partitions: r.num_partitions,
        replication_factor: r.replication_factor,
    })
}

/// `PATCH /api/v1/topics/{name}/configs`: keys to set and keys to delete
/// (back to their default).
#[derive(Deserialize, Debug, Default)]
pub struct ConfigChange {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub delete: Vec<String>,
}

pub async fn alter_configs(ctx: &Ctx, name: &str, change: &ConfigChange) -> Result<(), ConsoleError> {
    topic_image(ctx, name)?;
    if change.set.is_empty() && change.delete.is_empty() {
        return Err(ConsoleError::bad_request("nothing to change: give \"set\" or \"delete\""));
    }
    let configs = change
        .set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.trim().to_string()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .chain(change.delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.trim().to_string()))
                .with_config_operation(1)
                .with_value(None)
        }))
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(configs)]);
    let response = ctx.call(request).await?;
    let context = format!("alter the configs of topic {name}");
    for r in response.responses {
        ConsoleError::check(r.error_code, &context, r.error_message.as_deref())?;
    }
    Ok(())
}

pub async fn add_partitions(ctx: &Ctx, name: &str, count: i32) -> Result<(), ConsoleError> {
    topic_image(ctx, name)?;
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name_of(name))
            .with_count(count)
            .with_assignments(None)])
        .with_timeout_ms(TIMEOUT_MS);
    let response = ctx.call(request).await?;
    let context = format!("add partitions to topic {name}");
    for r in response.results {
        ConsoleError::check(r.error_code, &context, r.error_message.as_deref())?;
    }
    Ok(())
}

pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), ConsoleError> {
    let t = topic_image(ctx, name)?;
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![name_of(name)])
        .with_topics(vec![DeleteTopicState::default().with_name(Some(name_of(name))).with_topic_id(t.topic_id)])
        .with_timeout_ms(TIMEOUT_MS);
    let response = ctx.call(request).await?;
    let context = format!("delete topic {name}");
    for r in response.responses {
        ConsoleError::check(r.error_code, &context, r.error_message.as_deref())?;
    }
    Ok(())
}

// ---------------------------------------------------------------- API

/// A JSON body parsed here, so that bad JSON answers 400 with a message.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ConsoleError> {
    serde_json::from_slice(body).map_err(|e| ConsoleError::bad_request(format!("invalid JSON body: {e}")))
}

async fn list_api(ctx: Ctx, Query(query): Query<ListQuery>) -> ApiResult<TopicList> {
    Ok(Json(list(&ctx, &query).await?))
}

async fn create_api(ctx: Ctx, body: Bytes) -> Result<(StatusCode, Json<Created>), crate::error::ApiError> {
    let c: CreateTopic = json_body(&body)?;
    Ok((StatusCode::CREATED, Json(create(&ctx, &c).await?)))
}

async fn topic_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<TopicDetail> {
    Ok(Json(detail(&ctx, &name).await?))
}

async fn configs_api(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> ApiResult<Vec<ConfigRow>> {
    let change: ConfigChange = json_body(&body)?;
    alter_configs(&ctx, &name, &change).await?;
    Ok(Json(describe_configs(&ctx, &name).await?))
}

#[derive(Deserialize)]
struct PartitionCount {
    count: i32,
}

#[derive(Serialize)]
struct Partitions {
    name: String,
    partitions: usize,
}

async fn partitions_api(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> ApiResult<Partitions> {
    let PartitionCount { count } = json_body(&body)?;
    add_partitions(&ctx, &name, count).await?;
    let partitions = topic_image(&ctx, &name).map(|t| t.partitions.len()).unwrap_or(count as usize);
    Ok(Json(Partitions { name, partitions: partitions.max(count.max(0) as usize) }))
}

#[derive(Serialize)]
struct Deleted {
    deleted: String,
}

async fn delete_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<Deleted> {
    delete(&ctx, &name).await?;
    Ok(Json(Deleted { deleted: name }))
}

async fn throughput_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<crate::history::Chart> {
    topic_image(&ctx, &name)?;
    let series = format!("messages_in:{name}");
    Ok(Json(ctx.console.history.chart(&[(series.as_str(), "messages/s")])))
}

// ---------------------------------------------------------------- pages

/// `-1` as "unlimited", milliseconds as a duration a person reads.
pub fn human_ms(ms: i64) -> String {
    if ms < 0 {
        return "unlimited".into();
    }
    const UNITS: [(i64, &str); 4] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s")];
    for (size, unit) in UNITS {
        if ms >= size && ms % size == 0 {
            return format!("{} {unit}", ms / size);
        }
    }
    format!("{ms} ms")
}

fn retention(ms: i64, bytes: i64) -> String {
    if bytes < 0 {
        human_ms(ms)
    } else {
        format!("{} / {}", human_ms(ms), human_bytes(bytes as u64))
    }
}

pub fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// `1 topic`, `2 topics`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn size(v: Option<i64>) -> String {
    v.map(|b| human_bytes(b.max(0) as u64)).unwrap_or_else(|| "-".into())
}

fn notice(done: &Option<String>) -> Markup {
    html! {
        @if let Some(done) = done.as_deref().filter(|d| !d.is_empty()) {
            p.notice role="status" { (done) }
        }
    }
}

fn error_notice(error: Option<&ConsoleError>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.error role="alert" { (e.message) }
        }
    }
}

/// The form values of "Create a topic".
#[derive(Deserialize, Default, Debug)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    partitions: String,
    #[serde(default)]
    replication_factor: String,
    #[serde(default)]
    retention_ms: String,
    #[serde(default)]
    cleanup_policy: String,
    /// More configs, `key=value` per line.
    #[serde(default)]
    configs: String,
}

fn render_list(
    ctx: &Ctx,
    model: &TopicList,
    query: &ListQuery,
    form: &CreateForm,
    error: Option<&ConsoleError>,
) -> Markup {
    let body = html! {
        link rel="stylesheet" href=(crate::assets::url("topics.css"));
        (notice(&query.done))
        form.row method="get" action="/topics" role="search" {
            label for="q" { "Search topics" input #q type="search" name="q" value=(query.q.as_deref().unwrap_or("")) data-filter-table="topics-table"; }
            label.check for="internal" {
                input #internal type="checkbox" name="internal" value="true" checked[model.internal_shown];
                " Show internal topics"
            }
            button type="submit" { "Apply" }
        }
        p.muted {
            (plural(model.topics.len(), "topic"))
            @if model.internal_hidden > 0 { " (" (model.internal_hidden) " internal hidden)" }
        }
        div.table-wrap {
            table.sortable #topics-table {
                thead { tr {
                    th { "Name" } th.num { "Partitions" } th.num { "Replication" } th.num { "Size" }
                    th.num { "Messages/s" } th { "Retention" } th { "Owner" }
                } }
                tbody {
                    @for t in &model.topics {
                        tr {
                            td {
                                a href={ "/topics/" (url_encode(&t.name)) } { (t.name) }
                                @if t.internal { " " span.tag-internal { "internal" } }
                            }
                            td.num data-sort=(t.partitions) { (t.partitions) }
                            td.num data-sort=(t.replication_factor) { (t.replication_factor) }
                            td.num data-sort=(t.size_bytes.unwrap_or(-1)) { (size(t.size_bytes)) }
                            td.num data-sort=(t.messages_per_sec.unwrap_or(-1.0)) { (rate(t.messages_per_sec)) }
                            td data-sort=(t.retention_ms) { (retention(t.retention_ms, t.retention_bytes)) }
                            td { (t.owner) }
                        }
                    }
                }
            }
        }
        h2 #create { "Create a topic" }
        (error_notice(error))
        form.stack method="post" action="/topics" {
            label for="new-name" { "Name" }
            input #new-name name="name" required value=(form.name) autocomplete="off";
            label for="new-partitions" { "Partitions (empty: the broker's num.partitions)" }
            input #new-partitions name="partitions" type="number" min="1" value=(form.partitions);
            label for="new-rf" { "Replication factor (empty: the broker's default)" }
            input #new-rf name="replication_factor" type="number" min="1" value=(form.replication_factor);
            label for="new-retention" { "retention.ms (empty: default)" }
            input #new-retention name="retention_ms" value=(form.retention_ms);
            label for="new-cleanup" { "cleanup.policy" }
            select #new-cleanup name="cleanup_policy" {
                @for (v, label) in [("", "default"), ("delete", "delete"), ("compact", "compact"), ("compact,delete", "compact,delete")] {
                    option value=(v) selected[form.cleanup_policy == v] { (label) }
                }
            }
            label for="new-configs" { "More configs (key=value, one per line)" }
            textarea #new-configs name="configs" rows="3" { (form.configs) }
            div { button type="submit" { "Create topic" } }
        }
    };
    layout::page(ctx, "/topics", "Topics", body)
}

async fn list_page(ctx: Ctx, Query(query): Query<ListQuery>) -> PageResult {
    let model = list(&ctx, &query).await?;
    Ok(render_list(&ctx, &model, &query, &CreateForm::default(), None))
}

/// `key=value` lines; a line without `=` is an error.
fn parse_config_lines(text: &str) -> Result<BTreeMap<String, String>, ConsoleError> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| ConsoleError::bad_request(format!("config line \"{line}\" is not key=value")))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn parse_number<T: std::str::FromStr>(what: &str, v: &str) -> Result<Option<T>, ConsoleError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| ConsoleError::bad_request(format!("{what} must be a whole number, not \"{v}\"")))
}

impl CreateForm {
    fn to_request(&self) -> Result<CreateTopic, ConsoleError> {
        let mut configs = parse_config_lines(&self.configs)?;
        if !self.retention_ms.trim().is_empty() {
            configs.insert("retention.ms".into(), self.retention_ms.trim().to_string());
        }
        if !self.cleanup_policy.trim().is_empty() {
            configs.insert("cleanup.policy".into(), self.cleanup_policy.trim().to_string());
        }
        Ok(CreateTopic {
            name: self.name.trim().to_string(),
            partitions: parse_number("Partitions", &self.partitions)?,
            replication_factor: parse_number("Replication factor", &self.replication_factor)?,
            configs,
        })
    }
}

async fn create_form(ctx: Ctx, Form(form): Form<CreateForm>) -> Response {
    let result = match form.to_request() {
        Ok(c) => create(&ctx, &c).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => Redirect::to(&format!(
            "/topics/{}?done={}",
            url_encode(&created.name),
            url_encode(&format!("Created topic {} with {} partitions", created.name, created.partitions))
        ))
        .into_response(),
        Err(e) => {
            let query = ListQuery::default();
            match list(&ctx, &query).await {
                Ok(model) => (e.status, render_list(&ctx, &model, &query, &form, Some(&e))).into_response(),
                Err(_) => crate::error::PageError(e).into_response(),
            }
        }
    }
}

#[derive(Deserialize, Default)]
struct TopicQuery {
    done: Option<String>,
    /// A config to pre-select in the edit form.
    config: Option<String>,
}

fn render_topic(ctx: &Ctx, d: &TopicDetail, query: &TopicQuery, error: Option<&ConsoleError>) -> Markup {
    let enc = url_encode(&d.name);
    let editing = query.config.as_deref().unwrap_or("retention.ms");
    let editing_value = d.configs.iter().find(|c| c.name == editing).and_then(|c| c.value.clone()).unwrap_or_default();
    let total: i64 = d.partitions.iter().filter_map(|p| Some(p.end_offset? - p.start_offset?)).sum();
    let body = html! {
        link rel="stylesheet" href=(crate::assets::url("topics.css"));
        (notice(&query.done))
        (error_notice(error))
        div.cards {
            div.card { div.value { (d.partitions.len()) } div.label { "partitions" } }
            div.card { div.value { (d.partitions.first().map(|p| p.replicas.len()).unwrap_or(0)) } div.label { "replication factor" } }
            div.card { div.value { (total) } div.label { "messages retained" } }
            div.card { div.value { (size(d.size_bytes)) } div.label { "on disk (all replicas)" } }
            div.card { div.value { (rate(d.messages_per_sec)) } div.label { "messages/s" } }
        }
        p.actions {
            a.button href={ "/topics/" (enc) "/messages" } { "Browse messages" }
            a href={ "/catalog/" (enc) } { "Catalog card" }
            @if d.internal { span.tag-internal { "internal topic" } }
        }
        @if !d.portal.description.is_empty() || !d.portal.owner.is_empty() {
            p.portal-summary {
                @if !d.portal.description.is_empty() { (d.portal.description) " " }
                @if !d.portal.owner.is_empty() { span.muted { "Owner: " (d.portal.owner) } }
            }
        }
        h2 #partitions { "Partitions" }
        div.table-wrap {
            table.sortable #partitions-table {
                thead { tr {
                    th.num { "Partition" } th.num { "Leader" } th { "Replicas" } th { "ISR" }
                    th.num { "Start offset" } th.num { "End offset" } th.num { "Messages" } th.num { "Size" }
                } }
                tbody {
                    @for p in &d.partitions {
                        @let under = p.isr.len() < p.replicas.len();
                        tr {
                            td.num data-sort=(p.partition) { (p.partition) }
                            td.num data-sort=(p.leader) {
                                @if p.leader < 0 { span.bad { "none" } } @else { a href={ "/brokers/" (p.leader) } { (p.leader) } }
                            }
                            td { (join(&p.replicas)) }
                            td class=[under.then_some("warn")] { (join(&p.isr)) @if under { " (under-replicated)" } }
                            td.num data-sort=(p.start_offset.unwrap_or(-1)) { (opt(p.start_offset)) }
                            td.num data-sort=(p.end_offset.unwrap_or(-1)) { (opt(p.end_offset)) }
                            @let n = p.end_offset.zip(p.start_offset).map(|(e, s)| e - s);
                            td.num data-sort=(n.unwrap_or(-1)) { (opt(n)) }
                            td.num data-sort=(p.size_bytes.unwrap_or(-1)) { (size(p.size_bytes)) }
                        }
                    }
                }
            }
        }
        form.row method="post" action={ "/topics/" (enc) "/partitions" } {
            label for="partition-count" { "Partitions in total" input #partition-count name="count" type="number" min=(d.partitions.len()) value=(d.partitions.len() + 1) required; }
            button type="submit" { "Add partitions" }
        }

        h2 #consumers { "Consumer groups" }
        @if d.consumers.is_empty() {
            p.muted { "No group has committed offsets on this topic." }
        } @else {
            div.table-wrap {
                table.sortable #consumers-table {
                    thead { tr { th { "Group" } th.num { "Partitions" } th.num { "Lag" } } }
                    tbody {
                        @for g in &d.consumers {
                            tr {
                                td { a href={ "/groups/" (url_encode(&g.group)) } { (g.group) } }
                                td.num { (g.partitions.len()) }
                                td.num.lag data-sort=(g.total_lag) { (g.total_lag) }
                            }
                        }
                    }
                }
            }
        }

        h2 #throughput { "Throughput" }
        div.chart data-chart-url={ "/api/v1/topics/" (enc) "/throughput" } data-chart-refresh="10000" data-chart-title="Messages in per second" {}

        h2 #portal { "Portal" }
        p.muted { "Shown in the " a href="/catalog" { "catalog" } "; stored as the topic configs vltava.portal.*." }
        form.stack method="post" action={ "/topics/" (enc) "/portal" } {
            label for="portal-description" { "Description" }
            textarea #portal-description name="description" rows="3" maxlength="4096" { (d.portal.description) }
            label for="portal-owner" { "Owner" }
            input #portal-owner name="owner" maxlength="256" value=(d.portal.owner);
            label for="portal-tags" { "Tags (comma-separated)" }
            input #portal-tags name="tags" value=(d.portal.tags.join(", "));
            label for="portal-docs" { "Docs link (http or https)" }
            input #portal-docs name="docs_url" type="url" maxlength="2048" value=(d.portal.docs_url);
            div { button type="submit" { "Save portal fields" } }
        }

        h2 #configs { "Configs" }
        form.row #edit method="post" action={ "/topics/" (enc) "/configs" } {
            label for="config-name" { "Config"
                select #config-name name="name" {
                    @for c in d.configs.iter().filter(|c| !c.read_only) {
                        option value=(c.name) selected[c.name == editing] { (c.name) }
                    }
                }
            }
            label for="config-value" { "Value" input #config-value name="value" value=(editing_value); }
            button type="submit" name="action" value="set" { "Set" }
            button.secondary type="submit" name="action" value="delete" { "Reset to default" }
        }
        label for="config-filter" { "Filter configs " input #config-filter type="search" data-filter-table="configs-table"; }
        div.table-wrap {
            table.sortable #configs-table {
                thead { tr { th { "Name" } th { "Value" } th { "Source" } th data-nosort { "Edit" } } }
                tbody {
                    @for c in &d.configs {
                        tr class=[(c.source == "DYNAMIC_TOPIC_CONFIG").then_some("set")] {
                            td { span title=[c.documentation.as_deref()] { (c.name) } }
                            td.mono.value {
                                @if c.sensitive { span.muted { "(sensitive)" } } @else { (c.value.as_deref().unwrap_or("")) }
                            }
                            td {
                                (c.source)
                                @if c.synonyms.len() > 1 {
                                    br;
                                    span.muted { @for s in c.synonyms.iter().skip(1) { (s.name) "=" (s.value.as_deref().unwrap_or("")) " (" (s.source) ") " } }
                                }
                            }
                            td {
                                @if !c.read_only {
                                    a href={ "/topics/" (enc) "?config=" (url_encode(&c.name)) "#edit" } aria-label={ "Edit " (c.name) } { "Edit" }
                                }
                            }
                        }
                    }
                }
            }
        }

        h2 #danger { "Delete" }
        p { a.button.danger href={ "/topics/" (enc) "/delete" } { "Delete this topic…" } }
    };
    layout::page(ctx, "/topics", &d.name, body)
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

async fn topic_page(ctx: Ctx, Path(name): Path<String>, Query(query): Query<TopicQuery>) -> PageResult {
    let d = detail(&ctx, &name).await?;
    Ok(render_topic(&ctx, &d, &query, None))
}

/// After a failed write on the topic page: the page again with the error
/// (and the error's status); the error page when the topic is gone.
async fn topic_error(ctx: &Ctx, name: &str, e: ConsoleError) -> Response {
    match detail(ctx, name).await {
        Ok(d) => (e.status, render_topic(ctx, &d, &TopicQuery::default(), Some(&e))).into_response(),
        Err(_) => crate::error::PageError(e).into_response(),
    }
}

fn done(name: &str, what: &str) -> Response {
    Redirect::to(&format!("/topics/{}?done={}", url_encode(name), url_encode(what))).into_response()
}

#[derive(Deserialize)]
struct ConfigForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    action: String,
}

async fn configs_form(ctx: Ctx, Path(name): Path<String>, Form(form): Form<ConfigForm>) -> Response {
    let key = form.name.trim().to_string();
    let mut change = ConfigChange::default();
    let what = if form.action == "delete" {
        change.delete.push(key.clone());
        format!("Reset {key} to its default")
    } else {
        change.set.insert(key.clone(), form.value.trim().to_string());
        format!("Set {key} to {}", form.value.trim())
    };
    if key.is_empty() {
        return topic_error(&ctx, &name, ConsoleError::bad_request("choose a config to change")).await;
    }
    match alter_configs(&ctx, &name, &change).await {
        Ok(()) => done(&name, &what),
        Err(e) => topic_error(&ctx, &name, e).await,
    }
}

#[derive(Deserialize)]
struct PortalForm {
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    docs_url: String,
}

impl PortalForm {
    /// Set what is given, delete what is empty.
    fn change(&self) -> ConfigChange {
        let tags: Vec<&str> = topic_config::list_items(&self.tags).into_iter().filter(|t| !t.is_empty()).collect();
        let tags = tags.join(",");
        let mut change = ConfigChange::default();
        for (key, value) in [
            (PORTAL_DESCRIPTION, self.description.trim()),
            (PORTAL_OWNER, self.owner.trim()),
            (PORTAL_TAGS, tags.as_str()),
            (PORTAL_DOCS_URL, self.docs_url.trim()),
        ] {
            if value.is_empty() {
                change.delete.push(key.to_string());
            } else {
                change.set.insert(key.to_string(), value.to_string());
            }
        }
        change
    }
}

async fn portal_form(ctx: Ctx, Path(name): Path<String>, Form(form): Form<PortalForm>) -> Response {
    match alter_configs(&ctx, &name, &form.change()).await {
        Ok(()) => done(&name, "Saved the portal fields"),
        Err(e) => topic_error(&ctx, &name, e).await,
    }
}

#[derive(Deserialize)]
struct CountForm {
    #[serde(default)]
    count: String,
}

async fn partitions_form(ctx: Ctx, Path(name): Path<String>, Form(form): Form<CountForm>) -> Response {
    let count = match parse_number::<i32>("The partition count", &form.count) {
        Ok(Some(c)) => c,
        Ok(None) => return topic_error(&ctx, &name, ConsoleError::bad_request("give the partition count")).await,
        Err(e) => return topic_error(&ctx, &name, e).await,
    };
    match add_partitions(&ctx, &name, count).await {
        Ok(()) => done(&name, &format!("The topic now has {count} partitions")),
        Err(e) => topic_error(&ctx, &name, e).await,
    }
}

fn render_delete(ctx: &Ctx, name: &str, error: Option<&str>) -> Markup {
    let enc = url_encode(name);
    let body = html! {
        link rel="stylesheet" href=(crate::assets::url("topics.css"));
        @if let Some(e) = error { p.error role="alert" { (e) } }
        p { "Deleting " strong { (name) } " removes all its partitions and their records on every broker. This cannot be undone." }
        form.stack method="post" action={ "/topics/" (enc) "/delete" } {
            label for="confirm" { "Type the topic's name to confirm" }
            input #confirm name="confirm" autocomplete="off" required;
            div.actions {
                button.danger type="submit" { "Delete topic" }
                a href={ "/topics/" (enc) } { "Cancel" }
            }
        }
    };
    layout::page(ctx, "/topics", &format!("Delete {name}?"), body)
}

async fn delete_page(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    topic_image(&ctx, &name)?;
    Ok(render_delete(&ctx, &name, None))
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

async fn delete_form(ctx: Ctx, Path(name): Path<String>, Form(form): Form<ConfirmForm>) -> Response {
    if let Err(e) = topic_image(&ctx, &name) {
        return crate::error::PageError(e).into_response();
    }
    if form.confirm != name {
        let message = "Nothing was deleted: type the topic's exact name to confirm.";
        return (StatusCode::BAD_REQUEST, render_delete(&ctx, &name, Some(message))).into_response();
    }
    match delete(&ctx, &name).await {
        Ok(()) => {
            Redirect::to(&format!("/topics?done={}", url_encode(&format!("Deleted topic {name}")))).into_response()
        }
        Err(e) => (e.status, render_delete(&ctx, &name, Some(&e.message))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_config_lines() {
        assert_eq!(human_ms(604_800_000), "7 d");
        assert_eq!(human_ms(-1), "unlimited");
        assert_eq!(human_ms(90_000), "90 s");
        assert_eq!(human_ms(1500), "1500 ms");
        let c = parse_config_lines("a=1\n\n b = x=y \n# note").unwrap();
        assert_eq!(c.get("a").map(String::as_str), Some("1"));
        assert_eq!(c.get("b").map(String::as_str), Some("x=y"));
        assert!(parse_config_lines("nope").is_err());
        assert_eq!(parse_number::<i32>("x", " 3 ").unwrap(), Some(3));
        assert!(parse_number::<i32>("x", "3x").is_err());
    }

    #[test]
    fn portal_fields_from_configs() {
        let configs = BTreeMap::from([
            (PORTAL_TAGS.to_string(), "a, b,,c".to_string()),
            (PORTAL_OWNER.to_string(), " team ".to_string()),
        ]);
        let p = Portal::of(&configs);
        assert_eq!(p.tags, vec!["a", "b", "c"]);
        assert_eq!(p.owner, "team");
        let form = PortalForm { description: "".into(), owner: "o".into(), tags: "x , y".into(), docs_url: "".into() };
        let change = form.change();
        assert_eq!(change.set.get(PORTAL_TAGS).map(String::as_str), Some("x,y"));
        assert!(change.delete.contains(&PORTAL_DESCRIPTION.to_string()));
    }
}
