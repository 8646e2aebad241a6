//! Share groups (KIP-932): queue semantics on the log.
//!
//! - [`persister`]: how a share partition's state (start offset, delivery
//!   states and counts) is kept durable, through the share coordinator;
//! - [`groups`]: share group membership at the group coordinator;
//! - [`coordinator`] and [`records`]: the share coordinator, which keeps
//!   share partition states in `__share_group_state`;
//! - [`remote_persister`]: the persister that reaches it, here or on
//!   another broker.

pub mod coordinator;
pub mod groups;
pub mod persister;
pub mod records;
pub mod remote_persister;
