//! SASL authentication of Kafka connections (server side, and the login
//! of this node to others): which mechanisms a listener offers, and one
//! exchange per authentication attempt, driven token by token by the
//! broker's connection state machine.
//!
//! - [`jaas`]: Kafka's JAAS config syntax (`sasl.jaas.config` values);
//! - [`scram`]: SCRAM credentials as stored in the metadata log, and the
//!   `--add-scram` syntax;
//! - [`client`]: this node's login to a SASL listener of another node.
//!
//! The extension point is [`SaslAuthenticator::start`] (which mechanism
//! runs how) together with [`SaslCallbacks`] (what a mechanism asks of the
//! broker: a SCRAM credential for a user name and the extensions of the
//! client's first message). The exchanges themselves run on rsasl.

pub mod client;
pub mod jaas;
pub mod scram;
mod scram_server;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::oauthbearer::properties::{OAuthBearerError, OAuthBearerValidate};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::prelude::{Mechname, SASLConfig, SASLServer, Session, SessionError, State};
use rsasl::property::{AuthId, AuthzId, OAuthBearerToken, Password};
use rsasl::validate::{Validate, Validation, ValidationError};

use crate::{KafkaPrincipal, SecurityError};
pub use scram::{ScramCredential, ScramExtensions, ScramMechanism};

pub const PLAIN: &str = "PLAIN";
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_512: &str = "SCRAM-SHA-512";
pub const OAUTHBEARER: &str = "OAUTHBEARER";

/// Mechanisms this build can serve, as `sasl.enabled.mechanisms` names them.
pub const SUPPORTED_MECHANISMS: &[&str] = &[PLAIN, SCRAM_SHA_256, SCRAM_SHA_512, OAUTHBEARER];

/// Kafka's default `sasl.enabled.mechanisms`.
pub const DEFAULT_ENABLED_MECHANISMS: &str = "GSSAPI";

/// Kafka's `sasl.enabled.mechanisms` value: a comma-separated list.
pub fn parse_mechanisms(value: &str) -> Vec<String> {
    value.split(',').map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()).collect()
}

/// A SCRAM credential found for a user name, and whom it authenticates.
#[derive(Debug, Clone)]
pub struct ScramIdentity {
    pub credential: ScramCredential,
    /// The principal an exchange with this credential authenticates (the
    /// user; a delegation token's owner).
    pub principal: KafkaPrincipal,
    /// When the credential stops being valid (ms since the epoch): a
    /// session ends there at the latest (KIP-368).
    pub expiry_ms: Option<i64>,
}

/// What mechanisms need from the broker. One implementation lives in the
/// broker (SCRAM users from the metadata image; delegation tokens).
pub trait SaslCallbacks: Send + Sync {
    /// The credential of `user` for `mechanism`, given the extensions of
    /// the client's first message (`tokenauth=true`: `user` is a
    /// delegation token id). `None`: no such user.
    fn scram_credential(
        &self,
        mechanism: ScramMechanism,
        user: &str,
        extensions: &ScramExtensions,
    ) -> Option<ScramIdentity>;
}

/// One listener's SASL server settings.
#[derive(Debug, Clone, Default)]
pub struct SaslServerSettings {
    /// `sasl.enabled.mechanisms`, upper-case, in the configured order.
    pub mechanisms: Vec<String>,
    /// PLAIN's users (`user_<name>="<password>"` of the listener's PLAIN
    /// JAAS config).
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` by mechanism (KIP-368); absent or 0: a
    /// session does not expire (unless its credential does).
    pub connections_max_reauth_ms: BTreeMap<String, i64>,
    /// OAUTHBEARER's token validator (`crate::oauth`), when the listener
    /// enables it.
    pub oauthbearer: Option<Arc<crate::oauth::OAuthValidator>>,
}

impl SaslServerSettings {
    /// Refuses a mechanism this build cannot serve.
    pub fn check(&self, listener: &str) -> Result<(), SecurityError> {
        if self.mechanisms.is_empty() {
            return Err(SecurityError::new(format!(
                "listener {listener}: sasl.enabled.mechanisms is empty (supported: {})",
                SUPPORTED_MECHANISMS.join(", ")
            )));
        }
        for m in &self.mechanisms {
            if !SUPPORTED_MECHANISMS.contains(&m.as_str()) {
                return Err(SecurityError::new(format!(
                    "listener {listener}: SASL mechanism {m} in sasl.enabled.mechanisms is not supported \
                     (supported: {}; Kafka's default is GSSAPI, so set listener.name.{}.sasl.enabled.mechanisms)",
                    SUPPORTED_MECHANISMS.join(", "),
                    listener.to_ascii_lowercase()
                )));
            }
        }
        Ok(())
    }
}

/// A listener's SASL server: starts one exchange per authentication.
#[derive(Clone)]
pub struct SaslAuthenticator {
    settings: Arc<SaslServerSettings>,
    callbacks: Arc<dyn SaslCallbacks>,
}

impl std::fmt::Debug for SaslAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslAuthenticator").field("mechanisms", &self.settings.mechanisms).finish()
    }
}

/// The outcome of one step of an exchange.
#[derive(Debug)]
pub enum SaslStep {
    /// Send this challenge and wait for the client's next token.
    Challenge(Vec<u8>),
    /// Authenticated: send `response` (maybe empty) and the session begins.
    Done(Authenticated),
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: KafkaPrincipal,
    pub response: Vec<u8>,
    /// When the credential expires (ms since the epoch), if it does.
    pub credential_expiry_ms: Option<i64>,
}

/// A failed authentication: `message` goes to the client (no secrets),
/// `user` (if the client named one) to the log.
#[derive(Debug, Clone)]
pub struct SaslFailure {
    pub message: String,
    pub user: Option<String>,
}

/// Outcome the rsasl callback hands back to the exchange.
struct Outcome;
impl Validation for Outcome {
    type Value = (KafkaPrincipal, Option<i64>);
}

/// rsasl's view of the broker for one exchange.
struct ExchangeCallback {
    settings: Arc<SaslServerSettings>,
    callbacks: Arc<dyn SaslCallbacks>,
    mechanism: String,
    /// Set from the client's first SCRAM message before rsasl parses it.
    extensions: Mutex<ScramExtensions>,
    /// The identity the SCRAM credential belongs to.
    scram_identity: Mutex<Option<ScramIdentity>>,
    /// OAUTHBEARER: the token as validated, or why it was refused.
    oauth: Mutex<Option<Result<crate::oauth::ValidToken, String>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(&'static str);

impl SessionCallback for ExchangeCallback {
    fn callback(&self, _data: &SessionData, context: &Context, request: &mut Request) -> Result<(), SessionError> {
        if request.is::<OAuthBearerValidate>() {
            let Some(validator) = &self.settings.oauthbearer else { return Ok(()) };
            let auth = context.get_ref::<OAuthBearerToken>().unwrap_or_default();
            let token = auth.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer ")).map_or(auth, |_| &auth[7..]);
            let result = validator.validate(token.trim());
            let refused = OAuthBearerError::new("invalid_token", None, None);
            let answer = if result.is_ok() { Ok(()) } else { Err(refused) };
            *self.oauth.lock() = Some(result);
            request.satisfy::<OAuthBearerValidate>(&answer)?;
            return Ok(());
        }
        if request.is::<ScramStoredPassword>() {
            let (Some(mechanism), Some(user)) = (ScramMechanism::parse(&self.mechanism), context.get_ref::<AuthId>())
            else {
                return Ok(());
            };
            let extensions = self.extensions.lock().clone();
            if let Some(identity) = self.callbacks.scram_credential(mechanism, user, &extensions) {
                let c = identity.credential.clone();
                let Ok(iterations) = u32::try_from(c.iterations) else { return Ok(()) };
                // (satisfy returns early once it is satisfied)
                *self.scram_identity.lock() = Some(identity.clone());
                request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                    iterations,
                    &c.salt,
                    &c.stored_key,
                    &c.server_key,
                ))?;
            }
        }
        Ok(())
    }

    fn validate(
        &self,
        _data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        let authzid = context.get_ref::<AuthzId>().filter(|a| !a.is_empty());
        if self.mechanism == OAUTHBEARER {
            // a refused token was answered with Kafka's error challenge;
            // the exchange then ends without an outcome
            let Some(Ok(token)) = self.oauth.lock().clone() else { return Ok(()) };
            if authzid.is_some_and(|a| a != token.principal_name) {
                return Err(ValidationError::Boxed(Box::new(Refused(
                    "Authentication failed: Client requested an authorization id that is different from the token's principal",
                ))));
            }
            validate.with::<Outcome, _>(|| Ok((KafkaPrincipal::user(token.principal_name), Some(token.expiry_ms))))?;
            return Ok(());
        }
        let Some(user) = context.get_ref::<AuthId>() else { return Err(ValidationError::MissingRequiredProperty) };
        // Kafka: an authorization id other than the user is refused
        if authzid.is_some_and(|a| a != user) {
            return Err(ValidationError::Boxed(Box::new(Refused(
                "Authentication failed: Client requested an authorization id that is different from username",
            ))));
        }
        match self.mechanism.as_str() {
            PLAIN => {
                let password = context.get_ref::<Password>().unwrap_or_default();
                let ok = self.settings.plain_users.get(user).is_some_and(|p| constant_time_eq(p.as_bytes(), password));
                if !ok {
                    return Err(ValidationError::Boxed(Box::new(Refused(
                        "Authentication failed: Invalid username or password",
                    ))));
                }
                validate.with::<Outcome, _>(|| Ok((KafkaPrincipal::user(user), None)))?;
            }
            m if ScramMechanism::parse(m).is_some() => {
                let Some(identity) = self.scram_identity.lock().clone() else {
                    return Err(ValidationError::MissingRequiredProperty);
                };
                validate.with::<Outcome, _>(|| Ok((identity.principal, identity.expiry_ms)))?;
            }
            _ => return Err(ValidationError::MissingRequiredProperty),
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One authentication attempt in progress.
pub struct SaslExchange {
    mechanism: String,
    callback: Arc<ExchangeCallback>,
    session: Session<Outcome>,
    user: Option<String>,
    steps: usize,
    /// A delegation-token login (`tokenauth=true`) runs on our own SCRAM
    /// server (`scram_server`), not rsasl's.
    token_login: Option<scram_server::ScramServerExchange>,
}

impl std::fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslExchange").field("mechanism", &self.mechanism).field("steps", &self.steps).finish()
    }
}

/// Bound on the tokens of one exchange (SCRAM takes two, PLAIN one).
const EXCHANGE_STEPS_MAX: usize = 8;

/// The callback rsasl calls holds an `Arc` of ours, so that the exchange
/// can set the SCRAM extensions before each step.
struct SharedCallback(Arc<ExchangeCallback>);
impl SessionCallback for SharedCallback {
    fn callback(&self, d: &SessionData, c: &Context, r: &mut Request) -> Result<(), SessionError> {
        self.0.callback(d, c, r)
    }
    fn validate(&self, d: &SessionData, c: &Context, v: &mut Validate<'_>) -> Result<(), ValidationError> {
        self.0.validate(d, c, v)
    }
}

impl SaslAuthenticator {
    pub fn new(settings: SaslServerSettings, callbacks: Arc<dyn SaslCallbacks>) -> Self {
        Self { settings: Arc::new(settings), callbacks }
    }

    pub fn settings(&self) -> &SaslServerSettings {
        &self.settings
    }

    /// The listener's `sasl.enabled.mechanisms`.
    pub fn mechanisms(&self) -> &[String] {
        &self.settings.mechanisms
    }

    pub fn is_enabled(&self, mechanism: &str) -> bool {
        self.settings.mechanisms.iter().any(|m| m == mechanism)
    }

    /// Starts an exchange of an enabled `mechanism`; `None` if it is not.
    pub fn start(&self, mechanism: &str) -> Option<SaslExchange> {
        if !self.is_enabled(mechanism) {
            return None;
        }
        match mechanism {
            OAUTHBEARER if self.settings.oauthbearer.is_none() => None,
            PLAIN | SCRAM_SHA_256 | SCRAM_SHA_512 | OAUTHBEARER => {
                let callback = Arc::new(ExchangeCallback {
                    settings: self.settings.clone(),
                    callbacks: self.callbacks.clone(),
                    mechanism: mechanism.to_string(),
                    extensions: Mutex::default(),
                    scram_identity: Mutex::default(),
                    oauth: Mutex::default(),
                });
                let config =
                    SASLConfig::builder().with_defaults().with_callback(SharedCallback(callback.clone())).ok()?;
                let name = Mechname::parse(mechanism.as_bytes()).ok()?;
                let session = SASLServer::<Outcome>::new(config).start_suggested(name).ok()?;
                Some(SaslExchange {
                    mechanism: mechanism.to_string(),
                    callback,
                    session,
                    user: None,
                    steps: 0,
                    token_login: None,
                })
            }
            _ => None,
        }
    }
}

impl SaslExchange {
    pub fn mechanism(&self) -> &str {
        &self.mechanism
    }

    /// The user name the client gave, once it gave one (for logs).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Takes the client's next token.
    pub fn step(&mut self, token: &[u8]) -> Result<SaslStep, SaslFailure> {
        self.steps += 1;
        let failure =
            |user: &Option<String>, message: &str| SaslFailure { message: message.to_string(), user: user.clone() };
        if self.steps > EXCHANGE_STEPS_MAX {
            return Err(failure(&self.user, "Authentication failed: too many SASL tokens"));
        }
        if self.steps == 1 {
            if self.mechanism == PLAIN {
                self.user = token.split(|b| *b == 0).nth(1).map(|u| String::from_utf8_lossy(u).into_owned());
            } else if self.mechanism == OAUTHBEARER {
                let claim = self.callback.settings.oauthbearer.as_ref().map(|v| v.settings().sub_claim_name.clone());
                self.user = claim.and_then(|c| crate::oauth::claimed_subject(token, &c));
            } else {
                self.user = scram::client_first_username(token);
                let extensions = ScramExtensions::of_client_first(token);
                if let Some(m) = ScramMechanism::parse(&self.mechanism).filter(|_| extensions.token_auth()) {
                    self.token_login = Some(scram_server::ScramServerExchange::new(m, self.callback.callbacks.clone()));
                }
                *self.callback.extensions.lock() = extensions;
            }
        }
        if let Some(login) = self.token_login.as_mut() {
            return login.step(token).map_err(|message| failure(&self.user, &message));
        }
        let mut out = Vec::new();
        let state = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.session.step(Some(token), &mut std::io::Cursor::new(&mut out))
        }));
        let invalid = match self.mechanism.as_str() {
            PLAIN => "Authentication failed: Invalid username or password",
            _ => "Authentication failed during authentication due to invalid credentials with SASL mechanism",
        };
        let message = |detail: String| {
            if self.mechanism == PLAIN {
                detail
            } else {
                format!("{invalid} {}", self.mechanism)
            }
        };
        match state {
            Err(_) => Err(failure(&self.user, "Authentication failed: malformed SASL token")),
            Ok(Err(SessionError::ValidationError(ValidationError::Boxed(e)))) => {
                Err(failure(&self.user, &message(e.to_string())))
            }
            Ok(Err(SessionError::MechanismError(_))) if self.steps == 1 => {
                Err(failure(&self.user, &format!("Authentication failed: malformed {} message", self.mechanism)))
            }
            Ok(Err(e)) => {
                tracing::debug!(mechanism = %self.mechanism, error = %e, "SASL exchange failed");
                Err(failure(&self.user, &message(invalid.to_string())))
            }
            Ok(Ok(State::Running)) => Ok(SaslStep::Challenge(out)),
            Ok(Ok(State::Finished(_))) => match self.session.validation() {
                Some((principal, credential_expiry_ms)) => {
                    Ok(SaslStep::Done(Authenticated { principal, response: out, credential_expiry_ms }))
                }
                // Kafka's OAUTHBEARER: the client acknowledged the error
                // challenge; the failure carries it, the log the reason
                None if self.mechanism == OAUTHBEARER => {
                    let reason = match self.callback.oauth.lock().clone() {
                        Some(Err(reason)) => reason,
                        _ => "no token validated".to_string(),
                    };
                    let json = String::from_utf8_lossy(crate::oauth::INVALID_TOKEN_CHALLENGE);
                    Err(failure(&self.user, &format!("{json}: {reason}")))
                }
                None => Err(failure(&self.user, &message(invalid.to_string()))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Users(Vec<(ScramMechanism, String, ScramCredential)>);
    impl SaslCallbacks for Users {
        fn scram_credential(&self, m: ScramMechanism, user: &str, ext: &ScramExtensions) -> Option<ScramIdentity> {
            let (_, name, c) = self.0.iter().find(|(mm, n, _)| *mm == m && n == user)?;
            let principal = if ext.token_auth() { KafkaPrincipal::user("owner") } else { KafkaPrincipal::user(name) };
            Some(ScramIdentity { credential: c.clone(), principal, expiry_ms: None })
        }
    }

    fn authenticator() -> SaslAuthenticator {
        let settings = SaslServerSettings {
            mechanisms: vec![PLAIN.into(), SCRAM_SHA_256.into(), SCRAM_SHA_512.into()],
            plain_users: [("alice".to_string(), "alice-secret".to_string())].into(),
            ..Default::default()
        };
        let users = Users(
            ScramMechanism::ALL
                .into_iter()
                .map(|m| (m, "bob".to_string(), ScramCredential::generate(m, "bob-secret", None, 4096)))
                .collect(),
        );
        SaslAuthenticator::new(settings, Arc::new(users))
    }

    /// Runs a client login against the server; the principal or the failure.
    fn exchange(mechanism: &str, user: &str, password: &str) -> Result<KafkaPrincipal, SaslFailure> {
        let mut login = client::SaslLogin::start(mechanism, user, password).unwrap();
        let mut server = authenticator().start(mechanism).unwrap();
        let mut token = login.first_token().unwrap();
        loop {
            match server.step(&token)? {
                SaslStep::Challenge(c) => token = login.step(&c).unwrap().unwrap(),
                SaslStep::Done(a) => {
                    if !a.response.is_empty() {
                        login.step(&a.response).unwrap();
                    }
                    assert!(login.is_done(), "client did not finish");
                    return Ok(a.principal);
                }
            }
        }
    }

    #[test]
    fn plain_and_scram_succeed_and_fail() {
        assert_eq!(exchange(PLAIN, "alice", "alice-secret").unwrap(), KafkaPrincipal::user("alice"));
        assert!(exchange(PLAIN, "alice", "wrong").unwrap_err().message.contains("Invalid username or password"));
        assert!(exchange(PLAIN, "nobody", "x").is_err());
        for m in [SCRAM_SHA_256, SCRAM_SHA_512] {
            assert_eq!(exchange(m, "bob", "bob-secret").unwrap(), KafkaPrincipal::user("bob"));
            let e = exchange(m, "bob", "nope").unwrap_err();
            assert_eq!(e.user.as_deref(), Some("bob"));
            assert!(!e.message.contains("nope"));
            assert!(exchange(m, "carol", "x").is_err());
        }
    }

    #[test]
    fn garbage_tokens_fail_without_panicking() {
        let auth = authenticator();
        assert!(auth.start("GSSAPI").is_none());
        for m in [PLAIN, SCRAM_SHA_256, SCRAM_SHA_512] {
            for junk in
                [&b""[..], b"\0", b"\xff\xfe\xfd", b"n,,", b"n,,n=bob,r=", b"p=tls-unique,,n=bob,r=x", b"\0\0\0\0"]
            {
                let mut ex = auth.start(m).unwrap();
                let mut result = ex.step(junk);
                // a second garbage token after a challenge fails too
                if let Ok(SaslStep::Challenge(_)) = result {
                    result = ex.step(b"c=biws,r=x,p=AAAA");
                }
                assert!(result.is_err(), "{m} accepted {junk:?}");
            }
        }
        let mut ex = auth.start(PLAIN).unwrap();
        assert!(ex.step(b"bob\0alice\0alice-secret").unwrap_err().message.contains("authorization id"));
    }

    #[test]
    fn oauthbearer_accepts_valid_tokens_and_answers_kafkas_error_challenge() {
        let b64 = |v: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
        };
        let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let token =
            |exp: i64| format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&format!(r#"{{"sub":"alice","exp":{exp}}}"#)));
        let validator = crate::oauth::OAuthValidator::new(
            crate::oauth::OAuthSettings::from_keys(|_| None).expect("unsecured settings"),
        )
        .unwrap();
        let settings = SaslServerSettings {
            mechanisms: vec![OAUTHBEARER.into()],
            oauthbearer: Some(Arc::new(validator)),
            ..Default::default()
        };
        let auth = SaslAuthenticator::new(settings, Arc::new(Users(vec![])));
        let first = |t: &str| format!("n,,\u{1}auth=Bearer {t}\u{1}\u{1}").into_bytes();
        let mut ex = auth.start(OAUTHBEARER).unwrap();
        match ex.step(&first(&token(now_s + 60))).unwrap() {
            SaslStep::Done(a) => {
                assert_eq!(a.principal, KafkaPrincipal::user("alice"));
                assert_eq!(a.credential_expiry_ms, Some((now_s + 60) * 1000));
            }
            other => panic!("not authenticated: {other:?}"),
        }
        let mut ex = auth.start(OAUTHBEARER).unwrap();
        match ex.step(&first(&token(now_s - 3600))).unwrap() {
            SaslStep::Challenge(c) => assert_eq!(c, crate::oauth::INVALID_TOKEN_CHALLENGE),
            other => panic!("no error challenge: {other:?}"),
        }
        let failure = ex.step(b"\x01").unwrap_err();
        assert!(failure.message.starts_with(r#"{"status":"invalid_token"}"#), "{}", failure.message);
        assert!(failure.message.contains("expired"), "{}", failure.message);
        for junk in [&b""[..], b"n,,", b"\xff", b"n,,\x01auth=Bearer\x01\x01"] {
            let mut ex = auth.start(OAUTHBEARER).unwrap();
            let mut result = ex.step(junk);
            if let Ok(SaslStep::Challenge(_)) = result {
                result = ex.step(b"\x01");
            }
            assert!(result.is_err(), "{junk:?}");
        }
        let without = SaslAuthenticator::new(
            SaslServerSettings { mechanisms: vec![OAUTHBEARER.into()], ..Default::default() },
            Arc::new(Users(vec![])),
        );
        assert!(without.start(OAUTHBEARER).is_none(), "OAUTHBEARER needs a validator");
    }

    #[test]
    fn unsupported_mechanisms_are_refused() {
        let s = SaslServerSettings { mechanisms: vec!["GSSAPI".into()], ..Default::default() };
        assert!(s.check("SASL_SSL").unwrap_err().to_string().contains("GSSAPI"));
        assert!(SaslServerSettings::default().check("X").is_err());
        assert_eq!(parse_mechanisms(" plain, SCRAM-SHA-512 ,"), vec!["PLAIN", "SCRAM-SHA-512"]);
    }
}
