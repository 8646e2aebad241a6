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
//!   dead-letter topic.

pub mod dead_letter;
pub mod groups;
pub mod partition;
pub mod partitions;
pub mod persister;
pub mod session;
pub mod settings;
