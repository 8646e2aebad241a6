//! AlterReplicaLogDirs (`kafka-reassign-partitions.sh` with log dirs,
//! `kafka-log-dirs`): moves replicas hosted here to another of this
//! broker's log directories, in the background (see `log_mover`). A path
//! that is not one of them is LOG_DIR_NOT_FOUND, an offline one
//! KAFKA_STORAGE_ERROR, a partition this broker does not host
//! REPLICA_NOT_AVAILABLE (UNKNOWN_TOPIC_OR_PARTITION when it does not
//! exist). DescribeLogDirs shows where each replica is.

use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use vltava_protocol::ResponseError;

use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: AlterReplicaLogDirsRequest, _version: i16) -> AlterReplicaLogDirsResponse {
    let image = broker.controller.image();
    let mut results = Vec::new();
    for dir in request.dirs {
        let target = broker.replicas.log_dir_at(dir.path.as_str());
        for topic in dir.topics {
            let partitions = topic
                .partitions
                .iter()
                .map(|&index| {
                    let error = match (&target, image.topic(topic.name.0.as_str())) {
                        (None, _) => Some(ResponseError::LogDirNotFound),
                        (Some(t), _) if t.is_offline() => Some(ResponseError::KafkaStorageError),
                        (_, None) => Some(ResponseError::UnknownTopicOrPartition),
                        (Some(t), Some(found)) => match broker.replicas.get(&found.topic_id, index) {
                            None if found.partitions.iter().any(|p| p.partition == index) => {
                                Some(ResponseError::ReplicaNotAvailable)
                            }
                            None => Some(ResponseError::UnknownTopicOrPartition),
                            Some(p) if p.is_offline() => Some(ResponseError::KafkaStorageError),
                            Some(p) => {
                                broker.replicas.move_replica(&broker.runtime, p, t.clone());
                                None
                            }
                        },
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            results
                .push(AlterReplicaLogDirTopicResult::default().with_topic_name(topic.name).with_partitions(partitions));
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}
