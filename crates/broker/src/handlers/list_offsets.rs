//! ListOffsets: -2 earliest (log start), -1 latest (high watermark, or the
//! last stable offset for read_committed), -3 the record with the largest
//! timestamp, -4 the earliest offset kept locally (v9, KIP-405: the log
//! start, with no tiered storage), otherwise the first record whose
//! timestamp is at or after the given one (time index, then a scan of one
//! batch). v10's timeout bounds remote lookups, of which there are none.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use vltava_protocol::batch::first_record_at_or_after;
use vltava_protocol::ResponseError;

use super::Session;
use crate::partition::Partition;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

fn lookup(partition: &Partition, timestamp: i64, read_committed: bool) -> Result<(i64, i64), ResponseError> {
    let marks = partition.watermarks();
    match timestamp {
        LATEST if read_committed => Ok((-1, marks.last_stable_offset)),
        LATEST => Ok((-1, marks.high_watermark)),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, marks.log_start_offset)),
        MAX_TIMESTAMP => match partition.max_timestamp() {
            None => Ok((-1, -1)),
            // the segment knows the batch; the answer is the record in it
            // (KIP-734: the first record with the largest timestamp)
            Some((ts, batch_last_offset)) => {
                Ok(record_with_timestamp(partition, batch_last_offset, ts).unwrap_or((ts, batch_last_offset)))
            }
        },
        ts if ts < 0 => Err(ResponseError::InvalidRequest),
        ts => {
            let batch = partition.batch_at_or_after_timestamp(ts).map_err(|e| {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "timestamp lookup failed");
                ResponseError::KafkaStorageError
            })?;
            let Some(batch) = batch else {
                return Ok((-1, -1));
            };
            match first_record_at_or_after(&batch, ts) {
                Ok(Some(found)) => Ok(found),
                Ok(None) => Ok((-1, -1)),
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "stored batch unreadable");
                    Err(ResponseError::KafkaStorageError)
                }
            }
        }
    }
}

/// The first record at or after `timestamp` in the batch holding `offset`;
/// `None` if the batch cannot be read (the caller falls back to the batch).
fn record_with_timestamp(partition: &Partition, offset: i64, timestamp: i64) -> Option<(i64, i64)> {
    let slice = partition.read(offset, 1).ok()??;
    let bytes = slice.read().ok()?;
    let (_, batch) = vltava_protocol::batch::Batches::new(&bytes).next()?.ok()?;
    first_record_at_or_after(batch, timestamp).ok()?
}

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            // ACLs: DESCRIBE on the topic
            let denied = !broker.authorize(session, AclOperation::Describe, ResourceType::Topic, &topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let found = if denied {
                        Err(ResponseError::TopicAuthorizationFailed)
                    } else {
                        broker.partition(topic.name.0.as_str(), p.partition_index).map(|(part, _)| part)
                    };
                    let result = found.and_then(|part| {
                        let epoch = part.leader_epoch();
                        if p.current_leader_epoch >= 0 && p.current_leader_epoch != epoch {
                            return Err(if p.current_leader_epoch > epoch {
                                ResponseError::UnknownLeaderEpoch
                            } else {
                                ResponseError::FencedLeaderEpoch
                            });
                        }
                        lookup(&part, p.timestamp, request.isolation_level == 1).map(|(ts, offset)| (ts, offset, epoch))
                    });
                    match result {
                        Ok((timestamp, offset, epoch)) => {
                            // leader_epoch exists from v4; older versions must leave it unset
                            let epoch = if version >= 4 { epoch } else { -1 };
                            response.with_timestamp(timestamp).with_offset(offset).with_leader_epoch(epoch)
                        }
                        Err(e) => response.with_error_code(e.code()).with_timestamp(-1).with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
