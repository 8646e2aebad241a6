//! ShareFetch (KIP-932) on partition leaders: checks the share session's
//! epoch, applies the piggy-backed acknowledgements (durable before the
//! answer), then acquires records for the member from every partition of
//! its session. Long polling as Fetch: with nothing acquired the request
//! waits up to `max_wait_ms`, woken by appends, by released records, or
//! when a lock or redelivery backoff runs out.
//!
//! Records are returned as whole stored batches; the `acquired_records`
//! ranges say which offsets of them are this member's (clients drop the
//! others).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{GroupId, ResponseKind, ShareFetchRequest, ShareFetchResponse};
use uuid::Uuid;
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::{ResponseError, StrBytes};

use super::{ResponseFuture, Session};
use crate::partition::Partition;
use crate::share::partition::AckRange;
use crate::share::persister::ShareKey;
use crate::share::session::{SessionKey, SessionLimits};
use crate::share::settings::ShareSettings;
use crate::Broker;

/// What a ShareFetch asking for `max_records <= 0` gets.
const MAX_RECORDS_DEFAULT: usize = 500;

/// The acknowledgement batches of one partition.
pub type PartitionAcks = ((Uuid, i32), Vec<AckRange>);

/// The partition `partition` of topic `topic_id` if this node leads it and
/// the session's principal may READ its topic.
pub fn resolve(
    broker: &Broker,
    session: &Session,
    topic_id: &Uuid,
    partition: i32,
) -> Result<Arc<Partition>, ResponseError> {
    let image = broker.controller.image();
    let topic = image.topic_by_id(topic_id).ok_or(ResponseError::UnknownTopicId)?;
    if !broker.authorize(session, AclOperation::Read, ResourceType::Topic, &topic.name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    topic.partition(partition).ok_or(ResponseError::UnknownTopicOrPartition)?;
    let p = broker.replicas.get(topic_id, partition).ok_or(ResponseError::NotLeaderOrFollower)?;
    if p.is_offline() {
        return Err(ResponseError::KafkaStorageError);
    }
    if !p.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    Ok(p)
}

/// The request's group id and member id (both required) once the
/// principal may READ the group.
pub fn check_group(
    broker: &Broker,
    session: &Session,
    group: Option<&GroupId>,
    member: Option<&StrBytes>,
) -> Result<(String, String), ResponseError> {
    let group = group.map(|g| g.0.to_string()).unwrap_or_default();
    let member = member.map(|m| m.to_string()).unwrap_or_default();
    if group.is_empty() || member.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    Ok((group, member))
}

/// Applies acknowledgements per partition; the error code of each.
pub async fn acknowledge_all(
    broker: &Broker,
    session: &Session,
    group: &str,
    member: &str,
    acks: Vec<PartitionAcks>,
) -> Vec<((Uuid, i32), i16)> {
    let mut out = Vec::with_capacity(acks.len());
    for ((topic_id, index), batches) in acks {
        let result = match resolve(broker, session, &topic_id, index) {
            Ok(partition) => {
                let key = ShareKey { group: group.to_string(), topic_id, partition: index };
                broker.share_partitions.acknowledge(broker, &key, member, &partition, &batches).await
            }
            Err(e) => Err(e),
        };
        out.push(((topic_id, index), result.err().map(|e| e.code()).unwrap_or(0)));
    }
    out
}

pub fn handle(broker: &Arc<Broker>, session: &Session, request: ShareFetchRequest, _version: i16) -> ResponseFuture {
    let broker = broker.clone();
    let session = session.clone();
    Box::pin(async move { Some(ResponseKind::ShareFetch(run(&broker, &session, request).await)) })
}

fn no_leader() -> LeaderIdAndEpoch {
    LeaderIdAndEpoch::default().with_leader_id(-1).with_leader_epoch(-1)
}

fn empty_partition(index: i32) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_current_leader(no_leader())
        .with_records(Some(Bytes::new()))
}

async fn run(broker: &Arc<Broker>, session: &Session, request: ShareFetchRequest) -> ShareFetchResponse {
    let fail = |e: ResponseError| ShareFetchResponse::default().with_error_code(e.code());
    let (group, member) = match check_group(broker, session, request.group_id.as_ref(), request.member_id.as_ref()) {
        Ok(ids) => ids,
        Err(e) => return fail(e),
    };
    let settings = ShareSettings::of(broker, &group);
    let mut added: Vec<(Uuid, i32)> = Vec::new();
    let mut acks: Vec<PartitionAcks> = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            added.push((t.topic_id, p.partition_index));
            if !p.acknowledgement_batches.is_empty() {
                let batches = p
                    .acknowledgement_batches
                    .iter()
                    .map(|b| AckRange::new(b.first_offset, b.last_offset, &b.acknowledge_types))
                    .collect();
                acks.push(((t.topic_id, p.partition_index), batches));
            }
        }
    }
    let forgotten: Vec<(Uuid, i32)> =
        request.forgotten_topics_data.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p))).collect();
    // acknowledgements need an open session: not with epoch 0
    if request.share_session_epoch == 0 && !acks.is_empty() {
        return fail(ResponseError::InvalidRequest);
    }
    let key = SessionKey { group: group.clone(), member: member.clone() };
    let limits = SessionLimits {
        max_sessions: settings.max_share_sessions,
        idle_max: Duration::from_millis(broker.config.group.share.max_session_timeout_ms.max(0) as u64),
    };
    let now = std::time::Instant::now();
    let used = match broker.share_partitions.sessions.on_fetch(
        key,
        request.share_session_epoch,
        &added,
        &forgotten,
        &limits,
        now,
    ) {
        Ok(used) => used,
        Err(e) => return fail(e),
    };
    if request.share_session_epoch == 0 {
        broker.share_partitions.drop_unled(broker);
    }
    let mut out: BTreeMap<(Uuid, i32), PartitionData> = BTreeMap::new();
    for (tp, code) in acknowledge_all(broker, session, &group, &member, acks).await {
        out.entry(tp).or_insert_with(|| empty_partition(tp.1)).acknowledge_error_code = code;
    }
    // a closed session's locks, and a replaced one's (its client dropped
    // the acknowledgements it had in flight), go back to the group now
    if used.closed || used.replaced {
        broker.share_partitions.release_member(broker, &group, &member);
    }
    if !used.closed {
        fetch(broker, session, &request, &group, &member, &used.partitions, &mut out).await;
    }
    let mut topics: Vec<ShareFetchableTopicResponse> = Vec::new();
    for ((topic_id, _), data) in out {
        match topics.last_mut() {
            Some(t) if t.topic_id == topic_id => t.partitions.push(data),
            _ => {
                topics.push(ShareFetchableTopicResponse::default().with_topic_id(topic_id).with_partitions(vec![data]))
            }
        }
    }
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(settings.record_lock_duration_ms)
        .with_responses(topics)
}

/// Acquires from the session's partitions, long-polling while nothing is.
async fn fetch(
    broker: &Arc<Broker>,
    session: &Session,
    request: &ShareFetchRequest,
    group: &str,
    member: &str,
    partitions: &[(Uuid, i32)],
    out: &mut BTreeMap<(Uuid, i32), PartitionData>,
) {
    let max_records = if request.max_records > 0 { request.max_records as usize } else { MAX_RECORDS_DEFAULT };
    let cap = broker.config.fetch_max_bytes.max(1024) as usize;
    let max_bytes = if request.max_bytes <= 0 { cap } else { (request.max_bytes as usize).min(cap) };
    let max_wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(crate::limits::FETCH_WAIT_MS_MAX));
    let deadline = tokio::time::Instant::now() + max_wait;
    let member: Arc<str> = member.into();
    let mut targets: Vec<(ShareKey, Arc<Partition>)> = Vec::new();
    for &(topic_id, index) in partitions {
        match resolve(broker, session, &topic_id, index) {
            Ok(p) => targets.push((ShareKey { group: group.to_string(), topic_id, partition: index }, p)),
            Err(e) => out.entry((topic_id, index)).or_insert_with(|| empty_partition(index)).error_code = e.code(),
        }
    }
    let mut stopping = broker.stopping.subscribe();
    let parts = &broker.share_partitions;
    loop {
        let released = parts.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        let mut wakeups: Vec<_> = targets.iter().map(|(_, p)| Box::pin(p.appended())).collect();
        for w in &mut wakeups {
            w.as_mut().enable();
        }
        let mut got = false;
        let mut failed = false;
        let mut remaining = max_bytes;
        let mut records_left = max_records;
        for (key, partition) in &targets {
            if records_left == 0 || remaining == 0 {
                break;
            }
            match parts.acquire(broker, key, &member, partition, records_left, remaining).await {
                Ok(Some(fetched)) => {
                    got = true;
                    remaining = remaining.saturating_sub(fetched.records.len());
                    let n: i64 = fetched.acquired.iter().map(|a| a.last_offset - a.first_offset + 1).sum();
                    records_left = records_left.saturating_sub(n as usize);
                    let data =
                        out.entry((key.topic_id, key.partition)).or_insert_with(|| empty_partition(key.partition));
                    data.records = Some(fetched.records);
                    data.acquired_records = fetched
                        .acquired
                        .iter()
                        .map(|a| {
                            AcquiredRecords::default()
                                .with_first_offset(a.first_offset)
                                .with_last_offset(a.last_offset)
                                .with_delivery_count(a.delivery_count)
                        })
                        .collect();
                }
                Ok(None) => {}
                Err(e) => {
                    failed = true;
                    out.entry((key.topic_id, key.partition))
                        .or_insert_with(|| empty_partition(key.partition))
                        .error_code = e.code();
                }
            }
        }
        let now = tokio::time::Instant::now();
        if got || failed || targets.is_empty() || *stopping.borrow_and_update() || now >= deadline {
            return;
        }
        let next = targets
            .iter()
            .filter_map(|(key, _)| parts.next_change(key))
            .min()
            .map(|at| tokio::time::Instant::from_std(at).max(now + Duration::from_millis(1)))
            .map_or(deadline, |at| at.min(deadline));
        tokio::select! {
            _ = futures::future::select_all(wakeups) => {}
            _ = &mut released => {}
            _ = stopping.changed() => {}
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}
