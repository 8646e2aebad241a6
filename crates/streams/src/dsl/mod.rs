//! The DSL: [`StreamsBuilder`] makes [`KStream`]s and [`KTable`]s from
//! topics; their operations add nodes (and stores, and repartition topics)
//! to the builder's [`Topology`], named as Kafka Streams names them
//! (`KSTREAM-FILTER-0000000001`, `KSTREAM-AGGREGATE-STATE-STORE-0000000003`,
//! `<store>-repartition`, ...). Closures given to operations run in every
//! task, on every stream thread: they are `Fn + Send + Sync + 'static`.
//!
//! Serdes travel with a stream: a source's serdes stay known through
//! operations that keep the type; after one that changes it, the operation
//! that needs bytes (a sink, a store, a repartition) takes them from
//! `Produced`, `Grouped`, `Materialized`, `Joined`, ... or fails the build
//! with a message naming the operation.
//!
//! - [`kstream`]: `KStream` and its stateless operations, `to`, `repartition`.
//! - [`ktable`]: `KTable` (a changelog stream of [`Change`]s plus, when
//!   materialized, a store of [`ValueAndTimestamp`]s), table-table joins.
//! - [`grouped`]: `KGroupedStream` / `KGroupedTable` and their aggregations.
//! - [`windows`]: `TimeWindows`, `SlidingWindows`, `SessionWindows`,
//!   `JoinWindows`; [`windowed`]: windowed aggregations; [`suppress`].
//! - [`joins`]: stream-stream, stream-table and stream-global-table joins;
//!   [`global`]: `GlobalKTable`.
//! - [`options`]: `Consumed`, `Produced`, `Grouped`, `Materialized`, ...

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::Result;
use crate::topology::Topology;

pub mod global;
pub mod grouped;
pub mod joins;
pub mod kstream;
pub mod ktable;
pub mod options;
pub mod suppress;
pub mod windowed;
pub mod windows;

pub use global::GlobalKTable;
pub use grouped::{KGroupedStream, KGroupedTable};
pub use kstream::{BranchedKStream, KStream};
pub use ktable::{Change, KTable, ValueAndTimestamp};
pub use options::{Consumed, Grouped, Joined, Materialized, Produced, StreamJoined};
pub use suppress::Suppressed;
pub use windowed::{SessionWindowedKStream, TimeWindowedKStream};
pub use windows::{JoinWindows, SessionWindows, SlidingWindows, TimeWindows, WindowedSerde};

/// The builder's state shared by the streams and tables it made.
pub(crate) struct BuilderInner {
    pub topology: Topology,
    /// Kafka Streams' name counter: every generated name takes the next index.
    counter: usize,
}

impl BuilderInner {
    /// `PREFIX-0000000007`: a generated node or store name.
    pub fn new_name(&mut self, prefix: &str) -> String {
        let n = self.counter;
        self.counter += 1;
        format!("{prefix}-{n:010}")
    }
}

pub(crate) type Shared = Rc<RefCell<BuilderInner>>;

/// Builds a topology with the DSL.
pub struct StreamsBuilder {
    pub(crate) inner: Shared,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsBuilder {
    pub fn new() -> Self {
        StreamsBuilder { inner: Rc::new(RefCell::new(BuilderInner { topology: Topology::new(), counter: 0 })) }
    }

    /// The topology built so far (the streams and tables made by this
    /// builder may keep adding to the builder, not to what this returns).
    pub fn build(&self) -> Result<Topology> {
        Ok(self.inner.borrow().topology.clone())
    }
}
