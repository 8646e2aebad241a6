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
//! before the acknowledgement that caused it is answered; this
//! node must lead the dead-letter partition (single-leader limitation:
//! otherwise the copy is refused and logged, and the acknowledgement
//! answered with the error).

use vltava_protocol::batch::{
    build_batch_from_tails, put_varint, read_varint, records_of, records_section, BatchHeader, Batches,
};
use vltava_protocol::ResponseError;

use super::partition::DeadLetter;
use crate::controller::TopicSpec;
use crate::partition::Partition;
use crate::Broker;

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
    let target = target_partition(broker, topic)?;
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
    let info = target.append(&mut batch, None).map_err(|e| {
        tracing::error!(topic, error = %e, "dead-letter append failed");
        ResponseError::KafkaStorageError
    })?;
    target.wait_coordinator_write(info.last_offset + 1).await?;
    tracing::debug!(topic, group = source.group, records = dead.len(), "records written to the dead-letter topic");
    Ok(())
}

/// The dead-letter topic's partition 0, the topic created if absent.
fn target_partition(broker: &Broker, topic: &str) -> Result<std::sync::Arc<Partition>, ResponseError> {
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
    broker.partition(topic, 0).map(|(p, _)| p).inspect_err(|e| {
        tracing::warn!(topic, error = ?e, "dead-letter partition not led here: records not copied");
    })
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
