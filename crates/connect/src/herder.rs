//! The worker cluster: membership in the Kafka group `group.id` (JoinGroup
//! with protocol type `connect`, see [`crate::cluster`]), the leader's
//! assignment of connectors and tasks, the config topic (connector configs,
//! task configs, target states) and the status topic (see
//! [`crate::store`]), and what the REST API ([`crate::rest`]) asks of them.
//!
//! One loop per worker ([`Herder::group_loop`]) joins, syncs, heartbeats,
//! and applies the assignment and the config topic's changes to the
//! runtime. The leader also turns connector configs into task configs
//! (`task-NAME-N` + `commit-NAME`) and rejoins when the set of connectors
//! or tasks changed, so every worker gets a new assignment (eager protocol:
//! everything stops before a rebalance and starts after it).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify};

use crate::cluster::{self, Assignment, GroupError, MemberMetadata, Membership};
use crate::config::{Props, PropsExt, WorkerConfig};
use crate::connectors;
use crate::runtime::Runtime;
use crate::status::{State, StatusListener, TargetState, TaskId};
use crate::store::{self, ConfigSnapshot, RestartRequest, StatusRecord, Stores};

/// How long the leader or a member waits to read the config topic up to
/// the offset an assignment needs.
const CONFIG_CATCH_UP: Duration = Duration::from_secs(15);
/// The pause before joining again after a failed JoinGroup/SyncGroup.
const REJOIN_BACKOFF: Duration = Duration::from_millis(500);

/// Where this worker is in the group, for the REST API.
#[derive(Clone, Debug, Default)]
pub struct GroupState {
    /// A member with an assignment (false during a rebalance).
    pub joined: bool,
    pub member_id: String,
    pub generation: i32,
    pub assignment: Assignment,
}

/// The shared state of a worker.
pub struct Herder {
    pub config: Arc<WorkerConfig>,
    pub stores: Arc<Stores>,
    pub runtime: Arc<Runtime>,
    pub group: RwLock<GroupState>,
    /// `true` while this worker is a member with an assignment.
    joined: watch::Sender<bool>,
    /// Asks the group loop to rejoin (a config change the leader noticed).
    rejoin: Notify,
    pub kafka_cluster_id: String,
    generation: Arc<AtomicI32>,
}

/// Writes the runtime's task states to the status topic.
struct StatusWriter {
    stores: Arc<Stores>,
    worker_id: String,
    generation: Arc<AtomicI32>,
}

impl StatusListener for StatusWriter {
    fn task_state(&self, id: &TaskId, state: State, trace: Option<String>) {
        tracing::info!(task = %id, state = state.name(), "task state");
        let rec = StatusRecord {
            state,
            trace,
            worker_id: self.worker_id.clone(),
            generation: self.generation.load(Ordering::Relaxed),
        };
        self.stores.put_status(store::task_status_key(id), Some(&rec));
    }
}

/// What this worker runs now (the group loop's own state).
#[derive(Default)]
struct Local {
    /// Owned connectors: the config and target state their status was written for.
    connectors: HashMap<String, (Props, TargetState)>,
    /// Owned running tasks: connector config, task config, target state.
    tasks: HashMap<TaskId, (Props, Props, TargetState)>,
}

/// Runs the worker (see [`crate::run`]).
pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let membership = Membership::new(&config)?;
    let (stores, restarts) = Stores::open(config.clone()).await?;
    let generation = Arc::new(AtomicI32::new(-1));
    let writer = Arc::new(StatusWriter {
        stores: stores.clone(),
        worker_id: config.worker_id(),
        generation: generation.clone(),
    });
    let runtime = Runtime::new(config.clone(), writer).map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
    let kafka_cluster_id = stores.cluster_id().await.unwrap_or_default();
    let herder = Arc::new(Herder {
        config: config.clone(),
        stores: stores.clone(),
        runtime,
        group: RwLock::new(GroupState::default()),
        joined: watch::channel(false).0,
        rejoin: Notify::new(),
        kafka_cluster_id,
        generation,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping the worker");
        let _ = stop_tx.send(true);
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("REST listener {}: {e}", config.listen))?;
    tracing::info!(listen = %config.listen, url = config.advertised_url, "Kafka Connect REST API");
    let app = crate::rest::router(herder.clone());
    let mut rest_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        let stopping = async move {
            let _ = rest_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopping).await {
            tracing::error!("REST server: {e}");
        }
    });

    herder.clone().group_loop(membership, restarts, stop_rx).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    stores.close();
    tracing::info!("worker stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Herder {
    pub fn snapshot(&self) -> ConfigSnapshot {
        self.stores.snapshot.read().clone()
    }

    pub fn is_leader(&self) -> bool {
        let g = self.group.read();
        g.joined && g.assignment.leader == g.member_id
    }

    /// Waits (at most `timeout`) until this worker is a member with an assignment.
    pub async fn wait_joined(&self, timeout: Duration) -> bool {
        let mut rx = self.joined.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|j| *j)).await.is_ok_and(|r| r.is_ok())
    }

    pub fn is_joined(&self) -> bool {
        *self.joined.borrow()
    }

    fn set_joined(&self, joined: bool) {
        self.group.write().joined = joined;
        self.joined.send_replace(joined);
    }

    /// Writes a connector's status as this worker sees it.
    pub fn put_connector_status(&self, name: &str, state: State, trace: Option<String>) {
        let rec = StatusRecord {
            state,
            trace,
            worker_id: self.config.worker_id(),
            generation: self.generation.load(Ordering::Relaxed),
        };
        self.stores.put_status(store::connector_status_key(name), Some(&rec));
    }

    /// Asks the leader's loop to look at the config topic again and rebalance if needed.
    pub fn request_rejoin(&self) {
        self.rejoin.notify_one();
    }

    /// The group loop: join, sync, apply, heartbeat; rejoin on a
    /// rebalance; leave and stop everything on `stop`.
    async fn group_loop(
        self: Arc<Self>,
        mut m: Membership,
        mut restarts: mpsc::Receiver<RestartRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut local = Local::default();
        // the leader: connector -> (config offset, stopped) whose task configs it generated
        let mut reconciled: HashMap<String, (i64, bool)> = HashMap::new();
        let mut last_leader = false;
        let heartbeat_every = Duration::from_millis(self.config.heartbeat_interval_ms);
        'member: while !*stop.borrow() {
            let meta = MemberMetadata {
                url: self.config.advertised_url.clone(),
                config_offset: self.stores.snapshot.read().offset,
            };
            let joined = tokio::select! {
                r = m.join(&meta) => r,
                _ = stop.wait_for(|s| *s) => break 'member,
            };
            let joined = match joined {
                Ok(j) => j,
                Err(e) => {
                    self.group_error("JoinGroup", &mut m, &e);
                    tokio::select! {
                        _ = tokio::time::sleep(REJOIN_BACKOFF) => {}
                        _ = stop.wait_for(|s| *s) => break 'member,
                    }
                    continue;
                }
            };
            let leader = joined.leader == joined.member_id;
            let was_leader = std::mem::replace(&mut last_leader, leader);
            let assignments = if leader {
                let wanted = joined.members.values().map(|m| m.config_offset).max().unwrap_or(0);
                if !self.stores.read_config_to_end(CONFIG_CATCH_UP).await
                    || !self.stores.wait_config(wanted, CONFIG_CATCH_UP).await
                {
                    tracing::warn!("the leader could not read the config topic to its end; assigning what it read");
                }
                if !was_leader {
                    // a new leader looks at every connector once
                    reconciled.clear();
                }
                self.reconcile(&mut reconciled).await;
                let snap = self.snapshot();
                tracing::info!(
                    generation = joined.generation,
                    members = joined.members.len(),
                    connectors = snap.connectors.len(),
                    "leader: assigning"
                );
                cluster::assign(&joined.members, &snap.view(), &joined.member_id, snap.offset)
            } else {
                BTreeMap::new()
            };
            let assignment = match m.sync(&assignments).await {
                Ok(a) => a,
                Err(e) => {
                    self.group_error("SyncGroup", &mut m, &e);
                    continue;
                }
            };
            if !self.stores.wait_config(assignment.config_offset, CONFIG_CATCH_UP).await {
                tracing::warn!(
                    offset = assignment.config_offset,
                    "could not read the config topic up to the assignment's offset"
                );
            }
            tracing::info!(
                generation = joined.generation,
                member = joined.member_id,
                leader,
                connectors = ?assignment.connectors,
                tasks = ?assignment.tasks,
                "joined the worker group"
            );
            self.generation.store(joined.generation, Ordering::Relaxed);
            {
                let mut g = self.group.write();
                g.member_id = joined.member_id.clone();
                g.generation = joined.generation;
                g.assignment = assignment.clone();
            }
            self.set_joined(true);
            self.apply(&mut local).await;

            let assigned_view = view_of(&assignment);
            let mut heartbeat = tokio::time::interval(heartbeat_every);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut position = self.stores.config_position.clone();
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break 'member,
                    _ = heartbeat.tick() => {
                        if let Err(e) = m.heartbeat().await {
                            self.group_error("Heartbeat", &mut m, &e);
                            break;
                        }
                    }
                    changed = position.changed() => {
                        if changed.is_err() {
                            break 'member;
                        }
                        if leader {
                            self.reconcile(&mut reconciled).await;
                            if self.snapshot().view() != assigned_view {
                                tracing::info!("the connectors or their tasks changed: rebalancing");
                                break;
                            }
                        }
                        self.apply(&mut local).await;
                    }
                    Some(r) = restarts.recv() => self.restart(&mut local, r).await,
                    _ = self.rejoin.notified() => {
                        if leader && self.snapshot().view() != assigned_view {
                            break;
                        }
                    }
                }
            }
            // eager protocol: give everything up before joining again
            self.set_joined(false);
            self.runtime.stop_all().await;
            local = Local::default();
        }
        self.set_joined(false);
        m.leave().await;
        self.runtime.stop_all().await;
        // what this worker ran is nobody's until the next assignment (as Connect writes on shutdown)
        for name in local.connectors.keys() {
            self.put_connector_status(name, State::Unassigned, None);
        }
        for id in local.tasks.keys() {
            self.put_task_status(id, State::Unassigned, None);
        }
    }

    fn group_error(&self, what: &str, m: &mut Membership, e: &GroupError) {
        match e {
            GroupError::Code(cluster::REBALANCE_IN_PROGRESS) => tracing::info!("{what}: the group is rebalancing"),
            _ => tracing::warn!("{what}: {e}"),
        }
        m.on_error(e);
    }

    /// The leader: task configs for every connector whose config (or
    /// STOPPED state) changed since it last looked.
    async fn reconcile(&self, reconciled: &mut HashMap<String, (i64, bool)>) {
        let snap = self.snapshot();
        reconciled.retain(|name, _| snap.connectors.contains_key(name));
        for (name, props) in &snap.connectors {
            let offset = snap.connector_offsets.get(name).copied().unwrap_or(-1);
            let stopped = snap.target(name) == TargetState::Stopped;
            if reconciled.get(name) == Some(&(offset, stopped)) {
                continue;
            }
            reconciled.insert(name.clone(), (offset, stopped));
            if stopped {
                if snap.task_count(name) > 0 {
                    self.write_or_log(&format!("commit-{name}"), Some(json!({"tasks": 0}))).await;
                }
                continue;
            }
            let configs = match generate_task_configs(props).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(connector = name, "no task configs: {e}");
                    continue;
                }
            };
            if snap.tasks.get(name) == Some(&configs) {
                continue;
            }
            tracing::info!(connector = name, tasks = configs.len(), "writing task configs");
            for (i, c) in configs.iter().enumerate() {
                self.write_or_log(&format!("task-{name}-{i}"), Some(json!({ "properties": c }))).await;
            }
            self.write_or_log(&format!("commit-{name}"), Some(json!({"tasks": configs.len()}))).await;
        }
    }

    async fn write_or_log(&self, key: &str, value: Option<serde_json::Value>) {
        if let Err(e) = self.stores.write_config(key, value).await {
            tracing::error!("{e:#}");
        }
    }

    /// Makes the runtime and the connector statuses match the assignment
    /// and the config topic.
    async fn apply(&self, local: &mut Local) {
        let snap = self.snapshot();
        let assignment = self.group.read().assignment.clone();
        // connectors
        local.connectors.retain(|name, _| assignment.connectors.contains(name));
        for name in &assignment.connectors {
            let Some(props) = snap.connectors.get(name) else {
                local.connectors.remove(name);
                continue;
            };
            let target = snap.target(name);
            if local.connectors.get(name) == Some(&(props.clone(), target)) {
                continue;
            }
            let (state, trace) = match target {
                TargetState::Paused => (State::Paused, None),
                TargetState::Stopped => (State::Stopped, None),
                TargetState::Started => match generate_task_configs(props).await {
                    Ok(_) => (State::Running, None),
                    Err(e) => (State::Failed, Some(e)),
                },
            };
            tracing::info!(connector = name, state = state.name(), "connector state");
            self.put_connector_status(name, state, trace);
            local.connectors.insert(name.clone(), (props.clone(), target));
        }
        // tasks
        let mut wanted: HashMap<TaskId, (Props, Props, TargetState)> = HashMap::new();
        for id in assignment.task_ids() {
            let target = snap.target(&id.connector);
            let (Some(cp), Some(tp)) = (
                snap.connectors.get(&id.connector),
                snap.tasks.get(&id.connector).and_then(|t| t.get(id.task as usize)),
            ) else {
                continue;
            };
            if target != TargetState::Stopped {
                wanted.insert(id, (cp.clone(), tp.clone(), target));
            }
        }
        let running: Vec<TaskId> = local.tasks.keys().cloned().collect();
        for id in running {
            let keep = match (local.tasks.get(&id), wanted.get(&id)) {
                (Some(have), Some(want)) => have.0 == want.0 && have.1 == want.1,
                _ => false,
            };
            if !keep {
                tracing::info!(task = %id, "stopping task");
                self.runtime.stop_task(&id).await;
                local.tasks.remove(&id);
            }
        }
        let mut ids: Vec<&TaskId> = wanted.keys().collect();
        ids.sort();
        for id in ids {
            let (cp, tp, target) = &wanted[id];
            match local.tasks.get(id) {
                Some(have) if have.2 != *target => {
                    self.runtime.set_target_state(&id.connector, *target);
                    local.tasks.insert(id.clone(), wanted[id].clone());
                }
                Some(_) => {}
                None => {
                    self.start_task(id, cp, tp, *target).await;
                    local.tasks.insert(id.clone(), wanted[id].clone());
                }
            }
        }
    }

    async fn start_task(&self, id: &TaskId, cp: &Props, tp: &Props, target: TargetState) {
        tracing::info!(task = %id, target = target.name(), "starting task");
        if let Err(e) = self.runtime.start_task(id.clone(), cp.clone(), tp.clone(), target).await {
            tracing::warn!(task = %id, "task failed to start: {e}");
            self.put_task_status(id, State::Failed, Some(e.to_string()));
        }
    }

    /// Restarts a task this worker runs (REST `/tasks/N/restart`).
    pub async fn restart_local_task(&self, id: &TaskId) -> bool {
        let snap = self.snapshot();
        let (Some(cp), Some(tp)) =
            (snap.connectors.get(&id.connector), snap.tasks.get(&id.connector).and_then(|t| t.get(id.task as usize)))
        else {
            return false;
        };
        let target = snap.target(&id.connector);
        if target == TargetState::Stopped || !self.group.read().assignment.task_ids().contains(id) {
            return false;
        }
        self.start_task(id, cp, tp, target).await;
        true
    }

    /// A `restart-connector-NAME` record: restart what this worker owns of it.
    async fn restart(&self, local: &mut Local, r: RestartRequest) {
        let assignment = self.group.read().assignment.clone();
        let failed = |key: String| self.stores.status(&key).is_some_and(|s| s.state == State::Failed);
        if assignment.connectors.contains(&r.connector)
            && (!r.only_failed || failed(store::connector_status_key(&r.connector)))
        {
            tracing::info!(connector = r.connector, "restarting connector");
            local.connectors.remove(&r.connector);
        }
        if r.include_tasks {
            for id in assignment.task_ids().into_iter().filter(|t| t.connector == r.connector) {
                if r.only_failed && !failed(store::task_status_key(&id)) {
                    continue;
                }
                if let Some((cp, tp, target)) = local.tasks.get(&id).cloned() {
                    self.put_task_status(&id, State::Restarting, None);
                    self.start_task(&id, &cp, &tp, target).await;
                }
            }
        }
        self.apply(local).await;
    }

    fn put_task_status(&self, id: &TaskId, state: State, trace: Option<String>) {
        let rec = StatusRecord {
            state,
            trace,
            worker_id: self.config.worker_id(),
            generation: self.generation.load(Ordering::Relaxed),
        };
        self.stores.put_status(store::task_status_key(id), Some(&rec));
    }
}

/// Connector name -> task count of an assignment (all members).
fn view_of(a: &Assignment) -> BTreeMap<String, usize> {
    let mut view: BTreeMap<String, usize> = BTreeMap::new();
    for share in a.all.values() {
        for c in &share.connectors {
            view.entry(c.clone()).or_default();
        }
    }
    for share in a.all.values() {
        for (c, _) in &share.tasks {
            *view.entry(c.clone()).or_default() += 1;
        }
    }
    view
}

/// The plugin's task configs for a connector config (`tasks.max` of them at most).
pub async fn generate_task_configs(props: &Props) -> Result<Vec<Props>, String> {
    let class = props.get("connector.class").map(String::as_str).unwrap_or("");
    let plugin = connectors::find(class).ok_or_else(|| crate::rest::class_not_found(class))?;
    let max = props.int_or("tasks.max", 1).map_err(|e| e.to_string())?.max(1) as usize;
    let configs = plugin.task_configs(props, max).await.map_err(|e| e.to_string())?;
    Ok(configs.into_iter().take(max).collect())
}
