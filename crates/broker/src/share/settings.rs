//! The settings a share group runs with, in one place: the broker's
//! `group.share.*` configs with the group's own overrides over them
//! (`GroupSettings`), read where each value is used so that a change
//! applies without a restart.

use crate::Broker;

/// Where a share partition starts when the group has no state for it
/// (`share.auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at most this long ago.
    ByDuration(i64),
}

/// One share group's effective settings.
#[derive(Clone, Debug)]
pub struct ShareSettings {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub record_lock_duration_ms: i32,
    pub delivery_count_limit: i32,
    pub partition_max_record_locks: usize,
    pub max_size: usize,
    pub max_share_sessions: usize,
    pub auto_offset_reset: OffsetReset,
    pub read_committed: bool,
    /// vltava's own: a released or expired record is not acquirable again
    /// before this has passed.
    pub redelivery_backoff_ms: i64,
    /// `errors.deadletterqueue.topic.name`
    pub dead_letter_topic: Option<String>,
}

impl ShareSettings {
    /// The settings of `group` on `broker`.
    pub fn of(_broker: &Broker, _group: &str) -> Self {
        // Kafka 4.2's defaults until group configs are wired in
        ShareSettings {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            partition_max_record_locks: 2_000,
            max_size: 200,
            max_share_sessions: 2_000,
            auto_offset_reset: OffsetReset::Latest,
            read_committed: false,
            redelivery_backoff_ms: 0,
            dead_letter_topic: None,
        }
    }
}
