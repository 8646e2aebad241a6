use std::io;

/// Errors from the log. `OffsetOutOfRange` is the client's; `Io` is the
/// disk's; `Corrupt` means data on disk failed validation outside recovery.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    #[error("I/O error on {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("corrupt log data in {path}: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("batch rejected: {0}")]
    Batch(#[from] vltava_protocol::batch::BatchError),
    #[error("producer state: {0}")]
    Producer(#[from] crate::producer_state::ProducerError),
    #[error("append of {bytes} bytes exceeds the segment size limit {segment_bytes}")]
    TooLarge { bytes: usize, segment_bytes: u64 },
    /// The log directory failed earlier (see `LogDir`): nothing is read or
    /// written there until restart.
    #[error("log directory {dir} is offline after an I/O error ({reason}); restart vltava once the disk is fixed")]
    Offline { dir: String, reason: String },
    /// Producing would leave less free space in the log directory than
    /// `log.dir.min.free.bytes` keeps for what must always be written (the
    /// metadata log, checkpoints, offset commits, transaction markers).
    /// Refused, not latched: appends resume once space returns.
    #[error(
        "log directory {dir} has {free} bytes free, below log.dir.min.free.bytes={min_free}: produce is refused until space is freed"
    )]
    DiskFull { dir: String, free: u64, min_free: u64 },
    /// The partition's role is not leader (set by the broker, which owns roles).
    #[error("this replica is not the leader")]
    NotLeader,
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub(crate) trait IoContext<T> {
    fn ctx(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StorageError::Io { path: path.display().to_string(), source })
    }
}
