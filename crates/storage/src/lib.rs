//! The partition log of vltava.
//!
//! A [`Log`] is an ordered set of [`Segment`]s in one directory. Each segment
//! is a `.log` file of record batches, stored exactly as produced except for
//! the base offset and leader epoch, plus a sparse [`OffsetIndex`] and a
//! [`TimeIndex`]. The crate knows nothing about the network or Kafka
//! requests; it validates batch *headers* through `vltava-protocol` and never
//! decodes records.
//!
//! Invariants (asserted in debug builds):
//! - offsets are strictly increasing across batches and segments;
//! - the log end offset never moves backwards except by explicit truncation;
//! - after [`Log::open`] with recovery, every complete batch with a valid CRC
//!   up to the first bad one is kept and the rest of the file is cut.

pub mod atomic_file;
pub mod cleaner;
mod error;
pub mod leader_epoch;
pub mod log;
pub mod log_dir;
pub mod offset_index;
pub mod partition_metadata;
pub mod producer_state;
pub mod segment;
pub mod time_index;

pub use cleaner::{CleanerConfig, CleaningPlan};
pub use error::{Result, StorageError};
pub use leader_epoch::LeaderEpochCache;
pub use log::{segment_bases, AppendInfo, FileSlice, FlushTarget, Log, LogConfig, Recovery};
pub use log_dir::LogDir;
pub use offset_index::OffsetIndex;
pub use producer_state::{AbortedTxn, ProducerError, ProducerStateManager};
pub use segment::{Segment, SegmentCheck};
pub use time_index::TimeIndex;

/// File name of a segment part: the 20-digit zero-padded base offset plus `ext`.
pub fn segment_file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}
