//! `vltava group ...`: list, describe (members, assignments, committed
//! offsets and lag per partition), delete, and reset-offsets (earliest,
//! latest, offset, timestamp, shift; a dry run prints the plan). Uses
//! ListGroups/DescribeGroups, OffsetFetch/OffsetCommit through a consumer that
//! never joins the group, ListOffsets for watermarks, and DeleteGroups.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Context as _};
use futures::executor::block_on;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::groups::GroupInfo;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::client::{self, CliContext, ClientArgs, NotFound};
use crate::topic::Admin;

#[derive(clap::Subcommand)]
pub enum GroupCommand {
    /// List consumer groups (names, one per line; --long for state and members).
    ///
    /// Examples:
    ///   vltava group list
    ///   vltava group list --long
    #[command(verbatim_doc_comment)]
    List(ListArgs),
    /// Show a group's state, members, assignments, and committed offsets and lag per partition.
    ///
    /// Examples:
    ///   vltava group describe billing
    ///   vltava group describe billing --topic orders --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Describe(DescribeArgs),
    /// Delete groups that have no active members (and their committed offsets).
    ///
    /// Examples:
    ///   vltava group delete billing
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(DeleteArgs),
    /// Move a group's committed offsets. Prints the plan; applies it only with --execute.
    ///
    /// Examples:
    ///   vltava group reset-offsets billing --topic orders --to-earliest
    ///   vltava group reset-offsets billing --topic orders --to-timestamp 1767225600000 --execute
    ///   vltava group reset-offsets billing --topic orders --partition 0 --shift-by -100 --execute
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    ResetOffsets(ResetArgs),
    /// Set or remove a group's own configs (over the broker's `group.*` values).
    ///
    /// Examples:
    ///   vltava group alter-config orders --set share.record.lock.duration.ms=60000
    ///   vltava group alter-config orders --set errors.deadletterqueue.topic.name=dlq.orders
    ///   vltava group alter-config orders --delete share.auto.offset.reset
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    AlterConfig(crate::group_config::AlterConfigArgs),
    /// Show a group's configs: its own values and the broker's for the others.
    ///
    /// Example:
    ///   vltava group describe-config orders
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    DescribeConfig(crate::group_config::DescribeConfigArgs),
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// A table with state, protocol and member count.
    #[arg(short = 'l', long)]
    long: bool,
    /// One JSON array on stdout.
    #[arg(long, conflicts_with = "long")]
    json: bool,
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    /// Group id.
    group: String,
    /// Topics to show offsets for (default: those assigned to members, else every topic). Repeatable.
    #[arg(short = 't', long = "topic")]
    topics: Vec<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// Group ids.
    #[arg(required = true)]
    groups: Vec<String>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "to_timestamp", "shift_by"])))]
pub struct ResetArgs {
    /// Group id.
    group: String,
    /// Topic whose offsets move.
    #[arg(short = 't', long)]
    topic: String,
    /// Only these partitions (default: all). Repeatable.
    #[arg(short = 'p', long = "partition")]
    partitions: Vec<i32>,
    /// To the first retained offset.
    #[arg(long)]
    to_earliest: bool,
    /// To the high watermark (skip everything written so far).
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to the retained range).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// To the first record at or after this time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    to_timestamp: Option<i64>,
    /// By this many records from the committed offset (negative goes back).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Apply the plan (without it, only print it).
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ClientArgs, cmd: &GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List(a) => list(args, a),
        GroupCommand::Describe(a) => describe(args, a),
        GroupCommand::Delete(a) => delete(args, a),
        GroupCommand::ResetOffsets(a) => reset_offsets(args, a),
        GroupCommand::AlterConfig(a) => crate::group_config::alter(args, a),
        GroupCommand::DescribeConfig(a) => crate::group_config::describe(args, a),
    }
}

/// A consumer that reads and commits `group`'s offsets without joining it.
fn group_consumer(args: &ClientArgs, group: &str) -> anyhow::Result<BaseConsumer<CliContext>> {
    let config = args.config(&[
        ("group.id", group),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("allow.auto.create.topics", "false"),
    ])?;
    client::create(&config, CliContext::new(args.verbose))
}

/// A metadata-only consumer that has reached the cluster.
fn connected(args: &ClientArgs) -> anyhow::Result<(BaseConsumer<CliContext>, rdkafka::metadata::Metadata)> {
    let consumer = args.metadata_consumer()?;
    let md = client::fetch_metadata(consumer.client(), &consumer.context().sink, args, None)?;
    Ok((consumer, md))
}

fn group_list_error(e: rdkafka::error::KafkaError) -> anyhow::Error {
    anyhow!("cannot list groups: {}", client::describe_kafka_error(&e))
}

fn list(args: &ClientArgs, a: &ListArgs) -> anyhow::Result<()> {
    let (consumer, _) = connected(args)?;
    let groups = consumer.client().fetch_group_list(None, args.timeout()).map_err(group_list_error)?;
    let mut rows: Vec<&GroupInfo> = groups.groups().iter().collect();
    rows.sort_by(|x, y| x.name().cmp(y.name()));
    // KIP-848 groups: DescribeGroups knows nothing of them, ListGroups v5
    // names their type and ConsumerGroupDescribe their members
    let types = if a.json || a.long {
        crate::consumer_group::group_types(args).unwrap_or_default()
    } else {
        Default::default()
    };
    let view = |g: &GroupInfo| -> (String, String, String, usize) {
        match types.get(g.name()) {
            Some((kind, state)) if kind != "classic" => {
                let members =
                    crate::consumer_group::describe(args, g.name()).ok().flatten().map_or(0, |d| d.members.len());
                (kind.clone(), state.clone(), kind.clone(), members)
            }
            _ => (
                "classic".into(),
                g.state().to_string(),
                format!("{}/{}", g.protocol_type(), g.protocol()),
                g.members().len(),
            ),
        }
    };
    if a.json {
        let out: Vec<_> = rows
            .iter()
            .map(|g| {
                let (kind, state, _, members) = view(g);
                json!({"group": g.name(), "type": kind, "state": state, "protocol_type": g.protocol_type(),
                       "protocol": g.protocol(), "members": members})
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
    } else if a.long {
        let width = rows.iter().map(|g| g.name().len()).max().unwrap_or(0).max(5);
        println!("{:<width$}  {:<8}  {:<18}  {:<14}  MEMBERS", "GROUP", "TYPE", "STATE", "PROTOCOL");
        for g in rows {
            let (kind, state, protocol, members) = view(g);
            println!("{:<width$}  {:<8}  {:<18}  {:<14}  {}", g.name(), kind, state, protocol, members);
        }
    } else {
        for g in rows {
            println!("{}", g.name());
        }
    }
    Ok(())
}

/// Topic -> partitions from a consumer-protocol assignment
/// (version i16, [topic string, [partition i32]], user data bytes).
fn parse_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if buf.len() < n {
            return None;
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Some(head)
    }
    fn i16_(buf: &mut &[u8]) -> Option<i16> {
        take(buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32_(buf: &mut &[u8]) -> Option<i32> {
        take(buf, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    let mut buf = bytes;
    let mut out = BTreeMap::new();
    if buf.is_empty() {
        return Some(out);
    }
    let _version = i16_(&mut buf)?;
    let topics = i32_(&mut buf)?;
    for _ in 0..topics.max(0) {
        let len = i16_(&mut buf)?;
        let name = String::from_utf8_lossy(take(&mut buf, usize::try_from(len).ok()?)?).into_owned();
        let count = i32_(&mut buf)?;
        // Each partition takes 4 bytes: a lying count fails here, not in an allocation.
        if usize::try_from(count).ok()? > buf.len() / 4 {
            return None;
        }
        let partitions = (0..count).map(|_| i32_(&mut buf)).collect::<Option<Vec<i32>>>()?;
        out.insert(name, partitions);
    }
    Some(out)
}

/// One partition's committed offset and lag.
struct OffsetRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    high: Option<i64>,
    member: Option<String>,
}

fn describe(args: &ClientArgs, a: &DescribeArgs) -> anyhow::Result<()> {
    if crate::share_group::describe(args, &a.group, &a.topics, a.json)? {
        return Ok(());
    }
    let (consumer, md) = connected(args)?;
    let groups = consumer.client().fetch_group_list(Some(&a.group), args.timeout()).map_err(group_list_error)?;
    let info = groups.groups().iter().find(|g| g.name() == a.group);
    // a KIP-848 consumer group is described by ConsumerGroupDescribe
    let kip848 = crate::consumer_group::describe(args, &a.group).ok().flatten();
    let info = if kip848.is_some() { None } else { info };

    // Which member owns which partition.
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    let mut members = Vec::new();
    if let Some(g) = info {
        for m in g.members() {
            let assignment = m.assignment().and_then(parse_assignment).unwrap_or_default();
            for (topic, parts) in &assignment {
                for p in parts {
                    owner.insert((topic.clone(), *p), m.client_id().to_string());
                }
            }
            members.push((m.id().to_string(), m.client_id().to_string(), m.client_host().to_string(), assignment));
        }
    }
    for m in kip848.iter().flat_map(|g| &g.members) {
        for (topic, parts) in &m.assignment {
            for p in parts {
                owner.insert((topic.clone(), *p), m.client_id.clone());
            }
        }
        members.push((m.member_id.clone(), m.client_id.clone(), m.client_host.clone(), m.assignment.clone()));
    }

    // Topics to look at: asked for, else assigned, else every topic.
    let mut topics: BTreeSet<String> = a.topics.iter().cloned().collect();
    if topics.is_empty() {
        topics = owner.keys().map(|(t, _)| t.clone()).collect();
    }
    if topics.is_empty() {
        topics = md.topics().iter().filter(|t| !t.name().starts_with("__")).map(|t| t.name().to_string()).collect();
    }
    let mut tpl = TopicPartitionList::new();
    for t in &topics {
        for p in client::topic_partitions(&md, t)? {
            tpl.add_partition(t, p);
        }
    }
    let group_consumer = group_consumer(args, &a.group)?;
    let committed = if tpl.count() == 0 {
        Ok(TopicPartitionList::new())
    } else {
        group_consumer.committed_offsets(tpl, args.timeout())
    };
    let (committed, offsets_error) = match committed {
        Ok(c) => (c, None),
        Err(e) => (TopicPartitionList::new(), Some(client::describe_kafka_error(&e))),
    };
    let mut rows = Vec::new();
    for el in committed.elements() {
        let committed = match el.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        let key = (el.topic().to_string(), el.partition());
        let member = owner.get(&key).cloned();
        // Without an explicit topic, show only partitions the group has touched.
        if committed.is_none() && member.is_none() && a.topics.is_empty() {
            continue;
        }
        let high = consumer.fetch_watermarks(el.topic(), el.partition(), args.timeout()).ok().map(|(_, h)| h);
        rows.push(OffsetRow { topic: key.0, partition: key.1, committed, high, member });
    }

    let state = match &kip848 {
        Some(g) => g.state.clone(),
        None => info.map(|g| g.state().to_string()).unwrap_or_default(),
    };
    let exists = !members.is_empty() || !rows.iter().all(|r| r.committed.is_none()) && !rows.is_empty();
    if !exists && (state.is_empty() || state == "Dead") {
        return Err(NotFound(format!("group {:?} does not exist (no members, no committed offsets)", a.group)).into());
    }
    let lag = |r: &OffsetRow| match (r.committed, r.high) {
        (Some(c), Some(h)) => Some((h - c).max(0)),
        _ => None,
    };

    if a.json {
        let members_json: Vec<_> = members
            .iter()
            .map(|(id, cid, host, asg)| json!({"member_id": id, "client_id": cid, "host": host, "assignment": asg}))
            .collect();
        let offsets_json: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"topic": r.topic, "partition": r.partition, "committed": r.committed,
                       "high_watermark": r.high, "lag": lag(r), "client_id": r.member})
            })
            .collect();
        let g = info;
        let mut out = json!({"group": a.group, "state": state, "protocol_type": g.map(|g| g.protocol_type()),
               "protocol": g.map(|g| g.protocol()), "members": members_json, "offsets": offsets_json,
               "offsets_error": offsets_error, "type": if kip848.is_some() { "consumer" } else { "classic" }});
        if let Some(k) = &kip848 {
            out["group_epoch"] = json!(k.group_epoch);
            out["assignment_epoch"] = json!(k.assignment_epoch);
            out["assignor"] = json!(k.assignor);
            out["members"] = k
                .members
                .iter()
                .map(|m| {
                    json!({"member_id": m.member_id, "instance_id": m.instance_id, "client_id": m.client_id,
                           "host": m.client_host, "member_epoch": m.member_epoch, "assignment": m.assignment,
                           "target_assignment": m.target})
                })
                .collect();
        }
        println!("{out}");
        return Ok(());
    }
    println!("group:    {}", a.group);
    println!("state:    {}", if state.is_empty() { "unknown" } else { &state });
    if let Some(g) = info {
        println!("type:     classic");
        println!("protocol: {}/{}", g.protocol_type(), g.protocol());
    }
    if let Some(k) = &kip848 {
        println!("type:     consumer (KIP-848)");
        println!("epochs:   group {}, assignment {}", k.group_epoch, k.assignment_epoch);
        println!("assignor: {}", k.assignor);
    }
    println!("members:  {}", members.len());
    if let Some(k) = kip848.as_ref().filter(|k| !k.members.is_empty()) {
        let text = |asg: &BTreeMap<String, Vec<i32>>| -> String {
            let parts: Vec<String> = asg
                .iter()
                .map(|(t, ps)| format!("{t}:{}", ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")))
                .collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(" ")
            }
        };
        println!();
        println!("{:<36}  {:<20}  {:>5}  {:<24}  TARGET", "MEMBER-ID", "CLIENT-ID", "EPOCH", "ASSIGNMENT");
        for m in &k.members {
            let target = if m.target == m.assignment { "=".to_string() } else { text(&m.target) };
            println!(
                "{:<36}  {:<20}  {:>5}  {:<24}  {}",
                m.member_id,
                m.client_id,
                m.member_epoch,
                text(&m.assignment),
                target
            );
        }
    } else if !members.is_empty() {
        println!();
        println!("{:<40}  {:<20}  {:<18}  ASSIGNMENT", "MEMBER-ID", "CLIENT-ID", "HOST");
        for (id, cid, host, asg) in &members {
            let text: Vec<String> = asg
                .iter()
                .map(|(t, ps)| format!("{t}:{}", ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")))
                .collect();
            println!("{id:<40}  {cid:<20}  {host:<18}  {}", text.join(" "));
        }
    }
    println!();
    if let Some(e) = offsets_error {
        println!("offsets:  n/a ({e})");
        return Ok(());
    }
    let width = rows.iter().map(|r| r.topic.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<width$}  {:>9}  {:>10}  {:>14}  {:>8}  CLIENT-ID",
        "TOPIC", "PARTITION", "COMMITTED", "HIGH-WATERMARK", "LAG"
    );
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |x| x.to_string());
    for r in &rows {
        println!(
            "{:<width$}  {:>9}  {:>10}  {:>14}  {:>8}  {}",
            r.topic,
            r.partition,
            opt(r.committed),
            opt(r.high),
            opt(lag(r)),
            r.member.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn delete(args: &ClientArgs, a: &DeleteArgs) -> anyhow::Result<()> {
    let (admin, _) = Admin::connect(args)?;
    let names: Vec<&str> = a.groups.iter().map(String::as_str).collect();
    let results = block_on(admin.client.delete_groups(&names, &admin.options))
        .map_err(|e| admin.request_error("delete group", "DeleteGroups", e))?;
    for r in results {
        match r {
            Ok(name) => println!("deleted group {name:?}"),
            Err((name, RDKafkaErrorCode::GroupIdNotFound)) => {
                return Err(NotFound(format!("group {name:?} does not exist")).into())
            }
            Err((name, RDKafkaErrorCode::NonEmptyGroup)) => {
                return Err(anyhow!("group {name:?} has active members; stop them before deleting it"))
            }
            Err((name, code)) => return Err(anyhow!("delete group {name:?}: {}", client::describe_code(code))),
        }
    }
    Ok(())
}

/// The new offset of one partition, from the retained range and the current commit.
fn target_offset(
    a: &ResetArgs,
    low: i64,
    high: i64,
    current: Option<i64>,
    by_time: Option<i64>,
) -> anyhow::Result<i64> {
    let wanted = if a.to_earliest {
        low
    } else if a.to_latest {
        high
    } else if let Some(o) = a.to_offset {
        o
    } else if a.to_timestamp.is_some() {
        by_time.unwrap_or(high)
    } else if let Some(n) = a.shift_by {
        let base = current.ok_or_else(|| anyhow!("--shift-by needs a committed offset, and a partition has none"))?;
        base.saturating_add(n)
    } else {
        unreachable!("clap requires one target")
    };
    Ok(wanted.clamp(low, high))
}

fn reset_offsets(args: &ClientArgs, a: &ResetArgs) -> anyhow::Result<()> {
    let (consumer, md) = connected(args)?;
    let all = client::topic_partitions(&md, &a.topic)?;
    let partitions = if a.partitions.is_empty() { all.clone() } else { a.partitions.clone() };
    for p in &partitions {
        if !all.contains(p) {
            return Err(NotFound(format!("topic {:?} has no partition {p}", a.topic)).into());
        }
    }
    let group_consumer = group_consumer(args, &a.group)?;
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition(&a.topic, *p);
    }
    let committed = group_consumer
        .committed_offsets(tpl, args.timeout())
        .map_err(|e| anyhow!("cannot read committed offsets: {}", client::describe_kafka_error(&e)))?;
    let by_time = match a.to_timestamp {
        Some(ts) => {
            let mut q = TopicPartitionList::new();
            for p in &partitions {
                q.add_partition_offset(&a.topic, *p, Offset::Offset(ts)).context("bad timestamp")?;
            }
            let found = consumer
                .offsets_for_times(q, args.timeout())
                .map_err(|e| anyhow!("cannot look up offsets by time: {}", client::describe_kafka_error(&e)))?;
            found
                .elements()
                .iter()
                .filter_map(|el| match el.offset() {
                    Offset::Offset(o) if o >= 0 => Some((el.partition(), o)),
                    _ => None,
                })
                .collect::<BTreeMap<i32, i64>>()
        }
        None => BTreeMap::new(),
    };
    let mut plan = Vec::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&a.topic, *p, args.timeout())
            .map_err(|e| anyhow!("cannot read offsets of partition {p}: {}", client::describe_kafka_error(&e)))?;
        let current = committed.find_partition(&a.topic, *p).and_then(|el| match el.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        });
        let new = target_offset(a, low, high, current, by_time.get(p).copied())?;
        plan.push((*p, current, new));
    }

    if a.json {
        let rows: Vec<_> =
            plan.iter().map(|(p, cur, new)| json!({"partition": p, "current": cur, "new": new})).collect();
        println!("{}", json!({"group": a.group, "topic": a.topic, "executed": a.execute, "plan": rows}));
    } else {
        println!("{:<20}  {:>9}  {:>10}  {:>10}", "TOPIC", "PARTITION", "CURRENT", "NEW");
        for (p, cur, new) in &plan {
            let cur = cur.map_or_else(|| "-".to_string(), |c| c.to_string());
            println!("{:<20}  {:>9}  {:>10}  {:>10}", a.topic, p, cur, new);
        }
    }
    if !a.execute {
        eprintln!("dry run: nothing changed (add --execute to apply)");
        return Ok(());
    }
    let groups = consumer.client().fetch_group_list(Some(&a.group), args.timeout()).map_err(group_list_error)?;
    if let Some(g) = groups.groups().iter().find(|g| g.name() == a.group) {
        if !g.members().is_empty() {
            return Err(anyhow!(
                "group {:?} has {} active members; stop them before resetting offsets",
                a.group,
                g.members().len()
            ));
        }
    }
    let mut commit = TopicPartitionList::new();
    for (p, _, new) in &plan {
        commit.add_partition_offset(&a.topic, *p, Offset::Offset(*new)).context("bad offset")?;
    }
    group_consumer
        .commit(&commit, CommitMode::Sync)
        .map_err(|e| anyhow!("cannot commit the new offsets: {}", client::describe_kafka_error(&e)))?;
    eprintln!("committed new offsets for group {:?}", a.group);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_parsed() {
        let mut b = Vec::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&6i16.to_be_bytes());
        b.extend_from_slice(b"orders");
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
        let parsed = parse_assignment(&b).unwrap();
        assert_eq!(parsed.get("orders"), Some(&vec![0, 3]));
        assert!(parse_assignment(&b[..9]).is_none());
        assert_eq!(parse_assignment(&[]).unwrap().len(), 0);
        // A lying partition count is refused.
        let mut lie = b[..14].to_vec();
        lie.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_assignment(&lie).is_none());
    }
}
