//! The controller listener and the connections to the other voters.
//!
//! Frames are `u32 length, u8 kind, payload`: kind 1 is a Raft message
//! (protobuf), kind 2 a broker heartbeat (JSON), kind 3 a controller's
//! request to join the quorum (JSON [`JoinRequest`]), kind 4 the leader's
//! answer to a joining learner: the members' endpoints (JSON), so that it
//! can answer the leader before the log tells it where the others are. Peers are the
//! members of the replicated membership ([`crate::membership`]), so a
//! controller added at runtime is reached at the endpoint the log records. One task per peer keeps a
//! connection and writes its frames, dropping them while the peer is
//! unreachable (Raft resends what matters). The listener accepts at most
//! [`CONNECTIONS_MAX`] connections, refuses frames over
//! [`FRAME_BYTES_MAX`], and hands what it reads to the driver's bounded
//! queue without waiting: when the driver is behind, a message is dropped,
//! as the network would.
//!
//! When the controller listener is SSL ([`ControllerTls`]), the listener
//! completes a TLS handshake (within [`PEER_IO_TIMEOUT`]) before reading
//! frames, and the peer connections are TLS with the same listener's
//! settings (its keystore is this node's client certificate).

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};
use vltava_security::{TlsAcceptorSource, TlsConnectorSource};

use serde::{Deserialize, Serialize};

use crate::controller::Heartbeat;
use crate::driver::Cmd;

pub const FRAME_RAFT: u8 = 1;
pub const FRAME_HEARTBEAT: u8 = 2;
pub const FRAME_JOIN: u8 = 3;
pub const FRAME_MEMBERS: u8 = 4;
/// Most members a members frame may list.
pub const MEMBERS_MAX: usize = 1024;
/// Longest controller endpoint a join request may name.
pub const ENDPOINT_BYTES_MAX: usize = 1024;
/// Largest frame accepted (a snapshot travels in one).
pub const FRAME_BYTES_MAX: usize = 64 << 20;
/// Frames queued per peer before new ones are dropped.
pub const PEER_QUEUE: usize = 4096;
/// Connections the controller listener accepts at once.
pub const CONNECTIONS_MAX: usize = 64;
/// How long a connect or a write to a peer may take.
const PEER_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before reconnecting to an unreachable peer.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

/// TLS on the controller listener and to the other controllers.
pub struct ControllerTls {
    pub acceptor: TlsAcceptorSource,
    /// `None` without a truststore: a lone controller dials no one.
    pub connector: Option<TlsConnectorSource>,
    /// SASL on top, for a SASL_SSL controller listener.
    pub sasl: Option<crate::sasl::ControllerSasl>,
}

/// A byte stream to a peer: TCP, or TLS over TCP.
trait PeerStream: AsyncWrite + Unpin + Send {}
impl<T: AsyncWrite + Unpin + Send> PeerStream for T {}

async fn connect(addr: &str, tls: Option<&ControllerTls>) -> std::io::Result<Box<dyn PeerStream>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else { return Ok(Box::new(stream)) };
    let connector = tls.connector.as_ref().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no truststore to check the other controllers")
    })?;
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let name =
        TlsConnectorSource::server_name(host).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = connector.connector().connect(name, stream).await?;
    if let Some(login) = tls.sasl.as_ref().and_then(|s| s.login.as_ref()) {
        crate::sasl::login(login, &mut stream).await?;
    }
    Ok(Box::new(stream))
}

pub fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u32(payload.len() as u32 + 1);
    buf.put_u8(kind);
    buf.put_slice(payload);
    buf.freeze()
}

pub fn raft_frame(message: &Message) -> Option<Bytes> {
    match message.write_to_bytes() {
        Ok(bytes) => Some(frame(FRAME_RAFT, &bytes)),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a raft message");
            None
        }
    }
}

/// A controller that is no member of the quorum asks to receive its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub node_id: i32,
    /// Its controller listener, `host:port`.
    pub endpoint: String,
}

pub fn join_frame(join: &JoinRequest) -> Bytes {
    frame(FRAME_JOIN, &serde_json::to_vec(join).unwrap_or_default())
}

/// The members' endpoints, `(node id, host:port)`.
pub fn members_frame(endpoints: &[(i32, String)]) -> Bytes {
    frame(FRAME_MEMBERS, &serde_json::to_vec(endpoints).unwrap_or_default())
}

pub fn heartbeat_frame(hb: &Heartbeat) -> Bytes {
    frame(FRAME_HEARTBEAT, &serde_json::to_vec(hb).unwrap_or_default())
}

/// Keeps a connection to one peer and writes its frames until `rx` closes
/// or `stop` flips.
pub async fn peer_sender(
    addr: String,
    tls: Option<Arc<ControllerTls>>,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::time::timeout(PEER_IO_TIMEOUT, connect(&addr, tls.as_deref())).await;
        let mut stream = match connected {
            Ok(Ok(s)) => s,
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::debug!(peer = %addr, error = %e, "cannot connect to a controller");
                }
                // drain what piled up, then retry
                while rx.try_recv().is_ok() {}
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
                    _ = stop.changed() => return,
                }
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        loop {
            let frame = tokio::select! {
                frame = rx.recv() => frame,
                _ = stop.changed() => return,
            };
            let Some(frame) = frame else { return };
            let write = tokio::time::timeout(PEER_IO_TIMEOUT, stream.write_all(&frame)).await;
            if !matches!(write, Ok(Ok(()))) {
                tracing::debug!(peer = %addr, "quorum connection lost");
                break;
            }
        }
    }
}

/// Accepts controller connections until `stop` flips.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<ControllerTls>>,
    tx: SyncSender<Cmd>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = CONNECTIONS_MAX, "refusing a controller connection: too many");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tx, stop, tls) = (tx.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => read_frames(stream, tx, stop).await,
                Some(tls) => {
                    let handshake = tokio::time::timeout(PEER_IO_TIMEOUT, tls.acceptor.acceptor().accept(stream));
                    match handshake.await {
                        Ok(Ok(mut stream)) => {
                            if let Some(sasl) = &tls.sasl {
                                let login = crate::sasl::accept(sasl, &mut stream, peer);
                                match tokio::time::timeout(PEER_IO_TIMEOUT, login).await {
                                    Ok(Ok(())) => {}
                                    Ok(Err(e)) => {
                                        tracing::info!(%peer, error = %e, "controller connection: SASL failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::info!(%peer, "controller connection: no SASL login in time");
                                        return;
                                    }
                                }
                            }
                            read_frames(stream, tx, stop).await
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "controller connection: TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "controller connection: no TLS handshake in time"),
                    }
                }
            }
            drop(permit);
        });
    }
}

async fn read_frames<S: AsyncRead + Unpin>(mut stream: S, tx: SyncSender<Cmd>, mut stop: watch::Receiver<bool>) {
    loop {
        let len = tokio::select! {
            len = stream.read_u32() => len,
            _ = stop.changed() => return,
        };
        let Ok(len) = len else { return };
        let len = len as usize;
        if len == 0 || len > FRAME_BYTES_MAX {
            tracing::warn!(len, "bad frame on the controller listener; closing");
            return;
        }
        let mut buf = vec![0u8; len];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let cmd = match buf[0] {
            FRAME_RAFT => match Message::parse_from_bytes(&buf[1..]) {
                Ok(m) => Cmd::Step(Box::new(m)),
                Err(_) => return,
            },
            FRAME_HEARTBEAT => match serde_json::from_slice::<Heartbeat>(&buf[1..]) {
                Ok(h) => Cmd::Heartbeat(h),
                Err(_) => return,
            },
            FRAME_JOIN => match serde_json::from_slice::<JoinRequest>(&buf[1..]) {
                Ok(j) => Cmd::Join(j),
                Err(_) => return,
            },
            FRAME_MEMBERS => match serde_json::from_slice::<Vec<(i32, String)>>(&buf[1..]) {
                Ok(m) if m.len() <= MEMBERS_MAX && m.iter().all(|(_, e)| e.len() <= ENDPOINT_BYTES_MAX) => {
                    Cmd::Members(m)
                }
                _ => return,
            },
            _ => return,
        };
        match tx.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::debug!("the quorum driver is behind: dropped a message"),
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}
