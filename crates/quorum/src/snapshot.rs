//! Snapshots of the metadata image (KIP-630): `<index>-<term>.checkpoint`
//! files in the metadata log directory (20 and 10 digits; `index` is the
//! last Raft entry the snapshot covers, which is also the offset of the
//! first entry after it). The content is record batches, CRC-checked like
//! the log's:
//!
//! - a `header` record: format version, index, term, the image's record
//!   count, the voters, and (format 2) the learners and every member's
//!   controller endpoint ([`crate::membership`]); format 1, written before
//!   the membership could change, has the voters only;
//! - the image as metadata records ([`MetadataImage::to_records`]), in
//!   batches of at most [`RECORDS_PER_BATCH`];
//! - an `applied` record: the ids of recently applied proposals, so that a
//!   node starting from the snapshot skips the same retried copies as the
//!   others.
//!
//! The same bytes travel in raft-rs's snapshot message to a follower that
//! is too far behind for the leader's log (our FetchSnapshot).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vltava_metadata::codec::{Reader, Writer};
use vltava_metadata::{MetadataImage, MetadataRecord};
use vltava_protocol::batch::{build_keyed_batch, records_of, records_section, verify_crc, Batches, KeyValue};

use crate::applied::AppliedIds;

const FORMAT: u8 = 2;
/// The format before learners and endpoints were recorded.
const FORMAT_VOTERS_ONLY: u8 = 1;
/// Members a header may list (a bound on what a corrupt length asks for).
const MEMBERS_MAX: u64 = 1024;
const HEADER_KEY: &[u8] = b"header";
const APPLIED_KEY: &[u8] = b"applied";
pub const RECORDS_PER_BATCH: usize = 1000;
pub const SNAPSHOT_SUFFIX: &str = ".checkpoint";

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotContent {
    /// The last entry applied to `image`.
    pub index: u64,
    pub term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Controller endpoints of the members, by raft id (format 1: none).
    pub endpoints: BTreeMap<u64, String>,
    pub image: MetadataImage,
    pub applied: AppliedIds,
}

pub fn file_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:010}{SNAPSHOT_SUFFIX}")
}

/// `(index, term, path)` of the snapshot files in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<(u64, u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(u64, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let (index, term) = name.strip_suffix(SNAPSHOT_SUFFIX)?.split_once('-')?;
            Some((index.parse().ok()?, term.parse().ok()?, e.path()))
        })
        .collect();
    found.sort();
    found
}

impl SnapshotContent {
    pub fn encode(&self) -> Vec<u8> {
        let records = self.image.to_records();
        let mut header = Writer::default();
        header.bytes(&[FORMAT]);
        header.bytes(&self.index.to_be_bytes());
        header.bytes(&self.term.to_be_bytes());
        header.bytes(&(records.len() as u64).to_be_bytes());
        for ids in [&self.voters, &self.learners] {
            header.uvarint(ids.len() as u64);
            for v in ids {
                header.uvarint(*v);
            }
        }
        header.uvarint(self.endpoints.len() as u64);
        for (id, endpoint) in &self.endpoints {
            header.uvarint(*id);
            header.string(endpoint);
        }
        let header = header.into_bytes();
        let mut out = build_keyed_batch(0, 0, &[(Some(HEADER_KEY), Some(&header))]);
        let mut offset = 1;
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let encoded: Vec<Vec<u8>> = chunk
                .iter()
                .map(|r| {
                    let mut w = Writer::default();
                    r.encode_into(&mut w);
                    w.into_bytes()
                })
                .collect();
            let pairs: Vec<KeyValue<'_>> = encoded.iter().map(|v| (None, Some(v.as_slice()))).collect();
            out.extend_from_slice(&build_keyed_batch(offset, 0, &pairs));
            offset += chunk.len() as i64;
        }
        let mut applied = Writer::default();
        let ids: Vec<u64> = self.applied.ids().collect();
        applied.uvarint(ids.len() as u64);
        for id in ids {
            applied.bytes(&id.to_be_bytes());
        }
        out.extend_from_slice(&build_keyed_batch(offset, 0, &[(Some(APPLIED_KEY), Some(&applied.into_bytes()))]));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut header = None;
        let mut records: Vec<MetadataRecord> = Vec::new();
        let mut applied = None;
        for item in Batches::new(bytes) {
            let (_, batch) = item.map_err(|e| e.to_string())?;
            verify_crc(batch).map_err(|e| e.to_string())?;
            let section = records_section(batch).map_err(|e| e.to_string())?;
            for record in records_of(batch, &section).map_err(|e| e.to_string())? {
                let value = record.value.ok_or("a record without a value")?;
                match record.key {
                    Some(HEADER_KEY) => header = Some(value.to_vec()),
                    Some(APPLIED_KEY) => applied = Some(value.to_vec()),
                    Some(_) => return Err("unknown snapshot record".into()),
                    None => {
                        records.push(MetadataRecord::decode_from(&mut Reader::new(value)).map_err(|e| e.to_string())?)
                    }
                }
            }
        }
        let header = header.ok_or("no header")?;
        let mut r = Reader::new(&header);
        let u64_at = |r: &mut Reader<'_>| -> Result<u64, String> {
            Ok(u64::from_be_bytes(r.take(8).map_err(|e| e.to_string())?.try_into().expect("8 bytes")))
        };
        let format = r.take(1).map_err(|e| e.to_string())?[0];
        if format != FORMAT && format != FORMAT_VOTERS_ONLY {
            return Err(format!("unknown snapshot format {format}"));
        }
        let (index, term, count) = (u64_at(&mut r)?, u64_at(&mut r)?, u64_at(&mut r)?);
        let ids = |r: &mut Reader<'_>| -> Result<Vec<u64>, String> {
            let len = r.uvarint().map_err(|e| e.to_string())?.min(MEMBERS_MAX);
            (0..len).map(|_| r.uvarint().map_err(|e| e.to_string())).collect()
        };
        let voters = ids(&mut r)?;
        let (mut learners, mut endpoints) = (Vec::new(), BTreeMap::new());
        if format == FORMAT {
            learners = ids(&mut r)?;
            let len = r.uvarint().map_err(|e| e.to_string())?.min(MEMBERS_MAX);
            for _ in 0..len {
                let id = r.uvarint().map_err(|e| e.to_string())?;
                endpoints.insert(id, r.string().map_err(|e| e.to_string())?);
            }
        }
        if count != records.len() as u64 {
            return Err(format!("{} image records, the header says {count}", records.len()));
        }
        let applied = applied.ok_or("no applied ids")?;
        let mut r = Reader::new(&applied);
        let n = r.uvarint().map_err(|e| e.to_string())?;
        let ids = (0..n).map(|_| u64_at(&mut r)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            index,
            term,
            voters,
            learners,
            endpoints,
            image: MetadataImage::from_records(&records, index),
            applied: AppliedIds::from_ids(ids),
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    pub(crate) fn sample_image() -> MetadataImage {
        let id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::ClusterId { cluster_id: "abc".into() }];
        for b in 1..=3 {
            records.push(MetadataRecord::RegisterBroker { broker_id: b, incarnation: 7, host: "h".into(), port: 9092 });
        }
        records.push(MetadataRecord::Topic { name: "t".into(), topic_id: id });
        for p in 0..3 {
            records.push(MetadataRecord::Partition {
                topic_id: id,
                partition: p,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                leader: 1 + p % 3,
                leader_epoch: 0,
                partition_epoch: 0,
                target_replicas: None,
            });
        }
        records.push(MetadataRecord::TopicConfig { topic_id: id, key: "retention.ms".into(), value: Some("9".into()) });
        records.push(MetadataRecord::AllocateProducerIds { broker_id: 2, count: 1000 });
        records.push(MetadataRecord::Reassign { topic_id: id, partition: 1, replicas: vec![2, 3, 4] });
        records.push(MetadataRecord::FenceBroker { broker_id: 3, incarnation: 7, controlled: false });
        let mut image = MetadataImage::default().apply(&records);
        image.offset = 42;
        image
    }

    #[test]
    fn a_snapshot_rebuilds_the_image_exactly() {
        let content = SnapshotContent {
            index: 42,
            term: 3,
            voters: vec![1, 2, 3],
            learners: vec![5],
            endpoints: BTreeMap::from([(1, "h1:9093".into()), (5, "h5:9093".into())]),
            image: sample_image(),
            applied: AppliedIds::from_ids([5, 6, 7]),
        };
        assert!(content.image.topic("t").unwrap().partitions[1].target_replicas.is_some());
        assert!(content.image.broker(3).unwrap().fenced);
        let bytes = content.encode();
        assert_eq!(SnapshotContent::decode(&bytes).unwrap(), content);
        // any flipped byte is caught
        for at in [10, bytes.len() / 2, bytes.len() - 3] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(SnapshotContent::decode(&bad).is_err(), "byte {at}");
        }
        assert!(SnapshotContent::decode(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(file_name(42, 3), "00000000000000000042-0000000003.checkpoint");
    }

    /// Snapshots written before the membership could change (format 1:
    /// voters only) are still read: their learners and endpoints are none.
    #[test]
    fn a_format_1_snapshot_is_read() {
        let mut content = SnapshotContent {
            index: 7,
            term: 2,
            voters: vec![1, 2, 3],
            learners: vec![],
            endpoints: BTreeMap::new(),
            image: MetadataImage::default(),
            applied: AppliedIds::from_ids([1]),
        };
        content.image.offset = 7;
        let mut header = Writer::default();
        header.bytes(&[FORMAT_VOTERS_ONLY]);
        header.bytes(&7u64.to_be_bytes());
        header.bytes(&2u64.to_be_bytes());
        header.bytes(&0u64.to_be_bytes());
        header.uvarint(3);
        for v in [1, 2, 3] {
            header.uvarint(v);
        }
        let mut bytes = build_keyed_batch(0, 0, &[(Some(HEADER_KEY), Some(&header.into_bytes()))]);
        let mut applied = Writer::default();
        applied.uvarint(1);
        applied.bytes(&1u64.to_be_bytes());
        bytes.extend_from_slice(&build_keyed_batch(1, 0, &[(Some(APPLIED_KEY), Some(&applied.into_bytes()))]));
        assert_eq!(SnapshotContent::decode(&bytes).unwrap(), content);
    }
}
