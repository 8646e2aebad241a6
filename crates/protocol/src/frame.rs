//! Size-prefixed frames: every Kafka request and response is an `int32`
//! length followed by that many bytes.

/// Bytes of the length prefix in front of every frame.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Why a frame length was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("frame length {0} is negative or too small to hold a request header")]
    Invalid(i32),
}

/// Smallest request: api_key(2) + api_version(2) + correlation_id(4) + client_id length(2).
pub const REQUEST_BYTES_MIN: usize = 10;

/// Validates the length prefix of a request frame against `max_bytes`.
pub fn request_frame_len(prefix: [u8; FRAME_PREFIX_BYTES], max_bytes: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < REQUEST_BYTES_MIN as i32 {
        return Err(FrameError::Invalid(size));
    }
    let size = size as usize;
    if size > max_bytes {
        return Err(FrameError::TooLarge { size, max: max_bytes });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(request_frame_len(100i32.to_be_bytes(), 1000), Ok(100));
        assert_eq!(request_frame_len(1001i32.to_be_bytes(), 1000), Err(FrameError::TooLarge { size: 1001, max: 1000 }));
        assert_eq!(request_frame_len((-5i32).to_be_bytes(), 1000), Err(FrameError::Invalid(-5)));
        assert_eq!(request_frame_len(3i32.to_be_bytes(), 1000), Err(FrameError::Invalid(3)));
    }
}
