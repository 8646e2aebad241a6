//! The overview (`/`, `GET /api/v1/cluster`): the brokers and controllers
//! with their state, partition health, throughput over the last minutes
//! (`GET /api/v1/cluster/throughput`, a chart) and this node's disk usage.
//!
//! Everything but the log directories is read from this node's metadata
//! image and quorum state (no Kafka round trip): one pass over the
//! partitions. Throughput comes from [`sample`]: every
//! [`crate::history::INTERVAL`] it reads the produce totals of the
//! partitions this node hosts and the bytes it has sent to fetchers, and
//! records per-second rates. They are this node's rates (the partitions it
//! leads, the fetches it answered), as Kafka's per-broker
//! `BrokerTopicMetrics`: on a cluster, each node's overview shows its own.

use std::collections::HashMap;

use axum::extract::Query;
use axum::routing::get;
use axum::Json;
use maud::{html, Markup};
use parking_lot::Mutex;
use serde::Serialize;
use vltava_metadata::{AclOperation, MetadataImage, ResourceType, TopicImage};

use crate::brokers::{self, BrokerSummary, LogDir};
use crate::error::{ApiResult, ConsoleError, PageResult};
use crate::history::{Chart, History};
use crate::layout::{self, url_encode};
use crate::{Ctx, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .route("/", get(page))
        .route("/api/v1/cluster", get(api))
        .route("/api/v1/cluster/throughput", get(throughput))
}

/// How many problem partitions the overview lists (the counts are exact).
const PROBLEMS_SHOWN: usize = 50;

/// `GET /api/v1/cluster`.
#[derive(Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    /// The node serving this console.
    pub node_id: i32,
    /// The metadata quorum's leader (the active controller); -1: none.
    pub active_controller: i32,
    pub quorum: Quorum,
    pub brokers: Vec<BrokerSummary>,
    pub controllers: Vec<Controller>,
    pub partitions: PartitionHealth,
    /// Partitions with a problem (at most 50; `partitions` has the counts).
    pub problems: Vec<Problem>,
    /// This node's log directories (`null` with `log_dirs_error` when
    /// DescribeLogDirs was refused).
    pub log_dirs: Option<Vec<LogDir>>,
    pub log_dirs_error: Option<String>,
    /// The latest per-second rates of this node (null before two samples).
    pub throughput: Throughput,
}

#[derive(Serialize)]
pub struct Quorum {
    pub leader: i32,
    pub epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<i32>,
    pub observers: Vec<i32>,
}

/// A member of the metadata quorum.
#[derive(Serialize)]
pub struct Controller {
    pub id: i32,
    /// `voter` or `observer`.
    pub role: &'static str,
    pub leader: bool,
    /// Its controller endpoint, where known.
    pub endpoint: Option<String>,
    /// Its metadata log end offset as this node knows it (-1: unknown).
    pub log_end_offset: i64,
    /// Milliseconds since the leader last heard from it (-1: unknown; only
    /// the leader knows).
    pub last_fetch_ms_ago: i64,
}

/// Counts over the partitions the user may describe.
#[derive(Serialize, Default)]
pub struct PartitionHealth {
    pub topics: u64,
    pub partitions: u64,
    pub replicas: u64,
    /// ISR smaller than the replica set.
    pub under_replicated: u64,
    /// No leader (or a fenced one).
    pub offline: u64,
    /// ISR smaller than the topic's `min.insync.replicas` (acks=all produce fails).
    pub under_min_isr: u64,
}

#[derive(Serialize)]
pub struct Problem {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// `offline`, `under-min-isr` or `under-replicated` (the worst).
    pub problem: &'static str,
}

#[derive(Serialize, Default)]
pub struct Throughput {
    pub bytes_in: Option<f64>,
    pub bytes_out: Option<f64>,
    pub messages_in: Option<f64>,
}

/// The `min.insync.replicas` that applies to `topic`.
fn min_isr(topic: &TopicImage, levels: &vltava_broker::topic_config::BrokerLevels<'_>) -> usize {
    const KEY: &str = "min.insync.replicas";
    let value = topic.configs.get(KEY).or_else(|| levels.in_order().iter().find_map(|(level, _)| level.get(KEY)));
    value.and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1)
}

fn health(ctx: &Ctx, image: &MetadataImage) -> (PartitionHealth, Vec<Problem>) {
    let levels = ctx.broker.replicas.broker_levels(image);
    let live: std::collections::HashSet<i32> = image.brokers().filter(|b| !b.fenced).map(|b| b.id).collect();
    let mut h = PartitionHealth::default();
    let mut problems = Vec::new();
    for t in image.topics() {
        if !ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, &t.name) {
            continue;
        }
        h.topics += 1;
        let min = min_isr(t, &levels);
        for p in &t.partitions {
            h.partitions += 1;
            h.replicas += p.replicas.len() as u64;
            let offline = p.leader < 0 || !live.contains(&p.leader);
            let under_min = p.isr.len() < min;
            let under = p.isr.len() < p.replicas.len();
            h.offline += offline as u64;
            h.under_min_isr += under_min as u64;
            h.under_replicated += under as u64;
            let problem = if offline {
                "offline"
            } else if under_min {
                "under-min-isr"
            } else if under {
                "under-replicated"
            } else {
                continue;
            };
            if problems.len() < PROBLEMS_SHOWN {
                problems.push(Problem {
                    topic: t.name.clone(),
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    problem,
                });
            }
        }
    }
    (h, problems)
}

fn controllers(ctx: &Ctx) -> (Quorum, Vec<Controller>) {
    let status = ctx.broker.controller.quorum().status();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let member = |(id, log_end_offset, last_fetch_ms): (i32, i64, i64), role| Controller {
        id,
        role,
        leader: id == status.leader,
        endpoint: status.endpoints.iter().find(|(e, _)| *e == id).map(|(_, e)| e.clone()),
        log_end_offset,
        last_fetch_ms_ago: if last_fetch_ms < 0 { -1 } else { (now - last_fetch_ms).max(0) },
    };
    let members: Vec<Controller> = status
        .voters
        .iter()
        .map(|v| member((v.node_id, v.log_end_offset, v.last_fetch_ms), "voter"))
        .chain(status.observers.iter().map(|v| member((v.node_id, v.log_end_offset, v.last_fetch_ms), "observer")))
        .collect();
    let quorum = Quorum {
        leader: status.leader,
        epoch: status.epoch,
        high_watermark: status.high_watermark,
        voters: status.voters.iter().map(|v| v.node_id).collect(),
        observers: status.observers.iter().map(|v| v.node_id).collect(),
    };
    (quorum, members)
}

fn latest(history: &History, name: &str) -> Option<f64> {
    history.points(name).last().map(|(_, v)| *v)
}

async fn model(ctx: &Ctx) -> Cluster {
    let image = ctx.broker.controller.image();
    let (partitions, problems) = health(ctx, &image);
    let (quorum, controllers) = controllers(ctx);
    let (log_dirs, log_dirs_error) = match brokers::log_dirs(ctx, ctx.broker.config.node_id).await {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.message)),
    };
    let history = &ctx.console.history;
    Cluster {
        cluster_id: ctx.broker.cluster_id(),
        node_id: ctx.broker.config.node_id,
        active_controller: quorum.leader,
        quorum,
        brokers: brokers::summaries(ctx, &image),
        controllers,
        partitions,
        problems,
        log_dirs,
        log_dirs_error,
        throughput: Throughput {
            bytes_in: latest(history, "bytes_in"),
            bytes_out: latest(history, "bytes_out"),
            messages_in: latest(history, "messages_in"),
        },
    }
}

async fn api(ctx: Ctx) -> ApiResult<Cluster> {
    Ok(Json(model(&ctx).await))
}

/// `GET /api/v1/cluster/throughput[?topic=NAME][&kind=bytes|messages]`:
/// bytes in, bytes out and messages in per second, this node's, over the
/// last 30 minutes; with `topic`, that topic's bytes and messages in;
/// `kind` keeps the byte or the message series only.
async fn throughput(ctx: Ctx, Query(q): Query<ThroughputQuery>) -> ApiResult<Chart> {
    let (bytes, messages) = match q.kind.as_deref() {
        None | Some("") => (true, true),
        Some("bytes") => (true, false),
        Some("messages") => (false, true),
        Some(other) => {
            return Err(ConsoleError::bad_request(format!("kind is bytes or messages, not {other:?}")).into())
        }
    };
    let names: Vec<(String, &str)> = match q.topic {
        None => vec![
            ("bytes_in".to_string(), "bytes in/s"),
            ("bytes_out".to_string(), "bytes out/s"),
            ("messages_in".to_string(), "messages in/s"),
        ],
        Some(topic) => {
            let visible = ctx.broker.controller.image().topic(&topic).is_some()
                && ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, &topic);
            if !visible {
                return Err(ConsoleError::not_found(format!("no topic {topic}")).into());
            }
            vec![(format!("bytes_in:{topic}"), "bytes in/s"), (format!("messages_in:{topic}"), "messages in/s")]
        }
    };
    let names: Vec<(&str, &str)> = names
        .iter()
        .filter(|(name, _)| if name.starts_with("messages") { messages } else { bytes })
        .map(|(name, label)| (name.as_str(), *label))
        .collect();
    Ok(Json(ctx.console.history.chart(&names)))
}

#[derive(serde::Deserialize)]
struct ThroughputQuery {
    topic: Option<String>,
    kind: Option<String>,
}

fn card(label: &str, value: impl maud::Render, class: &str) -> Markup {
    html! { div.card { div.value.(class) { (value) } div.label { (label) } } }
}

fn rate(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(v) if unit == "B" => format!("{}/s", layout::human_bytes(v.max(0.0) as u64)),
        Some(v) => format!("{v:.1}/s"),
    }
}

async fn page(ctx: Ctx) -> PageResult {
    let c = model(&ctx).await;
    let h = &c.partitions;
    let live = c.brokers.iter().filter(|b| !b.fenced).count();
    let bad = |n: u64| if n > 0 { "bad" } else { "ok" };
    let body = html! {
        p.muted { "Cluster " span.mono { (c.cluster_id) } " as node " (c.node_id) " sees it." }
        section aria-labelledby="health-h" {
            h2 #health-h { "Health" }
            div.cards #health {
                (card("brokers running", format!("{live} of {}", c.brokers.len()), if live < c.brokers.len() { "bad" } else { "ok" }))
                (card("active controller", if c.active_controller >= 0 { c.active_controller.to_string() } else { "none".into() }, if c.active_controller >= 0 { "" } else { "bad" }))
                (card("topics", h.topics, ""))
                (card("partitions", h.partitions, ""))
                (card("under-replicated", h.under_replicated, bad(h.under_replicated)))
                (card("under min ISR", h.under_min_isr, bad(h.under_min_isr)))
                (card("offline", h.offline, bad(h.offline)))
            }
            @if !c.problems.is_empty() {
                h2 { "Partitions with problems" }
                div.table-wrap { table.sortable #problems {
                    thead { tr {
                        th scope="col" { "Topic" } th.num scope="col" { "Partition" } th scope="col" { "Problem" }
                        th.num scope="col" { "Leader" } th scope="col" { "Replicas" } th scope="col" { "ISR" }
                    } }
                    tbody { @for p in &c.problems { tr {
                        td { a href={ "/topics/" (url_encode(&p.topic)) } { (p.topic) } }
                        td.num { (p.partition) }
                        td.bad { (p.problem) }
                        td.num { (p.leader) }
                        td.mono { (format!("{:?}", p.replicas)) }
                        td.mono { (format!("{:?}", p.isr)) }
                    } } }
                } }
                @if (c.problems.len() as u64) < h.offline.max(h.under_replicated).max(h.under_min_isr) {
                    p.muted { "The first " (c.problems.len()) " are listed." }
                }
            }
        }
        section aria-labelledby="throughput-h" {
            h2 #throughput-h { "Throughput" }
            p {
                "Now: " strong { (rate(c.throughput.bytes_in, "B")) } " in, "
                strong { (rate(c.throughput.bytes_out, "B")) } " out, "
                strong { (rate(c.throughput.messages_in, "")) } " messages in "
                span.muted { "(this node's, sampled every 5 s)" }
            }
            div.chart #throughput-chart data-chart-url="/api/v1/cluster/throughput?kind=bytes" data-chart-refresh="10000"
                data-chart-title="Bytes per second (this node)" role="img"
                aria-label="Chart of bytes in and out per second over the last 30 minutes" {}
            div.chart #messages-chart data-chart-url="/api/v1/cluster/throughput?kind=messages" data-chart-refresh="10000"
                data-chart-title="Messages in per second (this node)" role="img"
                aria-label="Chart of messages in per second over the last 30 minutes" {}
        }
        section aria-labelledby="brokers-h" {
            h2 #brokers-h { "Brokers" }
            (brokers::brokers_table(&c.brokers, "brokers"))
        }
        section aria-labelledby="controllers-h" {
            h2 #controllers-h { "Controllers" }
            p { "Metadata quorum: leader " (if c.quorum.leader >= 0 { c.quorum.leader.to_string() } else { "none".into() })
                ", epoch " (c.quorum.epoch) ", high watermark " (c.quorum.high_watermark) "." }
            div.table-wrap { table #controllers {
                thead { tr {
                    th.num scope="col" { "ID" } th scope="col" { "Role" } th scope="col" { "Endpoint" }
                    th.num scope="col" { "Log end offset" } th.num scope="col" { "Last heard" }
                } }
                tbody { @for m in &c.controllers { tr {
                    td.num { (m.id) }
                    td { (m.role) @if m.leader { " · " strong { "leader (active controller)" } } }
                    td.mono { (m.endpoint.as_deref().unwrap_or("-")) }
                    td.num { @if m.log_end_offset >= 0 { (m.log_end_offset) } @else { "-" } }
                    td.num { @if m.last_fetch_ms_ago >= 0 { (m.last_fetch_ms_ago) " ms ago" } @else { "-" } }
                } } }
            } }
        }
        section aria-labelledby="disk-h" {
            h2 #disk-h { "Disk usage of node " (c.node_id) }
            @match (&c.log_dirs, &c.log_dirs_error) {
                (Some(dirs), _) => (brokers::log_dirs_table(dirs, "log-dirs")),
                (None, e) => p.error role="alert" { (e.as_deref().unwrap_or("unknown")) },
            }
        }
    };
    Ok(layout::page(&ctx, "/", "Overview", body))
}

/// Totals read at the previous sample, per broker (a process may run
/// several in tests).
struct Previous {
    at: i64,
    bytes_in: u64,
    messages_in: u64,
    bytes_out: u64,
    topics: HashMap<String, (u64, u64)>,
    /// When each topic last had a non-zero rate: a quiet topic's series
    /// gets zeros for [`QUIET`] after that, then nothing (and is dropped).
    active: HashMap<String, i64>,
}

/// How long a topic's series goes on after its last record.
const QUIET: i64 = 5 * 60;

static PREVIOUS: Mutex<Option<HashMap<usize, Previous>>> = Mutex::new(None);

/// Records this node's throughput at `now` (unix seconds): `bytes_in`,
/// `bytes_out`, `messages_in` and per topic `bytes_in:{topic}`,
/// `messages_in:{topic}`, per second since the previous sample. Cheap with
/// many partitions: two atomic loads per hosted partition.
pub fn sample(broker: &vltava_broker::Broker, history: &History, now: i64) {
    let mut topics: HashMap<String, (u64, u64)> = HashMap::new();
    let (mut messages_in, mut bytes_in) = (0u64, 0u64);
    for p in broker.replicas.all() {
        let (m, b) = p.metrics.produced_totals();
        if m == 0 && b == 0 {
            continue;
        }
        messages_in += m;
        bytes_in += b;
        let e = topics.entry(p.topic.clone()).or_default();
        e.0 += m;
        e.1 += b;
    }
    let bytes_out = vltava_broker::broker_metrics::bytes_out_total();
    let key = broker as *const _ as usize;
    let mut all = PREVIOUS.lock();
    let all = all.get_or_insert_with(HashMap::new);
    let mut active = HashMap::new();
    // the first sample: the totals counted from zero when the broker opened,
    // at most about one interval ago (the sampler starts with the console)
    let first = || Previous {
        at: now - crate::history::INTERVAL.as_secs() as i64,
        bytes_in: 0,
        messages_in: 0,
        bytes_out: 0,
        topics: HashMap::new(),
        active: HashMap::new(),
    };
    if let Some(prev) = Some(all.remove(&key).unwrap_or_else(first)).filter(|p| p.at < now) {
        let secs = (now - prev.at) as f64;
        let per_second = |cur: u64, old: u64| cur.saturating_sub(old) as f64 / secs;
        history.record("bytes_in", now, per_second(bytes_in, prev.bytes_in));
        history.record("bytes_out", now, per_second(bytes_out, prev.bytes_out));
        history.record("messages_in", now, per_second(messages_in, prev.messages_in));
        active = prev.active;
        for (topic, (m, b)) in &topics {
            let (old_m, old_b) = prev.topics.get(topic).copied().unwrap_or_default();
            let (m_rate, b_rate) = (per_second(*m, old_m), per_second(*b, old_b));
            if m_rate > 0.0 || b_rate > 0.0 {
                active.insert(topic.clone(), now);
            }
        }
        active.retain(|topic, last| *last >= now - QUIET && topics.contains_key(topic));
        for topic in active.keys() {
            let (m, b) = topics[topic];
            let (old_m, old_b) = prev.topics.get(topic).copied().unwrap_or_default();
            history.record(&format!("messages_in:{topic}"), now, per_second(m, old_m));
            history.record(&format!("bytes_in:{topic}"), now, per_second(b, old_b));
        }
    }
    all.insert(key, Previous { at: now, bytes_in, messages_in, bytes_out, topics, active });
}
