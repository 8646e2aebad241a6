//! Leadership and replica placement admin: ElectLeaders (preferred
//! election; unclean election is off), AlterPartitionReassignments and
//! ListPartitionReassignments. Each change goes through the metadata
//! quorum; a reassignment keeps old and new replicas until every new one
//! is in the ISR, then drops the old ones (see `MetadataRecord::Reassign`).

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use vltava_metadata::PartitionImage;
use vltava_protocol::{ResponseError, StrBytes};

use crate::Broker;

const ELECTION_PREFERRED: i8 = 0;

/// A partition's election outcome: done, or Kafka's error and a message.
type Verdict = Result<(), (ResponseError, String)>;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub fn elect_leaders(broker: &Arc<Broker>, request: ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    let image = broker.controller.image();
    let wanted: Vec<(String, i32)> = match request.topic_partitions {
        Some(list) => list
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect(),
        None => image
            .topics()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)).collect::<Vec<_>>())
            .collect(),
    };
    let unclean = version >= 1 && request.election_type != ELECTION_PREFERRED;
    let live = image.live_brokers();
    let mut verdicts: Vec<(String, i32, Verdict)> = Vec::new();
    let mut to_elect = Vec::new();
    for (topic, index) in wanted {
        let found = image.topic(&topic).and_then(|t| t.partition(index).map(|p| (t.topic_id, p.clone())));
        let verdict = match found {
            None => Err((ResponseError::UnknownTopicOrPartition, "unknown partition".to_string())),
            Some(_) if unclean => Err((
                ResponseError::EligibleLeadersNotAvailable,
                "unclean leader election is not supported".to_string(),
            )),
            Some((topic_id, p)) => {
                let preferred = p.replicas.first().copied().unwrap_or(-1);
                if p.leader == preferred {
                    Err((ResponseError::ElectionNotNeeded, "the preferred replica already leads".to_string()))
                } else if !p.isr.contains(&preferred) || !live.contains(&preferred) {
                    Err((
                        ResponseError::PreferredLeaderNotAvailable,
                        format!("preferred replica {preferred} is not in the ISR or not alive"),
                    ))
                } else {
                    to_elect.push((topic_id, index));
                    Ok(())
                }
            }
        };
        verdicts.push((topic, index, verdict));
    }
    if !to_elect.is_empty() {
        if let Err(e) = broker.controller.elect_preferred(&to_elect) {
            for v in verdicts.iter_mut().filter(|v| v.2.is_ok()) {
                v.2 = Err((e.error, e.message.clone()));
            }
        }
    }
    let mut by_topic: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, index, verdict) in verdicts {
        let result = match verdict {
            Ok(()) => PartitionResult::default().with_partition_id(index),
            Err((e, msg)) => PartitionResult::default()
                .with_partition_id(index)
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg))),
        };
        match by_topic.iter_mut().find(|r| r.topic.0.as_str() == topic) {
            Some(r) => r.partition_result.push(result),
            None => by_topic
                .push(ReplicaElectionResult::default().with_topic(name(&topic)).with_partition_result(vec![result])),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(by_topic)
}

pub fn alter_reassignments(
    broker: &Arc<Broker>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let image = broker.controller.image();
    let registered: Vec<i32> = image.brokers().map(|b| b.id).collect();
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = image.topic(t.name.0.as_str()).cloned();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
                    let fail = |e: ResponseError, msg: String| {
                        ReassignablePartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(e.code())
                            .with_error_message(Some(StrBytes::from_string(msg)))
                    };
                    let Some(topic) = &topic else {
                        return fail(ResponseError::UnknownTopicOrPartition, "unknown topic".into());
                    };
                    let Some(current) = topic.partition(p.partition_index) else {
                        return fail(ResponseError::UnknownTopicOrPartition, "unknown partition".into());
                    };
                    let Some(replicas) = p.replicas else {
                        // cancelling: go back to the replicas that were there before
                        if current.target_replicas.is_none() {
                            return fail(ResponseError::NoReassignmentInProgress, "no reassignment in progress".into());
                        }
                        let original: Vec<i32> = current.removing();
                        let back = if original.is_empty() { current.replicas.clone() } else { original };
                        return match broker.controller.reassign(topic.topic_id, p.partition_index, back) {
                            Ok(()) => response,
                            Err(e) => fail(e.error, e.message),
                        };
                    };
                    let replicas: Vec<i32> = replicas.into_iter().map(|b| b.0).collect();
                    let mut unique = replicas.clone();
                    unique.sort_unstable();
                    unique.dedup();
                    if replicas.is_empty() || unique.len() != replicas.len() {
                        return fail(ResponseError::InvalidReplicaAssignment, "duplicate or empty replica list".into());
                    }
                    if let Some(unknown) = replicas.iter().find(|r| !registered.contains(r)) {
                        return fail(
                            ResponseError::InvalidReplicaAssignment,
                            format!("broker {unknown} is not registered"),
                        );
                    }
                    match broker.controller.reassign(topic.topic_id, p.partition_index, replicas) {
                        Ok(()) => response,
                        Err(e) => fail(e.error, e.message),
                    }
                })
                .collect();
            ReassignableTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    let mut response = AlterPartitionReassignmentsResponse::default().with_responses(responses);
    if version >= 1 {
        response.allow_replication_factor_change = request.allow_replication_factor_change;
    }
    response
}

fn ongoing(p: &PartitionImage) -> OngoingPartitionReassignment {
    let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
    OngoingPartitionReassignment::default()
        .with_partition_index(p.partition)
        .with_replicas(ids(p.replicas.clone()))
        .with_adding_replicas(ids(p.adding()))
        .with_removing_replicas(ids(p.removing()))
}

pub fn list_reassignments(
    broker: &Arc<Broker>,
    request: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    let image = broker.controller.image();
    let topics = image
        .topics()
        .filter_map(|t| {
            let wanted: Option<Vec<i32>> = match &request.topics {
                None => None,
                Some(list) => Some(list.iter().find(|x| x.name.0.as_str() == t.name)?.partition_indexes.clone()),
            };
            let partitions: Vec<OngoingPartitionReassignment> = t
                .partitions
                .iter()
                .filter(|p| p.target_replicas.is_some())
                .filter(|p| wanted.as_ref().is_none_or(|w| w.contains(&p.partition)))
                .map(ongoing)
                .collect();
            (!partitions.is_empty())
                .then(|| OngoingTopicReassignment::default().with_name(name(&t.name)).with_partitions(partitions))
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
