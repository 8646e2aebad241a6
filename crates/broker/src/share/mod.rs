//! Share groups (KIP-932): queue semantics on the log.
//!
//! - [`persister`]: how a share partition's state (start offset, delivery
//!   states and counts) is kept durable, through the share coordinator;
//! - [`groups`]: share group membership at the group coordinator.

pub mod groups;
pub mod persister;
