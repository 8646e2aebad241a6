//! OAUTHBEARER (RFC 7628, KIP-255/KIP-768) on the server side: the
//! client's initial response parsed, and its token validated as Kafka's
//! broker does.
//!
//! - With `sasl.oauthbearer.jwks.endpoint.url` set (or the listener's
//!   `oauthbearer.sasl.server.callback.handler.class` naming Kafka's
//!   `OAuthBearerValidatorCallbackHandler`), a token must be a JWS signed by
//!   a key of that JWKS (`file:` URLs; the file is read again when it
//!   changes, checked at most once a second, and when a token names an
//!   unknown key id; at the latest every
//!   `sasl.oauthbearer.jwks.endpoint.refresh.ms`), with `exp`, the subject
//!   claim (`sasl.oauthbearer.sub.claim.name`, `sub`), and the expected
//!   issuer and audience when configured, within
//!   `sasl.oauthbearer.clock.skew.seconds`.
//! - Otherwise tokens are Kafka's unsecured JWTs (`alg` `none`,
//!   `OAuthBearerUnsecuredValidatorCallbackHandler`): what librdkafka's
//!   `enable.sasl.oauthbearer.unsecure.jwt` and Java's
//!   `unsecuredLoginStringClaim_sub` send. Anyone can forge those: for
//!   tests and development only (a warning says so at start).
//!
//! The principal is `User:<subject>`; the session lasts until the token's
//! `exp` (KIP-368). A refusal answers Kafka's `{"status":"invalid_token"}`
//! challenge, and the reason goes to the broker's log.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::Value;

use crate::SecurityError;

/// Kafka's class names for the two validators.
pub const VALIDATOR_CLASS: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
pub const UNSECURED_VALIDATOR_CLASS: &str =
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// The server message of a refused token (Kafka's
/// `OAuthBearerSaslServer`); the client answers it with `%x01` and the
/// authentication then fails.
pub const INVALID_TOKEN_CHALLENGE: &[u8] = br#"{"status":"invalid_token"}"#;

/// The JWKS is looked at again at most this often.
const JWKS_FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Bounds a JWKS file and a token.
const JWKS_FILE_BYTES_MAX: u64 = 4 << 20;
const TOKEN_BYTES_MAX: usize = 64 << 10;

/// One listener's OAUTHBEARER settings (`sasl.oauthbearer.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// `Some`: signed tokens checked against this JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms` (1 hour).
    pub jwks_refresh: Duration,
    /// `sasl.oauthbearer.expected.issuer`
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.expected.audience` (a comma-separated list).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.sub.claim.name` (`sub`).
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.scope.claim.name` (`scope`).
    pub scope_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (30).
    pub clock_skew: Duration,
}

impl OAuthSettings {
    /// Reads the keys through `get` (the broker resolves listener
    /// prefixes). A JWKS URL that is not `file:` is refused.
    pub fn from_keys(get: impl Fn(&str) -> Option<String>) -> Result<Self, SecurityError> {
        let number = |key: &str, default: u64| -> Result<u64, SecurityError> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| SecurityError::new(format!("{key}={v}: expected a non-negative number"))),
            }
        };
        let handler = get("sasl.server.callback.handler.class").filter(|c| !c.trim().is_empty());
        let url = get("sasl.oauthbearer.jwks.endpoint.url").filter(|u| !u.trim().is_empty());
        let jwks_file = match (&url, handler.as_deref().map(str::trim)) {
            (Some(url), _) => Some(jwks_path(url.trim())?),
            (None, Some(VALIDATOR_CLASS)) => {
                return Err(SecurityError::new(format!(
                    "sasl.server.callback.handler.class={VALIDATOR_CLASS} needs sasl.oauthbearer.jwks.endpoint.url"
                )))
            }
            (None, Some(UNSECURED_VALIDATOR_CLASS)) | (None, None) => None,
            (None, Some(other)) => {
                return Err(SecurityError::new(format!(
                    "sasl.server.callback.handler.class={other}: OAUTHBEARER validates with \
                     {VALIDATOR_CLASS} or {UNSECURED_VALIDATOR_CLASS} only"
                )))
            }
        };
        Ok(Self {
            jwks_file,
            jwks_refresh: Duration::from_millis(number("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?),
            expected_issuer: get("sasl.oauthbearer.expected.issuer").filter(|s| !s.trim().is_empty()),
            expected_audience: get("sasl.oauthbearer.expected.audience")
                .map(|a| a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            sub_claim_name: get("sasl.oauthbearer.sub.claim.name").unwrap_or_else(|| "sub".into()),
            scope_claim_name: get("sasl.oauthbearer.scope.claim.name").unwrap_or_else(|| "scope".into()),
            clock_skew: Duration::from_secs(number("sasl.oauthbearer.clock.skew.seconds", 30)?),
        })
    }

    /// Unsecured tokens (no signature) are accepted.
    pub fn is_unsecured(&self) -> bool {
        self.jwks_file.is_none()
    }
}

/// `file:/path` or `file:///path`.
fn jwks_path(url: &str) -> Result<PathBuf, SecurityError> {
    let Some(rest) = url.strip_prefix("file:") else {
        return Err(SecurityError::new(format!(
            "sasl.oauthbearer.jwks.endpoint.url={url}: only file: URLs are supported (serve the JWKS as a file)"
        )));
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err(SecurityError::new(format!("sasl.oauthbearer.jwks.endpoint.url={url}: expected file:///path")));
    }
    Ok(PathBuf::from(path))
}

/// A validated token: who it is and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    /// The subject claim: the principal's name.
    pub principal_name: String,
    /// `exp`, in epoch milliseconds: the session's end.
    pub expiry_ms: i64,
    pub scopes: Vec<String>,
}

/// The JWKS as last read, and when that file was last looked at.
struct JwksCache {
    keys: JwkSet,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
    loaded: Instant,
}

/// Validates tokens for one listener.
pub struct OAuthValidator {
    settings: OAuthSettings,
    jwks: Option<Mutex<JwksCache>>,
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read_jwks(path: &std::path::Path) -> Result<JwkSet, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if len > JWKS_FILE_BYTES_MAX {
        return Err(format!("{}: a JWKS of {len} bytes is too large", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a JWKS: {e}", path.display()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl std::fmt::Debug for OAuthValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthValidator").field("settings", &self.settings).finish()
    }
}

impl OAuthValidator {
    /// Reads the JWKS now (a missing or bad one refuses the start).
    pub fn new(settings: OAuthSettings) -> Result<Self, SecurityError> {
        let jwks = match &settings.jwks_file {
            None => None,
            Some(path) => {
                let keys = read_jwks(path).map_err(|e| SecurityError::new(format!("sasl.oauthbearer.jwks: {e}")))?;
                let now = Instant::now();
                Some(Mutex::new(JwksCache { keys, stamp: file_stamp(path), checked: now, loaded: now }))
            }
        };
        Ok(Self { settings, jwks })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// The token's subject and expiry, or why it is refused.
    pub fn validate(&self, token: &str) -> Result<ValidToken, String> {
        self.validate_at(token, now_ms())
    }

    pub fn validate_at(&self, token: &str, now_ms: i64) -> Result<ValidToken, String> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(format!("a token of {} bytes is too large", token.len()));
        }
        let claims = match &self.jwks {
            None => unsecured_claims(token)?,
            Some(jwks) => self.signed_claims(jwks, token)?,
        };
        self.check_claims(&claims, now_ms)
    }

    /// The current keys: the file is read again when it changed (looked at
    /// at most once a second), when `refresh` elapsed, or when `force`.
    fn keys(&self, cache: &Mutex<JwksCache>, force: bool) -> JwkSet {
        let path = self.settings.jwks_file.as_ref().expect("a JWKS validator has a file");
        let mut c = cache.lock();
        let now = Instant::now();
        let due = now.duration_since(c.loaded) >= self.settings.jwks_refresh;
        if force || due || now.duration_since(c.checked) >= JWKS_FILE_CHECK_INTERVAL {
            c.checked = now;
            let stamp = file_stamp(path);
            if force || due || stamp != c.stamp {
                match read_jwks(path) {
                    Ok(keys) => {
                        c.keys = keys;
                        c.stamp = stamp;
                        c.loaded = now;
                    }
                    // keep the keys we have: a half-written file must not
                    // lock everyone out
                    Err(e) => tracing::warn!(error = %e, "JWKS not reloaded"),
                }
            }
        }
        c.keys.clone()
    }

    fn signed_claims(&self, cache: &Mutex<JwksCache>, token: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(format!(
                "algorithm {:?} is not allowed: tokens must be signed with a key of the JWKS",
                header.alg
            ));
        }
        let find = |keys: &JwkSet| -> Option<Jwk> {
            match &header.kid {
                Some(kid) => keys.find(kid).cloned(),
                None if keys.keys.len() == 1 => keys.keys.first().cloned(),
                None => None,
            }
        };
        let jwk = match find(&self.keys(cache, false)) {
            Some(jwk) => jwk,
            // a key rotated in: read the JWKS again before refusing
            None => find(&self.keys(cache, true)).ok_or_else(|| match &header.kid {
                Some(kid) => format!("no key with id {kid} in the JWKS"),
                None => "the token names no key id and the JWKS holds several keys".to_string(),
            })?,
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable JWKS key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        // time claims are checked below, with the clock skew, as Kafka does
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature".to_string(),
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                format!("algorithm {:?} does not match the key", header.alg)
            }
            _ => format!("invalid token: {e}"),
        })?;
        Ok(data.claims)
    }

    fn check_claims(&self, claims: &Value, now_ms: i64) -> Result<ValidToken, String> {
        let s = &self.settings;
        let skew_ms = s.clock_skew.as_millis() as i64;
        let seconds = |name: &str| -> Result<Option<i64>, String> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(|secs| Some((secs * 1000.0) as i64))
                    .ok_or_else(|| format!("claim {name} is not a number")),
            }
        };
        let expiry_ms = seconds("exp")?.ok_or("the token has no exp claim")?;
        if expiry_ms + skew_ms <= now_ms {
            return Err(format!("the token expired at {expiry_ms} (now {now_ms})"));
        }
        if let Some(nbf) = seconds("nbf")? {
            if nbf - skew_ms > now_ms {
                return Err(format!("the token is not valid before {nbf} (now {now_ms})"));
            }
        }
        if let Some(iat) = seconds("iat")? {
            if iat - skew_ms > now_ms {
                return Err(format!("the token was issued in the future ({iat}, now {now_ms})"));
            }
        }
        if self.jwks.is_some() {
            if let Some(issuer) = &s.expected_issuer {
                if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                    return Err(format!("issuer {:?} is not the expected {issuer}", claims.get("iss")));
                }
            }
            if !s.expected_audience.is_empty() {
                let audiences: Vec<&str> = match claims.get("aud") {
                    Some(Value::String(a)) => vec![a.as_str()],
                    Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !audiences.iter().any(|a| s.expected_audience.iter().any(|e| e == a)) {
                    return Err(format!("audience {audiences:?} is not one of {:?}", s.expected_audience));
                }
            }
        }
        let principal_name = match claims.get(&s.sub_claim_name) {
            Some(Value::String(sub)) if !sub.trim().is_empty() => sub.clone(),
            _ => return Err(format!("the token has no {} claim", s.sub_claim_name)),
        };
        let scopes = match claims.get(&s.scope_claim_name) {
            Some(Value::String(scope)) => scope.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => vec![],
        };
        Ok(ValidToken { principal_name, expiry_ms, scopes })
    }
}

/// The subject a client's first message claims, unverified: for the log of
/// a failed login (never the token itself).
pub fn claimed_subject(message: &[u8], sub_claim_name: &str) -> Option<String> {
    let token = ClientInitialResponse::parse(message).ok()?.token;
    let claims = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get(sub_claim_name)?.as_str().map(|s| s.chars().take(256).collect())
}

/// An unsecured JWT's claims: `base64url(header).base64url(claims).` with
/// `"alg":"none"` and no signature.
fn unsecured_claims(token: &str) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err("malformed token: expected header.claims.signature".into());
    }
    if !parts[2].is_empty() {
        return Err("an unsecured token must have no signature".into());
    }
    let decode = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|e| format!("malformed token {what}: {e}"))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("malformed token {what}: {e}"))?;
        if !value.is_object() {
            return Err(format!("malformed token {what}: not a JSON object"));
        }
        Ok(value)
    };
    let header = decode(parts[0], "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("none") {
        return Err("an unsecured token must have alg none".into());
    }
    decode(parts[1], "claims")
}

/// The client's first message (RFC 7628 section 3.1):
/// `gs2-header %x01 auth=Bearer <token> %x01 (key=value %x01)* %x01`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitialResponse {
    pub authzid: Option<String>,
    pub token: String,
    /// SASL extensions (KIP-342), `auth` excluded.
    pub extensions: Vec<(String, String)>,
}

impl ClientInitialResponse {
    pub fn parse(message: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(message).map_err(|_| "the message is not UTF-8".to_string())?;
        let (gs2, rest) = text.split_once('\u{1}').ok_or("no key/value separator")?;
        let mut gs2_parts = gs2.split(',');
        let (flag, authz) = (gs2_parts.next(), gs2_parts.next());
        if !matches!(flag, Some("n") | Some("y")) || gs2_parts.next() != Some("") || gs2_parts.next().is_some() {
            return Err(format!("unexpected GS2 header {gs2:?}"));
        }
        let authzid = match authz {
            Some("") => None,
            Some(a) => Some(a.strip_prefix("a=").ok_or_else(|| format!("bad authzid {a:?}"))?.to_string()),
            None => return Err(format!("unexpected GS2 header {gs2:?}")),
        };
        let body = rest.strip_suffix("\u{1}\u{1}").ok_or("the message does not end with two separators")?;
        let mut token = None;
        let mut extensions = Vec::new();
        for kv in body.split('\u{1}') {
            let (key, value) = kv.split_once('=').ok_or_else(|| format!("bad key/value {kv:?}"))?;
            if key == "auth" {
                let (scheme, t) = value.split_once(' ').ok_or("auth without a Bearer token")?;
                if !scheme.eq_ignore_ascii_case("bearer") || t.trim().is_empty() {
                    return Err("auth without a Bearer token".into());
                }
                token = Some(t.trim().to_string());
            } else {
                extensions.push((key.to_string(), value.to_string()));
            }
        }
        Ok(Self { authzid, token: token.ok_or("no auth key")?, extensions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use serde_json::json;

    const NOW_MS: i64 = 1_800_000_000_000;
    const NOW_S: i64 = NOW_MS / 1000;

    struct Issuer {
        kid: String,
        encoding: EncodingKey,
        jwk: Value,
    }

    fn issuer(kid: &str) -> Issuer {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let public = private.to_public_key();
        Issuer {
            kid: kid.into(),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be())}),
        }
    }

    impl Issuer {
        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(self.kid.clone());
            encode(&header, claims, &self.encoding).unwrap()
        }
    }

    fn write_jwks(path: &std::path::Path, issuers: &[&Issuer]) {
        let keys: Vec<Value> = issuers.iter().map(|i| i.jwk.clone()).collect();
        std::fs::write(path, json!({ "keys": keys }).to_string()).unwrap();
    }

    fn settings(jwks: Option<&std::path::Path>, extra: &[(&str, &str)]) -> OAuthSettings {
        let mut keys: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(path) = jwks {
            keys.push(("sasl.oauthbearer.jwks.endpoint.url".into(), format!("file://{}", path.display())));
        }
        OAuthSettings::from_keys(|k| keys.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())).unwrap()
    }

    fn claims(sub: &str, exp: i64) -> Value {
        json!({"sub": sub, "exp": exp, "iat": NOW_S - 10, "iss": "https://idp.example", "aud": ["kafka"], "scope": "read write"})
    }

    #[test]
    fn signed_tokens_are_checked_against_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let good = issuer("k1");
        let other = issuer("k2");
        write_jwks(&jwks, &[&good]);
        let v = OAuthValidator::new(settings(
            Some(&jwks),
            &[
                ("sasl.oauthbearer.expected.issuer", "https://idp.example"),
                ("sasl.oauthbearer.expected.audience", "kafka,other"),
            ],
        ))
        .unwrap();
        let ok = v.validate_at(&good.sign(&claims("alice", NOW_S + 60)), NOW_MS).unwrap();
        assert_eq!(ok.principal_name, "alice");
        assert_eq!(ok.expiry_ms, (NOW_S + 60) * 1000);
        assert_eq!(ok.scopes, vec!["read".to_string(), "write".to_string()]);

        let refused = |token: String| v.validate_at(&token, NOW_MS).unwrap_err();
        assert!(refused(good.sign(&claims("alice", NOW_S - 60))).contains("expired"));
        // within the 30 s clock skew
        assert!(v.validate_at(&good.sign(&claims("alice", NOW_S - 20)), NOW_MS).is_ok());
        let mut early = claims("alice", NOW_S + 600);
        early["nbf"] = json!(NOW_S + 300);
        assert!(refused(good.sign(&early)).contains("not valid before"));
        let mut wrong_iss = claims("alice", NOW_S + 60);
        wrong_iss["iss"] = json!("https://evil.example");
        assert!(refused(good.sign(&wrong_iss)).contains("issuer"));
        let mut wrong_aud = claims("alice", NOW_S + 60);
        wrong_aud["aud"] = json!("somewhere");
        assert!(refused(good.sign(&wrong_aud)).contains("audience"));
        let mut no_exp = claims("alice", 0);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(refused(good.sign(&no_exp)).contains("exp"));
        // signed by a key the JWKS does not hold, with its kid or ours
        assert!(refused(other.sign(&claims("alice", NOW_S + 60))).contains("no key with id k2"));
        let forged = Issuer { kid: "k1".into(), ..issuer("k1") };
        assert!(refused(forged.sign(&claims("alice", NOW_S + 60))).contains("bad signature"));
        // a tampered payload
        let token = good.sign(&claims("alice", NOW_S + 60));
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims("admin", NOW_S + 60).to_string());
        assert!(refused(parts.join(".")).contains("bad signature"));
        // unsecured tokens are refused once a JWKS is configured
        assert!(refused(unsecured("alice", NOW_S + 60)).contains("malformed"));
        assert!(refused("garbage".into()).contains("malformed"));

        // a key rotated into the file is picked up
        write_jwks(&jwks, &[&good, &other]);
        assert_eq!(v.validate_at(&other.sign(&claims("bob", NOW_S + 60)), NOW_MS).unwrap().principal_name, "bob");
    }

    #[test]
    fn the_subject_claim_name_is_configurable() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let good = issuer("k1");
        write_jwks(&jwks, &[&good]);
        let v =
            OAuthValidator::new(settings(Some(&jwks), &[("sasl.oauthbearer.sub.claim.name", "client_id")])).unwrap();
        let mut c = claims("ignored", NOW_S + 60);
        c["client_id"] = json!("svc-1");
        assert_eq!(v.validate_at(&good.sign(&c), NOW_MS).unwrap().principal_name, "svc-1");
        assert!(v.validate_at(&good.sign(&claims("x", NOW_S + 60)), NOW_MS).unwrap_err().contains("client_id"));
    }

    fn unsecured(sub: &str, exp: i64) -> String {
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", b64(json!({"alg": "none"})), b64(json!({"sub": sub, "exp": exp, "iat": exp - 120})))
    }

    #[test]
    fn unsecured_tokens_need_alg_none_a_subject_and_a_future_expiry() {
        let v = OAuthValidator::new(settings(None, &[])).unwrap();
        assert!(v.settings().is_unsecured());
        assert_eq!(v.validate_at(&unsecured("alice", NOW_S + 60), NOW_MS).unwrap().principal_name, "alice");
        assert!(v.validate_at(&unsecured("alice", NOW_S - 3600), NOW_MS).unwrap_err().contains("expired"));
        let signed = format!("{}sig", unsecured("alice", NOW_S + 60));
        assert!(v.validate_at(&signed, NOW_MS).is_err());
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let hs = format!("{}.{}.", b64(json!({"alg": "HS256"})), b64(json!({"sub": "a", "exp": NOW_S + 60})));
        assert!(v.validate_at(&hs, NOW_MS).unwrap_err().contains("alg none"));
        let no_sub = format!("{}.{}.", b64(json!({"alg": "none"})), b64(json!({"exp": NOW_S + 60})));
        assert!(v.validate_at(&no_sub, NOW_MS).unwrap_err().contains("sub"));
    }

    #[test]
    fn settings_choose_the_validator_and_refuse_what_cannot_work() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string())
        };
        assert!(OAuthSettings::from_keys(get(&[])).unwrap().is_unsecured());
        assert!(OAuthSettings::from_keys(get(&[("sasl.server.callback.handler.class", VALIDATOR_CLASS)])).is_err());
        assert!(OAuthSettings::from_keys(get(&[("sasl.oauthbearer.jwks.endpoint.url", "https://idp/jwks")])).is_err());
        let s =
            OAuthSettings::from_keys(get(&[("sasl.oauthbearer.jwks.endpoint.url", "file:///etc/jwks.json")])).unwrap();
        assert_eq!(s.jwks_file, Some(PathBuf::from("/etc/jwks.json")));
        assert_eq!(s.clock_skew, Duration::from_secs(30));
        assert!(OAuthValidator::new(s).is_err(), "a missing JWKS file refuses the start");
    }

    #[test]
    fn client_messages_are_parsed_and_garbage_refused() {
        let m = ClientInitialResponse::parse(b"n,,\x01auth=Bearer abc.def.\x01traceId=7\x01\x01").unwrap();
        assert_eq!((m.authzid, m.token.as_str()), (None, "abc.def."));
        assert_eq!(m.extensions, vec![("traceId".to_string(), "7".to_string())]);
        let m = ClientInitialResponse::parse(b"n,a=alice,\x01auth=Bearer t\x01\x01").unwrap();
        assert_eq!(m.authzid.as_deref(), Some("alice"));
        for bad in [
            &b""[..],
            b"\x01",
            b"n,,\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"x,,\x01auth=Bearer t\x01\x01",
            b"\xff\xfe",
        ] {
            assert!(ClientInitialResponse::parse(bad).is_err(), "{bad:?}");
        }
        let expired = format!("n,,\u{1}auth=Bearer {}\u{1}\u{1}", unsecured("alice", 1));
        assert_eq!(claimed_subject(expired.as_bytes(), "sub").as_deref(), Some("alice"));
        assert_eq!(claimed_subject(b"junk", "sub"), None);
    }
}
