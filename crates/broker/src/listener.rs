//! The client listeners' sockets and their TLS acceptors. Sockets are bound
//! before anything is advertised, so that `listeners=PLAINTEXT://host:0`
//! (the system picks a free port) advertises the port actually bound, and
//! the port is reported in the `--port-file` once connections are
//! accepted. Binding and listening are two steps: between them the port is
//! reserved but connections are refused, as before the broker is ready.
//! TLS acceptors are built (key stores loaded) before anything starts, so
//! a bad keystore refuses the start with a message naming it, and so are
//! SASL settings (an unsupported mechanism, a bad JAAS config).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use vltava_security::TlsAcceptorSource;

use crate::BrokerConfig;

/// What a connection needs to know of the listener that accepted it.
pub struct Listener {
    /// The listener's name, as `advertised.listeners` names it.
    pub name: Arc<str>,
    /// TLS for SSL listeners; `None` for PLAINTEXT.
    pub tls: Option<TlsAcceptorSource>,
    /// SASL for SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<Arc<vltava_security::sasl::SaslServerSettings>>,
}

/// Loads every SSL listener's key and trust stores.
pub fn prepare(config: &BrokerConfig) -> anyhow::Result<Vec<Arc<Listener>>> {
    config
        .listeners
        .iter()
        .map(|l| {
            let tls = l
                .ssl
                .clone()
                .map(TlsAcceptorSource::new)
                .transpose()
                .with_context(|| format!("listener {} ({})", l.name, l.protocol))?;
            let sasl = l
                .protocol
                .uses_sasl()
                .then(|| crate::sasl::listener_settings(&config.static_settings, &l.name))
                .transpose()?
                .map(Arc::new);
            Ok(Arc::new(Listener { name: Arc::from(l.name.as_str()), tls, sasl }))
        })
        .collect()
}

/// Binds the port of every client listener, in `config.listeners` order.
/// With port 0, the listener's address becomes the bound one, and an
/// advertised port of 0 (taken from the listener) becomes the bound port.
pub fn bind(config: &mut BrokerConfig) -> anyhow::Result<Vec<TcpSocket>> {
    let mut sockets = Vec::with_capacity(config.listeners.len());
    for listener in &mut config.listeners {
        let addr = listener.addr;
        let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
            .with_context(|| format!("cannot listen on {addr}"))?;
        // As std's TcpListener::bind: a restarted broker rebinds at once.
        socket.set_reuseaddr(true).with_context(|| format!("cannot listen on {addr}"))?;
        socket.bind(addr).with_context(|| format!("cannot listen on {addr} (listener {})", listener.name))?;
        let bound = socket.local_addr().with_context(|| format!("cannot listen on {addr}"))?;
        if addr.port() == 0 {
            listener.addr = bound;
            if listener.advertised_port == 0 {
                listener.advertised_port = bound.port();
            }
        }
        sockets.push(socket);
    }
    config.sync_inter_broker_endpoint();
    Ok(sockets)
}

/// Starts accepting on sockets from [`bind`] with a queue of `backlog`
/// pending connections (`socket.listen.backlog.size`) each, then writes
/// the first listener's port to the port file (whole: written aside and
/// renamed into place).
pub fn listen(sockets: Vec<TcpSocket>, backlog: u32, port_file: Option<&Path>) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(sockets.len());
    for socket in sockets {
        let addr = socket.local_addr().context("listener address")?;
        listeners.push(socket.listen(backlog).with_context(|| format!("cannot listen on {addr}"))?);
    }
    if let (Some(path), Some(first)) = (port_file, listeners.first()) {
        let port = first.local_addr().context("listener address")?.port();
        write_port_file(path, port)?;
    }
    Ok(listeners)
}

/// Writes a port file whole (written aside and renamed into place).
pub fn write_port_file(path: &Path, port: u16) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write the port file {}", path.display()))
}
