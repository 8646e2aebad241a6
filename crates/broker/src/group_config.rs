//! Settings of the new group types with Kafka's names: the broker-wide
//! `group.consumer.*` (KIP-848) and `group.share.*` (KIP-932) keys, and a
//! group's own overrides (Kafka's GROUP config resource, type 32, altered
//! with IncrementalAlterConfigs and kept in the metadata log as
//! `ResourceConfig` records), which [`GroupSettings::of`] resolves.

use std::collections::BTreeMap;

use crate::Broker;

/// Kafka's `ConfigResource.Type.GROUP`.
pub const RESOURCE_GROUP: i8 = 32;

/// `group.consumer.*`: the consumer group protocol (KIP-848).
#[derive(Debug, Clone)]
pub struct ConsumerGroupSettings {
    pub heartbeat_interval_ms: i32,
    pub min_heartbeat_interval_ms: i32,
    pub max_heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    /// `group.consumer.assignors`: short names (`uniform`, `range`), the
    /// first is the default.
    pub assignors: Vec<String>,
    /// `group.consumer.migration.policy`: disabled, upgrade, downgrade or
    /// bidirectional.
    pub migration_policy: String,
}

impl Default for ConsumerGroupSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 5_000,
            min_heartbeat_interval_ms: 5_000,
            max_heartbeat_interval_ms: 15_000,
            session_timeout_ms: 45_000,
            min_session_timeout_ms: 45_000,
            max_session_timeout_ms: 60_000,
            max_size: i32::MAX as usize,
            assignors: vec!["uniform".into(), "range".into()],
            migration_policy: "bidirectional".into(),
        }
    }
}

/// `group.share.*`: share groups (KIP-932).
#[derive(Debug, Clone)]
pub struct ShareGroupSettings {
    pub heartbeat_interval_ms: i32,
    pub min_heartbeat_interval_ms: i32,
    pub max_heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub record_lock_duration_ms: i32,
    pub min_record_lock_duration_ms: i32,
    pub max_record_lock_duration_ms: i32,
    pub delivery_count_limit: i32,
    pub partition_max_record_locks: usize,
    pub max_size: usize,
    pub max_share_sessions: usize,
}

impl Default for ShareGroupSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 5_000,
            min_heartbeat_interval_ms: 5_000,
            max_heartbeat_interval_ms: 15_000,
            session_timeout_ms: 45_000,
            min_session_timeout_ms: 45_000,
            max_session_timeout_ms: 60_000,
            record_lock_duration_ms: 30_000,
            min_record_lock_duration_ms: 15_000,
            max_record_lock_duration_ms: 60_000,
            delivery_count_limit: 5,
            partition_max_record_locks: 2_000,
            max_size: 200,
            max_share_sessions: 2_000,
        }
    }
}

/// Bounds of `group.share.delivery.count.limit` (Kafka's).
const DELIVERY_COUNT_LIMIT: (i32, i32) = (2, 10);

/// The broker keys read here.
pub fn is_broker_key(key: &str) -> bool {
    int_key(key).is_some()
        || share_key(key).is_some()
        || matches!(
            key,
            "group.consumer.assignors"
                | "group.consumer.migration.policy"
                | "group.share.partition.max.record.locks"
                | "group.share.max.size"
                | "group.share.max.share.sessions"
                | "group.share.assignors"
                | "group.coordinator.rebalance.protocols"
                | DLQ_PREFIX_KEY
        )
}

/// `errors.deadletterqueue.topic.name.prefix` (KIP-1191): dead-letter topics
/// must start with it.
pub const DLQ_PREFIX_KEY: &str = "errors.deadletterqueue.topic.name.prefix";

fn int_key(key: &str) -> Option<()> {
    matches!(
        key,
        "group.consumer.heartbeat.interval.ms"
            | "group.consumer.min.heartbeat.interval.ms"
            | "group.consumer.max.heartbeat.interval.ms"
            | "group.consumer.session.timeout.ms"
            | "group.consumer.min.session.timeout.ms"
            | "group.consumer.max.session.timeout.ms"
            | "group.consumer.max.size"
    )
    .then_some(())
}

fn share_key(key: &str) -> Option<()> {
    matches!(
        key,
        "group.share.heartbeat.interval.ms"
            | "group.share.min.heartbeat.interval.ms"
            | "group.share.max.heartbeat.interval.ms"
            | "group.share.session.timeout.ms"
            | "group.share.min.session.timeout.ms"
            | "group.share.max.session.timeout.ms"
            | "group.share.record.lock.duration.ms"
            | "group.share.min.record.lock.duration.ms"
            | "group.share.max.record.lock.duration.ms"
            | "group.share.delivery.count.limit"
    )
    .then_some(())
}

fn positive_int(value: &str) -> Result<i32, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if (1..=i32::MAX as i64).contains(&n) => Ok(n as i32),
        Ok(_) => Err("must be between 1 and 2147483647".into()),
        Err(_) => Err("not a number".into()),
    }
}

/// The protocols `group.coordinator.rebalance.protocols` may list.
const PROTOCOLS: [&str; 4] = ["classic", "consumer", "share", "streams"];

impl super::group::state::GroupConfig {
    /// Sets one broker key of the new group types.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let c = &mut self.consumer;
        let s = &mut self.share;
        match key {
            "group.consumer.heartbeat.interval.ms" => c.heartbeat_interval_ms = positive_int(value)?,
            "group.consumer.min.heartbeat.interval.ms" => c.min_heartbeat_interval_ms = positive_int(value)?,
            "group.consumer.max.heartbeat.interval.ms" => c.max_heartbeat_interval_ms = positive_int(value)?,
            "group.consumer.session.timeout.ms" => c.session_timeout_ms = positive_int(value)?,
            "group.consumer.min.session.timeout.ms" => c.min_session_timeout_ms = positive_int(value)?,
            "group.consumer.max.session.timeout.ms" => c.max_session_timeout_ms = positive_int(value)?,
            "group.consumer.max.size" => c.max_size = positive_int(value)? as usize,
            "group.consumer.assignors" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(assignor_name)
                    .collect::<Result<_, _>>()?;
                if names.is_empty() {
                    return Err("at least one assignor is required (uniform or range)".into());
                }
                c.assignors = names;
            }
            "group.consumer.migration.policy" => {
                let v = value.trim().to_ascii_lowercase();
                if !["disabled", "upgrade", "downgrade", "bidirectional"].contains(&v.as_str()) {
                    return Err("expected disabled, upgrade, downgrade or bidirectional".into());
                }
                c.migration_policy = v;
            }
            "group.share.heartbeat.interval.ms" => s.heartbeat_interval_ms = positive_int(value)?,
            "group.share.min.heartbeat.interval.ms" => s.min_heartbeat_interval_ms = positive_int(value)?,
            "group.share.max.heartbeat.interval.ms" => s.max_heartbeat_interval_ms = positive_int(value)?,
            "group.share.session.timeout.ms" => s.session_timeout_ms = positive_int(value)?,
            "group.share.min.session.timeout.ms" => s.min_session_timeout_ms = positive_int(value)?,
            "group.share.max.session.timeout.ms" => s.max_session_timeout_ms = positive_int(value)?,
            "group.share.record.lock.duration.ms" => s.record_lock_duration_ms = positive_int(value)?,
            "group.share.min.record.lock.duration.ms" => s.min_record_lock_duration_ms = positive_int(value)?,
            "group.share.max.record.lock.duration.ms" => s.max_record_lock_duration_ms = positive_int(value)?,
            "group.share.delivery.count.limit" => {
                let n = positive_int(value)?;
                if !(DELIVERY_COUNT_LIMIT.0..=DELIVERY_COUNT_LIMIT.1).contains(&n) {
                    return Err(format!("must be between {} and {}", DELIVERY_COUNT_LIMIT.0, DELIVERY_COUNT_LIMIT.1));
                }
                s.delivery_count_limit = n;
            }
            "group.share.partition.max.record.locks" => s.partition_max_record_locks = positive_int(value)? as usize,
            "group.share.max.size" => s.max_size = positive_int(value)? as usize,
            "group.share.max.share.sessions" => s.max_share_sessions = positive_int(value)? as usize,
            "group.share.assignors" => {
                let ok = value
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .all(|a| a == "simple" || a == "org.apache.kafka.coordinator.group.assignor.SimpleAssignor");
                if !ok {
                    return Err("only the simple assignor is offered for share groups".into());
                }
            }
            "group.coordinator.rebalance.protocols" => {
                let list: Vec<String> =
                    value.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect();
                if let Some(bad) = list.iter().find(|p| !PROTOCOLS.contains(&p.as_str())) {
                    return Err(format!("unknown protocol {bad}: expected classic, consumer, share or streams"));
                }
                if !list.iter().any(|p| p == "classic") {
                    return Err("the list must contain classic: disabling the classic protocol is not supported".into());
                }
                self.rebalance_protocols = list;
            }
            DLQ_PREFIX_KEY => self.dead_letter_prefix = value.trim().to_string(),
            other => return Err(format!("not a group key: {other}")),
        }
        Ok(())
    }

    /// The bounds between keys (each default within its min and max, the
    /// heartbeat interval below the session timeout), checked once every key
    /// is set: `(key, reason)` for the first one broken.
    pub fn check_bounds(&self) -> Result<(), (String, String)> {
        let c = &self.consumer;
        let s = &self.share;
        // `<group>.<name>` within `<group>.min.<name>` and `<group>.max.<name>`
        let within = |group: &str, name: &str, (v, min, max): (i32, i32, i32)| {
            let (key, min_key, max_key) =
                (format!("{group}.{name}"), format!("{group}.min.{name}"), format!("{group}.max.{name}"));
            if min > max {
                return Err((min_key, format!("must be at most {max_key} ({max})")));
            }
            if v < min || v > max {
                return Err((key, format!("must be between {min_key} ({min}) and {max_key} ({max})")));
            }
            Ok(())
        };
        let below_session = |group: &str, heartbeat: i32, session: i32| {
            if heartbeat >= session {
                return Err((
                    format!("{group}.heartbeat.interval.ms"),
                    format!("must be less than {group}.session.timeout.ms"),
                ));
            }
            Ok(())
        };
        let consumer = "group.consumer";
        within(
            consumer,
            "heartbeat.interval.ms",
            (c.heartbeat_interval_ms, c.min_heartbeat_interval_ms, c.max_heartbeat_interval_ms),
        )?;
        within(
            consumer,
            "session.timeout.ms",
            (c.session_timeout_ms, c.min_session_timeout_ms, c.max_session_timeout_ms),
        )?;
        below_session(consumer, c.heartbeat_interval_ms, c.session_timeout_ms)?;
        let share = "group.share";
        within(
            share,
            "heartbeat.interval.ms",
            (s.heartbeat_interval_ms, s.min_heartbeat_interval_ms, s.max_heartbeat_interval_ms),
        )?;
        within(
            share,
            "session.timeout.ms",
            (s.session_timeout_ms, s.min_session_timeout_ms, s.max_session_timeout_ms),
        )?;
        below_session(share, s.heartbeat_interval_ms, s.session_timeout_ms)?;
        within(
            share,
            "record.lock.duration.ms",
            (s.record_lock_duration_ms, s.min_record_lock_duration_ms, s.max_record_lock_duration_ms),
        )
    }

    /// Whether `protocol` (consumer, share) is enabled by
    /// `group.coordinator.rebalance.protocols`.
    pub fn protocol_enabled(&self, protocol: &str) -> bool {
        self.rebalance_protocols.iter().any(|p| p == protocol)
    }
}

/// `uniform` / `range`, or Kafka's class names for them.
fn assignor_name(name: &str) -> Result<String, String> {
    match name {
        "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => Ok("uniform".into()),
        "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => Ok("range".into()),
        other => Err(format!("unknown assignor {other}: expected uniform or range")),
    }
}

/// `share.auto.offset.reset`: where a share group starts on a partition it
/// has no state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareOffsetReset {
    Earliest,
    Latest,
    /// `by_duration:<ISO-8601 duration>`: the first record not older than
    /// this many milliseconds.
    ByDuration(i64),
}

/// One group's effective settings: its overrides over the broker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
    pub share_session_timeout_ms: i32,
    pub share_heartbeat_interval_ms: i32,
    pub share_record_lock_duration_ms: i32,
    pub share_delivery_count_limit: i32,
    pub share_auto_offset_reset: ShareOffsetReset,
    /// `share.isolation.level=read_committed`
    pub share_read_committed: bool,
    /// `share.redelivery.backoff.ms` (vltava's): how long a released record
    /// (or one whose lock expired) waits before it is delivered again.
    pub share_redelivery_backoff_ms: i64,
    /// `errors.deadletterqueue.topic.name` (KIP-1191).
    pub dead_letter_topic: Option<String>,
}

/// The group-level keys, Kafka's (`GroupConfig`) and vltava's.
pub const GROUP_KEYS: [&str; 10] = [
    "consumer.session.timeout.ms",
    "consumer.heartbeat.interval.ms",
    "share.session.timeout.ms",
    "share.heartbeat.interval.ms",
    "share.record.lock.duration.ms",
    "share.delivery.count.limit",
    "share.auto.offset.reset",
    "share.isolation.level",
    "share.redelivery.backoff.ms",
    "errors.deadletterqueue.topic.name",
];

impl GroupSettings {
    /// Group `group`'s settings now (one image lookup).
    pub fn of(broker: &Broker, group: &str) -> Self {
        let image = broker.controller.image();
        Self::resolve(&broker.config.group, image.resource_config(RESOURCE_GROUP, group))
    }

    /// The broker's values overridden by a group's keys (values were
    /// checked when set; one that no longer parses falls back).
    pub fn resolve(cfg: &super::group::state::GroupConfig, overrides: Option<&BTreeMap<String, String>>) -> Self {
        let get = |k: &str| overrides.and_then(|o| o.get(k)).map(String::as_str);
        let int = |k: &str, default: i32| get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(default);
        Self {
            consumer_session_timeout_ms: int("consumer.session.timeout.ms", cfg.consumer.session_timeout_ms),
            consumer_heartbeat_interval_ms: int("consumer.heartbeat.interval.ms", cfg.consumer.heartbeat_interval_ms),
            share_session_timeout_ms: int("share.session.timeout.ms", cfg.share.session_timeout_ms),
            share_heartbeat_interval_ms: int("share.heartbeat.interval.ms", cfg.share.heartbeat_interval_ms),
            share_record_lock_duration_ms: int("share.record.lock.duration.ms", cfg.share.record_lock_duration_ms),
            share_delivery_count_limit: int("share.delivery.count.limit", cfg.share.delivery_count_limit),
            share_auto_offset_reset: get("share.auto.offset.reset")
                .and_then(|v| parse_offset_reset(v).ok())
                .unwrap_or(ShareOffsetReset::Latest),
            share_read_committed: get("share.isolation.level").is_some_and(|v| v.trim() == "read_committed"),
            share_redelivery_backoff_ms: get("share.redelivery.backoff.ms")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            dead_letter_topic: get("errors.deadletterqueue.topic.name")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
        }
    }
}

/// Kafka's values of `share.auto.offset.reset`.
pub fn parse_offset_reset(value: &str) -> Result<ShareOffsetReset, String> {
    match value.trim() {
        "earliest" => Ok(ShareOffsetReset::Earliest),
        "latest" => Ok(ShareOffsetReset::Latest),
        v => match v.strip_prefix("by_duration:") {
            Some(d) => iso_duration_ms(d)
                .map(ShareOffsetReset::ByDuration)
                .ok_or_else(|| format!("{d} is not an ISO-8601 duration such as PT1H or P1DT12H")),
            None => Err("expected latest, earliest or by_duration:<ISO-8601 duration>".into()),
        },
    }
}

/// An ISO-8601 duration as Java's `Duration.parse` reads it
/// (`PnDTnHnMn.nS`), in milliseconds; negative ones are refused.
fn iso_duration_ms(text: &str) -> Option<i64> {
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ms: f64 = 0.0;
    if !days.is_empty() {
        ms += days.strip_suffix('D')?.parse::<f64>().ok()? * 86_400_000.0;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return None;
        }
        for (unit, scale) in [('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)] {
            if let Some(i) = t.find(unit) {
                ms += t[..i].parse::<f64>().ok()? * scale;
                t = &t[i + 1..];
            }
        }
        if !t.is_empty() {
            return None;
        }
    } else if days.is_empty() {
        return None;
    }
    (ms.is_finite() && ms >= 0.0 && ms < i64::MAX as f64).then_some(ms as i64)
}

/// Checks one group-level key and value (`None`: a deletion) against the
/// broker's bounds: Kafka's INVALID_CONFIG message text.
pub fn check(cfg: &super::group::state::GroupConfig, key: &str, value: Option<&str>) -> Result<(), String> {
    if !GROUP_KEYS.contains(&key) {
        return Err(format!("Unknown group config name: {key}"));
    }
    let Some(value) = value else { return Ok(()) };
    let bounded = |min: i32, max: i32| -> Result<(), String> {
        let n: i64 = value.trim().parse().map_err(|_| format!("Invalid value {value} for configuration {key}"))?;
        if n < min as i64 || n > max as i64 {
            return Err(format!("Invalid value {value} for configuration {key}: must be between {min} and {max}"));
        }
        Ok(())
    };
    let c = &cfg.consumer;
    let s = &cfg.share;
    match key {
        "consumer.session.timeout.ms" => bounded(c.min_session_timeout_ms, c.max_session_timeout_ms),
        "consumer.heartbeat.interval.ms" => bounded(c.min_heartbeat_interval_ms, c.max_heartbeat_interval_ms),
        "share.session.timeout.ms" => bounded(s.min_session_timeout_ms, s.max_session_timeout_ms),
        "share.heartbeat.interval.ms" => bounded(s.min_heartbeat_interval_ms, s.max_heartbeat_interval_ms),
        "share.record.lock.duration.ms" => bounded(s.min_record_lock_duration_ms, s.max_record_lock_duration_ms),
        "share.delivery.count.limit" => bounded(DELIVERY_COUNT_LIMIT.0, DELIVERY_COUNT_LIMIT.1),
        "share.redelivery.backoff.ms" => bounded(0, i32::MAX),
        "share.auto.offset.reset" => parse_offset_reset(value).map(|_| ()).map_err(|e| format!("{key}: {e}")),
        "share.isolation.level" => match value.trim() {
            "read_committed" | "read_uncommitted" => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: expected read_committed or read_uncommitted"
            )),
        },
        "errors.deadletterqueue.topic.name" => {
            let name = value.trim();
            if name.is_empty() {
                return Ok(());
            }
            if !name.starts_with(&cfg.dead_letter_prefix) {
                return Err(format!(
                    "Invalid value {value} for configuration {key}: dead-letter topic names must start with '{}' ({DLQ_PREFIX_KEY})",
                    cfg.dead_letter_prefix
                ));
            }
            crate::controller::validate_topic_name(name)
                .map_err(|e| format!("Invalid value {value} for configuration {key}: {}", e.message))
        }
        _ => Ok(()),
    }
}

/// The group keys with their effective values and whether the group sets
/// them (DescribeConfigs).
pub fn entries(
    cfg: &super::group::state::GroupConfig,
    overrides: Option<&BTreeMap<String, String>>,
) -> Vec<(&'static str, String, bool)> {
    let s = GroupSettings::resolve(cfg, overrides);
    let reset = match s.share_auto_offset_reset {
        ShareOffsetReset::Earliest => "earliest".to_string(),
        ShareOffsetReset::Latest => "latest".to_string(),
        ShareOffsetReset::ByDuration(_) => {
            overrides.and_then(|o| o.get("share.auto.offset.reset")).cloned().unwrap_or_default()
        }
    };
    let values = [
        s.consumer_session_timeout_ms.to_string(),
        s.consumer_heartbeat_interval_ms.to_string(),
        s.share_session_timeout_ms.to_string(),
        s.share_heartbeat_interval_ms.to_string(),
        s.share_record_lock_duration_ms.to_string(),
        s.share_delivery_count_limit.to_string(),
        reset,
        if s.share_read_committed { "read_committed" } else { "read_uncommitted" }.to_string(),
        s.share_redelivery_backoff_ms.to_string(),
        s.dead_letter_topic.clone().unwrap_or_default(),
    ];
    GROUP_KEYS.iter().zip(values).map(|(k, v)| (*k, v, overrides.is_some_and(|o| o.contains_key(*k)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::state::GroupConfig;

    #[test]
    fn group_overrides_win_over_the_broker_and_are_checked_against_its_bounds() {
        let mut cfg = GroupConfig::default();
        cfg.set("group.consumer.min.session.timeout.ms", "1000").unwrap();
        cfg.set("group.consumer.session.timeout.ms", "2000").unwrap();
        cfg.set("group.consumer.min.heartbeat.interval.ms", "100").unwrap();
        cfg.set("group.consumer.heartbeat.interval.ms", "500").unwrap();
        cfg.check_bounds().unwrap();
        let mut o = BTreeMap::new();
        o.insert("consumer.session.timeout.ms".to_string(), "3000".to_string());
        o.insert("share.auto.offset.reset".to_string(), "by_duration:PT1H".to_string());
        o.insert("share.isolation.level".to_string(), "read_committed".to_string());
        let s = GroupSettings::resolve(&cfg, Some(&o));
        assert_eq!(s.consumer_session_timeout_ms, 3000);
        assert_eq!(s.consumer_heartbeat_interval_ms, 500);
        assert_eq!(s.share_auto_offset_reset, ShareOffsetReset::ByDuration(3_600_000));
        assert!(s.share_read_committed);
        assert_eq!(s.dead_letter_topic, None);
        assert!(check(&cfg, "consumer.session.timeout.ms", Some("999"))
            .unwrap_err()
            .contains("between 1000 and 60000"));
        assert!(check(&cfg, "no.such.key", Some("1")).unwrap_err().contains("Unknown group config"));
        assert!(check(&cfg, "share.auto.offset.reset", Some("by_duration:1h")).is_err());
        assert!(check(&cfg, "errors.deadletterqueue.topic.name", Some("orders-dlq")).unwrap_err().contains("dlq."));
        check(&cfg, "errors.deadletterqueue.topic.name", Some("dlq.orders")).unwrap();
        check(&cfg, "share.delivery.count.limit", Some("10")).unwrap();
        assert!(check(&cfg, "share.delivery.count.limit", Some("11")).is_err());
    }

    #[test]
    fn broker_bounds_are_checked_together() {
        let mut cfg = GroupConfig::default();
        cfg.set("group.consumer.session.timeout.ms", "1000").unwrap();
        assert_eq!(cfg.check_bounds().unwrap_err().0, "group.consumer.session.timeout.ms");
        let mut cfg = GroupConfig::default();
        cfg.set("group.share.heartbeat.interval.ms", "50000").unwrap();
        cfg.set("group.share.max.heartbeat.interval.ms", "50000").unwrap();
        assert_eq!(cfg.check_bounds().unwrap_err().0, "group.share.heartbeat.interval.ms");
        assert!(cfg.set("group.coordinator.rebalance.protocols", "consumer").unwrap_err().contains("classic"));
        assert!(cfg.set("group.consumer.assignors", "sticky").is_err());
        cfg.set("group.consumer.assignors", "org.apache.kafka.coordinator.group.assignor.RangeAssignor,uniform")
            .unwrap();
        assert_eq!(cfg.consumer.assignors, ["range", "uniform"]);
    }

    #[test]
    fn iso_durations_as_java_reads_them() {
        assert_eq!(iso_duration_ms("PT0.5S"), Some(500));
        assert_eq!(iso_duration_ms("P1DT2H3M"), Some(86_400_000 + 7_200_000 + 180_000));
        assert_eq!(iso_duration_ms("P2D"), Some(172_800_000));
        assert_eq!(iso_duration_ms("PT"), None);
        assert_eq!(iso_duration_ms("P"), None);
        assert_eq!(iso_duration_ms("PT-1S"), None);
        assert_eq!(iso_duration_ms("1H"), None);
    }
}
