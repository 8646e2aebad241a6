//! Transactions: the coordinator for transactional ids
//! ([`coordinator`]), their metadata ([`state`]) and Kafka's
//! `__transaction_state` record formats ([`records`]), and the partition
//! leaders' side of transactions v2 ([`implicit`]).

pub mod coordinator;
pub mod implicit;
pub mod records;
pub mod state;

pub use coordinator::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
