//! Consumer groups (the classic protocol): the state machine
//! ([`state`]), the coordinator that owns groups, persists them and runs
//! their deadlines ([`coordinator`]), and Kafka's `__consumer_offsets`
//! record formats ([`records`]).

pub mod coordinator;
pub mod records;
pub mod state;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
