//! The local controller: validates topic changes, appends them to the
//! metadata log, and publishes the new metadata image. On a single node it
//! is a quorum of one; the cluster work puts Raft under the same records.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use uuid::Uuid;
use vltava_metadata::{MetadataImage, MetadataLog, MetadataRecord, TopicImage};
use vltava_protocol::ResponseError;

/// Longest legal topic name (Kafka's limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Upper bound on partitions per topic, so a request cannot make us open
/// millions of files.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// A refused change: Kafka's error code and a message for the client.
#[derive(Debug, Clone)]
pub struct ControllerError {
    pub error: ResponseError,
    pub message: String,
}

impl ControllerError {
    fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self { error, message: message.into() }
    }
}

/// Kafka's topic name rule: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let invalid = |why: &str| {
        Err(ControllerError::new(
            ResponseError::InvalidTopicException,
            format!("Topic name \"{name}\" is illegal, {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("it can't be empty");
    }
    if name == "." || name == ".." {
        return invalid("it can't be '.' or '..'");
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return invalid("it can't be longer than 249 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

pub struct TopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

pub struct Controller {
    node_id: i32,
    log: Mutex<MetadataLog>,
    image: RwLock<Arc<MetadataImage>>,
}

impl Controller {
    pub fn new(node_id: i32, log: MetadataLog, image: MetadataImage) -> Self {
        Self { node_id, log: Mutex::new(log), image: RwLock::new(Arc::new(image)) }
    }

    /// The current image; cheap, and stable for the caller's lifetime.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// Number of live brokers (a single node for now).
    pub fn broker_count(&self) -> usize {
        1
    }

    /// Checks a topic creation without doing it.
    pub fn validate_create(&self, spec: &TopicSpec) -> Result<(), ControllerError> {
        validate_topic_name(&spec.name)?;
        if self.image().topic(&spec.name).is_some() {
            return Err(ControllerError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", spec.name),
            ));
        }
        if spec.num_partitions < 1 || spec.num_partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(ControllerError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "Number of partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {}.",
                    spec.num_partitions
                ),
            ));
        }
        if spec.replication_factor < 1 {
            return Err(ControllerError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if spec.replication_factor as usize > self.broker_count() {
            return Err(ControllerError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only {} broker(s) are registered.", spec.replication_factor, spec.replication_factor, self.broker_count()),
            ));
        }
        crate::topic_config::validate(&spec.configs)
            .map_err(|m| ControllerError::new(ResponseError::InvalidConfig, m))?;
        Ok(())
    }

    /// Creates a topic: validated, appended to the metadata log as one
    /// batch (fsynced), then visible in the image.
    pub fn create_topic(&self, spec: &TopicSpec) -> Result<Arc<TopicImage>, ControllerError> {
        let mut log = self.log.lock();
        self.validate_create(spec)?;
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic { name: spec.name.clone(), topic_id }];
        for (key, value) in &spec.configs {
            records.push(MetadataRecord::TopicConfig { topic_id, key: key.clone(), value: Some(value.clone()) });
        }
        for partition in 0..spec.num_partitions {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition,
                replicas: vec![self.node_id],
                isr: vec![self.node_id],
                leader: self.node_id,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        self.commit(&mut log, &records)?;
        Ok(self.image().topic(&spec.name).cloned().expect("just created"))
    }

    /// Removes a topic; returns its last image so its data can be deleted.
    pub fn delete_topic(&self, topic_id: Uuid) -> Result<Arc<TopicImage>, ControllerError> {
        let mut log = self.log.lock();
        let topic = self.image().topic_by_id(&topic_id).cloned().ok_or_else(|| {
            ControllerError::new(ResponseError::UnknownTopicId, "This server does not host this topic ID.")
        })?;
        self.commit(&mut log, &[MetadataRecord::RemoveTopic { topic_id }])?;
        Ok(topic)
    }

    /// Sets (`Some`) or removes (`None`) dynamic configs of a topic.
    pub fn alter_topic_configs(
        &self,
        topic_id: Uuid,
        changes: &[(String, Option<String>)],
    ) -> Result<Arc<TopicImage>, ControllerError> {
        let mut log = self.log.lock();
        let image = self.image();
        let topic = image
            .topic_by_id(&topic_id)
            .ok_or_else(|| ControllerError::new(ResponseError::UnknownTopicOrPartition, "unknown topic"))?;
        let records: Vec<MetadataRecord> = changes
            .iter()
            .map(|(key, value)| MetadataRecord::TopicConfig { topic_id, key: key.clone(), value: value.clone() })
            .collect();
        if !records.is_empty() {
            self.commit(&mut log, &records)?;
        }
        let name = topic.name.clone();
        Ok(self.image().topic(&name).cloned().expect("still there"))
    }

    /// Grows a topic to `count` partitions (Kafka never shrinks one).
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, ControllerError> {
        let mut log = self.log.lock();
        let image = self.image();
        let topic = image.topic(name).cloned().ok_or_else(|| {
            ControllerError::new(ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' does not exist."))
        })?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            let message = if count == current {
                format!("Topic already has {current} partitions.")
            } else {
                format!("Topic currently has {current} partitions, which is higher than the requested {count}.")
            };
            return Err(ControllerError::new(ResponseError::InvalidPartitions, message));
        }
        if count > PARTITIONS_PER_TOPIC_MAX {
            return Err(ControllerError::new(
                ResponseError::InvalidPartitions,
                format!("At most {PARTITIONS_PER_TOPIC_MAX} partitions per topic."),
            ));
        }
        if validate_only {
            return Ok(topic);
        }
        let records: Vec<MetadataRecord> = (current..count)
            .map(|partition| MetadataRecord::Partition {
                topic_id: topic.topic_id,
                partition,
                replicas: vec![self.node_id],
                isr: vec![self.node_id],
                leader: self.node_id,
                leader_epoch: 0,
                partition_epoch: 0,
            })
            .collect();
        self.commit(&mut log, &records)?;
        Ok(self.image().topic(name).cloned().expect("still there"))
    }

    /// Hands out a block of `count` producer ids, recorded in the metadata
    /// log so that no id is ever given twice, across restarts too.
    pub fn allocate_producer_ids(&self, count: i64) -> Result<std::ops::Range<i64>, ControllerError> {
        let mut log = self.log.lock();
        let start = self.image().next_producer_id;
        let end = start + count;
        self.commit(&mut log, &[MetadataRecord::ProducerIds { broker_id: self.node_id, next_producer_id: end }])?;
        Ok(start..end)
    }

    fn commit(&self, log: &mut MetadataLog, records: &[MetadataRecord]) -> Result<(), ControllerError> {
        log.append(records).map_err(|e| {
            tracing::error!(error = %e, "metadata log append failed");
            ControllerError::new(ResponseError::KafkaStorageError, format!("metadata log append failed: {e}"))
        })?;
        let next = self.image().apply(records);
        *self.image.write() = Arc::new(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert_eq!(validate_topic_name(bad).unwrap_err().error, ResponseError::InvalidTopicException, "{bad}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }
}
