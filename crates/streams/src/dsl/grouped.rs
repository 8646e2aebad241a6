//! `KGroupedStream` and `KGroupedTable`: count, reduce, aggregate. To be
//! written by the DSL helper.

use super::kstream::KStream;
use super::ktable::KTable;

pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
}

pub struct KGroupedTable<K, V> {
    pub(crate) table: KTable<K, V>,
}
