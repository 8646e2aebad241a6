//! The binary form of metadata records, as KRaft frames its records: each
//! record is `frame version (uvarint 0), record type (uvarint), record
//! version (uvarint)` followed by the fields of that type and version.
//! Integers are zig-zag varints, strings and arrays are length-prefixed,
//! topic ids are 16 raw bytes. A decoder refuses a type or version it does
//! not know rather than guess.
//!
//! [`EntryData`] (what one Raft entry carries) is `format version (u8 = 1),
//! proposal id (u64 big-endian), record count (uvarint), records`.

use uuid::Uuid;

use crate::record::{BrokerEndpoint, MetadataRecord};

/// Version of the record frame.
const FRAME_VERSION: u64 = 0;
/// Version of the [`EntryData`] layout.
const ENTRY_FORMAT: u8 = 1;
/// Bound on any length read from the wire or disk (strings, arrays, counts).
const LENGTH_MAX: u64 = 1 << 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable metadata record: {0}")]
pub struct CodecError(pub String);

fn err<T>(what: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(what.into()))
}

#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub fn varint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn boolean(&mut self, v: bool) {
        self.0.push(v as u8);
    }
    pub fn string(&mut self, s: &str) {
        self.uvarint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    pub fn opt_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => {
                self.uvarint(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }
    pub fn uuid(&mut self, id: &Uuid) {
        self.0.extend_from_slice(id.as_bytes());
    }
    pub fn ints(&mut self, v: &[i32]) {
        self.uvarint(v.len() as u64);
        for i in v {
            self.varint(*i as i64);
        }
    }
    pub fn opt_ints(&mut self, v: Option<&[i32]>) {
        match v {
            None => self.uvarint(0),
            Some(v) => {
                self.uvarint(v.len() as u64 + 1);
                for i in v {
                    self.varint(*i as i64);
                }
            }
        }
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return err(format!("{n} bytes wanted, {} left", self.buf.len()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    pub fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint longer than 10 bytes")
    }
    pub fn varint(&mut self) -> Result<i64, CodecError> {
        let v = self.uvarint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn int(&mut self) -> Result<i32, CodecError> {
        i32::try_from(self.varint()?).or_else(|_| err("int32 out of range"))
    }
    fn length(&mut self) -> Result<usize, CodecError> {
        let n = self.uvarint()?;
        if n > LENGTH_MAX {
            return err(format!("length {n} over the bound"));
        }
        Ok(n as usize)
    }
    pub fn boolean(&mut self) -> Result<bool, CodecError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => err(format!("boolean byte {b}")),
        }
    }
    pub fn string(&mut self) -> Result<String, CodecError> {
        let n = self.length()?;
        String::from_utf8(self.take(n)?.to_vec()).or_else(|_| err("string is not UTF-8"))
    }
    pub fn opt_string(&mut self) -> Result<Option<String>, CodecError> {
        match self.length()? {
            0 => Ok(None),
            n => String::from_utf8(self.take(n - 1)?.to_vec()).map(Some).or_else(|_| err("string is not UTF-8")),
        }
    }
    pub fn uuid(&mut self) -> Result<Uuid, CodecError> {
        Ok(Uuid::from_bytes(self.take(16)?.try_into().expect("16 bytes")))
    }
    pub fn ints(&mut self) -> Result<Vec<i32>, CodecError> {
        let n = self.length()?;
        (0..n).map(|_| self.int()).collect()
    }
    pub fn opt_ints(&mut self) -> Result<Option<Vec<i32>>, CodecError> {
        match self.length()? {
            0 => Ok(None),
            n => (0..n - 1).map(|_| self.int()).collect::<Result<Vec<_>, _>>().map(Some),
        }
    }
}

/// Record types (the `api key` of KRaft's records); never renumber.
mod kind {
    pub const CLUSTER_ID: u64 = 0;
    pub const TOPIC: u64 = 1;
    pub const PARTITION: u64 = 2;
    pub const TOPIC_CONFIG: u64 = 3;
    pub const REMOVE_TOPIC: u64 = 4;
    pub const PRODUCER_IDS: u64 = 5;
    pub const ALLOCATE_PRODUCER_IDS: u64 = 6;
    pub const REGISTER_BROKER: u64 = 7;
    pub const FENCE_BROKER: u64 = 8;
    pub const UNFENCE_BROKER: u64 = 9;
    pub const ALTER_ISR: u64 = 10;
    pub const ELECT_PREFERRED: u64 = 11;
    pub const REASSIGN: u64 = 12;
    pub const PRODUCER_ID_BLOCK: u64 = 13;
    pub const BROKER_CONFIG: u64 = 14;
    pub const UNREGISTER_BROKER: u64 = 15;
    pub const OFFLINE_REPLICAS: u64 = 16;
    pub const FEATURE_LEVEL: u64 = 17;
    pub const BROKER_ENDPOINTS: u64 = 18;
    pub const CLIENT_QUOTA: u64 = 19;
    pub const ACL: u64 = 22;
    pub const REMOVE_ACL: u64 = 23;
    pub const RESOURCE_CONFIG: u64 = 26;
    pub const DELEGATION_TOKEN: u64 = 24;
    pub const REMOVE_DELEGATION_TOKEN: u64 = 25;
    pub const USER_SCRAM_CREDENTIAL: u64 = 20;
    pub const REMOVE_USER_SCRAM_CREDENTIAL: u64 = 21;
}

impl MetadataRecord {
    /// Appends the binary form of this record.
    pub fn encode_into(&self, w: &mut Writer) {
        let header = |w: &mut Writer, kind: u64| {
            w.uvarint(FRAME_VERSION);
            w.uvarint(kind);
            w.uvarint(0); // every record type is at version 0
        };
        match self {
            MetadataRecord::ClusterId { cluster_id } => {
                header(w, kind::CLUSTER_ID);
                w.string(cluster_id);
            }
            MetadataRecord::Topic { name, topic_id } => {
                header(w, kind::TOPIC);
                w.string(name);
                w.uuid(topic_id);
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                target_replicas,
            } => {
                header(w, kind::PARTITION);
                w.uuid(topic_id);
                w.varint(*partition as i64);
                w.ints(replicas);
                w.ints(isr);
                w.varint(*leader as i64);
                w.varint(*leader_epoch as i64);
                w.varint(*partition_epoch as i64);
                w.opt_ints(target_replicas.as_deref());
            }
            MetadataRecord::TopicConfig { topic_id, key, value } => {
                header(w, kind::TOPIC_CONFIG);
                w.uuid(topic_id);
                w.string(key);
                w.opt_string(value.as_deref());
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                header(w, kind::REMOVE_TOPIC);
                w.uuid(topic_id);
            }
            MetadataRecord::ProducerIds { broker_id, next_producer_id } => {
                header(w, kind::PRODUCER_IDS);
                w.varint(*broker_id as i64);
                w.varint(*next_producer_id);
            }
            MetadataRecord::AllocateProducerIds { broker_id, count } => {
                header(w, kind::ALLOCATE_PRODUCER_IDS);
                w.varint(*broker_id as i64);
                w.varint(*count);
            }
            MetadataRecord::ProducerIdBlock { broker_id, start, end } => {
                header(w, kind::PRODUCER_ID_BLOCK);
                w.varint(*broker_id as i64);
                w.varint(*start);
                w.varint(*end);
            }
            MetadataRecord::RegisterBroker { broker_id, incarnation, host, port } => {
                header(w, kind::REGISTER_BROKER);
                w.varint(*broker_id as i64);
                w.uvarint(*incarnation);
                w.string(host);
                w.uvarint(*port as u64);
            }
            MetadataRecord::FenceBroker { broker_id, incarnation, controlled } => {
                header(w, kind::FENCE_BROKER);
                w.varint(*broker_id as i64);
                w.uvarint(*incarnation);
                w.boolean(*controlled);
            }
            MetadataRecord::UnfenceBroker { broker_id, incarnation } => {
                header(w, kind::UNFENCE_BROKER);
                w.varint(*broker_id as i64);
                w.uvarint(*incarnation);
            }
            MetadataRecord::AlterIsr { topic_id, partition, leader_epoch, partition_epoch, isr } => {
                header(w, kind::ALTER_ISR);
                w.uuid(topic_id);
                w.varint(*partition as i64);
                w.varint(*leader_epoch as i64);
                w.varint(*partition_epoch as i64);
                w.ints(isr);
            }
            MetadataRecord::BrokerEndpoints { broker_id, incarnation, endpoints } => {
                header(w, kind::BROKER_ENDPOINTS);
                w.varint(*broker_id as i64);
                w.uvarint(*incarnation);
                w.uvarint(endpoints.len() as u64);
                for e in endpoints {
                    w.string(&e.listener);
                    w.string(&e.host);
                    w.uvarint(e.port as u64);
                }
            }
            MetadataRecord::OfflineReplicas { broker_id, incarnation, replicas } => {
                header(w, kind::OFFLINE_REPLICAS);
                w.varint(*broker_id as i64);
                w.uvarint(*incarnation);
                w.uvarint(replicas.len() as u64);
                for (topic_id, partition) in replicas {
                    w.uuid(topic_id);
                    w.varint(*partition as i64);
                }
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                header(w, kind::UNREGISTER_BROKER);
                w.varint(*broker_id as i64);
            }
            MetadataRecord::BrokerConfig { resource, key, value } => {
                header(w, kind::BROKER_CONFIG);
                w.string(resource);
                w.string(key);
                w.opt_string(value.as_deref());
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                header(w, kind::CLIENT_QUOTA);
                w.uvarint(entity.len() as u64);
                for (entity_type, name) in entity {
                    w.string(entity_type);
                    w.opt_string(name.as_deref());
                }
                w.string(key);
                match value {
                    Some(v) => {
                        w.uvarint(1);
                        w.uvarint(v.0);
                    }
                    None => w.uvarint(0),
                }
            }
            MetadataRecord::Acl { id, acl } => {
                header(w, kind::ACL);
                w.uuid(id);
                w.varint(acl.resource_type.code() as i64);
                w.string(&acl.resource_name);
                w.varint(acl.pattern_type.code() as i64);
                w.string(&acl.principal);
                w.string(&acl.host);
                w.varint(acl.operation.code() as i64);
                w.varint(acl.permission.code() as i64);
            }
            MetadataRecord::RemoveAcl { id } => {
                header(w, kind::REMOVE_ACL);
                w.uuid(id);
            }
            MetadataRecord::ResourceConfig { resource_type, name, key, value } => {
                header(w, kind::RESOURCE_CONFIG);
                w.varint(*resource_type as i64);
                w.string(name);
                w.string(key);
                w.opt_string(value.as_deref());
            }
            MetadataRecord::DelegationToken(t) => {
                header(w, kind::DELEGATION_TOKEN);
                w.string(&t.token_id);
                w.string(&t.owner);
                w.string(&t.requester);
                w.uvarint(t.renewers.len() as u64);
                for renewer in &t.renewers {
                    w.string(renewer);
                }
                w.varint(t.issue_timestamp_ms);
                w.varint(t.max_timestamp_ms);
                w.varint(t.expiry_timestamp_ms);
            }
            MetadataRecord::RemoveDelegationToken { token_id } => {
                header(w, kind::REMOVE_DELEGATION_TOKEN);
                w.string(token_id);
            }
            MetadataRecord::UserScramCredential { name, mechanism, credential } => {
                header(w, kind::USER_SCRAM_CREDENTIAL);
                w.string(name);
                w.varint(*mechanism as i64);
                w.uvarint(credential.salt.len() as u64);
                w.bytes(&credential.salt);
                w.uvarint(credential.stored_key.len() as u64);
                w.bytes(&credential.stored_key);
                w.uvarint(credential.server_key.len() as u64);
                w.bytes(&credential.server_key);
                w.varint(credential.iterations as i64);
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                header(w, kind::REMOVE_USER_SCRAM_CREDENTIAL);
                w.string(name);
                w.varint(*mechanism as i64);
            }
            MetadataRecord::FeatureLevel { name, level } => {
                header(w, kind::FEATURE_LEVEL);
                w.string(name);
                w.varint(*level as i64);
            }
            MetadataRecord::ElectPreferred { topic_id, partition } => {
                header(w, kind::ELECT_PREFERRED);
                w.uuid(topic_id);
                w.varint(*partition as i64);
            }
            MetadataRecord::Reassign { topic_id, partition, replicas } => {
                header(w, kind::REASSIGN);
                w.uuid(topic_id);
                w.varint(*partition as i64);
                w.ints(replicas);
            }
        }
    }

    /// Reads one record.
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let frame = r.uvarint()?;
        if frame != FRAME_VERSION {
            return err(format!("frame version {frame}"));
        }
        let kind = r.uvarint()?;
        let version = r.uvarint()?;
        if version != 0 {
            return err(format!("record type {kind} at version {version}"));
        }
        let int = |r: &mut Reader<'_>| r.int();
        Ok(match kind {
            kind::CLUSTER_ID => MetadataRecord::ClusterId { cluster_id: r.string()? },
            kind::TOPIC => MetadataRecord::Topic { name: r.string()?, topic_id: r.uuid()? },
            kind::PARTITION => MetadataRecord::Partition {
                topic_id: r.uuid()?,
                partition: int(r)?,
                replicas: r.ints()?,
                isr: r.ints()?,
                leader: int(r)?,
                leader_epoch: int(r)?,
                partition_epoch: int(r)?,
                target_replicas: r.opt_ints()?,
            },
            kind::TOPIC_CONFIG => {
                MetadataRecord::TopicConfig { topic_id: r.uuid()?, key: r.string()?, value: r.opt_string()? }
            }
            kind::REMOVE_TOPIC => MetadataRecord::RemoveTopic { topic_id: r.uuid()? },
            kind::UNREGISTER_BROKER => MetadataRecord::UnregisterBroker { broker_id: int(r)? },
            kind::OFFLINE_REPLICAS => {
                let (broker_id, incarnation) = (int(r)?, r.uvarint()?);
                let count = r.length()?;
                let replicas = (0..count).map(|_| Ok((r.uuid()?, int(r)?))).collect::<Result<_, CodecError>>()?;
                MetadataRecord::OfflineReplicas { broker_id, incarnation, replicas }
            }
            kind::BROKER_ENDPOINTS => {
                let (broker_id, incarnation) = (int(r)?, r.uvarint()?);
                let count = r.length()?;
                let endpoints = (0..count)
                    .map(|_| {
                        Ok(BrokerEndpoint {
                            listener: r.string()?,
                            host: r.string()?,
                            port: u16::try_from(r.uvarint()?).or_else(|_| err("port out of range"))?,
                        })
                    })
                    .collect::<Result<_, CodecError>>()?;
                MetadataRecord::BrokerEndpoints { broker_id, incarnation, endpoints }
            }
            kind::BROKER_CONFIG => {
                MetadataRecord::BrokerConfig { resource: r.string()?, key: r.string()?, value: r.opt_string()? }
            }
            kind::CLIENT_QUOTA => {
                let count = r.length()?;
                let entity =
                    (0..count).map(|_| Ok((r.string()?, r.opt_string()?))).collect::<Result<_, CodecError>>()?;
                let key = r.string()?;
                let value = match r.uvarint()? {
                    0 => None,
                    1 => Some(crate::record::QuotaValue(r.uvarint()?)),
                    other => return err(format!("quota value tag {other}")),
                };
                MetadataRecord::ClientQuota { entity, key, value }
            }
            kind::ACL => {
                use crate::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};
                fn code<T>(r: &mut Reader, what: &str, from: fn(i8) -> Option<T>) -> Result<T, CodecError> {
                    let v = r.varint()?;
                    i8::try_from(v).ok().and_then(from).map_or_else(|| err(format!("{what} {v}")), Ok)
                }
                let id = r.uuid()?;
                let acl = AclBinding {
                    resource_type: code(r, "ACL resource type", ResourceType::from_code)?,
                    resource_name: r.string()?,
                    pattern_type: code(r, "ACL pattern type", PatternType::from_code)?,
                    principal: r.string()?,
                    host: r.string()?,
                    operation: code(r, "ACL operation", AclOperation::from_code)?,
                    permission: code(r, "ACL permission", AclPermission::from_code)?,
                };
                MetadataRecord::Acl { id, acl }
            }
            kind::REMOVE_ACL => MetadataRecord::RemoveAcl { id: r.uuid()? },
            kind::RESOURCE_CONFIG => MetadataRecord::ResourceConfig {
                resource_type: i8::try_from(r.varint()?).or_else(|_| err("resource type out of range"))?,
                name: r.string()?,
                key: r.string()?,
                value: r.opt_string()?,
            },
            kind::DELEGATION_TOKEN => {
                let (token_id, owner, requester) = (r.string()?, r.string()?, r.string()?);
                let count = r.length()?;
                let renewers = (0..count).map(|_| r.string()).collect::<Result<_, CodecError>>()?;
                MetadataRecord::DelegationToken(crate::record::DelegationTokenInfo {
                    token_id,
                    owner,
                    requester,
                    renewers,
                    issue_timestamp_ms: r.varint()?,
                    max_timestamp_ms: r.varint()?,
                    expiry_timestamp_ms: r.varint()?,
                })
            }
            kind::REMOVE_DELEGATION_TOKEN => MetadataRecord::RemoveDelegationToken { token_id: r.string()? },
            kind::USER_SCRAM_CREDENTIAL => {
                let name = r.string()?;
                let mechanism = i8::try_from(r.varint()?).or_else(|_| err("SCRAM mechanism out of range"))?;
                let mut blob = || -> Result<Vec<u8>, CodecError> {
                    let len = r.length()?;
                    Ok(r.take(len)?.to_vec())
                };
                let (salt, stored_key, server_key) = (blob()?, blob()?, blob()?);
                let iterations = i32::try_from(r.varint()?).or_else(|_| err("SCRAM iterations out of range"))?;
                MetadataRecord::UserScramCredential {
                    name,
                    mechanism,
                    credential: crate::record::ScramCredentialData { salt, stored_key, server_key, iterations },
                }
            }
            kind::REMOVE_USER_SCRAM_CREDENTIAL => MetadataRecord::RemoveUserScramCredential {
                name: r.string()?,
                mechanism: i8::try_from(r.varint()?).or_else(|_| err("SCRAM mechanism out of range"))?,
            },
            kind::FEATURE_LEVEL => MetadataRecord::FeatureLevel {
                name: r.string()?,
                level: i16::try_from(r.varint()?).or_else(|_| err("feature level out of range"))?,
            },
            kind::PRODUCER_IDS => MetadataRecord::ProducerIds { broker_id: int(r)?, next_producer_id: r.varint()? },
            kind::ALLOCATE_PRODUCER_IDS => {
                MetadataRecord::AllocateProducerIds { broker_id: int(r)?, count: r.varint()? }
            }
            kind::PRODUCER_ID_BLOCK => {
                MetadataRecord::ProducerIdBlock { broker_id: int(r)?, start: r.varint()?, end: r.varint()? }
            }
            kind::REGISTER_BROKER => MetadataRecord::RegisterBroker {
                broker_id: int(r)?,
                incarnation: r.uvarint()?,
                host: r.string()?,
                port: u16::try_from(r.uvarint()?).or_else(|_| err("port out of range"))?,
            },
            kind::FENCE_BROKER => {
                MetadataRecord::FenceBroker { broker_id: int(r)?, incarnation: r.uvarint()?, controlled: r.boolean()? }
            }
            kind::UNFENCE_BROKER => MetadataRecord::UnfenceBroker { broker_id: int(r)?, incarnation: r.uvarint()? },
            kind::ALTER_ISR => MetadataRecord::AlterIsr {
                topic_id: r.uuid()?,
                partition: int(r)?,
                leader_epoch: int(r)?,
                partition_epoch: int(r)?,
                isr: r.ints()?,
            },
            kind::ELECT_PREFERRED => MetadataRecord::ElectPreferred { topic_id: r.uuid()?, partition: int(r)? },
            kind::REASSIGN => MetadataRecord::Reassign { topic_id: r.uuid()?, partition: int(r)?, replicas: r.ints()? },
            other => return err(format!("unknown record type {other}")),
        })
    }
}

/// What one Raft entry carries: records applied together, and the
/// proposer's id for them so it can learn they were applied (0: none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct EntryData {
    pub id: u64,
    pub records: Vec<MetadataRecord>,
}

impl EntryData {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(&[ENTRY_FORMAT]);
        w.bytes(&self.id.to_be_bytes());
        w.uvarint(self.records.len() as u64);
        for record in &self.records {
            record.encode_into(&mut w);
        }
        w.into_bytes()
    }

    /// `Ok(None)` for an empty entry (a new Raft leader's no-op).
    pub fn decode(data: &[u8]) -> Result<Option<Self>, CodecError> {
        if data.is_empty() {
            return Ok(None);
        }
        let mut r = Reader::new(data);
        let format = r.take(1)?[0];
        if format != ENTRY_FORMAT {
            return err(format!("entry format {format}"));
        }
        let id = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let count = r.length()?;
        let records = (0..count).map(|_| MetadataRecord::decode_from(&mut r)).collect::<Result<Vec<_>, _>>()?;
        if !r.is_empty() {
            return err("trailing bytes after the records");
        }
        Ok(Some(Self { id, records }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_record() -> Vec<MetadataRecord> {
        let id = Uuid::new_v4();
        vec![
            MetadataRecord::ClusterId { cluster_id: "c-1".into() },
            MetadataRecord::Topic { name: "orders".into(), topic_id: id },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 3,
                replicas: vec![1, 2, 3],
                isr: vec![2, 1],
                leader: 2,
                leader_epoch: 7,
                partition_epoch: 9,
                target_replicas: Some(vec![2, 3]),
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![],
                isr: vec![],
                leader: -1,
                leader_epoch: i32::MAX,
                partition_epoch: 0,
                target_replicas: None,
            },
            MetadataRecord::TopicConfig { topic_id: id, key: "retention.ms".into(), value: Some("1".into()) },
            MetadataRecord::TopicConfig { topic_id: id, key: "cleanup.policy".into(), value: None },
            MetadataRecord::TopicConfig { topic_id: id, key: "k".into(), value: Some(String::new()) },
            MetadataRecord::RemoveTopic { topic_id: id },
            MetadataRecord::ProducerIds { broker_id: 1, next_producer_id: i64::MAX },
            MetadataRecord::AllocateProducerIds { broker_id: 0, count: 1000 },
            MetadataRecord::ProducerIdBlock { broker_id: 2, start: 1000, end: 2000 },
            MetadataRecord::RegisterBroker { broker_id: 3, incarnation: u64::MAX, host: "kafka-3".into(), port: 9092 },
            MetadataRecord::FenceBroker { broker_id: 3, incarnation: 5, controlled: true },
            MetadataRecord::UnfenceBroker { broker_id: 3, incarnation: 5 },
            MetadataRecord::AlterIsr { topic_id: id, partition: 1, leader_epoch: 2, partition_epoch: 3, isr: vec![1] },
            MetadataRecord::ElectPreferred { topic_id: id, partition: 4 },
            MetadataRecord::Reassign { topic_id: id, partition: 5, replicas: vec![4, 5] },
            MetadataRecord::BrokerConfig {
                resource: String::new(),
                key: "log.retention.ms".into(),
                value: Some("1".into()),
            },
            MetadataRecord::BrokerConfig { resource: "3".into(), key: "message.max.bytes".into(), value: None },
            MetadataRecord::UnregisterBroker { broker_id: 4 },
            MetadataRecord::OfflineReplicas { broker_id: 2, incarnation: 9, replicas: vec![(id, 0), (id, 7)] },
            MetadataRecord::OfflineReplicas { broker_id: 2, incarnation: 9, replicas: vec![] },
            MetadataRecord::FeatureLevel { name: "transaction.version".into(), level: 2 },
            MetadataRecord::FeatureLevel { name: "group.version".into(), level: 0 },
            MetadataRecord::ClientQuota {
                entity: vec![("user".into(), Some("alice".into())), ("client-id".into(), None)],
                key: "producer_byte_rate".into(),
                value: Some(crate::record::QuotaValue::new(1048576.5)),
            },
            MetadataRecord::ClientQuota {
                entity: vec![("ip".into(), None)],
                key: "connection_creation_rate".into(),
                value: None,
            },
            MetadataRecord::Acl {
                id: Uuid::from_u128(7),
                acl: crate::acl::AclBinding {
                    resource_type: crate::acl::ResourceType::TransactionalId,
                    resource_name: "tx-".into(),
                    pattern_type: crate::acl::PatternType::Prefixed,
                    principal: "User:CN=alice,O=acme".into(),
                    host: "10.0.0.1".into(),
                    operation: crate::acl::AclOperation::Write,
                    permission: crate::acl::AclPermission::Deny,
                },
            },
            MetadataRecord::RemoveAcl { id: Uuid::from_u128(7) },
            MetadataRecord::ResourceConfig {
                resource_type: 16,
                name: "all-metrics".into(),
                key: "metrics".into(),
                value: Some("*".into()),
            },
            MetadataRecord::ResourceConfig { resource_type: 16, name: "x".into(), key: "match".into(), value: None },
            MetadataRecord::DelegationToken(crate::record::DelegationTokenInfo {
                token_id: "tok-1".into(),
                owner: "User:alice".into(),
                requester: "User:admin".into(),
                renewers: vec!["User:bob".into(), "Group:ops".into()],
                issue_timestamp_ms: 1_700_000_000_000,
                max_timestamp_ms: i64::MAX,
                expiry_timestamp_ms: -1,
            }),
            MetadataRecord::DelegationToken(crate::record::DelegationTokenInfo {
                token_id: String::new(),
                owner: "User:alice".into(),
                requester: "User:alice".into(),
                renewers: vec![],
                issue_timestamp_ms: 0,
                max_timestamp_ms: 0,
                expiry_timestamp_ms: 0,
            }),
            MetadataRecord::RemoveDelegationToken { token_id: "tok-1".into() },
            MetadataRecord::UserScramCredential {
                name: "alice".into(),
                mechanism: 2,
                credential: crate::record::ScramCredentialData {
                    salt: vec![1, 2, 3],
                    stored_key: vec![7; 64],
                    server_key: vec![9; 64],
                    iterations: 8192,
                },
            },
            MetadataRecord::RemoveUserScramCredential { name: "bob".into(), mechanism: 1 },
            MetadataRecord::BrokerEndpoints {
                broker_id: 2,
                incarnation: 9,
                endpoints: vec![
                    BrokerEndpoint { listener: "INTERNAL".into(), host: "kafka-2".into(), port: 9093 },
                    BrokerEndpoint { listener: "EXTERNAL".into(), host: "kafka.example".into(), port: u16::MAX },
                ],
            },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        let entry = EntryData { id: 0xdead_beef_0000_0001, records: every_record() };
        let bytes = entry.encode();
        assert_eq!(EntryData::decode(&bytes).unwrap(), Some(entry));
        assert_eq!(EntryData::decode(&[]).unwrap(), None);
    }

    #[test]
    fn garbage_and_unknown_versions_are_refused_without_panicking() {
        let bytes = EntryData { id: 1, records: every_record() }.encode();
        for cut in 0..bytes.len() {
            if cut > 0 {
                assert!(EntryData::decode(&bytes[..cut]).is_err(), "a prefix of {cut} bytes decoded");
            }
        }
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(EntryData::decode(&future).is_err());
        // a record at a version this code does not know
        let mut w = Writer::default();
        w.uvarint(0);
        w.uvarint(kind::TOPIC);
        w.uvarint(1);
        assert!(MetadataRecord::decode_from(&mut Reader::new(&w.into_bytes())).is_err());
        // a length of billions is refused before any allocation
        let mut w = Writer::default();
        w.bytes(&[ENTRY_FORMAT]);
        w.bytes(&1u64.to_be_bytes());
        w.uvarint(u64::MAX >> 1);
        assert!(EntryData::decode(&w.into_bytes()).is_err());
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = EntryData::decode(&junk);
        }
    }
}
