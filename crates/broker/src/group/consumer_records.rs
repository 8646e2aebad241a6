//! Kafka 4.x's KIP-848 record types in `__consumer_offsets`: keys 3
//! (ConsumerGroupMetadata: the group epoch), 5 (ConsumerGroupMemberMetadata),
//! 6 (ConsumerGroupTargetAssignmentMetadata: the assignment epoch), 7
//! (ConsumerGroupTargetAssignmentMember) and 8
//! (ConsumerGroupCurrentMemberAssignment). Keys are non-flexible (version
//! i16, then i16-length strings); values are version 0, flexible (compact
//! strings and arrays, tagged fields). A null value is a tombstone. Key 4
//! (partition metadata) is neither written nor needed: the subscribed
//! topics are recomputed from the metadata image. The classic decoder
//! ([`super::records::decode_key`]) ignores these keys and this one
//! ignores the classic ones.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut};
use uuid::Uuid;

use super::assignor::Assignment;

pub const GROUP_METADATA: i16 = 3;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_METADATA: i16 = 6;
pub const TARGET_MEMBER: i16 = 7;
pub const CURRENT_ASSIGNMENT: i16 = 8;

/// A member's metadata as ConsumerGroupMemberMetadataValue stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Set for a member that speaks the classic protocol in a consumer
    /// group (Kafka's ClassicMemberMetadata, tagged field 0).
    pub classic: Option<ClassicMeta>,
}

/// A classic member's session timeout and JoinGroup protocols.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMeta {
    pub session_timeout_ms: i32,
    pub protocols: Vec<(String, Vec<u8>)>,
}

/// ConsumerGroupCurrentMemberAssignmentValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredCurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// KIP-1251: the member epoch at which each partition of `assigned`
    /// and `pending_revocation` was assigned to the member (tagged field 0
    /// of each topic's entry; records without it leave this empty).
    pub assignment_epochs: AssignmentEpochs,
}

/// (topic id, partition) -> the member epoch it was assigned at (KIP-1251).
pub type AssignmentEpochs = BTreeMap<(Uuid, i32), i32>;

fn key(kind: i16, group: &str, member: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + member.map_or(0, |m| m.len()));
    out.put_i16(kind);
    for s in std::iter::once(group).chain(member) {
        out.put_i16(s.len() as i16);
        out.put_slice(s.as_bytes());
    }
    out
}

pub fn group_metadata_key(group: &str) -> Vec<u8> {
    key(GROUP_METADATA, group, None)
}
pub fn member_metadata_key(group: &str, member: &str) -> Vec<u8> {
    key(MEMBER_METADATA, group, Some(member))
}
pub fn target_metadata_key(group: &str) -> Vec<u8> {
    key(TARGET_METADATA, group, None)
}
pub fn target_member_key(group: &str, member: &str) -> Vec<u8> {
    key(TARGET_MEMBER, group, Some(member))
}
pub fn current_assignment_key(group: &str, member: &str) -> Vec<u8> {
    key(CURRENT_ASSIGNMENT, group, Some(member))
}

fn uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn compact_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => uvarint(out, 0),
        Some(s) => {
            uvarint(out, s.len() as u32 + 1);
            out.put_slice(s.as_bytes());
        }
    }
}

fn topic_partitions(out: &mut Vec<u8>, a: &Assignment) {
    topic_partitions_with_epochs(out, a, None)
}

/// TopicPartitions entries; with `epochs`, each carries its partitions'
/// assignment epochs as tagged field 0 (KIP-1251; a partition without one
/// gets `default`).
fn topic_partitions_with_epochs(out: &mut Vec<u8>, a: &Assignment, epochs: Option<(&AssignmentEpochs, i32)>) {
    uvarint(out, a.len() as u32 + 1);
    for (topic, parts) in a {
        out.put_slice(topic.as_bytes());
        uvarint(out, parts.len() as u32 + 1);
        for p in parts {
            out.put_i32(*p);
        }
        match epochs {
            None => uvarint(out, 0),
            Some((epochs, default)) => {
                let mut field = Vec::with_capacity(1 + 4 * parts.len());
                uvarint(&mut field, parts.len() as u32 + 1);
                for p in parts {
                    field.put_i32(epochs.get(&(*topic, *p)).copied().unwrap_or(default));
                }
                uvarint(out, 1);
                uvarint(out, 0);
                uvarint(out, field.len() as u32);
                out.extend_from_slice(&field);
            }
        }
    }
}

/// ConsumerGroupMetadataValue v0: the group epoch.
pub fn group_metadata_value(epoch: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.put_i16(0);
    out.put_i32(epoch);
    uvarint(&mut out, 0);
    out
}

/// ConsumerGroupTargetAssignmentMetadataValue v0: the assignment epoch.
pub fn target_metadata_value(epoch: i32) -> Vec<u8> {
    group_metadata_value(epoch)
}

pub fn member_metadata_value(m: &StoredMemberMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put_i16(0);
    compact_string(&mut out, m.instance_id.as_deref());
    compact_string(&mut out, m.rack_id.as_deref());
    compact_string(&mut out, Some(&m.client_id));
    compact_string(&mut out, Some(&m.client_host));
    uvarint(&mut out, m.subscribed_topic_names.len() as u32 + 1);
    for t in &m.subscribed_topic_names {
        compact_string(&mut out, Some(t));
    }
    compact_string(&mut out, m.subscribed_topic_regex.as_deref());
    out.put_i32(m.rebalance_timeout_ms);
    compact_string(&mut out, m.server_assignor.as_deref());
    match &m.classic {
        None => uvarint(&mut out, 0),
        Some(c) => {
            // tagged field 0: ClassicMemberMetadata
            let mut field = Vec::with_capacity(32);
            field.put_i32(c.session_timeout_ms);
            uvarint(&mut field, c.protocols.len() as u32 + 1);
            for (name, metadata) in &c.protocols {
                compact_string(&mut field, Some(name));
                uvarint(&mut field, metadata.len() as u32 + 1);
                field.extend_from_slice(metadata);
                uvarint(&mut field, 0);
            }
            uvarint(&mut field, 0);
            uvarint(&mut out, 1);
            uvarint(&mut out, 0);
            uvarint(&mut out, field.len() as u32);
            out.extend_from_slice(&field);
        }
    }
    out
}

pub fn target_member_value(a: &Assignment) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.put_i16(0);
    topic_partitions(&mut out, a);
    uvarint(&mut out, 0);
    out
}

pub fn current_assignment_value(c: &StoredCurrentAssignment) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.put_i16(0);
    out.put_i32(c.member_epoch);
    out.put_i32(c.previous_member_epoch);
    out.put_i8(c.state);
    let epochs = Some((&c.assignment_epochs, c.member_epoch));
    topic_partitions_with_epochs(&mut out, &c.assigned, epochs);
    topic_partitions_with_epochs(&mut out, &c.pending_revocation, epochs);
    uvarint(&mut out, 0);
    out
}

use super::records::Reader;

/// The flexible-format reads of these values, on the classic records'
/// cursor (which fails instead of panicking on short or hostile input).
impl Reader<'_> {
    fn i8(&mut self) -> Option<i8> {
        self.need(1)?;
        Some(self.0.get_i8())
    }
    fn uvarint(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.i8()? as u8;
            v |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        self.need(n)?;
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn compact_string(&mut self) -> Option<Option<String>> {
        let n = self.uvarint()?;
        if n == 0 {
            return Some(None);
        }
        Some(Some(String::from_utf8(self.take(n as usize - 1)?.to_vec()).ok()?))
    }
    /// A compact array's element count (null reads as empty).
    fn count(&mut self) -> Option<usize> {
        let n = self.uvarint()? as usize;
        let count = n.saturating_sub(1);
        // each element takes at least one byte: refuse absurd counts
        (count <= self.0.len()).then_some(count)
    }
    fn skip_tags(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Some(())
    }
    fn topic_partitions(&mut self) -> Option<Assignment> {
        self.topic_partitions_with_epochs(&mut AssignmentEpochs::new())
    }

    /// TopicPartitions entries, their assignment epochs (tag 0, aligned
    /// with the partitions) into `epochs` when present.
    fn topic_partitions_with_epochs(&mut self, epochs: &mut AssignmentEpochs) -> Option<Assignment> {
        let mut out = Assignment::new();
        for _ in 0..self.count()? {
            let id = Uuid::from_slice(self.take(16)?).ok()?;
            let mut listed = Vec::new();
            for _ in 0..self.count()? {
                listed.push(self.i32()?);
            }
            for _ in 0..self.uvarint()? {
                let tag = self.uvarint()?;
                let size = self.uvarint()? as usize;
                let mut field = Reader(self.take(size)?);
                if tag == 0 {
                    // nullable: a count of 0 is null
                    let n = field.uvarint()? as usize;
                    if n > 0 && n - 1 == listed.len() {
                        for p in &listed {
                            epochs.insert((id, *p), field.i32()?);
                        }
                    }
                }
            }
            out.entry(id).or_default().extend(listed);
        }
        Some(out)
    }
}

/// A decoded KIP-848 key: its type, group and member (types 5, 7, 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerKey {
    pub kind: i16,
    pub group: String,
    pub member: Option<String>,
}

pub fn decode_key(bytes: &[u8]) -> Option<ConsumerKey> {
    let mut r = Reader(bytes);
    let kind = r.i16()?;
    let group = match kind {
        GROUP_METADATA | MEMBER_METADATA | TARGET_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT => r.string()?,
        _ => return None,
    };
    let member = match kind {
        MEMBER_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT => Some(r.string()?),
        _ => None,
    };
    Some(ConsumerKey { kind, group, member })
}

fn value_reader(bytes: &[u8]) -> Option<Reader<'_>> {
    let mut r = Reader(bytes);
    (r.i16()? == 0).then_some(r)
}

/// The epoch of a ConsumerGroupMetadataValue or a
/// ConsumerGroupTargetAssignmentMetadataValue.
pub fn decode_epoch_value(bytes: &[u8]) -> Option<i32> {
    value_reader(bytes)?.i32()
}

pub fn decode_member_metadata_value(bytes: &[u8]) -> Option<StoredMemberMetadata> {
    let mut r = value_reader(bytes)?;
    let instance_id = r.compact_string()?;
    let rack_id = r.compact_string()?;
    let client_id = r.compact_string()?.unwrap_or_default();
    let client_host = r.compact_string()?.unwrap_or_default();
    let mut subscribed_topic_names = Vec::new();
    for _ in 0..r.count()? {
        subscribed_topic_names.push(r.compact_string()?.unwrap_or_default());
    }
    let subscribed_topic_regex = r.compact_string()?;
    let rebalance_timeout_ms = r.i32()?;
    let server_assignor = r.compact_string()?;
    let mut classic = None;
    for _ in 0..r.uvarint()? {
        let tag = r.uvarint()?;
        let size = r.uvarint()? as usize;
        let field = r.take(size)?;
        if tag == 0 {
            classic = Some(decode_classic(field)?);
        }
    }
    Some(StoredMemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
        classic,
    })
}

fn decode_classic(bytes: &[u8]) -> Option<ClassicMeta> {
    let mut r = Reader(bytes);
    let session_timeout_ms = r.i32()?;
    let mut protocols = Vec::new();
    for _ in 0..r.count()? {
        let name = r.compact_string()?.unwrap_or_default();
        let n = r.uvarint()? as usize;
        let metadata = r.take(n.saturating_sub(1))?.to_vec();
        r.skip_tags()?;
        protocols.push((name, metadata));
    }
    Some(ClassicMeta { session_timeout_ms, protocols })
}

pub fn decode_target_member_value(bytes: &[u8]) -> Option<Assignment> {
    value_reader(bytes)?.topic_partitions()
}

pub fn decode_current_assignment_value(bytes: &[u8]) -> Option<StoredCurrentAssignment> {
    let mut r = value_reader(bytes)?;
    let mut assignment_epochs = AssignmentEpochs::new();
    Some(StoredCurrentAssignment {
        member_epoch: r.i32()?,
        previous_member_epoch: r.i32()?,
        state: r.i8()?,
        assigned: r.topic_partitions_with_epochs(&mut assignment_epochs)?,
        pending_revocation: r.topic_partitions_with_epochs(&mut assignment_epochs)?,
        assignment_epochs,
    })
}

/// One consumer group's records as read back from its partition.
#[derive(Debug, Default)]
pub struct LoadedGroup {
    pub epoch: Option<i32>,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, StoredMemberMetadata>,
    pub targets: BTreeMap<String, Assignment>,
    pub current: BTreeMap<String, StoredCurrentAssignment>,
}

/// A member's record: its value, or a tombstone (or an unreadable value)
/// that removes it.
fn replay<T>(map: &mut BTreeMap<String, T>, member: String, value: Option<T>) {
    match value {
        Some(v) => {
            map.insert(member, v);
        }
        None => {
            map.remove(&member);
        }
    }
}

/// Replays KIP-848 records in log order (a later record or tombstone
/// replaces an earlier one).
#[derive(Debug, Default)]
pub struct Loader {
    pub groups: BTreeMap<String, LoadedGroup>,
}

impl Loader {
    /// Takes the record if its key is a KIP-848 one (whether or not its
    /// value could be read); `false` leaves it to the classic loader.
    pub fn accept(&mut self, key: &[u8], value: Option<&[u8]>) -> bool {
        let Some(k) = decode_key(key) else { return false };
        let member = k.member.clone().unwrap_or_default();
        match (k.kind, value) {
            (GROUP_METADATA, None) => {
                self.groups.remove(&k.group);
            }
            (GROUP_METADATA, Some(v)) => {
                if let Some(epoch) = decode_epoch_value(v) {
                    self.groups.entry(k.group).or_default().epoch = Some(epoch);
                }
            }
            (TARGET_METADATA, v) => {
                let epoch = v.and_then(decode_epoch_value).unwrap_or(0);
                self.groups.entry(k.group).or_default().assignment_epoch = epoch;
            }
            (MEMBER_METADATA, v) => {
                let g = self.groups.entry(k.group).or_default();
                replay(&mut g.members, member, v.and_then(decode_member_metadata_value));
            }
            (TARGET_MEMBER, v) => {
                let g = self.groups.entry(k.group).or_default();
                replay(&mut g.targets, member, v.and_then(decode_target_member_value));
            }
            (CURRENT_ASSIGNMENT, v) => {
                let g = self.groups.entry(k.group).or_default();
                replay(&mut g.current, member, v.and_then(decode_current_assignment_value));
            }
            _ => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_garbage_is_refused() {
        let m = StoredMemberMetadata {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: Some("^x.*".into()),
            rebalance_timeout_ms: 300000,
            server_assignor: Some("range".into()),
            classic: None,
        };
        assert_eq!(decode_member_metadata_value(&member_metadata_value(&m)), Some(m.clone()));
        let classic = ClassicMeta { session_timeout_ms: 10, protocols: vec![("range".into(), vec![0, 1, 2])] };
        let m = StoredMemberMetadata { classic: Some(classic), ..m };
        assert_eq!(decode_member_metadata_value(&member_metadata_value(&m)), Some(m));
        let a: Assignment = [(Uuid::from_u128(5), [0, 3].into())].into();
        assert_eq!(decode_target_member_value(&target_member_value(&a)), Some(a.clone()));
        let c = StoredCurrentAssignment {
            member_epoch: 4,
            previous_member_epoch: 3,
            state: 1,
            assigned: a.clone(),
            pending_revocation: [(Uuid::from_u128(6), [1].into())].into(),
            assignment_epochs: [
                ((Uuid::from_u128(5), 0), 2),
                ((Uuid::from_u128(5), 3), 4),
                ((Uuid::from_u128(6), 1), 1),
            ]
            .into(),
        };
        assert_eq!(decode_current_assignment_value(&current_assignment_value(&c)), Some(c.clone()));
        // a partition without an epoch is written with the member epoch
        let partial = StoredCurrentAssignment { assignment_epochs: [((Uuid::from_u128(5), 0), 2)].into(), ..c };
        let back = decode_current_assignment_value(&current_assignment_value(&partial)).unwrap();
        assert_eq!(back.assignment_epochs.get(&(Uuid::from_u128(5), 3)), Some(&4));
        assert_eq!(back.assignment_epochs.get(&(Uuid::from_u128(6), 1)), Some(&4));
        assert_eq!(decode_epoch_value(&group_metadata_value(9)), Some(9));
        let k = decode_key(&current_assignment_key("g", "m")).unwrap();
        assert_eq!((k.kind, k.group.as_str(), k.member.as_deref()), (CURRENT_ASSIGNMENT, "g", Some("m")));
        assert_eq!(decode_key(&super::super::records::group_key("g")), None, "classic keys are not ours");
        assert_eq!(super::super::records::decode_key(&group_metadata_key("g")), None, "ours are not classic");
        for cut in 0..current_assignment_value(&c_small()).len() {
            let _ = decode_current_assignment_value(&current_assignment_value(&c_small())[..cut]);
        }
        assert_eq!(decode_member_metadata_value(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]), None);
    }

    fn c_small() -> StoredCurrentAssignment {
        StoredCurrentAssignment {
            member_epoch: 1,
            previous_member_epoch: 0,
            state: 0,
            assigned: [(Uuid::from_u128(1), [0].into())].into(),
            pending_revocation: Assignment::new(),
            assignment_epochs: AssignmentEpochs::new(),
        }
    }
}
