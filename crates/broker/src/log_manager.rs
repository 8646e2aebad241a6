//! Background maintenance: retention (`log.retention.check.interval.ms`),
//! compaction (`log.cleaner.backoff.ms`), the fsync of rolled segments
//! (every second), the recovery-point checkpoint
//! (`log.flush.offset.checkpoint.interval.ms`) and the abort of timed-out
//! transactions, each on its own interval, the
//! file work done on blocking threads so produce and fetch never wait on it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::Broker;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Deletes segments past retention in every partition, once.
pub fn run_retention_once(broker: &Broker) -> usize {
    let now = now_ms();
    let mut deleted = 0;
    for partition in broker.replicas.all() {
        match partition.enforce_retention(now) {
            Ok(n) => deleted += n,
            Err(e) => {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed")
            }
        }
    }
    deleted
}

/// Compacts every partition of compacted topics that has enough dirty data, once.
pub fn run_cleaner_once(broker: &Broker) -> usize {
    let now = now_ms();
    let mut cleaned = 0;
    for partition in broker.replicas.all() {
        match partition.compact(now) {
            Ok(n) => cleaned += n,
            Err(e) => {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "compaction failed")
            }
        }
    }
    cleaned
}

/// Fsyncs the rolled segments of every partition that has some.
async fn flush_rolled_segments(broker: &Broker) {
    for partition in broker.replicas.all() {
        if let Err(e) = partition.flush_rolled_segments().await {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "flush failed");
        }
    }
}

pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut retention = tokio::time::interval(Duration::from_millis(broker.config.retention_check_interval_ms));
    let mut cleaner = tokio::time::interval(Duration::from_millis(broker.config.cleaner_backoff_ms));
    let mut txn_expiry = tokio::time::interval(Duration::from_millis(broker.config.transaction_abort_interval_ms));
    let mut flush = tokio::time::interval(crate::limits::ROLLED_SEGMENT_FLUSH_INTERVAL);
    let mut checkpoint =
        tokio::time::interval(Duration::from_millis(broker.config.recovery_point_checkpoint_interval_ms));
    for timer in [&mut retention, &mut cleaner, &mut flush, &mut checkpoint] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = flush.tick() => flush_rolled_segments(&broker).await,
            _ = checkpoint.tick() => {
                let b = broker.clone();
                let written = tokio::task::spawn_blocking(move || b.replicas.checkpoint_recovery_points()).await;
                if let Ok(Err(e)) = written {
                    tracing::error!(error = %e, "cannot checkpoint recovery points");
                }
            }
            _ = retention.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || run_retention_once(&b)).await;
            }
            _ = cleaner.tick(), if broker.config.log_cleaner_enable => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || run_cleaner_once(&b)).await;
            }
            _ = txn_expiry.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.txns.abort_timed_out(&b)).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}
