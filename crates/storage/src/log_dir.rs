//! A log directory's health: Kafka's LogDirFailureChannel.
//!
//! After a failed write or fsync the kernel may have dropped the dirty
//! pages, so a later fsync that succeeds proves nothing ("fsyncgate"). The
//! first I/O error on any file of a log directory therefore takes the whole
//! directory offline until the process restarts: every log in it refuses
//! further reads, appends and flushes with [`StorageError::Offline`], and
//! nothing more is acknowledged from it. The broker learns of the failure
//! through the hook given to [`LogDir::on_failure`] (to wake waiters and
//! tell the controller) and never writes its clean-shutdown marker, so the
//! next start recovers the logs.
//!
//! A full disk is kept from happening rather than latched: [`LogDir::admit`]
//! refuses produced bytes that would leave less than `min_free_bytes` free
//! (`log.dir.min.free.bytes`), so the space left stays for what must always
//! be written (the metadata log, checkpoints, offset commits, transaction
//! markers, the files a restart writes). Nothing is latched: produce resumes
//! as soon as retention, deleted topics or the operator free space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::error::{Result, StorageError};

type FailureHook = Box<dyn Fn(&LogDir) + Send + Sync>;

/// How old the free-space figure may get before [`LogDir::admit`] measures
/// again, and how often it measures while refusing (to see space return).
const SPACE_MEASURE_EVERY_MS: u64 = 1_000;
const SPACE_MEASURE_WHILE_LOW_MS: u64 = 100;

pub struct LogDir {
    path: PathBuf,
    failure: OnceLock<String>,
    hook: OnceLock<FailureHook>,
    space: SpaceGuard,
}

/// The file system's size, as `statvfs` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub total_bytes: u64,
    /// Available to this (unprivileged) process.
    pub usable_bytes: u64,
}

/// Free bytes as last measured, less what was admitted since.
struct SpaceGuard {
    min_free: AtomicU64,
    free: AtomicU64,
    /// Milliseconds after `epoch` of the last measurement (0: never).
    measured_ms: AtomicU64,
    epoch: Instant,
    low: AtomicBool,
}

impl std::fmt::Debug for LogDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDir").field("path", &self.path).field("failure", &self.failure.get()).finish()
    }
}

impl LogDir {
    pub fn new(path: impl Into<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            failure: OnceLock::new(),
            hook: OnceLock::new(),
            space: SpaceGuard {
                min_free: AtomicU64::new(0),
                free: AtomicU64::new(0),
                measured_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                low: AtomicBool::new(false),
            },
        })
    }

    /// The free space [`LogDir::admit`] keeps.
    pub fn min_free_bytes(&self) -> u64 {
        self.space.min_free.load(Ordering::Relaxed)
    }

    /// Free space [`LogDir::admit`] keeps; 0 admits everything.
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.space.min_free.store(bytes, Ordering::Relaxed);
    }

    /// The file system holding the directory; `None` if it cannot be
    /// measured.
    pub fn space(&self) -> Option<Space> {
        let stat = rustix::fs::statvfs(&self.path).ok()?;
        Some(Space {
            total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
            usable_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        })
    }

    /// Whether `bytes` more of produced data may be written here: refused
    /// with [`StorageError::DiskFull`] when that would leave less than the
    /// minimum free. Measures the file system at most every second (every
    /// 100 ms while refusing) and counts what it admits in between.
    pub fn admit(&self, bytes: u64) -> Result<()> {
        self.admit_at(bytes, self.space.epoch.elapsed().as_millis() as u64 + 1)
    }

    fn admit_at(&self, bytes: u64, now_ms: u64) -> Result<()> {
        let guard = &self.space;
        let min_free = guard.min_free.load(Ordering::Relaxed);
        if min_free == 0 {
            return Ok(());
        }
        let measured_ms = guard.measured_ms.load(Ordering::Relaxed);
        let since = now_ms.saturating_sub(measured_ms);
        let short = guard.free.load(Ordering::Relaxed) < min_free.saturating_add(bytes);
        if measured_ms == 0 || since >= SPACE_MEASURE_EVERY_MS || (short && since >= SPACE_MEASURE_WHILE_LOW_MS) {
            // unmeasurable: admit, as before the guard existed; the latch
            // still catches a write that fails
            let usable = self.space().map_or(u64::MAX, |s| s.usable_bytes);
            guard.free.store(usable, Ordering::Relaxed);
            guard.measured_ms.store(now_ms, Ordering::Relaxed);
        }
        let admitted = guard.free.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |free| {
            (free >= min_free.saturating_add(bytes)).then(|| free - bytes)
        });
        match admitted {
            Ok(free) => {
                // said once space is clearly back, not at every batch that
                // fits just above the minimum
                let clear = free - bytes >= min_free.saturating_add(min_free / 16);
                if clear && guard.low.swap(false, Ordering::Relaxed) {
                    tracing::info!(dir = %self.path.display(), min_free, "free space is back: accepting produce again");
                }
                Ok(())
            }
            Err(free) => {
                if !guard.low.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        dir = %self.path.display(),
                        free,
                        min_free,
                        "free space below log.dir.min.free.bytes: refusing produce with KAFKA_STORAGE_ERROR until space is freed"
                    );
                }
                Err(StorageError::DiskFull { dir: self.path.display().to_string(), free, min_free })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_offline(&self) -> bool {
        self.failure.get().is_some()
    }

    /// What took the directory offline.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Called once, on the thread that saw the first failure (it may hold a
    /// log's lock: the hook must not take one).
    pub fn on_failure(&self, hook: impl Fn(&LogDir) + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(hook));
    }

    /// `Err(Offline)` once the directory has failed.
    pub fn check(&self) -> Result<()> {
        match self.failure.get() {
            None => Ok(()),
            Some(reason) => Err(self.offline_error(reason)),
        }
    }

    fn offline_error(&self, reason: &str) -> StorageError {
        StorageError::Offline { dir: self.path.display().to_string(), reason: reason.to_string() }
    }

    /// Takes the directory offline; the first reason is kept.
    pub fn fail(&self, reason: impl std::fmt::Display) {
        let reason = reason.to_string();
        if self.failure.set(reason.clone()).is_err() {
            return;
        }
        tracing::error!(
            dir = %self.path.display(),
            %reason,
            "I/O error: taking the log directory offline until restart; its partitions answer KAFKA_STORAGE_ERROR"
        );
        if let Some(hook) = self.hook.get() {
            hook(self);
        }
    }

    /// Passes `result` through, taking the directory offline on an I/O
    /// error (which is then reported as `Offline`).
    pub fn latch<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(StorageError::Io { path, source }) => {
                self.fail(format!("{path}: {source}"));
                Err(self.offline_error(self.failure().unwrap_or_default()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_first_io_error_latches_and_the_hook_runs_once() {
        let dir = LogDir::new("/data");
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        dir.on_failure(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        assert!(dir.check().is_ok());
        // errors that are not the disk's pass through and change nothing
        let not_io: Result<()> = Err(StorageError::NotLeader);
        assert!(matches!(dir.latch(not_io), Err(StorageError::NotLeader)));
        assert!(!dir.is_offline());
        let eio = std::io::Error::from_raw_os_error(5);
        let r: Result<()> = Err(StorageError::Io { path: "/data/t-0/0.log".into(), source: eio });
        assert!(matches!(dir.latch(r), Err(StorageError::Offline { .. })));
        let enospc = std::io::Error::from_raw_os_error(28);
        let _ = dir.latch::<()>(Err(StorageError::Io { path: "x".into(), source: enospc }));
        assert!(dir.failure().unwrap().contains("/data/t-0/0.log"), "the first failure is kept");
        assert!(matches!(dir.check(), Err(StorageError::Offline { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn admit_keeps_the_minimum_free_and_counts_what_it_admits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LogDir::new(tmp.path());
        assert!(dir.space().unwrap().usable_bytes > 0);
        assert!(dir.admit_at(u64::MAX / 2, 1).is_ok(), "no minimum: everything is admitted");
        dir.set_min_free_bytes(1);
        assert!(dir.admit_at(1, 1).is_ok(), "the first call measures");
        dir.set_min_free_bytes(u64::MAX / 2);
        let refused = dir.admit_at(1, 1_000).unwrap_err();
        assert!(matches!(refused, StorageError::DiskFull { min_free, .. } if min_free == u64::MAX / 2), "{refused}");
        assert!(refused.to_string().contains("log.dir.min.free.bytes"));
        assert!(!dir.is_offline(), "refusing is not failing");
        // measured at 1000 ms: free is the file system's usable bytes
        let measured = dir.space.free.load(Ordering::Relaxed);
        dir.set_min_free_bytes(measured - (8 << 10));
        // too soon to measure again while refusing: the figure stands
        assert!(matches!(dir.admit_at(16 << 10, 1_050), Err(StorageError::DiskFull { .. })));
        assert!(dir.admit_at(4 << 10, 1_060).is_ok());
        assert_eq!(dir.space.free.load(Ordering::Relaxed), measured - (4 << 10), "admitted bytes count");
        assert!(dir.admit_at(4 << 10, 1_070).is_ok());
        assert!(matches!(dir.admit_at(1, 1_080), Err(StorageError::DiskFull { .. })), "the minimum is kept");
        // while refusing it measures again after 100 ms, to see space return
        assert_eq!(dir.space.measured_ms.load(Ordering::Relaxed), 1_000);
        let _ = dir.admit_at(1, 1_190);
        assert_eq!(dir.space.measured_ms.load(Ordering::Relaxed), 1_190);
        dir.set_min_free_bytes(1);
        assert!(dir.admit_at(1, 1_200).is_ok());
    }
}
