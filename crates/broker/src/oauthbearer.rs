//! The OAUTHBEARER validator of each SASL listener that enables it, built
//! at start from Kafka's keys: `listener.name.<l>.oauthbearer.<key>` first,
//! then `<key>` (`sasl.oauthbearer.*`, `sasl.server.callback.handler.class`).
//! A bad setting or an unreadable JWKS refuses the start; a listener left
//! with unsecured tokens gets a warning. Validation itself is
//! `vltava_security::oauth`.

use std::collections::BTreeMap;
use std::sync::Arc;

use vltava_security::oauth::{OAuthSettings, OAuthValidator};

use crate::config::ConfigError;

/// Reads one key of listener `listener` for OAUTHBEARER.
fn lookup<'a>(settings: &'a BTreeMap<String, String>, listener: &str, key: &str) -> Option<&'a String> {
    let prefixed = format!("listener.name.{}.oauthbearer.{key}", listener.to_ascii_lowercase());
    settings.get(&prefixed).or_else(|| settings.get(key))
}

/// The validator for `listener`, from the broker's settings.
pub fn validator(settings: &BTreeMap<String, String>, listener: &str) -> Result<Arc<OAuthValidator>, ConfigError> {
    let refused = |e: vltava_security::SecurityError| ConfigError {
        key: format!("listener.name.{}.oauthbearer.*", listener.to_ascii_lowercase()),
        value: String::new(),
        reason: format!("listener {listener}: {e}"),
    };
    let oauth = OAuthSettings::from_keys(|key| lookup(settings, listener, key).cloned()).map_err(refused)?;
    if oauth.is_unsecured() {
        tracing::warn!(
            listener,
            "OAUTHBEARER accepts unsecured JWTs (alg none, OAuthBearerUnsecuredValidatorCallbackHandler): anyone can \
             claim any principal; set sasl.oauthbearer.jwks.endpoint.url for signed tokens"
        );
    } else {
        tracing::info!(listener, jwks = ?oauth.jwks_file, "OAUTHBEARER validates signed JWTs against the JWKS");
    }
    Ok(Arc::new(OAuthValidator::new(oauth).map_err(refused)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_keys_win_over_broker_keys() {
        let settings: BTreeMap<String, String> = [
            ("sasl.oauthbearer.sub.claim.name", "client_id"),
            ("listener.name.external.oauthbearer.sasl.oauthbearer.sub.claim.name", "azp"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(validator(&settings, "EXTERNAL").unwrap().settings().sub_claim_name, "azp");
        assert_eq!(validator(&settings, "INTERNAL").unwrap().settings().sub_claim_name, "client_id");
        let bad: BTreeMap<String, String> =
            [("sasl.oauthbearer.jwks.endpoint.url".to_string(), "file:///nonexistent/jwks.json".to_string())]
                .into_iter()
                .collect();
        assert!(validator(&bad, "SASL").unwrap_err().reason.contains("jwks"));
    }
}
