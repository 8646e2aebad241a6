//! A view of RecordBatch (magic v2) headers, validated without decoding
//! records, and the in-place rewrites the broker may make.
//!
//! ```text
//! offset  size  field                       in CRC?
//!   0      8    baseOffset                  no
//!   8      4    batchLength (bytes after)   no
//!  12      4    partitionLeaderEpoch        no
//!  16      1    magic (2)                   no
//!  17      4    crc (CRC-32C)               no
//!  21      2    attributes                  yes (CRC covers 21..end)
//!  23      4    lastOffsetDelta
//!  27      8    baseTimestamp
//!  35      8    maxTimestamp
//!  43      8    producerId
//!  51      2    producerEpoch
//!  53      4    baseSequence
//!  57      4    recordCount
//!  61     ...   records
//! ```

/// Bytes of a v2 batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength` counts: baseOffset + batchLength.
pub const BATCH_LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_LOG_APPEND: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Each maps to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch truncated: {0}")]
    Truncated(&'static str),
    #[error("unsupported magic {0} (only v2 record batches are accepted)")]
    UnsupportedMagic(i8),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("invalid batch: {0}")]
    Invalid(String),
    #[error("a record batch of {size} bytes is larger than the max message size {max}")]
    TooLarge { size: usize, max: usize },
}

impl BatchError {
    /// The Kafka error code for this failure.
    pub fn error_code(&self) -> i16 {
        match self {
            BatchError::Truncated(_) | BatchError::CrcMismatch { .. } => 2, // CORRUPT_MESSAGE
            BatchError::UnsupportedMagic(_) => 35,                          // UNSUPPORTED_VERSION
            BatchError::Invalid(_) => 87,                                   // INVALID_RECORD
            BatchError::TooLarge { .. } => 10,                              // MESSAGE_TOO_LARGE
        }
    }
}

/// A borrowed v2 batch header (the first 61 bytes of a batch).
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader<'a>(&'a [u8]);

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> BatchHeader<'a> {
    /// Views the header at the start of `buf`; needs 61 bytes and magic 2.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        if buf.len() < 17 {
            return Err(BatchError::Truncated("header"));
        }
        let magic = buf[16] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated("header"));
        }
        Ok(Self(&buf[..BATCH_HEADER_BYTES]))
    }
    pub fn base_offset(&self) -> i64 {
        be_i64(self.0, 0)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.0, 8)
    }
    /// Whole batch size on disk/wire, the 12-byte log overhead included.
    pub fn total_bytes(&self) -> usize {
        BATCH_LOG_OVERHEAD + self.batch_length().max(0) as usize
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.0, 12)
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.0, 17) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.0, 21)
    }
    pub fn compression(&self) -> i16 {
        self.attributes() & ATTR_COMPRESSION_MASK
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.0, 23)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.0, 27)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.0, 35)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.0, 43)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.0, 51)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.0, 53)
    }
    pub fn record_count(&self) -> i32 {
        be_i32(self.0, 57)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + self.last_offset_delta() as i64
    }
}

/// Checks the CRC-32C of a complete batch (`buf` is exactly one batch).
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if computed != header.crc() {
        return Err(BatchError::CrcMismatch { stored: header.crc(), computed });
    }
    Ok(())
}

/// Iterates over the complete batches in `buf`, stopping with an error at
/// the first batch whose length field is impossible or cut short.
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Batches<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Byte position of the next batch.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Batches<'a> {
    /// `(position, batch bytes)`
    type Item = Result<(usize, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => {
                self.pos = self.buf.len();
                return Some(Err(e));
            }
        };
        let length = header.batch_length();
        if length < (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) as i32 {
            self.pos = self.buf.len();
            return Some(Err(BatchError::Invalid(format!("batch length {length} smaller than a header"))));
        }
        let total = header.total_bytes();
        if total > rest.len() {
            self.pos = self.buf.len();
            return Some(Err(BatchError::Truncated("batch length exceeds the data")));
        }
        let at = self.pos;
        self.pos += total;
        Some(Ok((at, &rest[..total])))
    }
}

/// What a producer's batches add up to, after validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducedBatches {
    pub batch_count: u32,
    pub record_count: u64,
    pub max_timestamp: i64,
}

/// Validates batches that a producer sent: magic 2, sane lengths, CRC-32C,
/// `lastOffsetDelta + 1 == recordCount`, no control batches, and for
/// uncompressed batches that the records fill the batch exactly.
pub fn validate_produced(buf: &[u8], batch_bytes_max: usize) -> Result<ProducedBatches, BatchError> {
    let mut summary = ProducedBatches { max_timestamp: -1, ..Default::default() };
    for item in Batches::new(buf) {
        let (_, batch) = item?;
        if batch.len() > batch_bytes_max {
            return Err(BatchError::TooLarge { size: batch.len(), max: batch_bytes_max });
        }
        verify_crc(batch)?;
        let h = BatchHeader::parse(batch)?;
        if h.base_offset() != 0 {
            return Err(BatchError::Invalid(format!(
                "the base offset of a produced batch must be 0, not {}",
                h.base_offset()
            )));
        }
        let count = h.record_count();
        if count <= 0 {
            return Err(BatchError::Invalid(format!("record count {count} must be positive")));
        }
        if h.last_offset_delta() != count - 1 {
            return Err(BatchError::Invalid(format!(
                "last offset delta {} does not match record count {count}",
                h.last_offset_delta()
            )));
        }
        if h.is_control() {
            return Err(BatchError::Invalid("producers may not send control batches".into()));
        }
        let compression = h.compression();
        if compression > 4 {
            return Err(BatchError::Invalid(format!("unknown compression codec {compression}")));
        }
        if compression == 0 {
            check_uncompressed_records(&batch[BATCH_HEADER_BYTES..], count)?;
        }
        summary.batch_count += 1;
        summary.record_count += count as u64;
        summary.max_timestamp = summary.max_timestamp.max(h.max_timestamp());
    }
    if summary.batch_count == 0 {
        return Err(BatchError::Invalid("no record batch in produce data".into()));
    }
    Ok(summary)
}

/// Reads a zig-zag varint; `None` when cut short or longer than 5 bytes.
pub fn read_varint(buf: &[u8]) -> Option<(i32, usize)> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate().take(5) {
        value |= ((byte & 0x7f) as u32) << (7 * i);
        if byte & 0x80 == 0 {
            let decoded = ((value >> 1) as i32) ^ -((value & 1) as i32);
            return Some((decoded, i + 1));
        }
    }
    None
}

/// Each record is `varint length` + body; the lengths must tile the region
/// and their number must equal the header's record count.
fn check_uncompressed_records(mut records: &[u8], count: i32) -> Result<(), BatchError> {
    for index in 0..count {
        let (len, used) =
            read_varint(records).ok_or_else(|| BatchError::Invalid(format!("record {index}: bad length varint")))?;
        if len < 0 || used + len as usize > records.len() {
            return Err(BatchError::Invalid(format!("record {index}: length {len} overruns the batch")));
        }
        records = &records[used + len as usize..];
    }
    if !records.is_empty() {
        return Err(BatchError::Invalid(format!("{} bytes after the last record", records.len())));
    }
    Ok(())
}

/// Rewrites base offset and leader epoch of one batch in place (both are
/// outside the CRC).
pub fn assign_offsets(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a batch LogAppendTime with `timestamp_ms` as its max timestamp and
/// recomputes the CRC (attributes and maxTimestamp are inside it).
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = be_i16(batch, 21) | ATTR_TIMESTAMP_LOG_APPEND;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Builds an uncompressed batch of `values` (null keys, no headers): used by
/// tests and tools that need real batches without a client.
pub fn build_batch(base_offset: i64, timestamp_ms: i64, values: &[&[u8]]) -> Vec<u8> {
    let records: Vec<KeyValue<'_>> = values.iter().map(|v| (None, Some(*v))).collect();
    build_keyed_batch(base_offset, timestamp_ms, &records)
}

/// A record's key and value, either of which may be null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Writes a zig-zag varint (record fields).
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

/// Builds an uncompressed batch from records given as `(offset, timestamp,
/// tail)` where `tail` is a record's encoded key, value and headers (see
/// [`RecordView::tail`]): how the log cleaner rewrites what it keeps.
/// Offsets may have gaps; they must increase.
pub fn build_batch_from_tails(
    leader_epoch: i32,
    timestamp_type_log_append: bool,
    records: &[(i64, i64, &[u8])],
) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let base_offset = records[0].0;
    let base_ts = records.iter().map(|r| r.1).min().expect("records");
    let max_ts = records.iter().map(|r| r.1).max().expect("records");
    let mut body = Vec::new();
    for (offset, ts, tail) in records {
        let mut record = vec![0u8];
        put_varint(&mut record, ts - base_ts);
        put_varint(&mut record, offset - base_offset);
        record.extend_from_slice(tail);
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let header = UnsealedHeader {
        base_offset,
        leader_epoch,
        attributes: if timestamp_type_log_append { ATTR_TIMESTAMP_LOG_APPEND } else { 0 },
        last_offset_delta: (records.last().expect("records").0 - base_offset) as i32,
        base_timestamp: base_ts,
        max_timestamp: max_ts,
        record_count: records.len() as i32,
    };
    header.seal(&body)
}

/// The fields of a batch header the builders choose; [`Self::seal`] adds
/// length, magic, CRC and "no producer" fields.
struct UnsealedHeader {
    base_offset: i64,
    leader_epoch: i32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
}

impl UnsealedHeader {
    fn seal(&self, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
        b.extend_from_slice(&self.base_offset.to_be_bytes());
        b.extend_from_slice(&((BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        b.extend_from_slice(&self.leader_epoch.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]); // crc, below
        b.extend_from_slice(&self.attributes.to_be_bytes());
        b.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        b.extend_from_slice(&self.base_timestamp.to_be_bytes());
        b.extend_from_slice(&self.max_timestamp.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
        b.extend_from_slice(&self.record_count.to_be_bytes());
        b.extend_from_slice(body);
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

/// Builds a control batch (transaction marker) of one record with `key`
/// and `value`, for `producer_id` at `epoch`.
pub fn build_control_batch(producer_id: i64, epoch: i16, key: &[u8], value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut b = build_keyed_batch(0, timestamp_ms, &[(Some(key), Some(value))]);
    b[21..23].copy_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Marks a batch transactional for `producer_id` at `epoch`, without
/// sequence numbers, and fixes its CRC.
pub fn make_transactional(batch: &mut [u8], producer_id: i64, epoch: i16) {
    let attributes = be_i16(batch, 21) | ATTR_TRANSACTIONAL;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Builds an uncompressed batch of `(key, value)` records, all with
/// `timestamp_ms`, no producer id: how the broker writes its own internal
/// records (`__consumer_offsets`).
pub fn build_keyed_batch(base_offset: i64, timestamp_ms: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut body = Vec::new();
    for (delta, (key, value)) in records.iter().enumerate() {
        let mut record = vec![0u8]; // attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, delta as i64);
        put_nullable(&mut record, *key);
        put_nullable(&mut record, *value);
        put_varint(&mut record, 0); // headers
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let header = UnsealedHeader {
        base_offset,
        leader_epoch: 0,
        attributes: 0,
        last_offset_delta: records.len() as i32 - 1,
        base_timestamp: timestamp_ms,
        max_timestamp: timestamp_ms,
        record_count: records.len() as i32,
    };
    header.seal(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates() {
        let b = build_batch(0, 1000, &[b"a", b"bb", b"ccc"]);
        let s = validate_produced(&b, usize::MAX).unwrap();
        assert_eq!(s, ProducedBatches { batch_count: 1, record_count: 3, max_timestamp: 1000 });
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.last_offset_delta(), 2);
        assert_eq!(h.total_bytes(), b.len());
    }

    #[test]
    fn crc_flip_is_corrupt() {
        let mut b = build_batch(0, 1000, &[b"hello"]);
        let last = b.len() - 2;
        b[last] ^= 1;
        assert!(matches!(validate_produced(&b, usize::MAX), Err(BatchError::CrcMismatch { .. })));
        assert_eq!(validate_produced(&b, usize::MAX).unwrap_err().error_code(), 2);
    }

    #[test]
    fn offsets_and_epoch_outside_crc() {
        let mut b = build_batch(0, 1000, &[b"x", b"y"]);
        assign_offsets(&mut b, 42, 7);
        verify_crc(&b).unwrap();
        assert!(validate_produced(&b, usize::MAX).is_err(), "producers must send base offset 0");
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!((h.base_offset(), h.last_offset(), h.partition_leader_epoch()), (42, 43, 7));
        set_log_append_time(&mut b, 5555);
        verify_crc(&b).unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().max_timestamp(), 5555);
    }

    #[test]
    fn wrong_count_is_invalid_record() {
        let mut b = build_batch(0, 1000, &[b"x", b"y"]);
        b[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(validate_produced(&b, usize::MAX).unwrap_err().error_code(), 87);
    }

    #[test]
    fn oversized_batch_is_message_too_large_before_any_other_check() {
        let mut b = build_batch(0, 1000, &[b"0123456789"]);
        let len = b.len();
        assert!(validate_produced(&b, len).is_ok());
        b[len - 1] ^= 1; // also a bad CRC: the size is reported first
        assert_eq!(validate_produced(&b, len - 1).unwrap_err(), BatchError::TooLarge { size: len, max: len - 1 });
        assert_eq!(validate_produced(&b, len - 1).unwrap_err().error_code(), 10);
    }

    #[test]
    fn magic_one_unsupported() {
        let mut b = build_batch(0, 1000, &[b"x"]);
        b[16] = 1;
        assert_eq!(validate_produced(&b, usize::MAX).unwrap_err(), BatchError::UnsupportedMagic(1));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = validate_produced(&bytes, usize::MAX);
        }

        #[test]
        fn every_truncation_is_rejected(cut in 0usize..80) {
            let b = build_batch(0, 1, &[b"0123456789", b"abc"]);
            let cut = cut.min(b.len() - 1);
            proptest::prop_assert!(validate_produced(&b[..cut], usize::MAX).is_err());
        }
    }
}

/// Reads a zig-zag varlong; `None` when cut short or longer than 10 bytes.
fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return Some((decoded, i + 1));
        }
    }
    None
}

/// The most a compressed records section may expand to: 64 times its
/// compressed size, and at least 64 MiB. A batch claiming more (a
/// "compression bomb") is refused instead of filling memory.
pub fn decompressed_bytes_max(compressed: usize) -> usize {
    compressed.saturating_mul(64).max(64 << 20)
}

/// The records section of a batch, decompressed when needed (never past
/// [`decompressed_bytes_max`]).
pub fn records_section(batch: &[u8]) -> Result<bytes::Bytes, BatchError> {
    let h = BatchHeader::parse(batch)?;
    let raw = &batch[BATCH_HEADER_BYTES..h.total_bytes().min(batch.len())];
    if h.compression() == 0 {
        return Ok(bytes::Bytes::copy_from_slice(raw));
    }
    decompress(h.compression(), raw, decompressed_bytes_max(raw.len())).map(bytes::Bytes::from)
}

/// `raw` decompressed with Kafka's codec `codec` (0 none, 1 gzip, 2 snappy,
/// 3 lz4, 4 zstd), refused once it expands past `limit` bytes.
pub fn decompress(codec: i16, raw: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let out = match codec {
        0 if raw.len() > limit => Err(too_large(limit)),
        0 => Ok(raw.to_vec()),
        1 => read_bounded(flate2::read::MultiGzDecoder::new(raw), limit),
        2 => snappy_bounded(raw, limit),
        3 => lz4::Decoder::new(raw).and_then(|d| read_bounded(d, limit)),
        4 => zstd::stream::read::Decoder::new(raw).and_then(|d| read_bounded(d, limit)),
        c => return Err(BatchError::Invalid(format!("unknown compression codec {c}"))),
    };
    out.map_err(|e| BatchError::Invalid(format!("cannot decompress: {e}")))
}

fn too_large(limit: usize) -> std::io::Error {
    std::io::Error::other(format!("the records expand past {limit} bytes"))
}

fn read_bounded(reader: impl std::io::Read, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

/// Snappy as Kafka's clients write it: Java's xerial framing (a 16-byte
/// header, then `u32 length, raw block` chunks), or one raw block.
fn snappy_bounded(data: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut block = |bytes: &[u8], out: &mut Vec<u8>| -> std::io::Result<()> {
        let len = snap::raw::decompress_len(bytes).map_err(std::io::Error::other)?;
        if out.len() + len > limit {
            return Err(too_large(limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        decoder.decompress(bytes, &mut out[start..]).map_err(std::io::Error::other)?;
        Ok(())
    };
    if !data.starts_with(XERIAL_MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data.get(16..).ok_or_else(|| std::io::Error::other("snappy header cut short"))?;
    while !rest.is_empty() {
        let len = rest.get(..4).ok_or_else(|| std::io::Error::other("snappy chunk length cut short"))?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let chunk = rest.get(4..4 + len).ok_or_else(|| std::io::Error::other("snappy chunk cut short"))?;
        block(chunk, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// The first record of `batch` whose timestamp is `>= timestamp`, as
/// `(timestamp, offset)`. For LogAppendTime batches every record carries
/// the batch's max timestamp.
pub fn first_record_at_or_after(batch: &[u8], timestamp: i64) -> Result<Option<(i64, i64)>, BatchError> {
    let h = BatchHeader::parse(batch)?;
    if h.attributes() & ATTR_TIMESTAMP_LOG_APPEND != 0 {
        return Ok((h.max_timestamp() >= timestamp).then(|| (h.max_timestamp(), h.base_offset())));
    }
    let records = records_section(batch)?;
    let mut rest = &records[..];
    for _ in 0..h.record_count() {
        let bad = || BatchError::Invalid("record header cut short".into());
        let (len, used) = read_varint(rest).ok_or_else(bad)?;
        let body = rest.get(used..used + len.max(0) as usize).ok_or_else(bad)?;
        let (ts_delta, n) = read_varlong(body.get(1..).ok_or_else(bad)?).ok_or_else(bad)?;
        let (offset_delta, _) = read_varint(&body[1 + n..]).ok_or_else(bad)?;
        let ts = h.base_timestamp() + ts_delta;
        if ts >= timestamp {
            return Ok(Some((ts, h.base_offset() + offset_delta as i64)));
        }
        rest = &rest[used + len as usize..];
    }
    Ok(None)
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[test]
    fn timestamp_search_inside_batch() {
        let b = build_batch(10, 5000, &[b"a", b"b"]);
        assert_eq!(first_record_at_or_after(&b, 4000).unwrap(), Some((5000, 10)));
        assert_eq!(first_record_at_or_after(&b, 6000).unwrap(), None);
    }
}

/// One record of a batch, borrowed from its (decompressed) records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record's encoded key, value and headers, as stored.
    pub tail: &'a [u8],
}

fn take_nullable(buf: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    let (len, used) = read_varint(buf)?;
    if len < 0 {
        return Some((None, used));
    }
    let bytes = buf.get(used..used + len as usize)?;
    Some((Some(bytes), used + len as usize))
}

/// Kafka's codec ids in the batch attributes.
pub fn codec_id(name: &str) -> Option<i16> {
    match name {
        "uncompressed" | "none" => Some(0),
        "gzip" => Some(1),
        "snappy" => Some(2),
        "lz4" => Some(3),
        "zstd" => Some(4),
        _ => None,
    }
}

/// Re-encodes a batch's records with codec `codec` (a topic's
/// `compression.type`), keeping every header field but the attributes'
/// codec bits, the length and the CRC. Returns the batch unchanged when it
/// already uses that codec.
pub fn recompress(batch: &[u8], codec: i16) -> Result<Vec<u8>, BatchError> {
    use bytes::BufMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let h = BatchHeader::parse(batch)?;
    if h.compression() == codec {
        return Ok(batch.to_vec());
    }
    let records = records_section(batch)?;
    let mut out = bytes::BytesMut::with_capacity(batch.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    let fill = |w: &mut bytes::BytesMut| {
        w.put_slice(&records);
        Ok(())
    };
    let result = match codec {
        0 => {
            out.put_slice(&records);
            Ok(())
        }
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        4 => Zstd::compress(&mut out, fill),
        c => return Err(BatchError::Invalid(format!("unknown compression codec {c}"))),
    };
    result.map_err(|e| BatchError::Invalid(format!("cannot compress records: {e}")))?;
    let length = (out.len() - BATCH_LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (h.attributes() & !ATTR_COMPRESSION_MASK) | codec;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.to_vec())
}

/// Every record of `batch` (offset, timestamp, key, value), headers skipped.
/// `records` is `records_section(batch)`.
pub fn records_of<'a>(batch: &[u8], records: &'a [u8]) -> Result<Vec<RecordView<'a>>, BatchError> {
    let h = BatchHeader::parse(batch)?;
    let bad = |what: &str| BatchError::Invalid(format!("record {what} cut short"));
    let mut out = Vec::with_capacity((h.record_count().max(0) as usize).min(records.len()));
    let mut rest = records;
    for _ in 0..h.record_count() {
        let (len, used) = read_varint(rest).ok_or_else(|| bad("length"))?;
        let body = rest.get(used..used + len.max(0) as usize).ok_or_else(|| bad("body"))?;
        let mut at = 1; // attributes
        let (ts_delta, n) =
            read_varlong(body.get(at..).ok_or_else(|| bad("timestamp"))?).ok_or_else(|| bad("timestamp"))?;
        at += n;
        let (offset_delta, n) =
            read_varint(body.get(at..).ok_or_else(|| bad("offset"))?).ok_or_else(|| bad("offset"))?;
        at += n;
        let tail = &body[at..];
        let (key, n) = take_nullable(body.get(at..).ok_or_else(|| bad("key"))?).ok_or_else(|| bad("key"))?;
        at += n;
        let (value, _) = take_nullable(body.get(at..).ok_or_else(|| bad("value"))?).ok_or_else(|| bad("value"))?;
        out.push(RecordView {
            offset: h.base_offset() + offset_delta as i64,
            timestamp: h.base_timestamp() + ts_delta,
            key,
            value,
            tail,
        });
        rest = &rest[used + len as usize..];
    }
    Ok(out)
}

#[cfg(test)]
mod keyed_tests {
    use super::*;

    #[test]
    fn a_compression_bomb_is_refused_not_expanded() {
        let zeros = vec![0u8; (64 << 20) + 1024];
        let plain = build_keyed_batch(0, 5, &[(None, Some(&zeros))]);
        // snappy cannot expand more than ~21 times: it never reaches the bound
        for codec in [1, 3, 4] {
            let packed = recompress(&plain, codec).unwrap();
            assert!(packed.len() < 4 << 20, "codec {codec} compressed {} bytes", packed.len());
            match records_section(&packed) {
                Ok(records) => panic!("codec {codec}: expanded to {} bytes", records.len()),
                Err(e) => assert!(e.to_string().contains("expand past"), "codec {codec}: {e}"),
            }
        }
    }

    #[test]
    fn recompress_round_trips_through_every_codec() {
        let plain = build_keyed_batch(0, 5, &[(Some(b"k"), Some(b"value value value")), (None, Some(b"v2"))]);
        for codec in 1..=4 {
            let packed = recompress(&plain, codec).unwrap();
            validate_produced(&packed, usize::MAX).unwrap();
            assert_eq!(BatchHeader::parse(&packed).unwrap().compression(), codec);
            let back = recompress(&packed, 0).unwrap();
            assert_eq!(back, plain, "codec {codec}");
        }
    }

    #[test]
    fn keyed_batch_round_trip() {
        let b = build_keyed_batch(7, 99, &[(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)]);
        verify_crc(&b).unwrap();
        let section = records_section(&b).unwrap();
        let recs = records_of(&b, &section).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].offset, recs[0].timestamp, recs[0].key, recs[0].value),
            (7, 99, Some(&b"k1"[..]), Some(&b"v1"[..]))
        );
        assert_eq!((recs[1].offset, recs[1].key, recs[1].value), (8, Some(&b"k2"[..]), None));
    }
}
