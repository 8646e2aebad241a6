//! Kafka 4.2's record formats in `__share_group_state`, so that Kafka's
//! tools read them: the key is a record type (0 `ShareSnapshot`, 1
//! `ShareUpdate`) then group id, topic id and partition (not flexible);
//! the value is version 0 of `ShareSnapshotValue` / `ShareUpdateValue`
//! (flexible: compact arrays, tagged fields; tag 0 is KIP-1226's
//! `DeliveryCompleteCount`). A null value is a tombstone.
//!
//! vltava writes only snapshots (see `coordinator`); updates written by
//! another implementation are read and merged onto the snapshot before
//! them.

use bytes::{Buf, BufMut};
use uuid::Uuid;

use super::persister::{ShareKey, ShareState, StateBatch, ACKNOWLEDGED, ARCHIVED};

pub const SNAPSHOT: i16 = 0;
pub const UPDATE: i16 = 1;

/// A decoded value of `__share_group_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateValue {
    /// The whole state.
    Snapshot { snapshot_epoch: i32, state: ShareState, create_timestamp_ms: i64 },
    /// A change on top of the last snapshot (start offset -1: unchanged).
    Update { leader_epoch: i32, start_offset: i64, batches: Vec<StateBatch> },
}

pub fn key(record_type: i16, k: &ShareKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + k.group.len());
    out.put_i16(record_type);
    out.put_i16(k.group.len() as i16);
    out.put_slice(k.group.as_bytes());
    out.put_slice(k.topic_id.as_bytes());
    out.put_i32(k.partition);
    out
}

/// (record type, share partition) of a key; `None` for what is not one.
pub fn decode_key(bytes: &[u8]) -> Option<(i16, ShareKey)> {
    let mut r = Reader(bytes);
    let record_type = r.i16()?;
    if record_type != SNAPSHOT && record_type != UPDATE {
        return None;
    }
    let len = r.i16()?;
    let group = String::from_utf8(r.take(usize::try_from(len).ok()?)?.to_vec()).ok()?;
    let topic_id = Uuid::from_slice(r.take(16)?).ok()?;
    let partition = r.i32()?;
    Some((record_type, ShareKey { group, topic_id, partition }))
}

/// Offsets at or above the start offset whose delivery is complete
/// (acknowledged or archived): KIP-1226's delivery complete count.
pub fn delivery_complete_count(state: &ShareState) -> i64 {
    state
        .batches
        .iter()
        .filter(|b| b.delivery_state == ACKNOWLEDGED || b.delivery_state == ARCHIVED)
        .map(|b| b.last_offset - b.first_offset.max(state.start_offset) + 1)
        .filter(|n| *n > 0)
        .sum()
}

pub fn snapshot_value(snapshot_epoch: i32, state: &ShareState, create_timestamp_ms: i64, now_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + state.batches.len() * 20);
    out.put_i16(0);
    out.put_i32(snapshot_epoch);
    out.put_i32(state.state_epoch);
    out.put_i32(state.leader_epoch);
    out.put_i64(state.start_offset);
    out.put_i64(create_timestamp_ms);
    out.put_i64(now_ms);
    put_batches(&mut out, &state.batches);
    let complete = i32::try_from(delivery_complete_count(state)).unwrap_or(i32::MAX);
    // tagged fields: one, tag 0 (DeliveryCompleteCount), 4 bytes
    put_uvarint(&mut out, 1);
    put_uvarint(&mut out, 0);
    put_uvarint(&mut out, 4);
    out.put_i32(complete);
    out
}

pub fn decode_value(record_type: i16, bytes: &[u8]) -> Option<StateValue> {
    let mut r = Reader(bytes);
    if r.i16()? != 0 {
        return None;
    }
    let value = if record_type == SNAPSHOT {
        let snapshot_epoch = r.i32()?;
        let state_epoch = r.i32()?;
        let leader_epoch = r.i32()?;
        let start_offset = r.i64()?;
        let create_timestamp_ms = r.i64()?;
        let _write_timestamp_ms = r.i64()?;
        let batches = r.batches()?;
        StateValue::Snapshot {
            snapshot_epoch,
            state: ShareState { state_epoch, leader_epoch, start_offset, batches },
            create_timestamp_ms,
        }
    } else {
        let _snapshot_epoch = r.i32()?;
        let leader_epoch = r.i32()?;
        let start_offset = r.i64()?;
        let batches = r.batches()?;
        StateValue::Update { leader_epoch, start_offset, batches }
    };
    r.skip_tags()?;
    Some(value)
}

fn put_batches(out: &mut Vec<u8>, batches: &[StateBatch]) {
    put_uvarint(out, batches.len() as u64 + 1);
    for b in batches {
        out.put_i64(b.first_offset);
        out.put_i64(b.last_offset);
        out.put_i8(b.delivery_state as i8);
        out.put_i16(b.delivery_count);
        put_uvarint(out, 0);
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// A cursor that fails instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i8(&mut self) -> Option<i8> {
        Some(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(self.take(2)?.get_i16())
    }
    fn i32(&mut self) -> Option<i32> {
        Some(self.take(4)?.get_i32())
    }
    fn i64(&mut self) -> Option<i64> {
        Some(self.take(8)?.get_i64())
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn skip_tags(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            self.take(size)?;
        }
        Some(())
    }
    fn batches(&mut self) -> Option<Vec<StateBatch>> {
        let n = usize::try_from(self.uvarint()?.checked_sub(1)?).ok()?;
        // each batch takes at least 20 bytes: no preallocation past the input
        let mut out = Vec::with_capacity(n.min(self.0.len() / 20));
        for _ in 0..n {
            let first_offset = self.i64()?;
            let last_offset = self.i64()?;
            let delivery_state = self.i8()? as u8;
            let delivery_count = self.i16()?;
            self.skip_tags()?;
            out.push(StateBatch { first_offset, last_offset, delivery_state, delivery_count });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_snapshots_round_trip() {
        let k = ShareKey { group: "g".into(), topic_id: Uuid::from_u128(7), partition: 3 };
        assert_eq!(decode_key(&key(SNAPSHOT, &k)), Some((SNAPSHOT, k.clone())));
        assert_eq!(decode_key(&key(UPDATE, &k)), Some((UPDATE, k)));
        let state = ShareState {
            state_epoch: 2,
            leader_epoch: 5,
            start_offset: 10,
            batches: vec![
                StateBatch { first_offset: 10, last_offset: 12, delivery_state: ACKNOWLEDGED, delivery_count: 1 },
                StateBatch { first_offset: 13, last_offset: 13, delivery_state: 0, delivery_count: 2 },
                StateBatch { first_offset: 14, last_offset: 15, delivery_state: ARCHIVED, delivery_count: 5 },
            ],
        };
        assert_eq!(delivery_complete_count(&state), 5);
        let v = snapshot_value(4, &state, 100, 200);
        assert_eq!(
            decode_value(SNAPSHOT, &v),
            Some(StateValue::Snapshot { snapshot_epoch: 4, state, create_timestamp_ms: 100 })
        );
    }

    #[test]
    fn short_or_lying_input_is_refused_not_a_panic() {
        assert_eq!(decode_key(&[0, 0, 0, 5, b'g']), None);
        assert_eq!(decode_key(&[0, 9]), None);
        let state = ShareState {
            batches: vec![StateBatch { first_offset: 0, last_offset: 1, delivery_state: 2, delivery_count: 1 }],
            ..Default::default()
        };
        let v = snapshot_value(0, &state, 0, 0);
        for cut in 0..v.len() {
            assert_eq!(decode_value(SNAPSHOT, &v[..cut]), None, "cut at {cut}");
        }
        // a batch count of billions with no bytes behind it
        let mut lying = v[..38].to_vec();
        lying.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(decode_value(SNAPSHOT, &lying), None);
    }
}
