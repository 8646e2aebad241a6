//! Online migration between the classic and the KIP-848 consumer protocol
//! (`group.consumer.migration.policy`), as Kafka 4.x does it:
//!
//! - upgrade: the first ConsumerGroupHeartbeat for a stable classic group of
//!   protocol type `consumer` turns it into a consumer group; the classic
//!   members become consumer group members that keep their assignment
//!   (decoded from their ConsumerProtocol assignment) and their JoinGroup
//!   protocols ([`ClassicMeta`]);
//! - classic members of a consumer group go on with JoinGroup, SyncGroup,
//!   Heartbeat and LeaveGroup: a JoinGroup is a heartbeat carrying the
//!   subscription and owned partitions of its ConsumerProtocol metadata, the
//!   generation is the member epoch, SyncGroup answers the member's current
//!   assignment, Heartbeat answers REBALANCE_IN_PROGRESS while the member's
//!   assignment or epoch must change;
//! - downgrade: when the last consumer-protocol member leaves and classic
//!   members remain, the group turns classic again and rebalances.

use std::time::Instant;

use bytes::{BufMut, Bytes};
use uuid::Uuid;
use vltava_protocol::batch::KeyValue;
use vltava_protocol::ResponseError;

use super::consumer::{Assignment, Changes, ConsumerGroup, ConsumerMember, Heartbeat, MemberState, Refusal, Topics};
use super::consumer_coordinator::{settings, topics};
use super::consumer_records::{ClassicMeta, StoredMemberMetadata};
use super::coordinator::GroupCoordinator;
use super::records::{self, Reader, StoredGroup, StoredMember};
use super::state::{Group, GroupState, JoinRequest, JoinResult, SyncResult};
use crate::Broker;

const CONSUMER: &str = "consumer";

pub fn allows_upgrade(policy: &str) -> bool {
    policy.eq_ignore_ascii_case("upgrade") || policy.eq_ignore_ascii_case("bidirectional")
}

pub fn allows_downgrade(policy: &str) -> bool {
    policy.eq_ignore_ascii_case("downgrade") || policy.eq_ignore_ascii_case("bidirectional")
}

/// Topic name -> partitions, as the ConsumerProtocol names them.
type Named = Vec<(String, Vec<i32>)>;

/// A ConsumerProtocolSubscription: topics and (v1+) owned partitions.
#[derive(Debug, Default, PartialEq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub owned: Named,
}

fn read_named(r: &mut Reader<'_>, bound: usize) -> Option<Named> {
    let mut out = Vec::new();
    let n = r.i32()?;
    for _ in 0..n.max(0).min(bound as i32) {
        let topic = r.string()?;
        let count = r.i32()?;
        let mut parts = Vec::new();
        for _ in 0..count.max(0).min(bound as i32) {
            parts.push(r.i32()?);
        }
        out.push((topic, parts));
    }
    Some(out)
}

pub fn decode_subscription(b: &[u8]) -> Option<Subscription> {
    let mut r = Reader(b);
    let version = r.i16()?;
    let n = r.i32()?;
    let mut topics = Vec::new();
    for _ in 0..n.max(0).min(b.len() as i32) {
        topics.push(r.string()?);
    }
    let _user_data = r.bytes()?;
    let owned = if version >= 1 { read_named(&mut r, b.len())? } else { Vec::new() };
    Some(Subscription { topics, owned })
}

pub fn decode_assignment(b: &[u8]) -> Option<Named> {
    if b.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader(b);
    let _version = r.i16()?;
    read_named(&mut r, b.len())
}

/// A ConsumerProtocolAssignment v0 (empty user data).
pub fn encode_assignment(named: &Named) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.put_i16(0);
    out.put_i32(named.len() as i32);
    for (topic, parts) in named {
        out.put_i16(topic.len() as i16);
        out.extend_from_slice(topic.as_bytes());
        out.put_i32(parts.len() as i32);
        for p in parts {
            out.put_i32(*p);
        }
    }
    out.put_i32(0);
    out.into()
}

fn by_id(named: &Named, topics: &Topics) -> Assignment {
    let mut out = Assignment::new();
    for (t, parts) in named {
        if let Some((id, count)) = topics.names.get(t) {
            out.entry(*id).or_default().extend(parts.iter().filter(|p| **p >= 0 && **p < *count));
        }
    }
    out.retain(|_, p| !p.is_empty());
    out
}

fn by_name(a: &Assignment, topics: &Topics) -> Named {
    let names: std::collections::HashMap<Uuid, &String> = topics.names.iter().map(|(n, (id, _))| (*id, n)).collect();
    a.iter().filter_map(|(id, parts)| names.get(id).map(|n| ((*n).clone(), parts.iter().copied().collect()))).collect()
}

fn classic_meta(session_timeout_ms: i32, protocols: &[(String, Bytes)]) -> ClassicMeta {
    ClassicMeta { session_timeout_ms, protocols: protocols.iter().map(|(n, m)| (n.clone(), m.to_vec())).collect() }
}

fn refusal(error: ResponseError, message: impl Into<String>) -> Refusal {
    Refusal { error, message: message.into() }
}

impl GroupCoordinator {
    /// Online upgrade of a non-empty classic group (a ConsumerGroupHeartbeat
    /// with epoch 0 came): GROUP_ID_NOT_FOUND when the policy or the group's
    /// state does not allow it, as Kafka answers.
    pub(super) fn upgrade(
        &self,
        broker: &Broker,
        group: &mut Group,
        topics: &Topics,
        now: Instant,
    ) -> Result<Changes, Refusal> {
        let id = group.id.clone();
        let not_found =
            |why: &str| refusal(ResponseError::GroupIdNotFound, format!("Cannot upgrade group {id}: {why}."));
        if !allows_upgrade(&self.config.consumer.migration_policy) {
            return Err(not_found("online upgrades are disabled (group.consumer.migration.policy)"));
        }
        if group.protocol_type.as_deref() != Some(CONSUMER) {
            return Err(not_found("its protocol type is not consumer"));
        }
        if group.state != GroupState::Stable {
            return Err(not_found("it is not stable"));
        }
        let settings = settings(broker, &id);
        if group.members.len() >= settings.max_size {
            return Err(not_found("it is full"));
        }
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let mut members = Vec::with_capacity(group.members.len());
        for m in group.members.values() {
            let Some(sub) = decode_subscription(&m.metadata(&protocol)) else {
                return Err(not_found("a member's subscription cannot be decoded"));
            };
            let Some(assigned) = decode_assignment(&m.assignment) else {
                return Err(not_found("a member's assignment cannot be decoded"));
            };
            let meta = StoredMemberMetadata {
                instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: sub.topics,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                classic: Some(classic_meta(m.session_timeout_ms, &m.protocols)),
                ..Default::default()
            };
            let session_deadline = now + super::consumer::session_timeout(&meta, &settings);
            members.push(ConsumerMember {
                member_id: m.member_id.clone(),
                meta,
                state: MemberState::Stable,
                member_epoch: group.generation_id,
                previous_member_epoch: group.generation_id - 1,
                assigned: by_id(&assigned, topics),
                pending_revocation: Assignment::new(),
                assignment_epochs: Default::default(),
                session_deadline,
                revocation_deadline: None,
            });
        }
        let (consumer, mut changes) = ConsumerGroup::from_classic(&id, group.generation_id, members, topics);
        changes.records.insert(0, (records::group_key(&id), None));
        // the classic side starts over empty (its timers then find nobody);
        // the offsets stay
        let mut fresh = Group::new(&id);
        fresh.offsets = std::mem::take(&mut group.offsets);
        fresh.pending_txn_offsets = std::mem::take(&mut group.pending_txn_offsets);
        fresh.consumer = Some(consumer);
        *group = fresh;
        tracing::info!(group = %id, "classic group upgraded online to a consumer group");
        Ok(changes)
    }

    /// Online downgrade: the consumer group's members all use the classic
    /// protocol (the last consumer-protocol member just left).
    pub(super) fn maybe_downgrade(&self, broker: &Broker, group: &mut Group, topics: &Topics) {
        let Some(c) = &group.consumer else { return };
        if c.members.is_empty()
            || c.members.values().any(|m| m.meta.classic.is_none())
            || !allows_downgrade(&self.config.consumer.migration_policy)
            || c.members.len() > self.config.max_size
        {
            return;
        }
        // a protocol every member supports, the first member's order first
        let all: Vec<&ClassicMeta> = c.members.values().filter_map(|m| m.meta.classic.as_ref()).collect();
        let Some(protocol) = all[0]
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .find(|n| all.iter().all(|m| m.protocols.iter().any(|(p, _)| p == n)))
        else {
            return;
        };
        let members = c
            .members
            .values()
            .map(|m| {
                let classic = m.meta.classic.as_ref().expect("classic");
                let metadata = classic.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, b)| b.clone());
                StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.meta.instance_id.clone(),
                    client_id: m.meta.client_id.clone(),
                    client_host: m.meta.client_host.clone(),
                    rebalance_timeout_ms: m.meta.rebalance_timeout_ms,
                    session_timeout_ms: classic.session_timeout_ms,
                    subscription: metadata.unwrap_or_default().into(),
                    assignment: encode_assignment(&by_name(&m.assigned, topics)),
                }
            })
            .collect::<Vec<_>>();
        let stored = StoredGroup {
            protocol_type: CONSUMER.into(),
            generation_id: c.epoch,
            protocol_name: Some(protocol),
            leader_id: members.first().map(|m| m.member_id.clone()),
            state_timestamp_ms: 0,
            members,
        };
        let tombstones = c.tombstones();
        let recs: Vec<KeyValue<'_>> = tombstones.iter().map(|(k, _)| (Some(&k[..]), None)).collect();
        if let Err(e) = self.write(broker, &group.id, &recs) {
            tracing::error!(group = %group.id, error = ?e, "could not downgrade the group");
            return;
        }
        group.consumer = None;
        let now = Instant::now();
        let restored = group.restore(stored, now);
        let rebalance = group.rebalance_after_downgrade(now, &self.config);
        let id = group.id.clone();
        self.apply(&id, &restored, group, broker);
        self.apply(&id, &rebalance, group, broker);
        tracing::info!(group = %id, "consumer group downgraded online to a classic group");
    }

    /// JoinGroup from a classic member of a non-empty consumer group.
    pub(super) fn classic_join(&self, broker: &Broker, group: &mut Group, req: JoinRequest) -> JoinResult {
        let error = |e: ResponseError, id: &str| JoinResult::error(e, id);
        if req.protocol_type != CONSUMER || req.protocols.is_empty() {
            return error(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return error(ResponseError::InvalidSessionTimeout, &req.member_id);
        }
        let Some(sub) = decode_subscription(&req.protocols[0].1) else {
            return error(ResponseError::InconsistentGroupProtocol, &req.member_id);
        };
        let id = group.id.clone();
        let consumer = group.consumer.as_mut().expect("consumer group");
        let mut member_id = req.member_id.clone();
        if let Some(iid) = &req.group_instance_id {
            if let Some(m) = consumer.members.values().find(|m| m.meta.instance_id.as_ref() == Some(iid)) {
                if !member_id.is_empty() && m.member_id != member_id {
                    return error(ResponseError::FencedInstanceId, &member_id);
                }
                member_id = m.member_id.clone();
            }
        }
        if member_id.is_empty() {
            member_id = format!("{}-{}", req.client_id, Uuid::new_v4());
            if req.group_instance_id.is_none() && req.require_known_member_id {
                return error(ResponseError::MemberIdRequired, &member_id);
            }
        }
        let known = consumer.members.get(&member_id);
        if known.is_some_and(|m| m.meta.classic.is_none()) {
            return error(ResponseError::UnknownMemberId, &member_id);
        }
        let topics = topics(broker);
        let settings = settings(broker, &id);
        let hb = Heartbeat {
            member_id: member_id.clone(),
            member_epoch: known.map_or(0, |m| m.member_epoch),
            instance_id: req.group_instance_id.clone(),
            rack_id: None,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            subscribed_topic_names: Some(sub.topics),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(by_id(&sub.owned, &topics)),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            classic: Some(classic_meta(req.session_timeout_ms, &req.protocols)),
        };
        let mut changes = Changes::default();
        let answer = match consumer.heartbeat(hb, &topics, &settings, Instant::now(), &mut changes) {
            Ok(a) => a,
            Err(r) => return error(r.error, &member_id),
        };
        if let Err(e) = self.apply_consumer(broker, &id, changes) {
            return error(e, &member_id);
        }
        JoinResult {
            error: None,
            generation_id: answer.member_epoch,
            protocol_type: Some(CONSUMER.into()),
            protocol_name: Some(req.protocols[0].0.clone()),
            leader_id: String::new(),
            member_id,
            members: Vec::new(),
        }
    }

    /// SyncGroup from a classic member of a consumer group: its current
    /// assignment.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn classic_sync(
        &self,
        broker: &Broker,
        group: &mut Group,
        member_id: &str,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
    ) -> SyncResult {
        let id = group.id.clone();
        let consumer = group.consumer.as_mut().expect("consumer group");
        let Some(m) = consumer.members.get(member_id).filter(|m| m.meta.classic.is_some()) else {
            return SyncResult::error(ResponseError::UnknownMemberId);
        };
        if generation_id != m.member_epoch {
            return SyncResult::error(ResponseError::IllegalGeneration);
        }
        let name = m.meta.classic.as_ref().and_then(|c| c.protocols.first()).map(|(n, _)| n.clone());
        if protocol_type.is_some_and(|p| p != CONSUMER) || protocol_name.is_some_and(|p| Some(p) != name.as_deref()) {
            return SyncResult::error(ResponseError::InconsistentGroupProtocol);
        }
        let assignment = encode_assignment(&by_name(&m.assigned, &topics(broker)));
        let mut changes = Changes::default();
        consumer.classic_beat(member_id, Instant::now(), &mut changes);
        self.arm(&id, changes);
        SyncResult { error: None, protocol_type: Some(CONSUMER.into()), protocol_name: name, assignment }
    }

    /// Heartbeat from a classic member of a consumer group.
    pub(super) fn classic_heartbeat(
        &self,
        group: &mut Group,
        member_id: &str,
        generation_id: i32,
    ) -> Option<ResponseError> {
        let id = group.id.clone();
        let consumer = group.consumer.as_mut().expect("consumer group");
        let Some(m) = consumer.members.get(member_id).filter(|m| m.meta.classic.is_some()) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if generation_id != m.member_epoch {
            return Some(ResponseError::IllegalGeneration);
        }
        let mut changes = Changes::default();
        let rejoin = consumer.classic_beat(member_id, Instant::now(), &mut changes);
        self.arm(&id, changes);
        rejoin.then_some(ResponseError::RebalanceInProgress)
    }

    /// LeaveGroup from classic members of a consumer group.
    pub(super) fn classic_leave(
        &self,
        broker: &Broker,
        group: &mut Group,
        members: &[(String, Option<String>)],
    ) -> Vec<Option<ResponseError>> {
        let id = group.id.clone();
        let topics = topics(broker);
        let consumer = group.consumer.as_mut().expect("consumer group");
        let mut changes = Changes::default();
        let mut out = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let found = match instance_id {
                Some(iid) => match consumer.members.values().find(|m| m.meta.instance_id.as_ref() == Some(iid)) {
                    Some(m) if member_id.is_empty() || m.member_id == *member_id => Ok(m.member_id.clone()),
                    Some(_) => Err(ResponseError::FencedInstanceId),
                    None => Err(ResponseError::UnknownMemberId),
                },
                None if consumer.members.contains_key(member_id) => Ok(member_id.clone()),
                None => Err(ResponseError::UnknownMemberId),
            };
            match found {
                Ok(m) => {
                    tracing::info!(group = %id, member = %m, "classic member left the consumer group");
                    consumer.fence(&m, &topics, &mut changes);
                    out.push(None);
                }
                Err(e) => out.push(Some(e)),
            }
        }
        if let Err(e) = self.apply_consumer(broker, &id, changes) {
            tracing::error!(group = %id, error = ?e, "could not persist members leaving");
        }
        out
    }

    fn arm(&self, group_id: &str, changes: Changes) {
        for (member, at) in changes.sessions {
            let _ = self.timer_tx.send((group_id.to_string(), super::state::Wake::ConsumerSession(member), at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_protocol_round_trips_and_garbage_is_refused() {
        let named: Named = vec![("t".into(), vec![0, 2]), ("u".into(), vec![1])];
        assert_eq!(decode_assignment(&encode_assignment(&named)), Some(named.clone()));
        // v1 subscription: topics, user data, owned partitions
        let mut sub = Vec::new();
        sub.put_i16(1);
        sub.put_i32(1);
        sub.put_i16(1);
        sub.put_u8(b't');
        sub.put_i32(-1);
        sub.put_i32(1);
        sub.put_i16(1);
        sub.put_u8(b't');
        sub.put_i32(1);
        sub.put_i32(3);
        let s = decode_subscription(&sub).expect("decodes");
        assert_eq!(s, Subscription { topics: vec!["t".into()], owned: vec![("t".into(), vec![3])] });
        assert_eq!(decode_subscription(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(decode_assignment(&[0, 0, 0, 0, 0, 9, 0]), None);
    }
}
