//! DeleteRecords: moves a partition's log start offset (offset -1 means the
//! high watermark); whole segments below it are deleted.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use vltava_protocol::ResponseError;
use vltava_storage::StorageError;

use super::Session;
use crate::Broker;
use vltava_metadata::{AclOperation, ResourceType};

pub fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            // ACLs: DELETE on the topic
            let denied = !broker.authorize(session, AclOperation::Delete, ResourceType::Topic, &topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index).with_low_watermark(-1);
                    if denied {
                        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let partition = match broker.partition(topic.name.0.as_str(), p.partition_index) {
                        Ok((part, _)) => part,
                        Err(e) => return result.with_error_code(e.code()),
                    };
                    let target = if p.offset == -1 { partition.watermarks().high_watermark } else { p.offset };
                    match partition.delete_records_before(target) {
                        Ok(low) => {
                            tracing::info!(topic = %partition.topic, partition = partition.index, log_start_offset = low, "deleted records");
                            result.with_low_watermark(low)
                        }
                        Err(StorageError::OffsetOutOfRange { .. }) => result.with_error_code(ResponseError::OffsetOutOfRange.code()),
                        Err(e) => {
                            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "delete records failed");
                            result.with_error_code(ResponseError::KafkaStorageError.code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
