//! Kafka's record formats in `__transaction_state`: key v0
//! (`version int16, transactional_id string`) and value v0
//! (`version, producer_id, producer_epoch, timeout_ms, status,
//! partitions [topic, [partition]], last_update_ms, start_ms`).

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
    let mut out = Vec::with_capacity(64);
    out.put_i16(0);
    out.put_i64(m.producer_id);
    out.put_i16(m.producer_epoch);
    out.put_i32(m.timeout_ms);
    out.put_i8(m.state.code());
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for (t, p) in &m.partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
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
        if len < 0 || self.0.remaining() < len as usize {
            return None;
        }
        let s = String::from_utf8(self.0[..len as usize].to_vec()).ok()?;
        self.0.advance(len as usize);
        Some(s)
    }
}

pub fn decode_key(key: &[u8]) -> Option<String> {
    let mut r = Reader(key);
    (r.i16()? == 0).then_some(())?;
    r.string()
}

pub fn decode_value(transactional_id: &str, value: &[u8]) -> Option<TxnMetadata> {
    let mut r = Reader(value);
    if r.i16()? != 0 {
        return None;
    }
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.i8()?)?;
    let topics = r.i32()?;
    let mut partitions = std::collections::BTreeSet::new();
    for _ in 0..topics.max(0).min(value.len() as i32) {
        let t = r.string()?;
        let n = r.i32()?;
        for _ in 0..n.max(0).min(value.len() as i32) {
            partitions.insert((t.clone(), r.i32()?));
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Some(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        groups: Default::default(),
        last_update_ms,
        start_ms,
    })
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
    }
}
