//! The APIs that act on the cluster as a whole, and the operation on the
//! CLUSTER resource each needs (as Kafka's KafkaApis checks them); a
//! request the session may not make is answered here with
//! CLUSTER_AUTHORIZATION_FAILED, shaped as that API's error response.
//! Checked on the broker that received the request, with the client's
//! principal, before anything is forwarded to the quorum leader.
//! (APIs checked per topic, group or transactional id check in their own
//! handlers.) Describe/AlterUserScramCredentials are listed for when SASL's
//! handlers exist: DESCRIBE and ALTER on the cluster, as in Kafka.

use kafka_protocol::messages::*;
use vltava_metadata::AclOperation;
use vltava_protocol::{ResponseError, StrBytes};

use super::Session;
use crate::Broker;

/// The cluster operation a request needs, if it is one of these APIs.
fn needed(request: &RequestKind) -> Option<AclOperation> {
    use AclOperation::*;
    Some(match request {
        RequestKind::UnregisterBroker(_)
        | RequestKind::UpdateFeatures(_)
        | RequestKind::AlterReplicaLogDirs(_)
        | RequestKind::AddRaftVoter(_)
        | RequestKind::RemoveRaftVoter(_)
        | RequestKind::ElectLeaders(_)
        | RequestKind::AlterPartitionReassignments(_)
        | RequestKind::AlterUserScramCredentials(_) => Alter,
        RequestKind::DescribeLogDirs(_)
        | RequestKind::DescribeUserScramCredentials(_)
        | RequestKind::DescribeQuorum(_)
        | RequestKind::ListPartitionReassignments(_) => Describe,
        RequestKind::ListConfigResources(_) | RequestKind::DescribeClientQuotas(_) => DescribeConfigs,
        RequestKind::AlterClientQuotas(_) => AlterConfigs,
        RequestKind::UpdateRaftVoter(_) => ClusterAction,
        _ => return None,
    })
}

/// The error response when the session may not make `request`; `None`
/// when it may (or the API is not a cluster API).
pub fn denied(broker: &Broker, session: &Session, request: &RequestKind) -> Option<ResponseKind> {
    let op = needed(request)?;
    if broker.authorize_cluster(session, op) {
        return None;
    }
    let e = ResponseError::ClusterAuthorizationFailed;
    let code = e.code();
    let message = || Some(StrBytes::from_static_str("Cluster authorization failed."));
    Some(match request {
        RequestKind::UnregisterBroker(_) => ResponseKind::UnregisterBroker(
            UnregisterBrokerResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::UpdateFeatures(r) => ResponseKind::UpdateFeatures(
            UpdateFeaturesResponse::default().with_error_code(code).with_error_message(message()).with_results(
                r.feature_updates
                    .iter()
                    .map(|u| {
                        update_features_response::UpdatableFeatureResult::default()
                            .with_feature(u.feature.clone())
                            .with_error_code(code)
                            .with_error_message(message())
                    })
                    .collect(),
            ),
        ),
        RequestKind::AlterReplicaLogDirs(r) => ResponseKind::AlterReplicaLogDirs(
            AlterReplicaLogDirsResponse::default().with_results(
                r.dirs
                    .iter()
                    .flat_map(|d| d.topics.iter())
                    .map(|t| {
                        alter_replica_log_dirs_response::AlterReplicaLogDirTopicResult::default()
                            .with_topic_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        alter_replica_log_dirs_response::AlterReplicaLogDirPartitionResult::default()
                                            .with_partition_index(*p)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::AddRaftVoter(_) => ResponseKind::AddRaftVoter(
            AddRaftVoterResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::RemoveRaftVoter(_) => ResponseKind::RemoveRaftVoter(
            RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::UpdateRaftVoter(_) => {
            ResponseKind::UpdateRaftVoter(UpdateRaftVoterResponse::default().with_error_code(code))
        }
        RequestKind::ElectLeaders(r) => ResponseKind::ElectLeaders(
            ElectLeadersResponse::default().with_error_code(code).with_replica_election_results(
                r.topic_partitions
                    .iter()
                    .flatten()
                    .map(|t| {
                        elect_leaders_response::ReplicaElectionResult::default()
                            .with_topic(t.topic.clone())
                            .with_partition_result(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        elect_leaders_response::PartitionResult::default()
                                            .with_partition_id(*p)
                                            .with_error_code(code)
                                            .with_error_message(message())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::AlterPartitionReassignments(_) => ResponseKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::ListPartitionReassignments(_) => ResponseKind::ListPartitionReassignments(
            ListPartitionReassignmentsResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::DescribeLogDirs(_) => {
            ResponseKind::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(code))
        }
        RequestKind::DescribeQuorum(_) => ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::ListConfigResources(_) => {
            ResponseKind::ListConfigResources(ListConfigResourcesResponse::default().with_error_code(code))
        }
        RequestKind::DescribeClientQuotas(_) => ResponseKind::DescribeClientQuotas(
            DescribeClientQuotasResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::DescribeUserScramCredentials(_) => ResponseKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsResponse::default().with_error_code(code).with_error_message(message()),
        ),
        RequestKind::AlterUserScramCredentials(r) => {
            // one result per user named, as Kafka answers
            let mut users: Vec<&StrBytes> =
                r.deletions.iter().map(|d| &d.name).chain(r.upsertions.iter().map(|u| &u.name)).collect();
            users.sort();
            users.dedup();
            ResponseKind::AlterUserScramCredentials(
                AlterUserScramCredentialsResponse::default().with_results(
                    users
                        .into_iter()
                        .map(|user| {
                            alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                                .with_user(user.clone())
                                .with_error_code(code)
                                .with_error_message(message())
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::AlterClientQuotas(r) => ResponseKind::AlterClientQuotas(
            AlterClientQuotasResponse::default().with_entries(
                r.entries
                    .iter()
                    .map(|entry| {
                        alter_client_quotas_response::EntryData::default()
                            .with_error_code(code)
                            .with_error_message(message())
                            .with_entity(
                                entry
                                    .entity
                                    .iter()
                                    .map(|e| {
                                        alter_client_quotas_response::EntityData::default()
                                            .with_entity_type(e.entity_type.clone())
                                            .with_entity_name(e.entity_name.clone())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        _ => return None,
    })
}
