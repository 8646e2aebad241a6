//! OffsetFetch: committed offsets of one group (v0-v7) or several (v8+).
//! A partition without a commit answers offset -1 and no error.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use vltava_protocol::StrBytes;

use crate::group::records::CommittedOffset;
use crate::Broker;

type Rows = Vec<(String, i32, Option<CommittedOffset>)>;

fn by_topic(rows: Rows) -> BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> {
    let mut map: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (t, p, c) in rows {
        map.entry(t).or_default().push((p, c));
    }
    map
}

fn fields(c: &Option<CommittedOffset>) -> (i64, i32, String) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

pub fn handle(broker: &Arc<Broker>, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .flat_map(|t| t.partition_indexes.into_iter().map(move |p| (t.name.0.to_string(), p)))
                        .collect()
                });
                let rows = match broker.groups.fetch_offsets(g.group_id.0.as_str(), wanted) {
                    Ok(rows) => rows,
                    Err(e) => {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(GroupId(g.group_id.0))
                            .with_error_code(e.code())
                    }
                };
                let topics = by_topic(rows)
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(t)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        let (offset, epoch, metadata) = fields(&c);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(StrBytes::from_string(metadata)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default().with_group_id(GroupId(g.group_id.0)).with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter().flat_map(|t| t.partition_indexes.into_iter().map(move |p| (t.name.0.to_string(), p))).collect()
    });
    let rows = match broker.groups.fetch_offsets(request.group_id.0.as_str(), wanted) {
        Ok(rows) => rows,
        Err(e) => return OffsetFetchResponse::default().with_error_code(e.code()),
    };
    let topics = by_topic(rows)
        .into_iter()
        .map(|(t, parts)| {
            OffsetFetchResponseTopic::default().with_name(TopicName(StrBytes::from_string(t))).with_partitions(
                parts
                    .into_iter()
                    .map(|(p, c)| {
                        let (offset, epoch, metadata) = fields(&c);
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_metadata(Some(StrBytes::from_string(metadata)))
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
