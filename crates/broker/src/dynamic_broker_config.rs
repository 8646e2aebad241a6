//! Which broker configs change on a running cluster (IncrementalAlterConfigs
//! and AlterConfigs on BROKER resources, for one broker or the cluster-wide
//! default ""), stored in the metadata log like Kafka's ConfigRecords:
//!
//! - every broker synonym of a topic config (`log.retention.ms`,
//!   `message.max.bytes`, `log.cleanup.policy`, ...): topics without their
//!   own value take the new one at once, as in Kafka;
//! - Kafka's other dynamic keys that have no meaning in vltava (thread
//!   counts, cleaner buffers, connection rates, replication throttles):
//!   accepted, stored and shown, with no effect, as at start;
//! - everything else is read at start only: INVALID_REQUEST, as Kafka
//!   answers for a key it cannot update dynamically.

use vltava_protocol::ResponseError;

use crate::broker_keys::{self, Verdict};
use crate::topic_config;

/// Kafka's dynamic broker keys that vltava accepts at start without acting
/// on them (see `broker_keys`): accepted dynamically on the same terms.
pub const WITHOUT_EFFECT: &[&str] = &[
    "background.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.threads",
    "max.connection.creation.rate",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "metric.reporters",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "producer.id.expiration.ms",
    "remote.log.manager.copy.max.bytes.per.second",
];

/// Kafka's dynamic-only broker quotas (no server.properties key): bytes
/// per second, accepted and shown; vltava does not throttle replication.
pub const THROTTLES: &[&str] = &[
    "follower.replication.throttled.rate",
    "leader.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
];

/// Whether `key` may be set to `value` (`None`: removed) dynamically.
pub fn check(key: &str, value: Option<&str>) -> Result<(), (ResponseError, String)> {
    let invalid = |why: String| Err((ResponseError::InvalidConfig, why));
    if topic_config::is_broker_synonym(key) {
        return match value {
            Some(v) => topic_config::validate_broker_synonym(key, v)
                .or_else(|why| invalid(format!("Invalid value {v} for configuration {key}: {why}"))),
            None => Ok(()),
        };
    }
    if WITHOUT_EFFECT.contains(&key) {
        return match value.map(|v| broker_keys::check(key, v)) {
            None | Some(Verdict::Accepted) => Ok(()),
            Some(Verdict::Refused(why)) => invalid(format!("Invalid value for configuration {key}: {why}")),
            Some(Verdict::Unknown) => invalid(format!("Unknown broker config {key}")),
        };
    }
    if THROTTLES.contains(&key) {
        return match value {
            Some(v) if v.trim().parse::<i64>().map_or(true, |n| n < 0) => {
                invalid(format!("Invalid value {v} for configuration {key}: a rate in bytes per second"))
            }
            _ => Ok(()),
        };
    }
    if crate::config::is_known_key(key) {
        return Err((ResponseError::InvalidRequest, format!("Cannot update these configs dynamically: Set({key})")));
    }
    invalid(format!("Unknown broker config {key}"))
}

/// A broker resource name: "" (the cluster-wide default) or a broker id.
pub fn valid_resource(name: &str) -> bool {
    name.is_empty() || name.parse::<i32>().is_ok_and(|id| id >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_name_keys_accepted_at_start() {
        for key in WITHOUT_EFFECT {
            assert!(broker_keys::group_of(key).is_some(), "{key} is not a broker key vltava accepts");
        }
    }

    #[test]
    fn synonyms_and_keys_without_effect_change_others_do_not() {
        assert!(check("log.retention.ms", Some("1000")).is_ok());
        assert!(check("log.retention.hours", Some("2")).is_ok());
        assert!(check("log.cleanup.policy", Some("compact,delete")).is_ok());
        assert!(check("log.retention.ms", None).is_ok());
        assert_eq!(check("log.retention.ms", Some("soon")).unwrap_err().0, ResponseError::InvalidConfig);
        assert_eq!(check("log.cleanup.policy", Some("shred")).unwrap_err().0, ResponseError::InvalidConfig);
        assert!(check("num.io.threads", Some("16")).is_ok());
        assert!(check("leader.replication.throttled.rate", Some("1048576")).is_ok());
        assert_eq!(check("leader.replication.throttled.rate", Some("-5")).unwrap_err().0, ResponseError::InvalidConfig);
        let fixed = check("node.id", Some("3")).unwrap_err();
        assert_eq!(fixed.0, ResponseError::InvalidRequest);
        assert!(fixed.1.contains("Cannot update these configs dynamically"), "{}", fixed.1);
        assert_eq!(check("max.connections", Some("5")).unwrap_err().0, ResponseError::InvalidRequest);
        assert_eq!(check("no.such.key", Some("1")).unwrap_err().0, ResponseError::InvalidConfig);
        assert!(valid_resource("") && valid_resource("3") && !valid_resource("x") && !valid_resource("-1"));
    }
}
