//! The group coordinator's KIP-848 side: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe against the groups it owns, session deadlines of
//! consumer group members, and the consumer groups read back when a
//! `__consumer_offsets` partition is loaded. A group id is either classic or
//! consumer ([`Group::consumer`]); an empty group changes type when a
//! member of the other protocol joins it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use vltava_protocol::batch::KeyValue;
use vltava_protocol::ResponseError;

use super::consumer::{Changes, ConsumerGroup, ConsumerMember, Heartbeat, HeartbeatAnswer, Refusal, Settings, Topics};
use super::consumer_records::Loader;
use super::coordinator::{room_for, GroupCoordinator};
use super::records;
use super::state::{Group, Wake};
use crate::partition::Partition;
use crate::Broker;

/// A write to wait on: the partition and the offset that must be durable.
pub type Durable = (Arc<Partition>, i64);

/// A consumer group as ConsumerGroupDescribe and `vltava group describe`
/// show it: each member with its target assignment.
pub struct ConsumerGroupSnapshot {
    pub state: &'static str,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<(ConsumerMember, super::consumer::Assignment)>,
}

/// The effective KIP-848 settings of `group_id`: the broker's
/// `group.consumer.*` values under the group's own overrides.
pub fn settings(broker: &Broker, group_id: &str) -> Settings {
    let own = crate::group_config::GroupSettings::of(broker, group_id);
    let broker_wide = &broker.config.group.consumer;
    Settings {
        session_timeout_ms: own.consumer_session_timeout_ms,
        heartbeat_interval_ms: own.consumer_heartbeat_interval_ms,
        max_size: broker_wide.max_size,
        assignors: broker_wide.assignors.clone(),
    }
}

/// The topics of the metadata image, as subscriptions resolve against them
/// (built once per image version; heartbeats share it).
pub fn topics(broker: &Broker) -> Arc<Topics> {
    let image = broker.controller.image();
    let mut cache = broker.groups.topics_cache.lock();
    if let Some(t) = cache.as_ref().filter(|t| t.version == image.offset) {
        return t.clone();
    }
    let names = image.topics().map(|t| (t.name.clone(), (t.topic_id, t.partitions.len() as i32))).collect();
    let topics = Arc::new(Topics { version: image.offset, names });
    *cache = Some(topics.clone());
    topics
}

fn refusal(error: ResponseError, message: impl Into<String>) -> Refusal {
    Refusal { error, message: message.into() }
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat: the answer, and what to wait on for the
    /// records it wrote to be durable.
    pub fn consumer_heartbeat(
        &self,
        broker: &Broker,
        group_id: &str,
        hb: Heartbeat,
        version: i16,
    ) -> Result<(HeartbeatAnswer, Option<Durable>), Refusal> {
        if !broker.config.group.rebalance_protocols.iter().any(|p| p == "consumer") {
            return Err(refusal(
                ResponseError::UnsupportedVersion,
                "The consumer group protocol is off (group.coordinator.rebalance.protocols).",
            ));
        }
        let settings = settings(broker, group_id);
        super::consumer::validate(&hb, group_id, version, &settings.assignors)?;
        self.check_coordinator(group_id).map_err(|e| refusal(e, ""))?;
        if broker.share_groups.exists(group_id) {
            return Err(refusal(ResponseError::GroupIdNotFound, format!("Group {group_id} is not a consumer group.")));
        }
        let topics = topics(broker);
        let mut groups = self.groups.lock();
        let mut changes = Changes::default();
        let mut upgraded = false;
        match groups.get_mut(group_id) {
            None if hb.member_epoch != 0 => {
                return Err(refusal(ResponseError::GroupIdNotFound, format!("Group {group_id} not found.")));
            }
            None => {
                room_for(&groups, group_id).map_err(|e| refusal(e, ""))?;
                let mut g = Group::new(group_id);
                g.consumer = Some(ConsumerGroup::new(group_id));
                groups.insert(group_id.to_string(), g);
            }
            Some(g) if g.consumer.is_none() => {
                if hb.member_epoch != 0 {
                    return Err(refusal(
                        ResponseError::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group."),
                    ));
                }
                if !g.is_empty() {
                    // online upgrade (KIP-848 migration)
                    changes = self.upgrade(broker, g, &topics, Instant::now())?;
                    upgraded = true;
                } else {
                    // an empty classic group becomes a consumer group (its offsets stay)
                    changes.records.push((records::group_key(group_id), None));
                    g.consumer = Some(ConsumerGroup::new(group_id));
                    tracing::info!(group = group_id, "empty classic group converted to a consumer group");
                }
            }
            Some(_) => {}
        }
        let group = groups.get_mut(group_id).expect("present");
        let consumer = group.consumer.as_mut().expect("consumer group");
        let result = consumer.heartbeat(hb, &topics, &settings, Instant::now(), &mut changes);
        if result.is_err() && consumer.epoch == 0 && consumer.members.is_empty() && group.offsets.is_empty() {
            groups.remove(group_id);
        }
        if result.is_err() && upgraded {
            // the conversion stands even when the member is refused
            self.apply_consumer(broker, group_id, std::mem::take(&mut changes)).map_err(|e| refusal(e, ""))?;
        }
        let answer = result?;
        let durable = self.apply_consumer(broker, group_id, changes).map_err(|e| refusal(e, ""))?;
        if answer.member_epoch < 0 {
            if let Some(g) = groups.get_mut(group_id) {
                self.maybe_downgrade(broker, g, &topics);
            }
        }
        Ok((answer, durable))
    }

    /// Writes a consumer group's records and arms its session timers.
    pub(super) fn apply_consumer(
        &self,
        broker: &Broker,
        group_id: &str,
        changes: Changes,
    ) -> Result<Option<Durable>, ResponseError> {
        for (member, at) in changes.sessions {
            let _ = self.timer_tx.send((group_id.to_string(), Wake::ConsumerSession(member), at));
        }
        if changes.records.is_empty() {
            return Ok(None);
        }
        let recs: Vec<KeyValue<'_>> = changes.records.iter().map(|(k, v)| (Some(&k[..]), v.as_deref())).collect();
        self.write(broker, group_id, &recs).map(Some)
    }

    /// A consumer group member's session deadline passed.
    pub(super) fn on_consumer_session(&self, broker: &Broker, group_id: &str, member_id: &str) {
        let topics = topics(broker);
        let mut changes = Changes::default();
        // records are written under the lock, in the order of the changes
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else { return };
        let Some(consumer) = group.consumer.as_mut() else { return };
        consumer.on_session_wake(member_id, Instant::now(), &topics, &mut changes);
        let fenced = !changes.records.is_empty();
        if let Err(e) = self.apply_consumer(broker, group_id, changes) {
            tracing::error!(group = group_id, error = ?e, "could not persist a fenced member");
        }
        if fenced {
            self.maybe_downgrade(broker, group, &topics);
        }
    }

    /// ConsumerGroupDescribe: GROUP_ID_NOT_FOUND for unknown and classic groups.
    pub fn consumer_describe(&self, broker: &Broker, group_id: &str) -> Result<ConsumerGroupSnapshot, Refusal> {
        self.check_coordinator(group_id).map_err(|e| refusal(e, ""))?;
        let settings = settings(broker, group_id);
        let groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            return Err(refusal(ResponseError::GroupIdNotFound, format!("Group {group_id} not found.")));
        };
        let Some(c) = &group.consumer else {
            return Err(refusal(ResponseError::GroupIdNotFound, format!("Group {group_id} is not a consumer group.")));
        };
        Ok(ConsumerGroupSnapshot {
            state: c.state_name(),
            epoch: c.epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: c.assignor(&settings),
            members: c
                .members
                .values()
                .map(|m| (m.clone(), c.targets.get(&m.member_id).cloned().unwrap_or_default()))
                .collect(),
        })
    }

    /// Adds the consumer groups read back from a partition to `groups`.
    pub(super) fn restore_consumer_groups(
        &self,
        broker: &Broker,
        loader: Loader,
        groups: &mut HashMap<String, Group>,
        now: Instant,
    ) {
        let topics = topics(broker);
        for (id, loaded) in loader.groups {
            let settings = settings(broker, &id);
            let Some((consumer, sessions)) = ConsumerGroup::restore(&id, loaded, &topics, &settings, now) else {
                continue;
            };
            for (member, at) in sessions {
                let _ = self.timer_tx.send((id.clone(), Wake::ConsumerSession(member), at));
            }
            let g = groups.entry(id.clone()).or_insert_with(|| Group::new(&id));
            g.consumer = Some(consumer);
        }
    }
}
