//! Kafka's record formats in `__transaction_state`: key v0
//! (`version int16, transactional_id string`) and value v0
//! (`version, producer_id, producer_epoch, timeout_ms, status,
//! partitions [topic, [partition]], last_update_ms, start_ms`), or value v1
//! (the same fields in the flexible encoding, plus the tagged fields
//! previous producer id (0), next producer id (1) and client transaction
//! version (2)), which Kafka writes for transactions v2. v1 is written only
//! when one of those fields is set, so a v1-only cluster's log stays v0.

use bytes::{Buf, BufMut};

use super::state::{TxnMetadata, TxnState};

pub fn key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.put_i16(0);
    out.put_i16(transactional_id.len() as i16);
    out.put_slice(transactional_id.as_bytes());
    out
}

pub fn value(m: &TxnMetadata) -> Vec<u8> {
    if m.client_version > 0 || m.previous_producer_id >= 0 || m.next_producer_id >= 0 {
        return value_v1(m);
    }
    let mut out = head(0, m);
    let by_topic = by_topic(m);
    out.put_i32(by_topic.len() as i32);
    for (t, ps) in by_topic {
        out.put_i16(t.len() as i16);
        out.put_slice(t.as_bytes());
        out.put_i32(ps.len() as i32);
        for p in ps {
            out.put_i32(p);
        }
    }
    out.put_i64(m.last_update_ms);
    out.put_i64(m.start_ms);
    out
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_compact_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64 + 1);
    out.put_slice(s.as_bytes());
}

/// The fields before the partitions, the same in v0 and v1.
fn head(version: i16, m: &TxnMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    out.put_i16(version);
    out.put_i64(m.producer_id);
    out.put_i16(m.producer_epoch);
    out.put_i32(m.timeout_ms);
    out.put_i8(m.state.code());
    out
}

fn value_v1(m: &TxnMetadata) -> Vec<u8> {
    let mut out = head(1, m);
    let by_topic = by_topic(m);
    put_uvarint(&mut out, by_topic.len() as u64 + 1);
    for (t, ps) in by_topic {
        put_compact_str(&mut out, t);
        put_uvarint(&mut out, ps.len() as u64 + 1);
        for p in ps {
            out.put_i32(p);
        }
        put_uvarint(&mut out, 0); // no tagged fields
    }
    out.put_i64(m.last_update_ms);
    out.put_i64(m.start_ms);
    let mut tagged: Vec<(u64, Vec<u8>)> = Vec::new();
    if m.previous_producer_id >= 0 {
        tagged.push((0, m.previous_producer_id.to_be_bytes().to_vec()));
    }
    if m.next_producer_id >= 0 {
        tagged.push((1, m.next_producer_id.to_be_bytes().to_vec()));
    }
    if m.client_version != 0 {
        tagged.push((2, m.client_version.to_be_bytes().to_vec()));
    }
    put_uvarint(&mut out, tagged.len() as u64);
    for (tag, data) in tagged {
        put_uvarint(&mut out, tag);
        put_uvarint(&mut out, data.len() as u64);
        out.put_slice(&data);
    }
    out
}

fn by_topic(m: &TxnMetadata) -> std::collections::BTreeMap<&str, Vec<i32>> {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for (t, p) in &m.partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    by_topic
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn i8(&mut self) -> Option<i8> {
        (self.0.remaining() >= 1).then(|| self.0.get_i8())
    }
    fn i16(&mut self) -> Option<i16> {
        (self.0.remaining() >= 2).then(|| self.0.get_i16())
    }
    fn i32(&mut self) -> Option<i32> {
        (self.0.remaining() >= 4).then(|| self.0.get_i32())
    }
    fn i64(&mut self) -> Option<i64> {
        (self.0.remaining() >= 8).then(|| self.0.get_i64())
    }
    fn string(&mut self) -> Option<String> {
        let len = self.i16()?;
        if len < 0 {
            return None;
        }
        self.utf8(len as usize)
    }
    fn utf8(&mut self, len: usize) -> Option<String> {
        if self.0.remaining() < len {
            return None;
        }
        let s = String::from_utf8(self.0[..len].to_vec()).ok()?;
        self.0.advance(len);
        Some(s)
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.i8()? as u8;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A compact length (`n + 1`, 0 for null); `None` for null.
    fn compact_len(&mut self) -> Option<Option<usize>> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).ok()?;
        Some(n.checked_sub(1))
    }
    fn compact_string(&mut self) -> Option<String> {
        let len = self.compact_len()??;
        self.utf8(len)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        (self.0.remaining() >= n).then(|| self.0.advance(n))
    }
}

pub fn decode_key(key: &[u8]) -> Option<String> {
    let mut r = Reader(key);
    (r.i16()? == 0).then_some(())?;
    r.string()
}

pub fn decode_value(transactional_id: &str, value: &[u8]) -> Option<TxnMetadata> {
    let mut r = Reader(value);
    let version = r.i16()?;
    if version != 0 && version != 1 {
        return None;
    }
    let flexible = version == 1;
    let bound = value.len();
    let mut m = TxnMetadata::new(transactional_id, r.i64()?, 0);
    m.producer_epoch = r.i16()?;
    m.timeout_ms = r.i32()?;
    m.state = TxnState::from_code(r.i8()?)?;
    let topics = if flexible { r.compact_len()?.unwrap_or(0) } else { r.i32()?.max(0) as usize };
    for _ in 0..topics.min(bound) {
        let t = if flexible { r.compact_string()? } else { r.string()? };
        let n = if flexible { r.compact_len()?.unwrap_or(0) } else { r.i32()?.max(0) as usize };
        for _ in 0..n.min(bound) {
            m.partitions.insert((t.clone(), r.i32()?));
        }
        if flexible {
            skip_tagged(&mut r)?;
        }
    }
    m.last_update_ms = r.i64()?;
    m.start_ms = r.i64()?;
    if flexible {
        let count = r.uvarint()?;
        for _ in 0..count.min(bound as u64) {
            let (tag, size) = (r.uvarint()?, usize::try_from(r.uvarint()?).ok()?);
            match (tag, size) {
                (0, 8) => m.previous_producer_id = r.i64()?,
                (1, 8) => m.next_producer_id = r.i64()?,
                (2, 2) => m.client_version = r.i16()?,
                _ => r.skip(size)?,
            }
        }
    }
    Some(m)
}

/// Skips a flexible structure's tagged fields.
fn skip_tagged(r: &mut Reader<'_>) -> Option<()> {
    let count = r.uvarint()?;
    for _ in 0..count.min(r.0.len() as u64) {
        let _tag = r.uvarint()?;
        let size = usize::try_from(r.uvarint()?).ok()?;
        r.skip(size)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut m = TxnMetadata::new("tx", 5, 60000);
        m.state = TxnState::Ongoing;
        m.partitions.insert(("a".into(), 1));
        m.partitions.insert(("a".into(), 0));
        m.partitions.insert(("b".into(), 2));
        assert_eq!(decode_key(&key("tx")).as_deref(), Some("tx"));
        let back = decode_value("tx", &value(&m)).unwrap();
        assert_eq!(back.partitions, m.partitions);
        assert_eq!((back.producer_id, back.state), (5, TxnState::Ongoing));
        assert!(decode_value("tx", &[0, 0, 1]).is_none());
        assert_eq!(value(&m)[..2], [0, 0], "v0 without transactions v2 fields");
    }

    #[test]
    fn v1_round_trip_with_tagged_fields() {
        let mut m = TxnMetadata::new("tx", 5, 60000);
        m.state = TxnState::PrepareCommit;
        m.producer_epoch = i16::MAX;
        m.partitions.insert(("a".into(), 1));
        m.partitions.insert(("b".into(), 2));
        (m.client_version, m.next_producer_id, m.last_update_ms, m.start_ms) = (2, 6, 10, 9);
        let bytes = value(&m);
        assert_eq!(bytes[..2], [0, 1]);
        let back = decode_value("tx", &bytes).unwrap();
        assert_eq!(back.partitions, m.partitions);
        assert_eq!(
            (back.producer_id, back.producer_epoch, back.state, back.client_version, back.next_producer_id),
            (5, i16::MAX, TxnState::PrepareCommit, 2, 6)
        );
        assert_eq!((back.previous_producer_id, back.last_update_ms, back.start_ms), (-1, 10, 9));
        for cut in 0..bytes.len() {
            assert!(decode_value("tx", &bytes[..cut]).is_none(), "truncated at {cut}");
        }
    }
}
