//! One client connection: a reader that decodes frames and starts each
//! request's handler in arrival order, and a writer that sends responses in
//! that same order, however long each takes (pipelining with in-order
//! replies). Bad input closes this connection only.
//!
//! A PLAINTEXT connection reads and writes the socket's own halves; an SSL
//! one first completes its TLS handshake (bounded by
//! [`limits::TLS_HANDSHAKE_TIMEOUT`]: a client that connects and says
//! nothing is dropped), takes its principal from the client certificate,
//! and then runs the same reader and writer over the TLS stream's halves.
//! A plaintext client on an SSL port fails the handshake; a TLS client on
//! a PLAINTEXT port sends a "frame length" far above
//! `socket.request.max.bytes`: both are closed.
//!
//! On SASL listeners every request first passes the connection's
//! [`Authentication`] (see `sasl::session`), which answers the SASL APIs
//! itself and keeps other requests out until the client is authenticated.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use vltava_protocol::frame::{request_frame_len, FRAME_PREFIX_BYTES};
use vltava_protocol::request::{decode_request, encode_response, RequestError};
use vltava_security::KafkaPrincipal;

use crate::handlers::{self, ResponseFuture, Session};
use crate::listener::Listener;
use crate::sasl::session::{Admission, Authentication, RawAdmission};
use crate::{limits, Broker};

/// The first byte of a TLS record carrying a handshake (a ClientHello),
/// followed by the major version 3: what a TLS client sends first.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

struct Pending {
    /// When the request was read (RequestMetrics' total time starts there).
    received: std::time::Instant,
    /// What the request counts against a byte-rate quota.
    quota: Option<QuotaUse>,
    /// Its handling time, when a `request_percentage` quota applies.
    handling: Option<Handling>,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: ResponseFuture,
    /// A bare SASL token to send instead (handshake v0).
    raw_token: Option<Bytes>,
}

/// Serves a connection accepted on `listener` until the client closes it,
/// it sends something unacceptable, or the broker shuts down.
pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let authentication = |principal: Arc<KafkaPrincipal>| match &listener.sasl {
        Some(settings) => {
            let callbacks = Arc::new(crate::sasl::BrokerSaslCallbacks { broker: broker.clone() });
            let authenticator = vltava_security::sasl::SaslAuthenticator::new((**settings).clone(), callbacks);
            Authentication::sasl(listener.name.clone(), peer, authenticator)
        }
        None => Authentication::none(listener.name.clone(), peer, principal),
    };
    let Some(tls) = &listener.tls else {
        let (read_half, write_half) = stream.into_split();
        let auth = authentication(Arc::new(KafkaPrincipal::anonymous()));
        return serve_stream(broker, read_half, write_half, peer, listener.name.clone(), auth, shutdown).await;
    };
    // rustls reads the socket 4 KiB at a time: a buffer under it saves
    // syscalls (writes go straight through)
    let buffered = BufReader::with_capacity(limits::TLS_SOCKET_READ_BUFFER_BYTES, stream);
    let handshake = tokio::time::timeout(limits::TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(buffered));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::info!(%peer, listener = %listener.name, error = %e, "closing connection: TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, listener = %listener.name, "closing connection: no TLS handshake within {:?}", limits::TLS_HANDSHAKE_TIMEOUT);
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    let principal = match tls.principal(stream.get_ref().1) {
        Ok(principal) => Arc::new(principal),
        Err(e) => {
            tracing::warn!(%peer, listener = %listener.name, error = %e, "closing connection: no principal for the client certificate");
            return;
        }
    };
    tracing::debug!(%peer, listener = %listener.name, %principal, "TLS connection");
    let auth = authentication(principal);
    let (read_half, write_half) = tokio::io::split(stream);
    serve_stream(broker, read_half, write_half, peer, listener.name.clone(), auth, shutdown).await
}

async fn serve_stream<R, W>(
    broker: Arc<Broker>,
    read_half: R,
    write_half: W,
    peer: SocketAddr,
    listener: Arc<str>,
    mut auth: Authentication,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Pending>(broker.config.queued_max_requests);
    // until when the writer, having answered a client over its quota, holds
    // the next request back (Kafka mutes the channel, KIP-219)
    let muted = Arc::new(parking_lot::Mutex::new(None::<tokio::time::Instant>));
    let writer = tokio::spawn(write_responses(broker.clone(), rx, write_half, peer, muted.clone()));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    crate::broker_metrics::connection(&listener, true);
    loop {
        let mut prefix = [0u8; FRAME_PREFIX_BYTES];
        let read = tokio::select! {
            r = reader.read_exact(&mut prefix) => r,
            _ = shutdown.changed() => break,
        };
        if read.is_err() {
            break; // closed by the client
        }
        let len = match request_frame_len(prefix, auth.frame_bytes_max(broker.config.socket_request_max_bytes)) {
            // a bare SASL token (handshake v0) may be shorter than a request
            _ if auth.expects_raw_token() => match crate::sasl::session::raw_token_len(prefix) {
                Some(len) => len,
                None => break,
            },
            Ok(len) => len,
            Err(_) if prefix[..2] == [TLS_HANDSHAKE_RECORD, 3] => {
                tracing::warn!(%peer, %listener, "closing connection: a TLS client on a PLAINTEXT listener");
                break;
            }
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
        let muted_until = *muted.lock();
        if let Some(until) = muted_until {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.changed() => break,
            }
        }
        let received = std::time::Instant::now();
        let frame_len = frame.len();
        if auth.expects_raw_token() {
            let RawAdmission::Reply(token) = auth.raw_token(&frame, received) else { break };
            let response: ResponseFuture = Box::pin(std::future::ready(None));
            let (api_key, version, correlation_id) = (ApiKey::SaslAuthenticate, 0, 0);
            let raw_token = Some(token);
            let pending = Pending {
                received,
                quota: None,
                handling: None,
                api_key,
                version,
                correlation_id,
                response,
                raw_token,
            };
            if tx.send(pending).await.is_err() {
                break;
            }
            continue;
        }
        let pending = match decode_request(Bytes::from(frame)) {
            Ok(request) => {
                let (api_key, version, correlation_id) = (request.api_key, request.version(), request.correlation_id());
                tracing::trace!(%peer, ?api_key, version, correlation_id, client_id = request.client_id(), "request");
                match auth.admit(api_key, &request.body, version, received) {
                    Admission::Serve => {}
                    Admission::Answer { response, close } => {
                        let response: ResponseFuture = Box::pin(std::future::ready(Some(*response)));
                        let pending = Pending {
                            received,
                            quota: None,
                            handling: None,
                            api_key,
                            version,
                            correlation_id,
                            response,
                            raw_token: None,
                        };
                        if tx.send(pending).await.is_err() || close {
                            break;
                        }
                        continue;
                    }
                    Admission::Close(reason) => {
                        tracing::info!(%peer, %listener, reason, "closing connection");
                        break;
                    }
                }
                let session = Session {
                    peer,
                    client_id: request.client_id().to_string(),
                    listener: listener.clone(),
                    principal: auth.principal().clone(),
                };
                // transactions v2: partitions are added to the transaction
                // before this request is handled and the next one read
                let added = match crate::txn::implicit::needed(&broker, &session, &request) {
                    Some(adding) => Some(adding.await),
                    None => None,
                };
                // one look at the quotas per request: with none anywhere (the
                // usual case) nothing is measured
                let image = broker.controller.image();
                let quotas = image.client_quotas().next().is_some();
                let mut quota = if quotas { QuotaUse::of(&request.body, frame_len, &session) } else { None };
                if let Some(q) = quota.as_mut() {
                    // a Produce counts as it is read: the next request of an
                    // over-quota client waits, however many it pipelined
                    q.record_request(&broker, &muted);
                }
                let handling = if quotas { Handling::of(&image, &request.body, &session) } else { None };
                drop(image);
                let started = std::time::Instant::now();
                let mut response = handlers::dispatch(&broker, &session, request, added);
                if let Some(h) = &handling {
                    h.add(started.elapsed());
                    response = h.timed(response);
                }
                Pending { received, quota, handling, api_key, version, correlation_id, response, raw_token: None }
            }
            Err(RequestError::UnsupportedVersion { prefix, api_key: ApiKey::ApiVersions }) => {
                // Answer in v0 with UNSUPPORTED_VERSION and our ranges so the
                // client can retry with a version we know.
                let body = handlers::api_versions::response(35);
                Pending {
                    received,
                    quota: None,
                    handling: None,
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id: prefix.correlation_id,
                    response: Box::pin(async move { Some(ResponseKind::ApiVersions(body)) }),
                    raw_token: None,
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
    broker.client_metrics.disconnected(&peer);
    crate::broker_metrics::connection(&listener, false);
}

async fn write_responses<W: AsyncWrite + Unpin>(
    broker: Arc<Broker>,
    mut rx: mpsc::Receiver<Pending>,
    write_half: W,
    peer: SocketAddr,
    muted: Arc<Muted>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write_half);
    while let Some(pending) = rx.recv().await {
        let api = crate::broker_metrics::api_name(pending.api_key);
        if let Some(token) = &pending.raw_token {
            let len = (token.len() as u32).to_be_bytes();
            if out.write_all(&len).await.is_err() || out.write_all(token).await.is_err() || out.flush().await.is_err() {
                return;
            }
            continue;
        }
        let mut body = pending.response.await;
        let mut throttle = std::time::Duration::ZERO;
        if let Some(quota) = &pending.quota {
            throttle = quota.record_response(&broker, body.as_ref(), &muted);
        }
        if let Some(handling) = &pending.handling {
            throttle = throttle.max(handling.record(&broker, &muted));
        }
        if !throttle.is_zero() {
            set_throttle(body.as_mut(), pending.version, throttle);
        }
        let Some(body) = body else {
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
    // a TLS stream sends its close_notify
    let _ = out.shutdown().await;
}

/// A request subject to a byte-rate quota: a Produce (its size, counted
/// when it is read) or a consumer's Fetch (the records it is answered
/// with, counted when answered).
struct QuotaUse {
    client: crate::quotas::Client,
    key: &'static str,
    /// Produce: the request's size.
    bytes: Option<usize>,
    /// Produce: the throttle counted when it was read.
    throttle: std::time::Duration,
}

type Muted = parking_lot::Mutex<Option<tokio::time::Instant>>;

impl QuotaUse {
    /// Called only when some client quota exists.
    fn of(body: &kafka_protocol::messages::RequestKind, frame_len: usize, session: &Session) -> Option<Self> {
        use kafka_protocol::messages::RequestKind;
        let (key, bytes) = match body {
            RequestKind::Produce(_) => (crate::quotas::PRODUCER_BYTE_RATE, Some(frame_len)),
            // followers replicate outside client quotas
            RequestKind::Fetch(f) if f.replica_id.0 < 0 && f.replica_state.replica_id.0 < 0 => {
                (crate::quotas::CONSUMER_BYTE_RATE, None)
            }
            _ => return None,
        };
        // the principal's name (ANONYMOUS without a client certificate)
        let client = crate::quotas::Client::of(session);
        Some(QuotaUse { client, key, bytes, throttle: std::time::Duration::ZERO })
    }

    /// A Produce: records its size now, muting the connection when over.
    fn record_request(&mut self, broker: &Broker, muted: &Muted) {
        if let Some(bytes) = self.bytes {
            self.throttle = broker.quotas.record(&broker.controller.image(), self.key, &self.client, bytes as f64);
            mute(muted, self.throttle);
        }
    }

    /// The throttle to answer with: a Produce's, or a Fetch's from the
    /// records it is answered with (muting the connection when over).
    fn record_response(&self, broker: &Broker, response: Option<&ResponseKind>, muted: &Muted) -> std::time::Duration {
        if self.bytes.is_some() {
            return self.throttle;
        }
        let bytes: usize = match response {
            Some(ResponseKind::Fetch(f)) => f
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .filter_map(|p| p.records.as_ref())
                .map(|r| r.len())
                .sum(),
            _ => 0,
        };
        let throttle = broker.quotas.record(&broker.controller.image(), self.key, &self.client, bytes as f64);
        mute(muted, throttle);
        throttle
    }
}

/// A request whose handling time counts against a `request_percentage`
/// quota: the time its handler ran and its response future was polled.
struct Handling {
    client: crate::quotas::Client,
    nanos: Arc<std::sync::atomic::AtomicU64>,
}

impl Handling {
    /// Called only when some client quota exists.
    fn of(
        image: &vltava_metadata::MetadataImage,
        body: &kafka_protocol::messages::RequestKind,
        session: &Session,
    ) -> Option<Self> {
        use kafka_protocol::messages::RequestKind;
        // exempt as in Kafka: what clients need to connect and what
        // brokers send each other
        let exempt = match body {
            RequestKind::ApiVersions(_)
            | RequestKind::SaslHandshake(_)
            | RequestKind::SaslAuthenticate(_)
            | RequestKind::WriteTxnMarkers(_) => true,
            RequestKind::Fetch(f) => f.replica_id.0 >= 0 || f.replica_state.replica_id.0 >= 0,
            _ => false,
        };
        if exempt {
            return None;
        }
        let client = crate::quotas::Client::of(session);
        crate::quotas::applicable(image, crate::quotas::REQUEST_PERCENTAGE, &client)?;
        Some(Handling { client, nanos: Arc::default() })
    }

    fn add(&self, spent: std::time::Duration) {
        self.nanos.fetch_add(spent.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// `response`, adding the time each poll of it takes.
    fn timed(&self, response: ResponseFuture) -> ResponseFuture {
        let nanos = self.nanos.clone();
        let mut response = response;
        Box::pin(std::future::poll_fn(move |cx| {
            let started = std::time::Instant::now();
            let polled = response.as_mut().poll(cx);
            nanos.fetch_add(started.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
            polled
        }))
    }

    /// Records the handling time (as percent-seconds of one thread) and
    /// mutes the connection when over the quota; the throttle.
    fn record(&self, broker: &Broker, muted: &Muted) -> std::time::Duration {
        let seconds = self.nanos.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
        let image = broker.controller.image();
        let throttle = broker.quotas.record(&image, crate::quotas::REQUEST_PERCENTAGE, &self.client, seconds * 100.0);
        mute(muted, throttle);
        throttle
    }
}

/// Holds the connection's next request back for `throttle`.
fn mute(muted: &Muted, throttle: std::time::Duration) {
    if !throttle.is_zero() {
        *muted.lock() = Some(tokio::time::Instant::now() + throttle);
    }
}

/// Tells the client to back off (`throttle_time_ms`).
/// Only the responses (and versions) with the field: others are held
/// back by the muted connection alone.
fn set_throttle(body: Option<&mut ResponseKind>, version: i16, throttle: std::time::Duration) {
    let ms = throttle.as_millis().min(i32::MAX as u128) as i32;
    match body {
        Some(ResponseKind::Produce(r)) => r.throttle_time_ms = ms,
        Some(ResponseKind::Fetch(r)) => r.throttle_time_ms = ms,
        Some(ResponseKind::Metadata(r)) if version >= 3 => r.throttle_time_ms = ms,
        Some(ResponseKind::ListOffsets(r)) if version >= 2 => r.throttle_time_ms = ms,
        Some(ResponseKind::FindCoordinator(r)) if version >= 1 => r.throttle_time_ms = ms,
        Some(ResponseKind::OffsetCommit(r)) if version >= 3 => r.throttle_time_ms = ms,
        Some(ResponseKind::OffsetFetch(r)) if version >= 3 => r.throttle_time_ms = ms,
        Some(ResponseKind::Heartbeat(r)) if version >= 1 => r.throttle_time_ms = ms,
        _ => {}
    }
}
