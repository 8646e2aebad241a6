//! The settings a share group runs with, in one place: the broker's
//! `group.share.*` configs with the group's own overrides over them
//! (`GroupSettings`), read where each value is used so that a change
//! applies without a restart.

use crate::group_config::GroupSettings;
pub use crate::group_config::ShareOffsetReset as OffsetReset;
use crate::Broker;

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
    /// The settings of `group` on `broker`: its overrides over the
    /// broker's `group.share.*`.
    pub fn of(broker: &Broker, group: &str) -> Self {
        let g = GroupSettings::of(broker, group);
        let share = &broker.config.group.share;
        ShareSettings {
            session_timeout_ms: g.share_session_timeout_ms,
            heartbeat_interval_ms: g.share_heartbeat_interval_ms,
            record_lock_duration_ms: g.share_record_lock_duration_ms,
            delivery_count_limit: g.share_delivery_count_limit,
            partition_max_record_locks: share.partition_max_record_locks,
            max_size: share.max_size,
            max_share_sessions: share.max_share_sessions,
            auto_offset_reset: g.share_auto_offset_reset,
            read_committed: g.share_read_committed,
            redelivery_backoff_ms: g.share_redelivery_backoff_ms,
            dead_letter_topic: g.dead_letter_topic,
        }
    }
}
