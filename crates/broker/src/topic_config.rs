//! Topic-level configs accepted at creation. Names and value checks follow
//! Kafka; the values are stored in the metadata log. Which of them take
//! effect is listed in README.md (retention and compaction come later).

/// Known topic config keys.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
    "message.downconversion.enable",
];

/// Returns a message naming the first bad key or value.
pub fn validate(configs: &[(String, String)]) -> Result<(), String> {
    for (key, value) in configs {
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(format!("Unknown topic config name: {key}"));
        }
        let ok = match key.as_str() {
            "cleanup.policy" => value.split(',').all(|p| matches!(p.trim(), "delete" | "compact")),
            "compression.type" => {
                matches!(value.as_str(), "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd")
            }
            "message.timestamp.type" => matches!(value.as_str(), "CreateTime" | "LogAppendTime"),
            "unclean.leader.election.enable" | "preallocate" | "message.downconversion.enable" => {
                matches!(value.as_str(), "true" | "false")
            }
            "min.cleanable.dirty.ratio" => value.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r)),
            "segment.bytes" => value.parse::<i64>().is_ok_and(|n| (14..=i32::MAX as i64).contains(&n)),
            "max.message.bytes" | "min.insync.replicas" => value.parse::<i32>().is_ok_and(|n| n >= 0),
            _ => value.parse::<i64>().is_ok_and(|n| n >= -1),
        };
        if !ok {
            return Err(format!("Invalid value {value} for configuration {key}"));
        }
    }
    Ok(())
}

/// The effective value of an integer topic config, if set and valid.
pub fn get_i64(configs: &std::collections::BTreeMap<String, String>, key: &str) -> Option<i64> {
    configs.get(key).and_then(|v| v.parse().ok())
}
