//! Share group membership at the group coordinator (the node leading the
//! group's `__consumer_offsets` partition): ShareGroupHeartbeat joins,
//! keeps and leaves members, bumps the group epoch on every change, and
//! assigns partitions server-side with Kafka's simple assignor (every
//! subscribed partition to some member; a partition to several members
//! when there are more members than partitions). Members expire after
//! the session timeout, checked whenever the group is touched.
//!
//! The group's existence and epoch are kept in `__consumer_offsets` as
//! Kafka's `ShareGroupMetadata` records (key type 11), so a share group
//! survives a restart; members are not persisted (they rejoin).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use uuid::Uuid;
use vltava_protocol::ResponseError;

use super::settings::ShareSettings;
use crate::group::records::partition_for_group;
use crate::group::OFFSETS_TOPIC;
use crate::Broker;

/// `ShareGroupMetadataKey`'s record type in `__consumer_offsets`.
const SHARE_GROUP_METADATA_KEY: i16 = 11;
/// Kafka's other share group record types (members, assignments, state
/// partitions): not written by vltava, recognised and skipped at load.
const SHARE_GROUP_OTHER_KEYS: [i16; 6] = [9, 10, 12, 13, 14, 15];

/// One partition set: topic id and partition indexes.
pub type TopicPartitions = Vec<(Uuid, Vec<i32>)>;

#[derive(Clone, Debug)]
pub struct ShareMember {
    pub member_id: String,
    pub epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub rack_id: Option<String>,
    pub subscribed: Vec<String>,
    pub assignment: TopicPartitions,
    deadline: Instant,
}

#[derive(Default)]
struct ShareGroup {
    epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, ShareMember>,
    /// (topic id, partition count) of the subscribed topics at the last
    /// assignment: a change (new partitions, topic created) reassigns.
    topology: Vec<(Uuid, usize)>,
}

/// What a heartbeat asks.
pub struct Heartbeat<'a> {
    pub member_id: &'a str,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed: Option<Vec<String>>,
    pub client_id: &'a str,
    pub client_host: &'a str,
}

/// What a heartbeat answers.
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<TopicPartitions>,
}

/// A group as ShareGroupDescribe shows it.
pub struct ShareGroupView {
    pub state: &'static str,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: Vec<ShareMember>,
}

/// The share groups this node coordinates.
#[derive(Default)]
pub struct ShareGroups {
    groups: Mutex<HashMap<String, ShareGroup>>,
    broker: OnceLock<Weak<Broker>>,
}

impl ShareGroups {
    /// Lets removals write their tombstones (call once the broker exists).
    pub fn attach(&self, broker: &Arc<Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.get().and_then(Weak::upgrade)
    }

    /// Whether `group` is a share group coordinated here.
    pub fn exists(&self, group: &str) -> bool {
        self.coordinated(group) && self.groups.lock().contains_key(group)
    }

    fn coordinated(&self, group: &str) -> bool {
        self.broker().is_none_or(|b| b.groups.check_coordinator(group).is_ok())
    }

    /// Members of share group `group`, `None` when it is not one.
    pub fn member_count(&self, group: &str) -> Option<usize> {
        if !self.coordinated(group) {
            return None;
        }
        let mut groups = self.groups.lock();
        let g = groups.get_mut(group)?;
        expire(g, Instant::now());
        Some(g.members.len())
    }

    /// Topics the members of `group` subscribe to.
    pub fn subscribed_topics(&self, group: &str) -> Vec<String> {
        let groups = self.groups.lock();
        let mut topics: Vec<String> = groups
            .get(group)
            .map(|g| g.members.values().flat_map(|m| m.subscribed.iter().cloned()).collect())
            .unwrap_or_default();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Share groups coordinated here with their state name (ListGroups).
    pub fn list(&self) -> Vec<(String, &'static str)> {
        let now = Instant::now();
        let candidates: Vec<String> = self.groups.lock().keys().cloned().collect();
        let coordinated: Vec<String> = candidates.into_iter().filter(|g| self.coordinated(g)).collect();
        let mut groups = self.groups.lock();
        coordinated
            .into_iter()
            .filter_map(|id| {
                let g = groups.get_mut(&id)?;
                expire(g, now);
                Some((id, state_name(g)))
            })
            .collect()
    }

    /// Forgets an empty share group (DeleteGroups): GROUP_ID_NOT_FOUND when
    /// it is not one, NON_EMPTY_GROUP while it has members.
    pub fn remove(&self, group: &str) -> Result<(), ResponseError> {
        if !self.coordinated(group) {
            return Err(ResponseError::GroupIdNotFound);
        }
        {
            let mut groups = self.groups.lock();
            let g = groups.get_mut(group).ok_or(ResponseError::GroupIdNotFound)?;
            expire(g, Instant::now());
            if !g.members.is_empty() {
                return Err(ResponseError::NonEmptyGroup);
            }
            groups.remove(group);
        }
        if let Some(broker) = self.broker() {
            persist(&broker, group, None)?;
        }
        Ok(())
    }

    /// The group for ShareGroupDescribe.
    pub fn describe(&self, group: &str) -> Option<ShareGroupView> {
        let mut groups = self.groups.lock();
        let g = groups.get_mut(group)?;
        expire(g, Instant::now());
        Some(ShareGroupView {
            state: state_name(g),
            epoch: g.epoch,
            assignment_epoch: g.assignment_epoch,
            members: g.members.values().cloned().collect(),
        })
    }

    /// ShareGroupHeartbeat: join (epoch 0), stay (the member's epoch),
    /// leave (-1). The caller checked coordinator and group type.
    pub fn heartbeat(
        &self,
        broker: &Arc<Broker>,
        group_id: &str,
        hb: Heartbeat<'_>,
    ) -> Result<HeartbeatAnswer, ResponseError> {
        let settings = ShareSettings::of(broker, group_id);
        let now = Instant::now();
        let image = broker.controller.image();
        let mut groups = self.groups.lock();
        let created = !groups.contains_key(group_id);
        let g = groups.entry(group_id.to_string()).or_default();
        let epoch_before = g.epoch;
        expire(g, now);
        let session = Duration::from_millis(settings.session_timeout_ms.max(1) as u64);
        let result = match hb.member_epoch {
            -1 => {
                // its share sessions (on the partition leaders) end with
                // their own epoch -1 or when their locks run out
                if g.members.remove(hb.member_id).is_some() {
                    g.epoch += 1;
                }
                Ok(())
            }
            0 => {
                let subscribed = hb.subscribed.clone().filter(|s| !s.is_empty());
                match subscribed {
                    None => Err(ResponseError::InvalidRequest),
                    Some(_) if !g.members.contains_key(hb.member_id) && g.members.len() >= settings.max_size => {
                        Err(ResponseError::GroupMaxSizeReached)
                    }
                    Some(subscribed) => {
                        let member = ShareMember {
                            member_id: hb.member_id.to_string(),
                            epoch: 0,
                            client_id: hb.client_id.to_string(),
                            client_host: hb.client_host.to_string(),
                            rack_id: hb.rack_id.clone(),
                            subscribed,
                            assignment: Vec::new(),
                            deadline: now + session,
                        };
                        g.members.insert(hb.member_id.to_string(), member);
                        g.epoch += 1;
                        Ok(())
                    }
                }
            }
            epoch => match g.members.get_mut(hb.member_id) {
                None => Err(ResponseError::UnknownMemberId),
                Some(m) if m.epoch != epoch => Err(ResponseError::FencedMemberEpoch),
                Some(m) => {
                    m.deadline = now + session;
                    if let Some(s) = hb.subscribed.clone().filter(|s| *s != m.subscribed) {
                        m.subscribed = s;
                        g.epoch += 1;
                    }
                    Ok(())
                }
            },
        };
        // the subscribed topics' partitions: a change reassigns
        let mut topics: Vec<&String> = g.members.values().flat_map(|m| m.subscribed.iter()).collect();
        topics.sort();
        topics.dedup();
        let topology: Vec<(Uuid, usize)> =
            topics.iter().filter_map(|t| image.topic(t)).map(|t| (t.topic_id, t.partitions.len())).collect();
        if topology != g.topology {
            g.topology = topology;
            g.epoch += 1;
        }
        if g.epoch > g.assignment_epoch {
            assign(g, &image);
        }
        let answer = match &result {
            Ok(()) if hb.member_epoch == -1 => Some(HeartbeatAnswer {
                member_id: hb.member_id.to_string(),
                member_epoch: -1,
                heartbeat_interval_ms: settings.heartbeat_interval_ms,
                assignment: None,
            }),
            Ok(()) => g.members.get(hb.member_id).map(|m| HeartbeatAnswer {
                member_id: m.member_id.clone(),
                member_epoch: m.epoch,
                heartbeat_interval_ms: settings.heartbeat_interval_ms,
                assignment: Some(m.assignment.clone()),
            }),
            Err(_) => None,
        };
        let epoch = g.epoch;
        let changed = created || epoch != epoch_before;
        if created && g.members.is_empty() {
            // nothing joined: no group to remember
            groups.remove(group_id);
        }
        drop(groups);
        if changed && answer.is_some() {
            if let Err(e) = persist(broker, group_id, Some(epoch)) {
                tracing::warn!(group = group_id, error = ?e, "could not persist share group metadata");
            }
        }
        result.map(|_| answer.expect("an answer for every success"))
    }

    /// The `__consumer_offsets` loader's hook: takes the share group
    /// records (true) and leaves the others to the classic loader.
    pub fn load_record(&self, key: &[u8], value: Option<&[u8]>) -> bool {
        let Some(kind) = key.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]])) else { return false };
        if SHARE_GROUP_OTHER_KEYS.contains(&kind) {
            return true;
        }
        if kind != SHARE_GROUP_METADATA_KEY {
            return false;
        }
        let Some(group) = decode_string(&key[2..]) else { return true };
        let mut groups = self.groups.lock();
        match value.and_then(decode_metadata_value) {
            Some(epoch) => {
                let g = groups.entry(group).or_default();
                g.epoch = g.epoch.max(epoch);
            }
            None => {
                groups.remove(&group);
            }
        }
        true
    }
}

fn state_name(g: &ShareGroup) -> &'static str {
    if g.members.is_empty() {
        "Empty"
    } else {
        "Stable"
    }
}

/// Drops the members whose session ran out; bumps the epoch if any.
fn expire(g: &mut ShareGroup, now: Instant) {
    let before = g.members.len();
    g.members.retain(|_, m| m.deadline > now);
    if g.members.len() != before {
        g.epoch += 1;
    }
}

/// Kafka's simple assignor for share groups: per topic, the partitions go
/// round-robin over its subscribers; when a topic has more subscribers
/// than partitions, each subscriber gets one partition, round-robin, so a
/// partition has several members and every member has work.
fn assign(g: &mut ShareGroup, image: &vltava_metadata::MetadataImage) {
    for m in g.members.values_mut() {
        m.assignment.clear();
        m.epoch = g.epoch;
    }
    let mut topics: Vec<String> = g.members.values().flat_map(|m| m.subscribed.iter().cloned()).collect();
    topics.sort();
    topics.dedup();
    for topic in topics {
        let Some(t) = image.topic(&topic) else { continue };
        let count = t.partitions.len() as i32;
        if count == 0 {
            continue;
        }
        let subscribers: Vec<String> =
            g.members.values().filter(|m| m.subscribed.contains(&topic)).map(|m| m.member_id.clone()).collect();
        let mut per_member: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        if subscribers.len() as i32 <= count {
            for p in 0..count {
                per_member.entry(&subscribers[(p as usize) % subscribers.len()]).or_default().push(p);
            }
        } else {
            for (i, m) in subscribers.iter().enumerate() {
                per_member.entry(m).or_default().push(i as i32 % count);
            }
        }
        let per_member: Vec<(String, Vec<i32>)> = per_member.into_iter().map(|(m, p)| (m.to_string(), p)).collect();
        for (member, partitions) in per_member {
            if let Some(m) = g.members.get_mut(&member) {
                m.assignment.push((t.topic_id, partitions));
            }
        }
    }
    g.assignment_epoch = g.epoch;
}

fn decode_string(buf: &[u8]) -> Option<String> {
    let len = i16::from_be_bytes([*buf.first()?, *buf.get(1)?]);
    let bytes = buf.get(2..2 + usize::try_from(len).ok()?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

fn decode_metadata_value(value: &[u8]) -> Option<i32> {
    let version = i16::from_be_bytes([*value.first()?, *value.get(1)?]);
    (version == 0).then_some(())?;
    Some(i32::from_be_bytes(value.get(2..6)?.try_into().ok()?))
}

fn metadata_key(group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + group.len());
    k.extend_from_slice(&SHARE_GROUP_METADATA_KEY.to_be_bytes());
    k.extend_from_slice(&(group.len() as i16).to_be_bytes());
    k.extend_from_slice(group.as_bytes());
    k
}

/// `ShareGroupMetadataValue` v0 (flexible): epoch, metadata hash, no tags.
fn metadata_value(epoch: i32) -> Vec<u8> {
    let mut v = Vec::with_capacity(15);
    v.extend_from_slice(&0i16.to_be_bytes());
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(&0i64.to_be_bytes());
    v.push(0);
    v
}

/// Writes the group's metadata record (its epoch), or its tombstone.
fn persist(broker: &Broker, group: &str, epoch: Option<i32>) -> Result<(), ResponseError> {
    let index = partition_for_group(group, broker.config.offsets_topic_num_partitions.max(1));
    let partition = match broker.partition(OFFSETS_TOPIC, index) {
        Ok((p, _)) => p,
        Err(_) => {
            broker.groups.ensure_offsets_topic(broker)?;
            broker.partition(OFFSETS_TOPIC, index).map_err(|_| ResponseError::CoordinatorNotAvailable)?.0
        }
    };
    let key = metadata_key(group);
    let value = epoch.map(metadata_value);
    let now_ms = crate::delegation_tokens::now_ms();
    let mut batch = vltava_protocol::batch::build_keyed_batch(0, now_ms, &[(Some(&key), value.as_deref())]);
    partition.append(&mut batch, None).map_err(|e| {
        tracing::error!(group, error = %e, "append to {OFFSETS_TOPIC} failed");
        ResponseError::KafkaStorageError
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_records_round_trip_through_the_loader() {
        let groups = ShareGroups::default();
        assert!(groups.load_record(&metadata_key("q"), Some(&metadata_value(7))));
        assert!(groups.exists("q"));
        assert_eq!(groups.describe("q").unwrap().epoch, 7);
        assert!(groups.load_record(&metadata_key("q"), None));
        assert!(!groups.exists("q"));
        // a classic group metadata key is left to the classic loader
        assert!(!groups.load_record(&[0, 2, 0, 1, b'g'], None));
    }
}
