//! Produce: validate each partition's batches (headers, CRC-32C, counts,
//! size), append them in request order, then answer. acks=0 gets no
//! response, acks=1 is answered after the write, acks=all after the write
//! is fsynced (group commit) when `log.flush.on.acks.all` is on.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::batch::{records_of, records_section, validate_produced, BatchHeader, Batches};
use vltava_protocol::{ResponseError, StrBytes};

use super::ResponseFuture;
use crate::partition::Partition;
use crate::topic_config::TopicSettings;
use crate::txn::implicit::Added;
use crate::Broker;

struct Outcome {
    response: PartitionProduceResponse,
    /// acks=all: what to wait for before answering.
    durable: Option<AcksAll>,
}

/// acks=all: the offset the high watermark must pass (and, with
/// `log.flush.on.acks.all`, be fsynced below), at the leader epoch of the
/// append.
struct AcksAll {
    partition: Arc<Partition>,
    offset: i64,
    epoch: i32,
    fsync: bool,
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
    if topic == crate::group::OFFSETS_TOPIC || topic == crate::txn::TRANSACTION_STATE_TOPIC {
        // Only the coordinators write there, as in Kafka.
        return failed(
            index,
            ResponseError::InvalidTopicException,
            Some(format!("Cannot append to internal topic {topic}")),
        );
    }
    let (partition, _topic) = match broker.partition(topic, index) {
        Ok(found) => found,
        Err(e) => return failed(index, e, None),
    };
    if acks == -1 {
        if let Err(e) = partition.check_min_isr() {
            let message = format!(
                "The size of the current ISR {:?} is insufficient to satisfy the min.isr requirement of {} for partition {topic}-{index}",
                partition.state().isr,
                partition.settings().min_insync_replicas
            );
            return failed(index, e, Some(message));
        }
    }
    append_partition(broker, topic, index, partition, records, acks)
}

fn append_partition(
    broker: &Broker,
    topic: &str,
    index: i32,
    partition: Arc<Partition>,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> Outcome {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return failed(index, ResponseError::InvalidRecord, Some("empty record set".into()));
    };
    let settings = partition.settings();
    let max_message_bytes = settings.max_message_bytes;
    if let Err(e) = validate_produced(&records, max_message_bytes) {
        tracing::warn!(topic, partition = index, error = %e, "rejecting produce batch");
        let error = ResponseError::try_from_code(e.error_code()).unwrap_or(ResponseError::CorruptMessage);
        return failed(index, error, Some(e.to_string()));
    }
    let checked = check_records(&records, &settings).and_then(|()| {
        let validation = &settings.schema_validation;
        crate::schema_validation::check(&broker.schema_registry, topic, &records, validation).map_err(Rejected::from)
    });
    if let Err(Rejected { error, message, record_errors }) = checked {
        tracing::warn!(topic, partition = index, %message, "rejecting produce batch");
        let mut outcome = failed(index, error, Some(message));
        outcome.response.record_errors = record_errors;
        return outcome;
    }
    if let Err(e) = partition.admit_produced(records.len()) {
        // the log directory said so once; the producer retries
        tracing::debug!(topic, partition = index, error = %e, "refusing produce: disk space");
        return failed(index, ResponseError::KafkaStorageError, Some(e.to_string()));
    }
    let log_append_time = settings.log_append_time.then(now_ms);
    let mut batches = match settings.compression.and_then(vltava_protocol::batch::codec_id) {
        // compression.type other than "producer": recompress as Kafka does
        Some(codec) => match recompress_all(&records, codec) {
            Ok(b) => b,
            Err(e) => return failed(index, ResponseError::CorruptMessage, Some(e.to_string())),
        },
        None => BytesMut::from(&records[..]),
    };
    match partition.append(&mut batches, log_append_time) {
        Ok(info) => {
            partition.metrics.produced((info.last_offset - info.base_offset + 1) as u64, records.len() as u64);
            let watermarks = partition.watermarks();
            let durable = (acks == -1).then(|| AcksAll {
                partition: partition.clone(),
                offset: info.last_offset + 1,
                epoch: partition.leader_epoch(),
                fsync: broker.config.flush_on_acks_all,
            });
            Outcome {
                response: PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(log_append_time.unwrap_or(-1))
                    .with_log_start_offset(watermarks.log_start_offset),
                durable,
            }
        }
        Err(vltava_storage::StorageError::Producer(e)) => {
            tracing::debug!(topic, partition = index, error = %e, "refusing producer batch");
            let error = ResponseError::try_from_code(e.error_code()).unwrap_or(ResponseError::InvalidRecord);
            failed(index, error, Some(e.to_string()))
        }
        Err(vltava_storage::StorageError::NotLeader) => failed(index, ResponseError::NotLeaderOrFollower, None),
        Err(e @ vltava_storage::StorageError::TooLarge { .. }) => {
            tracing::warn!(topic, partition = index, error = %e, "rejecting produce batch");
            failed(index, ResponseError::RecordListTooLarge, Some(e.to_string()))
        }
        Err(e) => {
            tracing::error!(topic, partition = index, error = %e, "append failed");
            failed(index, ResponseError::KafkaStorageError, Some(e.to_string()))
        }
    }
}

impl AcksAll {
    /// Waits for the ISR to have the records (and for the fsync).
    async fn done(&self, timeout: std::time::Duration) -> Result<(), ResponseError> {
        self.partition.wait_committed(self.offset, self.epoch, self.fsync, timeout).await
    }
}

fn recompress_all(records: &[u8], codec: i16) -> Result<BytesMut, vltava_protocol::batch::BatchError> {
    let mut out = BytesMut::with_capacity(records.len());
    for item in Batches::new(records) {
        let (_, batch) = item?;
        out.extend_from_slice(&vltava_protocol::batch::recompress(batch, codec)?);
    }
    Ok(out)
}

/// Why a partition's records were refused, with the records at fault
/// (KIP-467: the client fails those and retries the rest).
struct Rejected {
    error: ResponseError,
    message: String,
    record_errors: Vec<BatchIndexAndErrorMessage>,
}

impl Rejected {
    fn whole(error: ResponseError, message: impl Into<String>) -> Self {
        Rejected { error, message: message.into(), record_errors: Vec::new() }
    }
}

impl From<crate::schema_validation::Refusal> for Rejected {
    fn from(r: crate::schema_validation::Refusal) -> Self {
        let record_errors = r
            .record_errors
            .into_iter()
            .map(|(i, why)| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(i)
                    .with_batch_index_error_message(Some(StrBytes::from_string(why)))
            })
            .collect();
        Rejected { error: r.error, message: r.message, record_errors }
    }
}

/// Topic-dependent checks: CreateTime within `message.timestamp.before/
/// after.max.ms` (from the batch header's first and max timestamps), and a
/// key on every record of a compacted topic (each keyless record named by
/// its index in the batch, as Kafka's validator does).
fn check_records(records: &[u8], settings: &TopicSettings) -> Result<(), Rejected> {
    let now = now_ms();
    for (_, batch) in Batches::new(records).flatten() {
        let h = BatchHeader::parse(batch).map_err(|e| Rejected::whole(ResponseError::CorruptMessage, e.to_string()))?;
        if !settings.log_append_time {
            if h.max_timestamp().saturating_sub(now) > settings.timestamp_after_max_ms {
                return Err(Rejected::whole(
                    ResponseError::InvalidTimestamp,
                    format!("timestamp {} is too far in the future", h.max_timestamp()),
                ));
            }
            if now.saturating_sub(h.base_timestamp()) > settings.timestamp_before_max_ms {
                return Err(Rejected::whole(
                    ResponseError::InvalidTimestamp,
                    format!("timestamp {} is too far in the past", h.base_timestamp()),
                ));
            }
        }
        if settings.compact {
            let corrupt =
                |e: vltava_protocol::batch::BatchError| Rejected::whole(ResponseError::CorruptMessage, e.to_string());
            let section = records_section(batch).map_err(corrupt)?;
            let recs = records_of(batch, &section).map_err(corrupt)?;
            let keyless: Vec<BatchIndexAndErrorMessage> = recs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.key.is_none())
                .map(|(i, _)| {
                    BatchIndexAndErrorMessage::default().with_batch_index(i as i32).with_batch_index_error_message(
                        Some(StrBytes::from_static_str("Compacted topic cannot accept message without key.")),
                    )
                })
                .collect();
            if !keyless.is_empty() {
                return Err(Rejected {
                    error: ResponseError::InvalidRecord,
                    message: format!(
                        "One or more records have been rejected: {} of {} records have no key, which a compacted topic cannot accept.",
                        keyless.len(),
                        recs.len()
                    ),
                    record_errors: keyless,
                });
            }
        }
    }
    Ok(())
}

/// Produce v10+: leader hints on NOT_LEADER_OR_FOLLOWER (KIP-951).
fn add_leader_hints(broker: &Broker, listener: &str, response: &mut ProduceResponse) {
    use kafka_protocol::messages::produce_response::{LeaderIdAndEpoch, NodeEndpoint};
    let image = broker.controller.image();
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    for topic in &mut response.responses {
        for p in &mut topic.partition_responses {
            if !super::is_leader_error(p.error_code) {
                continue;
            }
            let Some(super::LeaderHint { leader, epoch, endpoint }) =
                super::leader_hint(&image, listener, topic.name.0.as_str(), p.index)
            else {
                continue;
            };
            p.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(kafka_protocol::messages::BrokerId(leader))
                .with_leader_epoch(epoch);
            if let Some((host, port)) = endpoint {
                if !endpoints.iter().any(|e| e.node_id.0 == leader) {
                    endpoints.push(
                        NodeEndpoint::default()
                            .with_node_id(kafka_protocol::messages::BrokerId(leader))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port as i32),
                    );
                }
            }
        }
    }
    response.node_endpoints = endpoints;
}

/// `added`: partitions a transactions v2 producer's first write could not
/// be added to its transaction for (Produce v12, see `txn::implicit`).
pub fn handle(
    broker: &Arc<Broker>,
    session: &super::Session,
    request: ProduceRequest,
    version: i16,
    added: &Added,
) -> ResponseFuture {
    let listener = session.listener.clone();
    let acks = request.acks;
    let timeout = std::time::Duration::from_millis(request.timeout_ms.clamp(0, 10 * 60 * 1000) as u64);
    // ACLs (authorizer on only): WRITE on the transactional id, then on each topic
    let image = broker.authorizer_enabled().then(|| broker.controller.image());
    let txn_denied = match (&image, &request.transactional_id) {
        (Some(image), Some(id)) => {
            !broker.authorize_in(image, session, AclOperation::Write, ResourceType::TransactionalId, id)
        }
        _ => false,
    };
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let topic_denied = image
            .as_ref()
            .is_some_and(|image| !broker.authorize_in(image, session, AclOperation::Write, ResourceType::Topic, &name));
        let outcomes: Vec<Outcome> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                if txn_denied {
                    return failed(p.index, ResponseError::TransactionalIdAuthorizationFailed, None);
                }
                if topic_denied {
                    return failed(p.index, ResponseError::TopicAuthorizationFailed, None);
                }
                if !matches!(acks, -1..=1) {
                    return failed(p.index, ResponseError::InvalidRequiredAcks, None);
                }
                if let Some(e) = added.error(&name, p.index) {
                    return failed(p.index, e, Some("the partition could not be added to the transaction".into()));
                }
                produce_partition(broker, &name, p.index, p.records, acks)
            })
            .collect();
        if outcomes.iter().any(|o| o.response.error_code != 0) {
            crate::broker_metrics::produce_failed(&name);
        }
        topics.push((topic.name, outcomes));
    }
    if acks == 0 {
        return Box::pin(std::future::ready(None));
    }
    let broker = broker.clone();
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, outcomes) in topics {
            let mut partition_responses = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                let mut response = outcome.response;
                if let Some(wait) = outcome.durable {
                    if let Err(e) = wait.done(timeout).await {
                        response = response.with_error_code(e.code()).with_base_offset(-1);
                    }
                }
                partition_responses.push(response);
            }
            responses
                .push(TopicProduceResponse::default().with_name(name).with_partition_responses(partition_responses));
        }
        let mut response = ProduceResponse::default().with_responses(responses);
        if version >= 10 {
            add_leader_hints(&broker, &listener, &mut response);
        }
        Some(ResponseKind::Produce(response))
    })
}
