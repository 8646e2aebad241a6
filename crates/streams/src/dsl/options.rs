//! The option objects of DSL operations (Kafka Streams' `Consumed`,
//! `Produced`, `Grouped`, `Materialized`, `Joined`, `StreamJoined`): serdes
//! and names.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::serde::SerdeRef;

/// How a source reads a topic: its serdes and the source node's name.
pub struct Consumed<K, V> {
    pub(crate) key: SerdeRef<K>,
    pub(crate) value: SerdeRef<V>,
    pub(crate) name: Option<String>,
}

impl<K, V> Consumed<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Consumed { key, value, name: None }
    }
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// How a sink writes a topic.
pub struct Produced<K, V> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced { key: None, value: None, name: None }
    }
}

impl<K, V> Produced<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Produced { key: Some(key), value: Some(value), name: None }
    }
    pub fn key_serde(key: SerdeRef<K>) -> Self {
        Produced { key: Some(key), value: None, name: None }
    }
    pub fn value_serde(value: SerdeRef<V>) -> Self {
        Produced { key: None, value: Some(value), name: None }
    }
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Serdes (and the repartition topic's name) of a grouping.
pub struct Grouped<K, V> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped { key: None, value: None, name: None }
    }
}

impl<K, V> Grouped<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Grouped { key: Some(key), value: Some(value), name: None }
    }
    pub fn key_serde(key: SerdeRef<K>) -> Self {
        Grouped { key: Some(key), value: None, name: None }
    }
    pub fn value_serde(value: SerdeRef<V>) -> Self {
        Grouped { key: None, value: Some(value), name: None }
    }
    /// Names the repartition topic `<application.id>-<name>-repartition`.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// How a table or aggregation is kept: the store's name (queryable by it),
/// serdes, logging, in memory or on disk, retention of windowed stores.
pub struct Materialized<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    /// Extra changelog configs; `None` when logging is disabled.
    pub(crate) logging: Option<BTreeMap<String, String>>,
    pub(crate) in_memory: bool,
    pub(crate) retention: Option<Duration>,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            name: None,
            key: None,
            value: None,
            logging: Some(BTreeMap::new()),
            in_memory: false,
            retention: None,
        }
    }
}

impl<K, V> Materialized<K, V> {
    /// A store named `name` (`<application.id>-<name>-changelog`).
    pub fn as_store(name: &str) -> Self {
        Materialized { name: Some(name.to_string()), ..Default::default() }
    }
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Materialized { key: Some(key), value: Some(value), ..Default::default() }
    }
    pub fn with_key_serde(mut self, key: SerdeRef<K>) -> Self {
        self.key = Some(key);
        self
    }
    pub fn with_value_serde(mut self, value: SerdeRef<V>) -> Self {
        self.value = Some(value);
        self
    }
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = None;
        self
    }
    pub fn with_logging_enabled(mut self, configs: BTreeMap<String, String>) -> Self {
        self.logging = Some(configs);
        self
    }
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }
}

/// Serdes of a stream-table join's repartitioning and its name.
pub struct Joined<K, V, VO> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    /// Kafka's `Joined` carries the table's value serde; here the table's
    /// store already has it, so it is accepted and not needed.
    #[allow(dead_code)]
    pub(crate) other_value: Option<SerdeRef<VO>>,
    pub(crate) name: Option<String>,
}

impl<K, V, VO> Default for Joined<K, V, VO> {
    fn default() -> Self {
        Joined { key: None, value: None, other_value: None, name: None }
    }
}

impl<K, V, VO> Joined<K, V, VO> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>, other_value: SerdeRef<VO>) -> Self {
        Joined { key: Some(key), value: Some(value), other_value: Some(other_value), name: None }
    }
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Serdes and store names of a stream-stream join's two window stores.
pub struct StreamJoined<K, V, VO> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) other_value: Option<SerdeRef<VO>>,
    pub(crate) name: Option<String>,
    pub(crate) store_name: Option<String>,
    pub(crate) logging: Option<BTreeMap<String, String>>,
}

impl<K, V, VO> Default for StreamJoined<K, V, VO> {
    fn default() -> Self {
        StreamJoined {
            key: None,
            value: None,
            other_value: None,
            name: None,
            store_name: None,
            logging: Some(BTreeMap::new()),
        }
    }
}

impl<K, V, VO> StreamJoined<K, V, VO> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>, other_value: SerdeRef<VO>) -> Self {
        StreamJoined { key: Some(key), value: Some(value), other_value: Some(other_value), ..Default::default() }
    }
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
    pub fn with_store_name(mut self, name: &str) -> Self {
        self.store_name = Some(name.to_string());
        self
    }
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = None;
        self
    }
}
