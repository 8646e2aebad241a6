//! A stream thread: one consumer in the group `application.id` (rebalance
//! callbacks run inside `poll`, on this thread), one producer, the tasks of
//! the partitions assigned to it, their restoration, commits and
//! checkpoints.
//!
//! A task is created once every partition it reads is assigned (partitions
//! of incomplete tasks are paused until then) and restored from its
//! changelogs before it processes. Revocation commits, then closes the
//! affected tasks. Under at_least_once a commit flushes the producer (a
//! delivery error fails the thread), flushes the stores, writes the
//! checkpoints and commits the consumed offsets; under exactly_once_v2 it
//! sends the offsets to the transaction and commits it, and a transaction
//! error aborts, closes the tasks dirty (their state wiped), seeks back to
//! the committed offsets and rebuilds the tasks from their changelogs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::Producer;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::collector::{ProducerCollector, ThreadProducer};
use super::restore::{wipe_dir, RestoreConsumer, RestoreContext};
use super::topics::{client_config, TopicLayout};
use super::util::{member_id, now_ms, raw_record};
use super::{Shared, ThreadState};
use crate::config::{GroupProtocol, ProcessingGuarantee, StreamsConfig};
use crate::error::{Result, StreamsError};
use crate::record::RawRecord;
use crate::state::checkpoint::{OffsetCheckpoint, Offsets};
use crate::state::restore::{restore_consumer_config, restore_store, RestoreOptions};
use crate::state::{memory::MemoryStore, open_byte_store, ChangelogTarget, StoreInstance, StoreSpec};
use crate::task::{Task, TaskSetup};
use crate::topology::{TaskId, Topology};

type Tp = (String, i32);

/// What a stream thread is given.
pub(crate) struct ThreadEnv {
    /// 1-based, as Kafka Streams numbers its threads.
    pub index: usize,
    pub config: StreamsConfig,
    pub topology: Arc<Topology>,
    pub layout: TopicLayout,
    pub process_id: String,
    pub shared: Arc<Shared>,
}

impl ThreadEnv {
    fn eos(&self) -> bool {
        self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2
    }
}

struct TaskEntry {
    task: Task,
    dir: PathBuf,
    /// Some store is on disk: checkpoints are written for it.
    persistent: bool,
    /// Changelog partitions and the next offset after what was restored from each.
    restored: Offsets,
    changelogs: Vec<Tp>,
}

pub(crate) struct TaskManager {
    env: Arc<ThreadEnv>,
    producer: Arc<ThreadProducer>,
    restore: RestoreConsumer,
    tasks: BTreeMap<TaskId, TaskEntry>,
    pending: BTreeSet<TaskId>,
    assigned: BTreeSet<Tp>,
    paused: BTreeSet<Tp>,
    /// Next offset to commit per partition (records processed since the last commit).
    positions: BTreeMap<Tp, i64>,
    topic_sub: HashMap<String, u32>,
    /// An error raised inside a rebalance callback, for the loop.
    error: Option<StreamsError>,
    log_tasks: bool,
    resets: u32,
    /// A rebalance callback ran (a member with no partitions gets none under KIP-848).
    rebalanced: bool,
}

impl TaskManager {
    fn new(env: Arc<ThreadEnv>) -> Result<TaskManager> {
        let producer = ThreadProducer::create(&env.config, &env.process_id, env.index)?;
        let mut base = client_config(&env.config.client_props(&["consumer.", "restore.consumer."]));
        base.set(
            "client.id",
            format!("{}-{}-StreamThread-{}-restore-consumer", env.config.application_id, env.process_id, env.index),
        );
        // librdkafka assigns only with a group id; this consumer never joins the group (no subscribe, no commit)
        base.set("group.id", format!("{}-unjoined", env.config.application_id));
        base.set("fetch.wait.max.ms", "20");
        let restore: RestoreConsumer = restore_consumer_config(&base).create_with_context(RestoreContext)?;
        let mut topic_sub = HashMap::new();
        for (sub, topics) in &env.layout.sub_sources {
            for t in topics {
                topic_sub.insert(t.clone(), *sub);
            }
        }
        Ok(TaskManager {
            env,
            producer,
            restore,
            tasks: BTreeMap::new(),
            pending: BTreeSet::new(),
            assigned: BTreeSet::new(),
            paused: BTreeSet::new(),
            positions: BTreeMap::new(),
            topic_sub,
            error: None,
            log_tasks: false,
            resets: 0,
            rebalanced: false,
        })
    }

    fn task_of(&self, tp: &Tp) -> Option<TaskId> {
        self.topic_sub.get(&tp.0).map(|&s| TaskId { subtopology: s, partition: tp.1 })
    }

    fn task_partitions(&self, id: TaskId) -> Vec<Tp> {
        self.env
            .layout
            .sub_sources
            .get(&id.subtopology)
            .into_iter()
            .flatten()
            .map(|t| (t.clone(), id.partition))
            .collect()
    }

    /// Marks complete tasks for creation; pauses the partitions of incomplete ones.
    fn update_assignment<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let candidates: BTreeSet<TaskId> = self.assigned.iter().filter_map(|tp| self.task_of(tp)).collect();
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for id in candidates {
            let parts = self.task_partitions(id);
            let complete = parts.iter().all(|tp| self.assigned.contains(tp));
            if complete {
                if !self.tasks.contains_key(&id) {
                    self.pending.insert(id);
                }
                for tp in parts {
                    if self.paused.remove(&tp) {
                        resume.add_partition(&tp.0, tp.1);
                    }
                }
            } else {
                for tp in parts.into_iter().filter(|tp| self.assigned.contains(tp)) {
                    if self.paused.insert(tp.clone()) {
                        pause.add_partition(&tp.0, tp.1);
                    }
                }
            }
        }
        if pause.count() > 0 {
            if let Err(e) = consumer.pause(&pause) {
                tracing::warn!(error = %e, "pausing the partitions of incomplete tasks");
            }
        }
        if resume.count() > 0 {
            if let Err(e) = consumer.resume(&resume) {
                tracing::warn!(error = %e, "resuming partitions");
            }
        }
    }

    fn on_assign<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        for e in tpl.elements() {
            self.assigned.insert((e.topic().to_string(), e.partition()));
        }
        self.update_assignment(consumer);
        self.log_tasks = true;
        self.rebalanced = true;
        self.env.shared.set_thread_state(self.env.index, ThreadState::Rebalancing);
    }

    fn on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let revoked: BTreeSet<Tp> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let affected: Vec<TaskId> = self
            .tasks
            .keys()
            .copied()
            .filter(|id| self.task_partitions(*id).iter().any(|tp| revoked.contains(tp)))
            .collect();
        if !affected.is_empty() {
            match self.commit(consumer) {
                Ok(()) => {
                    for id in &affected {
                        self.close_task(*id, true);
                    }
                }
                Err(e) => {
                    tracing::warn!(thread = self.env.index, error = %e, "commit before revocation failed: closing the revoked tasks dirty");
                    if self.env.eos() {
                        let _ = self.producer.producer.abort_transaction(Duration::from_secs(30));
                        self.producer.in_txn.store(false, Ordering::SeqCst);
                        for id in self.tasks.keys().copied().collect::<Vec<_>>() {
                            self.close_task(id, false);
                        }
                        self.positions.clear();
                        self.error = self.error.take().or_else(|| self.seek_to_committed(consumer).err());
                    } else {
                        for id in &affected {
                            self.close_task(*id, false);
                        }
                    }
                }
            }
        }
        for tp in &revoked {
            self.assigned.remove(tp);
            self.paused.remove(tp);
            self.positions.remove(tp);
            if let Some(id) = self.task_of(tp) {
                self.pending.remove(&id);
            }
        }
        self.update_assignment(consumer);
        self.log_tasks = true;
        self.rebalanced = true;
        self.env.shared.set_thread_state(self.env.index, ThreadState::Rebalancing);
    }

    /// Creates (and restores) the tasks waiting for it.
    fn create_pending(&mut self) -> Result<()> {
        while let Some(id) = self.pending.pop_first() {
            self.create_task(id)?;
        }
        if self.log_tasks {
            self.log_tasks = false;
            let ids: Vec<String> = self.tasks.keys().map(|t| t.to_string()).collect();
            tracing::info!("stream thread {} tasks: [{}]", self.env.index, ids.join(", "));
            self.env.shared.set_thread_state(self.env.index, ThreadState::Running);
            self.env.shared.metadata_changed();
        }
        Ok(())
    }

    fn create_task(&mut self, id: TaskId) -> Result<()> {
        let env = self.env.clone();
        let app = &env.config.application_id;
        let dir = env.config.state_dir.join(app).join(id.to_string());
        std::fs::create_dir_all(&dir)?;
        let cp_file = OffsetCheckpoint::in_dir(&dir);
        let cp: Option<Offsets> = if cp_file.path().exists() {
            match cp_file.read() {
                Ok(cp) => Some(cp),
                Err(e) => {
                    tracing::warn!(task = %id, error = %e, "unreadable checkpoint: restoring the task from the beginning");
                    wipe_dir(&dir)?;
                    None
                }
            }
        } else {
            None
        };
        if env.eos() && cp.is_none() {
            // no checkpoint under exactly-once: the local state may hold uncommitted writes
            wipe_dir(&dir)?;
        }
        let mut restored = Offsets::new();
        let mut changelogs = Vec::new();
        let mut persistent = false;
        let restore = &self.restore;
        let options = RestoreOptions { cancel: Some(env.shared.shutdown.clone()), ..RestoreOptions::default() };
        let mut open = |spec: &StoreSpec, changelog: Option<ChangelogTarget>| -> Result<StoreInstance> {
            let bytes = match open_byte_store(spec, Some(&dir)) {
                Ok(b) => b,
                // its changelog holds everything: the task runs on a copy in memory rebuilt from it
                Err(e) if spec.persistent && changelog.is_some() => {
                    tracing::warn!(store = %spec.name, error = %e, "persistent store unavailable: kept in memory (restored from the changelog's beginning)");
                    Box::new(MemoryStore::default())
                }
                // a store without a changelog exists only in its file: never replaced by an empty one
                Err(e) => return Err(e),
            };
            let on_disk = bytes.persistent();
            persistent |= on_disk;
            let mut inst = StoreInstance::new(&spec.name, bytes, changelog.clone());
            if let Some(c) = changelog {
                let tp = (c.topic.clone(), c.partition);
                let start =
                    if on_disk { cp.as_ref().and_then(|m| m.get(&tp).copied()).filter(|o| *o >= 0) } else { None };
                let r = match restore_store(restore, &mut inst, &c.topic, c.partition, start, &options) {
                    // the checkpoint names an offset the changelog (as read_committed sees it) does not
                    // reach: the local file is not to be trusted; the changelog is, so the store is
                    // rebuilt from its beginning (Kafka Streams treats the task as corrupted likewise)
                    Err(e @ StreamsError::TaskCorrupted(_)) if start.is_some() => {
                        tracing::warn!(task = %id, store = %spec.name, error = %e,
                            "checkpoint past the changelog's end: restoring the store from the beginning");
                        drop(inst);
                        crate::state::redb_store::RedbStore::delete_file(&spec.name, &dir)?;
                        let bytes = open_byte_store(spec, Some(&dir))?;
                        inst = StoreInstance::new(&spec.name, bytes, Some(c.clone()));
                        restore_store(restore, &mut inst, &c.topic, c.partition, None, &options)?
                    }
                    r => r?,
                };
                tracing::info!(
                    "restored {} for task {}: {} records from {}-{}",
                    spec.name,
                    id,
                    r.records,
                    c.topic,
                    c.partition
                );
                restored.insert(tp.clone(), r.next_offset);
                changelogs.push(tp);
            }
            Ok(inst)
        };
        let setup = TaskSetup {
            application_id: app.clone(),
            globals: env.shared.globals.clone(),
            collector: Box::new(ProducerCollector(self.producer.clone())),
            clock: Arc::new(now_ms),
            handler: env.config.deserialization_handler,
        };
        let task = Task::new(id, env.topology.clone(), &mut open, setup)?;
        if env.eos() {
            cp_file.delete()?;
        }
        env.shared.register_task(id, env.index, task.stores().clone());
        self.tasks.insert(id, TaskEntry { task, dir, persistent, restored, changelogs });
        Ok(())
    }

    /// Writes the task's checkpoint: per changelog partition, the next
    /// offset after what its stores hold (the last delivered write + 1, or
    /// where restoration ended).
    fn checkpoint(&self, entry: &TaskEntry) -> Result<()> {
        if !entry.persistent {
            return Ok(());
        }
        let mut cp = Offsets::new();
        for tp in &entry.changelogs {
            let next = match self.producer.delivered_offset(&tp.0, tp.1) {
                Some(o) => Some(o + 1),
                None => entry.restored.get(tp).copied(),
            };
            if let Some(o) = next {
                cp.insert(tp.clone(), o);
            }
        }
        OffsetCheckpoint::in_dir(&entry.dir).write(&cp)
    }

    /// Closes a task: clean (processors closed, stores flushed, a checkpoint)
    /// or dirty (under exactly-once its local state is wiped).
    fn close_task(&mut self, id: TaskId, clean: bool) {
        let Some(mut entry) = self.tasks.remove(&id) else { return };
        self.env.shared.unregister_task(id);
        entry.task.close();
        if clean {
            let r = entry.task.flush_stores().and_then(|_| self.checkpoint(&entry));
            if let Err(e) = r {
                tracing::warn!(task = %id, error = %e, "checkpoint on close failed");
            }
        }
        let dir = entry.dir.clone();
        drop(entry);
        if !clean && self.env.eos() {
            if let Err(e) = wipe_dir(&dir) {
                tracing::warn!(task = %id, error = %e, "wiping a dirty task's state");
            }
        }
    }

    /// Commits what the tasks processed (see the module docs).
    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        let started = Instant::now();
        let r = self.commit_inner(consumer);
        tracing::debug!(thread = self.env.index, elapsed = ?started.elapsed(), ok = r.is_ok(), "commit");
        r
    }

    fn commit_inner<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &self.positions {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
        }
        if self.env.eos() {
            let open = self.producer.in_txn.load(Ordering::SeqCst);
            if !open && tpl.count() == 0 {
                return Ok(());
            }
            let p = &self.producer.producer;
            if !open {
                p.begin_transaction()?;
                self.producer.in_txn.store(true, Ordering::SeqCst);
            }
            if tpl.count() > 0 {
                p.send_offsets_to_transaction(
                    &tpl,
                    &consumer
                        .group_metadata()
                        .ok_or_else(|| StreamsError::TaskMigrated("the consumer has no group metadata".into()))?,
                    Duration::from_secs(30),
                )?;
            }
            self.producer.wait_delivered(Duration::from_secs(60))?;
            p.commit_transaction(Duration::from_secs(60))?;
            self.producer.in_txn.store(false, Ordering::SeqCst);
            self.producer.take_error()?;
        } else {
            self.producer.flush()?;
            for entry in self.tasks.values_mut() {
                entry.task.flush_stores()?;
            }
            for entry in self.tasks.values() {
                self.checkpoint(entry)?;
            }
            if tpl.count() > 0 {
                consumer.commit(&tpl, CommitMode::Sync)?;
            }
        }
        self.positions.clear();
        self.resets = 0;
        Ok(())
    }

    fn seek_to_committed<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> Result<()> {
        if self.assigned.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &self.assigned {
            tpl.add_partition(t, *p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(30))?;
        for e in committed.elements() {
            let to = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            consumer.seek(e.topic(), e.partition(), to, Duration::from_secs(30))?;
        }
        Ok(())
    }

    /// After a Kafka error: drop the uncommitted work, rebuild the tasks
    /// from the committed offsets and the changelogs.
    fn recover<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, error: StreamsError) -> Result<()> {
        let recoverable = matches!(error, StreamsError::Kafka(_) | StreamsError::TaskMigrated(_));
        self.resets += 1;
        if !recoverable || self.resets > 5 {
            return Err(error);
        }
        tracing::warn!(thread = self.env.index, error = %error,
            "dropping uncommitted work: closing the tasks dirty and rebuilding them from the committed offsets");
        if self.env.eos() {
            let _ = self.producer.producer.abort_transaction(Duration::from_secs(30));
        }
        for id in self.tasks.keys().copied().collect::<Vec<_>>() {
            self.close_task(id, false);
        }
        if self.env.eos() {
            self.producer = ThreadProducer::create(&self.env.config, &self.env.process_id, self.env.index)?;
        } else {
            let _ = self.producer.producer.flush(Duration::from_secs(30));
            let _ = self.producer.take_error();
        }
        self.positions.clear();
        self.seek_to_committed(consumer)?;
        self.update_assignment(consumer);
        self.log_tasks = true;
        Ok(())
    }

    fn process(&mut self, consumer: &BaseConsumer<ThreadCtx>, raw: &RawRecord) -> Result<()> {
        let tp = (raw.topic.clone(), raw.partition);
        let task = self.task_of(&tp).and_then(|id| self.tasks.get_mut(&id));
        let Some(entry) = task else {
            // a record of a partition whose task is not complete (or was just revoked)
            if self.assigned.contains(&tp) {
                consumer.seek(&raw.topic, raw.partition, Offset::Offset(raw.offset), Duration::from_secs(10))?;
            }
            return Ok(());
        };
        entry.task.process(raw)?;
        self.positions.insert(tp, raw.offset + 1);
        Ok(())
    }

    fn punctuate(&mut self) -> Result<()> {
        let now = now_ms();
        for e in self.tasks.values_mut() {
            e.task.punctuate_wall_clock(now)?;
        }
        Ok(())
    }

    fn close_all(&mut self, consumer: &BaseConsumer<ThreadCtx>, clean: bool) {
        let clean = clean && {
            match self.commit(consumer) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(thread = self.env.index, error = %e, "final commit failed: closing the tasks dirty");
                    false
                }
            }
        };
        if !clean && self.env.eos() {
            let _ = self.producer.producer.abort_transaction(Duration::from_secs(10));
        }
        for id in self.tasks.keys().copied().collect::<Vec<_>>() {
            self.close_task(id, clean);
        }
        self.pending.clear();
        if clean {
            let _ = self.producer.producer.flush(Duration::from_secs(30));
        }
    }
}

/// The consumer's context: rebalance callbacks reach the task manager.
pub(crate) struct ThreadCtx {
    tm: Arc<Mutex<TaskManager>>,
}

impl ClientContext for ThreadCtx {}

impl ConsumerContext for ThreadCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.tm.lock().on_revoke(consumer, tpl);
        }
    }
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.tm.lock().on_assign(consumer, tpl),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

fn consumer_config(env: &ThreadEnv) -> rdkafka::ClientConfig {
    let config = &env.config;
    let mut c = client_config(&config.client_props(&["consumer.", "main.consumer."]));
    c.set("group.id", &config.application_id);
    c.set("client.id", format!("{}-{}-StreamThread-{}-consumer", config.application_id, env.process_id, env.index));
    c.set("enable.auto.commit", "false");
    c.set("enable.auto.offset.store", "false");
    c.set("auto.offset.reset", "earliest");
    c.set("isolation.level", if env.eos() { "read_committed" } else { "read_uncommitted" });
    match config.group_protocol {
        GroupProtocol::Consumer => {
            c.set("group.protocol", "consumer");
            c.set("group.remote.assignor", "range");
        }
        GroupProtocol::Classic => {
            c.set("partition.assignment.strategy", "range");
        }
    }
    c
}

/// The thread's body; returns when the instance shuts down or the thread fails.
pub(crate) fn run(env: Arc<ThreadEnv>) -> Result<()> {
    while !env.shared.globals_loaded.load(Ordering::SeqCst) {
        if env.shared.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tm = Arc::new(Mutex::new(TaskManager::new(env.clone())?));
    let consumer: BaseConsumer<ThreadCtx> = consumer_config(&env).create_with_context(ThreadCtx { tm: tm.clone() })?;
    let topics: Vec<&str> = env.layout.sub_sources.values().flatten().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let mut last_commit = Instant::now();
    let mut joined: Option<Instant> = None;
    let result: Result<()> = loop {
        if env.shared.shutdown.load(Ordering::SeqCst) {
            break Ok(());
        }
        let raw = match consumer.poll(env.config.poll_timeout) {
            Some(Ok(m)) => Some(raw_record(&m)),
            Some(Err(e)) => {
                tracing::warn!(thread = env.index, error = %e, "consumer");
                None
            }
            None => None,
        };
        let mut t = tm.lock();
        if let Some(e) = t.error.take() {
            break Err(e);
        }
        if !t.rebalanced && env.config.group_protocol == GroupProtocol::Consumer {
            // under KIP-848 a member given no partitions gets no callback: it runs with no task
            // (the classic protocol always calls back, with an empty assignment)
            if joined.is_none() && member_id(&consumer).is_some() {
                joined = Some(Instant::now());
            }
            if joined.is_some_and(|j| j.elapsed() > Duration::from_secs(1)) {
                t.rebalanced = true;
                t.log_tasks = true;
            }
        }
        let step = (|| -> Result<()> {
            t.create_pending()?;
            if let Some(raw) = &raw {
                t.process(&consumer, raw)?;
            }
            t.punctuate()?;
            t.producer.producer.poll(Duration::ZERO);
            if !env.eos() {
                t.producer.take_error()?;
            }
            if last_commit.elapsed() >= env.config.commit_interval {
                // the interval counts from the end of a commit: a slow commit must not starve processing
                let r = t.commit(&consumer);
                last_commit = Instant::now();
                r?;
            }
            Ok(())
        })();
        if let Err(e) = step {
            if let StreamsError::Cancelled(reason) = &e {
                tracing::info!(thread = env.index, reason, "closing during a restoration");
                break Ok(());
            }
            if let Err(e) = t.recover(&consumer, e) {
                break Err(e);
            }
        }
    };
    tm.lock().close_all(&consumer, result.is_ok());
    drop(consumer);
    result
}
