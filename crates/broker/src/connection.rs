//! One client connection: a reader that decodes frames and starts each
//! request's handler in arrival order, and a writer that sends responses in
//! that same order, however long each takes (pipelining with in-order
//! replies). Bad input closes this connection only.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use vltava_protocol::frame::{request_frame_len, FRAME_PREFIX_BYTES};
use vltava_protocol::request::{decode_request, encode_response, RequestError};

use crate::handlers::{self, ResponseFuture, Session};
use crate::Broker;

struct Pending {
    /// When the request was read (RequestMetrics' total time starts there).
    received: std::time::Instant,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: ResponseFuture,
}

pub async fn serve(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Pending>(broker.config.queued_max_requests);
    let writer = tokio::spawn(write_responses(rx, write_half, peer));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    crate::broker_metrics::connection(LISTENER, true);
    loop {
        let mut prefix = [0u8; FRAME_PREFIX_BYTES];
        let read = tokio::select! {
            r = reader.read_exact(&mut prefix) => r,
            _ = shutdown.changed() => break,
        };
        if read.is_err() {
            break; // closed by the client
        }
        let len = match request_frame_len(prefix, broker.config.socket_request_max_bytes) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame length");
                break;
            }
        };
        // Grow the buffer as bytes arrive rather than trusting the length.
        let mut frame = Vec::with_capacity(len.min(64 * 1024));
        match (&mut reader).take(len as u64).read_to_end(&mut frame).await {
            Ok(n) if n == len => {}
            _ => break,
        }
        let received = std::time::Instant::now();
        let pending = match decode_request(Bytes::from(frame)) {
            Ok(request) => {
                let (api_key, version, correlation_id) = (request.api_key, request.version(), request.correlation_id());
                tracing::trace!(%peer, ?api_key, version, correlation_id, client_id = request.client_id(), "request");
                let session = Session { peer, client_id: request.client_id().to_string() };
                // transactions v2: partitions are added to the transaction
                // before this request is handled and the next one read
                let added = match crate::txn::implicit::needed(&broker, &request) {
                    Some(adding) => Some(adding.await),
                    None => None,
                };
                let response = handlers::dispatch(&broker, &session, request, added);
                Pending { received, api_key, version, correlation_id, response }
            }
            Err(RequestError::UnsupportedVersion { prefix, api_key: ApiKey::ApiVersions }) => {
                // Answer in v0 with UNSUPPORTED_VERSION and our ranges so the
                // client can retry with a version we know.
                let body = handlers::api_versions::response(35);
                Pending {
                    received,
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id: prefix.correlation_id,
                    response: Box::pin(async move { Some(ResponseKind::ApiVersions(body)) }),
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: request refused");
                break;
            }
        };
        if tx.send(pending).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    crate::broker_metrics::connection(LISTENER, false);
}

/// The `listener` label of connection metrics (one plaintext listener).
const LISTENER: &str = "PLAINTEXT";

async fn write_responses(
    mut rx: mpsc::Receiver<Pending>,
    write_half: tokio::net::tcp::OwnedWriteHalf,
    peer: SocketAddr,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write_half);
    while let Some(pending) = rx.recv().await {
        let api = crate::broker_metrics::api_name(pending.api_key);
        let Some(body) = pending.response.await else {
            crate::broker_metrics::request_done(api, pending.received.elapsed());
            continue;
        };
        match encode_response(pending.api_key, pending.version, pending.correlation_id, &body) {
            Ok(bytes) => {
                if out.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(%peer, api_key = ?pending.api_key, version = pending.version, error = %e, "dropping connection: response not encodable");
                return;
            }
        }
        // Flush when no further response is ready, batching small writes.
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
        crate::broker_metrics::request_done(api, pending.received.elapsed());
    }
    let _ = out.flush().await;
}
