//! Kafka requests made by the console, as the console's user.
//!
//! A request goes through the broker's own handlers
//! (`vltava_broker::handlers::dispatch`) in-process, with a `Session` whose
//! principal is the logged-in user (or `User:ANONYMOUS` without
//! `console.authentication`) and whose peer is the browser's address: the
//! same checks, ACLs and error codes as the request from a Kafka client.
//! Versions are the highest both vltava and `kafka-protocol` know.
//!
//! Reads of state that needs no authorization beyond what the page shows
//! (the metadata image, the local replicas) may use `ctx.broker` directly;
//! anything a Kafka client would need a permission for goes through here.
//!
//! Partition data (Fetch, ListOffsets, Produce) is answered by the
//! partition's leader: [`Ctx::call_at`] sends it to another node over the
//! inter-broker listener after checking the user's ACLs here (the other node
//! sees the inter-broker principal).

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request as KafkaRequest, StrBytes};
use vltava_broker::handlers::dispatch;
use vltava_metadata::{AclOperation, ResourceType};
use vltava_protocol::request::Request;

use crate::error::ConsoleError;
use crate::Ctx;

/// The client id of the console's requests (quotas and logs see it).
pub const CLIENT_ID: &str = "vltava-console";
/// How long a request to another node may take.
const REMOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A Kafka request the console makes, and how its response is found in a
/// `ResponseKind`.
pub trait Api: KafkaRequest + Into<RequestKind> + Send {
    fn response(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! apis {
    ($($variant:ident: $request:ident),* $(,)?) => {
        $(
            impl Api for $request {
                fn response(kind: ResponseKind) -> Option<Self::Response> {
                    match kind {
                        ResponseKind::$variant(r) => Some(r),
                        _ => None,
                    }
                }
            }
        )*
    };
}

apis!(
    Metadata: MetadataRequest,
    CreateTopics: CreateTopicsRequest,
    DeleteTopics: DeleteTopicsRequest,
    CreatePartitions: CreatePartitionsRequest,
    DescribeConfigs: DescribeConfigsRequest,
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest,
    ListOffsets: ListOffsetsRequest,
    Fetch: FetchRequest,
    Produce: ProduceRequest,
    DeleteRecords: DeleteRecordsRequest,
    ListGroups: ListGroupsRequest,
    DescribeGroups: DescribeGroupsRequest,
    ConsumerGroupDescribe: ConsumerGroupDescribeRequest,
    ShareGroupDescribe: ShareGroupDescribeRequest,
    OffsetFetch: OffsetFetchRequest,
    OffsetCommit: OffsetCommitRequest,
    OffsetDelete: OffsetDeleteRequest,
    DeleteGroups: DeleteGroupsRequest,
    DescribeShareGroupOffsets: DescribeShareGroupOffsetsRequest,
    AlterShareGroupOffsets: AlterShareGroupOffsetsRequest,
    ReadShareGroupState: ReadShareGroupStateRequest,
    DescribeCluster: DescribeClusterRequest,
    DescribeLogDirs: DescribeLogDirsRequest,
    DescribeQuorum: DescribeQuorumRequest,
    DescribeAcls: DescribeAclsRequest,
    CreateAcls: CreateAclsRequest,
    DeleteAcls: DeleteAclsRequest,
    DescribeUserScramCredentials: DescribeUserScramCredentialsRequest,
    AlterUserScramCredentials: AlterUserScramCredentialsRequest,
    DescribeClientQuotas: DescribeClientQuotasRequest,
    AlterClientQuotas: AlterClientQuotasRequest,
    DescribeProducers: DescribeProducersRequest,
    ListTransactions: ListTransactionsRequest,
    DescribeTransactions: DescribeTransactionsRequest,
);

/// The version the console sends `R` at: the highest vltava answers and
/// `kafka-protocol` encodes.
pub fn version_of<R: KafkaRequest>() -> Result<i16, ConsoleError> {
    let key = ApiKey::try_from(R::KEY).map_err(|_| ConsoleError::internal(format!("unknown API key {}", R::KEY)))?;
    let range = vltava_protocol::api_versions::supported_range(key)
        .ok_or_else(|| ConsoleError::internal(format!("vltava does not implement {key:?}")))?;
    Ok(range.max.min(R::VERSIONS.max))
}

impl Ctx {
    /// Sends `request` to this node's handlers as the console's user and
    /// returns the response (whose error codes the caller checks).
    pub async fn call<R: Api>(&self, request: R) -> Result<R::Response, ConsoleError> {
        let version = version_of::<R>()?;
        let key = ApiKey::try_from(R::KEY).map_err(|_| ConsoleError::internal("unknown API key"))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let request = Request { api_key: key, header, body: request.into() };
        let response = dispatch(&self.broker, &self.session, request, None)
            .await
            .ok_or_else(|| ConsoleError::internal(format!("{key:?} sent no response")))?;
        R::response(response).ok_or_else(|| ConsoleError::internal(format!("{key:?} answered with another API")))
    }

    /// Sends `request` to node `node` (this node: [`Self::call`]). For
    /// another node, `authorize` lists the operations on resources the
    /// request needs: each is checked against the user's ACLs here first
    /// (403 otherwise), since the other node sees the inter-broker principal.
    pub async fn call_at<R: Api>(
        &self,
        node: i32,
        request: R,
        authorize: &[(AclOperation, ResourceType, &str)],
    ) -> Result<R::Response, ConsoleError> {
        if node == self.broker.config.node_id {
            return self.call(request).await;
        }
        for (op, resource_type, name) in authorize {
            if !self.broker.authorize(&self.session, *op, *resource_type, name) {
                return Err(ConsoleError::forbidden(format!(
                    "{} may not {op:?} {resource_type:?} {name}",
                    self.session.principal
                )));
            }
        }
        let image = self.broker.controller.image();
        let addr = image
            .broker(node)
            .filter(|b| !b.fenced)
            .map(|b| format!("{}:{}", b.host, b.port))
            .ok_or_else(|| ConsoleError::unavailable(format!("broker {node} is not available")))?;
        let version = version_of::<R>()?;
        let key = ApiKey::try_from(R::KEY).map_err(|_| ConsoleError::internal("unknown API key"))?;
        let result = async {
            let mut conn =
                vltava_broker::replication::KafkaConn::connect_to_broker(&self.broker, &addr, CLIENT_ID.to_string())
                    .await?;
            conn.call::<R, R::Response>(key, version, &request, REMOTE_TIMEOUT).await
        }
        .await;
        result.map_err(|e| ConsoleError::unavailable(format!("{key:?} to broker {node} at {addr}: {e}")))
    }

    /// The node coordinating group `group` (the leader of its
    /// `__consumer_offsets` partition).
    pub fn group_coordinator(&self, group: &str) -> Result<i32, ConsoleError> {
        let partitions = self.broker.config.offsets_topic_num_partitions.max(1);
        let index = vltava_broker::group::records::partition_for_group(group, partitions);
        let offsets_topic = vltava_broker::group::coordinator::OFFSETS_TOPIC;
        if self.broker.controller.image().topic(offsets_topic).is_none() {
            // no group has ever joined or committed: Kafka's GROUP_ID_NOT_FOUND
            return Err(ConsoleError::kafka(69, &format!("group {group}"), Some("no such group")));
        }
        self.leader_of(offsets_topic, index)
    }

    /// The leader of `topic`'s partition `partition` (an error when the
    /// topic or partition does not exist or has no leader).
    pub fn leader_of(&self, topic: &str, partition: i32) -> Result<i32, ConsoleError> {
        let image = self.broker.controller.image();
        let t = image.topic(topic).ok_or_else(|| ConsoleError::not_found(format!("no topic {topic}")))?;
        let p = t
            .partition(partition)
            .ok_or_else(|| ConsoleError::not_found(format!("topic {topic} has no partition {partition}")))?;
        if p.leader < 0 {
            return Err(ConsoleError::unavailable(format!("{topic}-{partition} has no leader")));
        }
        Ok(p.leader)
    }
}
