//! The worker's two compacted topics the herder owns, in Kafka Connect's
//! formats: the config topic (`connector-NAME`, `task-NAME-N`,
//! `commit-NAME`, `target-state-NAME`, `restart-connector-NAME`) read from
//! the start into a [`ConfigSnapshot`], and the status topic
//! (`status-connector-NAME`, `status-task-NAME-N`) read into a map. Both
//! are read by a thread polling an rdkafka consumer (assigned partitions, no
//! group); writes go through one idempotent producer (acks=all).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, watch};

use crate::config::{Props, WorkerConfig};
use crate::status::{State, TargetState, TaskId};

/// How long one poll of a store reader waits.
const READER_POLL: Duration = Duration::from_millis(100);
/// The longest a metadata or watermark query may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a write waits for its acknowledgement.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The restart requests queued for the herder at most.
const RESTART_QUEUE_MAX: usize = 1024;

/// A `restart-connector-NAME` request (Connect's restart record).
#[derive(Clone, Debug)]
pub struct RestartRequest {
    pub connector: String,
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// What the config topic says, as read so far.
#[derive(Clone, Debug, Default)]
pub struct ConfigSnapshot {
    /// The next offset to read (everything below is applied).
    pub offset: i64,
    pub connectors: BTreeMap<String, Props>,
    /// The offset of each connector's latest `connector-NAME` record.
    pub connector_offsets: BTreeMap<String, i64>,
    pub targets: BTreeMap<String, TargetState>,
    /// Committed task configs (a `commit-NAME` arrived for them).
    pub tasks: BTreeMap<String, Vec<Props>>,
    /// `task-NAME-N` records not yet committed.
    pending: BTreeMap<String, BTreeMap<u32, Props>>,
}

impl ConfigSnapshot {
    pub fn target(&self, name: &str) -> TargetState {
        self.targets.get(name).copied().unwrap_or(TargetState::Started)
    }
    pub fn task_count(&self, name: &str) -> usize {
        self.tasks.get(name).map_or(0, Vec::len)
    }
    /// Connector name -> task count: what the leader assigns.
    pub fn view(&self) -> BTreeMap<String, usize> {
        self.connectors.keys().map(|n| (n.clone(), self.task_count(n))).collect()
    }

    /// Applies one record; a restart request is returned for the herder.
    fn apply(&mut self, offset: i64, key: &str, value: Option<&[u8]>) -> Option<RestartRequest> {
        self.offset = self.offset.max(offset + 1);
        let json: Option<Json> = value.and_then(|v| serde_json::from_slice(v).ok());
        if value.is_some() && json.is_none() {
            tracing::warn!(key, offset, "config topic: a record whose value is not JSON, skipped");
            return None;
        }
        if let Some(name) = key.strip_prefix("connector-") {
            match json.as_ref().and_then(|j| props_of(&j["properties"])) {
                Some(props) => {
                    self.connectors.insert(name.to_string(), props);
                    self.connector_offsets.insert(name.to_string(), offset);
                }
                None => {
                    self.connectors.remove(name);
                    self.connector_offsets.remove(name);
                    self.tasks.remove(name);
                    self.pending.remove(name);
                    self.targets.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            // Connect 3.5+ writes STOPPED as "state.v2" (and PAUSED as "state", for older workers)
            let state = json.as_ref().and_then(|j| j["state.v2"].as_str().or_else(|| j["state"].as_str()));
            match state.and_then(TargetState::parse) {
                Some(state) => {
                    self.targets.insert(name.to_string(), state);
                }
                None => {
                    self.targets.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = json.as_ref().and_then(|j| j["tasks"].as_u64())?;
            let mut pending = self.pending.remove(name).unwrap_or_default();
            let old = self.tasks.remove(name).unwrap_or_default();
            let mut tasks = Vec::new();
            for i in 0..count as u32 {
                match pending.remove(&i).or_else(|| old.get(i as usize).cloned()) {
                    Some(p) => tasks.push(p),
                    None => {
                        tracing::warn!(connector = name, task = i, "config topic: commit names a task with no config");
                        break;
                    }
                }
            }
            self.tasks.insert(name.to_string(), tasks);
        } else if let Some(rest) = key.strip_prefix("task-") {
            let (name, n) = rest.rsplit_once('-')?;
            let Ok(n) = n.parse::<u32>() else { return None };
            if let Some(props) = json.as_ref().and_then(|j| props_of(&j["properties"])) {
                self.pending.entry(name.to_string()).or_default().insert(n, props);
            }
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            let j = json?;
            return Some(RestartRequest {
                connector: name.to_string(),
                include_tasks: j["include-tasks"].as_bool().unwrap_or(false),
                only_failed: j["only-failed"].as_bool().unwrap_or(false),
            });
        }
        None
    }
}

/// A `target-state-NAME` value: `{"state": S, "state.v2": S}` (the second as
/// Connect 3.5+ reads it first).
pub fn target_state_value(state: TargetState) -> Json {
    json!({"state": state.name(), "state.v2": state.name()})
}

fn props_of(v: &Json) -> Option<Props> {
    let o = v.as_object()?;
    Some(o.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect())
}

/// One status record (`{"state","trace","worker_id","generation"}`).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRecord {
    pub state: State,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i32,
}

impl StatusRecord {
    pub fn to_json(&self) -> Json {
        json!({"state": self.state.name(), "trace": self.trace, "worker_id": self.worker_id, "generation": self.generation})
    }
}

pub fn connector_status_key(name: &str) -> String {
    format!("status-connector-{name}")
}
pub fn task_status_key(id: &TaskId) -> String {
    format!("status-task-{}-{}", id.connector, id.task)
}

/// The stores: readers' state, the producer, the topics' names.
pub struct Stores {
    pub config: Arc<WorkerConfig>,
    pub snapshot: Arc<RwLock<ConfigSnapshot>>,
    /// The config reader's position (`snapshot.offset`), for waiting on it.
    pub config_position: watch::Receiver<i64>,
    pub statuses: Arc<RwLock<HashMap<String, StatusRecord>>>,
    producer: FutureProducer,
    config_consumer: Arc<BaseConsumer>,
    stop: Arc<AtomicBool>,
}

impl Stores {
    /// Creates the topics if missing, starts the readers.
    pub async fn open(config: Arc<WorkerConfig>) -> anyhow::Result<(Arc<Stores>, mpsc::Receiver<RestartRequest>)> {
        create_topics(&config).await?;
        let mut pc = client_config(&config.client_props("producer."));
        pc.set("enable.idempotence", "true").set("acks", "all").set("partitioner", "murmur2_random");
        pc.set("linger.ms", "0");
        let producer: FutureProducer = pc.create()?;

        let stop = Arc::new(AtomicBool::new(false));
        let snapshot = Arc::new(RwLock::new(ConfigSnapshot::default()));
        let (pos_tx, pos_rx) = watch::channel(0i64);
        let (restart_tx, restart_rx) = mpsc::channel(RESTART_QUEUE_MAX);
        let config_consumer = Arc::new(reader_consumer(&config)?);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&config.config_topic, 0, Offset::Beginning)?;
        config_consumer.assign(&tpl)?;
        {
            let snapshot = snapshot.clone();
            spawn_reader(config_consumer.clone(), stop.clone(), "config", move |_p, offset, key, value| {
                let restart = snapshot.write().apply(offset, key, value);
                let _ = pos_tx.send(snapshot.read().offset);
                if let Some(r) = restart {
                    if restart_tx.try_send(r).is_err() {
                        tracing::warn!("restart requests queue full, one dropped");
                    }
                }
            });
        }

        let statuses: Arc<RwLock<HashMap<String, StatusRecord>>> = Arc::default();
        let status_consumer = Arc::new(reader_consumer(&config)?);
        let md = status_consumer.fetch_metadata(Some(&config.status_topic), METADATA_TIMEOUT)?;
        let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions.max(1) {
            tpl.add_partition_offset(&config.status_topic, p, Offset::Beginning)?;
        }
        status_consumer.assign(&tpl)?;
        {
            let statuses = statuses.clone();
            spawn_reader(status_consumer, stop.clone(), "status", move |_p, _offset, key, value| {
                apply_status(&mut statuses.write(), key, value);
            });
        }
        let stores = Stores { config, snapshot, config_position: pos_rx, statuses, producer, config_consumer, stop };
        Ok((Arc::new(stores), restart_rx))
    }

    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.producer.flush(Duration::from_secs(5));
    }

    /// The config topic's end offset.
    pub async fn config_end(&self) -> anyhow::Result<i64> {
        let consumer = self.config_consumer.clone();
        let topic = self.config.config_topic.clone();
        let (_, high) =
            tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&topic, 0, METADATA_TIMEOUT)).await??;
        Ok(high)
    }

    /// Waits until the config reader has applied everything below `offset`.
    pub async fn wait_config(&self, offset: i64, timeout: Duration) -> bool {
        let mut rx = self.config_position.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= offset)).await.is_ok_and(|r| r.is_ok())
    }

    /// Reads the config topic to its end (at most `timeout`).
    pub async fn read_config_to_end(&self, timeout: Duration) -> bool {
        match self.config_end().await {
            Ok(end) => self.wait_config(end, timeout).await,
            Err(e) => {
                tracing::warn!("config topic end offset: {e}");
                false
            }
        }
    }

    /// Writes a config record and waits until this worker has read it.
    pub async fn write_config(&self, key: &str, value: Option<Json>) -> anyhow::Result<()> {
        let offset = self.send(&self.config.config_topic.clone(), key, value).await?;
        if !self.wait_config(offset + 1, WRITE_TIMEOUT).await {
            anyhow::bail!("the config topic record {key} was written but not read back within {WRITE_TIMEOUT:?}");
        }
        Ok(())
    }

    async fn send(&self, topic: &str, key: &str, value: Option<Json>) -> anyhow::Result<i64> {
        let payload = value.map(|v| serde_json::to_vec(&v).unwrap_or_default());
        let mut record = FutureRecord::<str, Vec<u8>>::to(topic).key(key);
        if let Some(p) = payload.as_ref() {
            record = record.payload(p);
        }
        match self.producer.send(record, WRITE_TIMEOUT).await {
            Ok(delivery) => Ok(delivery.offset),
            Err((e, _)) => anyhow::bail!("writing {key} to {topic}: {e}"),
        }
    }

    /// Writes a status without waiting (the status listener is synchronous).
    pub fn put_status(&self, key: String, status: Option<&StatusRecord>) {
        let payload = status.map(|s| serde_json::to_vec(&s.to_json()).unwrap_or_default());
        if let Some(s) = status {
            // what this worker writes is what it shows at once
            self.statuses.write().insert(key.clone(), s.clone());
        } else {
            self.statuses.write().remove(&key);
        }
        let mut record = FutureRecord::<str, Vec<u8>>::to(&self.config.status_topic).key(&key);
        if let Some(p) = payload.as_ref() {
            record = record.payload(p);
        }
        if let Err((e, _)) = self.producer.send_result(record) {
            tracing::warn!(key, "status write refused: {e}");
        }
    }

    /// The Kafka cluster's id (for `GET /`).
    pub async fn cluster_id(self: &Arc<Self>) -> Option<String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.producer.client().fetch_cluster_id(METADATA_TIMEOUT))
            .await
            .ok()
            .flatten()
    }

    pub fn status(&self, key: &str) -> Option<StatusRecord> {
        self.statuses.read().get(key).cloned()
    }
}

fn apply_status(statuses: &mut HashMap<String, StatusRecord>, key: &str, value: Option<&[u8]>) {
    let Some(value) = value else {
        statuses.remove(key);
        return;
    };
    let Ok(j) = serde_json::from_slice::<Json>(value) else { return };
    let Some(state) = j["state"].as_str().and_then(State::parse) else { return };
    let rec = StatusRecord {
        state,
        trace: j["trace"].as_str().map(str::to_string),
        worker_id: j["worker_id"].as_str().unwrap_or("").to_string(),
        generation: j["generation"].as_i64().unwrap_or(0) as i32,
    };
    // a worker of an older generation (a zombie, or one stopping after a
    // rebalance) does not overwrite what the new owner wrote
    if let Some(old) = statuses.get(key) {
        if rec.generation < old.generation && rec.worker_id != old.worker_id {
            return;
        }
    }
    statuses.insert(key.to_string(), rec);
}

pub fn client_config(props: &Props) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

fn reader_consumer(config: &WorkerConfig) -> anyhow::Result<BaseConsumer> {
    let mut cc = client_config(&config.client_props("consumer."));
    cc.remove("group.id");
    cc.set("group.id", format!("{}-herder-reader", config.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100");
    Ok(cc.create()?)
}

/// A thread polling `consumer` until `stop`, giving each record to `apply`.
fn spawn_reader(
    consumer: Arc<BaseConsumer>,
    stop: Arc<AtomicBool>,
    what: &'static str,
    mut apply: impl FnMut(i32, i64, &str, Option<&[u8]>) + Send + 'static,
) {
    let spawned = std::thread::Builder::new().name(format!("connect-{what}-reader")).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(READER_POLL) {
                None => {}
                Some(Ok(m)) => {
                    let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
                    apply(m.partition(), m.offset(), &key, m.payload());
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    tracing::warn!("{what} topic reader: {e}");
                    std::thread::sleep(READER_POLL);
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the {what} topic reader: {e}");
    }
}

/// Creates the config (1 partition), offsets and status topics, compacted,
/// when missing.
async fn create_topics(config: &WorkerConfig) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(&config.client_props("admin.")).create()?;
    let compact = [("cleanup.policy", "compact")];
    let topics = [
        (&config.config_topic, 1, config.config_replication_factor),
        (&config.offset_topic, config.offset_partitions, config.offset_replication_factor),
        (&config.status_topic, config.status_partitions, config.status_replication_factor),
    ];
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions, rf)| {
            compact
                .iter()
                .fold(NewTopic::new(name, *partitions, TopicReplication::Fixed(i32::from(*rf))), |t, (k, v)| {
                    t.set(k, v)
                })
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)).request_timeout(Some(METADATA_TIMEOUT));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(topic) => tracing::info!(topic, "created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_configs_count_only_once_committed() {
        let mut s = ConfigSnapshot::default();
        s.apply(0, "connector-a-b", Some(br#"{"properties":{"connector.class":"X","tasks.max":"2"}}"#));
        s.apply(1, "task-a-b-0", Some(br#"{"properties":{"k":"0"}}"#));
        s.apply(2, "task-a-b-1", Some(br#"{"properties":{"k":"1"}}"#));
        assert_eq!(s.task_count("a-b"), 0);
        s.apply(3, "commit-a-b", Some(br#"{"tasks":2}"#));
        assert_eq!(s.task_count("a-b"), 2);
        assert_eq!(s.tasks["a-b"][1]["k"], "1");
        s.apply(4, "target-state-a-b", Some(br#"{"state":"PAUSED"}"#));
        assert_eq!(s.target("a-b"), TargetState::Paused);
        s.apply(4, "target-state-a-b", Some(br#"{"state":"PAUSED","state.v2":"STOPPED"}"#));
        assert_eq!(s.target("a-b"), TargetState::Stopped);
        let r = s.apply(5, "restart-connector-a-b", Some(br#"{"include-tasks":true,"only-failed":false}"#));
        assert!(r.is_some_and(|r| r.include_tasks && !r.only_failed));
        s.apply(6, "connector-a-b", None);
        assert!(s.connectors.is_empty() && s.tasks.is_empty());
        assert_eq!(s.offset, 7);
    }
}
