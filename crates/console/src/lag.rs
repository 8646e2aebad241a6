//! Groups and their lag, as Kafka's admin tools compute it: a partition's
//! lag is its log end offset (ListOffsets LATEST at its leader) minus the
//! group's committed offset (OffsetFetch at the group's coordinator). All
//! requests are made as the console's user ([`crate::kafka`]), so a user
//! sees the groups and topics ACLs let them describe.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    BrokerId, GroupId, ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use vltava_metadata::{AclOperation, ResourceType};

use crate::error::ConsoleError;
use crate::Ctx;

/// A group as ListGroups lists it.
#[derive(Serialize, Debug, Clone)]
pub struct ListedGroup {
    pub group: String,
    /// `classic`, `consumer` or `share`.
    pub group_type: String,
    /// `consumer` for consumer groups (classic or not), `""` for others.
    pub protocol_type: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, ...
    pub state: String,
    /// The node coordinating it.
    pub coordinator: i32,
}

/// One partition of a group's committed offsets.
#[derive(Serialize, Debug, Clone)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The committed offset (none: nothing committed).
    pub committed: Option<i64>,
    /// The partition's log end offset (none: not known, e.g. no leader).
    pub end_offset: Option<i64>,
    /// `end_offset - committed`, at least 0, when both are known.
    pub lag: Option<i64>,
}

/// A group's committed offsets and lag.
#[derive(Serialize, Debug, Clone)]
pub struct GroupLag {
    pub group: String,
    pub partitions: Vec<PartitionLag>,
    /// The sum of the known lags.
    pub total_lag: i64,
}

/// Every group of the cluster (each broker lists the groups it
/// coordinates: asked of every live broker), sorted by name.
pub async fn list_groups(ctx: &Ctx) -> Result<Vec<ListedGroup>, ConsoleError> {
    let image = ctx.broker.controller.image();
    let nodes: Vec<i32> = image.brokers().filter(|b| !b.fenced).map(|b| b.id).collect();
    let mut groups = BTreeMap::new();
    for node in nodes {
        let request = ListGroupsRequest::default();
        // ListGroups lists the groups the principal may DESCRIBE: another
        // node answers for the inter-broker principal, so it is filtered here
        let response = match ctx.call_at(node, request, &[]).await {
            Ok(r) => r,
            Err(e) if node != ctx.broker.config.node_id => {
                tracing::debug!(node, error = %e, "console: ListGroups to another broker failed");
                continue;
            }
            Err(e) => return Err(e),
        };
        ConsoleError::check(response.error_code, "list groups", None)?;
        let remote = node != ctx.broker.config.node_id;
        for g in response.groups {
            let group = g.group_id.0.to_string();
            if remote && !ctx.broker.authorize(&ctx.session, AclOperation::Describe, ResourceType::Group, &group) {
                continue;
            }
            groups.insert(
                group.clone(),
                ListedGroup {
                    group,
                    group_type: g.group_type.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: g.group_state.to_string(),
                    coordinator: node,
                },
            );
        }
    }
    Ok(groups.into_values().collect())
}

/// The committed offsets of `group`: (topic, partition) -> offset.
pub async fn committed(ctx: &Ctx, group: &str) -> Result<BTreeMap<(String, i32), i64>, ConsoleError> {
    let coordinator = ctx.group_coordinator(group)?;
    let request = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_epoch(-1)
        .with_topics(None)]);
    let response = ctx.call_at(coordinator, request, &[(AclOperation::Describe, ResourceType::Group, group)]).await?;
    let context = format!("committed offsets of group {group}");
    ConsoleError::check(response.error_code, &context, None)?;
    let mut offsets = BTreeMap::new();
    for g in response.groups {
        ConsoleError::check(g.error_code, &context, None)?;
        for t in g.topics {
            for p in t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    offsets.insert((t.name.0.to_string(), p.partition_index), p.committed_offset);
                }
            }
        }
    }
    Ok(offsets)
}

/// The log end offsets of `partitions`, asked of their leaders; a partition
/// without a leader or whose leader fails to answer is left out.
pub async fn end_offsets(ctx: &Ctx, partitions: &[(String, i32)]) -> Result<HashMap<(String, i32), i64>, ConsoleError> {
    offsets_at(ctx, partitions, -1).await
}

/// ListOffsets at `timestamp` (-1 latest, -2 earliest, or a time in ms) for
/// `partitions`, by leader; partitions that fail are left out.
pub async fn offsets_at(
    ctx: &Ctx,
    partitions: &[(String, i32)],
    timestamp: i64,
) -> Result<HashMap<(String, i32), i64>, ConsoleError> {
    let image = ctx.broker.controller.image();
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let Some(p) = image.topic(topic).and_then(|t| t.partition(*partition)) else { continue };
        if p.leader >= 0 {
            by_leader.entry(p.leader).or_default().entry(topic.as_str()).or_default().push(*partition);
        }
    }
    let mut out = HashMap::new();
    for (leader, topics) in by_leader {
        let authorize: Vec<(AclOperation, ResourceType, &str)> =
            topics.keys().map(|t| (AclOperation::Describe, ResourceType::Topic, *t)).collect();
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(0)
            .with_timeout_ms(30_000)
            .with_topics(
                topics
                    .iter()
                    .map(|(topic, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(
                                ps.iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*p)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = match ctx.call_at(leader, request, &authorize).await {
            Ok(r) => r,
            Err(e) if e.status == axum::http::StatusCode::FORBIDDEN => return Err(e),
            Err(e) => {
                tracing::debug!(leader, error = %e, "console: ListOffsets failed");
                continue;
            }
        };
        for t in response.topics {
            for p in t.partitions {
                if p.error_code == 0 && p.offset >= 0 {
                    out.insert((t.name.0.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    Ok(out)
}

fn lag_of(group: &str, committed: BTreeMap<(String, i32), i64>, ends: &HashMap<(String, i32), i64>) -> GroupLag {
    let partitions: Vec<PartitionLag> = committed
        .into_iter()
        .map(|((topic, partition), offset)| {
            let end_offset = ends.get(&(topic.clone(), partition)).copied();
            PartitionLag {
                lag: end_offset.map(|end| (end - offset).max(0)),
                topic,
                partition,
                committed: Some(offset),
                end_offset,
            }
        })
        .collect();
    GroupLag { group: group.to_string(), total_lag: partitions.iter().filter_map(|p| p.lag).sum(), partitions }
}

/// The lag of `group` on every partition it committed an offset for.
pub async fn group_lag(ctx: &Ctx, group: &str) -> Result<GroupLag, ConsoleError> {
    let committed = committed(ctx, group).await?;
    let keys: Vec<(String, i32)> = committed.keys().cloned().collect();
    let ends = end_offsets(ctx, &keys).await?;
    Ok(lag_of(group, committed, &ends))
}

/// The groups with committed offsets on `topic`, with their lag there.
pub async fn topic_consumers(ctx: &Ctx, topic: &str) -> Result<Vec<GroupLag>, ConsoleError> {
    let groups = match list_groups(ctx).await {
        Ok(g) => g,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut on_topic = Vec::new();
    for g in groups.iter().filter(|g| g.group_type != "share") {
        let Ok(committed) = committed(ctx, &g.group).await else { continue };
        let mine: BTreeMap<(String, i32), i64> = committed.into_iter().filter(|((t, _), _)| t == topic).collect();
        if !mine.is_empty() {
            on_topic.push((g.group.clone(), mine));
        }
    }
    let mut keys: Vec<(String, i32)> = on_topic.iter().flat_map(|(_, c)| c.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    let ends = end_offsets(ctx, &keys).await?;
    Ok(on_topic.into_iter().map(|(group, committed)| lag_of(&group, committed, &ends)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_end_offset_minus_the_committed_one() {
        let committed = BTreeMap::from([(("t".to_string(), 0), 5), (("t".to_string(), 1), 7)]);
        let ends = HashMap::from([(("t".to_string(), 0), 12)]);
        let lag = lag_of("g", committed, &ends);
        assert_eq!(lag.partitions[0].lag, Some(7));
        assert_eq!(lag.partitions[1].lag, None, "no end offset known");
        assert_eq!(lag.total_lag, 7);
    }
}
