//! The admin HTTP listener (`admin.listeners`): `/metrics` (Prometheus
//! text, see `broker_metrics`), `/health/live` and `/health/ready`. It is
//! bound before the logs are recovered, so an orchestrator sees a live but
//! not ready broker meanwhile. axum on the broker's tokio runtime: the one
//! HTTP stack for what vltava serves over HTTP. `https://` serves it over
//! TLS with the Kafka listeners' `ssl.*` keys (`listener.name.admin.ssl.*`
//! first), mutual TLS included (`ssl.client.auth=required`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::Broker;

/// What the admin listener serves from: the broker once it is open.
#[derive(Default)]
pub struct AdminState {
    broker: OnceLock<Arc<Broker>>,
}

impl AdminState {
    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    /// The broker, once it is open (`None` while the logs are recovered).
    pub fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.get()
    }
}

/// Routes another crate serves on the admin listener beside `/metrics` and
/// `/health/*` (the web console, `vltava-console`), given the listener's
/// state. Set once, before the server starts.
pub type Extension = Box<dyn Fn(Arc<AdminState>) -> Router + Send + Sync>;

static EXTENSION: OnceLock<Extension> = OnceLock::new();

/// Adds `routes` to every admin listener started after this call.
pub fn extend(routes: Extension) {
    let _ = EXTENSION.set(routes);
}

/// Binds `addr` (port 0: the system picks; the bound address is returned)
/// and serves until `shutdown` flips.
pub async fn start(
    addr: SocketAddr,
    tls: Option<Arc<vltava_security::TlsAcceptorSource>>,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind the admin listener (admin.listeners) on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    // the recorder exists before the first request is counted
    crate::broker_metrics::handle();
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(|| async { "live\n" }))
        .route("/health/ready", get(ready))
        .with_state(state.clone());
    if let Some(extension) = EXTENSION.get() {
        app = app.merge(extension(state));
    }
    // the peer's address reaches handlers (the console authorizes by host)
    let app = app.into_make_service_with_connect_info::<PeerAddr>();
    tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        let served = match tls {
            None => axum::serve(listener, app).with_graceful_shutdown(stop).await,
            Some(tls) => axum::serve(TlsListener::new(listener, tls), app).with_graceful_shutdown(stop).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    tracing::info!(%bound, "admin listener started (/metrics, /health/live, /health/ready)");
    Ok(bound)
}

/// The address of the client of an admin listener request (an axum
/// `ConnectInfo<PeerAddr>`, over TCP and over TLS).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Connections whose TLS handshake completed, each handshake on a task of
/// its own (bounded by `TLS_HANDSHAKE_TIMEOUT`) so that a slow client holds
/// up no one else.
struct TlsListener {
    handshaken: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(listener: tokio::net::TcpListener, tls: Arc<vltava_security::TlsAcceptorSource>) -> Self {
        let local = listener.local_addr().expect("a bound listener has an address");
        let (tx, handshaken) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin listener: accept failed");
                        tokio::time::sleep(crate::limits::ACCEPT_RETRY).await;
                        continue;
                    }
                };
                let (acceptor, sender) = (tls.acceptor(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(crate::limits::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "admin listener: TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "admin listener: no TLS handshake in time"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Self { handshaken, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // the accepting task ends only with the listener: wait for shutdown
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let broker = state.broker.get().cloned();
    // scrape-time gauges walk every partition: not on a runtime worker
    let text =
        tokio::task::spawn_blocking(move || crate::broker_metrics::render(broker.as_deref())).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// Ready: the logs are recovered, this process is registered with the
/// metadata quorum and not fenced, and no log directory failed.
async fn ready(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let Some(broker) = state.broker.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: recovering logs\n".to_string());
    };
    match not_ready(broker) {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}

fn not_ready(broker: &Broker) -> Option<String> {
    if *broker.stopping.borrow() {
        return Some("shutting down".into());
    }
    let image = broker.controller.image();
    let Some(me) = image.broker(broker.config.node_id).filter(|b| b.incarnation == broker.incarnation) else {
        return Some("not registered with the metadata quorum".into());
    };
    if me.fenced {
        return Some("fenced by the controller".into());
    }
    if let Some(dir) = broker.replicas.log_dirs().iter().find(|d| d.is_offline()) {
        return Some(format!("log directory {} is offline", dir.path().display()));
    }
    None
}
