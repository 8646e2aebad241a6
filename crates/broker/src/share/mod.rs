//! Share groups (KIP-932): queue semantics on the log.
//!
//! - [`persister`]: how a share partition's state (start offset, delivery
//!   states and counts) is kept durable, through the share coordinator;
//! - [`groups`]: share group membership at the group coordinator
//!   (ShareGroupHeartbeat, the simple assignor);
//! - [`settings`]: a group's effective `group.share.*` settings;
//! - [`partition`]: one share partition's delivery states, locks and
//!   counts, without I/O;
//! - [`partitions`]: the share partitions this node leads, loaded from and
//!   written through the persister;
//! - [`session`]: share fetch sessions;
//! - [`dead_letter`]: copies of given-up records to the group's
//!   dead-letter topic;
//! - [`coordinator`] and [`records`]: the share coordinator, which keeps
//!   share partition states in `__share_group_state`;
//! - [`remote_persister`]: the persister that reaches it, here or on
//!   another broker.

pub mod coordinator;
pub mod dead_letter;
pub mod groups;
pub mod partition;
pub mod partitions;
pub mod persister;
pub mod records;
pub mod remote_persister;
pub mod session;
pub mod settings;
