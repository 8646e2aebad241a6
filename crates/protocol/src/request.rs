//! Request decoding and response encoding.
//!
//! A frame (without its length prefix) starts with `api_key`, `api_version`
//! and `correlation_id` in every header version, so those are read first; the
//! rest of the header and the body are decoded only for supported versions.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::api_versions;

/// The fixed leading fields of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl HeaderPrefix {
    /// Reads the prefix; `None` if the frame is shorter than 8 bytes.
    pub fn peek(frame: &[u8]) -> Option<Self> {
        let b = frame.get(..8)?;
        Some(Self {
            api_key: i16::from_be_bytes([b[0], b[1]]),
            api_version: i16::from_be_bytes([b[2], b[3]]),
            correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
    pub fn client_id(&self) -> &str {
        self.header.client_id.as_ref().map(|s| s.as_str()).unwrap_or("")
    }
}

/// Why a frame could not be turned into a [`Request`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("frame too short for a request header")]
    Truncated,
    #[error("unknown api key {}", .0.api_key)]
    UnknownApiKey(HeaderPrefix),
    #[error("unsupported version {} of {:?}", .prefix.api_version, .api_key)]
    UnsupportedVersion { prefix: HeaderPrefix, api_key: ApiKey },
    #[error("malformed {api_key:?} v{}: {reason}", .prefix.api_version)]
    Malformed { prefix: HeaderPrefix, api_key: ApiKey, reason: String },
}

/// Decodes one request frame (the bytes after the length prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Request, RequestError> {
    let prefix = HeaderPrefix::peek(&frame).ok_or(RequestError::Truncated)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| RequestError::UnknownApiKey(prefix))?;
    if !api_versions::is_supported(api_key, prefix.api_version) {
        return Err(RequestError::UnsupportedVersion { prefix, api_key });
    }
    let malformed = |e: anyhow::Error| RequestError::Malformed { prefix, api_key, reason: e.to_string() };
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(malformed)?;
    let body = RequestKind::decode(api_key, &mut frame, prefix.api_version).map_err(malformed)?;
    Ok(Request { api_key, header, body })
}

/// Encodes a response frame, length prefix included. ApiVersions always uses
/// response header v0 (the codec's header version table says so).
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header.encode(&mut buf, header_version).map_err(|e| EncodeError(e.to_string()))?;
    body.encode(&mut buf, version).map_err(|e| EncodeError(e.to_string()))?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// A response could not be encoded: a bug of ours (a field set that the
/// version cannot carry), never the client's.
#[derive(Debug, thiserror::Error)]
#[error("response encoding failed: {0}")]
pub struct EncodeError(pub String);
