//! Produce: validate each partition's batches (headers, CRC-32C, counts,
//! size), append them in request order, then answer. acks=0 gets no
//! response, acks=1 is answered after the write, acks=all after the write
//! is fsynced (group commit) when `log.flush.on.acks.all` is on.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use vltava_protocol::batch::validate_produced;
use vltava_protocol::{ResponseError, StrBytes};

use super::ResponseFuture;
use crate::partition::Partition;
use crate::topic_config::get_i64;
use crate::Broker;

struct Outcome {
    response: PartitionProduceResponse,
    /// Offset to be durable before answering (acks=all), with its partition.
    durable: Option<(Arc<Partition>, i64)>,
}

fn failed(index: i32, error: ResponseError, message: Option<String>) -> Outcome {
    Outcome {
        response: PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(error.code())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(message.map(StrBytes::from_string)),
        durable: None,
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn produce_partition(broker: &Broker, topic: &str, index: i32, records: Option<bytes::Bytes>, acks: i16) -> Outcome {
    let (partition, topic_image) = match broker.partition(topic, index) {
        Ok(found) => found,
        Err(e) => return failed(index, e, None),
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return failed(index, ResponseError::InvalidRecord, Some("empty record set".into()));
    };
    let max_message_bytes = get_i64(&topic_image.configs, "max.message.bytes")
        .map(|v| v as usize)
        .unwrap_or(broker.config.message_max_bytes);
    if let Err(e) = validate_produced(&records) {
        tracing::warn!(topic, partition = index, error = %e, "rejecting produce batch");
        let error = ResponseError::try_from_code(e.error_code()).unwrap_or(ResponseError::CorruptMessage);
        return failed(index, error, Some(e.to_string()));
    }
    if vltava_protocol::batch::Batches::new(&records).flatten().any(|(_, batch)| batch.len() > max_message_bytes) {
        return failed(
            index,
            ResponseError::MessageTooLarge,
            Some(format!("a record batch is larger than the max message size {max_message_bytes}")),
        );
    }
    let log_append_time =
        (topic_image.configs.get("message.timestamp.type").map(String::as_str) == Some("LogAppendTime")).then(now_ms);
    let mut batches = BytesMut::from(&records[..]);
    match partition.append(&mut batches, log_append_time) {
        Ok(info) => {
            let watermarks = partition.watermarks();
            let durable =
                (acks == -1 && broker.config.flush_on_acks_all).then(|| (partition.clone(), info.last_offset + 1));
            Outcome {
                response: PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(log_append_time.unwrap_or(-1))
                    .with_log_start_offset(watermarks.log_start_offset),
                durable,
            }
        }
        Err(e) => {
            tracing::error!(topic, partition = index, error = %e, "append failed");
            failed(index, ResponseError::KafkaStorageError, Some(e.to_string()))
        }
    }
}

pub fn handle(broker: &Arc<Broker>, request: ProduceRequest, _version: i16) -> ResponseFuture {
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let outcomes: Vec<Outcome> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                if !matches!(acks, -1..=1) {
                    return failed(p.index, ResponseError::InvalidRequiredAcks, None);
                }
                produce_partition(broker, &name, p.index, p.records, acks)
            })
            .collect();
        topics.push((topic.name, outcomes));
    }
    if acks == 0 {
        return Box::pin(std::future::ready(None));
    }
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, outcomes) in topics {
            let mut partition_responses = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                let mut response = outcome.response;
                if let Some((partition, offset)) = outcome.durable {
                    if let Err(e) = partition.wait_durable(offset).await {
                        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fsync failed");
                        response =
                            response.with_error_code(ResponseError::KafkaStorageError.code()).with_base_offset(-1);
                    }
                }
                partition_responses.push(response);
            }
            responses
                .push(TopicProduceResponse::default().with_name(name).with_partition_responses(partition_responses));
        }
        Some(ResponseKind::Produce(ProduceResponse::default().with_responses(responses)))
    })
}
