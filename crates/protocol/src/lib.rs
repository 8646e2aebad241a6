//! Kafka wire protocol for vltava, on top of the `kafka-protocol` crate.
//!
//! This crate knows how bytes look on the wire and nothing about topics,
//! logs or sockets:
//! - [`frame`]: size-prefixed frames and their bound,
//! - [`request`]: request header parsing, version checks against
//!   [`api_versions::SUPPORTED`], and response encoding with the right
//!   header version,
//! - [`batch`]: a zero-copy view of a RecordBatch (magic v2) header, its
//!   validation (CRC-32C, lengths, counts) and the in-place rewrites the log
//!   is allowed to make (base offset, leader epoch, LogAppendTime).

pub mod api_versions;
pub mod batch;
pub mod frame;
pub mod request;

pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError;
pub use kafka_protocol::messages;
pub use kafka_protocol::protocol::StrBytes;
