//! Cluster metadata as an event log, in the style of KRaft.
//!
//! Every change (a topic created, a partition's leader or epoch changed, a
//! config set, a topic removed) is a [`MetadataRecord`]. Records are appended
//! in atomic batches to the metadata log ([`RaftLog`]) and applied, in
//! order, to an immutable [`MetadataImage`]; readers hold an `Arc` of the
//! image they started with. The log is replicated by Raft (raft-rs, driven
//! by the broker); [`RaftLog`] is its storage. A single node is a quorum
//! of one.
//!
//! This crate knows nothing about the network or the partition logs.

mod image;
mod log;
mod properties;
mod record;

pub use image::{BrokerImage, MetadataImage, PartitionImage, TopicImage};
pub use log::{AppliedIds, EntryData, MetadataError, OnCorruption, RaftLog};
pub use properties::{MetaProperties, META_PROPERTIES};
pub use raft;
pub use record::MetadataRecord;

/// Name of the directory holding the metadata log, as in KRaft.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
