//! What the runtime adds to [`crate::state::restore`] and
//! [`crate::state::checkpoint`]: the restore consumer's context (a
//! partition EOF ends a restoration: not an error to log) and wiping a task
//! directory whose state cannot be trusted.

use std::path::Path;

use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::error::Result;

/// A restore consumer's context: reaching the end of a partition is how
/// restoration ends, not an error to log.
pub(crate) struct RestoreContext;

impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for RestoreContext {}

pub(crate) type RestoreConsumer = BaseConsumer<RestoreContext>;

/// Removes everything in a task directory (its stores are rebuilt from the changelogs).
pub(crate) fn wipe_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiping_leaves_an_empty_task_dir() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("0_1");
        std::fs::create_dir_all(task.join("sub")).unwrap();
        std::fs::write(task.join("counts.redb"), b"x").unwrap();
        wipe_dir(&task).unwrap();
        assert!(task.is_dir());
        assert_eq!(std::fs::read_dir(&task).unwrap().count(), 0);
    }
}
