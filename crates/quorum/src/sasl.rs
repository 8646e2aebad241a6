//! SASL on a SASL_SSL controller listener: before its frames, a connection
//! authenticates with frames of kind [`FRAME_SASL`]. The connecting side
//! sends `mechanism NUL token`, then tokens; the listener answers each
//! with a status byte ([`SASL_CONTINUE`] and a challenge, [`SASL_DONE`]
//! and the last token, [`SASL_FAILED`] and a message) and closes on
//! failure. Kafka offers PLAIN (not SCRAM, whose users live in the
//! metadata log the quorum carries) on controller listeners; so does this.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use vltava_security::sasl::{SaslAuthenticator, SaslStep};

use crate::transport::frame;

pub const FRAME_SASL: u8 = 5;
pub const SASL_CONTINUE: u8 = 0;
pub const SASL_FAILED: u8 = 1;
pub const SASL_DONE: u8 = 2;
/// Largest SASL frame either side accepts.
const SASL_FRAME_BYTES_MAX: usize = 64 * 1024;
/// Bound on the frames of one login.
const SASL_STEPS_MAX: usize = 8;

/// SASL on the controller listener: the server side, and this node's login.
pub struct ControllerSasl {
    pub authenticator: SaslAuthenticator,
    /// `sasl.mechanism.controller.protocol` and the listener's JAAS
    /// `username`/`password`.
    pub login: Option<(String, String, String)>,
}

async fn read_sasl_frame<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u32().await? as usize;
    if len == 0 || len > SASL_FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!("bad SASL frame of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    if buf[0] != FRAME_SASL {
        return Err(std::io::Error::other("expected a SASL frame"));
    }
    buf.remove(0);
    Ok(buf)
}

/// The listener's side: authenticates the connecting controller.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    sasl: &ControllerSasl,
    stream: &mut S,
    peer: std::net::SocketAddr,
) -> std::io::Result<()> {
    let first = read_sasl_frame(stream).await?;
    let Some(nul) = first.iter().position(|b| *b == 0) else {
        return Err(std::io::Error::other("no SASL mechanism"));
    };
    let mechanism = String::from_utf8_lossy(&first[..nul]).to_string();
    let Some(mut exchange) = sasl.authenticator.start(&mechanism) else {
        stream.write_all(&frame(FRAME_SASL, &[SASL_FAILED])).await?;
        return Err(std::io::Error::other(format!("SASL mechanism {mechanism} is not enabled")));
    };
    let mut token = first[nul + 1..].to_vec();
    for _ in 0..SASL_STEPS_MAX {
        match exchange.step(&token) {
            Ok(SaslStep::Challenge(challenge)) => {
                stream.write_all(&frame(FRAME_SASL, &[&[SASL_CONTINUE][..], &challenge].concat())).await?;
                token = read_sasl_frame(stream).await?;
            }
            Ok(SaslStep::Done(done)) => {
                stream.write_all(&frame(FRAME_SASL, &[&[SASL_DONE][..], &done.response].concat())).await?;
                tracing::debug!(%peer, principal = %done.principal, "controller connection authenticated");
                return Ok(());
            }
            Err(failure) => {
                let _ = stream.write_all(&frame(FRAME_SASL, &[SASL_FAILED])).await;
                tracing::warn!(%peer, mechanism, user = failure.user.as_deref().unwrap_or("-"), reason = failure.message,
                    "failed SASL authentication on the controller listener");
                return Err(std::io::Error::other(failure.message));
            }
        }
    }
    Err(std::io::Error::other("the SASL exchange did not end"))
}

/// The connecting side: logs in to another controller.
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    (mechanism, user, password): &(String, String, String),
    stream: &mut S,
) -> std::io::Result<()> {
    let fail = |e: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e);
    let mut client =
        vltava_security::sasl::client::SaslLogin::start(mechanism, user, password).map_err(|e| fail(e.to_string()))?;
    let first = client.first_token().map_err(|e| fail(e.to_string()))?;
    let mut out = [mechanism.as_bytes(), &[0], &first].concat();
    for _ in 0..SASL_STEPS_MAX {
        stream.write_all(&frame(FRAME_SASL, &out)).await?;
        let answer = read_sasl_frame(stream).await?;
        let (status, token) = answer.split_first().ok_or_else(|| fail("empty SASL answer".into()))?;
        match *status {
            SASL_DONE => {
                if !client.is_done() {
                    client.step(token).map_err(|e| fail(e.to_string()))?;
                }
                return Ok(());
            }
            SASL_CONTINUE => {
                out = client.step(token).map_err(|e| fail(e.to_string()))?.unwrap_or_default();
            }
            _ => return Err(fail(format!("SASL login to the controller as {user} ({mechanism}) refused"))),
        }
    }
    Err(fail("the SASL exchange did not end".into()))
}
