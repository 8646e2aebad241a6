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

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{Result, StorageError};

type FailureHook = Box<dyn Fn(&LogDir) + Send + Sync>;

pub struct LogDir {
    path: PathBuf,
    failure: OnceLock<String>,
    hook: OnceLock<FailureHook>,
}

impl std::fmt::Debug for LogDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDir").field("path", &self.path).field("failure", &self.failure.get()).finish()
    }
}

impl LogDir {
    pub fn new(path: impl Into<PathBuf>) -> Arc<Self> {
        Arc::new(Self { path: path.into(), failure: OnceLock::new(), hook: OnceLock::new() })
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
}
