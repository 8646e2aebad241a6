//! vltava-streams: stream processing on Kafka topics, in Rust, with Kafka
//! Streams' model. An application describes a topology with the DSL
//! ([`StreamsBuilder`] -> [`KStream`], [`KTable`], windows, joins) or the
//! lower-level [`Topology`] / [`Processor`] API, then runs it with
//! [`KafkaStreams`] against vltava or any Kafka-compatible cluster: one task
//! per input partition, several threads and instances sharing the work
//! through a consumer group, local state stores backed by compacted changelog
//! topics, at-least-once or exactly-once (v2) processing.
//! [`TopologyTestDriver`] runs a topology in memory, without a broker.
//!
//! - [`serde`]: turning keys and values into bytes and back.
//! - [`record`]: a record and where it came from.
//! - [`processor`]: the Processor API (processors, their context, punctuation).
//! - [`topology`]: nodes, sub-topologies, internal topics, naming.
//! - [`task`]: one task's processor instances and stores, and how a record
//!   flows through them.
//! - [`state`]: state stores (key-value, window, session; in memory or on
//!   redb) and their changelogs.
//! - [`dsl`]: the high-level DSL.
//! - [`config`]: Kafka Streams' configuration names.
//! - [`runtime`]: [`KafkaStreams`]: threads, the consumer group, producers,
//!   commits, restoration, interactive queries.
//! - [`test_driver`]: the `TopologyTestDriver`.

pub mod config;
pub mod dsl;
pub mod error;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod serde;
pub mod state;
pub mod task;
pub mod test_driver;
pub mod topology;

pub use config::{ProcessingGuarantee, StreamsConfig};
pub use dsl::{
    Change, Consumed, GlobalKTable, Grouped, JoinWindows, Joined, KGroupedStream, KGroupedTable, KStream, KTable,
    Materialized, Produced, SessionWindows, SlidingWindows, StreamJoined, StreamsBuilder, Suppressed, TimeWindows,
    ValueAndTimestamp, WindowedSerde,
};
pub use error::{Result, StreamsError};
pub use processor::{Processor, ProcessorContext, PunctuationType, ScheduleId};
pub use record::{Headers, Record, RecordMetadata};
pub use runtime::{KafkaStreams, KeyQueryMetadata, StreamsMetadata, StreamsState};
pub use serde::{Serde, Serdes};
pub use state::{KeyValueStore, SessionStore, StoreBuilder, Stores, Window, WindowStore, Windowed};
pub use test_driver::{TestInputTopic, TestOutputTopic, TopologyTestDriver};
pub use topology::{TaskId, Topology};

/// What keys and values flowing through a topology must be: cloned when a
/// node forwards to several children, moved between threads with their task.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}
