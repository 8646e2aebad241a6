//! The partitions this broker hosts, by topic id and index, and their
//! directories (`<topic>-<partition>`, as in Kafka) in one of the log
//! directories (`log.dirs`, JBOD): a new replica goes to the online
//! directory hosting the fewest partitions, an existing one is opened where
//! it is. Each directory fails alone (its `LogDir` latch): its partitions
//! answer KAFKA_STORAGE_ERROR, the others go on.
//! [`ReplicaManager::reconcile`] makes them match each new metadata image:
//! opens the replicas assigned here, gives each its role (leader, or
//! follower fetching from the leader), and deletes the ones no longer
//! assigned here.
//!
//! Nothing is deleted on doubt. A start never removes a partition directory
//! the replayed metadata does not know: only an image that has this
//! process's registration (so the quorum has confirmed everything before
//! it) decides that a directory is not ours, and then it is renamed
//! `<topic>-<partition>.<id>-stray` (as in Kafka) and deleted after
//! `log.segment.delete.delay.ms`. So is a directory holding another topic's data
//! (`partition.metadata` names a different topic id: a topic deleted and
//! re-created while this node was away).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use uuid::Uuid;
use vltava_metadata::{MetadataImage, TopicImage};
use vltava_storage::{partition_metadata, LogDir, Recovery};

use crate::partition::{Partition, RoleChange};
use crate::topic_config;
use crate::Broker;

pub struct ReplicaManager {
    node_id: i32,
    /// The log directories (`log.dirs`), the first one first.
    log_dirs: Vec<Arc<LogDir>>,
    broker_static: std::collections::BTreeMap<String, String>,
    partitions: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
    /// The image the partitions were last reconciled with.
    last_image: parking_lot::Mutex<Option<Arc<MetadataImage>>>,
    /// Stray directories (renamed) whose deletion is not scheduled yet.
    strays: parking_lot::Mutex<Vec<PathBuf>>,
    /// Whether the directories the confirmed metadata does not assign here
    /// were looked for (once, at the first image with our registration).
    strays_checked: AtomicBool,
    /// `log.segment.delete.delay.ms`
    stray_delete_delay: Duration,
    /// Recovery points read from the checkpoint at start (each partition's
    /// recovery after an unclean shutdown starts there).
    recovery_points: parking_lot::Mutex<HashMap<(String, i32), i64>>,
    /// Replicas moving to another log directory now.
    moving: Arc<parking_lot::Mutex<HashSet<(Uuid, i32)>>>,
}

/// Kafka's file of every partition's recovery point in a log directory
/// (`0`, count, then `topic partition offset` lines).
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// Suffix of a partition directory queued for deletion.
const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a partition directory the metadata does not assign here.
const STRAY_SUFFIX: &str = "-stray";

/// Whether a data dir entry is named like a partition directory
/// (`<topic>-<partition>`).
fn is_partition_dir_name(name: &str) -> bool {
    !name.starts_with("__cluster_metadata")
        && name.rsplit_once('-').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl ReplicaManager {
    pub fn new(
        node_id: i32,
        data_dirs: &[PathBuf],
        broker_static: std::collections::BTreeMap<String, String>,
        stray_delete_delay: Duration,
    ) -> Self {
        Self {
            node_id,
            log_dirs: data_dirs.iter().map(LogDir::new).collect(),
            broker_static,
            partitions: RwLock::new(HashMap::new()),
            last_image: parking_lot::Mutex::new(None),
            strays: parking_lot::Mutex::new(Vec::new()),
            strays_checked: AtomicBool::new(false),
            stray_delete_delay,
            recovery_points: parking_lot::Mutex::new(HashMap::new()),
            moving: Arc::new(parking_lot::Mutex::new(HashSet::new())),
        }
    }

    /// The log directory at `path` (as a client names it: canonical or as
    /// configured).
    pub fn log_dir_at(&self, path: &str) -> Option<Arc<LogDir>> {
        let wanted = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
        self.log_dirs
            .iter()
            .find(|d| d.path() == Path::new(path) || std::fs::canonicalize(d.path()).is_ok_and(|c| c == wanted))
            .cloned()
    }

    /// Starts moving `partition` to `target` in the background
    /// (AlterReplicaLogDirs); nothing when it is there already or moving.
    pub fn move_replica(&self, runtime: &tokio::runtime::Handle, partition: Arc<Partition>, target: Arc<LogDir>) {
        if Arc::ptr_eq(&partition.log_dir(), &target) {
            return;
        }
        if !self.moving.lock().insert((partition.topic_id, partition.index)) {
            return;
        }
        let started = std::time::Instant::now();
        let moving = partition.clone();
        let doomed_name = format!("{}-{}.{}{DELETE_SUFFIX}", partition.topic, partition.index, Uuid::new_v4().simple());
        let done = runtime.spawn_blocking(move || {
            let result = crate::log_mover::move_replica(&moving, &target, &doomed_name);
            (moving, target, result)
        });
        let manager_moves = self.moving.clone();
        runtime.spawn(async move {
            let Ok((partition, target, result)) = done.await else { return };
            manager_moves.lock().remove(&(partition.topic_id, partition.index));
            match result {
                Ok(doomed) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, dir = %target.path().display(), ms = started.elapsed().as_millis() as u64, "moved replica to another log directory");
                    let removed = tokio::task::spawn_blocking(move || {
                        std::fs::remove_dir_all(&doomed).map_err(|e| (doomed, e))
                    });
                    if let Ok(Err((doomed, e))) = removed.await {
                        tracing::warn!(dir = %doomed.display(), error = %e, "could not remove the moved replica's old directory");
                    }
                }
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, dir = %target.path().display(), error = %e, "moving replica to another log directory failed; it stays where it was")
                }
            }
        });
    }

    /// Every log directory, the first (`meta.properties`, the metadata
    /// log) first.
    pub fn log_dirs(&self) -> &[Arc<LogDir>] {
        &self.log_dirs
    }

    /// Where a partition's directory is: the log directory that has it, or
    /// for a new one the online directory hosting the fewest partitions.
    fn place(&self, topic: &str, index: i32) -> anyhow::Result<Arc<LogDir>> {
        if let Some(found) = self.log_dirs.iter().find(|d| partition_dir(d.path(), topic, index).is_dir()) {
            return Ok(found.clone());
        }
        let hosted = self.partitions.read();
        let load = |dir: &Arc<LogDir>| hosted.values().filter(|p| Arc::ptr_eq(&p.log_dir(), dir)).count();
        self.log_dirs
            .iter()
            .filter(|d| !d.is_offline())
            .min_by_key(|d| load(d))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("every log directory is offline"))
    }

    pub fn get(&self, topic_id: &Uuid, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&(*topic_id, partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Opens every partition of the image assigned to this node
    /// (recovering logs after an unclean shutdown) and finishes the
    /// deletions the quorum committed (`-delete` directories). Directories
    /// the replayed metadata does not assign here are left alone: that
    /// image may be behind the quorum's.
    pub fn load(&self, image: &MetadataImage, recover: bool) -> anyhow::Result<()> {
        if recover {
            let mut points = self.recovery_points.lock();
            for dir in &self.log_dirs {
                // a replica moved between directories may be in two files:
                // the lower point re-validates more, never less
                for (key, point) in read_recovery_points(&dir.path().join(RECOVERY_POINT_CHECKPOINT)) {
                    points.entry(key).and_modify(|p| *p = (*p).min(point)).or_insert(point);
                }
            }
        }
        for topic in image.topics() {
            self.open_topic(topic, image, recover)?;
        }
        for dir in &self.log_dirs {
            for entry in std::fs::read_dir(dir.path())? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                if name.ends_with(DELETE_SUFFIX) {
                    tracing::info!(dir = %name, "removing directory of a deleted topic");
                    std::fs::remove_dir_all(entry.path())?;
                } else if name.ends_with(crate::log_mover::FUTURE_SUFFIX) {
                    tracing::info!(dir = %name, "removing an unfinished move to this log directory");
                    std::fs::remove_dir_all(entry.path())?;
                } else if name.ends_with(STRAY_SUFFIX) {
                    tracing::warn!(dir = %name, "stray partition directory: deleted once the quorum confirms it");
                    self.strays.lock().push(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Renames a partition directory that is not (or no longer) ours to
    /// `<name>.<id>-stray` and queues its deletion.
    fn make_stray(&self, dir: &Path, why: &str) -> std::io::Result<()> {
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let parent = dir.parent().unwrap_or(dir);
        let stray = parent.join(format!("{name}.{}{STRAY_SUFFIX}", Uuid::new_v4().simple()));
        std::fs::rename(dir, &stray)?;
        vltava_storage::atomic_file::sync_dir(parent).map_err(std::io::Error::other)?;
        tracing::warn!(dir = %name, stray = %stray.display(), why, "moved a stray partition directory aside");
        self.strays.lock().push(stray);
        Ok(())
    }

    /// At the first image confirmed by the quorum: every partition
    /// directory it does not assign here becomes stray.
    fn find_strays(&self, wanted: &HashSet<String>) {
        if self.strays_checked.swap(true, Ordering::AcqRel) {
            return;
        }
        let entries = self.log_dirs.iter().filter_map(|d| std::fs::read_dir(d.path()).ok()).flatten();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && is_partition_dir_name(&name) && !wanted.contains(&name) {
                if let Err(e) = self.make_stray(&entry.path(), "the metadata does not assign this partition here") {
                    tracing::error!(dir = %name, error = %e, "cannot move a stray partition directory aside");
                }
            }
        }
    }

    /// Deletes the queued stray directories after `log.segment.delete.delay.ms`.
    fn schedule_stray_deletion(&self, runtime: &tokio::runtime::Handle) {
        let delay = self.stray_delete_delay;
        for stray in self.strays.lock().drain(..) {
            runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                let removed = tokio::task::spawn_blocking(move || {
                    let result = std::fs::remove_dir_all(&stray);
                    (stray, result)
                })
                .await;
                match removed {
                    Ok((stray, Ok(()))) => tracing::info!(dir = %stray.display(), "deleted stray partition directory"),
                    Ok((stray, Err(e))) => {
                        tracing::warn!(dir = %stray.display(), error = %e, "could not delete stray partition directory")
                    }
                    Err(e) => tracing::warn!(error = %e, "stray deletion task failed"),
                }
            });
        }
    }

    /// The broker-level configs of this node in `image`: its own dynamic
    /// ones, the cluster-wide dynamic default, the static ones.
    pub fn broker_levels<'a>(&'a self, image: &'a MetadataImage) -> topic_config::BrokerLevels<'a> {
        topic_config::BrokerLevels {
            dynamic: image.broker_configs(&self.node_id.to_string()),
            dynamic_default: image.broker_configs(""),
            statics: &self.broker_static,
        }
    }

    /// The topic's effective settings (its configs over the broker's).
    pub fn settings(&self, topic: &TopicImage, image: &MetadataImage) -> topic_config::TopicSettings {
        topic_config::settings(&topic.configs, self.broker_levels(image))
    }

    /// Applies a topic's changed configs to its open partitions.
    pub fn reconfigure(&self, topic: &TopicImage, image: &MetadataImage) {
        let settings = Arc::new(self.settings(topic, image));
        for p in &topic.partitions {
            if let Some(partition) = self.get(&topic.topic_id, p.partition) {
                partition.set_settings(settings.clone());
            }
        }
    }

    /// Opens (creating as needed) the logs of the partitions of `topic`
    /// assigned to this node.
    pub fn open_topic(&self, topic: &TopicImage, image: &MetadataImage, recover: bool) -> anyhow::Result<()> {
        let settings = Arc::new(self.settings(topic, image));
        for p in topic.partitions.iter().filter(|p| p.replicas.contains(&self.node_id)) {
            self.open_partition(topic, p.partition, &settings, recover)?;
        }
        Ok(())
    }

    fn open_partition(
        &self,
        topic: &TopicImage,
        index: i32,
        settings: &Arc<topic_config::TopicSettings>,
        recover: bool,
    ) -> anyhow::Result<Arc<Partition>> {
        if let Some(open) = self.get(&topic.topic_id, index) {
            return Ok(open);
        }
        let log_dir = self.place(&topic.name, index)?;
        let dir = partition_dir(log_dir.path(), &topic.name, index);
        let topic_id = *topic.topic_id.as_bytes();
        if dir.is_dir() {
            match partition_metadata::read_topic_id(&dir) {
                Ok(Some(id)) if id != topic_id => self.make_stray(&dir, "it holds a partition of another topic id")?,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "unreadable partition.metadata");
                    self.make_stray(&dir, "its partition.metadata is unreadable")?
                }
            }
        }
        let recovery = match self.recovery_points.lock().get(&(topic.name.clone(), index)) {
            _ if !recover => Recovery::None,
            Some(point) => Recovery::From(*point),
            None => Recovery::All,
        };
        let partition = Arc::new(Partition::open(
            &topic.name,
            topic.topic_id,
            index,
            &log_dir,
            settings.clone(),
            recovery,
            self.node_id,
        )?);
        if partition_metadata::read_topic_id(&dir)?.is_none() {
            partition_metadata::write_topic_id(&dir, topic_id)?;
        }
        self.partitions.write().insert((topic.topic_id, index), partition.clone());
        Ok(partition)
    }

    /// Makes the hosted partitions match `image`: runs on the metadata
    /// quorum's thread after every applied change.
    pub fn reconcile(&self, broker: &Arc<Broker>, image: &Arc<MetadataImage>) {
        let previous = self.last_image.lock().replace(image.clone());
        if !self.strays_checked.load(Ordering::Acquire) {
            let wanted: HashSet<String> = image
                .topics()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.replicas.contains(&self.node_id))
                        .map(move |p| format!("{}-{}", t.name, p.partition))
                })
                .collect();
            self.find_strays(&wanted);
        }
        let node = self.node_id.to_string();
        let broker_configs_changed = previous.as_ref().is_some_and(|p| {
            p.broker_configs("") != image.broker_configs("") || p.broker_configs(&node) != image.broker_configs(&node)
        });
        if broker_configs_changed {
            // a dynamic broker config changed: every topic may fall back on it
            for topic in image.topics() {
                self.reconfigure(topic, image);
            }
        }
        let mut wanted = HashSet::new();
        for topic in image.topics() {
            let old = previous.as_ref().and_then(|p| p.topic_by_id(&topic.topic_id));
            if old.is_some_and(|old| Arc::ptr_eq(old, topic)) {
                // unchanged topic: its partitions are as they were
                wanted.extend(
                    topic
                        .partitions
                        .iter()
                        .filter(|p| p.replicas.contains(&self.node_id))
                        .map(|p| (topic.topic_id, p.partition)),
                );
                continue;
            }
            if old.is_some_and(|old| old.configs != topic.configs) {
                self.reconfigure(topic, image);
            }
            let settings = Arc::new(self.settings(topic, image));
            for p in topic.partitions.iter().filter(|p| p.replicas.contains(&self.node_id)) {
                wanted.insert((topic.topic_id, p.partition));
                let partition = match self.open_partition(topic, p.partition, &settings, false) {
                    Ok(partition) => partition,
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = p.partition, error = %e, "cannot open partition");
                        continue;
                    }
                };
                match partition.apply_state(p) {
                    RoleChange::BecameLeader => {
                        tracing::info!(topic = %topic.name, partition = p.partition, epoch = p.leader_epoch, isr = ?p.isr, "leading partition");
                        broker.fetchers.unfollow(&partition);
                        broker.on_leadership(&topic.name, p.partition, true);
                    }
                    RoleChange::BecameFollower { leader } => {
                        tracing::debug!(topic = %topic.name, partition = p.partition, leader, epoch = p.leader_epoch, "following partition");
                        broker.fetchers.follow(broker, partition.clone(), leader, p.leader_epoch);
                        broker.on_leadership(&topic.name, p.partition, false);
                    }
                    RoleChange::Updated | RoleChange::None => {}
                }
            }
        }
        let doomed: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write();
            let keys: Vec<(Uuid, i32)> = map.keys().filter(|k| !wanted.contains(*k)).copied().collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        for partition in &doomed {
            broker.fetchers.unfollow(partition);
            broker.on_leadership(&partition.topic, partition.index, false);
        }
        self.delete_partitions(&broker.runtime, doomed);
        self.schedule_stray_deletion(&broker.runtime);
    }

    /// Deletes the data of partitions no longer hosted here, in the
    /// background (readers holding a segment keep it until they finish).
    fn delete_partitions(&self, runtime: &tokio::runtime::Handle, removed: Vec<Arc<Partition>>) {
        for partition in removed {
            let dir = partition_dir(partition.log_dir().path(), &partition.topic, partition.index);
            let doomed = partition.log_dir().path().join(format!(
                "{}-{}.{}{DELETE_SUFFIX}",
                partition.topic,
                partition.index,
                partition.topic_id.simple()
            ));
            if let Err(e) = std::fs::rename(&dir, &doomed) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not rename deleted partition directory");
                continue;
            }
            runtime.spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&doomed) {
                    tracing::warn!(dir = %doomed.display(), error = %e, "could not remove deleted partition directory");
                }
            });
        }
    }

    /// Clean shutdown of every log in an online directory.
    pub fn close_all(&self) -> anyhow::Result<()> {
        for partition in self.all().iter().filter(|p| !p.is_offline()) {
            if let Err(e) = partition.close() {
                // its directory failed now: no clean-shutdown marker then
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "cannot close log");
            }
        }
        self.checkpoint_recovery_points()
    }

    /// Writes every partition's recovery point (Kafka's
    /// `recovery-point-offset-checkpoint`): after an unclean shutdown, each
    /// log is re-validated from there on.
    pub fn checkpoint_recovery_points(&self) -> anyhow::Result<()> {
        let hosted = self.all();
        for dir in self.log_dirs.iter().filter(|d| !d.is_offline()) {
            let mut points: Vec<(String, i32, i64)> = hosted
                .iter()
                .filter(|p| Arc::ptr_eq(&p.log_dir(), dir))
                .map(|p| (p.topic.clone(), p.index, p.recovery_point()))
                .collect();
            points.sort();
            let mut text = format!("0\n{}\n", points.len());
            for (topic, partition, offset) in &points {
                text.push_str(&format!("{topic} {partition} {offset}\n"));
            }
            let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
            let written = vltava_storage::atomic_file::write_atomically(&path, text.as_bytes());
            // a failed directory stops here; the others are checkpointed
            if let Err(e) = dir.latch(written) {
                tracing::error!(dir = %dir.path().display(), error = %e, "cannot checkpoint recovery points");
            }
        }
        Ok(())
    }
}

/// The recovery points of a checkpoint file (none when it is missing or
/// unreadable: then every segment is recovered).
fn read_recovery_points(path: &Path) -> HashMap<(String, i32), i64> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return HashMap::new();
    }
    lines
        .skip(1)
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (topic, partition, offset) = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
            Some(((topic.to_string(), partition), offset))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directories_are_told_from_the_rest() {
        assert!(is_partition_dir_name("orders-0"));
        assert!(is_partition_dir_name("my-topic-12"));
        assert!(!is_partition_dir_name("orders-0.0123abcd-stray"));
        assert!(!is_partition_dir_name("orders-0.0123abcd-delete"));
        assert!(!is_partition_dir_name("__cluster_metadata-0"));
        assert!(!is_partition_dir_name("orders-"));
        assert!(!is_partition_dir_name("meta.properties"));
    }

    #[test]
    fn recovery_points_round_trip_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        std::fs::write(&path, "0\n2\nmy-topic 3 1200\norders 0 7\n").unwrap();
        let points = read_recovery_points(&path);
        assert_eq!(points.get(&("my-topic".to_string(), 3)), Some(&1200));
        assert_eq!(points.get(&("orders".to_string(), 0)), Some(&7));
        // an unknown version or a missing file: no checkpoint (recover all)
        std::fs::write(&path, "1\n1\norders 0 7\n").unwrap();
        assert!(read_recovery_points(&path).is_empty());
        assert!(read_recovery_points(&dir.path().join("absent")).is_empty());
    }
}
