//! One module per Kafka API. A handler does the part that must happen in
//! request order (appends, topic changes) before it returns, and returns a
//! future for the part that may wait (fsync, long polling); the connection
//! writes the futures' results in request order.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use vltava_protocol::request::Request;

use crate::Broker;

mod acls;
pub mod alter_configs;
mod alter_replica_log_dirs;
pub mod api_versions;
mod client_quotas;
mod cluster_acl;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
mod delegation_tokens;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
mod describe_log_dirs;
mod describe_quorum;
mod describe_topic_partitions;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
mod quorum_leader;
mod raft_voters;
pub mod reassignments;
mod scram_credentials;
mod share_acknowledge;
pub mod share_fetch;
mod share_group_describe;
mod share_group_heartbeat;
mod share_group_offsets;
mod share_state;
pub mod sync_group;
mod telemetry;
pub mod txn;
mod unregister_broker;
mod update_features;

/// For NOT_LEADER_OR_FOLLOWER answers (KIP-951): the partition's current
/// leader and epoch, and that leader's endpoint, so that clients can go
/// there without a metadata refresh.
pub struct LeaderHint {
    pub leader: i32,
    pub epoch: i32,
    pub endpoint: Option<(String, u16)>,
}

pub fn leader_hint(
    image: &vltava_metadata::MetadataImage,
    listener: &str,
    topic: &str,
    partition: i32,
) -> Option<LeaderHint> {
    let p = image.topic(topic)?.partition(partition)?;
    let endpoint = image
        .broker(p.leader)
        .filter(|b| !b.fenced)
        .and_then(|b| b.endpoint(listener))
        .map(|(host, port)| (host.to_string(), port));
    Some(LeaderHint { leader: p.leader, epoch: p.leader_epoch, endpoint })
}

fn is_leader_error(code: i16) -> bool {
    code == vltava_protocol::ResponseError::NotLeaderOrFollower.code()
        || code == vltava_protocol::ResponseError::FencedLeaderEpoch.code()
}

/// Who sent a request, and on which listener (Metadata and the other
/// answers that name brokers give that listener's endpoints).
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: std::net::SocketAddr,
    pub client_id: String,
    /// The listener's name (`PLAINTEXT`, `SSL`, `INTERNAL`, ...).
    pub listener: Arc<str>,
    /// Who the connection authenticated as (`User:ANONYMOUS` without a
    /// client certificate); what authorization will check.
    pub principal: Arc<vltava_security::KafkaPrincipal>,
}

/// The eventual response; `None` means send nothing (acks=0 produce).
pub type ResponseFuture = BoxFuture<'static, Option<ResponseKind>>;

fn ready(response: ResponseKind) -> ResponseFuture {
    Box::pin(std::future::ready(Some(response)))
}

/// Starts a request's handler. `added`: what adding partitions to a
/// transaction for it came to (transactions v2, see `txn::implicit`).
pub fn dispatch(
    broker: &Arc<Broker>,
    session: &Session,
    request: Request,
    added: Option<crate::txn::implicit::Added>,
) -> ResponseFuture {
    let added = added.unwrap_or_default();
    let version = request.version();
    if broker.authorizer_enabled() {
        if let Some(denied) = cluster_acl::denied(broker, session, &request.body) {
            return ready(denied);
        }
    }
    match request.body {
        RequestKind::ApiVersions(r) => {
            broker.client_metrics.announced(
                session.peer,
                r.client_software_name.as_str(),
                r.client_software_version.as_str(),
            );
            ready(ResponseKind::ApiVersions(api_versions::handle(&r, version, &broker.controller.image())))
        }
        RequestKind::UnregisterBroker(r) => {
            ready(ResponseKind::UnregisterBroker(unregister_broker::handle(broker, r, version)))
        }
        RequestKind::ListConfigResources(r) => {
            ready(ResponseKind::ListConfigResources(list_config_resources::handle(broker, r, version)))
        }
        RequestKind::DescribeClientQuotas(r) => {
            ready(ResponseKind::DescribeClientQuotas(client_quotas::describe(broker, r, version)))
        }
        RequestKind::AlterClientQuotas(r) => {
            ready(ResponseKind::AlterClientQuotas(client_quotas::alter(broker, r, version)))
        }
        RequestKind::GetTelemetrySubscriptions(r) => {
            ready(ResponseKind::GetTelemetrySubscriptions(telemetry::get_subscriptions(broker, session, r, version)))
        }
        RequestKind::PushTelemetry(r) => {
            ready(ResponseKind::PushTelemetry(telemetry::push(broker, session, r, version)))
        }
        RequestKind::CreateDelegationToken(r) => {
            ready(ResponseKind::CreateDelegationToken(delegation_tokens::create(broker, session, r, version)))
        }
        RequestKind::RenewDelegationToken(r) => {
            ready(ResponseKind::RenewDelegationToken(delegation_tokens::renew(broker, session, r, version)))
        }
        RequestKind::ExpireDelegationToken(r) => {
            ready(ResponseKind::ExpireDelegationToken(delegation_tokens::expire(broker, session, r, version)))
        }
        RequestKind::DescribeDelegationToken(r) => {
            ready(ResponseKind::DescribeDelegationToken(delegation_tokens::describe(broker, session, r, version)))
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            ready(ResponseKind::DescribeUserScramCredentials(scram_credentials::describe(broker, r, version)))
        }
        RequestKind::AlterUserScramCredentials(r) => {
            ready(ResponseKind::AlterUserScramCredentials(scram_credentials::alter(broker, r, version)))
        }
        RequestKind::UpdateFeatures(r) => {
            ready(ResponseKind::UpdateFeatures(update_features::handle(broker, r, version)))
        }
        RequestKind::Metadata(r) => ready(ResponseKind::Metadata(metadata::handle(broker, session, r, version))),
        RequestKind::Produce(r) => produce::handle(broker, session, r, version, &added),
        RequestKind::Fetch(r) => fetch::handle(broker, session, r, version),
        RequestKind::ListOffsets(r) => {
            ready(ResponseKind::ListOffsets(list_offsets::handle(broker, session, r, version)))
        }
        RequestKind::CreateTopics(r) => {
            ready(ResponseKind::CreateTopics(create_topics::handle(broker, session, r, version)))
        }
        RequestKind::DeleteTopics(r) => {
            ready(ResponseKind::DeleteTopics(delete_topics::handle(broker, session, r, version)))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ready(ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, session, r, version)))
        }
        RequestKind::AlterReplicaLogDirs(r) => {
            ready(ResponseKind::AlterReplicaLogDirs(alter_replica_log_dirs::handle(broker, r, version)))
        }
        RequestKind::DescribeLogDirs(r) => {
            ready(ResponseKind::DescribeLogDirs(describe_log_dirs::handle(broker, r, version)))
        }
        RequestKind::DescribeTopicPartitions(r) => {
            ready(ResponseKind::DescribeTopicPartitions(describe_topic_partitions::handle(broker, session, r, version)))
        }
        RequestKind::DescribeQuorum(r) => describe_quorum::handle(broker, session, r, version),
        RequestKind::AddRaftVoter(r) => raft_voters::add(broker, session, r, version),
        RequestKind::RemoveRaftVoter(r) => raft_voters::remove(broker, session, r, version),
        RequestKind::UpdateRaftVoter(r) => raft_voters::update(broker, session, r, version),
        RequestKind::DescribeCluster(r) => {
            ready(ResponseKind::DescribeCluster(describe_cluster::handle(broker, session, r, version)))
        }
        RequestKind::DescribeConfigs(r) => {
            ready(ResponseKind::DescribeConfigs(describe_configs::handle(broker, session, r, version)))
        }
        RequestKind::AlterConfigs(r) => {
            ready(ResponseKind::AlterConfigs(alter_configs::handle_alter(broker, session, r, version)))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ready(ResponseKind::IncrementalAlterConfigs(alter_configs::handle_incremental(broker, session, r, version)))
        }
        RequestKind::CreatePartitions(r) => {
            ready(ResponseKind::CreatePartitions(create_partitions::handle(broker, session, r, version)))
        }
        RequestKind::DeleteRecords(r) => {
            ready(ResponseKind::DeleteRecords(delete_records::handle(broker, session, r, version)))
        }
        RequestKind::InitProducerId(r) => txn::init_producer_id(broker, session, r, version),
        RequestKind::AddPartitionsToTxn(r) => txn::add_partitions(broker, session, r, version),
        RequestKind::AddOffsetsToTxn(r) => txn::add_offsets(broker, session, r, version),
        RequestKind::TxnOffsetCommit(r) => txn::txn_offset_commit(broker, session, r, version, &added),
        RequestKind::EndTxn(r) => txn::end_txn(broker, session, r, version),
        RequestKind::WriteTxnMarkers(r) => txn::write_txn_markers(broker, session, r, version),
        RequestKind::DescribeProducers(r) => {
            ready(ResponseKind::DescribeProducers(txn::describe_producers(broker, session, r, version)))
        }
        RequestKind::DescribeTransactions(r) => {
            ready(ResponseKind::DescribeTransactions(txn::describe_transactions(broker, session, r, version)))
        }
        RequestKind::ListTransactions(r) => {
            ready(ResponseKind::ListTransactions(txn::list_transactions(broker, session, r, version)))
        }
        RequestKind::FindCoordinator(r) => {
            ready(ResponseKind::FindCoordinator(find_coordinator::handle(broker, session, r, version)))
        }
        RequestKind::JoinGroup(r) => join_group::handle(broker, session, r, version),
        RequestKind::SyncGroup(r) => sync_group::handle(broker, session, r, version),
        RequestKind::Heartbeat(r) => ready(ResponseKind::Heartbeat(heartbeat::handle(broker, session, r, version))),
        RequestKind::LeaveGroup(r) => ready(ResponseKind::LeaveGroup(leave_group::handle(broker, session, r, version))),
        RequestKind::OffsetCommit(r) => offset_commit::handle(broker, session, r, version),
        RequestKind::ConsumerGroupHeartbeat(r) => consumer_group_heartbeat::handle(broker, session, r, version),
        RequestKind::ConsumerGroupDescribe(r) => {
            ready(ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(broker, session, r, version)))
        }
        RequestKind::OffsetFetch(r) => {
            ready(ResponseKind::OffsetFetch(offset_fetch::handle(broker, session, r, version)))
        }
        RequestKind::ListGroups(r) => ready(ResponseKind::ListGroups(list_groups::handle(broker, session, r, version))),
        RequestKind::DescribeGroups(r) => {
            ready(ResponseKind::DescribeGroups(describe_groups::handle(broker, session, r, version)))
        }
        RequestKind::DeleteGroups(r) => delete_groups::handle(broker, session, r, version),
        RequestKind::OffsetDelete(r) => {
            ready(ResponseKind::OffsetDelete(offset_delete::handle(broker, session, r, version)))
        }
        RequestKind::ElectLeaders(r) => {
            ready(ResponseKind::ElectLeaders(reassignments::elect_leaders(broker, r, version)))
        }
        RequestKind::AlterPartitionReassignments(r) => {
            ready(ResponseKind::AlterPartitionReassignments(reassignments::alter_reassignments(broker, r, version)))
        }
        RequestKind::ListPartitionReassignments(r) => {
            ready(ResponseKind::ListPartitionReassignments(reassignments::list_reassignments(broker, r, version)))
        }
        RequestKind::ShareGroupHeartbeat(r) => {
            ready(ResponseKind::ShareGroupHeartbeat(share_group_heartbeat::handle(broker, session, r, version)))
        }
        RequestKind::ShareGroupDescribe(r) => {
            ready(ResponseKind::ShareGroupDescribe(share_group_describe::handle(broker, session, r, version)))
        }
        RequestKind::ShareFetch(r) => share_fetch::handle(broker, session, r, version),
        RequestKind::ShareAcknowledge(r) => share_acknowledge::handle(broker, session, r, version),
        RequestKind::CreateAcls(r) => ready(ResponseKind::CreateAcls(acls::create(broker, session, r, version))),
        RequestKind::DescribeAcls(r) => ready(ResponseKind::DescribeAcls(acls::describe(broker, session, r, version))),
        RequestKind::DeleteAcls(r) => ready(ResponseKind::DeleteAcls(acls::delete(broker, session, r, version))),
        RequestKind::InitializeShareGroupState(r) => share_state::initialize(broker, session, r, version),
        RequestKind::ReadShareGroupState(r) => share_state::read(broker, session, r, version),
        RequestKind::WriteShareGroupState(r) => share_state::write(broker, session, r, version),
        RequestKind::DeleteShareGroupState(r) => share_state::delete(broker, session, r, version),
        RequestKind::ReadShareGroupStateSummary(r) => share_state::summary(broker, session, r, version),
        RequestKind::DescribeShareGroupOffsets(r) => share_group_offsets::describe(broker, session, r, version),
        RequestKind::AlterShareGroupOffsets(r) => share_group_offsets::alter(broker, session, r, version),
        RequestKind::DeleteShareGroupOffsets(r) => share_group_offsets::delete(broker, session, r, version),
        other => {
            // decode_request only lets supported APIs through.
            tracing::error!(api = ?std::mem::discriminant(&other), "request kind without a handler");
            Box::pin(std::future::ready(None))
        }
    }
}
