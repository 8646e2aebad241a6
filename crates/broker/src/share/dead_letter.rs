//! Dead-letter topics (beyond Kafka 4.2, KIP-1191's config name): records
//! a share group gives up on (REJECTed by a consumer, or archived at the
//! delivery count limit) are copied to the group's
//! `errors.deadletterqueue.topic.name` with their key, value and headers,
//! plus headers naming where they came from:
//!
//! | header                   | value                              |
//! |--------------------------|------------------------------------|
//! | `__dlq.source.topic`     | the source topic                   |
//! | `__dlq.source.partition` | its partition (decimal)            |
//! | `__dlq.source.offset`    | the record's offset (decimal)      |
//! | `__dlq.group`            | the share group                    |
//! | `__dlq.delivery.count`   | deliveries so far (decimal)        |
//! | `__dlq.reason`           | `rejected` or `delivery_limit`     |
//!
//! The topic is created on first use (one partition). The copy is durable
//! (fsynced and in the ISR; produced with acks=all to the dead-letter
//! partition's leader when that is another broker) before the
//! acknowledgement that caused it is answered; if it cannot be written the
//! acknowledgement fails with the error and the consumer retries it.

use std::sync::Arc;
use std::time::Duration;

use vltava_protocol::batch::{
    build_batch_from_tails, put_varint, read_varint, records_of, records_section, BatchHeader, Batches,
};
use vltava_protocol::{ResponseError, StrBytes};

use super::partition::DeadLetter;
use crate::controller::TopicSpec;
use crate::partition::Partition;
use crate::Broker;

/// How long the dead-letter partition's leader may take to make a copy
/// durable.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the records came from.
pub struct Source<'a> {
    pub group: &'a str,
    pub partition: &'a Partition,
}

/// Copies `dead` (records of `source`) to the dead-letter topic `topic`;
/// returns once the copies are durable (fsynced and in the ISR, as a
/// coordinator's writes).
pub async fn write(
    broker: &Broker,
    topic: &str,
    source: &Source<'_>,
    dead: &[DeadLetter],
) -> Result<(), ResponseError> {
    if dead.is_empty() {
        return Ok(());
    }
    let target = target(broker, topic)?;
    let now_ms = crate::delegation_tokens::now_ms();
    let mut tails: Vec<(i64, i64, Vec<u8>)> = Vec::with_capacity(dead.len());
    for (i, d) in dead.iter().enumerate() {
        let (timestamp, tail) = match original(source.partition, d.offset) {
            Some(found) => found,
            // gone (retention, compaction): the headers still say what it was
            None => (now_ms, empty_tail()),
        };
        let headers = [
            ("__dlq.source.topic", source.partition.topic.clone()),
            ("__dlq.source.partition", source.partition.index.to_string()),
            ("__dlq.source.offset", d.offset.to_string()),
            ("__dlq.group", source.group.to_string()),
            ("__dlq.delivery.count", d.delivery_count.to_string()),
            ("__dlq.reason", d.reason.name().to_string()),
        ];
        let tail = with_headers(&tail, &headers).ok_or(ResponseError::CorruptMessage)?;
        tails.push((i as i64, timestamp, tail));
    }
    let refs: Vec<(i64, i64, &[u8])> = tails.iter().map(|(o, t, b)| (*o, *t, &b[..])).collect();
    let mut batch = build_batch_from_tails(0, false, &refs);
    match target {
        Target::Local(partition) => {
            let info = partition.append(&mut batch, None).map_err(|e| {
                tracing::error!(topic, error = %e, "dead-letter append failed");
                ResponseError::KafkaStorageError
            })?;
            partition.wait_coordinator_write(info.last_offset + 1).await?;
        }
        Target::Remote(addr) => produce_remote(broker, &addr, topic, batch).await?,
    }
    tracing::debug!(topic, group = source.group, records = dead.len(), "records written to the dead-letter topic");
    Ok(())
}

/// Where the copies go: partition 0 of the dead-letter topic, here or at
/// its leader.
enum Target {
    Local(Arc<Partition>),
    /// The leader's `host:port`.
    Remote(String),
}

/// Where the dead-letter topic's partition 0 is led, the topic created if
/// absent.
fn target(broker: &Broker, topic: &str) -> Result<Target, ResponseError> {
    if broker.controller.image().topic(topic).is_none() {
        let spec = TopicSpec {
            name: topic.to_string(),
            num_partitions: 1,
            replication_factor: crate::group::coordinator::internal_topic_replication(
                broker,
                broker.config.offsets_topic_replication_factor,
            )?,
            configs: Vec::new(),
        };
        match broker.create_topic(&spec) {
            Ok(_) => tracing::info!(topic, "created dead-letter topic"),
            Err(e) if e.error == ResponseError::TopicAlreadyExists => {}
            Err(e) => {
                tracing::error!(topic, error = %e.message, "could not create the dead-letter topic");
                return Err(e.error);
            }
        }
    }
    match broker.partition(topic, 0) {
        Ok((p, _)) => Ok(Target::Local(p)),
        Err(ResponseError::NotLeaderOrFollower) => {
            let image = broker.controller.image();
            let leader = image.topic(topic).and_then(|t| t.partition(0)).map(|p| p.leader);
            leader
                .and_then(|l| image.broker(l))
                .filter(|b| !b.fenced)
                .map(|b| Target::Remote(format!("{}:{}", b.host, b.port)))
                .ok_or(ResponseError::LeaderNotAvailable)
        }
        Err(e) => Err(e),
    }
}

/// Produces `batch` with acks=all to partition 0 of `topic` at `addr`.
async fn produce_remote(broker: &Broker, addr: &str, topic: &str, batch: Vec<u8>) -> Result<(), ResponseError> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(PRODUCE_TIMEOUT.as_millis() as i32)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.into()))])]);
    let client_id = format!("vltava-dead-letters-{}", broker.config.node_id);
    let response: std::io::Result<ProduceResponse> = async {
        let mut conn = crate::replication::KafkaConn::connect_to_broker(broker, addr, client_id).await?;
        conn.call(ApiKey::Produce, 9, &request, PRODUCE_TIMEOUT + Duration::from_secs(5)).await
    }
    .await;
    let response = response.map_err(|e| {
        tracing::warn!(topic, leader = addr, error = %e, "producing dead letters to the leader failed");
        ResponseError::LeaderNotAvailable
    })?;
    let code = response.responses.iter().flat_map(|t| t.partition_responses.iter()).map(|p| p.error_code).next();
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)),
        None => Err(ResponseError::UnknownServerError),
    }
}

/// The stored record at `offset`: its timestamp and its encoded key,
/// value and headers.
fn original(partition: &Partition, offset: i64) -> Option<(i64, Vec<u8>)> {
    let bytes = partition.read(offset, 1).ok()??.read().ok()?;
    for item in Batches::new(&bytes) {
        let (_, batch) = item.ok()?;
        let header = BatchHeader::parse(batch).ok()?;
        if header.last_offset() < offset {
            continue;
        }
        let section = records_section(batch).ok()?;
        let records = records_of(batch, &section).ok()?;
        return records.iter().find(|r| r.offset == offset).map(|r| (r.timestamp, r.tail.to_vec()));
    }
    None
}

/// A record tail with null key and value and no headers.
fn empty_tail() -> Vec<u8> {
    let mut t = Vec::new();
    put_varint(&mut t, -1);
    put_varint(&mut t, -1);
    put_varint(&mut t, 0);
    t
}

/// `tail` (key, value, headers) with `extra` headers appended.
fn with_headers(tail: &[u8], extra: &[(&str, String)]) -> Option<Vec<u8>> {
    let mut pos = 0usize;
    for _ in 0..2 {
        let (len, used) = read_varint(tail.get(pos..)?)?;
        pos += used + len.max(0) as usize;
    }
    let (count, used) = read_varint(tail.get(pos..)?)?;
    let existing = tail.get(pos + used..)?;
    let mut out = tail.get(..pos)?.to_vec();
    put_varint(&mut out, count.max(0) as i64 + extra.len() as i64);
    out.extend_from_slice(existing);
    for (k, v) in extra {
        put_varint(&mut out, k.len() as i64);
        out.extend_from_slice(k.as_bytes());
        put_varint(&mut out, v.len() as i64);
        out.extend_from_slice(v.as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_added_after_the_original_ones() {
        // key "k", value "v", one header a=b
        let mut tail = Vec::new();
        for part in [&b"k"[..], &b"v"[..]] {
            put_varint(&mut tail, part.len() as i64);
            tail.extend_from_slice(part);
        }
        put_varint(&mut tail, 1);
        for part in [&b"a"[..], &b"b"[..]] {
            put_varint(&mut tail, part.len() as i64);
            tail.extend_from_slice(part);
        }
        let out = with_headers(&tail, &[("x", "1".to_string())]).unwrap();
        assert_eq!(&out[..4], &tail[..4]);
        assert_eq!(read_varint(&out[4..]).unwrap().0, 2);
        assert!(out.ends_with(b"\x02x\x021"));
        assert!(with_headers(&[0x7f], &[]).is_none());
    }
}
