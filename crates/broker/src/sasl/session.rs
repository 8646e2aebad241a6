//! One connection's SASL state, as Kafka's SaslServerAuthenticator keeps
//! it. On a SASL listener a connection starts unauthenticated: only
//! ApiVersions and SaslHandshake are served, anything else closes the
//! connection. SaslHandshake names a mechanism (UNSUPPORTED_SASL_MECHANISM
//! and a close if it is not enabled); then the client's tokens arrive in
//! SaslAuthenticate requests (handshake v1), or as bare size-prefixed
//! frames (handshake v0, before KIP-152). A failed exchange answers
//! SASL_AUTHENTICATION_FAILED and closes.
//!
//! Re-authentication (KIP-368): with `connections.max.reauth.ms` (or a
//! credential that expires) SaslAuthenticate v1+ tells the client its
//! session lifetime; a request after that closes the connection unless a
//! new SaslHandshake + SaslAuthenticate (same mechanism, same principal)
//! came first.
//!
//! On PLAINTEXT and SSL listeners SaslHandshake and SaslAuthenticate are
//! answered ILLEGAL_SASL_STATE, as Kafka does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use vltava_protocol::{ResponseError, StrBytes};
use vltava_security::sasl::{SaslAuthenticator, SaslExchange, SaslStep};
use vltava_security::KafkaPrincipal;

/// Largest frame a client may send before it is authenticated (Kafka's
/// `sasl.server.max.receive.size` default): a stranger cannot make the
/// broker read `socket.request.max.bytes`.
pub const UNAUTHENTICATED_FRAME_BYTES_MAX: usize = 512 * 1024;

/// The length of a bare SASL token frame (handshake v0), if acceptable.
pub fn raw_token_len(prefix: [u8; 4]) -> Option<usize> {
    usize::try_from(i32::from_be_bytes(prefix)).ok().filter(|len| *len <= UNAUTHENTICATED_FRAME_BYTES_MAX)
}

/// What the connection does with a request.
#[derive(Debug)]
pub enum Admission {
    /// Serve it as usual.
    Serve,
    /// Answer it with this (SASL) response; close after it if `close`.
    Answer { response: Box<ResponseKind>, close: bool },
    /// Close the connection without an answer.
    Close(String),
}

/// What the connection does with a bare frame in handshake v0 mode.
#[derive(Debug)]
pub enum RawAdmission {
    /// Send this token size-prefixed.
    Reply(Bytes),
    /// Close (a failed exchange).
    Close,
}

enum State {
    /// Waiting for SaslHandshake (ApiVersions is served meanwhile).
    Handshake,
    /// The mechanism is chosen; tokens come next.
    Authenticating { exchange: Box<SaslExchange>, raw: bool },
    /// Authenticated; `reauth` holds a re-authentication in progress.
    Authenticated { reauth: Option<Box<SaslExchange>> },
}

/// One connection's authentication.
pub struct Authentication {
    listener: Arc<str>,
    peer: SocketAddr,
    /// `None` on PLAINTEXT and SSL listeners.
    authenticator: Option<SaslAuthenticator>,
    state: State,
    principal: Arc<KafkaPrincipal>,
    /// The mechanism of the authenticated session.
    mechanism: Option<String>,
    /// When the session ends (KIP-368), if it does.
    expires: Option<Instant>,
}

impl Authentication {
    /// A connection on a listener without SASL: authenticated from the
    /// start as `principal` (ANONYMOUS, or its TLS certificate's subject).
    pub fn none(listener: Arc<str>, peer: SocketAddr, principal: Arc<KafkaPrincipal>) -> Self {
        Self {
            listener,
            peer,
            authenticator: None,
            state: State::Authenticated { reauth: None },
            principal,
            mechanism: None,
            expires: None,
        }
    }

    /// A connection on a SASL listener: unauthenticated.
    pub fn sasl(listener: Arc<str>, peer: SocketAddr, authenticator: SaslAuthenticator) -> Self {
        Self {
            listener,
            peer,
            authenticator: Some(authenticator),
            state: State::Handshake,
            principal: Arc::new(KafkaPrincipal::anonymous()),
            mechanism: None,
            expires: None,
        }
    }

    pub fn principal(&self) -> &Arc<KafkaPrincipal> {
        &self.principal
    }

    /// The largest frame to read next: `authenticated_max` once
    /// authenticated, [`UNAUTHENTICATED_FRAME_BYTES_MAX`] before.
    pub fn frame_bytes_max(&self, authenticated_max: usize) -> usize {
        match self.state {
            State::Authenticated { .. } => authenticated_max,
            _ => authenticated_max.min(UNAUTHENTICATED_FRAME_BYTES_MAX),
        }
    }

    /// Whether the next frame is a bare SASL token (handshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Authenticating { raw: true, .. })
    }

    /// Decides on a decoded request (`version` is its API version) read at `now`.
    pub fn admit(&mut self, api_key: ApiKey, body: &RequestKind, version: i16, now: Instant) -> Admission {
        let Some(authenticator) = self.authenticator.clone() else {
            return match body {
                RequestKind::SaslHandshake(_) => Admission::Answer {
                    response: Box::new(ResponseKind::SaslHandshake(
                        SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()),
                    )),
                    close: false,
                },
                RequestKind::SaslAuthenticate(_) => Admission::Answer {
                    response: Box::new(ResponseKind::SaslAuthenticate(
                        SaslAuthenticateResponse::default()
                            .with_error_code(ResponseError::IllegalSaslState.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "SaslAuthenticate on a listener without SASL",
                            ))),
                    )),
                    close: false,
                },
                _ => Admission::Serve,
            };
        };
        let state = std::mem::replace(&mut self.state, State::Handshake);
        match (state, body) {
            (State::Handshake, RequestKind::ApiVersions(_)) => {
                self.state = State::Handshake;
                Admission::Serve
            }
            (State::Handshake, RequestKind::SaslHandshake(r)) => self.handshake(&authenticator, r, version, false),
            (State::Handshake, _) => {
                Admission::Close(format!("unexpected {api_key:?} request before SASL authentication"))
            }
            (State::Authenticating { exchange, raw: false }, RequestKind::SaslAuthenticate(r)) => {
                self.authenticate(exchange, r, version, false, now)
            }
            (State::Authenticating { .. }, _) => {
                Admission::Close(format!("unexpected {api_key:?} request during SASL authentication"))
            }
            (State::Authenticated { reauth: None }, RequestKind::SaslHandshake(r)) => {
                self.state = State::Authenticated { reauth: None };
                self.handshake(&authenticator, r, version, true)
            }
            (State::Authenticated { reauth: Some(exchange) }, RequestKind::SaslAuthenticate(r)) => {
                self.authenticate(exchange, r, version, true, now)
            }
            (State::Authenticated { reauth }, RequestKind::SaslHandshake(_) | RequestKind::SaslAuthenticate(_)) => {
                self.state = State::Authenticated { reauth };
                Admission::Close("unexpected SASL request during re-authentication".into())
            }
            (State::Authenticated { reauth }, _) => {
                self.state = State::Authenticated { reauth };
                if self.expires.is_some_and(|at| now >= at) {
                    return Admission::Close("the SASL session expired without re-authentication".into());
                }
                Admission::Serve
            }
        }
    }

    fn handshake(
        &mut self,
        authenticator: &SaslAuthenticator,
        r: &SaslHandshakeRequest,
        version: i16,
        reauth: bool,
    ) -> Admission {
        let mechanism = r.mechanism.to_string();
        let enabled: Vec<StrBytes> =
            authenticator.mechanisms().iter().map(|m| StrBytes::from_string(m.clone())).collect();
        let refuse = |code: ResponseError| Admission::Answer {
            response: Box::new(ResponseKind::SaslHandshake(
                SaslHandshakeResponse::default().with_error_code(code.code()).with_mechanisms(enabled.clone()),
            )),
            close: true,
        };
        if reauth && (version < 1 || self.mechanism.as_deref() != Some(mechanism.as_str())) {
            // KIP-368: a session re-authenticates with its mechanism, v1+
            tracing::info!(peer = %self.peer, listener = %self.listener, mechanism, "closing connection: re-authentication with another mechanism");
            return refuse(ResponseError::IllegalSaslState);
        }
        let Some(exchange) = authenticator.start(&mechanism) else {
            super::log_failed_login(self.peer, &self.listener, &mechanism, None, "unsupported SASL mechanism");
            return refuse(ResponseError::UnsupportedSaslMechanism);
        };
        let exchange = Box::new(exchange);
        self.state = if reauth {
            State::Authenticated { reauth: Some(exchange) }
        } else {
            State::Authenticating { exchange, raw: version == 0 }
        };
        Admission::Answer {
            response: Box::new(ResponseKind::SaslHandshake(SaslHandshakeResponse::default().with_mechanisms(enabled))),
            close: false,
        }
    }

    fn authenticate(
        &mut self,
        mut exchange: Box<SaslExchange>,
        r: &SaslAuthenticateRequest,
        version: i16,
        reauth: bool,
        now: Instant,
    ) -> Admission {
        match exchange.step(&r.auth_bytes) {
            Ok(SaslStep::Challenge(challenge)) => {
                self.state = if reauth {
                    State::Authenticated { reauth: Some(exchange) }
                } else {
                    State::Authenticating { exchange, raw: false }
                };
                Admission::Answer {
                    response: Box::new(ResponseKind::SaslAuthenticate(
                        SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(challenge)),
                    )),
                    close: false,
                }
            }
            Ok(SaslStep::Done(done)) => {
                if reauth && done.principal != *self.principal {
                    let message = format!(
                        "Cannot change principals during re-authentication from {}: {}",
                        self.principal, done.principal
                    );
                    super::log_failed_login(self.peer, &self.listener, exchange.mechanism(), exchange.user(), &message);
                    return fail(message);
                }
                let lifetime_ms =
                    self.begin_session(exchange.mechanism(), done.principal, done.credential_expiry_ms, now);
                self.state = State::Authenticated { reauth: None };
                let mut response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(done.response));
                if version >= 1 {
                    response.session_lifetime_ms = lifetime_ms;
                }
                Admission::Answer { response: Box::new(ResponseKind::SaslAuthenticate(response)), close: false }
            }
            Err(failure) => {
                self.log_failure(&exchange, &failure);
                if reauth {
                    self.state = State::Authenticated { reauth: None };
                }
                fail(failure.message)
            }
        }
    }

    fn log_failure(&self, exchange: &SaslExchange, failure: &vltava_security::sasl::SaslFailure) {
        super::log_failed_login(
            self.peer,
            &self.listener,
            exchange.mechanism(),
            failure.user.as_deref(),
            &failure.message,
        );
    }

    /// A bare token of a handshake-v0 exchange, read at `now`.
    pub fn raw_token(&mut self, token: &[u8], now: Instant) -> RawAdmission {
        let State::Authenticating { mut exchange, raw: true } = std::mem::replace(&mut self.state, State::Handshake)
        else {
            return RawAdmission::Close;
        };
        match exchange.step(token) {
            Ok(SaslStep::Challenge(challenge)) => {
                self.state = State::Authenticating { exchange, raw: true };
                RawAdmission::Reply(Bytes::from(challenge))
            }
            Ok(SaslStep::Done(done)) => {
                self.begin_session(exchange.mechanism(), done.principal, done.credential_expiry_ms, now);
                self.state = State::Authenticated { reauth: None };
                RawAdmission::Reply(Bytes::from(done.response))
            }
            Err(failure) => {
                self.log_failure(&exchange, &failure);
                RawAdmission::Close
            }
        }
    }

    /// Starts an authenticated session; its lifetime in ms (0: unbounded),
    /// as Kafka computes it: the shorter of `connections.max.reauth.ms`
    /// and the credential's remaining life.
    fn begin_session(
        &mut self,
        mechanism: &str,
        principal: KafkaPrincipal,
        credential_expiry_ms: Option<i64>,
        now: Instant,
    ) -> i64 {
        let max_reauth_ms = self
            .authenticator
            .as_ref()
            .and_then(|a| a.settings().connections_max_reauth_ms.get(mechanism).copied())
            .filter(|ms| *ms > 0);
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let remaining_ms = credential_expiry_ms.map(|at| (at - now_ms).max(0));
        let lifetime_ms = match (max_reauth_ms, remaining_ms) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a),
            (Some(a), Some(b)) => Some(a.min(b)),
        };
        self.expires = lifetime_ms.map(|ms| now + Duration::from_millis(ms as u64));
        tracing::debug!(peer = %self.peer, listener = %self.listener, mechanism, %principal, ?lifetime_ms, "SASL authenticated");
        self.principal = Arc::new(principal);
        self.mechanism = Some(mechanism.to_string());
        lifetime_ms.unwrap_or(0)
    }
}

fn fail(message: String) -> Admission {
    Admission::Answer {
        response: Box::new(ResponseKind::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        )),
        close: true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use vltava_security::sasl::{
        SaslCallbacks, SaslServerSettings, ScramExtensions, ScramIdentity, ScramMechanism, PLAIN,
    };

    use super::*;

    thread_local! {
        /// The tests' clock: starts now, moves only by `advance`.
        static NOW: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }

    fn clock() -> Instant {
        NOW.with(|n| {
            let now = n.get().unwrap_or_else(Instant::now);
            n.set(Some(now));
            now
        })
    }

    fn advance(by: Duration) {
        let at = clock() + by;
        NOW.with(|n| n.set(Some(at)));
    }

    struct NoScram;
    impl SaslCallbacks for NoScram {
        fn scram_credential(&self, _: ScramMechanism, _: &str, _: &ScramExtensions) -> Option<ScramIdentity> {
            None
        }
    }

    fn sasl(reauth_ms: Option<i64>) -> Authentication {
        let mut settings = SaslServerSettings {
            mechanisms: vec![PLAIN.into()],
            plain_users: [("alice".to_string(), "pw".to_string()), ("bob".to_string(), "pw2".to_string())].into(),
            connections_max_reauth_ms: BTreeMap::new(),
            oauthbearer: None,
        };
        if let Some(ms) = reauth_ms {
            settings.connections_max_reauth_ms.insert(PLAIN.into(), ms);
        }
        let authenticator = SaslAuthenticator::new(settings, Arc::new(NoScram));
        Authentication::sasl(Arc::from("SASL_PLAINTEXT"), "127.0.0.1:1".parse().unwrap(), authenticator)
    }

    fn handshake(auth: &mut Authentication, mechanism: &'static str, version: i16) -> Admission {
        let r = RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
        );
        auth.admit(ApiKey::SaslHandshake, &r, version, clock())
    }

    fn authenticate(auth: &mut Authentication, token: &'static [u8], version: i16) -> Admission {
        let r = RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(token)),
        );
        auth.admit(ApiKey::SaslAuthenticate, &r, version, clock())
    }

    fn metadata(auth: &mut Authentication) -> Admission {
        auth.admit(ApiKey::Metadata, &RequestKind::Metadata(MetadataRequest::default()), 12, clock())
    }

    /// The error code and close flag of an answer.
    fn answered(a: Admission) -> (i16, bool, i64) {
        match a {
            Admission::Answer { response, close } => match *response {
                ResponseKind::SaslHandshake(r) => (r.error_code, close, 0),
                ResponseKind::SaslAuthenticate(r) => (r.error_code, close, r.session_lifetime_ms),
                other => panic!("unexpected answer {other:?}"),
            },
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn only_api_versions_and_the_handshake_before_authentication() {
        let mut auth = sasl(None);
        let versions = RequestKind::ApiVersions(ApiVersionsRequest::default());
        assert!(matches!(auth.admit(ApiKey::ApiVersions, &versions, 3, clock()), Admission::Serve));
        assert_eq!(auth.frame_bytes_max(100 << 20), UNAUTHENTICATED_FRAME_BYTES_MAX);
        assert!(matches!(metadata(&mut auth), Admission::Close(_)));
        let mut auth = sasl(None);
        assert!(matches!(authenticate(&mut auth, b"\0alice\0pw", 1), Admission::Close(_)));
        let mut auth = sasl(None);
        assert_eq!(
            answered(handshake(&mut auth, "GSSAPI", 1)),
            (ResponseError::UnsupportedSaslMechanism.code(), true, 0)
        );
    }

    #[test]
    fn plain_login_then_requests_are_served_as_the_user() {
        let mut auth = sasl(None);
        assert_eq!(answered(handshake(&mut auth, "PLAIN", 1)), (0, false, 0));
        assert!(matches!(metadata(&mut auth), Admission::Close(_)), "nothing but SaslAuthenticate now");
        let mut auth = sasl(None);
        handshake(&mut auth, "PLAIN", 1);
        assert_eq!(answered(authenticate(&mut auth, b"\0alice\0pw", 2)), (0, false, 0));
        assert_eq!(auth.principal().to_string(), "User:alice");
        assert_eq!(auth.frame_bytes_max(100 << 20), 100 << 20);
        assert!(matches!(metadata(&mut auth), Admission::Serve));
        let mut auth = sasl(None);
        handshake(&mut auth, "PLAIN", 1);
        assert_eq!(
            answered(authenticate(&mut auth, b"\0alice\0no", 1)),
            (ResponseError::SaslAuthenticationFailed.code(), true, 0)
        );
    }

    #[test]
    fn handshake_v0_takes_bare_tokens() {
        let mut auth = sasl(None);
        handshake(&mut auth, "PLAIN", 0);
        assert!(auth.expects_raw_token());
        assert!(matches!(auth.raw_token(b"\0alice\0pw", clock()), RawAdmission::Reply(t) if t.is_empty()));
        assert!(!auth.expects_raw_token());
        assert!(matches!(metadata(&mut auth), Admission::Serve));
        let mut auth = sasl(None);
        handshake(&mut auth, "PLAIN", 0);
        assert!(matches!(auth.raw_token(b"garbage", clock()), RawAdmission::Close));
    }

    #[test]
    fn sessions_expire_unless_reauthenticated_as_the_same_principal() {
        let mut auth = sasl(Some(1));
        handshake(&mut auth, "PLAIN", 1);
        assert_eq!(answered(authenticate(&mut auth, b"\0alice\0pw", 1)), (0, false, 1));
        advance(Duration::from_millis(5));
        // re-authentication is allowed after expiry, and renews the session
        assert_eq!(answered(handshake(&mut auth, "PLAIN", 1)), (0, false, 0));
        assert_eq!(answered(authenticate(&mut auth, b"\0alice\0pw", 1)), (0, false, 1));
        advance(Duration::from_millis(5));
        assert!(matches!(metadata(&mut auth), Admission::Close(_)), "an expired session is closed");
        // another principal on re-authentication fails
        let mut auth = sasl(Some(60_000));
        handshake(&mut auth, "PLAIN", 1);
        authenticate(&mut auth, b"\0alice\0pw", 1);
        handshake(&mut auth, "PLAIN", 1);
        assert_eq!(
            answered(authenticate(&mut auth, b"\0bob\0pw2", 1)).0,
            ResponseError::SaslAuthenticationFailed.code()
        );
        // handshake v0 cannot re-authenticate
        let mut auth = sasl(Some(60_000));
        handshake(&mut auth, "PLAIN", 1);
        authenticate(&mut auth, b"\0alice\0pw", 1);
        assert_eq!(answered(handshake(&mut auth, "PLAIN", 0)), (ResponseError::IllegalSaslState.code(), true, 0));
    }

    #[test]
    fn listeners_without_sasl_answer_illegal_sasl_state() {
        let mut auth = Authentication::none(
            Arc::from("PLAINTEXT"),
            "127.0.0.1:1".parse().unwrap(),
            Arc::new(KafkaPrincipal::anonymous()),
        );
        assert_eq!(answered(handshake(&mut auth, "PLAIN", 1)), (ResponseError::IllegalSaslState.code(), false, 0));
        assert!(matches!(metadata(&mut auth), Admission::Serve));
    }
}
