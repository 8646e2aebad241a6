//! The client listener's socket: bound before anything is advertised, so that
//! `listeners=PLAINTEXT://host:0` (the system picks a free port) advertises
//! the port actually bound, and the port is reported in the `--port-file`
//! once connections are accepted. Binding and listening are two steps:
//! between them the port is reserved but connections are refused, as before
//! the broker is ready.

use std::path::Path;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::BrokerConfig;

/// Binds the client port of `config.listen`. With port 0, `config.listen`
/// becomes the bound address, and an advertised port of 0 (taken from the
/// listener) becomes the bound port.
pub fn bind(config: &mut BrokerConfig) -> anyhow::Result<TcpSocket> {
    let addr = config.listen;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .with_context(|| format!("cannot listen on {addr}"))?;
    // As std's TcpListener::bind: a restarted broker rebinds at once.
    socket.set_reuseaddr(true).with_context(|| format!("cannot listen on {addr}"))?;
    socket.bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let bound = socket.local_addr().with_context(|| format!("cannot listen on {addr}"))?;
    if addr.port() == 0 {
        config.listen = bound;
        if config.advertised_port == 0 {
            config.advertised_port = bound.port();
        }
    }
    Ok(socket)
}

/// Starts accepting on a socket from [`bind`] with a queue of `backlog`
/// pending connections (`socket.listen.backlog.size`), then writes the
/// port file (whole: written aside and renamed into place).
pub fn listen(socket: TcpSocket, backlog: u32, port_file: Option<&Path>) -> anyhow::Result<TcpListener> {
    let addr = socket.local_addr().context("listener address")?;
    let listener = socket.listen(backlog).with_context(|| format!("cannot listen on {addr}"))?;
    if let Some(path) = port_file {
        write_port_file(path, addr.port())?;
    }
    Ok(listener)
}

/// Writes a port file whole (written aside and renamed into place).
pub fn write_port_file(path: &Path, port: u16) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write the port file {}", path.display()))
}
