//! Cluster metadata as an event log, in the style of KRaft.
//!
//! Every change (a topic created, a partition's leader or epoch changed, a
//! config set, a topic removed) is a [`MetadataRecord`]. Records are
//! proposed in atomic batches ([`EntryData`], one Raft entry each, in the
//! binary form of [`codec`]) to the metadata log, which the quorum crate
//! replicates, and applied in order to an immutable [`MetadataImage`];
//! readers hold an `Arc` of the image they started with.
//!
//! This crate knows nothing about the network, Raft or the partition logs.

pub mod acl;
pub mod codec;
mod image;
mod properties;
mod record;

pub use acl::{AclBinding, AclFilter, AclOperation, AclPermission, Acls, PatternType, ResourceType};
pub use codec::{CodecError, EntryData};
pub use image::{BrokerImage, MetadataImage, PartitionImage, QuotaEntity, TopicImage};
pub use properties::{MetaProperties, META_PROPERTIES};
pub use record::{BrokerEndpoint, DelegationTokenInfo, MetadataRecord, QuotaValue, ScramCredentialData};
