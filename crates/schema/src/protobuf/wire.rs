//! Confluent's Protobuf wire format after the 5-byte header (magic 0,
//! schema id):
//!
//! | bytes            | meaning                                             |
//! |------------------|-----------------------------------------------------|
//! | zigzag varint n  | how many message indexes follow (0: just `[0]`)     |
//! | n zigzag varints | the path to the message type: an index among the    |
//! |                  | file's top-level messages, then among that message's|
//! |                  | nested messages, and so on                          |
//! | the rest         | the protobuf-encoded message                        |
//!
//! Indexes count messages in declaration order. Confluent counts a map's
//! entry message and a group's message only when the schema was registered
//! as a descriptor (they are nested types there, not in the `.proto` text);
//! confluent-kafka's Python serializer always counts them. See `Counting`.

use prost_reflect::{DynamicMessage, FileDescriptor, MessageDescriptor};

/// More indexes than any real nesting has: a payload claiming more is bad.
const MESSAGE_INDEXES_MAX: usize = 100;

/// Reads a zigzag varint (Kafka's `ByteUtils.readVarint`) from `buf` at `pos`.
fn read_zigzag_varint(buf: &[u8], pos: &mut usize) -> Result<i32, String> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let Some(&b) = buf.get(*pos) else {
            return Err("the message indexes end before the payload does".to_string());
        };
        *pos += 1;
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    Err("a message index is not a valid varint".to_string())
}

/// The message indexes at the start of `payload`, and where the message begins.
pub(super) fn read_message_indexes(payload: &[u8]) -> Result<(Vec<i32>, usize), String> {
    let mut pos = 0;
    let count = read_zigzag_varint(payload, &mut pos)?;
    if count == 0 {
        return Ok((vec![0], pos));
    }
    let count = usize::try_from(count).map_err(|_| format!("invalid message index count {count}"))?;
    if count > MESSAGE_INDEXES_MAX {
        return Err(format!("invalid message index count {count}"));
    }
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        indexes.push(read_zigzag_varint(payload, &mut pos)?);
    }
    Ok((indexes, pos))
}

/// How the nested messages of a level are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// As the `.proto` text declares them: map entries and groups are not
    /// messages there (Confluent on a schema registered as text).
    Declared,
    /// Every nested type of the descriptor, map entries and groups included
    /// (confluent-kafka's Python serializer, and Confluent on a schema
    /// registered as a descriptor).
    Descriptor,
}

impl Counting {
    pub(super) fn other(self) -> Counting {
        match self {
            Counting::Declared => Counting::Descriptor,
            Counting::Descriptor => Counting::Declared,
        }
    }
}

/// The messages of one level as the `.proto` text declares them.
pub(super) fn declared_messages(
    messages: impl Iterator<Item = MessageDescriptor>,
    parent: Option<&MessageDescriptor>,
) -> Vec<MessageDescriptor> {
    messages
        .filter(|m| !m.is_map_entry())
        .filter(|m| parent.is_none_or(|p| !p.fields().any(|f| f.is_group() && f.kind().as_message() == Some(m))))
        .collect()
}

fn messages_at(
    messages: impl Iterator<Item = MessageDescriptor>,
    parent: Option<&MessageDescriptor>,
    counting: Counting,
) -> Vec<MessageDescriptor> {
    match counting {
        Counting::Declared => declared_messages(messages, parent),
        Counting::Descriptor => messages.collect(),
    }
}

pub(super) fn message_by_indexes(
    file: &FileDescriptor,
    indexes: &[i32],
    counting: Counting,
) -> Option<MessageDescriptor> {
    let (&first, rest) = indexes.split_first()?;
    let mut message = messages_at(file.messages(), None, counting).into_iter().nth(usize::try_from(first).ok()?)?;
    for &index in rest {
        let nested = messages_at(message.child_messages(), Some(&message), counting);
        message = nested.into_iter().nth(usize::try_from(index).ok()?)?;
    }
    Some(message)
}

fn decode(message: Option<MessageDescriptor>, indexes: &[i32], bytes: &[u8]) -> Result<(), String> {
    let message = message.ok_or_else(|| format!("message indexes {indexes:?} select no message type of the schema"))?;
    DynamicMessage::decode(message.clone(), bytes)
        .map_err(|e| format!("the payload is not a valid {} message: {e}", message.full_name()))?;
    Ok(())
}

/// Decodes the payload as the message its indexes select, counted as
/// `counting` says; where the other counting selects another message
/// (a map or group before it), that one may match instead.
pub(super) fn validate_payload(file: &FileDescriptor, payload: &[u8], counting: Counting) -> Result<(), String> {
    let (indexes, start) = read_message_indexes(payload)?;
    let bytes = &payload[start..];
    let primary = message_by_indexes(file, &indexes, counting);
    let result = decode(primary.clone(), &indexes, bytes);
    if result.is_err() {
        let alternative = message_by_indexes(file, &indexes, counting.other());
        if alternative.is_some() && alternative != primary && decode(alternative, &indexes, bytes).is_ok() {
            return Ok(());
        }
    }
    result
}

/// Writes `indexes` as Confluent's serializers do (tests and clients of this crate).
pub fn encode_message_indexes(indexes: &[i32]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, v: i32) {
        let mut z = ((v << 1) ^ (v >> 31)) as u32;
        while z >= 0x80 {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    let mut out = Vec::new();
    if indexes == [0] {
        out.push(0);
        return out;
    }
    put(&mut out, indexes.len() as i32);
    for &i in indexes {
        put(&mut out, i);
    }
    out
}
