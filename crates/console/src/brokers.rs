//! The brokers section: `/brokers` (every registered broker with its state,
//! endpoints and leadership counts) and `/brokers/{id}` (its endpoints, log
//! directories and configs with their sources), with their JSON twins
//! `/api/v1/brokers` and `/api/v1/brokers/{id}`.
//!
//! Structure (brokers, partitions) comes from this node's metadata image;
//! log directories and configs are Kafka requests (DescribeLogDirs,
//! DescribeConfigs on the BROKER resource) answered by the broker itself
//! ([`Ctx::call_at`]), as the console's user.

use std::collections::HashMap;

use axum::extract::Path;
use axum::routing::get;
use axum::Json;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeLogDirsRequest};
use kafka_protocol::protocol::StrBytes;
use maud::{html, Markup};
use serde::Serialize;
use vltava_metadata::{AclOperation, MetadataImage, ResourceType};

use crate::error::{ApiResult, ConsoleError, PageResult};
use crate::layout::{self, human_bytes};
use crate::{Ctx, Routes};

/// Kafka's `ConfigResource.Type.BROKER`.
const RESOURCE_BROKER: i8 = 4;

pub fn routes() -> Routes {
    Routes::new()
        .route("/brokers", get(list_page))
        .route("/brokers/{id}", get(detail_page))
        .route("/api/v1/brokers", get(list_api))
        .route("/api/v1/brokers/{id}", get(detail_api))
}

/// One registered broker as the metadata image has it.
#[derive(Serialize, Clone)]
pub struct BrokerSummary {
    pub id: i32,
    /// `host:port` of its first listener.
    pub host: String,
    pub port: u16,
    /// `running` (registered, unfenced) or `fenced`.
    pub state: &'static str,
    pub fenced: bool,
    /// Whether it is a voter of the metadata quorum (a controller).
    pub controller: bool,
    /// Whether it is the quorum's leader (the active controller).
    pub active_controller: bool,
    /// Whether it is the node serving this console.
    pub this_node: bool,
    /// Partitions it leads.
    pub leaders: u64,
    /// Partitions it holds a replica of.
    pub replicas: u64,
    /// Of those, replicas in a failed log directory.
    pub offline_replicas: u64,
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`, known for this node only (the metadata log does not
    /// carry racks).
    pub rack: Option<String>,
}

#[derive(Serialize, Clone)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// Leaders and replicas per broker, over every partition of the image
/// (one pass).
pub fn leadership(image: &MetadataImage) -> HashMap<i32, (u64, u64)> {
    let mut counts: HashMap<i32, (u64, u64)> = HashMap::new();
    for t in image.topics() {
        for p in &t.partitions {
            if p.leader >= 0 {
                counts.entry(p.leader).or_default().0 += 1;
            }
            for r in &p.replicas {
                counts.entry(*r).or_default().1 += 1;
            }
        }
    }
    counts
}

/// Every registered broker, by id.
pub fn summaries(ctx: &Ctx, image: &MetadataImage) -> Vec<BrokerSummary> {
    let status = ctx.broker.controller.quorum().status();
    let counts = leadership(image);
    let this = ctx.broker.config.node_id;
    let mut out: Vec<BrokerSummary> = image
        .brokers()
        .map(|b| {
            let (leaders, replicas) = counts.get(&b.id).copied().unwrap_or_default();
            BrokerSummary {
                id: b.id,
                host: b.host.clone(),
                port: b.port,
                state: if b.fenced { "fenced" } else { "running" },
                fenced: b.fenced,
                controller: status.voters.iter().any(|v| v.node_id == b.id),
                active_controller: status.leader == b.id,
                this_node: b.id == this,
                leaders,
                replicas,
                offline_replicas: b.offline_replicas.len() as u64,
                endpoints: b
                    .endpoints
                    .iter()
                    .map(|e| Endpoint { listener: e.listener.clone(), host: e.host.clone(), port: e.port })
                    .collect(),
                rack: (b.id == this).then(|| ctx.broker.config.static_settings.get("broker.rack").cloned()).flatten(),
            }
        })
        .collect();
    out.sort_by_key(|b| b.id);
    out
}

/// One log directory of a broker.
#[derive(Serialize, Clone)]
pub struct LogDir {
    pub path: String,
    /// Whether it is usable (a failed directory answers KAFKA_STORAGE_ERROR).
    pub online: bool,
    /// The Kafka error of an offline directory.
    pub error: Option<String>,
    /// Bytes of the partitions in it.
    pub size_bytes: u64,
    pub partitions: u64,
    /// The file system's size and free bytes (-1: unknown).
    pub total_bytes: i64,
    pub usable_bytes: i64,
}

/// The log directories of broker `node` (DescribeLogDirs; needs DESCRIBE
/// on the cluster).
pub async fn log_dirs(ctx: &Ctx, node: i32) -> Result<Vec<LogDir>, ConsoleError> {
    let cluster = vltava_broker::authorizer::CLUSTER_NAME;
    let response = ctx
        .call_at(
            node,
            DescribeLogDirsRequest::default().with_topics(None),
            &[(AclOperation::Describe, ResourceType::Cluster, cluster)],
        )
        .await?;
    ConsoleError::check(response.error_code, &format!("describe the log directories of broker {node}"), None)?;
    Ok(response
        .results
        .into_iter()
        .map(|r| {
            let (mut size, mut count) = (0u64, 0u64);
            for t in &r.topics {
                for p in &t.partitions {
                    size += p.partition_size.max(0) as u64;
                    count += 1;
                }
            }
            LogDir {
                path: r.log_dir.to_string(),
                online: r.error_code == 0,
                error: (r.error_code != 0).then(|| crate::error::kafka_error_name(r.error_code)),
                size_bytes: size,
                partitions: count,
                total_bytes: r.total_bytes,
                usable_bytes: r.usable_bytes,
            }
        })
        .collect())
}

/// One config of a broker, as DescribeConfigs answers it.
#[derive(Serialize)]
pub struct Config {
    pub name: String,
    /// `null` for a sensitive one.
    pub value: Option<String>,
    /// Kafka's `ConfigSource` name (`STATIC_BROKER_CONFIG`, ...).
    pub source: &'static str,
    pub read_only: bool,
    pub sensitive: bool,
}

/// Kafka's name of a `ConfigSource` code.
pub fn config_source_name(source: i8) -> &'static str {
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

/// Broker `node`'s configs (DescribeConfigs on the BROKER resource, sent
/// to that broker), by name.
pub async fn configs(ctx: &Ctx, node: i32) -> Result<Vec<Config>, ConsoleError> {
    let cluster = vltava_broker::authorizer::CLUSTER_NAME;
    let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(StrBytes::from_string(node.to_string()))]);
    let response =
        ctx.call_at(node, request, &[(AclOperation::DescribeConfigs, ResourceType::Cluster, cluster)]).await?;
    let result = response
        .results
        .into_iter()
        .next()
        .ok_or_else(|| ConsoleError::internal("DescribeConfigs answered no resource"))?;
    ConsoleError::check(
        result.error_code,
        &format!("describe the configs of broker {node}"),
        result.error_message.as_deref(),
    )?;
    let mut configs: Vec<Config> = result
        .configs
        .into_iter()
        .map(|c| Config {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: config_source_name(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(configs)
}

/// `GET /api/v1/brokers`.
#[derive(Serialize)]
pub struct BrokerList {
    pub brokers: Vec<BrokerSummary>,
    /// The quorum leader's node id (-1: none known).
    pub active_controller: i32,
}

fn list_model(ctx: &Ctx) -> BrokerList {
    let image = ctx.broker.controller.image();
    BrokerList { brokers: summaries(ctx, &image), active_controller: ctx.broker.controller.active_controller() }
}

/// `GET /api/v1/brokers/{id}`: the broker, its log directories and configs
/// (each `null` with an `*_error` when its broker could not answer).
#[derive(Serialize)]
pub struct BrokerDetail {
    pub broker: BrokerSummary,
    pub log_dirs: Option<Vec<LogDir>>,
    pub log_dirs_error: Option<String>,
    pub configs: Option<Vec<Config>>,
    pub configs_error: Option<String>,
}

fn parse_id(raw: &str) -> Result<i32, ConsoleError> {
    raw.parse::<i32>().map_err(|_| ConsoleError::bad_request(format!("a broker id is an integer, not {raw:?}")))
}

async fn detail_model(ctx: &Ctx, raw_id: &str) -> Result<BrokerDetail, ConsoleError> {
    let id = parse_id(raw_id)?;
    let image = ctx.broker.controller.image();
    let broker = summaries(ctx, &image)
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ConsoleError::not_found(format!("no broker {id} is registered")))?;
    let (dirs, configs) = tokio::join!(log_dirs(ctx, id), configs(ctx, id));
    let (log_dirs, log_dirs_error) = split(dirs);
    let (configs, configs_error) = split(configs);
    Ok(BrokerDetail { broker, log_dirs, log_dirs_error, configs, configs_error })
}

fn split<T>(r: Result<T, ConsoleError>) -> (Option<T>, Option<String>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e.message)),
    }
}

async fn list_api(ctx: Ctx) -> ApiResult<BrokerList> {
    Ok(Json(list_model(&ctx)))
}

async fn detail_api(ctx: Ctx, Path(id): Path<String>) -> ApiResult<BrokerDetail> {
    Ok(Json(detail_model(&ctx, &id).await?))
}

/// A broker's state as a marked word.
pub fn state_badge(b: &BrokerSummary) -> Markup {
    html! {
        @if b.fenced { span.bad { "fenced" } } @else { span.ok { "running" } }
        @if b.active_controller { " · " strong { "active controller" } }
        @else if b.controller { " · controller" }
    }
}

/// The table of brokers (`/brokers` and the overview).
pub fn brokers_table(brokers: &[BrokerSummary], id: &str) -> Markup {
    html! {
        div.table-wrap {
            table.sortable #(id) {
                thead { tr {
                    th.num scope="col" { "ID" }
                    th scope="col" { "Address" }
                    th scope="col" { "State" }
                    th.num scope="col" { "Leaders" }
                    th.num scope="col" { "Replicas" }
                    th.num scope="col" { "Offline replicas" }
                } }
                tbody {
                    @for b in brokers {
                        tr {
                            td.num data-sort=(b.id) {
                                a href={ "/brokers/" (b.id) } { (b.id) }
                                @if b.this_node { " " span.muted { "(this node)" } }
                            }
                            td.mono { (b.host) ":" (b.port) }
                            td { (state_badge(b)) }
                            td.num data-sort=(b.leaders) { (b.leaders) }
                            td.num data-sort=(b.replicas) { (b.replicas) }
                            td.num data-sort=(b.offline_replicas) {
                                @if b.offline_replicas > 0 { span.bad { (b.offline_replicas) } } @else { "0" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The table of log directories (a broker's page and the overview).
pub fn log_dirs_table(dirs: &[LogDir], id: &str) -> Markup {
    html! {
        div.table-wrap {
            table #(id) {
                thead { tr {
                    th scope="col" { "Directory" }
                    th scope="col" { "State" }
                    th.num scope="col" { "Partitions" }
                    th.num scope="col" { "Size" }
                    th.num scope="col" { "Free" }
                    th.num scope="col" { "Disk" }
                } }
                tbody {
                    @for d in dirs {
                        tr {
                            td.mono { (d.path) }
                            td {
                                @if d.online { span.ok { "online" } }
                                @else { span.bad { "offline" } " " (d.error.as_deref().unwrap_or("")) }
                            }
                            td.num { (d.partitions) }
                            td.num data-sort=(d.size_bytes) { (human_bytes(d.size_bytes)) }
                            td.num data-sort=(d.usable_bytes) { (bytes_or_dash(d.usable_bytes)) }
                            td.num data-sort=(d.total_bytes) { (bytes_or_dash(d.total_bytes)) }
                        }
                    }
                }
            }
        }
    }
}

fn bytes_or_dash(b: i64) -> String {
    if b < 0 {
        "-".into()
    } else {
        human_bytes(b as u64)
    }
}

async fn list_page(ctx: Ctx) -> PageResult {
    let model = list_model(&ctx);
    let body = html! {
        p { (model.brokers.len()) " registered brokers; active controller: "
            @if model.active_controller >= 0 { (model.active_controller) } @else { "none" } "." }
        label for="broker-filter" { "Filter brokers" }
        " "
        input #broker-filter type="search" data-filter-table="brokers";
        (brokers_table(&model.brokers, "brokers"))
    };
    Ok(layout::page(&ctx, "/brokers", "Brokers", body))
}

async fn detail_page(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let model = detail_model(&ctx, &id).await?;
    let b = &model.broker;
    let body = html! {
        p { a href="/brokers" { "All brokers" } }
        dl.facts {
            dt { "State" } dd { (state_badge(b)) @if b.this_node { " (serving this console)" } }
            dt { "Address" } dd.mono { (b.host) ":" (b.port) }
            dt { "Rack" } dd { (b.rack.as_deref().unwrap_or("-")) }
            dt { "Leaders" } dd { (b.leaders) " partitions" }
            dt { "Replicas" } dd { (b.replicas) " partitions" @if b.offline_replicas > 0 { ", " span.bad { (b.offline_replicas) " offline" } } }
        }
        h2 { "Endpoints" }
        @if b.endpoints.is_empty() {
            p { "Every listener at " span.mono { (b.host) ":" (b.port) } "." }
        } @else {
            div.table-wrap { table #endpoints {
                thead { tr { th scope="col" { "Listener" } th scope="col" { "Host" } th.num scope="col" { "Port" } } }
                tbody { @for e in &b.endpoints { tr { td { (e.listener) } td.mono { (e.host) } td.num { (e.port) } } } }
            } }
        }
        h2 { "Log directories" }
        @match (&model.log_dirs, &model.log_dirs_error) {
            (Some(dirs), _) => (log_dirs_table(dirs, "log-dirs")),
            (None, e) => p.error role="alert" { (e.as_deref().unwrap_or("unknown")) },
        }
        h2 { "Configs" }
        @match (&model.configs, &model.configs_error) {
            (Some(configs), _) => {
                label for="config-filter" { "Filter configs" }
                " "
                input #config-filter type="search" data-filter-table="configs";
                div.table-wrap { table.sortable #configs {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } th scope="col" { "Source" } } }
                    tbody {
                        @for c in configs {
                            tr {
                                td.mono { (c.name) }
                                td.mono {
                                    @if c.sensitive { span.muted { "(sensitive)" } }
                                    @else { (c.value.as_deref().unwrap_or("")) }
                                }
                                td { (c.source) @if c.read_only { " " span.muted { "(read-only)" } } }
                            }
                        }
                    }
                } }
            }
            (None, e) => p.error role="alert" { (e.as_deref().unwrap_or("unknown")) },
        }
    };
    Ok(layout::page(&ctx, "/brokers", &format!("Broker {}", b.id), body))
}
