//! HTTP basic authentication on the registry
//! (`schema.registry.authentication=basic`) with the broker's SASL users:
//! the PLAIN users of the SASL listeners' JAAS configs and the SCRAM users
//! of the metadata log (SCRAM-SHA-256 or -512, checked by deriving the
//! stored key from the password). Every request needs a user then (401
//! otherwise, with `WWW-Authenticate`); any authenticated user may do
//! everything (no subject ACLs yet).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use vltava_security::sasl::{ScramCredential, ScramMechanism};
use vltava_security::SecurityProtocol;

use super::api::{ApiError, ApiState};
use crate::Broker;

pub async fn check(State(st): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    if !st.basic_auth {
        return next.run(req).await;
    }
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((user, password)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return unauthorized();
    };
    let (broker, user, password) = (st.broker.clone(), user.to_string(), password.to_string());
    // PBKDF2 takes milliseconds: not on a runtime worker
    let valid = tokio::task::spawn_blocking(move || is_valid(&broker, &user, &password)).await.unwrap_or(false);
    if !valid {
        return unauthorized();
    }
    next.run(req).await
}

fn unauthorized() -> Response {
    let mut response = ApiError::unauthorized().into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"vltava\""));
    response
}

/// The PLAIN users of every SASL listener.
pub fn plain_users(broker: &Broker) -> BTreeMap<String, String> {
    let mut users = BTreeMap::new();
    for l in &broker.config.listeners {
        if !matches!(l.protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
            continue;
        }
        if let Ok(settings) = crate::sasl::listener_settings(&broker.config.static_settings, &l.name) {
            users.extend(settings.plain_users);
        }
    }
    users
}

/// Whether `password` is `user`'s, as a PLAIN user of a SASL listener or a
/// SCRAM user (PBKDF2: call it off the runtime's workers). Also the
/// console's login.
pub fn is_valid(broker: &Broker, user: &str, password: &str) -> bool {
    if plain_users(broker).get(user).is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes())) {
        return true;
    }
    let image = broker.controller.image();
    [ScramMechanism::Sha256, ScramMechanism::Sha512].into_iter().any(|m| {
        image.scram_credential(user, m.code()).is_some_and(|c| {
            let salted = ScramCredential::salted_password(m, password.as_bytes(), &c.salt, c.iterations);
            let derived = ScramCredential::from_salted_password(m, &salted, &c.salt, c.iterations);
            constant_time_eq(&derived.stored_key, &c.stored_key)
        })
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
