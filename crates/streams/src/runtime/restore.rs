//! Restoring a task's stores from their changelogs, and the task
//! directory's `.checkpoint` file (Kafka's format: a version line `0`, a
//! count line, then `topic partition offset` lines; the offset is the last
//! changelog offset the store holds, restoration resumes after it).
//!
//! Runtime-local until the state helper's `state::restore` /
//! `state::checkpoint` are merged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Result, StreamsError};
use crate::state::StoreInstance;

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

pub(crate) const CHECKPOINT_FILE: &str = ".checkpoint";

/// Changelog (topic, partition) -> last offset the stores hold.
pub(crate) type Checkpoint = BTreeMap<(String, i32), i64>;

pub(crate) fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |why: &str| {
        StreamsError::store(
            CHECKPOINT_FILE,
            format!("{}: {why}; delete the file to restore the task from its changelogs", path.display()),
        )
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(bad("unknown version"));
    }
    let count: usize = lines.next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| bad("no entry count"))?;
    let mut out = Checkpoint::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut parts = line.rsplitn(3, ' ');
        let (Some(off), Some(part), Some(topic)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("a line is not `topic partition offset`"));
        };
        let off: i64 = off.parse().map_err(|_| bad("bad offset"))?;
        let part: i32 = part.parse().map_err(|_| bad("bad partition"))?;
        out.insert((topic.to_string(), part), off);
    }
    if out.len() != count {
        return Err(bad("entry count does not match"));
    }
    Ok(Some(out))
}

/// Writes the checkpoint atomically (a temporary file renamed over it).
pub(crate) fn write_checkpoint(dir: &Path, cp: &Checkpoint) -> Result<()> {
    let mut text = format!("0\n{}\n", cp.len());
    for ((t, p), o) in cp {
        text.push_str(&format!("{t} {p} {o}\n"));
    }
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    Ok(())
}

pub(crate) fn delete_checkpoint(dir: &Path) -> Result<()> {
    match std::fs::remove_file(dir.join(CHECKPOINT_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Removes everything in a task directory (its stores are rebuilt from the changelogs).
pub(crate) fn wipe_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Replays `topic`/`partition` from after `after` (or from the beginning)
/// into `store`; returns (records restored, the last offset read or
/// `after`). `consumer` is a restore consumer (no group, partition EOF on).
pub(crate) fn restore_store(
    consumer: &RestoreConsumer,
    store: &mut StoreInstance,
    topic: &str,
    partition: i32,
    after: Option<i64>,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<(u64, Option<i64>)> {
    let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(30))?;
    let start = match after {
        Some(o) if o + 1 >= low => o + 1,
        _ => low,
    };
    if start >= high {
        return Ok((0, after));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut last = after;
    let mut n = 0u64;
    let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Err(StreamsError::TaskMigrated(format!("restoring {topic}-{partition} stopped: shutting down")));
        }
        if Instant::now() > deadline {
            break Err(StreamsError::store(
                &store.name,
                format!("restoring from {topic}-{partition} took longer than {timeout:?} (offset {last:?} of {high})"),
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break Ok(()),
            Some(Err(e)) => {
                if let KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition) = e {
                    break Err(e.into());
                }
                tracing::warn!(topic, partition, error = %e, "restore consumer");
            }
            Some(Ok(m)) => {
                last = Some(m.offset());
                if let Some(k) = m.key() {
                    batch.push((k.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    n += 1;
                }
                if batch.len() >= 10_000 {
                    store.restore(&std::mem::take(&mut batch))?;
                }
                if m.offset() + 1 >= high {
                    break Ok(());
                }
            }
        }
    };
    let unassign = consumer.unassign();
    result?;
    unassign?;
    store.restore(&batch)?;
    store.flush()?;
    Ok((n, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), None);
        let cp = Checkpoint::from([(("app-s-changelog".to_string(), 3), 41), (("a b".to_string(), 0), 7)]);
        write_checkpoint(dir.path(), &cp).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Some(cp));
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n2\nx 1 2\n").unwrap();
        assert!(read_checkpoint(dir.path()).is_err());
        delete_checkpoint(dir.path()).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), None);
    }
}
