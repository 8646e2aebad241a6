//! Source offsets in the offsets topic, in Kafka Connect's format: key
//! `["connector",{source partition}]`, value `{source offset}` (a tombstone
//! resets it), both compact JSON. Read from the beginning to the end of
//! every partition (committed records only), written with the worker's
//! producer or, for exactly-once sources, inside the task's transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;

use crate::config::WorkerConfig;
use crate::connector::OffsetReader;
use crate::data::JsonMap;
use crate::error::{ConnectError, Result};

/// How long reading the offsets topic to its end may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long writing offsets may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The offsets topic key of a connector's source partition.
pub fn key(connector: &str, partition: &JsonMap) -> Vec<u8> {
    serde_json::to_vec(&json!([connector, partition])).unwrap_or_default()
}

/// A source partition as a map key (serde_json's maps are sorted: equal maps print alike).
pub fn partition_key(partition: &JsonMap) -> String {
    serde_json::Value::Object(partition.clone()).to_string()
}

/// Reads and writes the offsets topic.
pub struct OffsetStore {
    config: Arc<WorkerConfig>,
}

impl OffsetStore {
    pub fn new(config: Arc<WorkerConfig>) -> OffsetStore {
        OffsetStore { config }
    }

    /// Every committed offset of `connector`: partition -> offset (reset ones left out).
    pub async fn read(&self, connector: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
        let config = self.config.clone();
        let connector = connector.to_string();
        tokio::task::spawn_blocking(move || read_blocking(&config, &connector))
            .await
            .map_err(|e| ConnectError::fatal(format!("reading offsets: {e}")))?
    }

    /// An [`OffsetReader`] over what [`read`](Self::read) finds now.
    pub async fn reader(&self, connector: &str) -> Result<Arc<dyn OffsetReader>> {
        let map = self.read(connector).await?.into_iter().map(|(p, o)| (partition_key(&p), o)).collect();
        Ok(Arc::new(SnapshotReader(map)))
    }

    /// Writes offsets (`None`: a tombstone) with `producer` and waits for the acks.
    pub async fn write(
        &self,
        producer: &FutureProducer,
        connector: &str,
        entries: &[(JsonMap, Option<JsonMap>)],
    ) -> Result<()> {
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = entries
            .iter()
            .map(|(p, o)| (key(connector, p), o.as_ref().map(|o| serde_json::to_vec(o).unwrap_or_default())))
            .collect();
        let mut pending = Vec::with_capacity(encoded.len());
        for (k, v) in &encoded {
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.config.offset_topic).key(k.as_slice());
            if let Some(v) = v {
                record = record.payload(v.as_slice());
            }
            pending.push(producer.send(record, WRITE_TIMEOUT));
        }
        for p in futures::future::join_all(pending).await {
            p.map_err(|(e, _)| {
                ConnectError::retriable(format!("writing offsets to {}: {e}", self.config.offset_topic))
            })?;
        }
        Ok(())
    }
}

struct SnapshotReader(HashMap<String, JsonMap>);

#[async_trait]
impl OffsetReader for SnapshotReader {
    async fn offset(&self, partition: &JsonMap) -> Result<Option<JsonMap>> {
        Ok(self.0.get(&partition_key(partition)).cloned())
    }
}

fn read_blocking(config: &WorkerConfig, connector: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
    let fail = |what: String| ConnectError::retriable(format!("reading {}: {what}", config.offset_topic));
    let mut cc = ClientConfig::new();
    for (k, v) in config.client_props("consumer.") {
        cc.set(k, v);
    }
    cc.set("group.id", format!("{}-offsets-reader", config.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
    let consumer: BaseConsumer = cc.create().map_err(|e| fail(e.to_string()))?;
    let metadata = consumer
        .fetch_metadata(Some(&config.offset_topic), Duration::from_secs(10))
        .map_err(|e| fail(e.to_string()))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == config.offset_topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(&config.offset_topic, *p, Offset::Beginning).map_err(|e| fail(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| fail(e.to_string()))?;
    let mut at_end = std::collections::HashSet::new();
    let mut latest: HashMap<String, (JsonMap, Option<JsonMap>)> = HashMap::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    while at_end.len() < partitions.len() {
        if Instant::now() > deadline {
            return Err(fail(format!("not at the end after {READ_TIMEOUT:?}")));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => return Err(fail(e.to_string())),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let Some(k) = m.key() else { continue };
                let Ok(serde_json::Value::Array(parts)) = serde_json::from_slice::<serde_json::Value>(k) else {
                    continue;
                };
                if parts.len() != 2 || parts[0].as_str() != Some(connector) {
                    continue;
                }
                let Some(partition) = parts[1].as_object().cloned() else { continue };
                let offset = m
                    .payload()
                    .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                    .and_then(|v| v.as_object().cloned());
                latest.insert(partition_key(&partition), (partition, offset));
            }
        }
    }
    Ok(latest.into_values().filter_map(|(p, o)| o.map(|o| (p, o))).collect())
}
