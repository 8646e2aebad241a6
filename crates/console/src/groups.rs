//! The groups section: every group of every type (classic, consumer
//! (KIP-848), share) with its state, members, assignment and lag
//! (`/groups`, `/groups/{name}`), the lag chart (sampled in-process by
//! [`sample`]), resetting a stopped group's offsets with a preview, and
//! deleting an empty group. Reads and writes are Kafka requests as the
//! console's user at the group's coordinator (ListGroups, DescribeGroups,
//! ConsumerGroupDescribe, ShareGroupDescribe, OffsetFetch, ListOffsets,
//! OffsetCommit, DeleteGroups). A share group's progress per share
//! partition comes from DescribeShareGroupOffsets (start offsets) and the
//! share coordinator's ReadShareGroupState (delivery counts; it needs
//! CLUSTER_ACTION when an authorizer is on), as `vltava group describe`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Form, Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Json;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::read_share_group_state_request::{PartitionData, ReadStateData};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, DescribeShareGroupOffsetsRequest,
    GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, ReadShareGroupStateRequest,
    ShareGroupDescribeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use vltava_broker::share::coordinator::SHARE_STATE_TOPIC;
use vltava_broker::share::persister::{DeliveryCounts, ShareKey};
use vltava_metadata::{AclOperation, ResourceType};

use crate::error::{ApiResult, ConsoleError, PageResult};
use crate::lag::{self, PartitionLag};
use crate::layout::{self, url_encode};
use crate::{Ctx, Routes};

/// Groups sampled per [`sample`] at most (the rest get no chart points).
const SAMPLE_GROUPS_MAX: usize = 2_000;
/// Per-partition lag series written per [`sample`] at most.
const SAMPLE_PARTITION_SERIES_MAX: usize = 10_000;
/// Groups per batched OffsetFetch / describe request.
const BATCH: usize = 100;
const GROUP_ID_NOT_FOUND: i16 = 69;

pub fn routes() -> Routes {
    Routes::new()
        .route("/groups", get(list_page))
        .route("/api/v1/groups", get(list_api))
        .route("/groups/{name}", get(group_page))
        .route("/api/v1/groups/{name}", get(group_api).delete(delete_api))
        .route("/api/v1/groups/{name}/lag-history", get(lag_history_api))
        .route("/groups/{name}/reset", get(reset_form_page).post(reset_post))
        .route("/api/v1/groups/{name}/reset-offsets", axum::routing::post(reset_api))
        .route("/groups/{name}/delete", get(delete_page).post(delete_post))
}

// ---------------------------------------------------------------- models

/// A row of `/groups`.
#[derive(Serialize, Debug, Clone)]
pub struct GroupRow {
    pub group: String,
    /// `classic`, `consumer` or `share`.
    pub group_type: String,
    pub state: String,
    /// The protocol type of a classic group (`consumer`, `connect`, ...).
    pub protocol_type: String,
    /// The classic group's chosen protocol (assignor, e.g. `range`) or the
    /// consumer / share group's assignor (`uniform`).
    pub protocol: String,
    pub members: usize,
    /// The sum of the lags of the partitions it committed offsets for
    /// (none for share groups).
    pub total_lag: Option<i64>,
    pub coordinator: i32,
}

#[derive(Serialize, Debug)]
pub struct GroupList {
    pub groups: Vec<GroupRow>,
}

/// Partitions of one topic in an assignment.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Assigned {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<Assigned>,
}

/// What describing a group tells (the same for the three group types).
#[derive(Serialize, Debug, Clone)]
struct Described {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

/// `/groups/{name}`.
#[derive(Serialize, Debug)]
pub struct GroupDetail {
    pub group: String,
    pub group_type: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub coordinator: i32,
    pub members: Vec<Member>,
    /// Committed offset, end offset and lag per partition (classic and
    /// consumer groups).
    pub partitions: Vec<PartitionLag>,
    /// A share group's progress per share partition (empty for the others).
    pub share_partitions: Vec<SharePartition>,
    /// Why a share group's delivery counts are missing (e.g. no
    /// CLUSTER_ACTION), when they are.
    pub share_counts_error: Option<String>,
    /// Classic and consumer groups: the sum of `partitions`' lags; share
    /// groups: of `share_partitions`'.
    pub total_lag: i64,
    /// Whether its offsets may be reset / it may be deleted (no members:
    /// state `Empty` or `Dead`).
    pub stopped: bool,
}

/// One share partition of a share group: where the group is on it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SharePartition {
    pub topic: String,
    pub partition: i32,
    /// Every offset below it is done; `None` while the group has not read
    /// the partition yet.
    pub start_offset: Option<i64>,
    /// Delivered and not finished, acknowledged, archived: counts of the
    /// offsets at or above the start offset (`None` when the state could
    /// not be read).
    pub in_flight: Option<i64>,
    pub acknowledged: Option<i64>,
    pub archived: Option<i64>,
    pub end_offset: Option<i64>,
    /// The offsets from the start offset to the end whose delivery is not
    /// complete (KIP-1226's share lag).
    pub lag: Option<i64>,
}

// ------------------------------------------------------------- Kafka calls

fn gid(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn describe_auth(groups: &[String]) -> Vec<(AclOperation, ResourceType, &str)> {
    groups.iter().map(|g| (AclOperation::Describe, ResourceType::Group, g.as_str())).collect()
}

/// The groups of a ConsumerGroupDescribe or ShareGroupDescribe response
/// (the same shape) into `out`; `instance` gives a member's instance id.
macro_rules! kip848_groups {
    ($response:expr, $type:literal, $m:ident => $instance:expr, $out:expr) => {
        for g in $response.groups {
            if g.error_code != 0 {
                continue;
            }
            let members = g
                .members
                .into_iter()
                .map(|$m| Member {
                    member_id: $m.member_id.to_string(),
                    client_id: $m.client_id.to_string(),
                    host: $m.client_host.to_string(),
                    assignment: $m
                        .assignment
                        .topic_partitions
                        .iter()
                        .map(|t| Assigned { topic: t.topic_name.0.to_string(), partitions: t.partitions.clone() })
                        .collect(),
                    instance_id: $instance,
                })
                .collect();
            let d = Described {
                state: g.group_state.to_string(),
                protocol_type: $type.into(),
                protocol: g.assignor_name.to_string(),
                members,
            };
            $out.insert(g.group_id.0.to_string(), d);
        }
    };
}

/// Describes `groups` (all of `group_type`, coordinated by `node`) with the
/// API of their type; a group whose description fails is left out.
async fn describe(
    ctx: &Ctx,
    node: i32,
    group_type: &str,
    groups: &[String],
) -> Result<HashMap<String, Described>, ConsoleError> {
    let mut out = HashMap::new();
    let auth = describe_auth(groups);
    let ids: Vec<GroupId> = groups.iter().map(|g| gid(g)).collect();
    match group_type {
        "consumer" => {
            let r = ctx.call_at(node, ConsumerGroupDescribeRequest::default().with_group_ids(ids), &auth).await?;
            kip848_groups!(r, "consumer", m => m.instance_id.map(|s| s.to_string()), out);
        }
        "share" => {
            let r = ctx.call_at(node, ShareGroupDescribeRequest::default().with_group_ids(ids), &auth).await?;
            kip848_groups!(r, "share", m => None, out);
        }
        _ => {
            let r = ctx.call_at(node, DescribeGroupsRequest::default().with_groups(ids), &auth).await?;
            for g in r.groups {
                if g.error_code != 0 {
                    continue;
                }
                let consumer = g.protocol_type.as_str() == "consumer";
                let members = g
                    .members
                    .into_iter()
                    .map(|m| Member {
                        member_id: m.member_id.to_string(),
                        instance_id: m.group_instance_id.map(|s| s.to_string()),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: if consumer { decode_assignment(&m.member_assignment) } else { Vec::new() },
                    })
                    .collect();
                let d = Described {
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    protocol: g.protocol_data.to_string(),
                    members,
                };
                out.insert(g.group_id.0.to_string(), d);
            }
        }
    }
    Ok(out)
}

/// The topic-partitions of a classic consumer's assignment (Kafka's
/// `ConsumerProtocolAssignment`: version, [topic, [partition]], user
/// data); empty when the bytes are not one.
pub fn decode_assignment(bytes: &[u8]) -> Vec<Assigned> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    let parse = |mut b: &[u8]| -> Option<Vec<Assigned>> {
        let version = i16_(&mut b)?;
        if !(0..=3).contains(&version) {
            return None;
        }
        let topics = i32_(&mut b)?;
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            let len = i16_(&mut b)?;
            let name = String::from_utf8_lossy(take(&mut b, usize::try_from(len).ok()?)?).into_owned();
            let n = i32_(&mut b)?;
            if n < 0 || n as usize > b.len() / 4 {
                return None;
            }
            let partitions = (0..n).map(|_| i32_(&mut b)).collect::<Option<Vec<i32>>>()?;
            out.push(Assigned { topic: name, partitions });
        }
        Some(out)
    };
    if bytes.is_empty() {
        return Vec::new();
    }
    parse(bytes).unwrap_or_default()
}

/// The committed offsets of `groups` (coordinated by `node`), batched.
async fn committed_many(
    ctx: &Ctx,
    node: i32,
    groups: &[String],
) -> Result<HashMap<String, BTreeMap<(String, i32), i64>>, ConsoleError> {
    let request = OffsetFetchRequest::default().with_groups(
        groups
            .iter()
            .map(|g| OffsetFetchRequestGroup::default().with_group_id(gid(g)).with_member_epoch(-1).with_topics(None))
            .collect(),
    );
    let response = ctx.call_at(node, request, &describe_auth(groups)).await?;
    let mut out = HashMap::new();
    for g in response.groups {
        if g.error_code != 0 {
            continue;
        }
        let mut offsets = BTreeMap::new();
        for t in g.topics {
            for p in t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    offsets.insert((t.name.0.to_string(), p.partition_index), p.committed_offset);
                }
            }
        }
        out.insert(g.group_id.0.to_string(), offsets);
    }
    Ok(out)
}

/// The group `name` as its coordinator lists it (404 when it has none).
async fn find(ctx: &Ctx, name: &str) -> Result<lag::ListedGroup, ConsoleError> {
    let node = ctx.group_coordinator(name)?;
    let response = ctx.call_at(node, ListGroupsRequest::default(), &[]).await?;
    ConsoleError::check(response.error_code, "list groups", None)?;
    let remote = node != ctx.broker.config.node_id;
    let found = response.groups.into_iter().find(|g| g.group_id.0.as_str() == name);
    match found {
        Some(g) if !remote || ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Group, name) => {
            Ok(lag::ListedGroup {
                group: name.to_string(),
                group_type: g.group_type.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
                coordinator: node,
            })
        }
        _ => Err(ConsoleError::not_found(format!("no group {name}"))),
    }
}

// ------------------------------------------------------------------ list

async fn list_model(ctx: &Ctx) -> Result<GroupList, ConsoleError> {
    let listed = lag::list_groups(ctx).await?;
    // by (coordinator, type): one describe and one OffsetFetch per batch
    let mut batches: BTreeMap<(i32, String), Vec<String>> = BTreeMap::new();
    for g in &listed {
        batches.entry((g.coordinator, g.group_type.clone())).or_default().push(g.group.clone());
    }
    let mut described = HashMap::new();
    let mut committed = HashMap::new();
    for ((node, group_type), names) in &batches {
        for chunk in names.chunks(BATCH) {
            match describe(ctx, *node, group_type, chunk).await {
                Ok(d) => described.extend(d),
                Err(e) => tracing::debug!(node, error = %e, "console: describing groups failed"),
            }
            if group_type != "share" {
                match committed_many(ctx, *node, chunk).await {
                    Ok(c) => committed.extend(c),
                    Err(e) => tracing::debug!(node, error = %e, "console: OffsetFetch failed"),
                }
            }
        }
    }
    let mut keys: Vec<(String, i32)> = committed.values().flat_map(|c| c.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    let ends = lag::end_offsets(ctx, &keys).await.unwrap_or_default();
    let groups = listed
        .into_iter()
        .map(|g| {
            let d = described.get(&g.group);
            let total_lag = committed
                .get(&g.group)
                .map(|c| c.iter().filter_map(|(k, off)| ends.get(k).map(|end| (end - off).max(0))).sum::<i64>());
            GroupRow {
                state: d.map(|d| d.state.clone()).unwrap_or(g.state.clone()),
                protocol_type: d.map(|d| d.protocol_type.clone()).unwrap_or(g.protocol_type.clone()),
                protocol: d.map(|d| d.protocol.clone()).unwrap_or_default(),
                members: d.map(|d| d.members.len()).unwrap_or(0),
                total_lag,
                coordinator: g.coordinator,
                group_type: if g.group_type.is_empty() { "classic".into() } else { g.group_type },
                group: g.group,
            }
        })
        .collect();
    Ok(GroupList { groups })
}

async fn list_api(ctx: Ctx) -> ApiResult<GroupList> {
    Ok(Json(list_model(&ctx).await?))
}

/// The `?done=` notice of a page a form redirected to.
pub(crate) fn notice(q: &HashMap<String, String>) -> Markup {
    html! {
        @if let Some(done) = q.get("done").filter(|d| !d.is_empty()) {
            p.notice role="status" { (done) }
        }
    }
}

async fn list_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let model = list_model(&ctx).await?;
    let body = html! {
        (notice(&q))
        p.muted { (model.groups.len()) @if model.groups.len() == 1 { " group" } @else { " groups" } " (classic, consumer and share groups of every coordinator)." }
        form.row role="search" onsubmit="return false" {
            label for="group-filter" { "Filter groups" }
            input #group-filter type="search" data-filter-table="groups" placeholder="name, type, state…";
        }
        div.table-wrap {
            table.sortable #groups {
                thead { tr {
                    th { "Group" } th { "Type" } th { "State" } th { "Protocol / assignor" }
                    th.num { "Members" } th.num { "Total lag" } th.num { "Coordinator" }
                } }
                tbody {
                    @for g in &model.groups {
                        tr {
                            td { a href={ "/groups/" (url_encode(&g.group)) } { (g.group) } }
                            td { (g.group_type) }
                            td { (g.state) }
                            td { (g.protocol) }
                            td.num data-sort=(g.members) { (g.members) }
                            @match g.total_lag {
                                Some(l) => td.num data-sort=(l) { (l) },
                                None => td.num data-sort="-1" { span.muted { "-" } },
                            }
                            td.num data-sort=(g.coordinator) { a href={ "/brokers/" (g.coordinator) } { (g.coordinator) } }
                        }
                    }
                }
            }
        }
        @if model.groups.is_empty() { p.muted { "No groups yet." } }
    };
    Ok(layout::page(&ctx, "/groups", "Groups", body))
}

// ---------------------------------------------------------------- detail

/// A share group's share partitions: start offsets from its coordinator,
/// delivery counts from each share partition's share coordinator, end
/// offsets from the leaders. The second value says why counts are missing.
async fn share_partitions(
    ctx: &Ctx,
    group: &str,
    coordinator: i32,
) -> Result<(Vec<SharePartition>, Option<String>), ConsoleError> {
    let request =
        DescribeShareGroupOffsetsRequest::default().with_groups(vec![DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(gid(group))
            .with_topics(None)]);
    let r = ctx.call_at(coordinator, request, &describe_auth(&[group.to_string()])).await?;
    let Some(g) = r.groups.into_iter().next() else { return Ok((Vec::new(), None)) };
    match g.error_code {
        0 => {}
        // a share group that has never read anything
        GROUP_ID_NOT_FOUND => return Ok((Vec::new(), None)),
        code => return Err(ConsoleError::kafka(code, &format!("group {group}"), g.error_message.as_deref())),
    }
    // (topic, partition, start offset, delivery counts)
    let mut found: Vec<(String, i32, Option<i64>, Option<DeliveryCounts>)> = Vec::new();
    let mut counts_error = None;
    for t in g.topics {
        for p in t.partitions.iter().filter(|p| p.error_code == 0) {
            let start = (p.start_offset >= 0).then_some(p.start_offset);
            let counts = match start {
                Some(_) => read_counts(ctx, group, t.topic_id, p.partition_index).await.unwrap_or_else(|e| {
                    counts_error.get_or_insert(e.message);
                    None
                }),
                None => None,
            };
            found.push((t.topic_name.0.to_string(), p.partition_index, start, counts));
        }
    }
    let keys: Vec<(String, i32)> = found.iter().map(|(t, p, _, _)| (t.clone(), *p)).collect();
    let ends = lag::end_offsets(ctx, &keys).await?;
    let mut rows: Vec<SharePartition> = found
        .into_iter()
        .map(|(topic, partition, start, counts)| {
            let end = ends.get(&(topic.clone(), partition)).copied();
            SharePartition {
                start_offset: start,
                in_flight: counts.map(|c| c.in_flight),
                acknowledged: counts.map(|c| c.acknowledged),
                archived: counts.map(|c| c.archived),
                end_offset: end,
                lag: start.zip(end).map(|(start, end)| DeliveryCounts::lag(counts, start, end)),
                topic,
                partition,
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok((rows, counts_error))
}

/// ReadShareGroupState of one share partition at its share coordinator
/// (leader epoch -1: a read that fences no share partition leader).
async fn read_counts(
    ctx: &Ctx,
    group: &str,
    topic_id: uuid::Uuid,
    partition: i32,
) -> Result<Option<DeliveryCounts>, ConsoleError> {
    let key = ShareKey { group: group.to_string(), topic_id, partition };
    let node = ctx.leader_of(SHARE_STATE_TOPIC, ctx.broker.share_coordinator.partition_of(&key))?;
    let request =
        ReadShareGroupStateRequest::default().with_group_id(StrBytes::from_string(group.into())).with_topics(vec![
            ReadStateData::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![PartitionData::default().with_partition(partition).with_leader_epoch(-1)]),
        ]);
    let auth = [(AclOperation::ClusterAction, ResourceType::Cluster, "kafka-cluster")];
    let r = ctx.call_at(node, request, &auth).await?;
    let Some(p) = r.results.first().and_then(|t| t.partitions.first()) else { return Ok(None) };
    if p.error_code != 0 {
        return Err(ConsoleError::kafka(
            p.error_code,
            &format!("share partition {group}:{partition}"),
            p.error_message.as_deref(),
        ));
    }
    let batches =
        p.state_batches.iter().map(|b| (b.first_offset, b.last_offset, b.delivery_state as u8, b.delivery_count));
    Ok(Some(DeliveryCounts::of(p.start_offset, batches)))
}

async fn detail_model(ctx: &Ctx, name: &str) -> Result<GroupDetail, ConsoleError> {
    let listed = find(ctx, name).await?;
    let group_type = if listed.group_type.is_empty() { "classic".to_string() } else { listed.group_type.clone() };
    let d = describe(ctx, listed.coordinator, &group_type, &[name.to_string()]).await?.remove(name);
    let (partitions, share, share_counts_error, total_lag) = if group_type == "share" {
        let (share, error) = share_partitions(ctx, name, listed.coordinator).await?;
        let total = share.iter().filter_map(|p| p.lag).sum();
        (Vec::new(), share, error, total)
    } else {
        let l = lag::group_lag(ctx, name).await?;
        (l.partitions, Vec::new(), None, l.total_lag)
    };
    let d = d.unwrap_or(Described {
        state: listed.state.clone(),
        protocol_type: listed.protocol_type.clone(),
        protocol: String::new(),
        members: Vec::new(),
    });
    Ok(GroupDetail {
        group: name.to_string(),
        stopped: d.members.is_empty() && matches!(d.state.as_str(), "Empty" | "Dead"),
        group_type,
        state: d.state,
        protocol_type: d.protocol_type,
        protocol: d.protocol,
        coordinator: listed.coordinator,
        members: d.members,
        partitions,
        share_partitions: share,
        share_counts_error,
        total_lag,
    })
}

async fn group_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<GroupDetail> {
    Ok(Json(detail_model(&ctx, &name).await?))
}

fn assignment_text(a: &[Assigned]) -> Markup {
    html! {
        @if a.is_empty() { span.muted { "none" } }
        @for t in a {
            span.mono { (t.topic) ": " (t.partitions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")) }
            br;
        }
    }
}

async fn group_page(ctx: Ctx, Path(name): Path<String>, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let g = detail_model(&ctx, &name).await?;
    let enc = url_encode(&g.group);
    let body = html! {
        (notice(&q))
        div.cards {
            div.card { div.label { "Type" } div.value { (g.group_type) } }
            div.card { div.label { "State" } div.value #group-state { (g.state) } }
            div.card { div.label { "Members" } div.value { (g.members.len()) } }
            div.card { div.label { "Total lag" } div.value #total-lag { (g.total_lag) } }
            div.card { div.label { "Protocol / assignor" } div.value { @if g.protocol.is_empty() { "-" } @else { (g.protocol) } } }
            div.card { div.label { "Coordinator" } div.value { a href={ "/brokers/" (g.coordinator) } { (g.coordinator) } } }
        }
        h2 { "Members" }
        @if g.members.is_empty() {
            p.muted { "No active members." }
        } @else {
            div.table-wrap { table.sortable #members {
                thead { tr { th { "Client id" } th { "Host" } th { "Member id" } th { "Assignment" } } }
                tbody { @for m in &g.members { tr {
                    td { (m.client_id) }
                    td { (m.host) }
                    td.mono { (m.member_id) @if let Some(i) = &m.instance_id { br; span.muted { "instance " (i) } } }
                    td { (assignment_text(&m.assignment)) }
                } } }
            } }
        }
        @if g.group_type == "share" {
            // share groups acknowledge records one by one: no committed offsets
            h2 { "Share partitions" }
            p.muted {
                "Records below the start offset are done. In flight: delivered and not yet acknowledged; "
                "acknowledged and archived count the records at or above the start offset. "
                "Lag: the records from the start offset to the end not yet acknowledged or archived."
            }
            @if let Some(e) = &g.share_counts_error {
                p.warn #share-counts-error { "Delivery counts unavailable: " (e) }
            }
            div.table-wrap { table.sortable #share-partitions {
                thead { tr {
                    th { "Topic" } th.num { "Partition" } th.num { "Start offset" } th.num { "In flight" }
                    th.num { "Acknowledged" } th.num { "Archived" } th.num { "End offset" } th.num { "Lag" }
                } }
                tbody { @for p in &g.share_partitions { tr data-topic=(p.topic) data-partition=(p.partition) {
                    td { a href={ "/topics/" (url_encode(&p.topic)) } { (p.topic) } }
                    td.num data-sort=(p.partition) { (p.partition) }
                    td.num.start data-sort=(p.start_offset.unwrap_or(-1)) { (opt(p.start_offset)) }
                    td.num data-sort=(p.in_flight.unwrap_or(-1)) { (opt(p.in_flight)) }
                    td.num.acknowledged data-sort=(p.acknowledged.unwrap_or(-1)) { (opt(p.acknowledged)) }
                    td.num.archived data-sort=(p.archived.unwrap_or(-1)) { (opt(p.archived)) }
                    td.num data-sort=(p.end_offset.unwrap_or(-1)) { (opt(p.end_offset)) }
                    td.num.lag data-sort=(p.lag.unwrap_or(-1)) { (opt(p.lag)) }
                } } }
            } }
            @if g.share_partitions.is_empty() { p.muted { "The group has not read any partition yet." } }
        } @else {
            h2 { "Lag per partition" }
            form.row role="search" onsubmit="return false" {
                label for="lag-filter" { "Filter partitions" }
                input #lag-filter type="search" data-filter-table="lag";
            }
            div.table-wrap { table.sortable #lag {
                thead { tr { th { "Topic" } th.num { "Partition" } th.num { "Committed" } th.num { "End offset" } th.num { "Lag" } } }
                tbody { @for p in &g.partitions { tr data-topic=(p.topic) data-partition=(p.partition) {
                    td { a href={ "/topics/" (url_encode(&p.topic)) } { (p.topic) } }
                    td.num data-sort=(p.partition) { (p.partition) }
                    td.num data-sort=(p.committed.unwrap_or(-1)) { (opt(p.committed)) }
                    td.num data-sort=(p.end_offset.unwrap_or(-1)) { (opt(p.end_offset)) }
                    td.num.lag data-sort=(p.lag.unwrap_or(-1)) { (opt(p.lag)) }
                } } }
            } }
            @if g.partitions.is_empty() { p.muted { "No committed offsets." } }
            h2 { "Lag over time" }
            div.chart data-chart-url={ "/api/v1/groups/" (enc) "/lag-history" } data-chart-refresh="10000"
                data-chart-title={ "Lag of " (g.group) } {}
        }
        h2 { "Actions" }
        @if g.stopped {
            p {
                @if g.group_type != "share" { a.button href={ "/groups/" (enc) "/reset" } { "Reset offsets…" } " " }
                a.button.danger href={ "/groups/" (enc) "/delete" } { "Delete group…" }
            }
        } @else {
            p.muted {
                @if g.group_type == "share" { "Deleting needs" } @else { "Resetting offsets and deleting need" }
                " a stopped group (state Empty): this one is " (g.state) " with " (g.members.len())
                @if g.members.len() == 1 { " member." } @else { " members." }
            }
        }
    };
    Ok(layout::page(&ctx, "/groups", &format!("Group {}", g.group), body))
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

async fn lag_history_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<crate::history::Chart> {
    if !ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Group, &name) {
        return Err(ConsoleError::forbidden(format!("{} may not describe group {name}", ctx.session.principal)).into());
    }
    let history = &ctx.console.history;
    let total = format!("lag:{name}");
    let prefix = format!("lag:{name}:");
    let mut names = vec![(total, "total".to_string())];
    for series in history.names(&prefix).into_iter().take(20) {
        let label = series[prefix.len()..].to_string();
        names.push((series, label));
    }
    let refs: Vec<(&str, &str)> = names.iter().map(|(n, l)| (n.as_str(), l.as_str())).collect();
    Ok(Json(history.chart(&refs)))
}

// ---------------------------------------------------------------- sample

/// Records the lag of the groups this node coordinates at `now` (unix
/// seconds): `lag:{group}` (total) and `lag:{group}:{topic}:{partition}`,
/// from the coordinator's in-memory offsets and the local replicas' high
/// watermarks (no Kafka requests; partitions without a replica on this
/// node are left out). Bounded: [`SAMPLE_GROUPS_MAX`] groups,
/// [`SAMPLE_PARTITION_SERIES_MAX`] partition series.
pub async fn sample(broker: &vltava_broker::Broker, history: &crate::history::History, now: i64) {
    let image = broker.controller.image();
    let mut ends: HashMap<(String, i32), Option<i64>> = HashMap::new();
    let mut partition_series = 0usize;
    for (group, _, _, _) in broker.groups.list_typed().into_iter().take(SAMPLE_GROUPS_MAX) {
        let Ok(offsets) = broker.groups.fetch_offsets(&group, None) else { continue };
        let mut total = 0i64;
        for (topic, partition, committed) in offsets {
            let Some(committed) = committed else { continue };
            let key = (topic, partition);
            let end = *ends.entry(key.clone()).or_insert_with(|| {
                let t = image.topic(&key.0)?;
                broker.replicas.get(&t.topic_id, key.1).map(|p| p.high_watermark())
            });
            let Some(end) = end else { continue };
            let lag = (end - committed.offset).max(0);
            total += lag;
            if partition_series < SAMPLE_PARTITION_SERIES_MAX {
                partition_series += 1;
                history.record(&format!("lag:{group}:{}:{}", key.0, key.1), now, lag as f64);
            }
        }
        history.record(&format!("lag:{group}"), now, total as f64);
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------- reset offsets

/// `POST /api/v1/groups/{name}/reset-offsets`.
#[derive(Deserialize, Debug, Clone, Default)]
pub struct ResetRequest {
    /// `all` (the group's committed partitions), `topic` or `partition`.
    #[serde(default)]
    pub scope: String,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    /// `earliest`, `latest`, `timestamp`, `offset` or `shift`.
    pub target: String,
    /// The timestamp (ms or ISO date), offset, or shift (may be negative).
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Serialize, Debug)]
pub struct ResetRow {
    pub topic: String,
    pub partition: i32,
    pub current: Option<i64>,
    pub new: i64,
}

#[derive(Serialize, Debug)]
pub struct ResetResult {
    pub group: String,
    pub dry_run: bool,
    pub partitions: Vec<ResetRow>,
}

/// A time as milliseconds since the epoch: digits, or an ISO date
/// (`2026-11-30`, `2026-11-30T17:05:03`, with `.sss` and `Z` optional; UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return (ms >= 0).then_some(ms);
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || !(1970..=9999).contains(&y) {
        return None;
    }
    let (mut hh, mut mm, mut ss, mut ms) = (0i64, 0i64, 0i64, 0i64);
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut parts = hms.split(':');
        hh = parts.next()?.parse().ok()?;
        mm = parts.next().map(|v| v.parse().ok()).unwrap_or(Some(0))?;
        ss = parts.next().map(|v| v.parse().ok()).unwrap_or(Some(0))?;
        if parts.next().is_some() || hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 3 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            ms = format!("{f:0<3}").parse().ok()?;
        }
    }
    // days from civil (Howard Hinnant's algorithm)
    let (yy, mp) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

fn value_text(v: &Option<serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn value_i64(req: &ResetRequest, what: &str) -> Result<i64, ConsoleError> {
    let text = value_text(&req.value).ok_or_else(|| ConsoleError::bad_request(format!("{what}: a value is needed")))?;
    text.parse::<i64>().map_err(|_| ConsoleError::bad_request(format!("{what}: {text:?} is not a whole number")))
}

/// Computes (and with `dry_run` false, commits) the new offsets.
async fn reset(ctx: &Ctx, group: &str, req: &ResetRequest) -> Result<ResetResult, ConsoleError> {
    // the target first: bad input is a 400 whatever the group's state
    enum Target {
        At(i64),
        Offset(i64),
        Shift(i64),
    }
    let target = match req.target.as_str() {
        "earliest" => Target::At(-2),
        "latest" => Target::At(-1),
        "timestamp" => {
            let text =
                value_text(&req.value).ok_or_else(|| ConsoleError::bad_request("timestamp: a value is needed"))?;
            Target::At(parse_time(&text).ok_or_else(|| {
                ConsoleError::bad_request(format!(
                    "timestamp: {text:?} is neither milliseconds since the epoch nor a date like 2026-11-30T17:05:00Z"
                ))
            })?)
        }
        "offset" => {
            let o = value_i64(req, "offset")?;
            if o < 0 {
                return Err(ConsoleError::bad_request(format!("offset: {o} is negative")));
            }
            Target::Offset(o)
        }
        "shift" => Target::Shift(value_i64(req, "shift")?),
        other => {
            return Err(ConsoleError::bad_request(format!(
                "target {other:?}: expected earliest, latest, timestamp, offset or shift"
            )))
        }
    };
    // the group must be stopped
    let state = match find(ctx, group).await {
        Ok(g) => {
            let group_type = if g.group_type.is_empty() { "classic".to_string() } else { g.group_type.clone() };
            if group_type == "share" {
                return Err(ConsoleError::bad_request(format!(
                    "group {group} is a share group: its offsets are not committed offsets"
                )));
            }
            let d = describe(ctx, g.coordinator, &group_type, &[group.to_string()]).await?.remove(group);
            let (state, members) = d.map(|d| (d.state, d.members.len())).unwrap_or((g.state, 0));
            if members > 0 || !matches!(state.as_str(), "Empty" | "Dead") {
                return Err(ConsoleError::new(
                    axum::http::StatusCode::CONFLICT,
                    format!(
                        "group {group} is {state} with {members} active members: offsets can only be reset when the \
                         group is inactive (Empty); stop its consumers first"
                    ),
                ));
            }
            state
        }
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => "Dead".to_string(),
        Err(e) => return Err(e),
    };
    let _ = state;
    let committed = lag::committed(ctx, group).await?;
    let image = ctx.broker.controller.image();
    let partitions: Vec<(String, i32)> = match req.scope.as_str() {
        "" | "all" => committed.keys().cloned().collect(),
        "topic" | "partition" => {
            let topic = req
                .topic
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ConsoleError::bad_request(format!("scope {}: a topic is needed", req.scope)))?;
            let t = image.topic(topic).ok_or_else(|| ConsoleError::not_found(format!("no topic {topic}")))?;
            if !ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Topic, topic) {
                return Err(ConsoleError::not_found(format!("no topic {topic}")));
            }
            let count = t.partitions.len() as i32;
            if req.scope == "topic" {
                (0..count).map(|p| (topic.to_string(), p)).collect()
            } else {
                let p =
                    req.partition.ok_or_else(|| ConsoleError::bad_request("scope partition: a partition is needed"))?;
                if p < 0 || p >= count {
                    return Err(ConsoleError::not_found(format!(
                        "topic {topic} has no partition {p} (it has {count})"
                    )));
                }
                vec![(topic.to_string(), p)]
            }
        }
        other => {
            return Err(ConsoleError::bad_request(format!("scope {other:?}: expected all, topic or partition")));
        }
    };
    if partitions.is_empty() {
        return Err(ConsoleError::bad_request(format!(
            "group {group} has no committed offsets: choose a topic or a partition to reset"
        )));
    }
    let earliest = lag::offsets_at(ctx, &partitions, -2).await?;
    let latest = lag::offsets_at(ctx, &partitions, -1).await?;
    let at = match target {
        Target::At(ts) if ts >= 0 => Some(lag::offsets_at(ctx, &partitions, ts).await?),
        _ => None,
    };
    let mut rows = Vec::new();
    for key in &partitions {
        let (Some(lo), Some(hi)) = (earliest.get(key).copied(), latest.get(key).copied()) else {
            return Err(ConsoleError::unavailable(format!("the offsets of {}-{} are not available", key.0, key.1)));
        };
        let current = committed.get(key).copied();
        let new = match target {
            Target::At(-2) => lo,
            Target::At(-1) => hi,
            // no record at or after the time: the end, as Kafka's tool does
            Target::At(_) => at.as_ref().and_then(|m| m.get(key).copied()).unwrap_or(hi),
            Target::Offset(o) => o.clamp(lo, hi),
            Target::Shift(n) => current.unwrap_or(lo).saturating_add(n).clamp(lo, hi),
        };
        rows.push(ResetRow { topic: key.0.clone(), partition: key.1, current, new });
    }
    if !req.dry_run {
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for r in &rows {
            by_topic.entry(&r.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(r.partition)
                    .with_committed_offset(r.new)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_static_str(""))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_retention_time_ms(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let mut auth: Vec<(AclOperation, ResourceType, &str)> = vec![(AclOperation::Read, ResourceType::Group, group)];
        for r in &rows {
            if !auth.iter().any(|(_, _, n)| *n == r.topic) {
                auth.push((AclOperation::Read, ResourceType::Topic, &r.topic));
            }
        }
        let coordinator = ctx.group_coordinator(group)?;
        let response = ctx.call_at(coordinator, request, &auth).await?;
        for t in response.topics {
            for p in t.partitions {
                ConsoleError::check(
                    p.error_code,
                    &format!("commit the offset of {}-{} for group {group}", t.name.0, p.partition_index),
                    None,
                )?;
            }
        }
    }
    Ok(ResetResult { group: group.to_string(), dry_run: req.dry_run, partitions: rows })
}

async fn reset_api(
    ctx: Ctx,
    Path(name): Path<String>,
    body: Result<Json<ResetRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<ResetResult> {
    let Json(req) = body.map_err(|e| ConsoleError::bad_request(format!("reset offsets: {}", e.body_text())))?;
    Ok(Json(reset(&ctx, &name, &req).await?))
}

/// The form of a destructive action: `hidden` fields, a `confirm` input
/// the user must fill with `name` (`what`: "group's name"), a danger button.
pub(crate) fn confirm_form(action: &str, what: &str, name: &str, button: &str, hidden: Markup) -> Markup {
    html! {
        form.stack method="post" action=(action) {
            (hidden)
            label for="confirm" { "Type the " (what) " (" (name) ") to confirm" }
            input #confirm name="confirm" autocomplete="off" required;
            div { button.danger type="submit" { (button) } }
        }
    }
}

/// A form field, trimmed; `None` when missing or blank.
pub(crate) fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn reset_request_of(form: &HashMap<String, String>, dry_run: bool) -> Result<ResetRequest, ConsoleError> {
    let partition = match field(form, "partition") {
        Some(p) => {
            Some(p.parse::<i32>().map_err(|_| ConsoleError::bad_request(format!("partition {p:?} is not a number")))?)
        }
        None => None,
    };
    Ok(ResetRequest {
        scope: field(form, "scope").unwrap_or("all").to_string(),
        topic: field(form, "topic").map(str::to_string),
        partition,
        target: field(form, "target").unwrap_or("").to_string(),
        value: field(form, "value").map(|v| serde_json::Value::String(v.to_string())),
        dry_run,
    })
}

fn reset_form(group: &str, form: &HashMap<String, String>) -> Markup {
    let enc = url_encode(group);
    let v = |k: &str| form.get(k).cloned().unwrap_or_default();
    let scope = field(form, "scope").unwrap_or("all").to_string();
    let target = field(form, "target").unwrap_or("earliest").to_string();
    html! {
        form.stack method="post" action={ "/groups/" (enc) "/reset" } {
            label for="scope" { "Scope" }
            select #scope name="scope" {
                @for (val, label) in [("all", "All topics of the group"), ("topic", "One topic (all its partitions)"), ("partition", "One partition")] {
                    option value=(val) selected[scope == val] { (label) }
                }
            }
            label for="topic" { "Topic (scope topic or partition)" }
            input #topic name="topic" value=(v("topic"));
            label for="partition" { "Partition (scope partition)" }
            input #partition name="partition" inputmode="numeric" value=(v("partition"));
            label for="target" { "Reset to" }
            select #target name="target" {
                @for (val, label) in [("earliest", "Earliest offset"), ("latest", "Latest offset (end)"), ("timestamp", "First offset at or after a time"), ("offset", "An absolute offset"), ("shift", "Shift by N (negative: back)")] {
                    option value=(val) selected[target == val] { (label) }
                }
            }
            label for="value" { "Value (time in ms or ISO date like 2026-11-30T17:00:00Z; offset; N)" }
            input #value name="value" value=(v("value"));
            input type="hidden" name="action" value="preview";
            div { button type="submit" { "Preview" } }
        }
    }
}

async fn reset_form_page(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let g = detail_model(&ctx, &name).await?;
    let body = html! {
        p { a href={ "/groups/" (url_encode(&name)) } { "Back to group " (name) } }
        @if !g.stopped {
            p.error role="alert" { "Group " (name) " is " (g.state) " with " (g.members.len()) " active members: offsets can only be reset when the group is inactive (Empty). Stop its consumers first." }
        }
        p { "Choose what to reset and where; the next step previews the change (nothing is changed before you confirm)." }
        (reset_form(&name, &HashMap::new()))
    };
    Ok(layout::page(&ctx, "/groups", &format!("Reset offsets of {name}"), body))
}

async fn reset_post(ctx: Ctx, Path(name): Path<String>, Form(form): Form<HashMap<String, String>>) -> Response {
    match reset_post_inner(&ctx, &name, &form).await {
        Ok(r) => r,
        Err(e) => crate::error::PageError(e).into_response(),
    }
}

async fn reset_post_inner(ctx: &Ctx, name: &str, form: &HashMap<String, String>) -> Result<Response, ConsoleError> {
    let apply = field(form, "action") == Some("apply");
    if apply && field(form, "confirm") != Some(name) {
        return Err(ConsoleError::bad_request(format!(
            "to apply the reset, type the group's name ({name}) in the confirmation field; nothing was changed"
        )));
    }
    let req = reset_request_of(form, !apply)?;
    let result = reset(ctx, name, &req).await?;
    let enc = url_encode(name);
    if apply {
        let done = format!("Reset the offsets of {} partitions", result.partitions.len());
        return Ok(Redirect::to(&format!("/groups/{enc}?done={}", url_encode(&done))).into_response());
    }
    let hidden = ["scope", "topic", "partition", "target", "value"];
    let body = html! {
        p { a href={ "/groups/" (enc) } { "Back to group " (name) } }
        h2 { "Preview" }
        p role="status" { "Nothing has changed yet. These offsets would be committed for group " (name) ":" }
        div.table-wrap { table.sortable #preview {
            thead { tr { th { "Topic" } th.num { "Partition" } th.num { "Current offset" } th.num { "New offset" } } }
            tbody { @for r in &result.partitions { tr {
                td { (r.topic) }
                td.num data-sort=(r.partition) { (r.partition) }
                td.num.current data-sort=(r.current.unwrap_or(-1)) { (opt(r.current)) }
                td.num.new data-sort=(r.new) { (r.new) }
            } } }
        } }
        h2 { "Apply" }
        form.stack method="post" action={ "/groups/" (enc) "/reset" } {
            @for k in hidden {
                input type="hidden" name=(k) value=(form.get(k).cloned().unwrap_or_default());
            }
            input type="hidden" name="action" value="apply";
            label for="confirm" { "Type the group's name (" (name) ") to confirm" }
            input #confirm name="confirm" autocomplete="off" required;
            div { button.danger type="submit" { "Apply the reset" } }
        }
        h2 { "Change the reset" }
        (reset_form(name, form))
    };
    Ok(layout::page(ctx, "/groups", &format!("Reset offsets of {name}"), body).into_response())
}

// ---------------------------------------------------------------- delete

async fn delete_group(ctx: &Ctx, name: &str) -> Result<(), ConsoleError> {
    let coordinator = ctx.group_coordinator(name)?;
    let request = DeleteGroupsRequest::default().with_groups_names(vec![gid(name)]);
    let response = ctx.call_at(coordinator, request, &[(AclOperation::Delete, ResourceType::Group, name)]).await?;
    for r in response.results {
        ConsoleError::check(r.error_code, &format!("delete group {name}"), None)?;
    }
    Ok(())
}

#[derive(Serialize)]
pub struct Deleted {
    pub deleted: String,
}

async fn delete_api(ctx: Ctx, Path(name): Path<String>) -> ApiResult<Deleted> {
    delete_group(&ctx, &name).await?;
    Ok(Json(Deleted { deleted: name }))
}

async fn delete_page(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let g = detail_model(&ctx, &name).await?;
    let enc = url_encode(&name);
    let body = html! {
        p { a href={ "/groups/" (enc) } { "Back to group " (name) } }
        @if !g.stopped {
            p.error role="alert" { "Group " (name) " is " (g.state) " with " (g.members.len()) " active members: only an empty group can be deleted." }
        }
        p { "Deleting the group removes its committed offsets (" (g.partitions.len()) " partitions). This cannot be undone." }
        (confirm_form(&format!("/groups/{enc}/delete"), "group's name", &name, "Delete group", html! {}))
    };
    Ok(layout::page(&ctx, "/groups", &format!("Delete group {name}"), body))
}

async fn delete_post(ctx: Ctx, Path(name): Path<String>, Form(form): Form<HashMap<String, String>>) -> Response {
    if field(&form, "confirm") != Some(name.as_str()) {
        let e = ConsoleError::bad_request(format!(
            "to delete the group, type its name ({name}) in the confirmation field; nothing was deleted"
        ));
        return crate::error::PageError(e).into_response();
    }
    match delete_group(&ctx, &name).await {
        Ok(()) => {
            Redirect::to(&format!("/groups?done={}", url_encode(&format!("Deleted group {name}")))).into_response()
        }
        Err(e) => crate::error::PageError(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_assignments_are_decoded() {
        // version 1, [("t", [0, 2])], no user data
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_assignment(&b), vec![Assigned { topic: "t".into(), partitions: vec![0, 2] }]);
        assert!(decode_assignment(&[0, 1, 0, 0, 0, 9]).is_empty(), "truncated");
        assert!(decode_assignment(&[]).is_empty());
        assert!(decode_assignment(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_empty(), "a huge count");
    }

    #[test]
    fn times_parse_as_ms_or_iso_dates() {
        assert_eq!(parse_time("1796000000123"), Some(1_796_000_000_123));
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2026-11-30T00:53:20.123Z"), Some(1_796_000_000_123));
        assert_eq!(parse_time("2026-11-30 00:53:20"), Some(1_796_000_000_000));
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("-5"), None);
    }
}
