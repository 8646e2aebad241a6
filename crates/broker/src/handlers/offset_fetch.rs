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

use super::Session;
use crate::group::records::CommittedOffset;
use crate::Broker;
use vltava_metadata::{AclOperation, MetadataImage, ResourceType};
use vltava_protocol::ResponseError;

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

/// The committed offsets of a group, as the session may see them: DESCRIBE
/// on the group, and on each topic (a named topic it may not DESCRIBE gets
/// TOPIC_AUTHORIZATION_FAILED; "all topics" leaves such topics out).
fn authorized_offsets(
    broker: &Broker,
    image: &MetadataImage,
    session: &Session,
    group: &str,
    wanted: Option<Vec<(String, i32)>>,
) -> Result<Rows, ResponseError> {
    if !broker.authorize_in(image, session, AclOperation::Describe, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let named = wanted.is_some();
    let may = |t: &str| broker.authorize_in(image, session, AclOperation::Describe, ResourceType::Topic, t);
    let rows = broker.groups.fetch_offsets(group, wanted)?;
    Ok(rows.into_iter().filter(|(t, _, _)| named || may(t)).collect())
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let image = broker.controller.image();
    let denied = |t: &str| !broker.authorize_in(&image, session, AclOperation::Describe, ResourceType::Topic, t);
    let error_of = |t: &str| if denied(t) { ResponseError::TopicAuthorizationFailed.code() } else { 0 };
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
                let member = g.member_id.as_ref().map(|m| m.as_str());
                let rows =
                    authorized_offsets(broker, &image, session, g.group_id.0.as_str(), wanted).and_then(|rows| {
                        broker.groups.check_fetch_member(g.group_id.0.as_str(), member, g.member_epoch).map(|_| rows)
                    });
                let rows = match rows {
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
                        let error = error_of(&t);
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(t)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        let (offset, epoch, metadata) =
                                            if error == 0 { fields(&c) } else { fields(&None) };
                                        OffsetFetchResponsePartitions::default()
                                            .with_error_code(error)
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
    let rows = match authorized_offsets(broker, &image, session, request.group_id.0.as_str(), wanted) {
        Ok(rows) => rows,
        Err(e) => return OffsetFetchResponse::default().with_error_code(e.code()),
    };
    let topics = by_topic(rows)
        .into_iter()
        .map(|(t, parts)| {
            let error = error_of(&t);
            OffsetFetchResponseTopic::default().with_name(TopicName(StrBytes::from_string(t))).with_partitions(
                parts
                    .into_iter()
                    .map(|(p, c)| {
                        let (offset, epoch, metadata) = if error == 0 { fields(&c) } else { fields(&None) };
                        OffsetFetchResponsePartition::default()
                            .with_error_code(error)
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
