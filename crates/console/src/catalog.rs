//! The topic portal: `/catalog` lists every non-internal topic the user may
//! describe with its portal fields (`vltava.portal.*` topic configs:
//! description, owner, tags, docs link), its schemas from the built-in
//! registry (`<topic>-value`, `<topic>-key`), throughput and consumers,
//! searchable by name, tag, owner and description. `/catalog/{name}` is a
//! topic's card: the same plus its latest schemas in full, the last few
//! records (one bounded Fetch at the leader) and its consumers' lag.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query};
use axum::routing::get;
use axum::Json;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use vltava_metadata::{AclOperation, ResourceType};

use crate::error::{ApiResult, ConsoleError, PageResult};
use crate::lag::{self, GroupLag};
use crate::layout::{self, url_encode, utc_millis};
use crate::topics::{self, Portal};
use crate::{Ctx, Routes};

/// How many records a card shows.
const EXAMPLES: usize = 3;
/// The most characters of a key or value shown.
const SHOWN_CHARS: usize = 2000;

pub fn routes() -> Routes {
    Routes::new()
        .route("/catalog", get(catalog_page))
        .route("/catalog/{name}", get(card_page))
        .route("/api/v1/catalog", get(catalog_api))
        .route("/api/v1/catalog/{name}", get(card_api))
}

/// The latest version of a subject of the built-in schema registry.
#[derive(Serialize, Debug, Clone)]
pub struct SchemaInfo {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub schema_type: String,
    pub schema: String,
}

/// A topic in the catalog.
#[derive(Serialize, Debug, Clone)]
pub struct CatalogEntry {
    pub name: String,
    #[serde(flatten)]
    pub portal: Portal,
    pub partitions: usize,
    pub messages_per_sec: Option<f64>,
    pub value_schema: Option<SchemaInfo>,
    pub key_schema: Option<SchemaInfo>,
    /// Groups with committed offsets on the topic.
    pub consumers: Vec<String>,
}

/// `GET /api/v1/catalog?q=&tag=`.
#[derive(Serialize, Debug)]
pub struct Catalog {
    pub topics: Vec<CatalogEntry>,
    /// Every tag in use, for browsing.
    pub tags: Vec<String>,
}

/// One of the last records of a topic.
#[derive(Serialize, Debug, Clone)]
pub struct Example {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// As text (lossy UTF-8, at most 2000 characters); none: null.
    pub key: Option<String>,
    pub value: Option<String>,
    /// The schema id of a value in the registry's wire format.
    pub value_schema_id: Option<i32>,
}

/// `GET /api/v1/catalog/{name}`.
#[derive(Serialize, Debug)]
pub struct Card {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub consumer_lag: Vec<GroupLag>,
    pub examples: Vec<Example>,
    /// Why there are no examples (not allowed to read, leader unavailable).
    pub examples_error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct CatalogQuery {
    /// Words that must each appear in the name, a tag, the owner or the
    /// description (case-insensitive).
    pub q: Option<String>,
    /// Only topics with this tag (case-insensitive).
    pub tag: Option<String>,
}

fn latest_schema(ctx: &Ctx, subject: &str) -> Option<SchemaInfo> {
    let registry = &ctx.broker.schema_registry;
    let (version, entry) = registry.read(|s| s.version(subject, -1, false))?;
    let schema = registry.schema_by_id(entry.id)?;
    Some(SchemaInfo {
        subject: subject.to_string(),
        version,
        id: entry.id,
        schema_type: schema.schema_type.as_str().to_string(),
        schema: schema.text.clone(),
    })
}

fn entry(ctx: &Ctx, t: &vltava_metadata::TopicImage, consumers: Vec<String>) -> CatalogEntry {
    CatalogEntry {
        name: t.name.clone(),
        portal: Portal::of(&t.configs),
        partitions: t.partitions.len(),
        messages_per_sec: topics::messages_per_sec(ctx, &t.name),
        value_schema: latest_schema(ctx, &format!("{}-value", t.name)),
        key_schema: latest_schema(ctx, &format!("{}-key", t.name)),
        consumers,
    }
}

/// Whether `e` matches every word of `q` and the tag `tag`.
fn matches(e: &CatalogEntry, q: &str, tag: &str) -> bool {
    if !tag.is_empty() && !e.portal.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
        return false;
    }
    let haystack = format!("{}\n{}\n{}\n{}", e.name, e.portal.tags.join("\n"), e.portal.owner, e.portal.description)
        .to_lowercase();
    q.split_whitespace().all(|word| haystack.contains(&word.to_lowercase()))
}

/// Groups by topic they committed offsets on (every group asked once).
async fn consumers_by_topic(ctx: &Ctx) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Ok(groups) = lag::list_groups(ctx).await else { return out };
    for g in groups.iter().filter(|g| g.group_type != "share") {
        let Ok(committed) = lag::committed(ctx, &g.group).await else { continue };
        for (topic, _) in committed.keys() {
            out.entry(topic.clone()).or_default().insert(g.group.clone());
        }
    }
    out
}

/// The model of `/catalog`.
pub async fn catalog(ctx: &Ctx, query: &CatalogQuery) -> Result<Catalog, ConsoleError> {
    let q = query.q.as_deref().unwrap_or("").trim();
    let tag = query.tag.as_deref().unwrap_or("").trim();
    let image = ctx.broker.controller.image();
    let mut consumers = consumers_by_topic(ctx).await;
    let mut tags = BTreeSet::new();
    let mut entries = Vec::new();
    let mut visible: Vec<_> = image
        .topics()
        .filter(|t| !t.name.starts_with("__") && t.name != vltava_broker::schema_registry::SCHEMAS_TOPIC)
        .filter(|t| ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, &t.name))
        .collect();
    visible.sort_by(|a, b| a.name.cmp(&b.name));
    for t in visible {
        let e = entry(ctx, t, consumers.remove(&t.name).map(|s| s.into_iter().collect()).unwrap_or_default());
        tags.extend(e.portal.tags.iter().cloned());
        if matches(&e, q, tag) {
            entries.push(e);
        }
    }
    Ok(Catalog { topics: entries, tags: tags.into_iter().collect() })
}

/// `text` cut at [`SHOWN_CHARS`] characters (`size`: the bytes it renders).
fn cut(text: &str, size: usize) -> String {
    if text.chars().count() > SHOWN_CHARS {
        let shown: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{shown}… ({size} bytes)")
    } else {
        text.to_string()
    }
}

/// The last [`EXAMPLES`] records of the partition with the most records
/// (partition 0 when they are even), read and rendered by the message
/// browser (one bounded Fetch at its leader).
pub async fn examples(ctx: &Ctx, t: &vltava_metadata::TopicImage) -> Result<Vec<Example>, ConsoleError> {
    if !ctx.broker.authorize(&ctx.session, AclOperation::Read, ResourceType::Topic, &t.name) {
        return Err(ConsoleError::forbidden(format!("{} may not read topic {}", ctx.session.principal, t.name)));
    }
    let keys: Vec<(String, i32)> = t.partitions.iter().map(|p| (t.name.clone(), p.partition)).collect();
    let starts = lag::offsets_at(ctx, &keys, -2).await?;
    let ends = lag::offsets_at(ctx, &keys, -1).await?;
    let mut best: Option<(i64, i32, i64, i64)> = None;
    for (key, end) in &ends {
        let start = starts.get(key).copied().unwrap_or(0);
        let n = end - start;
        // most records first, then the lowest partition
        if n > 0 && best.is_none_or(|(bn, bp, _, _)| n > bn || (n == bn && key.1 < bp)) {
            best = Some((n, key.1, start, *end));
        }
    }
    let Some((_, partition, _, _)) = best else { return Ok(Vec::new()) };
    // the message browser reads them (a bounded Fetch at the leader) and
    // renders them: decoded with the registry's schema when they carry one
    let page = crate::messages::browse(ctx, &t.name, &crate::messages::RawQuery::last(partition, EXAMPLES)).await?;
    let shown = |r: &Option<crate::messages::Rendered>| r.as_ref().map(|r| cut(&r.text, r.size));
    Ok(page
        .records
        .iter()
        .map(|r| Example {
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: shown(&r.key),
            value: shown(&r.value),
            value_schema_id: r.value.as_ref().and_then(|v| v.schema_id),
        })
        .collect())
}

/// The model of `/catalog/{name}`.
pub async fn card(ctx: &Ctx, name: &str) -> Result<Card, ConsoleError> {
    let t = topics::topic_image(ctx, name)?;
    let consumer_lag = lag::topic_consumers(ctx, name).await.unwrap_or_default();
    let (examples, examples_error) = match examples(ctx, &t).await {
        Ok(e) => (e, None),
        Err(e) => (Vec::new(), Some(e.message)),
    };
    Ok(Card {
        entry: entry(ctx, &t, consumer_lag.iter().map(|g| g.group.clone()).collect()),
        consumer_lag,
        examples,
        examples_error,
    })
}

async fn catalog_api(ctx: Ctx, Query(query): Query<CatalogQuery>) -> ApiResult<Catalog> {
    Ok(Json(catalog(&ctx, &query).await?))
}

async fn card_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<Card> {
    Ok(Json(card(&ctx, &name).await?))
}

fn tags(tags: &[String]) -> Markup {
    html! {
        @if !tags.is_empty() {
            span.tags {
                @for t in tags { span { a href={ "/catalog?tag=" (url_encode(t)) } { (t) } } }
            }
        }
    }
}

fn schema_line(label: &str, s: &Option<SchemaInfo>) -> Markup {
    html! {
        @if let Some(s) = s {
            li { (label) ": " a href={ "/schemas/" (url_encode(&s.subject)) } { (s.subject) } " v" (s.version) " (" (s.schema_type) ", id " (s.id) ")" }
        }
    }
}

/// A topic's card; `titled`: with its name as a heading (the list).
fn render_entry(e: &CatalogEntry, titled: bool) -> Markup {
    let enc = url_encode(&e.name);
    html! {
        article.card.catalog-entry {
            @if titled { h2 { a href={ "/catalog/" (enc) } { (e.name) } } }
            @if e.portal.description.is_empty() {
                p.muted { "No description yet: " a href={ "/topics/" (enc) "#portal" } { "add one" } "." }
            } @else {
                p.description { (e.portal.description) }
            }
            (tags(&e.portal.tags))
            ul.facts {
                li { "Owner: " @if e.portal.owner.is_empty() { span.muted { "not set" } } @else { strong.owner { (e.portal.owner) } } }
                @if !e.portal.docs_url.is_empty() {
                    li { "Docs: " a.docs href=(e.portal.docs_url) rel="noopener noreferrer" { (e.portal.docs_url) } }
                }
                (schema_line("Value schema", &e.value_schema))
                (schema_line("Key schema", &e.key_schema))
                li { (topics::plural(e.partitions, "partition")) " · "
                    @if e.messages_per_sec.is_some() { (topics::rate(e.messages_per_sec)) " messages/s" }
                    @else { span.muted { "no throughput samples yet" } } }
                li {
                    "Consumers: "
                    @if e.consumers.is_empty() { span.muted { "none" } }
                    @for (i, g) in e.consumers.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/groups/" (url_encode(g)) } { (g) }
                    }
                }
            }
        }
    }
}

async fn catalog_page(ctx: Ctx, Query(query): Query<CatalogQuery>) -> PageResult {
    let model = catalog(&ctx, &query).await?;
    let body = html! {
        link rel="stylesheet" href=(crate::assets::url("topics.css"));
        p { "Every topic with its description, owner, tags, schema and consumers. Set a topic's fields on its page (Portal section) or as the topic configs vltava.portal.description, vltava.portal.owner, vltava.portal.tags and vltava.portal.docs.url." }
        form.row method="get" action="/catalog" role="search" {
            label for="catalog-q" { "Search by name, tag, owner or description" input #catalog-q type="search" name="q" value=(query.q.as_deref().unwrap_or("")); }
            label for="catalog-tag" { "Tag"
                select #catalog-tag name="tag" {
                    option value="" { "any" }
                    @for t in &model.tags { option value=(t) selected[query.tag.as_deref() == Some(t.as_str())] { (t) } }
                }
            }
            button type="submit" { "Search" }
        }
        p.muted role="status" { (topics::plural(model.topics.len(), "topic")) }
        div.catalog-list {
            @for e in &model.topics { (render_entry(e, true)) }
        }
    };
    Ok(layout::page(&ctx, "/catalog", "Catalog", body))
}

fn schema_block(label: &str, s: &Option<SchemaInfo>) -> Markup {
    html! {
        @if let Some(s) = s {
            h2 { (label) }
            p { a href={ "/schemas/" (url_encode(&s.subject)) } { (s.subject) } " version " (s.version) ", " (s.schema_type) ", id " (s.id) }
            pre.schema { (pretty(&s.schema)) }
        }
    }
}

/// JSON (Avro, JSON Schema) indented; other text as it is.
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

async fn card_page(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let c = card(&ctx, &name).await?;
    let enc = url_encode(&name);
    let body = html! {
        link rel="stylesheet" href=(crate::assets::url("topics.css"));
        p { a href="/catalog" { "← Catalog" } " · " a href={ "/topics/" (enc) } { "Topic page" } " · " a href={ "/topics/" (enc) "/messages" } { "Browse messages" } }
        (render_entry(&c.entry, false))
        (schema_block("Value schema", &c.entry.value_schema))
        (schema_block("Key schema", &c.entry.key_schema))
        h2 { "Example messages" }
        @if let Some(e) = &c.examples_error {
            p.muted { (e) }
        } @else if c.examples.is_empty() {
            p.muted { "The topic has no records yet." }
        } @else {
            div.table-wrap {
                table #examples {
                    thead { tr { th.num { "Partition" } th.num { "Offset" } th { "Timestamp" } th { "Key" } th { "Value" } } }
                    tbody {
                        @for x in &c.examples {
                            tr {
                                td.num { (x.partition) } td.num { (x.offset) } td { (utc_millis(x.timestamp)) }
                                td.mono { @if let Some(k) = &x.key { (k) } @else { span.muted { "null" } } }
                                td { @if let Some(id) = x.value_schema_id { span.muted { "schema id " (id) " · " } }
                                     pre { @if let Some(v) = &x.value { (v) } @else { "null" } } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Consumers" }
        @if c.consumer_lag.is_empty() {
            p.muted { "No group has committed offsets on this topic." }
        } @else {
            table #catalog-consumers {
                thead { tr { th { "Group" } th.num { "Lag" } } }
                tbody { @for g in &c.consumer_lag { tr { td { a href={ "/groups/" (url_encode(&g.group)) } { (g.group) } } td.num { (g.total_lag) } } } }
            }
        }
        h2 { "Throughput" }
        div.chart data-chart-url={ "/api/v1/topics/" (enc) "/throughput" } data-chart-refresh="10000" data-chart-title="Messages in per second" {}
    };
    Ok(layout::page(&ctx, "/catalog", &name, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, tags: &[&str], owner: &str, description: &str) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            portal: Portal {
                description: description.into(),
                owner: owner.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                docs_url: String::new(),
            },
            partitions: 1,
            messages_per_sec: None,
            value_schema: None,
            key_schema: None,
            consumers: Vec::new(),
        }
    }

    #[test]
    fn search_by_name_tag_owner_and_description() {
        let x = e("orders.v1", &["payments", "pii"], "Team Checkout", "Orders as placed");
        assert!(matches(&x, "", ""));
        assert!(matches(&x, "orders", ""));
        assert!(matches(&x, "PII checkout", ""));
        assert!(matches(&x, "placed", "payments"));
        assert!(!matches(&x, "", "billing"));
        assert!(!matches(&x, "refunds", ""));
    }

    #[test]
    fn long_values_are_cut() {
        let long = "a".repeat(5000);
        let shown = cut(&long, 5000);
        assert!(shown.ends_with("(5000 bytes)") && shown.chars().count() < 2100);
        assert_eq!(cut("short", 5), "short");
    }
}
