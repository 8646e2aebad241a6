//! Kafka's record formats in `__consumer_offsets`, so that existing tools
//! can read them: offset commit key v1 / value v3, group metadata key v2 /
//! value v3 (older value versions are read too). A null value is a
//! tombstone.

use bytes::{Buf, BufMut, Bytes};

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A member as stored in the group metadata value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// A decoded key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + group.len() + topic.len());
    out.put_i16(1);
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.put_i32(partition);
    out
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.put_i16(2);
    put_string(&mut out, group);
    out
}

pub fn offset_value(c: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + c.metadata.len());
    out.put_i16(3);
    out.put_i64(c.offset);
    out.put_i32(c.leader_epoch);
    put_string(&mut out, &c.metadata);
    out.put_i64(c.commit_timestamp_ms);
    out
}

pub fn group_value(g: &StoredGroup) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put_i16(3);
    put_string(&mut out, &g.protocol_type);
    out.put_i32(g.generation_id);
    put_nullable_string(&mut out, g.protocol_name.as_deref());
    put_nullable_string(&mut out, g.leader_id.as_deref());
    out.put_i64(g.state_timestamp_ms);
    out.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_string(&mut out, &m.member_id);
        put_nullable_string(&mut out, m.group_instance_id.as_deref());
        put_string(&mut out, &m.client_id);
        put_string(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

/// A cursor that fails instead of panicking on short input (the KIP-848
/// records add their flexible-format reads in `consumer_records`).
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn need(&self, n: usize) -> Option<()> {
        (self.0.len() >= n).then_some(())
    }
    pub(super) fn i16(&mut self) -> Option<i16> {
        self.need(2)?;
        Some(self.0.get_i16())
    }
    pub(super) fn i32(&mut self) -> Option<i32> {
        self.need(4)?;
        Some(self.0.get_i32())
    }
    fn i64(&mut self) -> Option<i64> {
        self.need(8)?;
        Some(self.0.get_i64())
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        self.need(len as usize)?;
        let s = String::from_utf8(self.0[..len as usize].to_vec()).ok()?;
        self.0.advance(len as usize);
        Some(Some(s))
    }
    pub(super) fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
    pub(super) fn bytes(&mut self) -> Option<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Bytes::new());
        }
        self.need(len as usize)?;
        let b = Bytes::copy_from_slice(&self.0[..len as usize]);
        self.0.advance(len as usize);
        Some(b)
    }
}

pub fn decode_key(key: &[u8]) -> Option<OffsetsKey> {
    let mut r = Reader(key);
    match r.i16()? {
        0 | 1 => Some(OffsetsKey::Offset { group: r.string()?, topic: r.string()?, partition: r.i32()? }),
        2 => Some(OffsetsKey::Group { group: r.string()? }),
        _ => None,
    }
}

pub fn decode_offset_value(value: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    (0..=3).contains(&version).then_some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms })
}

pub fn decode_group_value(value: &[u8]) -> Option<StoredGroup> {
    let mut r = Reader(value);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader_id = r.nullable_string()?;
    let state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?.max(0) as usize;
    let mut members = Vec::with_capacity(count.min(value.len()));
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 { session_timeout_ms } else { rebalance_timeout_ms };
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(StoredGroup { protocol_type, generation_id, protocol_name, leader_id, state_timestamp_ms, members })
}

/// Topics named in a consumer protocol subscription (`version`, then an
/// array of topic names), for OffsetDelete and describe.
pub fn subscribed_topics(subscription: &[u8]) -> Vec<String> {
    let mut r = Reader(subscription);
    let mut topics = Vec::new();
    let Some(_version) = r.i16() else { return topics };
    let Some(count) = r.i32() else { return topics };
    for _ in 0..count.max(0).min(subscription.len() as i32) {
        match r.string() {
            Some(t) => topics.push(t),
            None => break,
        }
    }
    topics
}

/// Java's `String.hashCode`, which Kafka uses to map a group to a partition.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// `Utils.abs(groupId.hashCode()) % partitions`, as Kafka places groups.
pub fn partition_for_group(group: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let k = offset_key("g", "t", 3);
        assert_eq!(decode_key(&k), Some(OffsetsKey::Offset { group: "g".into(), topic: "t".into(), partition: 3 }));
        assert_eq!(decode_key(&group_key("g")), Some(OffsetsKey::Group { group: "g".into() }));
        let c = CommittedOffset { offset: 42, leader_epoch: 1, metadata: "m".into(), commit_timestamp_ms: 5 };
        assert_eq!(decode_offset_value(&offset_value(&c)), Some(c));
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation_id: 4,
            protocol_name: Some("range".into()),
            leader_id: Some("m1".into()),
            state_timestamp_ms: 9,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(&group_value(&g)), Some(g));
        assert_eq!(decode_group_value(&[0, 3, 0]), None, "short input is refused, not a panic");
    }

    #[test]
    fn group_partition_matches_java() {
        // "".hashCode() == 0; "a".hashCode() == 97; "test-group".hashCode() == -1426475413 per Java
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(partition_for_group("hello", 50), 99162322 % 50);
    }
}
