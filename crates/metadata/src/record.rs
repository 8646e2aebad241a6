//! The records of the metadata log. Field names follow KRaft's records
//! (TopicRecord, PartitionRecord, ConfigRecord, RemoveTopicRecord).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic exists with this name and id.
    Topic { name: String, topic_id: Uuid },
    /// A partition's replica set, leader and epochs.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A dynamic topic config: `value: None` removes the key.
    TopicConfig { topic_id: Uuid, key: String, value: Option<String> },
    /// The topic and all its partitions are gone.
    RemoveTopic { topic_id: Uuid },
    /// Producer ids below `next_producer_id` have been handed out
    /// (KRaft's ProducerIdsRecord: brokers take blocks of ids).
    ProducerIds { broker_id: i32, next_producer_id: i64 },
}
