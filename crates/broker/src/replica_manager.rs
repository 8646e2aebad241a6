//! The partitions this broker hosts, by topic id and index, and their
//! directories under the data dir (`<topic>-<partition>`, as in Kafka).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;
use vltava_metadata::{MetadataImage, TopicImage};

use crate::partition::Partition;
use crate::topic_config;

pub struct ReplicaManager {
    data_dir: PathBuf,
    broker_static: std::collections::BTreeMap<String, String>,
    partitions: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
}

/// Suffix of a partition directory queued for deletion.
const DELETE_SUFFIX: &str = "-delete";

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl ReplicaManager {
    pub fn new(data_dir: PathBuf, broker_static: std::collections::BTreeMap<String, String>) -> Self {
        Self { data_dir, broker_static, partitions: RwLock::new(HashMap::new()) }
    }

    pub fn get(&self, topic_id: &Uuid, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&(*topic_id, partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Opens every partition of the image (recovering logs after an unclean
    /// shutdown) and removes directories no topic owns any more.
    pub fn load(&self, image: &MetadataImage, recover: bool) -> anyhow::Result<()> {
        let mut owned = std::collections::HashSet::new();
        for topic in image.topics() {
            for p in &topic.partitions {
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

    /// Opens (creating as needed) the logs of every partition of `topic`.
    pub fn open_topic(&self, topic: &TopicImage, recover: bool) -> anyhow::Result<()> {
        let settings = Arc::new(self.settings(topic));
        for p in &topic.partitions {
            if self.get(&topic.topic_id, p.partition).is_some() {
                continue; // already open (a topic that grew)
            }
            let dir = partition_dir(&self.data_dir, &topic.name, p.partition);
            let partition = Partition::open(
                &topic.name,
                topic.topic_id,
                p.partition,
                &dir,
                settings.clone(),
                recover,
                p.leader_epoch,
            )?;
            self.partitions.write().insert((topic.topic_id, p.partition), Arc::new(partition));
        }
        Ok(())
    }

    /// Stops serving a topic's partitions and deletes their data in the
    /// background (readers holding a segment keep it until they finish).
    pub fn delete_topic(&self, topic: &TopicImage) {
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write();
            topic.partitions.iter().filter_map(|p| map.remove(&(topic.topic_id, p.partition))).collect()
        };
        for partition in removed {
            let dir = partition_dir(&self.data_dir, &partition.topic, partition.index);
            let doomed = self.data_dir.join(format!(
                "{}-{}.{}{DELETE_SUFFIX}",
                partition.topic,
                partition.index,
                topic.topic_id.simple()
            ));
            if let Err(e) = std::fs::rename(&dir, &doomed) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not rename deleted partition directory");
                continue;
            }
            tokio::task::spawn_blocking(move || {
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
