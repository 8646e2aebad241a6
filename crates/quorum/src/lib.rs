//! The metadata quorum of vltava, in the style of KRaft.
//!
//! Cluster state is a log of metadata records replicated by Raft among the
//! controller voters (`controller.quorum.voters`); every node applies the
//! committed records, in order, to an immutable `MetadataImage`. We do not
//! write consensus: TiKV's raft-rs (0.7) decides, and does no I/O of its
//! own, so this crate supplies it:
//!
//! - [`log`]: the log on disk (`__cluster_metadata-0`): Raft entries as
//!   record batches on the storage crate's `Log`, the hard state, and
//!   snapshots ([`snapshot`], KIP-630) that bound it;
//! - [`membership`]: the voter set (KIP-853) as raft-rs membership
//!   changes whose context carries each member's endpoint;
//! - [`node`]: one voter as a state machine (no threads, sockets or
//!   clocks), which the tests drive by hand;
//! - [`transport`]: the controller listener and the connections to peers;
//! - [`controller`]: the active controller's duties (fencing, unfencing,
//!   preferred leaders, the cluster id);
//! - [`voter_change`]: a voter change (KIP-853) as the leader carries it
//!   out, a state machine without I/O;
//! - [`driver`]: the thread that runs a node, and [`Quorum`], the broker's
//!   handle on it;
//! - [`legacy`]: the logs of earlier releases, imported once.
//!
//! The crate knows records and images, not partitions or Kafka requests.

pub mod applied;
pub mod controller;
pub mod driver;
mod legacy;
pub mod log;
pub mod membership;
pub mod node;
pub mod sasl;
pub mod snapshot;
pub mod transport;
pub mod voter_change;

pub use applied::AppliedIds;
pub use controller::{DutySettings, Heartbeat};
pub use driver::{ProposeError, Publisher, Quorum, QuorumNetwork, QuorumStatus, VoterStatus, EXIT_METADATA_LOG_FAILED};
pub use log::{LogSettings, OnCorruption};
pub use membership::{Membership, VoterChange};
pub use node::{NodeSettings, QuorumNode};
pub use sasl::ControllerSasl;
pub use transport::ControllerTls;
pub use voter_change::{VoterError, VoterOp};

/// Name of the directory holding the metadata log, as in KRaft.
pub const METADATA_DIR: &str = "__cluster_metadata-0";

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("metadata log I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("metadata log: {0}")]
    Storage(#[from] vltava_storage::StorageError),
    #[error(
        "the metadata log {path} is corrupt{}: {reason}. vltava refuses to start rather than drop committed \
         metadata. Restore the directory from a backup; or, on one of several controllers, move it away and \
         start the node again to copy the log from the others; or start once with \
         --truncate-corrupt-metadata-log to keep only what precedes the corruption (what was created after it \
         is lost)",
        position.map(|p| format!(" at byte {p}")).unwrap_or_default()
    )]
    Corrupt { path: String, position: Option<u64>, reason: String },
    #[error("{0}")]
    Legacy(String),
    #[error("metadata entry {index} cannot be read by this version of vltava: {reason}")]
    Unreadable { index: u64, reason: String },
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

impl QuorumError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        QuorumError::Io { path: path.display().to_string(), source }
    }
}
