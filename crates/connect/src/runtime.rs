//! Runs tasks on this worker: a source task's loop (poll, transform,
//! convert, produce, commit offsets to the offsets topic; with
//! `exactly.once.source.support=enabled`, each poll's records and their
//! offsets in one transaction) and a sink task's (consume in the
//! `connect-NAME` group, convert, transform, put, flush, then commit), with
//! Connect's error handling (`errors.tolerance`, `errors.retry.timeout.ms`,
//! `errors.log.enable`, dead-letter queue for sinks).
//!
//! The herder calls [`Runtime`]; tasks report their states through the
//! [`StatusListener`] (RUNNING, PAUSED, FAILED with a trace; the herder
//! writes UNASSIGNED/STOPPED itself when it stops them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header as KafkaHeader, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::{Props, PropsExt, WorkerConfig};
use crate::connector::{SinkTaskContext, SourceTaskContext};
use crate::converter::{self, Converter};
use crate::data::{Header, JsonMap, Record};
use crate::error::{ConnectError, Result};
use crate::offsets::{partition_key, OffsetStore};
use crate::status::{State, StatusListener, TargetState, TaskId};
use crate::transforms::Transforms;

/// The most records a sink task is given at once (`consumer.max.poll.records`' default).
const SINK_BATCH_MAX: usize = 500;
/// How long a sink waits for a first record before looking at its controls again.
const SINK_POLL_WAIT: Duration = Duration::from_millis(500);
/// How long a produce may wait for room in the producer's queue.
const PRODUCE_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest pause between two tries of a retriable put or flush.
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long a transaction's init/commit may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// What the herder asks of a running task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    Run,
    Pause,
    Stop,
}

impl From<TargetState> for Control {
    fn from(t: TargetState) -> Control {
        match t {
            TargetState::Started => Control::Run,
            TargetState::Paused => Control::Pause,
            TargetState::Stopped => Control::Stop,
        }
    }
}

struct Running {
    control: watch::Sender<Control>,
    done: tokio::task::JoinHandle<()>,
}

/// This worker's running tasks.
pub struct Runtime {
    pub config: Arc<WorkerConfig>,
    pub status: Arc<dyn StatusListener>,
    offsets: OffsetStore,
    /// Writes offsets of non-transactional source tasks and KIP-875 changes.
    producer: FutureProducer,
    tasks: Mutex<HashMap<TaskId, Running>>,
}

impl Runtime {
    pub fn new(config: Arc<WorkerConfig>, status: Arc<dyn StatusListener>) -> Result<Arc<Runtime>> {
        let producer = producer_config(&config, &Props::new(), None)
            .create()
            .map_err(|e| ConnectError::fatal(format!("creating the worker's producer: {e}")))?;
        Ok(Arc::new(Runtime {
            offsets: OffsetStore::new(config.clone()),
            config,
            status,
            producer,
            tasks: Mutex::new(HashMap::new()),
        }))
    }

    /// Starts a task of `connector_props`' connector with `task_props`;
    /// paused when `target` is Paused. Reports RUNNING (or FAILED) through
    /// the status listener. Starting a task already running restarts it.
    pub async fn start_task(
        self: &Arc<Self>,
        id: TaskId,
        connector_props: Props,
        task_props: Props,
        target: TargetState,
    ) -> Result<()> {
        self.stop_task(&id).await;
        let (control, rx) = watch::channel(Control::from(target));
        let rt = self.clone();
        let task_id = id.clone();
        let done = tokio::spawn(async move {
            let result = rt.run_task(&task_id, &connector_props, &task_props, rx).await;
            if let Err(e) = result {
                tracing::error!(task = %task_id, error = %e, "task failed");
                rt.status.task_state(&task_id, State::Failed, Some(trace(&e)));
            }
        });
        self.tasks.lock().insert(id, Running { control, done });
        Ok(())
    }

    /// Stops a task gracefully (a sink flushes and commits, a source
    /// commits its offsets), waiting at most `task.shutdown.graceful.timeout.ms`.
    pub async fn stop_task(&self, id: &TaskId) {
        let Some(running) = self.tasks.lock().remove(id) else { return };
        let _ = running.control.send(Control::Stop);
        let timeout = Duration::from_millis(self.config.task_shutdown_timeout_ms);
        let abort = running.done.abort_handle();
        if tokio::time::timeout(timeout, running.done).await.is_err() {
            tracing::warn!(task = %id, "task did not stop within task.shutdown.graceful.timeout.ms: cancelled");
            abort.abort();
        }
    }

    /// Pauses or resumes the running tasks of a connector.
    pub fn set_target_state(&self, connector: &str, state: TargetState) {
        for (id, running) in self.tasks.lock().iter() {
            if id.connector == connector {
                let _ = running.control.send(Control::from(state));
            }
        }
    }

    /// The tasks running here (a failed task counts until it is stopped).
    pub fn tasks(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self.tasks.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Stops every task (the worker shuts down or rebalances), in parallel.
    pub async fn stop_all(&self) {
        let ids = self.tasks();
        futures::future::join_all(ids.iter().map(|id| self.stop_task(id))).await;
    }

    /// KIP-875: a source connector's committed offsets, `(partition, offset)`.
    pub async fn source_offsets(&self, connector: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
        self.offsets.read(connector).await
    }

    /// KIP-875: writes (or, with `None`, removes) source offsets.
    pub async fn alter_source_offsets(&self, connector: &str, offsets: Vec<(JsonMap, Option<JsonMap>)>) -> Result<()> {
        self.offsets.write(&self.producer, connector, &offsets).await
    }

    /// KIP-875: a sink connector's committed offsets in group `connect-NAME`, `(topic, partition, offset)`.
    pub async fn sink_offsets(&self, connector: &str, connector_props: &Props) -> Result<Vec<(String, i32, i64)>> {
        let config = self.config.clone();
        let (connector, props) = (connector.to_string(), connector_props.clone());
        blocking(move || {
            let consumer = offsets_consumer(&config, &connector, &props)?;
            let tpl = sink_partitions(&consumer, &props)?;
            let committed = consumer.committed_offsets(tpl, Duration::from_secs(30)).map_err(|e| {
                ConnectError::retriable(format!("reading the offsets of {}: {e}", sink_group(&connector, &props)))
            })?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
                    _ => None,
                })
                .collect())
        })
        .await
    }

    /// KIP-875: alters (or, with `None`, resets) a sink connector's group
    /// offsets. Resetting deletes the group's offsets (all of them: a reset
    /// of some partitions only is refused).
    pub async fn alter_sink_offsets(
        &self,
        connector: &str,
        connector_props: &Props,
        offsets: Vec<(String, i32, Option<i64>)>,
    ) -> Result<()> {
        let group = sink_group(connector, connector_props);
        if offsets.iter().all(|(_, _, o)| o.is_none()) {
            return self.delete_group(&group).await;
        }
        if offsets.iter().any(|(_, _, o)| o.is_none()) {
            return Err(ConnectError::config("resetting the offsets of some partitions while altering others is not supported: reset them all (DELETE /offsets) or alter them"));
        }
        let config = self.config.clone();
        let (connector, props) = (connector.to_string(), connector_props.clone());
        blocking(move || {
            let consumer = offsets_consumer(&config, &connector, &props)?;
            let mut tpl = TopicPartitionList::new();
            for (topic, partition, offset) in &offsets {
                let offset = offset.unwrap_or_default();
                tpl.add_partition_offset(topic, *partition, Offset::Offset(offset))
                    .map_err(|e| ConnectError::config(format!("{topic}-{partition}: {e}")))?;
            }
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| ConnectError::retriable(format!("committing offsets of {group}: {e}")))
        })
        .await
    }

    async fn delete_group(&self, group: &str) -> Result<()> {
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            client_config(&self.config, "admin.", &Props::new())
                .create()
                .map_err(|e| ConnectError::fatal(format!("admin client: {e}")))?;
        let opts = rdkafka::admin::AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .delete_groups(&[group], &opts)
            .await
            .map_err(|e| ConnectError::retriable(format!("deleting group {group}: {e}")))?;
        for r in results {
            match r {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((g, code)) => return Err(ConnectError::retriable(format!("deleting group {g}: {code}"))),
            }
        }
        Ok(())
    }

    async fn run_task(
        self: &Arc<Self>,
        id: &TaskId,
        connector_props: &Props,
        task_props: &Props,
        control: watch::Receiver<Control>,
    ) -> Result<()> {
        let class = connector_props.required("connector.class")?;
        let plugin = crate::connectors::find(class).ok_or_else(|| {
            ConnectError::config(format!(
                "Failed to find any class that implements Connector and which name matches {class}"
            ))
        })?;
        let setup = TaskSetup::new(&self.config, id, connector_props)?;
        if let Some(task) = plugin.source_task() {
            SourceRunner { rt: self.clone(), id: id.clone(), setup, task, control, task_props: task_props.clone() }
                .run()
                .await
        } else if let Some(task) = plugin.sink_task() {
            SinkRunner { rt: self.clone(), id: id.clone(), setup, task, control, task_props: task_props.clone() }
                .run()
                .await
        } else {
            Err(ConnectError::config(format!("{class} makes no tasks")))
        }
    }
}

/// A failed task's trace: the error's kind and message.
fn trace(e: &ConnectError) -> String {
    let kind = match e {
        ConnectError::Config(_) => "org.apache.kafka.common.config.ConfigException",
        ConnectError::Data(_) => "org.apache.kafka.connect.errors.DataException",
        ConnectError::Retriable(_) => "org.apache.kafka.connect.errors.RetriableException",
        ConnectError::Fatal(_) => "org.apache.kafka.connect.errors.ConnectException",
    };
    format!("{kind}: {e}")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ConnectError::fatal(format!("{e}")))?
}

/// A Kafka client's configuration: the worker's pass-through settings,
/// its `prefix`-ed ones (`producer.`, `consumer.`, `admin.`), then the
/// connector's `prefix.override.` ones.
fn client_config(config: &WorkerConfig, prefix: &str, connector_props: &Props) -> ClientConfig {
    let mut cc = ClientConfig::new();
    for (k, v) in config.client_props(prefix) {
        cc.set(k, v);
    }
    for (k, v) in connector_props.with_prefix(&format!("{prefix}override.")) {
        cc.set(k, v);
    }
    cc.set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
    cc
}

fn producer_config(config: &WorkerConfig, connector_props: &Props, transactional_id: Option<&str>) -> ClientConfig {
    let mut cc = client_config(config, "producer.", connector_props);
    cc.set("enable.idempotence", "true").set("acks", "all").set("linger.ms", "5");
    if let Some(tid) = transactional_id {
        cc.set("transactional.id", tid);
    }
    cc
}

/// The group a sink connector consumes in.
fn sink_group(connector: &str, props: &Props) -> String {
    props.get("consumer.override.group.id").cloned().unwrap_or_else(|| format!("connect-{connector}"))
}

fn offsets_consumer(config: &WorkerConfig, connector: &str, props: &Props) -> Result<BaseConsumer> {
    let mut cc = client_config(config, "consumer.", props);
    cc.set("group.id", sink_group(connector, props)).set("enable.auto.commit", "false");
    cc.create().map_err(|e| ConnectError::fatal(format!("consumer: {e}")))
}

/// The partitions of the topics a sink reads (`topics`, or `topics.regex` over the cluster's topics).
fn sink_partitions(consumer: &BaseConsumer, props: &Props) -> Result<TopicPartitionList> {
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .map_err(|e| ConnectError::retriable(format!("metadata: {e}")))?;
    let topics = props.list("topics");
    let regex = match props.get("topics.regex") {
        Some(r) if !r.is_empty() => Some(
            regex::Regex::new(&format!("^(?:{r})$")).map_err(|e| ConnectError::config(format!("topics.regex: {e}")))?,
        ),
        _ => None,
    };
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        if topics.iter().any(|n| n == t.name()) || regex.as_ref().is_some_and(|r| r.is_match(t.name())) {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
    }
    Ok(tpl)
}

/// `errors.*`: what a failed conversion or transformation does.
struct ErrorPolicy {
    tolerate_all: bool,
    /// `None`: retry forever (`errors.retry.timeout.ms=-1`).
    retry_timeout: Option<Duration>,
    retry_delay_max: Duration,
    log: bool,
    log_messages: bool,
    dlq_topic: Option<String>,
    dlq_replication_factor: i32,
    dlq_context_headers: bool,
}

/// Where in the pipeline an error happened (Connect's `Stage` names).
#[derive(Clone, Copy, Debug)]
enum Stage {
    KeyConverter,
    ValueConverter,
    Transformation,
    KafkaProduce,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::KafkaProduce => "KAFKA_PRODUCE",
        }
    }
}

/// A record's failure in one stage.
struct StageError {
    stage: Stage,
    error: ConnectError,
}

impl ErrorPolicy {
    fn new(props: &Props) -> Result<ErrorPolicy> {
        let tolerance = props.str_or("errors.tolerance", "none").to_ascii_lowercase();
        let tolerate_all = match tolerance.as_str() {
            "none" => false,
            "all" => true,
            other => {
                return Err(ConnectError::config(format!(
                    "Invalid value {other} for configuration errors.tolerance: String must be one of: none, all"
                )))
            }
        };
        let timeout = props.int_or("errors.retry.timeout.ms", 0)?;
        Ok(ErrorPolicy {
            tolerate_all,
            retry_timeout: (timeout >= 0).then(|| Duration::from_millis(timeout as u64)),
            retry_delay_max: Duration::from_millis(props.int_or("errors.retry.delay.max.ms", 60_000)?.max(1) as u64),
            log: props.bool_or("errors.log.enable", false)?,
            log_messages: props.bool_or("errors.log.include.messages", false)?,
            dlq_topic: props
                .get("errors.deadletterqueue.topic.name")
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.trim().to_string()),
            dlq_replication_factor: props.int_or("errors.deadletterqueue.topic.replication.factor", 3)? as i32,
            dlq_context_headers: props.bool_or("errors.deadletterqueue.context.headers.enable", false)?,
        })
    }

    /// Runs one stage, retrying retriable errors with a growing pause until `errors.retry.timeout.ms`.
    async fn attempt<T, F, Fut>(&self, stage: Stage, mut op: F) -> std::result::Result<T, StageError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(300);
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retriable() && self.retry_timeout.is_none_or(|t| start.elapsed() + delay < t) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry_delay_max);
                }
                Err(error) => return Err(StageError { stage, error }),
            }
        }
    }
}

/// What every task of a connector needs: converters, transforms, error policy.
struct TaskSetup {
    key_converter: Box<dyn Converter>,
    value_converter: Box<dyn Converter>,
    transforms: Transforms,
    errors: ErrorPolicy,
    connector_props: Props,
}

impl TaskSetup {
    fn new(config: &WorkerConfig, id: &TaskId, props: &Props) -> Result<TaskSetup> {
        let converter = |which: &str, default: &str, is_key: bool| {
            let class = props.get(&format!("{which}.converter")).map_or(default, String::as_str);
            let mut cprops = config.props.with_prefix(&format!("{which}.converter."));
            cprops.extend(props.with_prefix(&format!("{which}.converter.")));
            converter::create(class, &cprops, is_key)
        };
        let transforms = Transforms::from_config(props)
            .map_err(|e| ConnectError::config(format!("{}: {}", id.connector, e.summary())))?;
        Ok(TaskSetup {
            key_converter: converter("key", &config.key_converter, true)?,
            value_converter: converter("value", &config.value_converter, false)?,
            transforms,
            errors: ErrorPolicy::new(props)?,
            connector_props: props.clone(),
        })
    }
}

/// A record ready for the producer.
struct Outgoing {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Outgoing {
    fn record(&self) -> FutureRecord<'_, [u8], [u8]> {
        let mut r = FutureRecord::to(&self.topic);
        if let Some(k) = &self.key {
            r = r.key(k.as_slice());
        }
        if let Some(v) = &self.value {
            r = r.payload(v.as_slice());
        }
        if let Some(p) = self.partition {
            r = r.partition(p);
        }
        if let Some(t) = self.timestamp {
            r = r.timestamp(t);
        }
        if !self.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(self.headers.len());
            for (k, v) in &self.headers {
                h = h.insert(KafkaHeader { key: k, value: v.as_deref() });
            }
            r = r.headers(h);
        }
        r
    }
}

/// Waits until the control is no longer Pause; the new control.
async fn while_paused(control: &mut watch::Receiver<Control>) -> Control {
    loop {
        let c = *control.borrow_and_update();
        if c != Control::Pause {
            return c;
        }
        if control.changed().await.is_err() {
            return Control::Stop;
        }
    }
}

struct SourceRunner {
    rt: Arc<Runtime>,
    id: TaskId,
    setup: TaskSetup,
    task: Box<dyn crate::connector::SourceTask>,
    control: watch::Receiver<Control>,
    task_props: Props,
}

impl SourceRunner {
    async fn run(mut self) -> Result<()> {
        let rt = self.rt.clone();
        // exactly.once.source.support=enabled: every source task writes in transactions
        let exactly_once = rt.config.exactly_once_source;
        let tid = format!("{}-{}-{}", rt.config.group_id, self.id.connector, self.id.task);
        let producer: FutureProducer =
            producer_config(&rt.config, &self.setup.connector_props, exactly_once.then_some(tid.as_str()))
                .create()
                .map_err(|e| ConnectError::fatal(format!("producer: {e}")))?;
        if exactly_once {
            let p = producer.clone();
            blocking(move || {
                p.init_transactions(TRANSACTION_TIMEOUT)
                    .map_err(|e| ConnectError::fatal(format!("initializing transactions: {e}")))
            })
            .await?;
        }
        let offsets = rt.offsets.reader(&self.id.connector).await?;
        let ctx = SourceTaskContext { connector: self.id.connector.clone(), task: self.id.task, offsets };
        self.task.start(&self.task_props, ctx).await?;
        tracing::info!(task = %self.id, exactly_once, "source task started");
        let mut reported = None;
        // topics this task made sure exist (topic.creation.default.*)
        let mut created = std::collections::HashSet::new();
        // acknowledged by Kafka, not yet in the offsets topic
        let mut unflushed: HashMap<String, (JsonMap, JsonMap)> = HashMap::new();
        let mut last_flush = Instant::now();
        let flush_every = Duration::from_millis(rt.config.offset_flush_interval_ms);
        let result = loop {
            let mut c = *self.control.borrow_and_update();
            if c == Control::Pause {
                self.report(&mut reported, State::Paused);
                c = while_paused(&mut self.control).await;
            }
            if c == Control::Stop {
                break Ok(());
            }
            self.report(&mut reported, State::Running);
            let records = match self.task.poll().await {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    tracing::warn!(task = %self.id, error = %e, "poll failed; polling again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => break Err(e),
            };
            if records.is_empty() {
                if !exactly_once && !unflushed.is_empty() && last_flush.elapsed() >= flush_every {
                    if let Err(e) = self.flush_offsets(&producer, &mut unflushed).await {
                        break Err(e);
                    }
                    last_flush = Instant::now();
                }
                continue;
            }
            if exactly_once {
                let p = producer.clone();
                if let Err(e) = blocking(move || {
                    p.begin_transaction().map_err(|e| ConnectError::fatal(format!("beginning a transaction: {e}")))
                })
                .await
                {
                    break Err(e);
                }
            }
            let mut batch_offsets: Vec<(JsonMap, JsonMap)> = Vec::new();
            let mut outgoing = Vec::with_capacity(records.len());
            let mut failed = None;
            for record in records {
                if let (Some(p), Some(o)) = (&record.source_partition, &record.source_offset) {
                    batch_offsets.push((p.clone(), o.clone()));
                }
                match self.setup.source_record(record).await {
                    Ok(Some(out)) => outgoing.push(out),
                    Ok(None) => {}
                    Err(e) => match self.tolerate(e) {
                        Ok(()) => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    },
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            if let Err(e) = self.setup.create_topics(&rt, &outgoing, &mut created).await {
                break Err(e);
            }
            let sends = outgoing.iter().map(|o| producer.send(o.record(), PRODUCE_QUEUE_TIMEOUT));
            let mut produce_error = None;
            for r in futures::future::join_all(sends).await {
                if let Err((e, m)) = r {
                    let error = ConnectError::fatal(format!("producing to {}: {e}", m.topic()));
                    if let Err(e) = self.tolerate(StageError { stage: Stage::KafkaProduce, error }) {
                        produce_error = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = produce_error {
                break Err(e);
            }
            if exactly_once {
                let latest = latest_offsets(batch_offsets);
                let entries: Vec<(JsonMap, Option<JsonMap>)> =
                    latest.into_values().map(|(p, o)| (p, Some(o))).collect();
                if let Err(e) = rt.offsets.write(&producer, &self.id.connector, &entries).await {
                    break Err(e);
                }
                let p = producer.clone();
                if let Err(e) = blocking(move || {
                    p.commit_transaction(TRANSACTION_TIMEOUT)
                        .map_err(|e| ConnectError::fatal(format!("committing a transaction: {e}")))
                })
                .await
                {
                    break Err(e);
                }
                if let Err(e) = self.task.commit().await {
                    tracing::warn!(task = %self.id, error = %e, "commit hook failed");
                }
            } else {
                unflushed.extend(latest_offsets(batch_offsets));
                if last_flush.elapsed() >= flush_every {
                    if let Err(e) = self.flush_offsets(&producer, &mut unflushed).await {
                        break Err(e);
                    }
                    last_flush = Instant::now();
                }
            }
        };
        if result.is_ok() && !exactly_once {
            // a clean stop commits what Kafka acknowledged
            if let Err(e) = self.flush_offsets(&producer, &mut unflushed).await {
                tracing::warn!(task = %self.id, error = %e, "offsets not committed at stop");
            }
        }
        self.task.stop().await;
        tracing::info!(task = %self.id, "source task stopped");
        result
    }

    fn report(&self, reported: &mut Option<State>, state: State) {
        if *reported != Some(state) {
            self.rt.status.task_state(&self.id, state, None);
            *reported = Some(state);
        }
    }

    async fn flush_offsets(
        &mut self,
        producer: &FutureProducer,
        unflushed: &mut HashMap<String, (JsonMap, JsonMap)>,
    ) -> Result<()> {
        if unflushed.is_empty() {
            return Ok(());
        }
        let entries: Vec<(JsonMap, Option<JsonMap>)> =
            unflushed.values().map(|(p, o)| (p.clone(), Some(o.clone()))).collect();
        self.rt.offsets.write(producer, &self.id.connector, &entries).await?;
        unflushed.clear();
        self.task.commit().await
    }
}

impl TaskSetup {
    /// Transforms, then converts a source record.
    async fn source_record(&self, record: Record) -> std::result::Result<Option<Outgoing>, StageError> {
        let s = self;
        let Some(record) =
            s.errors.attempt(Stage::Transformation, || async { s.transforms.apply(record.clone()) }).await?
        else {
            return Ok(None);
        };
        let topic = record.topic.clone();
        let key = s
            .errors
            .attempt(Stage::KeyConverter, || {
                s.key_converter.from_connect(&topic, record.key_schema.as_ref(), &record.key)
            })
            .await?;
        let value = s
            .errors
            .attempt(Stage::ValueConverter, || {
                s.value_converter.from_connect(&topic, record.value_schema.as_ref(), &record.value)
            })
            .await?;
        let headers = record.headers.iter().map(|h| (h.key.clone(), converter::header_to_bytes(&h.value))).collect();
        Ok(Some(Outgoing { topic, partition: record.partition, key, value, timestamp: record.timestamp, headers }))
    }
}

impl SourceRunner {
    /// With `errors.tolerance=all` a failed record is logged and skipped.
    fn tolerate(&self, e: StageError) -> Result<()> {
        let p = &self.setup.errors;
        if p.log || p.tolerate_all {
            tracing::error!(task = %self.id, stage = e.stage.name(), error = %e.error, "error in a source record");
        }
        if p.tolerate_all {
            Ok(())
        } else {
            Err(ConnectError::fatal(format!(
                "Tolerance exceeded in error handler (stage {}): {}",
                e.stage.name(),
                e.error
            )))
        }
    }
}

impl TaskSetup {
    /// KIP-158: with `topic.creation.default.replication.factor` and
    /// `.partitions` set, the topics a batch writes to are created first
    /// (with the other `topic.creation.default.*` keys as topic configs);
    /// otherwise the cluster's auto-creation (or an existing topic) is relied on.
    async fn create_topics(
        &self,
        rt: &Runtime,
        outgoing: &[Outgoing],
        created: &mut std::collections::HashSet<String>,
    ) -> Result<()> {
        let defaults = self.connector_props.with_prefix("topic.creation.default.");
        let (Some(rf), Some(partitions)) = (defaults.get("replication.factor"), defaults.get("partitions")) else {
            return Ok(());
        };
        let rf: i32 = rf.trim().parse().map_err(|_| {
            ConnectError::config(format!("topic.creation.default.replication.factor: {rf} is not a number"))
        })?;
        let partitions: i32 = partitions.trim().parse().map_err(|_| {
            ConnectError::config(format!("topic.creation.default.partitions: {partitions} is not a number"))
        })?;
        let mut new_topics: Vec<&str> =
            outgoing.iter().map(|o| o.topic.as_str()).filter(|t| !created.contains(*t)).collect();
        new_topics.sort_unstable();
        new_topics.dedup();
        if new_topics.is_empty() {
            return Ok(());
        }
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            client_config(&rt.config, "admin.", &Props::new())
                .create()
                .map_err(|e| ConnectError::fatal(format!("admin client: {e}")))?;
        let configs: Vec<(&String, &String)> =
            defaults.iter().filter(|(k, _)| *k != "replication.factor" && *k != "partitions").collect();
        let specs: Vec<rdkafka::admin::NewTopic<'_>> = new_topics
            .iter()
            .map(|t| {
                configs.iter().fold(
                    rdkafka::admin::NewTopic::new(t, partitions, rdkafka::admin::TopicReplication::Fixed(rf)),
                    |n, (k, v)| n.set(k, v),
                )
            })
            .collect();
        let opts = rdkafka::admin::AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(specs.iter(), &opts)
            .await
            .map_err(|e| ConnectError::retriable(format!("creating topics: {e}")))?;
        for r in results {
            match r {
                Ok(t) | Err((t, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    created.insert(t);
                }
                Err((t, code)) => return Err(ConnectError::fatal(format!("creating topic {t}: {code}"))),
            }
        }
        Ok(())
    }
}

/// The last offset of each source partition in a batch.
fn latest_offsets(batch: Vec<(JsonMap, JsonMap)>) -> HashMap<String, (JsonMap, JsonMap)> {
    let mut out = HashMap::new();
    for (p, o) in batch {
        out.insert(partition_key(&p), (p, o));
    }
    out
}

struct SinkRunner {
    rt: Arc<Runtime>,
    id: TaskId,
    setup: TaskSetup,
    task: Box<dyn crate::connector::SinkTask>,
    control: watch::Receiver<Control>,
    task_props: Props,
}

/// A sink consumer's context: notes the partitions a rebalance revokes, for
/// the task loop to close them (librdkafka calls it inside `recv`).
struct RevokeTracker {
    revoked: Arc<Mutex<Vec<(String, i32)>>>,
}

impl rdkafka::client::ClientContext for RevokeTracker {}

impl rdkafka::consumer::ConsumerContext for RevokeTracker {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        if let rdkafka::consumer::Rebalance::Revoke(tpl) = rebalance {
            let mut revoked = self.revoked.lock();
            revoked.extend(tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())));
        }
    }
}

/// A consumed record's raw parts (for the dead-letter queue).
struct Raw {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Raw {
    fn of(m: &BorrowedMessage<'_>) -> Raw {
        let headers = m
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default();
        Raw {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

impl SinkRunner {
    async fn run(mut self) -> Result<()> {
        let rt = self.rt.clone();
        let props = self.setup.connector_props.clone();
        let group = sink_group(&self.id.connector, &props);
        let mut cc = client_config(&rt.config, "consumer.", &props);
        cc.set("group.id", &group).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
        if !props.contains_key("consumer.override.auto.offset.reset")
            && !rt.config.props.contains_key("consumer.auto.offset.reset")
        {
            cc.set("auto.offset.reset", "earliest");
        }
        let revoked = Arc::new(Mutex::new(Vec::new()));
        let consumer: StreamConsumer<RevokeTracker> = cc
            .create_with_context(RevokeTracker { revoked: revoked.clone() })
            .map_err(|e| ConnectError::fatal(format!("consumer: {e}")))?;
        let topics = props.list("topics");
        let regex = props.get("topics.regex").filter(|r| !r.trim().is_empty());
        let subscription: Vec<String> = match (topics.is_empty(), regex) {
            (false, None) => topics,
            (true, Some(r)) => vec![format!("^{}", r.trim())],
            _ => return Err(ConnectError::config("Must configure one of topics or topics.regex")),
        };
        let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer.subscribe(&refs).map_err(|e| ConnectError::fatal(format!("subscribing to {subscription:?}: {e}")))?;
        let ctx = SinkTaskContext { connector: self.id.connector.clone(), task: self.id.task };
        self.task.start(&self.task_props, ctx).await?;
        tracing::info!(task = %self.id, group, "sink task started");
        let mut dlq: Option<FutureProducer> = None;
        let mut reported = None;
        // next offset to commit, per partition: everything before it was put (or skipped)
        let mut processed: HashMap<(String, i32), i64> = HashMap::new();
        let mut unflushed = false;
        let mut last_flush = Instant::now();
        let flush_every = Duration::from_millis(rt.config.offset_flush_interval_ms);
        let mut paused = false;
        let result = loop {
            let c = *self.control.borrow_and_update();
            if c == Control::Stop {
                break Ok(());
            }
            if (c == Control::Pause) != paused {
                paused = c == Control::Pause;
                if let Ok(assignment) = consumer.assignment() {
                    let _ = if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) };
                }
            }
            self.report(&mut reported, if paused { State::Paused } else { State::Running });
            if let Err(e) = self.drop_revoked(&revoked, &mut processed, &mut Vec::new()).await {
                break Err(e);
            }
            if unflushed && last_flush.elapsed() >= flush_every {
                if let Err(e) = self.flush_and_commit(&consumer, &mut processed).await {
                    break Err(e);
                }
                unflushed = false;
                last_flush = Instant::now();
            }
            // a batch: wait for a first record, then take what is already there
            let mut raws = Vec::new();
            let first = tokio::select! {
                m = consumer.recv() => Some(m),
                _ = tokio::time::sleep(SINK_POLL_WAIT) => None,
                _ = self.control.changed() => None,
            };
            match first {
                None => continue,
                Some(Err(e)) => {
                    tracing::warn!(task = %self.id, error = %e, "consumer error");
                    continue;
                }
                Some(Ok(m)) => raws.push(Raw::of(&m)),
            }
            if paused {
                // a record fetched before the pause: read it again after the resume
                let r = &raws[0];
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.offset));
                let _ = consumer.seek_partitions(tpl, Duration::from_secs(5));
                continue;
            }
            while raws.len() < SINK_BATCH_MAX {
                match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
                    Ok(Ok(m)) => raws.push(Raw::of(&m)),
                    _ => break,
                }
            }
            if let Err(e) = self.drop_revoked(&revoked, &mut processed, &mut raws).await {
                break Err(e);
            }
            let mut records = Vec::with_capacity(raws.len());
            let mut failed = None;
            for raw in &raws {
                match self.setup.sink_record(raw).await {
                    Ok(Some(r)) => records.push(r),
                    Ok(None) => {}
                    Err(e) => {
                        if let Err(e) = tolerate_sink(&self.rt, &self.id, &self.setup, e, raw, &mut dlq).await {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            if !records.is_empty() {
                if let Err(e) = self.put(records).await {
                    break Err(e);
                }
            }
            for raw in &raws {
                processed.insert((raw.topic.clone(), raw.partition), raw.offset + 1);
            }
            unflushed = true;
        };
        // stopped while a put was being retried: a stop, not a failure (nothing more is committed)
        let result = match result {
            Err(e) if e.is_retriable() && *self.control.borrow() == Control::Stop => {
                tracing::warn!(task = %self.id, error = %e, "stopped while retrying; the records since the last commit will be read again");
                self.task.stop().await;
                return Ok(());
            }
            r => r,
        };
        if result.is_ok() && unflushed {
            if let Err(e) = self.flush_and_commit(&consumer, &mut processed).await {
                tracing::warn!(task = %self.id, error = %e, "offsets not committed at stop");
            }
        }
        self.task.stop().await;
        tracing::info!(task = %self.id, "sink task stopped");
        result
    }

    fn report(&self, reported: &mut Option<State>, state: State) {
        if *reported != Some(state) {
            self.rt.status.task_state(&self.id, state, None);
            *reported = Some(state);
        }
    }

    /// Partitions a rebalance took away: their records in `raws` and their
    /// positions are forgotten and the task closes them (their new owner
    /// reads them again from the last commit).
    async fn drop_revoked(
        &mut self,
        revoked: &Mutex<Vec<(String, i32)>>,
        processed: &mut HashMap<(String, i32), i64>,
        raws: &mut Vec<Raw>,
    ) -> Result<()> {
        let lost: Vec<(String, i32)> = std::mem::take(&mut *revoked.lock());
        if lost.is_empty() {
            return Ok(());
        }
        tracing::info!(task = %self.id, partitions = ?lost, "partitions revoked");
        raws.retain(|r| !lost.iter().any(|(t, p)| *t == r.topic && *p == r.partition));
        for key in &lost {
            processed.remove(key);
        }
        self.task.close(&lost).await
    }

    /// Gives a batch to the task, again after a growing pause while it answers retriable errors.
    async fn put(&mut self, records: Vec<Record>) -> Result<()> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.task.put(records.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retriable() => {
                    if *self.control.borrow() == Control::Stop {
                        return Err(e);
                    }
                    tracing::warn!(task = %self.id, error = %e, "put failed; trying again in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The task makes what it was given durable, then the offsets are committed.
    async fn flush_and_commit(
        &mut self,
        consumer: &StreamConsumer<RevokeTracker>,
        processed: &mut HashMap<(String, i32), i64>,
    ) -> Result<()> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.task.flush().await {
                Ok(()) => break,
                Err(e) if e.is_retriable() && *self.control.borrow() != Control::Stop => {
                    tracing::warn!(task = %self.id, error = %e, "flush failed; trying again in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        }
        let assigned = consumer.assignment().map(|a| a.to_topic_map()).unwrap_or_default();
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in processed.iter() {
            if assigned.contains_key(&(topic.clone(), *partition)) {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
            }
        }
        processed.clear();
        if tpl.count() == 0 {
            return Ok(());
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            // the partitions moved to another task: it reads them again from the last commit
            tracing::warn!(task = %self.id, error = %e, "committing offsets failed");
        }
        Ok(())
    }
}

impl TaskSetup {
    /// Converts, then transforms a consumed record.
    async fn sink_record(&self, raw: &Raw) -> std::result::Result<Option<Record>, StageError> {
        let s = self;
        let (key_schema, key) = s
            .errors
            .attempt(Stage::KeyConverter, || s.key_converter.to_connect(&raw.topic, raw.key.as_deref()))
            .await?;
        let (value_schema, value) = s
            .errors
            .attempt(Stage::ValueConverter, || s.value_converter.to_connect(&raw.topic, raw.value.as_deref()))
            .await?;
        let headers = raw
            .headers
            .iter()
            .map(|(k, v)| Header { key: k.clone(), schema: None, value: converter::header_from_bytes(v.as_deref()) })
            .collect();
        let record = Record {
            topic: raw.topic.clone(),
            partition: Some(raw.partition),
            key_schema,
            key,
            value_schema,
            value,
            timestamp: raw.timestamp,
            headers,
            source_partition: None,
            source_offset: None,
            kafka_offset: Some(raw.offset),
        };
        s.errors.attempt(Stage::Transformation, || async { s.transforms.apply(record.clone()) }).await
    }
}

/// With `errors.tolerance=all` a failed sink record is skipped, after going
/// to the dead-letter queue when one is configured.
async fn tolerate_sink(
    rt: &Runtime,
    id: &TaskId,
    setup: &TaskSetup,
    e: StageError,
    raw: &Raw,
    dlq: &mut Option<FutureProducer>,
) -> Result<()> {
    let p = &setup.errors;
    if p.log || p.tolerate_all {
        let message =
            if p.log_messages { format!(" in {}-{}@{}", raw.topic, raw.partition, raw.offset) } else { String::new() };
        tracing::error!(task = %id, stage = e.stage.name(), error = %e.error, "error in a sink record{message}");
    }
    if !p.tolerate_all {
        return Err(ConnectError::fatal(format!(
            "Tolerance exceeded in error handler (stage {}): {}",
            e.stage.name(),
            e.error
        )));
    }
    let Some(topic) = &p.dlq_topic else { return Ok(()) };
    if dlq.is_none() {
        create_dlq_topic(rt, p.dlq_replication_factor, topic).await?;
        *dlq = Some(
            producer_config(&rt.config, &setup.connector_props, None)
                .create()
                .map_err(|e| ConnectError::fatal(format!("dead-letter queue producer: {e}")))?,
        );
    }
    let mut headers = raw.headers.clone();
    if p.dlq_context_headers {
        let exception = trace(&e.error);
        let class = exception.split(':').next().unwrap_or_default().to_string();
        for (k, v) in [
            ("__connect.errors.topic", raw.topic.clone()),
            ("__connect.errors.partition", raw.partition.to_string()),
            ("__connect.errors.offset", raw.offset.to_string()),
            ("__connect.errors.connector.name", id.connector.clone()),
            ("__connect.errors.task.id", id.task.to_string()),
            ("__connect.errors.stage", e.stage.name().to_string()),
            ("__connect.errors.class.name", stage_class(e.stage).to_string()),
            ("__connect.errors.exception.class.name", class),
            ("__connect.errors.exception.message", e.error.to_string()),
            ("__connect.errors.exception.stacktrace", exception),
        ] {
            headers.push((k.to_string(), Some(v.into_bytes())));
        }
    }
    let out = Outgoing {
        topic: topic.clone(),
        partition: None,
        key: raw.key.clone(),
        value: raw.value.clone(),
        timestamp: raw.timestamp,
        headers,
    };
    let producer = dlq.as_ref().ok_or_else(|| ConnectError::fatal("no dead-letter queue producer"))?;
    producer
        .send(out.record(), PRODUCE_QUEUE_TIMEOUT)
        .await
        .map_err(|(e, _)| ConnectError::fatal(format!("writing to the dead-letter queue {topic}: {e}")))?;
    Ok(())
}

async fn create_dlq_topic(rt: &Runtime, rf: i32, topic: &str) -> Result<()> {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        client_config(&rt.config, "admin.", &Props::new())
            .create()
            .map_err(|e| ConnectError::fatal(format!("admin client: {e}")))?;
    let new = rdkafka::admin::NewTopic::new(topic, 1, rdkafka::admin::TopicReplication::Fixed(rf));
    let opts = rdkafka::admin::AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(|e| ConnectError::fatal(format!("creating the dead-letter queue {topic}: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(ConnectError::fatal(format!(
                    "creating the dead-letter queue {t} (errors.deadletterqueue.topic.replication.factor={rf}): {code}"
                )))
            }
        }
    }
    Ok(())
}

/// The class Connect names in `__connect.errors.class.name` for a stage.
fn stage_class(stage: Stage) -> &'static str {
    match stage {
        Stage::KeyConverter | Stage::ValueConverter => "org.apache.kafka.connect.storage.Converter",
        Stage::Transformation => "org.apache.kafka.connect.transforms.Transformation",
        Stage::KafkaProduce => "org.apache.kafka.clients.producer.KafkaProducer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn retriable_errors_are_retried_until_the_retry_timeout() {
        let policy =
            ErrorPolicy::new(&props(&[("errors.retry.timeout.ms", "2000"), ("errors.retry.delay.max.ms", "50")]))
                .unwrap();
        let mut calls = 0;
        let out = policy
            .attempt(Stage::ValueConverter, || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(ConnectError::retriable("registry down"))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(out.ok(), Some(3));

        // the default (0): no retry; a data error is never retried
        let policy = ErrorPolicy::new(&Props::new()).unwrap();
        let mut calls = 0;
        let out = policy
            .attempt(Stage::KeyConverter, || {
                calls += 1;
                async { Err::<(), _>(ConnectError::retriable("down")) }
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn error_tolerance_is_none_or_all() {
        assert!(ErrorPolicy::new(&props(&[("errors.tolerance", "some")])).is_err());
        let p = ErrorPolicy::new(&props(&[("errors.tolerance", "ALL"), ("errors.retry.timeout.ms", "-1")])).unwrap();
        assert!(p.tolerate_all);
        assert!(p.retry_timeout.is_none());
    }

    #[test]
    fn a_batch_keeps_the_last_offset_of_each_source_partition() {
        let m = |v: serde_json::Value| v.as_object().cloned().unwrap();
        let batch = vec![
            (m(serde_json::json!({"file": "a"})), m(serde_json::json!({"position": 1}))),
            (m(serde_json::json!({"file": "b"})), m(serde_json::json!({"position": 7}))),
            (m(serde_json::json!({"file": "a"})), m(serde_json::json!({"position": 2}))),
        ];
        let latest = latest_offsets(batch);
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[&partition_key(&m(serde_json::json!({"file": "a"})))].1["position"], 2);
    }

    #[test]
    fn sink_groups_are_connect_name_unless_overridden() {
        assert_eq!(sink_group("pg", &Props::new()), "connect-pg");
        assert_eq!(sink_group("pg", &props(&[("consumer.override.group.id", "mine")])), "mine");
    }
}
