//! [`KafkaStreams`]: runs a topology against a Kafka cluster.
//!
//! `start()` creates the internal topics (repartition topics and
//! changelogs, with the partition counts the topology needs), then starts
//! the global thread (if the topology has global stores), the stream
//! threads (`num.stream.threads`, each with its consumer in the group
//! `application.id` and its producer; see [`thread`]) and, with
//! `application.server`, the metadata thread that lets instances find one
//! another for interactive queries ([`metadata`]). `close()` commits,
//! checkpoints and leaves the group. A thread that fails takes the whole
//! client down (Kafka Streams' default `SHUTDOWN_CLIENT`): the state goes
//! to `PendingError`, then `Error`.
//!
//! - [`topics`]: partition counts and internal topic creation.
//! - [`thread`]: a stream thread (tasks, rebalances, commits, restoration).
//! - [`collector`]: the thread's producer and its tasks' record collector.
//! - [`restore`]: changelog restoration and `.checkpoint` files.
//! - [`global`]: the global stores' thread.
//! - [`metadata`]: instance discovery for interactive queries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::config::StreamsConfig;
use crate::dsl::ValueAndTimestamp;
use crate::error::{Result, StreamsError};
use crate::serde::SerdeRef;
use crate::state::{open_byte_store, KeyValueStore, SharedStore, StoreInstance};
use crate::topology::{TaskId, TopicName, Topology};
use crate::Data;

pub mod collector;
pub mod global;
pub mod metadata;
pub mod restore;
pub mod thread;
pub mod topics;
pub mod util;

pub use util::{murmur2, partition_for_key};

/// The instance's state (Kafka Streams' `KafkaStreams.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamsState {
    Created,
    Rebalancing,
    Running,
    PendingShutdown,
    NotRunning,
    PendingError,
    Error,
}

/// Where a key lives: the partition of the store's source topic it maps to
/// and the instance (`application.server`) that holds that partition's task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    pub partition: i32,
    pub active_host: Option<String>,
    pub standby_hosts: Vec<String>,
}

/// One instance of the application and the tasks it runs (as its newest
/// claims say: a task claimed later by another instance is not listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamsMetadata {
    pub process_id: String,
    /// Its `application.server`.
    pub server: String,
    pub tasks: BTreeSet<TaskId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    Starting,
    Rebalancing,
    Running,
    Dead,
}

/// A local task for interactive queries: its thread and its stores.
type LocalTask = (usize, BTreeMap<String, SharedStore>);

type Listener = Arc<dyn Fn(StreamsState, StreamsState) + Send + Sync>;

/// What the threads and the `KafkaStreams` handle share.
pub(crate) struct Shared {
    /// Set when the instance closes or a thread fails; an `Arc` so that a
    /// restoration in progress stops with it ([`RestoreOptions::cancel`]).
    ///
    /// [`RestoreOptions::cancel`]: crate::state::restore::RestoreOptions::cancel
    pub shutdown: Arc<AtomicBool>,
    pub globals_loaded: AtomicBool,
    pub globals: BTreeMap<String, SharedStore>,
    pub metadata_dirty: AtomicBool,
    pub instances: Mutex<BTreeMap<String, metadata::InstanceInfo>>,
    state: Mutex<StreamsState>,
    listener: Mutex<Option<Listener>>,
    threads: Mutex<Vec<ThreadState>>,
    live_threads: AtomicUsize,
    /// Local tasks: their thread and stores.
    tasks: RwLock<BTreeMap<TaskId, LocalTask>>,
}

impl Shared {
    fn set_state(&self, new: StreamsState) {
        let old = {
            let mut s = self.state.lock();
            let old = *s;
            if old == new {
                return;
            }
            // terminal and shutting-down states are left only as Kafka allows
            let allowed = match old {
                StreamsState::NotRunning => false,
                StreamsState::PendingShutdown => new == StreamsState::NotRunning,
                StreamsState::PendingError => {
                    matches!(new, StreamsState::Error | StreamsState::PendingShutdown)
                }
                StreamsState::Error => new == StreamsState::PendingShutdown,
                _ => true,
            };
            if !allowed {
                return;
            }
            *s = new;
            old
        };
        tracing::debug!(?old, ?new, "streams state");
        let l = self.listener.lock().clone();
        if let Some(l) = l {
            l(old, new);
        }
    }

    fn state(&self) -> StreamsState {
        *self.state.lock()
    }

    pub(crate) fn set_thread_state(&self, index: usize, st: ThreadState) {
        let all_running = {
            let mut t = self.threads.lock();
            if let Some(slot) = t.get_mut(index.wrapping_sub(1)) {
                *slot = st;
            }
            t.iter().all(|s| matches!(s, ThreadState::Running | ThreadState::Dead))
        };
        if matches!(self.state(), StreamsState::Running | StreamsState::Rebalancing) {
            self.set_state(if all_running { StreamsState::Running } else { StreamsState::Rebalancing });
        }
    }

    fn thread_exited(&self, index: usize, result: Result<()>) {
        {
            let mut t = self.threads.lock();
            if let Some(slot) = t.get_mut(index.wrapping_sub(1)) {
                *slot = ThreadState::Dead;
            }
        }
        if let Err(e) = result {
            tracing::error!(thread = index, error = %e, "stream thread failed: shutting the client down");
            self.set_state(StreamsState::PendingError);
            self.shutdown.store(true, Ordering::SeqCst);
        }
        if self.live_threads.fetch_sub(1, Ordering::SeqCst) == 1 && self.state() == StreamsState::PendingError {
            self.set_state(StreamsState::Error);
        }
    }

    pub(crate) fn register_task(&self, id: TaskId, thread: usize, stores: BTreeMap<String, SharedStore>) {
        self.tasks.write().insert(id, (thread, stores));
    }

    pub(crate) fn unregister_task(&self, id: TaskId) {
        self.tasks.write().remove(&id);
        self.metadata_changed();
    }

    pub(crate) fn metadata_changed(&self) {
        self.metadata_dirty.store(true, Ordering::SeqCst);
    }

    pub(crate) fn local_tasks(&self) -> BTreeSet<TaskId> {
        self.tasks.read().keys().copied().collect()
    }
}

/// Runs a topology (see the module docs).
pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: StreamsConfig,
    process_id: String,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    layout: topics::TopicLayout,
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let mut globals = BTreeMap::new();
        for g in topology.global_stores() {
            let store = StoreInstance::new(&g.store.name, open_byte_store(&g.store, None)?, None);
            globals.insert(g.store.name.clone(), store.shared());
        }
        let shared = Arc::new(Shared {
            shutdown: Arc::new(AtomicBool::new(false)),
            globals_loaded: AtomicBool::new(false),
            globals,
            metadata_dirty: AtomicBool::new(true),
            instances: Mutex::new(BTreeMap::new()),
            state: Mutex::new(StreamsState::Created),
            listener: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            live_threads: AtomicUsize::new(0),
            tasks: RwLock::new(BTreeMap::new()),
        });
        Ok(KafkaStreams {
            topology: Arc::new(topology),
            config,
            process_id: uuid::Uuid::new_v4().to_string(),
            shared,
            handles: Vec::new(),
            layout: topics::TopicLayout::default(),
        })
    }

    /// This instance's process id (a UUID, in client ids and the metadata topic).
    pub fn process_id(&self) -> &str {
        &self.process_id
    }

    /// Called with (old, new) on every state change, on the thread that made it.
    pub fn set_state_listener(&mut self, f: impl Fn(StreamsState, StreamsState) + Send + Sync + 'static) {
        *self.shared.listener.lock() = Some(Arc::new(f));
    }

    pub fn state(&self) -> StreamsState {
        self.shared.state()
    }

    /// Creates the internal topics and starts the threads (see the module
    /// docs). Fails, without starting anything, on a topology the cluster
    /// cannot run (a missing source topic, topics not co-partitioned).
    pub fn start(&mut self) -> Result<()> {
        if self.state() != StreamsState::Created {
            return Err(StreamsError::InvalidState(format!(
                "start() in state {:?}: a KafkaStreams instance starts once",
                self.state()
            )));
        }
        let app = self.config.application_id.clone();
        self.process_id = process_id(&self.config)?;
        let mut extra = Vec::new();
        if self.config.application_server.is_some() {
            let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
            extra.push((metadata::topic_name(&app), 1, configs));
        }
        self.layout = topics::prepare_topics(&self.topology, &self.config, &extra)?;
        self.shared.set_state(StreamsState::Rebalancing);
        let n = self.config.num_stream_threads;
        *self.shared.threads.lock() = vec![ThreadState::Starting; n];
        self.shared.live_threads.store(n, Ordering::SeqCst);
        if self.topology.global_stores().is_empty() {
            self.shared.globals_loaded.store(true, Ordering::SeqCst);
        } else {
            let (c, t, s, p) =
                (self.config.clone(), self.topology.clone(), self.shared.clone(), self.process_id.clone());
            self.handles.push(spawn(format!("{app}-GlobalStreamThread"), move || {
                if let Err(e) = global::run(c, t, s.clone(), p) {
                    tracing::error!(error = %e, "global thread failed: shutting the client down");
                    s.set_state(StreamsState::PendingError);
                    s.shutdown.store(true, Ordering::SeqCst);
                    if s.live_threads.load(Ordering::SeqCst) == 0 {
                        s.set_state(StreamsState::Error);
                    }
                }
            })?);
        }
        for i in 1..=n {
            let env = Arc::new(thread::ThreadEnv {
                index: i,
                config: self.config.clone(),
                topology: self.topology.clone(),
                layout: self.layout.clone(),
                process_id: self.process_id.clone(),
                shared: self.shared.clone(),
            });
            let shared = self.shared.clone();
            self.handles.push(spawn(format!("{app}-StreamThread-{i}"), move || {
                let r = thread::run(env);
                shared.thread_exited(i, r);
            })?);
        }
        if let Some(server) = self.config.application_server.clone() {
            let (c, s, p) = (self.config.clone(), self.shared.clone(), self.process_id.clone());
            self.handles.push(spawn(format!("{app}-metadata"), move || {
                if let Err(e) = metadata::run(c, s, p, server) {
                    tracing::error!(error = %e, "metadata thread failed: interactive queries cannot find other instances");
                }
            })?);
        }
        Ok(())
    }

    /// Stops every thread cleanly (commit, checkpoint, leave the group) and
    /// waits for them. Fails if the instance had stopped on an error
    /// (`Error` state; the error was logged when it happened).
    pub fn close(&mut self) -> Result<()> {
        let failed = matches!(self.state(), StreamsState::Error | StreamsState::PendingError);
        self.close_timeout(Duration::from_secs(u32::MAX as u64));
        if failed {
            return Err(StreamsError::InvalidState("a thread failed before close (see the log)".into()));
        }
        Ok(())
    }

    /// As `close`, waiting at most `timeout`; false if threads were still running then.
    pub fn close_timeout(&mut self, timeout: Duration) -> bool {
        if self.state() == StreamsState::Created {
            self.shared.set_state(StreamsState::PendingShutdown);
            self.shared.set_state(StreamsState::NotRunning);
            return true;
        }
        if self.state() != StreamsState::NotRunning {
            self.shared.set_state(StreamsState::PendingShutdown);
        }
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let deadline = Instant::now().checked_add(timeout);
        while self.handles.iter().any(|h| !h.is_finished()) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        if self.state() != StreamsState::NotRunning {
            self.shared.set_state(StreamsState::NotRunning);
            tracing::info!("streams closed");
        }
        true
    }

    fn check_queryable(&self) -> Result<()> {
        match self.state() {
            StreamsState::Running | StreamsState::Rebalancing => Ok(()),
            s => Err(StreamsError::InvalidState(format!(
                "the instance is {s:?}: stores can be queried while it is running or rebalancing"
            ))),
        }
    }

    /// The serde topic a store's typed handle uses (its changelog, or its name).
    fn serde_topic(&self, store: &str) -> String {
        match self.topology.store_spec(store) {
            Some(spec) if spec.logging.is_some() => {
                TopicName::internal(&format!("{store}-changelog")).resolve(&self.config.application_id)
            }
            _ => store.to_string(),
        }
    }

    /// The typed handles of store `name` in every local task holding it (a
    /// global store: its one instance), e.g. `store::<KeyValueStore<String, i64>>("counts")`.
    pub fn store<S: Clone + 'static>(&self, name: &str) -> Result<Vec<S>> {
        self.check_queryable()?;
        if let Some(g) = self.topology.global_stores().iter().find(|g| g.store.name == name) {
            let shared =
                self.shared.globals.get(name).ok_or_else(|| StreamsError::Topology(format!("no store {name}")))?;
            return Ok(vec![downcast::<S>(g.store.handle(shared.clone(), &g.topic), name)?]);
        }
        let spec = self
            .topology
            .store_spec(name)
            .ok_or_else(|| StreamsError::Topology(format!("no state store named {name}")))?;
        let topic = self.serde_topic(name);
        let tasks = self.shared.tasks.read();
        let mut out = Vec::new();
        for (_, stores) in tasks.values() {
            if let Some(s) = stores.get(name) {
                out.push(downcast::<S>(spec.handle(s.clone(), &topic), name)?);
            }
        }
        Ok(out)
    }

    fn store_subtopology(&self, store: &str) -> Result<u32> {
        self.topology
            .subtopologies()
            .iter()
            .find(|s| s.stores.iter().any(|n| n == store))
            .map(|s| s.id)
            .ok_or_else(|| StreamsError::Topology(format!("no task store named {store}")))
    }

    /// The partition (task) of `store` that holds `key`: murmur2 of the key's
    /// bytes over the partitions of the store's source topics (Java's default
    /// partitioner).
    fn key_task<K: Data>(&self, store: &str, key: &K, key_serde: &SerdeRef<K>) -> Result<TaskId> {
        let sub = self.store_subtopology(store)?;
        let parts = *self.layout.sub_partitions.get(&sub).ok_or_else(|| {
            StreamsError::InvalidState("the instance has not started: partition counts are not known".into())
        })?;
        let topic = self.layout.sub_sources.get(&sub).and_then(|t| t.first()).cloned().unwrap_or_default();
        let bytes = key_serde
            .serialize(&topic, key)?
            .ok_or_else(|| StreamsError::serde(&topic, "a key serialized to null has no partition"))?;
        Ok(TaskId { subtopology: sub, partition: partition_for_key(&bytes, parts) })
    }

    /// Looks `key` up in the local task of its partition. Tables made by the
    /// DSL hold `ValueAndTimestamp<V>`: the value is unwrapped. Fails when the
    /// task is not on this instance (ask `query_metadata_for_key` where it is).
    pub fn key_value_get<K: Data, V: Data>(&self, store: &str, key: &K, key_serde: SerdeRef<K>) -> Result<Option<V>> {
        self.check_queryable()?;
        if self.topology.global_stores().iter().any(|g| g.store.name == store) {
            // a global store: this instance holds all of it
            let handles = self.store::<KeyValueStore<K, ValueAndTimestamp<V>>>(store);
            if let Ok(h) = handles {
                return Ok(h.first().map(|kv| kv.get(key)).transpose()?.flatten().map(|v| v.value));
            }
            let h = self.store::<KeyValueStore<K, V>>(store)?;
            return Ok(h.first().map(|kv| kv.get(key)).transpose()?.flatten());
        }
        let task = self.key_task(store, key, &key_serde)?;
        let shared = {
            let tasks = self.shared.tasks.read();
            tasks.get(&task).and_then(|(_, s)| s.get(store).cloned())
        };
        let Some(shared) = shared else {
            return Err(StreamsError::InvalidState(format!(
                "task {task} holding this key of store {store} is not on this instance (see query_metadata_for_key)"
            )));
        };
        let spec =
            self.topology.store_spec(store).ok_or_else(|| StreamsError::Topology(format!("no store {store}")))?;
        let handle = spec.handle(shared, &self.serde_topic(store));
        if let Some(kv) = handle.downcast_ref::<KeyValueStore<K, ValueAndTimestamp<V>>>() {
            return Ok(kv.get(key)?.map(|v| v.value));
        }
        if let Some(kv) = handle.downcast_ref::<KeyValueStore<K, V>>() {
            return kv.get(key);
        }
        Err(StreamsError::Topology(format!(
            "store {store} is not a key-value store of {} to {}",
            std::any::type_name::<K>(),
            std::any::type_name::<V>()
        )))
    }

    /// Which partition holds `key` in `store`, and which instance runs it.
    /// Needs `application.server` (as Kafka Streams).
    pub fn query_metadata_for_key<K: Data>(
        &self,
        store: &str,
        key: &K,
        key_serde: SerdeRef<K>,
    ) -> Result<KeyQueryMetadata> {
        self.require_server()?;
        self.check_queryable()?;
        let task = self.key_task(store, key, &key_serde)?;
        let owner = metadata::owners(&self.instances()).get(&task).cloned();
        let active_host = owner.and_then(|pid| self.instances().get(&pid).map(|i| i.server.clone()));
        Ok(KeyQueryMetadata { partition: task.partition, active_host, standby_hosts: Vec::new() })
    }

    /// Every known instance with the tasks it runs (needs `application.server`).
    pub fn all_metadata(&self) -> Result<Vec<StreamsMetadata>> {
        self.require_server()?;
        let instances = self.instances();
        let owners = metadata::owners(&instances);
        Ok(instances
            .iter()
            .map(|(pid, info)| StreamsMetadata {
                process_id: pid.clone(),
                server: info.server.clone(),
                tasks: owners.iter().filter(|(_, p)| *p == pid).map(|(t, _)| *t).collect(),
            })
            .collect())
    }

    fn require_server(&self) -> Result<()> {
        if self.config.application_server.is_none() {
            return Err(StreamsError::config(
                "application.server",
                "not set: interactive-query metadata needs each instance's host:port",
            ));
        }
        Ok(())
    }

    /// Known live instances (see [`metadata::live`]); this one's entry is its current tasks.
    fn instances(&self) -> BTreeMap<String, metadata::InstanceInfo> {
        let mut m = metadata::live(self.shared.instances.lock().clone(), util::now_ms());
        if let Some(server) = &self.config.application_server {
            let own_ms = m.get(&self.process_id).map(|i| i.updated_ms).unwrap_or(0);
            let tasks = self.shared.local_tasks().iter().map(|t| t.to_string()).collect();
            m.insert(
                self.process_id.clone(),
                metadata::InstanceInfo { server: server.clone(), tasks, updated_ms: own_ms },
            );
        }
        m
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.handles.is_empty() {
            self.close_timeout(Duration::from_secs(60));
        }
    }
}

fn downcast<S: Clone + 'static>(h: Box<dyn std::any::Any + Send + Sync>, name: &str) -> Result<S> {
    h.downcast_ref::<S>()
        .cloned()
        .ok_or_else(|| StreamsError::Topology(format!("state store {name} is not a {}", std::any::type_name::<S>())))
}

/// The process id kept in `<state.dir>/<application.id>/kafka-streams-process-metadata`
/// (as Kafka Streams keeps it): a restarted instance keeps its transactional
/// ids, so its producers fence the transactions a crash left open at once.
fn process_id(config: &StreamsConfig) -> Result<String> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct ProcessFile {
        #[serde(rename = "processId")]
        process_id: uuid::Uuid,
    }
    let dir = config.state_dir.join(&config.application_id);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("kafka-streams-process-metadata");
    if let Ok(text) = std::fs::read(&path) {
        match serde_json::from_slice::<ProcessFile>(&text) {
            Ok(f) => return Ok(f.process_id.to_string()),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable process metadata: a new process id")
            }
        }
    }
    let f = ProcessFile { process_id: uuid::Uuid::new_v4() };
    let bytes = serde_json::to_vec(&f).map_err(|e| StreamsError::Processing(e.to_string()))?;
    std::fs::write(&path, bytes)?;
    Ok(f.process_id.to_string())
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    Ok(std::thread::Builder::new().name(name).spawn(f)?)
}
