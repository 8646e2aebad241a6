//! SASL on the broker's SASL_PLAINTEXT and SASL_SSL listeners.
//!
//! - this module: each SASL listener's settings, read with Kafka's keys and
//!   per-listener prefixes (`listener.name.<l>.sasl.enabled.mechanisms`,
//!   `listener.name.<l>.<mechanism>.sasl.jaas.config`,
//!   `listener.name.<l>.<mechanism>.connections.max.reauth.ms`), and what
//!   the mechanisms look up in the broker ([`BrokerSaslCallbacks`]);
//! - [`login`]: this broker's login to the other brokers' SASL listener;
//! - [`session`]: one connection's authentication state machine
//!   (SaslHandshake, SaslAuthenticate, re-authentication, expiry).
//!
//! The mechanisms themselves are in `vltava_security::sasl`.

pub mod login;
pub mod session;

use std::collections::BTreeMap;
use std::sync::Arc;

use vltava_security::sasl::{
    self, jaas, SaslCallbacks, SaslServerSettings, ScramExtensions, ScramIdentity, ScramMechanism,
};
use vltava_security::KafkaPrincipal;

use crate::config::ConfigError;
use crate::Broker;

/// A listener key: `listener.name.<l>.<key>` first, then `<key>`.
fn listener_value<'a>(settings: &'a BTreeMap<String, String>, listener: &str, key: &str) -> Option<&'a String> {
    settings.get(&format!("listener.name.{}.{key}", listener.to_ascii_lowercase())).or_else(|| settings.get(key))
}

/// The JAAS login module configured for `mechanism` on `listener`
/// (`listener.name.<l>.<mechanism>.sasl.jaas.config`: brokers take only the
/// listener-and-mechanism-prefixed form, as Kafka's do).
pub fn jaas_config(
    settings: &BTreeMap<String, String>,
    listener: &str,
    mechanism: &str,
) -> Result<Option<jaas::LoginModule>, ConfigError> {
    let key =
        format!("listener.name.{}.{}.sasl.jaas.config", listener.to_ascii_lowercase(), mechanism.to_ascii_lowercase());
    let Some(value) = settings.get(&key) else { return Ok(None) };
    jaas::parse_one(value).map(Some).map_err(|e| ConfigError { key, value: "(hidden)".into(), reason: e.to_string() })
}

/// The SASL settings of listener `name`.
pub fn listener_settings(settings: &BTreeMap<String, String>, name: &str) -> Result<SaslServerSettings, ConfigError> {
    let mechanisms_value = listener_value(settings, name, "sasl.enabled.mechanisms")
        .cloned()
        .unwrap_or_else(|| sasl::DEFAULT_ENABLED_MECHANISMS.to_string());
    let mut server = SaslServerSettings { mechanisms: sasl::parse_mechanisms(&mechanisms_value), ..Default::default() };
    server.check(name).map_err(|e| ConfigError {
        key: format!("listener.name.{}.sasl.enabled.mechanisms", name.to_ascii_lowercase()),
        value: mechanisms_value.clone(),
        reason: e.to_string(),
    })?;
    if server.mechanisms.iter().any(|m| m == sasl::PLAIN) {
        let module = jaas_config(settings, name, sasl::PLAIN)?.ok_or_else(|| ConfigError {
            key: format!("listener.name.{}.plain.sasl.jaas.config", name.to_ascii_lowercase()),
            value: String::new(),
            reason: format!(
                "listener {name} enables PLAIN: its users are needed, e.g. \
                 listener.name.{}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
                 required user_alice=\"alice-secret\";",
                name.to_ascii_lowercase()
            ),
        })?;
        server.plain_users = module.plain_users();
    }
    if server.mechanisms.iter().any(|m| m == sasl::OAUTHBEARER) {
        server.oauthbearer = Some(crate::oauthbearer::validator(settings, name)?);
    }
    for mechanism in &server.mechanisms {
        let prefixed = format!(
            "listener.name.{}.{}.connections.max.reauth.ms",
            name.to_ascii_lowercase(),
            mechanism.to_ascii_lowercase()
        );
        let (key, value) = match settings.get(&prefixed) {
            Some(v) => (prefixed, v),
            None => match settings.get("connections.max.reauth.ms") {
                Some(v) => ("connections.max.reauth.ms".to_string(), v),
                None => continue,
            },
        };
        let ms = value.trim().parse::<i64>().map_err(|_| ConfigError {
            key,
            value: value.clone(),
            reason: "expected a number of milliseconds".into(),
        })?;
        server.connections_max_reauth_ms.insert(mechanism.clone(), ms);
    }
    Ok(server)
}

/// SCRAM credentials from the metadata image.
pub struct BrokerSaslCallbacks {
    pub broker: Arc<Broker>,
}

impl SaslCallbacks for BrokerSaslCallbacks {
    fn scram_credential(
        &self,
        mechanism: ScramMechanism,
        user: &str,
        extensions: &ScramExtensions,
    ) -> Option<ScramIdentity> {
        let image = self.broker.controller.image();
        if extensions.token_auth() {
            return crate::delegation_tokens::scram_identity(&self.broker, &image, mechanism, user);
        }
        let credential = image.scram_credential(user, mechanism.code())?;
        Some(ScramIdentity {
            credential: vltava_security::sasl::ScramCredential {
                salt: credential.salt.clone(),
                stored_key: credential.stored_key.clone(),
                server_key: credential.server_key.clone(),
                iterations: credential.iterations,
            },
            principal: KafkaPrincipal::user(user),
            expiry_ms: None,
        })
    }
}

/// Failed logins are logged at most this often per window.
const FAILED_LOGIN_LOGS_MAX: u32 = 10;
const FAILED_LOGIN_LOG_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Logs a failed login (user, mechanism, peer; never a password or token),
/// at most [`FAILED_LOGIN_LOGS_MAX`] lines per [`FAILED_LOGIN_LOG_WINDOW`].
pub fn log_failed_login(peer: std::net::SocketAddr, listener: &str, mechanism: &str, user: Option<&str>, reason: &str) {
    static WINDOW: parking_lot::Mutex<Option<(std::time::Instant, u32, u64)>> = parking_lot::Mutex::new(None);
    let now = std::time::Instant::now();
    let (log, suppressed) = {
        let mut w = WINDOW.lock();
        let (start, logged, suppressed) = w.get_or_insert((now, 0, 0));
        if now.duration_since(*start) >= FAILED_LOGIN_LOG_WINDOW {
            let dropped = *suppressed;
            *w = Some((now, 1, 0));
            (true, dropped)
        } else if *logged < FAILED_LOGIN_LOGS_MAX {
            *logged += 1;
            (true, 0)
        } else {
            *suppressed += 1;
            (false, 0)
        }
    };
    if suppressed > 0 {
        tracing::warn!(suppressed, "{suppressed} more failed SASL logins were not logged");
    }
    if log {
        tracing::warn!(%peer, %listener, mechanism, user = user.unwrap_or("-"), reason, "failed SASL authentication");
    }
}

/// The records of `--add-scram` users (written with a new cluster's id).
pub fn bootstrap_records(users: &[vltava_security::sasl::scram::AddScram]) -> Vec<vltava_metadata::MetadataRecord> {
    users.iter().map(|u| scram_record(&u.user, u.mechanism, &u.credential)).collect()
}

/// The metadata record that stores `user`'s credential for `mechanism`.
pub fn scram_record(
    user: &str,
    mechanism: ScramMechanism,
    credential: &vltava_security::sasl::ScramCredential,
) -> vltava_metadata::MetadataRecord {
    vltava_metadata::MetadataRecord::UserScramCredential {
        name: user.to_string(),
        mechanism: mechanism.code(),
        credential: vltava_metadata::ScramCredentialData {
            salt: credential.salt.clone(),
            stored_key: credential.stored_key.clone(),
            server_key: credential.server_key.clone(),
            iterations: credential.iterations,
        },
    }
}
