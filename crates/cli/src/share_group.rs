//! `vltava group describe` for share groups (KIP-932): members and their
//! assignments (ShareGroupDescribe), and per share partition the start
//! offset (DescribeShareGroupOffsets at the group coordinator), the
//! in-flight, acknowledged and archived counts from the persisted state
//! (ReadShareGroupState at the share coordinator, a broker-to-broker RPC:
//! with an authorizer it needs CLUSTER_ACTION, else the counts show "-"),
//! the high watermark and the lag (high watermark - start offset - the
//! offsets at or above it whose delivery is complete, KIP-1226's lag).
//!
//! In-flight: offsets delivered at least once and not yet acknowledged,
//! released or archived for good (persisted as available with a delivery
//! count above 0).

use std::collections::BTreeMap;

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::{
    describe_share_group_offsets_request, read_share_group_state_request, DescribeShareGroupOffsetsRequest, GroupId,
    ReadShareGroupStateRequest, ShareGroupDescribeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use serde_json::json;

use vltava_broker::share::persister::DeliveryCounts;

use crate::client::ClientArgs;
use crate::connection::{self, error_name, BrokerConnection, Deadline, Security};

const GROUP_ID_NOT_FOUND: i16 = 69;
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_SHARE: i8 = 2;

struct Row {
    topic: String,
    partition: i32,
    start: i64,
    /// When the state could be read.
    counts: Option<DeliveryCounts>,
    high: Option<i64>,
}

impl Row {
    fn lag(&self) -> Option<i64> {
        let high = self.high?;
        (self.start >= 0).then(|| DeliveryCounts::lag(self.counts, self.start, high))
    }
}

struct Member {
    id: String,
    client_id: String,
    host: String,
    assignment: BTreeMap<String, Vec<i32>>,
}

/// The node id FindCoordinator names for `key`, and a connection to it.
fn coordinator(
    conn: &mut BrokerConnection,
    security: &Security,
    deadline: Deadline,
    key_type: i8,
    key: &str,
) -> anyhow::Result<Option<BrokerConnection>> {
    let version = conn.version_of::<FindCoordinatorRequest>().map_err(|e| conn.error(e))?;
    let key = StrBytes::from_string(key.to_string());
    let request = if version >= 4 {
        FindCoordinatorRequest::default().with_key_type(key_type).with_coordinator_keys(vec![key])
    } else {
        FindCoordinatorRequest::default().with_key_type(key_type).with_key(key)
    };
    let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    let (error, host, port) = match answer.coordinators.first() {
        Some(c) => (c.error_code, c.host.to_string(), c.port),
        None => (answer.error_code, answer.host.to_string(), answer.port),
    };
    if error != 0 {
        return Ok(None);
    }
    let address = format!("{host}:{port}");
    Ok(Some(BrokerConnection::open_secured(&address, deadline, security).map_err(|e| conn.error(e))?))
}

/// Describes `group` if it is a share group: `Ok(false)` when it is not one
/// (or the cluster has no share groups), for the classic describe to go on.
pub fn describe(args: &ClientArgs, group: &str, topics: &[String], as_json: bool) -> anyhow::Result<bool> {
    let mut conn = connection::connect_bootstrap(args)?;
    if conn.version_of::<DescribeShareGroupOffsetsRequest>().is_err() {
        return Ok(false);
    }
    let security = Security::of(args)?;
    let deadline = Deadline::after(args.timeout());
    let Some(mut coord) = coordinator(&mut conn, &security, deadline, KEY_TYPE_GROUP, group)? else {
        return Ok(false);
    };

    let mut state = String::new();
    let mut members = Vec::new();
    if coord.version_of::<ShareGroupDescribeRequest>().is_ok() {
        let request =
            ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(StrBytes::from_string(group.into()))]);
        let (answer, _) = coord.send(&request).map_err(|e| coord.error(e))?;
        if let Some(g) = answer.groups.first().filter(|g| g.error_code == 0) {
            state = g.group_state.to_string();
            for m in &g.members {
                let assignment = m
                    .assignment
                    .topic_partitions
                    .iter()
                    .map(|t| (t.topic_name.0.to_string(), t.partitions.clone()))
                    .collect();
                members.push(Member {
                    id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                });
            }
        }
    }

    use describe_share_group_offsets_request::{
        DescribeShareGroupOffsetsRequestGroup, DescribeShareGroupOffsetsRequestTopic,
    };
    let wanted = if topics.is_empty() {
        None
    } else {
        let found = connection::topic_partitions(&mut conn, topics)?;
        Some(
            found
                .partitions
                .into_iter()
                .map(|(t, ps)| {
                    DescribeShareGroupOffsetsRequestTopic::default()
                        .with_topic_name(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        )
    };
    let request =
        DescribeShareGroupOffsetsRequest::default().with_groups(vec![DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_topics(wanted)]);
    let (answer, _) = coord.send(&request).map_err(|e| coord.error(e))?;
    let Some(g) = answer.groups.first() else { return Ok(false) };
    if g.error_code == GROUP_ID_NOT_FOUND {
        return Ok(false);
    }
    if g.error_code != 0 {
        return Err(connection::refused(coord.address(), g.error_code, g.error_message.as_deref()));
    }
    let mut rows = Vec::new();
    let mut ids = BTreeMap::new();
    for t in &g.topics {
        ids.insert(t.topic_name.0.to_string(), t.topic_id);
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(connection::refused(coord.address(), p.error_code, p.error_message.as_deref()));
            }
            rows.push(Row {
                topic: t.topic_name.0.to_string(),
                partition: p.partition_index,
                start: p.start_offset,
                counts: None,
                high: None,
            });
        }
    }
    if members.is_empty() && rows.iter().all(|r| r.start < 0) {
        return Ok(false);
    }

    // the delivery states, from each share partition's coordinator
    let mut counts_error = None;
    for row in rows.iter_mut().filter(|r| r.start >= 0) {
        let Some(topic_id) = ids.get(&row.topic).copied() else { continue };
        let key = format!("{group}:{}:{}", kafka_uuid(&topic_id), row.partition);
        match read_counts(&mut conn, &security, deadline, group, topic_id, row.partition, &key) {
            Ok(counts) => row.counts = counts,
            Err(e) => {
                counts_error.get_or_insert(e.to_string());
            }
        }
    }
    let consumer = args.metadata_consumer()?;
    for row in &mut rows {
        row.high = consumer.fetch_watermarks(&row.topic, row.partition, args.timeout()).ok().map(|(_, h)| h);
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    print(group, &state, &members, &rows, counts_error, as_json);
    Ok(true)
}

/// The delivery counts of one share partition.
fn read_counts(
    conn: &mut BrokerConnection,
    security: &Security,
    deadline: Deadline,
    group: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    key: &str,
) -> anyhow::Result<Option<DeliveryCounts>> {
    use read_share_group_state_request::{PartitionData, ReadStateData};
    let Some(mut share) = coordinator(conn, security, deadline, KEY_TYPE_SHARE, key)? else {
        anyhow::bail!("no share coordinator for {key}");
    };
    // leader epoch -1: a look that fences no share partition leader
    let request =
        ReadShareGroupStateRequest::default().with_group_id(StrBytes::from_string(group.into())).with_topics(vec![
            ReadStateData::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![PartitionData::default().with_partition(partition).with_leader_epoch(-1)]),
        ]);
    let (answer, _) = share.send(&request).map_err(|e| share.error(e))?;
    let Some(p) = answer.results.first().and_then(|t| t.partitions.first()) else { return Ok(None) };
    if p.error_code != 0 {
        anyhow::bail!("{}", error_name(p.error_code));
    }
    let batches =
        p.state_batches.iter().map(|b| (b.first_offset, b.last_offset, b.delivery_state as u8, b.delivery_count));
    Ok(Some(DeliveryCounts::of(p.start_offset, batches)))
}

fn kafka_uuid(id: &uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn print(group: &str, state: &str, members: &[Member], rows: &[Row], counts_error: Option<String>, as_json: bool) {
    let state = if state.is_empty() { "Empty" } else { state };
    if as_json {
        let members: Vec<_> = members
            .iter()
            .map(|m| json!({"member_id": m.id, "client_id": m.client_id, "host": m.host, "assignment": m.assignment}))
            .collect();
        let partitions: Vec<_> = rows
            .iter()
            .map(|r| {
                let c = r.counts;
                json!({"topic": r.topic, "partition": r.partition,
                       "start_offset": (r.start >= 0).then_some(r.start),
                       "in_flight": c.map(|c| c.in_flight), "acknowledged": c.map(|c| c.acknowledged),
                       "archived": c.map(|c| c.archived),
                       "high_watermark": r.high, "lag": r.lag()})
            })
            .collect();
        println!(
            "{}",
            json!({"group": group, "type": "share", "state": state, "members": members,
                   "partitions": partitions, "counts_error": counts_error})
        );
        return;
    }
    println!("group:    {group}");
    println!("type:     share");
    println!("state:    {state}");
    println!("members:  {}", members.len());
    if !members.is_empty() {
        println!();
        println!("{:<40}  {:<20}  {:<18}  ASSIGNMENT", "MEMBER-ID", "CLIENT-ID", "HOST");
        for m in members {
            let text: Vec<String> = m
                .assignment
                .iter()
                .map(|(t, ps)| format!("{t}:{}", ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")))
                .collect();
            println!("{:<40}  {:<20}  {:<18}  {}", m.id, m.client_id, m.host, text.join(" "));
        }
    }
    println!();
    if let Some(e) = &counts_error {
        println!("delivery states: n/a ({e})");
    }
    let width = rows.iter().map(|r| r.topic.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<width$}  {:>9}  {:>12}  {:>9}  {:>12}  {:>8}  {:>14}  {:>8}",
        "TOPIC", "PARTITION", "START-OFFSET", "IN-FLIGHT", "ACKNOWLEDGED", "ARCHIVED", "HIGH-WATERMARK", "LAG"
    );
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |x| x.to_string());
    for r in rows {
        let c = r.counts;
        println!(
            "{:<width$}  {:>9}  {:>12}  {:>9}  {:>12}  {:>8}  {:>14}  {:>8}",
            r.topic,
            r.partition,
            opt((r.start >= 0).then_some(r.start)),
            opt(c.map(|c| c.in_flight)),
            opt(c.map(|c| c.acknowledged)),
            opt(c.map(|c| c.archived)),
            opt(r.high),
            opt(r.lag())
        );
    }
}
