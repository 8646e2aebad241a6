//! The partitions this broker hosts, by topic id and index, and their
//! directories under the data dir (`<topic>-<partition>`, as in Kafka).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;
use vltava_metadata::{MetadataImage, TopicImage};
use vltava_storage::LogConfig;

use crate::partition::Partition;
use crate::topic_config::get_i64;

pub struct ReplicaManager {
    data_dir: PathBuf,
    log_defaults: LogConfig,
    partitions: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
}

/// Suffix of a partition directory queued for deletion.
const DELETE_SUFFIX: &str = "-delete";

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl ReplicaManager {
    pub fn new(data_dir: PathBuf, log_defaults: LogConfig) -> Self {
        Self { data_dir, log_defaults, partitions: RwLock::new(HashMap::new()) }
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

    /// The broker's log defaults overlaid with the topic's own configs.
    fn log_config(&self, topic: &TopicImage) -> LogConfig {
        let mut config = self.log_defaults.clone();
        let get = |key| get_i64(&topic.configs, key).filter(|v| *v > 0).map(|v| v as u64);
        config.segment_bytes = get("segment.bytes").unwrap_or(config.segment_bytes);
        config.segment_ms = get("segment.ms").unwrap_or(config.segment_ms);
        config.index_interval_bytes = get("index.interval.bytes").unwrap_or(config.index_interval_bytes);
        config.segment_index_bytes = get("segment.index.bytes").unwrap_or(config.segment_index_bytes);
        config
    }

    /// Opens (creating as needed) the logs of every partition of `topic`.
    pub fn open_topic(&self, topic: &TopicImage, recover: bool) -> anyhow::Result<()> {
        for p in &topic.partitions {
            let dir = partition_dir(&self.data_dir, &topic.name, p.partition);
            let partition = Partition::open(
                &topic.name,
                topic.topic_id,
                p.partition,
                &dir,
                self.log_config(topic),
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
