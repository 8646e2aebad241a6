//! The message browser: `/topics/{name}/messages` (and its JSON API
//! `/api/v1/topics/{name}/messages`), a page of one partition's records
//! read with Fetch at the partition's leader as the console's user, with
//! keys, headers and values rendered as text, JSON, hex or decoded through
//! the schema registry; filters by key and value that scan a bounded
//! number of records; a live tail (`assets/messages.js` polling
//! `/topics/{name}/messages/tail`); and a produce form (Produce, acks=-1).
//!
//! Reading: Fetch (`max_wait_ms` 0) from the first offset wanted, at most
//! [`FETCH_BYTES`] per round trip, until the page is full, the end is
//! reached, or [`SCAN_RECORDS_MAX`] records / [`SCAN_BYTES_MAX`] bytes were
//! scanned: a request never reads a whole partition. `read_committed` is
//! the default (records of aborted transactions hidden, as a consumer with
//! `isolation.level=read_committed` sees them); `isolation=uncommitted`
//! shows them, marked transactional. Control records (commit/abort
//! markers) are never shown, only counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::{Form, Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Json;
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use vltava_metadata::{AclOperation, ResourceType};

use crate::error::{ApiResult, ConsoleError, PageError, PageResult};
use crate::layout::{self, url_encode};
use crate::{Ctx, Routes};

/// Records per page unless `limit` says otherwise, and the most it may say.
pub const LIMIT_DEFAULT: usize = 50;
pub const LIMIT_MAX: usize = 500;
/// What one request scans at most (filters stop there and offer "next").
pub const SCAN_RECORDS_MAX: u64 = 10_000;
pub const SCAN_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// `max_bytes` and `partition_max_bytes` of one Fetch.
const FETCH_BYTES: i32 = 1024 * 1024;
/// How much of a key, value or header is rendered (the rest is cut, with a note).
const SHOWN_BYTES_MAX: usize = 64 * 1024;
/// Records one live-tail poll returns at most.
const TAIL_LIMIT: usize = 100;

pub fn routes() -> Routes {
    Routes::new()
        .route("/topics/{name}/messages", get(page).post(produce_form))
        .route("/topics/{name}/messages/tail", get(tail))
        .route("/api/v1/topics/{name}/messages", get(api_browse).post(api_produce))
}

// ---------------------------------------------------------------- parameters

/// The query of a browse request, as given (parsed by [`Query::parse`]).
#[derive(Deserialize, Default, Debug, Clone)]
pub struct RawQuery {
    partition: Option<String>,
    offset: Option<String>,
    timestamp: Option<String>,
    limit: Option<String>,
    format: Option<String>,
    key: Option<String>,
    key_match: Option<String>,
    value_contains: Option<String>,
    isolation: Option<String>,
    done: Option<String>,
}

impl RawQuery {
    /// The last `limit` records of `partition`, rendered `auto` (the
    /// catalog's examples).
    pub fn last(partition: i32, limit: usize) -> Self {
        Self { partition: Some(partition.to_string()), limit: Some(limit.to_string()), ..Default::default() }
    }
}

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    /// The last `limit` records.
    Latest,
    Earliest,
    Offset(i64),
    Timestamp(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Auto,
    Text,
    Json,
    Hex,
    Schema,
}

impl Format {
    const ALL: [Format; 5] = [Format::Auto, Format::Text, Format::Json, Format::Hex, Format::Schema];

    fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Text => "text",
            Format::Json => "json",
            Format::Hex => "hex",
            Format::Schema => "schema",
        }
    }
}

#[derive(Debug, Clone)]
struct Params {
    partition: i32,
    start: Start,
    limit: usize,
    format: Format,
    key: Option<String>,
    key_exact: bool,
    value_contains: Option<String>,
    committed: bool,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl RawQuery {
    fn parse(&self, notices: &mut Vec<String>) -> Result<Params, ConsoleError> {
        let partition = match given(&self.partition) {
            None => 0,
            Some(p) => p
                .parse::<i32>()
                .map_err(|_| ConsoleError::bad_request(format!("partition must be a partition number, not {p:?}")))?,
        };
        let start = match (given(&self.offset), given(&self.timestamp)) {
            (Some(_), Some(_)) => return Err(ConsoleError::bad_request("give an offset or a timestamp, not both")),
            (Some("earliest"), None) => Start::Earliest,
            (Some("latest"), None) => Start::Latest,
            (Some(o), None) => {
                let offset = o.parse::<i64>().map_err(|_| {
                    ConsoleError::bad_request(format!("offset must be a number, earliest or latest, not {o:?}"))
                })?;
                if offset < 0 {
                    return Err(ConsoleError::bad_request(format!("offset must not be negative: {offset}")));
                }
                Start::Offset(offset)
            }
            (None, Some(t)) => Start::Timestamp(parse_time(t).ok_or_else(|| {
                ConsoleError::bad_request(format!(
                    "timestamp must be milliseconds since the epoch or a UTC time like 2026-11-30T17:05:00Z, not {t:?}"
                ))
            })?),
            (None, None) => Start::Latest,
        };
        let limit = match given(&self.limit) {
            None => LIMIT_DEFAULT,
            Some(l) => match l.parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(ConsoleError::bad_request(format!(
                        "limit must be a number from 1 to {LIMIT_MAX}, not {l:?}"
                    )))
                }
                Ok(n) if n > LIMIT_MAX => {
                    notices.push(format!("limit {n} is above the maximum: {LIMIT_MAX} records are shown"));
                    LIMIT_MAX
                }
                Ok(n) => n,
            },
        };
        let format = match given(&self.format) {
            None => Format::Auto,
            Some(f) => *Format::ALL.iter().find(|x| x.as_str() == f).ok_or_else(|| {
                ConsoleError::bad_request(format!("format must be auto, text, json, hex or schema, not {f:?}"))
            })?,
        };
        let key_exact = match given(&self.key_match) {
            None | Some("contains") => false,
            Some("exact") => true,
            Some(m) => {
                return Err(ConsoleError::bad_request(format!("key_match must be exact or contains, not {m:?}")))
            }
        };
        let committed = match given(&self.isolation) {
            None | Some("read_committed") | Some("committed") => true,
            Some("read_uncommitted") | Some("uncommitted") => false,
            Some(i) => {
                return Err(ConsoleError::bad_request(format!(
                    "isolation must be read_committed or read_uncommitted, not {i:?}"
                )))
            }
        };
        Ok(Params {
            partition,
            start,
            limit,
            format,
            key: self.key.clone().filter(|k| !k.is_empty()),
            key_exact,
            value_contains: self.value_contains.clone().filter(|v| !v.is_empty()),
            committed,
        })
    }
}

/// Milliseconds since the epoch, or a UTC time `YYYY-MM-DD[T ]HH:MM[:SS[.mmm]][Z]`.
fn parse_time(s: &str) -> Option<i64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok();
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-');
    let (year, month, day): (i64, i64, i64) =
        (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (hour, minute): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let second: i64 = t.next().map_or(Some(0), |s| s.parse().ok())?;
    let millis: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<3}").parse().ok()?
    };
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

// ---------------------------------------------------------------- the model

/// A key, value or header value rendered for people.
#[derive(Serialize, Debug, Clone)]
pub struct Rendered {
    /// How it is shown: `text`, `json`, `hex` or `schema`.
    pub format: &'static str,
    /// The rendering (JSON pretty-printed; hex as an offset dump).
    pub text: String,
    /// The size in bytes.
    pub size: usize,
    /// For `schema`: the registry's schema id and type (AVRO, JSON, PROTOBUF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// Why it is not shown as asked (not UTF-8, not JSON, cut, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct HeaderView {
    pub key: String,
    pub value: Option<Rendered>,
}

#[derive(Serialize, Debug, Clone)]
pub struct MessageView {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub timestamp_type: &'static str,
    /// Part of a transaction (shown only under read_uncommitted, or committed).
    pub transactional: bool,
    pub key: Option<Rendered>,
    pub headers: Vec<HeaderView>,
    pub value: Option<Rendered>,
}

/// A page of the message browser (what the page shows and the API answers).
#[derive(Serialize, Debug)]
pub struct MessagePage {
    pub topic: String,
    pub partition: i32,
    /// The topic's partition count.
    pub partitions: i32,
    /// The partition's log start and end offsets (the end is the high watermark).
    pub log_start_offset: i64,
    pub end_offset: i64,
    /// `read_committed` or `read_uncommitted`.
    pub isolation: &'static str,
    pub format: Format,
    pub limit: usize,
    /// The first offset read.
    pub start_offset: i64,
    /// Where the next page (or a filter's continued scan) starts.
    pub next_offset: i64,
    /// The start of the previous page, when there is one.
    pub previous_offset: Option<i64>,
    /// Whether reading reached the end of the partition.
    pub at_end: bool,
    /// Records and bytes looked at (filters look at more than they show).
    pub scanned_records: u64,
    pub scanned_bytes: u64,
    /// Whether the scan stopped at its budget before the page was full.
    pub scan_budget_reached: bool,
    /// Control records (transaction markers) and aborted records skipped.
    pub hidden_records: u64,
    pub key_filter: Option<String>,
    /// `exact` or `contains`.
    pub key_match: &'static str,
    pub value_filter: Option<String>,
    /// Offsets clamped, limits lowered, timestamps past the end.
    pub notices: Vec<String>,
    pub records: Vec<MessageView>,
}

/// Reads a page of `topic` as `query` asks.
pub async fn browse(ctx: &Ctx, topic: &str, query: &RawQuery) -> Result<MessagePage, ConsoleError> {
    let mut notices = Vec::new();
    let params = query.parse(&mut notices)?;
    read_page(ctx, topic, params, notices).await
}

/// The topic's id and partition count, after checking the user may see it.
fn topic_of(ctx: &Ctx, topic: &str) -> Result<(uuid::Uuid, i32), ConsoleError> {
    let image = ctx.broker.controller.image();
    let t = image.topic(topic).ok_or_else(|| ConsoleError::not_found(format!("no topic {topic}")))?;
    if !ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, topic) {
        return Err(ConsoleError::kafka(29, &format!("describe topic {topic}"), None));
    }
    Ok((t.topic_id, t.partitions.len() as i32))
}

async fn read_page(
    ctx: &Ctx,
    topic: &str,
    params: Params,
    mut notices: Vec<String>,
) -> Result<MessagePage, ConsoleError> {
    let (topic_id, partitions) = topic_of(ctx, topic)?;
    let partition = params.partition;
    if partition < 0 || partition >= partitions {
        return Err(ConsoleError::not_found(format!(
            "topic {topic} has no partition {partition} (it has {partitions})"
        )));
    }
    let leader = ctx.leader_of(topic, partition)?;
    let key = [(topic.to_string(), partition)];
    let unknown = || ConsoleError::unavailable(format!("the offsets of {topic}-{partition} are not known"));
    let log_start = *crate::lag::offsets_at(ctx, &key, -2).await?.get(&key[0]).ok_or_else(unknown)?;
    let end = *crate::lag::end_offsets(ctx, &key).await?.get(&key[0]).ok_or_else(unknown)?;
    let limit = params.limit as i64;
    let start = match params.start {
        Start::Earliest => log_start,
        Start::Latest => (end - limit).max(log_start),
        Start::Offset(o) if o < log_start => {
            notices.push(format!("offset {o} is before the log start: showing from {log_start}"));
            log_start
        }
        Start::Offset(o) if o > end => {
            notices.push(format!("offset {o} is beyond the end of the partition ({end}): showing from {end}"));
            end
        }
        Start::Offset(o) => o,
        Start::Timestamp(ts) => match crate::lag::offsets_at(ctx, &key, ts).await?.get(&key[0]) {
            Some(&o) => {
                notices.push(format!("the first record at or after {} is at offset {o}", layout::utc_millis(ts)));
                o.clamp(log_start, end)
            }
            None => {
                notices.push(format!("no record at or after {}: showing from the end ({end})", layout::utc_millis(ts)));
                end
            }
        },
    };
    let mut page = MessagePage {
        topic: topic.to_string(),
        partition,
        partitions,
        log_start_offset: log_start,
        end_offset: end,
        isolation: if params.committed { "read_committed" } else { "read_uncommitted" },
        format: params.format,
        limit: params.limit,
        start_offset: start,
        next_offset: start,
        previous_offset: (start > log_start).then(|| (start - limit).max(log_start)),
        at_end: start >= end,
        scanned_records: 0,
        scanned_bytes: 0,
        scan_budget_reached: false,
        hidden_records: 0,
        key_filter: params.key.clone(),
        key_match: if params.key_exact { "exact" } else { "contains" },
        value_filter: params.value_contains.clone(),
        notices,
        records: Vec::new(),
    };
    scan(ctx, leader, topic_id, &params, &mut page).await?;
    Ok(page)
}

/// Fetches from `page.next_offset` on until the page is full, the end is
/// reached or the scan budget is spent.
async fn scan(
    ctx: &Ctx,
    leader: i32,
    topic_id: uuid::Uuid,
    params: &Params,
    page: &mut MessagePage,
) -> Result<(), ConsoleError> {
    let topic = page.topic.clone();
    let registry = SchemaCache::default();
    let mut pos = page.start_offset;
    while page.records.len() < params.limit {
        if page.scanned_records >= SCAN_RECORDS_MAX || page.scanned_bytes >= SCAN_BYTES_MAX {
            page.scan_budget_reached = true;
            break;
        }
        if pos >= page.end_offset {
            page.at_end = true;
            break;
        }
        let fetched = fetch(ctx, leader, &topic, topic_id, page.partition, pos, params.committed).await?;
        page.end_offset = page.end_offset.max(fetched.high_watermark);
        let bound = if params.committed && fetched.last_stable_offset >= 0 {
            fetched.last_stable_offset
        } else {
            fetched.high_watermark
        };
        let before = pos;
        let mut aborted: Vec<(i64, i64)> = fetched.aborted; // (first offset, producer id)
        aborted.sort();
        let mut aborted_next = 0;
        let mut aborting: HashSet<i64> = HashSet::new();
        let mut full = false;
        for batch in fetched.batches {
            let (base, last, size) = (batch.base_offset, batch.last_offset, batch.size);
            if last < pos {
                continue;
            }
            while aborted_next < aborted.len() && aborted[aborted_next].0 <= last {
                aborting.insert(aborted[aborted_next].1);
                aborted_next += 1;
            }
            page.scanned_bytes += size as u64;
            let records = match batch.records {
                Ok(r) => r,
                Err(e) => {
                    page.notices.push(format!("the batch at offsets {base} to {last} could not be decoded: {e}"));
                    pos = last + 1;
                    continue;
                }
            };
            for record in records {
                if record.offset < pos {
                    continue;
                }
                if record.offset >= bound && !(record.control) {
                    break;
                }
                page.scanned_records += 1;
                pos = record.offset + 1;
                if record.control {
                    page.hidden_records += 1;
                    aborting.remove(&record.producer_id);
                    continue;
                }
                if params.committed && record.transactional && aborting.contains(&record.producer_id) {
                    page.hidden_records += 1;
                    continue;
                }
                if matches(&record, params, &registry, ctx) {
                    page.records.push(view(&record, page.partition, params.format, &registry, ctx));
                    if page.records.len() >= params.limit {
                        full = true;
                        break;
                    }
                }
                if page.scanned_records >= SCAN_RECORDS_MAX {
                    break;
                }
            }
            if full || page.scanned_records >= SCAN_RECORDS_MAX {
                break;
            }
            if pos <= last && last < bound {
                pos = last + 1;
            }
        }
        if pos >= bound {
            page.at_end = true;
        }
        if pos == before || page.at_end {
            break;
        }
    }
    page.next_offset = pos;
    if page.next_offset >= page.end_offset {
        page.at_end = true;
    }
    Ok(())
}

/// One complete batch of a Fetch response.
struct Batch {
    base_offset: i64,
    last_offset: i64,
    size: usize,
    records: Result<Vec<Record>, String>,
}

struct Fetched {
    high_watermark: i64,
    last_stable_offset: i64,
    /// Aborted transactions: (first offset, producer id).
    aborted: Vec<(i64, i64)>,
    batches: Vec<Batch>,
}

async fn fetch(
    ctx: &Ctx,
    leader: i32,
    topic: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    offset: i64,
    committed: bool,
) -> Result<Fetched, ConsoleError> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(FETCH_BYTES)
        .with_isolation_level(if committed { 1 } else { 0 })
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_topic_id(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(FETCH_BYTES)])]);
    let response = ctx.call_at(leader, request, &[(AclOperation::Read, ResourceType::Topic, topic)]).await?;
    let context = format!("read {topic}-{partition} at offset {offset}");
    ConsoleError::check(response.error_code, &context, None)?;
    let data = response
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| ConsoleError::internal(format!("{context}: Fetch answered without the partition")))?;
    ConsoleError::check(data.error_code, &context, None)?;
    let aborted =
        data.aborted_transactions.unwrap_or_default().into_iter().map(|a| (a.first_offset, a.producer_id.0)).collect();
    Ok(Fetched {
        high_watermark: data.high_watermark,
        last_stable_offset: data.last_stable_offset,
        aborted,
        batches: split_batches(data.records.unwrap_or_default()),
    })
}

/// The complete record batches in `records` (a trailing partial batch, cut
/// by `max_bytes`, is left out), each decoded (decompressed) on its own.
fn split_batches(mut records: Bytes) -> Vec<Batch> {
    let mut out = Vec::new();
    while records.len() >= 61 {
        let base_offset = i64::from_be_bytes(records[0..8].try_into().unwrap_or_default());
        let length = i32::from_be_bytes(records[8..12].try_into().unwrap_or_default());
        let Ok(length) = usize::try_from(length) else { break };
        let size = 12 + length;
        if size > records.len() || length < 49 {
            break;
        }
        let magic = records[16];
        let last_delta = i32::from_be_bytes(records[23..27].try_into().unwrap_or_default());
        let mut one = records.split_to(size);
        let decoded = if magic == 2 {
            RecordBatchDecoder::decode(&mut one).map(|set| set.records).map_err(|e| e.to_string())
        } else {
            one.advance(one.len());
            Err(format!("message format v{magic} is not shown"))
        };
        out.push(Batch { base_offset, last_offset: base_offset + i64::from(last_delta), size, records: decoded });
    }
    out
}

fn matches(record: &Record, params: &Params, registry: &SchemaCache, ctx: &Ctx) -> bool {
    if let Some(k) = &params.key {
        let Some(key) = &record.key else { return false };
        let key = String::from_utf8_lossy(key);
        if params.key_exact && key != k.as_str() || !params.key_exact && !key.contains(k.as_str()) {
            return false;
        }
    }
    if let Some(q) = &params.value_contains {
        let Some(value) = &record.value else { return false };
        if contains(value, q.as_bytes()) {
            return true;
        }
        // a schema-encoded value: its decoded form
        return registry.decode(ctx, value).is_some_and(|(_, _, v)| v.to_string().contains(q.as_str()));
    }
    true
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn view(record: &Record, partition: i32, format: Format, registry: &SchemaCache, ctx: &Ctx) -> MessageView {
    MessageView {
        partition,
        offset: record.offset,
        timestamp: record.timestamp,
        timestamp_type: match record.timestamp_type {
            TimestampType::Creation => "CreateTime",
            TimestampType::LogAppend => "LogAppendTime",
        },
        transactional: record.transactional,
        key: record.key.as_ref().map(|k| render(k, format, registry, ctx)),
        headers: record
            .headers
            .iter()
            .map(|(k, v)| HeaderView {
                key: k.to_string(),
                // header values are short strings or ids: readable first
                value: v.as_ref().map(|v| render(v, Format::Auto, registry, ctx)),
            })
            .collect(),
        value: record.value.as_ref().map(|v| render(v, format, registry, ctx)),
    }
}

// ---------------------------------------------------------------- rendering

/// Schemas looked up during one request: id -> decoder.
#[derive(Default)]
struct SchemaCache {
    by_id: parking_lot::Mutex<HashMap<i32, Option<std::sync::Arc<vltava_broker::schema_registry::RegisteredSchema>>>>,
}

impl SchemaCache {
    /// (schema id, schema type, decoded JSON) of bytes in Confluent's wire
    /// format (magic 0, a 4-byte schema id, the payload) whose schema the
    /// registry has and which decode with it.
    fn decode(&self, ctx: &Ctx, bytes: &[u8]) -> Option<(i32, String, serde_json::Value)> {
        if bytes.len() < 5 || bytes[0] != 0 {
            return None;
        }
        let id = i32::from_be_bytes(bytes[1..5].try_into().ok()?);
        let schema =
            self.by_id.lock().entry(id).or_insert_with(|| ctx.broker.schema_registry.schema_by_id(id)).clone()?;
        let value = schema.parsed.decode_payload(&bytes[5..]).ok()?;
        Some((id, schema.schema_type.as_str().to_string(), value))
    }

    /// Why [`Self::decode`] fails, for a note.
    fn why_not(&self, ctx: &Ctx, bytes: &[u8]) -> String {
        if bytes.len() < 5 || bytes[0] != 0 {
            return "no schema registry header (magic byte 0 and a schema id)".into();
        }
        let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        match ctx.broker.schema_registry.schema_by_id(id) {
            None => format!("schema id {id} is not in the registry"),
            Some(s) => match s.parsed.decode_payload(&bytes[5..]) {
                Ok(_) => String::new(),
                Err(e) => format!("does not decode with schema {id}: {e}"),
            },
        }
    }
}

fn render(bytes: &[u8], format: Format, registry: &SchemaCache, ctx: &Ctx) -> Rendered {
    let schema = || {
        registry.decode(ctx, bytes).map(|(id, ty, value)| Rendered {
            format: "schema",
            text: serde_json::to_string_pretty(&value).unwrap_or_default(),
            size: bytes.len(),
            schema_id: Some(id),
            schema_type: Some(ty),
            note: None,
        })
    };
    let json = || {
        if bytes.len() > SHOWN_BYTES_MAX {
            return None;
        }
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .map(|v| plain("json", serde_json::to_string_pretty(&v).unwrap_or_default(), bytes.len(), None))
    };
    let readable = |b: &[u8]| {
        std::str::from_utf8(b).is_ok_and(|s| s.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')))
    };
    match format {
        Format::Auto => {
            schema().or_else(json).or_else(|| readable(bytes).then(|| text(bytes))).unwrap_or_else(|| hex(bytes, None))
        }
        Format::Schema => schema().unwrap_or_else(|| hex(bytes, Some(registry.why_not(ctx, bytes)))),
        Format::Json => json().unwrap_or_else(|| {
            let mut r = text(bytes);
            r.note = Some(match r.note {
                Some(n) => format!("not JSON; {n}"),
                None => "not JSON: shown as text".into(),
            });
            r
        }),
        Format::Text => text(bytes),
        Format::Hex => hex(bytes, None),
    }
}

fn plain(format: &'static str, text: String, size: usize, note: Option<String>) -> Rendered {
    Rendered { format, text, size, schema_id: None, schema_type: None, note }
}

fn cut_note(len: usize) -> Option<String> {
    (len > SHOWN_BYTES_MAX).then(|| format!("the first {SHOWN_BYTES_MAX} of {len} bytes are shown"))
}

fn text(bytes: &[u8]) -> Rendered {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES_MAX)];
    let lossy = std::str::from_utf8(shown).is_err();
    let mut notes: Vec<String> = Vec::new();
    if lossy {
        notes.push("not valid UTF-8: invalid bytes shown as \u{FFFD}".into());
    }
    notes.extend(cut_note(bytes.len()));
    plain(
        "text",
        String::from_utf8_lossy(shown).into_owned(),
        bytes.len(),
        (!notes.is_empty()).then(|| notes.join("; ")),
    )
}

fn hex(bytes: &[u8], why: Option<String>) -> Rendered {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES_MAX)];
    let mut out = String::with_capacity(shown.len() * 4 + 16);
    for (i, line) in shown.chunks(16).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{:08x} ", i * 16));
        for (j, b) in line.iter().enumerate() {
            out.push_str(if j == 8 { "  " } else { " " });
            out.push_str(&format!("{b:02x}"));
        }
        let pad = (16 - line.len()) * 3 + usize::from(line.len() <= 8);
        out.push_str(&" ".repeat(pad));
        out.push_str("  |");
        out.extend(line.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        out.push('|');
    }
    let notes: Vec<String> = why.into_iter().filter(|w| !w.is_empty()).chain(cut_note(bytes.len())).collect();
    plain("hex", out, bytes.len(), (!notes.is_empty()).then(|| notes.join("; ")))
}

// ---------------------------------------------------------------- produce

/// A record to produce (`POST /api/v1/topics/{name}/messages`).
#[derive(Deserialize, Debug, Default)]
pub struct ProduceBody {
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub value: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Serialize, Debug)]
pub struct Produced {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (the broker's, for LogAppendTime topics).
    pub timestamp: i64,
}

/// Round-robin for records without a key and without a partition.
static NEXT_PARTITION: AtomicU32 = AtomicU32::new(0);

/// Kafka's murmur2 (the Java client's default partitioner for keyed records).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition a record goes to: the one asked for; for a key, Kafka's
/// default (murmur2 of the key, positive, modulo the partition count);
/// otherwise round-robin.
pub fn partition_for(key: Option<&[u8]>, partitions: i32) -> i32 {
    let n = partitions.max(1) as u32;
    match key {
        Some(k) => ((murmur2(k) & 0x7fff_ffff) as u32 % n) as i32,
        None => (NEXT_PARTITION.fetch_add(1, Ordering::Relaxed) % n) as i32,
    }
}

pub async fn produce(ctx: &Ctx, topic: &str, body: ProduceBody) -> Result<Produced, ConsoleError> {
    let (topic_id, partitions) = topic_of(ctx, topic)?;
    let partition = match body.partition {
        Some(p) if p < 0 || p >= partitions => {
            return Err(ConsoleError::not_found(format!("topic {topic} has no partition {p} (it has {partitions})")))
        }
        Some(p) => p,
        None => partition_for(body.key.as_deref().map(str::as_bytes), partitions),
    };
    let leader = ctx.leader_of(topic, partition)?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: body.key.map(Bytes::from),
        value: body.value.map(Bytes::from),
        headers: body.headers.into_iter().map(|(k, v)| (StrBytes::from_string(k), Some(Bytes::from(v)))).collect(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .map_err(|e| ConsoleError::internal(format!("encoding the record: {e}")))?;
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_topic_id(topic_id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(buf.freeze()))]),
    ]);
    let response = ctx.call_at(leader, request, &[(AclOperation::Write, ResourceType::Topic, topic)]).await?;
    let context = format!("produce to {topic}-{partition}");
    let p = response
        .responses
        .into_iter()
        .flat_map(|t| t.partition_responses)
        .find(|p| p.index == partition)
        .ok_or_else(|| ConsoleError::internal(format!("{context}: Produce answered without the partition")))?;
    let mut message: Vec<String> = p.error_message.iter().map(|m| m.to_string()).collect();
    message.extend(p.record_errors.iter().filter_map(|e| e.batch_index_error_message.as_ref().map(|m| m.to_string())));
    ConsoleError::check(p.error_code, &context, Some(&message.join("; ")))?;
    Ok(Produced {
        topic: topic.to_string(),
        partition,
        offset: p.base_offset,
        timestamp: if p.log_append_time_ms >= 0 { p.log_append_time_ms } else { now },
    })
}

/// The produce form's fields.
#[derive(Deserialize, Debug, Default)]
pub struct ProduceForm {
    #[serde(default)]
    partition: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    headers: String,
}

impl ProduceForm {
    fn body(self) -> Result<ProduceBody, ConsoleError> {
        let partition =
            match self.partition.trim() {
                "" => None,
                p => Some(p.parse::<i32>().map_err(|_| {
                    ConsoleError::bad_request(format!("partition must be a partition number, not {p:?}"))
                })?),
            };
        let mut headers = BTreeMap::new();
        for line in self.headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| ConsoleError::bad_request(format!("a header is a key=value line, not {line:?}")))?;
            headers.insert(k.trim().to_string(), v.to_string());
        }
        Ok(ProduceBody { partition, key: (!self.key.is_empty()).then_some(self.key), value: Some(self.value), headers })
    }
}

// ---------------------------------------------------------------- routes

async fn api_browse(ctx: Ctx, Path(name): Path<String>, Query(query): Query<RawQuery>) -> ApiResult<MessagePage> {
    Ok(Json(browse(&ctx, &name, &query).await?))
}

async fn api_produce(
    ctx: Ctx,
    Path(name): Path<String>,
    body: Result<Json<ProduceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Produced>), crate::error::ApiError> {
    let Json(body) = body.map_err(|e| ConsoleError::bad_request(format!("invalid JSON body: {}", e.body_text())))?;
    Ok((StatusCode::CREATED, Json(produce(&ctx, &name, body).await?)))
}

async fn produce_form(
    ctx: Ctx,
    Path(name): Path<String>,
    Form(form): Form<ProduceForm>,
) -> Result<Redirect, PageError> {
    let produced = produce(&ctx, &name, form.body()?).await?;
    let done = format!("Produced a record to partition {} at offset {}", produced.partition, produced.offset);
    Ok(Redirect::to(&format!(
        "/topics/{}/messages?partition={}&offset={}&done={}",
        url_encode(&name),
        produced.partition,
        produced.offset,
        url_encode(&done)
    )))
}

/// `GET /topics/{name}/messages/tail?partition=P&offset=O...`: the rows of
/// the records from O on (at most [`TAIL_LIMIT`]); the header
/// `X-Vltava-Next-Offset` says where the next poll starts.
async fn tail(ctx: Ctx, Path(name): Path<String>, Query(query): Query<RawQuery>) -> Result<Response, PageError> {
    let mut notices = Vec::new();
    let mut params = query.parse(&mut notices)?;
    params.limit = TAIL_LIMIT;
    if matches!(params.start, Start::Latest) {
        return Err(ConsoleError::bad_request("the tail needs the offset to start from").into());
    }
    let page = read_page(&ctx, &name, params, notices).await?;
    let rows = html! { @for r in &page.records { (row(r)) } };
    let mut response = rows.into_response();
    if let Ok(v) = HeaderValue::from_str(&page.next_offset.to_string()) {
        response.headers_mut().insert("x-vltava-next-offset", v);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn page(ctx: Ctx, Path(name): Path<String>, Query(query): Query<RawQuery>) -> PageResult {
    let model = browse(&ctx, &name, &query).await?;
    let body = render_page(&model, &query);
    Ok(layout::page(&ctx, "/topics", &format!("Messages of {name}"), body))
}

// ---------------------------------------------------------------- the page

fn link(page: &MessagePage, offset: &str) -> String {
    let mut url = format!(
        "/topics/{}/messages?partition={}&offset={offset}&limit={}&format={}",
        url_encode(&page.topic),
        page.partition,
        page.limit,
        page.format.as_str()
    );
    if let Some(k) = &page.key_filter {
        url.push_str(&format!("&key={}&key_match={}", url_encode(k), page.key_match));
    }
    if let Some(v) = &page.value_filter {
        url.push_str(&format!("&value_contains={}", url_encode(v)));
    }
    if page.isolation == "read_uncommitted" {
        url.push_str("&isolation=read_uncommitted");
    }
    url
}

fn rendered(r: &Option<Rendered>, what: &str) -> Markup {
    html! {
        @match r {
            None => span.muted { "null" },
            Some(r) => {
                @let label = match (&r.schema_type, r.schema_id) {
                    (Some(t), Some(id)) => format!("{} schema {id} · {} B", t.to_lowercase(), r.size),
                    _ => format!("{} · {} B", r.format, r.size),
                };
                div.rendered data-format=(r.format) {
                    span.fmt { (label) }
                    @if let Some(n) = &r.note { span.note { (n) } }
                    pre aria-label=(what) { (r.text) }
                }
            }
        }
    }
}

fn row(r: &MessageView) -> Markup {
    html! {
        tr data-offset=(r.offset) {
            td.num data-sort=(r.offset) { (r.offset) }
            td.ts {
                (layout::utc_millis(r.timestamp))
                br;
                span.muted { (r.timestamp_type) @if r.transactional { " · transactional" } }
            }
            td.key { (rendered(&r.key, "key")) }
            td.headers {
                @if r.headers.is_empty() { span.muted { "none" } }
                @for h in &r.headers {
                    div.header {
                        span.hkey { (h.key) } " = "
                        @match &h.value { None => span.muted { "null" }, Some(v) => code { (v.text) } }
                    }
                }
            }
            td.value { (rendered(&r.value, "value")) }
        }
    }
}

/// A labelled `select` of `options` with `current` selected.
fn choice(label: &str, name: &str, options: &[&str], current: &str) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                @for o in options { option value=(o) selected[*o == current] { (o) } }
            }
        }
    }
}

fn render_page(page: &MessagePage, query: &RawQuery) -> Markup {
    let base = format!("/topics/{}/messages", url_encode(&page.topic));
    let tail_url = format!(
        "{base}/tail?partition={}&format={}{}{}{}",
        page.partition,
        page.format.as_str(),
        page.key_filter
            .as_ref()
            .map(|k| format!("&key={}&key_match={}", url_encode(k), page.key_match))
            .unwrap_or_default(),
        page.value_filter.as_ref().map(|v| format!("&value_contains={}", url_encode(v))).unwrap_or_default(),
        if page.isolation == "read_uncommitted" { "&isolation=read_uncommitted" } else { "" },
    );
    html! {
        p { a href=(format!("/topics/{}", url_encode(&page.topic))) { "Topic " (page.topic) } }
        @if let Some(done) = given(&query.done) { p.notice role="status" { (done) } }
        @for n in &page.notices { p.notice.clamped role="status" { (n) } }
        section aria-labelledby="browse-h" {
            h2 #browse-h { "Browse" }
            form.row.browse method="get" action=(base) {
                label { "Partition"
                    select name="partition" {
                        @for p in 0..page.partitions {
                            option value=(p) selected[p == page.partition] { (p) }
                        }
                    }
                }
                label { "Offset" input name="offset" type="text" inputmode="numeric" size="10" placeholder="earliest, latest or a number"; }
                label { "or time" input name="timestamp" type="text" size="22" placeholder="2026-11-30T17:05:00Z or ms"; }
                label { "Records" input name="limit" type="number" min="1" max=(LIMIT_MAX) value=(page.limit) size="5"; }
                (choice("Show as", "format", &Format::ALL.map(Format::as_str), page.format.as_str()))
                label { "Key"
                    input name="key" type="text" size="12" value=(page.key_filter.clone().unwrap_or_default());
                }
                (choice("Key match", "key_match", &["contains", "exact"], page.key_match))
                label { "Value contains"
                    input name="value_contains" type="text" size="14" value=(page.value_filter.clone().unwrap_or_default());
                }
                (choice("Isolation", "isolation", &["read_committed", "read_uncommitted"], page.isolation))
                button type="submit" { "Show" }
            }
            nav.pager aria-label="Pages" {
                a href=(link(page, "earliest")) { "Earliest" }
                @if let Some(prev) = page.previous_offset { a href=(link(page, &prev.to_string())) rel="prev" { "Previous" } }
                @else { span.muted { "Previous" } }
                @if !page.at_end || page.scan_budget_reached { a href=(link(page, &page.next_offset.to_string())) rel="next" { "Next" } }
                @else { span.muted { "Next" } }
                a href=(link(page, "latest")) { "Latest" }
            }
            p.summary {
                "Partition " (page.partition) ": offsets " (page.log_start_offset) " to " (page.end_offset) " (end). "
                @if page.records.is_empty() { "No records shown" } @else {
                    "Showing " (page.records.len()) " record" @if page.records.len() != 1 { "s" }
                    " from offset " (page.records[0].offset)
                }
                "; scanned " (page.scanned_records) @if page.scanned_records == 1 { " record (" } @else { " records (" } (layout::human_bytes(page.scanned_bytes)) ") from offset "
                (page.start_offset) " to " (page.next_offset) ". "
                @if page.scan_budget_reached {
                    strong { "The scan stopped at its limit; " }
                    a href=(link(page, &page.next_offset.to_string())) { "continue from offset " (page.next_offset) }
                    ". "
                }
                @if page.hidden_records > 0 { (page.hidden_records) " control or aborted records hidden (" (page.isolation) ")." }
            }
            div.tail {
                button type="button" #tail-toggle aria-pressed="false" data-tail-url=(tail_url) data-next-offset=(page.next_offset) { "Live tail" }
                span #tail-status role="status" aria-live="polite" { }
            }
            div.table-wrap {
                table.messages #messages {
                    caption.visually-hidden { "Records of " (page.topic) " partition " (page.partition) }
                    thead { tr { th.num { "Offset" } th { "Timestamp" } th { "Key" } th { "Headers" } th { "Value" } } }
                    tbody aria-live="polite" { @for r in &page.records { (row(r)) } }
                }
            }
        }
        section aria-labelledby="produce-h" {
            h2 #produce-h { "Produce a message" }
            form.stack.produce method="post" action=(base) {
                label for="p-partition" { "Partition (empty: by key, or round-robin)" }
                input #p-partition name="partition" type="text" inputmode="numeric";
                label for="p-key" { "Key (empty: none)" }
                input #p-key name="key" type="text";
                label for="p-headers" { "Headers (key=value lines)" }
                textarea #p-headers name="headers" rows="2" {}
                label for="p-value" { "Value (text)" }
                textarea #p-value name="value" rows="4" {}
                div { button type="submit" { "Produce" } }
            }
        }
        link rel="stylesheet" href=(crate::assets::url("messages.css"));
        script src=(crate::assets::url("messages.js")) defer {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's UtilsTest.testMurmur2
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58_897_971);
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("1796000000123"), Some(1_796_000_000_123));
        assert_eq!(parse_time("2026-11-30T00:53:20.123Z"), Some(1_796_000_000_123));
        assert_eq!(parse_time("2026-11-30 00:53:20Z"), Some(1_796_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2026-13-01T00:00Z"), None);
        assert_eq!(parse_time("-5"), None);
    }

    #[test]
    fn params_are_checked() {
        let q = |pairs: &[(&str, &str)]| {
            let mut r = RawQuery::default();
            for (k, v) in pairs {
                let v = Some(v.to_string());
                match *k {
                    "partition" => r.partition = v,
                    "offset" => r.offset = v,
                    "limit" => r.limit = v,
                    "format" => r.format = v,
                    _ => r.timestamp = v,
                }
            }
            r.parse(&mut Vec::new())
        };
        assert!(q(&[("partition", "x")]).is_err());
        assert!(q(&[("offset", "-1")]).is_err());
        assert!(q(&[("offset", "abc")]).is_err());
        assert!(q(&[("limit", "0")]).is_err());
        assert!(q(&[("format", "xml")]).is_err());
        assert!(q(&[("offset", "1"), ("timestamp", "2")]).is_err());
        assert_eq!(q(&[("offset", "1000000000000000")]).unwrap().start, Start::Offset(1_000_000_000_000_000));
        let mut notices = Vec::new();
        let p = RawQuery { limit: Some("9999".into()), ..Default::default() }.parse(&mut notices).unwrap();
        assert_eq!(p.limit, LIMIT_MAX);
        assert_eq!(notices.len(), 1);
    }

    #[test]
    fn batches_split_and_decode() {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: 10 + i,
                sequence: i as i32,
                timestamp: 5,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from_static(b"{\"a\":1}")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions { version: 2, compression: Compression::Lz4 },
        )
        .unwrap();
        let whole = buf.len();
        buf.extend_from_slice(&buf.clone()[..whole / 2]); // a partial batch after it
        let batches = split_batches(buf.freeze());
        assert_eq!(batches.len(), 1);
        assert_eq!((batches[0].base_offset, batches[0].last_offset), (10, 12));
        let decoded = batches[0].records.as_ref().unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[2].key.as_deref(), Some(&b"k2"[..]));
    }

    #[test]
    fn hex_dump() {
        let r = hex(b"hello, world! 0123456789", None);
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines[0], "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 20 30 31  |hello, world! 01|");
        assert!(lines[1].starts_with("00000010  32 33 34 35 36 37 38 39"), "{}", lines[1]);
        assert!(lines[1].ends_with("|23456789|"), "{}", lines[1]);
        assert_eq!(lines[0].find('|'), lines[1].find('|'), "the text column lines up");
    }
}
