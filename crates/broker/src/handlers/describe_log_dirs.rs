//! DescribeLogDirs: each log directory of this broker, its partitions'
//! sizes and offset lag, and (v4) the file system's total and usable bytes.
//! A failed directory is reported with KAFKA_STORAGE_ERROR, as in Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use vltava_protocol::{ResponseError, StrBytes};

use vltava_storage::LogDir;

use crate::partition::Partition;
use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: DescribeLogDirsRequest, _version: i16) -> DescribeLogDirsResponse {
    // null topics: every partition here
    let wanted: Option<BTreeMap<String, Vec<i32>>> =
        request.topics.map(|topics| topics.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect());
    let hosted = broker.replicas.all();
    let results =
        broker.replicas.log_dirs().iter().map(|log_dir| describe(log_dir, &hosted, wanted.as_ref())).collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// One log directory: its file system's size and its partitions (none,
/// with KAFKA_STORAGE_ERROR, once it failed).
fn describe(
    log_dir: &Arc<LogDir>,
    hosted: &[Arc<Partition>],
    wanted: Option<&BTreeMap<String, Vec<i32>>>,
) -> DescribeLogDirsResult {
    let path = std::fs::canonicalize(log_dir.path()).unwrap_or_else(|_| log_dir.path().to_path_buf());
    let (total, usable) = log_dir.space().map_or((-1, -1), |s| (s.total_bytes as i64, s.usable_bytes as i64));
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(path.display().to_string()))
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    if log_dir.is_offline() {
        return result.with_error_code(ResponseError::KafkaStorageError.code());
    }
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in hosted.iter().filter(|p| Arc::ptr_eq(&p.log_dir(), log_dir)) {
        if wanted.is_some_and(|w| !w.get(&p.topic).is_some_and(|parts| parts.contains(&p.index))) {
            continue;
        }
        // Kafka's offset lag of a current (not future) log: how far its end
        // is behind the high watermark
        let lag = (p.high_watermark() - p.log_end_offset()).max(0);
        topics.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(p.size_bytes() as i64)
                .with_offset_lag(lag)
                .with_is_future_key(false),
        );
    }
    result.topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    result
}
