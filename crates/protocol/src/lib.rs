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

/// Kafka's name of an error code, e.g. `KAFKA_STORAGE_ERROR` for 56
/// (`NONE` for 0, `error code N` for a code Kafka does not define).
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("error code {c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}
