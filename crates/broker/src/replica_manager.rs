//! The partitions this broker hosts, by topic id and index, and their
//! directories under the data dir (`<topic>-<partition>`, as in Kafka).
//! [`ReplicaManager::reconcile`] makes them match each new metadata image:
//! opens the replicas assigned here, gives each its role (leader, or
//! follower fetching from the leader), and deletes the ones no longer
//! assigned here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;
use vltava_metadata::{MetadataImage, TopicImage};
use vltava_storage::LogDir;

use crate::partition::{Partition, RoleChange};
use crate::topic_config;
use crate::Broker;

pub struct ReplicaManager {
    node_id: i32,
    data_dir: PathBuf,
    /// The one log directory (`log.dirs`); its failure takes every
    /// partition here offline.
    log_dir: Arc<LogDir>,
    broker_static: std::collections::BTreeMap<String, String>,
    partitions: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
    /// The image the partitions were last reconciled with.
    last_image: parking_lot::Mutex<Option<Arc<MetadataImage>>>,
}

/// Suffix of a partition directory queued for deletion.
const DELETE_SUFFIX: &str = "-delete";

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl ReplicaManager {
    pub fn new(node_id: i32, data_dir: PathBuf, broker_static: std::collections::BTreeMap<String, String>) -> Self {
        Self {
            node_id,
            log_dir: LogDir::new(&data_dir),
            data_dir,
            broker_static,
            partitions: RwLock::new(HashMap::new()),
            last_image: parking_lot::Mutex::new(None),
        }
    }

    pub fn log_dir(&self) -> &Arc<LogDir> {
        &self.log_dir
    }

    pub fn get(&self, topic_id: &Uuid, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&(*topic_id, partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Opens every partition of the image assigned to this node
    /// (recovering logs after an unclean shutdown) and removes directories
    /// no topic owns here any more.
    pub fn load(&self, image: &MetadataImage, recover: bool) -> anyhow::Result<()> {
        let mut owned = std::collections::HashSet::new();
        for topic in image.topics() {
            for p in topic.partitions.iter().filter(|p| p.replicas.contains(&self.node_id)) {
                owned.insert(format!("{}-{}", topic.name, p.partition));
            }
            self.open_topic(topic, recover)?;
        }
        for entry in std::fs::read_dir(&self.data_dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !entry.file_type()?.is_dir() || name.starts_with("__cluster_metadata") {
                continue;
            }
            let is_partition_dir =
                name.rsplit_once('-').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if name.ends_with(DELETE_SUFFIX) || (is_partition_dir && !owned.contains(&name)) {
                tracing::info!(dir = %name, "removing directory of a deleted topic");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// The topic's effective settings (its configs over the broker's).
    pub fn settings(&self, topic: &TopicImage) -> topic_config::TopicSettings {
        topic_config::settings(&topic.configs, &self.broker_static)
    }

    /// Applies a topic's changed configs to its open partitions.
    pub fn reconfigure(&self, topic: &TopicImage) {
        let settings = Arc::new(self.settings(topic));
        for p in &topic.partitions {
            if let Some(partition) = self.get(&topic.topic_id, p.partition) {
                partition.set_settings(settings.clone());
            }
        }
    }

    /// Opens (creating as needed) the logs of the partitions of `topic`
    /// assigned to this node.
    pub fn open_topic(&self, topic: &TopicImage, recover: bool) -> anyhow::Result<()> {
        let settings = Arc::new(self.settings(topic));
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
        let partition = Arc::new(Partition::open(
            &topic.name,
            topic.topic_id,
            index,
            &self.log_dir,
            settings.clone(),
            recover,
            self.node_id,
        )?);
        self.partitions.write().insert((topic.topic_id, index), partition.clone());
        Ok(partition)
    }

    /// Makes the hosted partitions match `image`: runs on the metadata
    /// quorum's thread after every applied change.
    pub fn reconcile(&self, broker: &Arc<Broker>, image: &Arc<MetadataImage>) {
        let previous = self.last_image.lock().replace(image.clone());
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
                self.reconfigure(topic);
            }
            let settings = Arc::new(self.settings(topic));
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
    }

    /// Deletes the data of partitions no longer hosted here, in the
    /// background (readers holding a segment keep it until they finish).
    fn delete_partitions(&self, runtime: &tokio::runtime::Handle, removed: Vec<Arc<Partition>>) {
        for partition in removed {
            let dir = partition_dir(&self.data_dir, &partition.topic, partition.index);
            let doomed = self.data_dir.join(format!(
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

    /// Clean shutdown of every log.
    pub fn close_all(&self) -> anyhow::Result<()> {
        for partition in self.all() {
            partition.close()?;
        }
        Ok(())
    }
}
