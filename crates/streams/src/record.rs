//! A record flowing through a topology, and where it came from.

/// Kafka record headers, in order; a header's value may be null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Option<Vec<u8>>)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn add(&mut self, key: impl Into<String>, value: Option<Vec<u8>>) -> &mut Self {
        self.0.push((key.into(), value));
        self
    }

    /// The last value of `key` (Kafka's `lastHeader`).
    pub fn last(&self, key: &str) -> Option<&Option<Vec<u8>>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A typed record: key, value, timestamp (ms since the epoch) and headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp: i64,
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record { key, value, timestamp, headers: Headers::default() }
    }

    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record { key, value: self.value, timestamp: self.timestamp, headers: self.headers }
    }

    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record { key: self.key, value, timestamp: self.timestamp, headers: self.headers }
    }

    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// The input record being processed: where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A record as read from a topic (bytes), before a source node decodes it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
}

/// A record a task sends (to an output, repartition or changelog topic).
/// `partition: None` lets the producer's partitioner choose (murmur2 of the
/// key, as the Java client's default partitioner, so that co-partitioning
/// with topics written by other clients holds).
#[derive(Clone, Debug, PartialEq)]
pub struct OutRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
}
