//! The immutable metadata image that records are applied to.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::record::MetadataRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionImage>,
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

/// State after applying every record up to `offset` (exclusive).
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub offset: u64,
    topics: BTreeMap<String, Arc<TopicImage>>,
    names_by_id: HashMap<Uuid, String>,
    /// The next producer id no broker has been given yet.
    pub next_producer_id: i64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics.values()
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Applies `records` and returns the next image. Records that refer to
    /// unknown topics are ignored with a warning: the controller validates
    /// before appending, so this only happens on a damaged log.
    pub fn apply(&self, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = self.clone();
        for record in records {
            next.apply_one(record);
        }
        next.offset = self.offset + records.len() as u64;
        next
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.names_by_id.get(id)?;
        self.topics.get_mut(name).map(Arc::make_mut)
    }

    fn apply_one(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                self.names_by_id.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition { topic_id, partition, replicas, isr, leader, leader_epoch, partition_epoch } => {
                let Some(topic) = self.topic_mut(topic_id) else {
                    tracing::warn!(%topic_id, partition, "partition record for unknown topic ignored");
                    return;
                };
                let image = PartitionImage {
                    partition: *partition,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                };
                match topic.partitions.iter_mut().find(|p| p.partition == *partition) {
                    Some(existing) => *existing = image,
                    None => {
                        topic.partitions.push(image);
                        topic.partitions.sort_by_key(|p| p.partition);
                    }
                }
            }
            MetadataRecord::TopicConfig { topic_id, key, value } => {
                let Some(topic) = self.topic_mut(topic_id) else {
                    return;
                };
                match value {
                    Some(v) => topic.configs.insert(key.clone(), v.clone()),
                    None => topic.configs.remove(key),
                };
            }
            MetadataRecord::ProducerIds { next_producer_id, .. } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_create_config_remove() {
        let id = Uuid::new_v4();
        let img = MetadataImage::default().apply(&[
            MetadataRecord::Topic { name: "t".into(), topic_id: id },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 1,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
            MetadataRecord::TopicConfig { topic_id: id, key: "retention.ms".into(), value: Some("1000".into()) },
        ]);
        let t = img.topic("t").unwrap();
        assert_eq!(t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(img.topic_by_id(&id).unwrap().name, "t");
        let img2 = img.apply(&[MetadataRecord::RemoveTopic { topic_id: id }]);
        assert!(img2.topic("t").is_none());
        assert!(img.topic("t").is_some(), "old images are immutable");
    }
}
