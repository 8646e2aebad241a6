//! Transactions v2 (KIP-890 part 2) from the partition leader's side: a
//! client at Produce v12 or TxnOffsetCommit v5 sends no
//! AddPartitionsToTxn / AddOffsetsToTxn; the broker that receives the
//! first write of a transaction to a partition adds the partition itself,
//! at the transaction coordinator (here, or another broker through
//! AddPartitionsToTxn v5), before it appends.
//!
//! The connection waits for this before it reads the next request, so a
//! client's pipelined writes still reach the log in the order it sent them.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{ProduceRequest, RequestKind, TxnOffsetCommitRequest};
use vltava_protocol::batch::BatchHeader;
use vltava_protocol::request::Request;
use vltava_protocol::ResponseError;

use crate::limits::INTER_BROKER_REQUEST_TIMEOUT;
use crate::Broker;

/// Partitions whose implicit add failed, with the error to answer for them.
#[derive(Debug, Default)]
pub struct Added {
    pub failed: HashMap<(String, i32), ResponseError>,
}

impl Added {
    pub fn error(&self, topic: &str, partition: i32) -> Option<ResponseError> {
        self.failed.get(&(topic.to_string(), partition)).copied()
    }
}

/// Partitions to add to a producer's transaction.
struct Wanted {
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
}

/// The adds a request needs before it is handled, if any. Only for what
/// the session may write (as Kafka authorizes a Produce or TxnOffsetCommit
/// before it verifies the transaction): the request's own handler answers
/// the rest with the authorization error, and nothing unauthorized reaches
/// the coordinator, which sees this broker's principal.
pub fn needed(
    broker: &Arc<Broker>,
    session: &crate::handlers::Session,
    request: &Request,
) -> Option<BoxFuture<'static, Added>> {
    use vltava_metadata::{AclOperation, ResourceType};
    let version = request.version();
    let may = |op, rt, name: &str| broker.authorize(session, op, rt, name);
    let (wanted, for_produce) = match &request.body {
        RequestKind::Produce(r) if version >= 12 => (produce_partitions(broker, r, &may)?, true),
        RequestKind::TxnOffsetCommit(r)
            if version >= 5
                && may(AclOperation::Write, ResourceType::TransactionalId, &r.transactional_id)
                && may(AclOperation::Read, ResourceType::Group, &r.group_id) =>
        {
            (offsets_partition(broker, r), false)
        }
        _ => return None,
    };
    let broker = broker.clone();
    Some(Box::pin(async move {
        let Wanted { transactional_id: tid, producer_id, epoch, partitions } = wanted;
        let outcome = add(&broker, &tid, producer_id, epoch, &partitions).await;
        let mut added = Added::default();
        if let Err(e) = outcome {
            tracing::debug!(transactional_id = %tid, producer_id, epoch, error = ?e, "adding partitions to a transaction failed");
            let e = if for_produce { for_produce_response(e) } else { for_offset_commit_response(e) };
            added.failed.extend(partitions.into_iter().map(|p| (p, e)));
        }
        added
    }))
}

/// The transactional partitions of a Produce that this node leads and
/// whose log has no open transaction of the batch's producer and epoch.
fn produce_partitions(
    broker: &Broker,
    r: &ProduceRequest,
    may: &dyn Fn(vltava_metadata::AclOperation, vltava_metadata::ResourceType, &str) -> bool,
) -> Option<Wanted> {
    use vltava_metadata::{AclOperation, ResourceType};
    let transactional_id = r.transactional_id.as_ref()?.0.to_string();
    if !may(AclOperation::Write, ResourceType::TransactionalId, &transactional_id) {
        return None;
    }
    let mut producer = None;
    let mut partitions = Vec::new();
    for topic in &r.topic_data {
        if !may(AclOperation::Write, ResourceType::Topic, &topic.name) {
            continue;
        }
        for p in &topic.partition_data {
            let Some(header) = p.records.as_deref().and_then(|b| BatchHeader::parse(b).ok()) else { continue };
            if !header.is_transactional() {
                continue;
            }
            let (pid, epoch) = (header.producer_id(), header.producer_epoch());
            producer.get_or_insert((pid, epoch));
            let Ok((partition, _)) = broker.partition(topic.name.0.as_str(), p.index) else { continue };
            if !partition.in_transaction(pid, epoch) {
                partitions.push((topic.name.0.to_string(), p.index));
            }
        }
    }
    let (producer_id, epoch) = producer?;
    (!partitions.is_empty()).then_some(Wanted { transactional_id, producer_id, epoch, partitions })
}

/// The `__consumer_offsets` partition a TxnOffsetCommit writes to.
fn offsets_partition(broker: &Broker, r: &TxnOffsetCommitRequest) -> Wanted {
    Wanted {
        transactional_id: r.transactional_id.0.to_string(),
        producer_id: r.producer_id.0,
        epoch: r.producer_epoch,
        partitions: vec![broker.txns.offsets_partition_of(broker, r.group_id.0.as_str())],
    }
}

/// Adds `partitions` to the transaction at its coordinator.
async fn add(
    broker: &Arc<Broker>,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Result<(), ResponseError> {
    let index = broker.txns.partition_of(tid);
    let image = broker.controller.image();
    let leader = image
        .topic(crate::txn::TRANSACTION_STATE_TOPIC)
        .and_then(|t| t.partition(index))
        .map(|p| p.leader)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    if leader == broker.config.node_id {
        let waits = broker.txns.add_to_txn(broker, tid, producer_id, epoch, partitions, None, true)?;
        for (partition, offset) in waits {
            partition.wait_coordinator_write(offset).await?;
        }
        return Ok(());
    }
    let addr = image
        .broker(leader)
        .filter(|b| !b.fenced)
        .map(|b| format!("{}:{}", b.host, b.port))
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    add_remote(broker, &addr, tid, producer_id, epoch, partitions).await
}

async fn add_remote(
    broker: &Broker,
    addr: &str,
    tid: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Result<(), ResponseError> {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProducerId, TopicName, TransactionalId,
    };
    use vltava_protocol::StrBytes;
    let mut by_topic: HashMap<&str, Vec<i32>> = HashMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(tid.to_string())))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_verify_only(false)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let client_id = format!("vltava-partition-leader-{}", broker.config.node_id);
    let response: std::io::Result<AddPartitionsToTxnResponse> = async {
        let mut conn = crate::replication::KafkaConn::connect_to_broker(broker, addr, client_id).await?;
        conn.call(ApiKey::AddPartitionsToTxn, 5, &request, INTER_BROKER_REQUEST_TIMEOUT).await
    }
    .await;
    let response = response.map_err(|e| {
        tracing::debug!(coordinator = addr, error = %e, "AddPartitionsToTxn to the transaction coordinator failed");
        ResponseError::CoordinatorNotAvailable
    })?;
    if let Some(e) = ResponseError::try_from_code(response.error_code) {
        return Err(e);
    }
    let codes = response
        .results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code);
    match codes.into_iter().find(|c| *c != 0) {
        Some(code) => Err(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)),
        None => Ok(()),
    }
}

/// What a producer is told when its partition could not be added, as
/// Kafka's partition leaders answer: retriable coordinator trouble becomes
/// NOT_ENOUGH_REPLICAS (the producer retries the batch without a metadata
/// refresh), a fenced producer INVALID_PRODUCER_EPOCH.
fn for_produce_response(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ResponseError::ConcurrentTransactions
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::RequestTimedOut
        | ResponseError::NetworkException => ResponseError::NotEnoughReplicas,
        e => e,
    }
}

/// What a TxnOffsetCommit is told: retriable trouble at the transaction
/// coordinator is retried at the same group coordinator (a coordinator
/// error would send the client looking for another group coordinator).
fn for_offset_commit_response(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::ConcurrentTransactions
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::RequestTimedOut
        | ResponseError::NetworkException => ResponseError::CoordinatorLoadInProgress,
        e => e,
    }
}
