//! Consumer groups: the classic protocol's state machine ([`state`]), the
//! KIP-848 consumer protocol's ([`consumer`], with its server-side
//! [`assignor`]s), the coordinator that owns groups, persists them and runs
//! their deadlines ([`coordinator`], [`consumer_coordinator`]), and Kafka's
//! `__consumer_offsets` record formats ([`records`], [`consumer_records`]),
//! and online migration between the two protocols ([`migration`]).

pub mod assignor;
pub mod consumer;
pub mod consumer_coordinator;
pub mod consumer_records;
pub mod coordinator;
pub mod migration;
pub mod records;
pub mod state;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
