//! The transaction APIs: InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn, and the views
//! DescribeProducers, DescribeTransactions, ListTransactions.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use vltava_protocol::{ResponseError, StrBytes};

use vltava_metadata::{AclOperation, ResourceType};

use super::{ResponseFuture, Session};
use crate::group::records::CommittedOffset;
use crate::txn::coordinator::DurableWaits;
use crate::Broker;

async fn wait_all(waits: DurableWaits) -> Option<ResponseError> {
    for (partition, offset) in waits {
        if let Err(e) = partition.wait_coordinator_write(offset).await {
            return Some(e);
        }
    }
    None
}

fn code(e: Option<ResponseError>) -> i16 {
    e.map(|e| e.code()).unwrap_or(0)
}

fn ready(response: ResponseKind) -> ResponseFuture {
    Box::pin(std::future::ready(Some(response)))
}

/// WRITE on the transactional id.
fn may_write_txn(broker: &Broker, session: &Session, tid: &str) -> bool {
    broker.authorize(session, AclOperation::Write, ResourceType::TransactionalId, tid)
}

pub fn init_producer_id(
    broker: &Arc<Broker>,
    session: &Session,
    r: InitProducerIdRequest,
    _version: i16,
) -> ResponseFuture {
    let tid = r.transactional_id.as_ref().map(|t| t.0.to_string());
    // ACLs: WRITE on the transactional id; an idempotent producer needs
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic
    let denied = match &tid {
        Some(t) if !may_write_txn(broker, session, t) => Some(ResponseError::TransactionalIdAuthorizationFailed),
        None if !broker.authorize_cluster(session, AclOperation::IdempotentWrite)
            && !broker.authorize_any(session, AclOperation::Write, ResourceType::Topic) =>
        {
            Some(ResponseError::ClusterAuthorizationFailed)
        }
        _ => None,
    };
    if let Some(e) = denied {
        return ready(ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(e.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ));
    }
    let result = broker.txns.init_producer_id(
        broker,
        tid.as_deref(),
        r.transaction_timeout_ms,
        r.producer_id.0,
        r.producer_epoch,
    );
    Box::pin(async move {
        let response = match result {
            Ok((pid, epoch, waits)) => match wait_all(waits).await {
                None => InitProducerIdResponse::default().with_producer_id(ProducerId(pid)).with_producer_epoch(epoch),
                Some(e) => InitProducerIdResponse::default()
                    .with_error_code(e.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            },
            Err(e) => InitProducerIdResponse::default()
                .with_error_code(e.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        };
        Some(ResponseKind::InitProducerId(response))
    })
}

pub fn add_partitions(
    broker: &Arc<Broker>,
    session: &Session,
    r: AddPartitionsToTxnRequest,
    version: i16,
) -> ResponseFuture {
    if version >= 4 {
        // sent by brokers: CLUSTER_ACTION
        if !broker.authorize_cluster(session, AclOperation::ClusterAction) {
            return ready(ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
            ));
        }
        return add_partitions_for_brokers(broker, r, version);
    }
    let image = broker.controller.image();
    let txn_denied = !may_write_txn(broker, session, &r.v3_and_below_transactional_id);
    // partitions refused (unknown, or no WRITE on the topic), with why
    let mut unknown = Vec::new();
    let mut wanted = Vec::new();
    for t in &r.v3_and_below_topics {
        let denied = !broker.authorize_in(&image, session, AclOperation::Write, ResourceType::Topic, &t.name);
        for p in &t.partitions {
            let known = image.topic(t.name.0.as_str()).is_some_and(|ti| *p >= 0 && (*p as usize) < ti.partitions.len());
            if txn_denied {
                unknown.push(((t.name.0.to_string(), *p), ResponseError::TransactionalIdAuthorizationFailed));
            } else if denied {
                unknown.push(((t.name.0.to_string(), *p), ResponseError::TopicAuthorizationFailed));
            } else if known {
                wanted.push((t.name.0.to_string(), *p));
            } else {
                unknown.push(((t.name.0.to_string(), *p), ResponseError::UnknownTopicOrPartition));
            }
        }
    }
    // Kafka adds nothing when any partition is unknown.
    let outcome = if unknown.is_empty() {
        broker.txns.add_to_txn(
            broker,
            r.v3_and_below_transactional_id.0.as_str(),
            r.v3_and_below_producer_id.0,
            r.v3_and_below_producer_epoch,
            &wanted,
            None,
            false,
        )
    } else {
        Err(ResponseError::OperationNotAttempted)
    };
    Box::pin(async move {
        let error = match outcome {
            Ok(waits) => wait_all(waits).await,
            Err(e) => Some(e),
        };
        let results = r
            .v3_and_below_topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let e = match unknown.iter().find(|(tp, _)| tp.0 == name && tp.1 == *p) {
                            Some((_, why)) => Some(*why),
                            None => error,
                        };
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(code(e))
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default().with_name(t.name).with_results_by_partition(parts)
            })
            .collect();
        Some(ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        ))
    })
}

/// AddPartitionsToTxn v4+, which brokers send (KIP-890): several
/// transactions per request, each either verified (`verify_only`: is each
/// partition in the open transaction?) or added to (v5: for a transactions
/// v2 producer whose first write to the partition reached its leader).
fn add_partitions_for_brokers(broker: &Arc<Broker>, r: AddPartitionsToTxnRequest, version: i16) -> ResponseFuture {
    use kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult;
    let image = broker.controller.image();
    // per transaction: its partitions, an error for each (or none), and the
    // writes of an add to wait on
    let mut answers = Vec::with_capacity(r.transactions.len());
    for t in r.transactions {
        let wanted: Vec<(String, i32)> =
            t.topics.iter().flat_map(|tp| tp.partitions.iter().map(|p| (tp.name.0.to_string(), *p))).collect();
        let known = |(topic, p): &(String, i32)| {
            image.topic(topic).is_some_and(|ti| *p >= 0 && (*p as usize) < ti.partitions.len())
        };
        let tid = t.transactional_id.0.as_str();
        let mut waits = Vec::new();
        let outcome = if t.verify_only {
            broker.txns.verify_in_txn(tid, t.producer_id.0, t.producer_epoch, &wanted)
        } else if !wanted.iter().all(known) {
            // Kafka adds nothing when any partition is unknown
            let unknown = |p| {
                if known(p) {
                    ResponseError::OperationNotAttempted
                } else {
                    ResponseError::UnknownTopicOrPartition
                }
            };
            Ok(wanted.iter().map(|p| Some(unknown(p))).collect())
        } else {
            broker.txns.add_to_txn(broker, tid, t.producer_id.0, t.producer_epoch, &wanted, None, version >= 5).map(
                |w| {
                    waits = w;
                    vec![None; wanted.len()]
                },
            )
        };
        let errors = outcome.unwrap_or_else(|e| vec![Some(e); wanted.len()]);
        answers.push((t.transactional_id, wanted, errors, waits));
    }
    Box::pin(async move {
        let mut results = Vec::with_capacity(answers.len());
        for (tid, wanted, mut errors, waits) in answers {
            if let Some(e) = wait_all(waits).await {
                errors.iter_mut().for_each(|slot| *slot = Some(e));
            }
            let mut by_topic: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
            for ((topic, p), e) in wanted.into_iter().zip(errors) {
                let result = AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(p)
                    .with_partition_error_code(code(e));
                match by_topic.iter_mut().find(|t| t.name.0.as_str() == topic) {
                    Some(t) => t.results_by_partition.push(result),
                    None => by_topic.push(
                        AddPartitionsToTxnTopicResult::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_results_by_partition(vec![result]),
                    ),
                }
            }
            results.push(AddPartitionsToTxnResult::default().with_transactional_id(tid).with_topic_results(by_topic));
        }
        Some(ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default().with_results_by_transaction(results),
        ))
    })
}

pub fn add_offsets(
    broker: &Arc<Broker>,
    session: &Session,
    r: AddOffsetsToTxnRequest,
    _version: i16,
) -> ResponseFuture {
    let group = r.group_id.0.to_string();
    let denied = if !may_write_txn(broker, session, &r.transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &group) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = denied {
        return ready(ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(e.code())));
    }
    let outcome = broker.groups.ensure_offsets_topic(broker).and_then(|_| {
        let partition = broker.txns.offsets_partition_of(broker, &group);
        broker.txns.add_to_txn(
            broker,
            r.transactional_id.0.as_str(),
            r.producer_id.0,
            r.producer_epoch,
            &[partition],
            Some(&group),
            false,
        )
    });
    Box::pin(async move {
        let error = match outcome {
            Ok(waits) => wait_all(waits).await,
            Err(e) => Some(e),
        };
        Some(ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code(error))))
    })
}

/// `added`: v5 (transactions v2) adds the group's `__consumer_offsets`
/// partition to the transaction first, as AddOffsetsToTxn would have; a
/// failure there answers every partition.
pub fn txn_offset_commit(
    broker: &Arc<Broker>,
    session: &Session,
    r: TxnOffsetCommitRequest,
    _version: i16,
    added: &crate::txn::implicit::Added,
) -> ResponseFuture {
    // ACLs: WRITE on the transactional id, READ on the group (either
    // failing answers every partition), READ on each topic
    let denied = if !may_write_txn(broker, session, &r.transactional_id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !broker.authorize(session, AclOperation::Read, ResourceType::Group, &r.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let topic_denied: Vec<String> = r
        .topics
        .iter()
        .filter(|t| !broker.authorize(session, AclOperation::Read, ResourceType::Topic, &t.name))
        .map(|t| t.name.0.to_string())
        .collect();
    let not_added = denied.or(added.failed.values().next().copied());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut offsets = Vec::new();
    let mut too_large = Vec::new();
    for t in &r.topics {
        if topic_denied.iter().any(|d| *d == *t.name.0) {
            continue;
        }
        for p in &t.partitions {
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            if metadata.len() > broker.config.offset_metadata_max_bytes {
                too_large.push((t.name.0.to_string(), p.partition_index));
                continue;
            }
            offsets.push((
                t.name.0.to_string(),
                p.partition_index,
                CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata,
                    commit_timestamp_ms: now,
                },
            ));
        }
    }
    let outcome = match not_added {
        Some(e) => Err(e),
        None => broker.groups.txn_commit(
            broker,
            r.group_id.0.as_str(),
            r.producer_id.0,
            r.producer_epoch,
            r.member_id.as_str(),
            r.group_instance_id.as_ref().map(|s| s.as_str()),
            r.generation_id,
            offsets,
        ),
    };
    Box::pin(async move {
        let error = match outcome {
            Ok(Some((partition, offset))) => wait_all(vec![(partition, offset)]).await,
            Ok(None) => None,
            Err(e) => Some(e),
        };
        let topics = r
            .topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let e = if denied.is_none() && topic_denied.contains(&name) {
                            Some(ResponseError::TopicAuthorizationFailed)
                        } else if too_large.contains(&(name.clone(), p.partition_index)) {
                            Some(ResponseError::OffsetMetadataTooLarge)
                        } else {
                            error
                        };
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code(e))
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default().with_name(t.name).with_partitions(parts)
            })
            .collect();
        Some(ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics)))
    })
}

/// EndTxn; v5+ is transactions v2: the epoch is bumped in every end and
/// the response carries the producer id and epoch to continue with.
pub fn end_txn(broker: &Arc<Broker>, session: &Session, r: EndTxnRequest, version: i16) -> ResponseFuture {
    if !may_write_txn(broker, session, &r.transactional_id) {
        return ready(ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ));
    }
    let outcome = broker.txns.end_txn(
        broker,
        r.transactional_id.0.as_str(),
        r.producer_id.0,
        r.producer_epoch,
        r.committed,
        version >= 5,
    );
    let broker = broker.clone();
    Box::pin(async move {
        let (error, reply) = match outcome {
            Ok((None, reply)) => (None, reply),
            Ok((Some(mut completion), reply)) => match completion.wait_prepared().await {
                Err(e) => (Some(e), reply),
                Ok(()) => {
                    // answered once the markers are written, or (the decision
                    // being durable) after END_TXN_WAIT while they go on
                    let run = broker.runtime.spawn(completion.run(broker.clone()));
                    let error = match tokio::time::timeout(crate::limits::END_TXN_WAIT, run).await {
                        Ok(Ok(result)) => result.err(),
                        Ok(Err(_)) => Some(ResponseError::CoordinatorNotAvailable),
                        Err(_) => None,
                    };
                    (error, reply)
                }
            },
            Err(e) => (Some(e), (-1, -1)),
        };
        let (producer_id, epoch) = if error.is_some() { (-1, -1) } else { reply };
        Some(ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_error_code(code(error))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
        ))
    })
}

pub fn describe_producers(
    broker: &Arc<Broker>,
    session: &Session,
    r: DescribeProducersRequest,
    _version: i16,
) -> DescribeProducersResponse {
    use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let denied = !broker.authorize(session, AclOperation::Read, ResourceType::Topic, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let resp = PartitionResponse::default().with_partition_index(*p);
                    let found = if denied {
                        Err(ResponseError::TopicAuthorizationFailed)
                    } else {
                        broker.partition(t.name.0.as_str(), *p)
                    };
                    match found {
                        Err(e) => resp.with_error_code(e.code()),
                        Ok((part, _)) => resp.with_active_producers(
                            part.producers()
                                .into_iter()
                                .map(|(pid, epoch, last_seq, last_ts, txn_start)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(pid))
                                        .with_producer_epoch(epoch as i32)
                                        .with_last_sequence(last_seq)
                                        .with_last_timestamp(last_ts)
                                        .with_coordinator_epoch(0)
                                        .with_current_txn_start_offset(txn_start.unwrap_or(-1))
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

pub fn describe_transactions(
    broker: &Arc<Broker>,
    session: &Session,
    r: DescribeTransactionsRequest,
    _version: i16,
) -> DescribeTransactionsResponse {
    use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
    let all = broker.txns.snapshot();
    let states = r
        .transactional_ids
        .into_iter()
        .map(|tid| {
            if !broker.authorize(session, AclOperation::Describe, ResourceType::TransactionalId, &tid) {
                return TransactionState::default()
                    .with_transactional_id(tid)
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            let Some(m) = all.iter().find(|m| m.transactional_id == tid.0.as_str()) else {
                return TransactionState::default()
                    .with_transactional_id(tid)
                    .with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
            for (topic, p) in &m.partitions {
                by_topic.entry(topic).or_default().push(*p);
            }
            TransactionState::default()
                .with_transactional_id(tid)
                .with_transaction_state(StrBytes::from_static_str(m.state.name()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                                .with_partitions(ps)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub fn list_transactions(
    broker: &Arc<Broker>,
    session: &Session,
    r: ListTransactionsRequest,
    _version: i16,
) -> ListTransactionsResponse {
    use kafka_protocol::messages::list_transactions_response::TransactionState;
    let states: Vec<String> = r.state_filters.iter().map(|s| s.to_string()).collect();
    let pids: Vec<i64> = r.producer_id_filters.iter().map(|p| p.0).collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let known = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    let unknown: Vec<StrBytes> = r.state_filters.iter().filter(|s| !known.contains(&s.as_str())).cloned().collect();
    let list = broker
        .txns
        .snapshot()
        .into_iter()
        .filter(|m| states.is_empty() || states.iter().any(|s| s == m.state.name()))
        .filter(|m| pids.is_empty() || pids.contains(&m.producer_id))
        .filter(|m| {
            broker.authorize(session, AclOperation::Describe, ResourceType::TransactionalId, &m.transactional_id)
        })
        .filter(|m| {
            r.duration_filter < 0
                || (m.state == crate::txn::state::TxnState::Ongoing && now - m.start_ms >= r.duration_filter)
        })
        .map(|m| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(StrBytes::from_static_str(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(list)
}

/// WriteTxnMarkers: another broker's transaction coordinator ends a
/// transaction on partitions led here. Answered once the markers are
/// committed like acks=all writes.
pub fn write_txn_markers(
    broker: &Arc<Broker>,
    session: &Session,
    r: kafka_protocol::messages::WriteTxnMarkersRequest,
    _version: i16,
) -> ResponseFuture {
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    // sent by transaction coordinators: CLUSTER_ACTION
    let denied = !broker.authorize_cluster(session, AclOperation::ClusterAction);
    let mut waits = Vec::new();
    let mut results = Vec::new();
    for marker in r.markers {
        let mut topics = Vec::new();
        for topic in marker.topics {
            let mut partitions = Vec::new();
            for index in topic.partition_indexes {
                let found = if denied {
                    Err(ResponseError::ClusterAuthorizationFailed)
                } else {
                    broker.partition(topic.name.0.as_str(), index)
                };
                let outcome = found.and_then(|(partition, _)| {
                    crate::txn::coordinator::write_marker(
                        broker,
                        &partition,
                        marker.producer_id.0,
                        marker.producer_epoch,
                        marker.transaction_result,
                    )
                    .map(|end| (partition, end))
                });
                let slot = (topics.len(), partitions.len());
                let code = match outcome {
                    Ok((partition, end)) => {
                        waits.push((results.len(), slot, partition, end));
                        0
                    }
                    Err(e) => e.code(),
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default().with_partition_index(index).with_error_code(code),
                );
            }
            topics.push(WritableTxnMarkerTopicResult::default().with_name(topic.name).with_partitions(partitions));
        }
        results.push(WritableTxnMarkerResult::default().with_producer_id(marker.producer_id).with_topics(topics));
    }
    Box::pin(async move {
        for (m, (t, p), partition, end) in waits {
            let epoch = partition.leader_epoch();
            if let Err(e) = partition.wait_committed(end, epoch, true, crate::limits::COORDINATOR_WRITE_TIMEOUT).await {
                results[m].topics[t].partitions[p].error_code = e.code();
            }
        }
        Some(kafka_protocol::messages::ResponseKind::WriteTxnMarkers(
            kafka_protocol::messages::WriteTxnMarkersResponse::default().with_markers(results),
        ))
    })
}
