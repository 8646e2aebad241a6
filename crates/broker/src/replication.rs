//! Followers: replica fetchers speak Kafka's replication protocol to the
//! leaders. One task per leader broker fetches every partition this node
//! follows there, in one Fetch request (v12, `replica_id` = this node),
//! and appends the batches as the leader wrote them.
//!
//! Before fetching a partition for a new leader epoch, the follower finds
//! where its log diverges from the leader's (KIP-101/279): it asks
//! OffsetForLeaderEpoch for its latest epoch and truncates to the end
//! offset the leader reports for it (or for the largest epoch the leader
//! knows below it), so a tail written by a deposed leader never survives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use uuid::Uuid;
use vltava_protocol::{ResponseError, StrBytes};

use crate::partition::Partition;
use crate::Broker;

const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
use crate::limits::{
    FETCHER_IDLE_WAIT, INTER_BROKER_CONNECT_TIMEOUT, INTER_BROKER_REQUEST_TIMEOUT,
    INTER_BROKER_RESPONSE_BYTES_MAX as RESPONSE_BYTES_MAX, INTER_BROKER_RETRY as RETRY,
};

/// A byte stream to another broker: TCP, or TLS over TCP.
trait BrokerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> BrokerStream for T {}

/// A client connection to another broker's Kafka listener (the
/// inter-broker listener: over TLS when it is SSL).
pub struct KafkaConn {
    stream: Box<dyn BrokerStream>,
    correlation_id: i32,
    client_id: StrBytes,
}

impl KafkaConn {
    /// Connects to `addr` (`host:port`), with TLS when `tls` is given (the
    /// server's certificate checked against `host`); connecting and the
    /// handshake together take at most `INTER_BROKER_CONNECT_TIMEOUT`.
    pub async fn connect(
        addr: &str,
        tls: Option<&vltava_security::TlsConnectorSource>,
        client_id: String,
    ) -> std::io::Result<Self> {
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let Some(tls) = tls else { return Ok::<Box<dyn BrokerStream>, std::io::Error>(Box::new(stream)) };
            let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
            let name = vltava_security::TlsConnectorSource::server_name(host)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            // rustls reads 4 KiB at a time: buffer the socket under it
            let buffered = tokio::io::BufReader::with_capacity(crate::limits::TLS_SOCKET_READ_BUFFER_BYTES, stream);
            Ok(Box::new(tls.connector().connect(name, buffered).await?))
        };
        let stream = tokio::time::timeout(INTER_BROKER_CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(Self { stream, correlation_id: 0, client_id: StrBytes::from_string(client_id) })
    }

    /// Sends one request and reads its response.
    pub async fn call<Req, Resp>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> std::io::Result<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = encode_request(api_key, version, self.correlation_id, &self.client_id, request)?;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let len = self.stream.read_u32().await? as usize;
            if len > RESPONSE_BYTES_MAX {
                return Err(std::io::Error::other(format!("response of {len} bytes")));
            }
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))??;
        decode_response(buf, version, self.correlation_id)
    }
}

fn encode_request<Req: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    request: &Req,
) -> std::io::Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut body = BytesMut::new();
    header.encode(&mut body, Req::header_version(version)).map_err(std::io::Error::other)?;
    request.encode(&mut body, version).map_err(std::io::Error::other)?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_u32(body.len() as u32);
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn decode_response<Resp: Decodable + HeaderVersion>(
    buf: Vec<u8>,
    version: i16,
    correlation_id: i32,
) -> std::io::Result<Resp> {
    let mut buf = Bytes::from(buf);
    let header = ResponseHeader::decode(&mut buf, Resp::header_version(version)).map_err(std::io::Error::other)?;
    if header.correlation_id != correlation_id {
        return Err(std::io::Error::other("correlation id mismatch"));
    }
    let response = Resp::decode(&mut buf, version).map_err(std::io::Error::other)?;
    if buf.has_remaining() {
        tracing::debug!(remaining = buf.remaining(), "response bytes left over");
    }
    Ok(response)
}

/// A followed partition.
#[derive(Clone)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Set once the divergent tail (if any) has been cut.
    truncated: bool,
}

#[derive(Default)]
struct Fetcher {
    partitions: Mutex<HashMap<(Uuid, i32), Followed>>,
    wake: Notify,
}

/// Every fetcher of this node, by leader.
#[derive(Default)]
pub struct ReplicaFetchers {
    fetchers: Mutex<HashMap<i32, Arc<Fetcher>>>,
}

impl ReplicaFetchers {
    /// Follow `partition` on `leader` from now on (at `leader_epoch`).
    pub fn follow(&self, broker: &Arc<Broker>, partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        self.unfollow(&partition);
        if leader < 0 {
            return;
        }
        let key = (partition.topic_id, partition.index);
        let mut fetchers = self.fetchers.lock();
        let fetcher = fetchers.entry(leader).or_insert_with(|| {
            let fetcher = Arc::new(Fetcher::default());
            let (broker, task_fetcher) = (broker.clone(), fetcher.clone());
            broker.runtime.spawn(run(broker.clone(), leader, task_fetcher));
            fetcher
        });
        fetcher.partitions.lock().insert(key, Followed { partition, leader_epoch, truncated: false });
        fetcher.wake.notify_one();
    }

    pub fn unfollow(&self, partition: &Partition) {
        let key = (partition.topic_id, partition.index);
        for fetcher in self.fetchers.lock().values() {
            fetcher.partitions.lock().remove(&key);
        }
    }
}

async fn run(broker: Arc<Broker>, leader: i32, fetcher: Arc<Fetcher>) {
    let mut stopping = broker.stopping.subscribe();
    let mut conn: Option<KafkaConn> = None;
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        // a replica whose log directory failed fetches nothing more
        let work: Vec<Followed> =
            fetcher.partitions.lock().values().filter(|f| !f.partition.is_offline()).cloned().collect();
        if work.is_empty() {
            conn = None;
            tokio::select! {
                _ = fetcher.wake.notified() => {}
                _ = tokio::time::sleep(FETCHER_IDLE_WAIT) => {}
                _ = stopping.changed() => {}
            }
            continue;
        }
        if conn.is_none() {
            let image = broker.controller.image();
            let Some(endpoint) = image.broker(leader).map(|b| format!("{}:{}", b.host, b.port)) else {
                tokio::time::sleep(RETRY).await;
                continue;
            };
            match KafkaConn::connect_to_broker(
                &broker,
                &endpoint,
                format!("vltava-replica-fetcher-{}", broker.config.node_id),
            )
            .await
            {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(leader, %endpoint, error = %e, "cannot reach leader");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        let result = if work.iter().any(|f| !f.truncated) {
            truncate(&broker, c, &fetcher, work).await
        } else {
            fetch(&broker, c, &fetcher, work).await
        };
        match result {
            Ok(progress) => {
                if !progress {
                    tokio::time::sleep(RETRY).await;
                }
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
                conn = None;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Cuts each new partition's divergent tail. Returns whether all went well.
async fn truncate(
    broker: &Broker,
    conn: &mut KafkaConn,
    fetcher: &Fetcher,
    work: Vec<Followed>,
) -> std::io::Result<bool> {
    let pending: Vec<Followed> = work.into_iter().filter(|f| !f.truncated).collect();
    let image = broker.controller.image();
    let mut asks: HashMap<(String, i32), Followed> = HashMap::new();
    let mut topics: HashMap<String, Vec<OffsetForLeaderPartition>> = HashMap::new();
    for f in &pending {
        let p = &f.partition;
        match p.latest_epoch() {
            Some(epoch) => {
                let Some(name) = image.topic_by_id(&p.topic_id).map(|t| t.name.clone()) else { continue };
                topics.entry(name.clone()).or_default().push(
                    OffsetForLeaderPartition::default()
                        .with_partition(p.index)
                        .with_current_leader_epoch(f.leader_epoch)
                        .with_leader_epoch(epoch),
                );
                asks.insert((name, p.index), f.clone());
            }
            None => {
                // nothing written under any epoch: keep only what is committed
                if p.log_end_offset() > p.high_watermark() {
                    p.truncate_to(p.high_watermark()).map_err(std::io::Error::other)?;
                }
                mark_truncated(fetcher, f);
            }
        }
    }
    if asks.is_empty() {
        return Ok(true);
    }
    let request = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(broker.config.node_id)).with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    let response: OffsetForLeaderEpochResponse = conn
        .call(ApiKey::OffsetForLeaderEpoch, OFFSET_FOR_LEADER_EPOCH_VERSION, &request, INTER_BROKER_REQUEST_TIMEOUT)
        .await?;
    let mut all_ok = true;
    for topic in response.topics {
        for r in topic.partitions {
            let Some(f) = asks.get(&(topic.topic.0.to_string(), r.partition)) else { continue };
            if r.error_code != 0 {
                tracing::debug!(topic = %f.partition.topic, partition = r.partition, error = r.error_code, "OffsetForLeaderEpoch refused");
                all_ok = false;
                continue;
            }
            let p = &f.partition;
            let target = p.divergence_point((r.leader_epoch >= 0).then_some((r.leader_epoch, r.end_offset)));
            if let Err(e) = p.truncate_to(target) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "truncation failed");
                all_ok = false;
                continue;
            }
            mark_truncated(fetcher, f);
        }
    }
    Ok(all_ok)
}

fn mark_truncated(fetcher: &Fetcher, f: &Followed) {
    let key = (f.partition.topic_id, f.partition.index);
    if let Some(entry) = fetcher.partitions.lock().get_mut(&key) {
        if entry.leader_epoch == f.leader_epoch && Arc::ptr_eq(&entry.partition, &f.partition) {
            entry.truncated = true;
        }
    }
}

/// One Fetch round for every followed partition. Returns whether any
/// partition made progress or is up to date (false: back off).
async fn fetch(broker: &Broker, conn: &mut KafkaConn, fetcher: &Fetcher, work: Vec<Followed>) -> std::io::Result<bool> {
    let c = &broker.config;
    let image = broker.controller.image();
    let mut topics: HashMap<String, Vec<FetchPartition>> = HashMap::new();
    let mut by_name: HashMap<(String, i32), &Followed> = HashMap::with_capacity(work.len());
    for f in &work {
        let p = &f.partition;
        let Some(name) = image.topic_by_id(&p.topic_id).map(|t| t.name.clone()) else { continue };
        by_name.insert((name.clone(), p.index), f);
        let marks = p.watermarks();
        topics.entry(name).or_default().push(
            FetchPartition::default()
                .with_partition(p.index)
                .with_current_leader_epoch(f.leader_epoch)
                .with_fetch_offset(p.log_end_offset())
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(marks.log_start_offset)
                .with_partition_max_bytes(c.replica_fetch_max_bytes),
        );
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(c.node_id))
        .with_max_wait_ms(c.replica_fetch_wait_max_ms)
        .with_min_bytes(c.replica_fetch_min_bytes)
        .with_max_bytes(c.replica_fetch_response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default().with_topic(TopicName(StrBytes::from_string(name))).with_partitions(partitions)
                })
                .collect(),
        );
    let timeout = Duration::from_millis(c.replica_fetch_wait_max_ms as u64 + 10_000);
    let response: FetchResponse = conn.call(ApiKey::Fetch, FETCH_VERSION, &request, timeout).await?;
    if response.error_code != 0 {
        return Ok(false);
    }
    let mut healthy = false;
    for topic in response.responses {
        for data in topic.partitions {
            let Some(f) = by_name.get(&(topic.topic.0.to_string(), data.partition_index)) else { continue };
            let p = &f.partition;
            if data.error_code != 0 {
                let error = ResponseError::try_from_code(data.error_code);
                tracing::debug!(topic = %p.topic, partition = p.index, ?error, "replica fetch error");
                if error == Some(ResponseError::OffsetOutOfRange) {
                    let leo = p.log_end_offset();
                    if data.log_start_offset > leo {
                        // what this replica would fetch next is gone on the leader
                        if let Err(e) = p.reset_to(data.log_start_offset) {
                            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "could not reset the follower log");
                        }
                    } else {
                        tracing::warn!(topic = %p.topic, partition = p.index, offset = leo, "follower offset out of the leader's range");
                    }
                }
                continue;
            }
            // the partition may have changed role while the fetch was out
            let current = fetcher.partitions.lock().get(&(p.topic_id, p.index)).map(|e| e.leader_epoch);
            if current != Some(f.leader_epoch) {
                continue;
            }
            let records = data.records.unwrap_or_default();
            match p.append_replicated(&records, data.high_watermark, f.leader_epoch) {
                Ok(leo) => {
                    healthy = true;
                    // records the leader deleted (DeleteRecords) go here too
                    if data.log_start_offset > p.watermarks().log_start_offset && data.log_start_offset <= leo {
                        if let Err(e) = p.delete_records_before(data.log_start_offset) {
                            tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "could not follow the leader's log start offset");
                        }
                    }
                }
                Err(vltava_storage::StorageError::NotLeader) => {}
                Err(e) => tracing::error!(topic = %p.topic, partition = p.index, error = %e, "follower append failed"),
            }
        }
    }
    Ok(healthy)
}
