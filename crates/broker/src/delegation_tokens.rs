//! Delegation tokens (KIP-48), as Kafka's DelegationTokenManager and its
//! controller side: the settings (`delegation.token.*`), the token's HMAC
//! (HMAC-SHA512 of the token id keyed by `delegation.token.secret.key`,
//! never stored: every node derives it), and the decisions of Create,
//! Renew and Expire as pure logic over the image and `now`, unit-tested
//! here. The tokens themselves live in the metadata log
//! (`DelegationToken` / `RemoveDelegationToken` records); the active
//! controller removes expired ones every
//! `delegation.token.expiry.check.interval.ms` ([`run_expiry_sweep`]).
//! `handlers/delegation_tokens.rs` answers the four APIs with these.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use vltava_metadata::{DelegationTokenInfo, MetadataImage, MetadataRecord};
use vltava_protocol::ResponseError;
use vltava_security::KafkaPrincipal;

use crate::Broker;

/// `delegation.token.*`, with Kafka's defaults.
#[derive(Clone)]
pub struct TokenSettings {
    /// `delegation.token.secret.key` (or the deprecated
    /// `delegation.token.master.key`): tokens are off without it.
    secret: Option<ring::hmac::Key>,
    /// `delegation.token.max.lifetime.ms`: no renewal goes past it.
    pub max_lifetime_ms: i64,
    /// `delegation.token.expiry.time.ms`: a token's life until renewed.
    pub expiry_time_ms: i64,
    /// `delegation.token.expiry.check.interval.ms`
    pub expiry_check_interval_ms: u64,
}

impl std::fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSettings")
            .field("enabled", &self.enabled())
            .field("max_lifetime_ms", &self.max_lifetime_ms)
            .field("expiry_time_ms", &self.expiry_time_ms)
            .finish()
    }
}

pub const MAX_LIFETIME_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;
pub const EXPIRY_TIME_MS_DEFAULT: i64 = 24 * 3600 * 1000;
pub const EXPIRY_CHECK_INTERVAL_MS_DEFAULT: u64 = 3600 * 1000;

impl TokenSettings {
    /// Reads the keys from the broker's settings; `Err((key, reason))` for a
    /// value Kafka would refuse.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Result<Self, (String, String)> {
        let positive = |key: &str, default: i64| -> Result<i64, (String, String)> {
            match settings.get(key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err((key.to_string(), "expected a number of milliseconds of at least 1".to_string())),
                },
            }
        };
        let secret = settings
            .get("delegation.token.secret.key")
            .or_else(|| settings.get("delegation.token.master.key"))
            .filter(|s| !s.is_empty())
            .map(|s| ring::hmac::Key::new(ring::hmac::HMAC_SHA512, s.as_bytes()));
        Ok(Self {
            secret,
            max_lifetime_ms: positive("delegation.token.max.lifetime.ms", MAX_LIFETIME_MS_DEFAULT)?,
            expiry_time_ms: positive("delegation.token.expiry.time.ms", EXPIRY_TIME_MS_DEFAULT)?,
            expiry_check_interval_ms: positive(
                "delegation.token.expiry.check.interval.ms",
                EXPIRY_CHECK_INTERVAL_MS_DEFAULT as i64,
            )? as u64,
        })
    }

    /// Tokens are on (a secret key is set).
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// The token's HMAC: HMAC-SHA512 of its id, keyed by the secret.
    pub fn hmac(&self, token_id: &str) -> Option<Vec<u8>> {
        self.secret.as_ref().map(|key| ring::hmac::sign(key, token_id.as_bytes()).as_ref().to_vec())
    }

    /// The token's password for SCRAM (`tokenauth=true`): its HMAC in
    /// base64, as Kafka's tools print it.
    pub fn password(&self, token_id: &str) -> Option<String> {
        self.hmac(token_id).map(|h| base64::engine::general_purpose::STANDARD.encode(h))
    }

    /// The token whose HMAC this is (what Renew and Expire name).
    pub fn token_for_hmac<'a>(&self, image: &'a MetadataImage, hmac: &[u8]) -> Option<&'a Arc<DelegationTokenInfo>> {
        let key = self.secret.as_ref()?;
        image.delegation_tokens().find(|t| ring::hmac::verify(key, t.token_id.as_bytes(), hmac).is_ok())
    }
}

/// A refusal: Kafka's error and a message for the log.
pub type Refusal = (ResponseError, String);

/// Whether `principal` is the token's owner, requester or a renewer
/// (Kafka's `TokenInformation.ownerOrRenewer`).
pub fn owner_or_renewer(token: &DelegationTokenInfo, principal: &str) -> bool {
    token.owner == principal || token.requester == principal || token.renewers.iter().any(|r| r == principal)
}

/// A new token's id: 16 random bytes in Kafka's `Uuid` text form.
pub fn new_token_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// CreateDelegationToken: the token to record (owner and renewers already
/// checked to be `User` principals).
pub fn create(
    settings: &TokenSettings,
    token_id: String,
    owner: &KafkaPrincipal,
    requester: &KafkaPrincipal,
    renewers: &[KafkaPrincipal],
    max_lifetime_ms: i64,
    now_ms: i64,
) -> Result<DelegationTokenInfo, Refusal> {
    if !settings.enabled() {
        return Err((ResponseError::DelegationTokenAuthDisabled, "delegation.token.secret.key is not set".into()));
    }
    let lifetime =
        if max_lifetime_ms > 0 { max_lifetime_ms.min(settings.max_lifetime_ms) } else { settings.max_lifetime_ms };
    let max_timestamp_ms = now_ms.saturating_add(lifetime);
    Ok(DelegationTokenInfo {
        token_id,
        owner: owner.to_string(),
        requester: requester.to_string(),
        renewers: renewers.iter().map(ToString::to_string).collect(),
        issue_timestamp_ms: now_ms,
        max_timestamp_ms,
        expiry_timestamp_ms: max_timestamp_ms.min(now_ms.saturating_add(settings.expiry_time_ms)),
    })
}

fn expired(token: &DelegationTokenInfo, now_ms: i64) -> bool {
    token.max_timestamp_ms < now_ms || token.expiry_timestamp_ms < now_ms
}

/// The token an HMAC names, if tokens are on and it exists.
fn find<'a>(
    settings: &TokenSettings,
    image: &'a MetadataImage,
    hmac: &[u8],
) -> Result<&'a Arc<DelegationTokenInfo>, Refusal> {
    if !settings.enabled() {
        return Err((ResponseError::DelegationTokenAuthDisabled, "delegation.token.secret.key is not set".into()));
    }
    settings
        .token_for_hmac(image, hmac)
        .ok_or_else(|| (ResponseError::DelegationTokenNotFound, "no token has this HMAC".into()))
}

/// RenewDelegationToken: the renewed token (its new expiry).
pub fn renew(
    settings: &TokenSettings,
    image: &MetadataImage,
    hmac: &[u8],
    principal: &str,
    renew_period_ms: i64,
    now_ms: i64,
) -> Result<DelegationTokenInfo, Refusal> {
    let token = find(settings, image, hmac)?;
    if expired(token, now_ms) {
        return Err((ResponseError::DelegationTokenExpired, format!("token {} has expired", token.token_id)));
    }
    if !owner_or_renewer(token, principal) {
        return Err((
            ResponseError::DelegationTokenOwnerMismatch,
            format!("{principal} is not an owner or renewer of token {}", token.token_id),
        ));
    }
    let period =
        if renew_period_ms > 0 { renew_period_ms.min(settings.expiry_time_ms) } else { settings.expiry_time_ms };
    let mut renewed = token.as_ref().clone();
    renewed.expiry_timestamp_ms = token.max_timestamp_ms.min(now_ms.saturating_add(period));
    Ok(renewed)
}

/// ExpireDelegationToken: the record to write and the expiry to answer. A
/// negative period expires the token at once (it is removed).
pub fn expire(
    settings: &TokenSettings,
    image: &MetadataImage,
    hmac: &[u8],
    principal: &str,
    expiry_time_period_ms: i64,
    now_ms: i64,
) -> Result<(MetadataRecord, i64), Refusal> {
    let token = find(settings, image, hmac)?;
    if !owner_or_renewer(token, principal) {
        return Err((
            ResponseError::DelegationTokenOwnerMismatch,
            format!("{principal} is not an owner or renewer of token {}", token.token_id),
        ));
    }
    if expired(token, now_ms) {
        return Err((ResponseError::DelegationTokenExpired, format!("token {} has expired", token.token_id)));
    }
    if expiry_time_period_ms < 0 {
        return Ok((MetadataRecord::RemoveDelegationToken { token_id: token.token_id.clone() }, now_ms));
    }
    let mut changed = token.as_ref().clone();
    changed.expiry_timestamp_ms = token.max_timestamp_ms.min(now_ms.saturating_add(expiry_time_period_ms));
    let expiry = changed.expiry_timestamp_ms;
    Ok((MetadataRecord::DelegationToken(changed), expiry))
}

/// Whether DescribeDelegationToken shows this token to `requester`:
/// `owners` (`None`: any) must hold its owner or a renewer, and the
/// requester must be its owner, requester or a renewer (Kafka's
/// `DelegationTokenManager.filterToken` without ACLs).
pub fn describable(token: &DelegationTokenInfo, requester: &str, owners: Option<&[String]>) -> bool {
    let wanted = owners.is_none_or(|owners| owners.iter().any(|o| owner_or_renewer(token, o)));
    wanted && owner_or_renewer(token, requester)
}

/// The ids of tokens past their expiry, to remove.
pub fn expired_tokens(image: &MetadataImage, now_ms: i64) -> Vec<String> {
    image.delegation_tokens().filter(|t| expired(t, now_ms)).map(|t| t.token_id.clone()).collect()
}

/// A token usable to authenticate now: `tokenauth=true` SCRAM logins ask
/// for it by id; the session ends at the token's expiry.
pub fn token_for_login(image: &MetadataImage, token_id: &str, now_ms: i64) -> Option<Arc<DelegationTokenInfo>> {
    image.delegation_token(token_id).filter(|t| !expired(t, now_ms)).cloned()
}

/// The SCRAM identity of a delegation token (`tokenauth=true`): the user
/// name is the token id, the password its HMAC in base64; the principal is
/// the token's owner, marked token-authenticated; the session ends at the
/// token's expiry.
pub fn scram_identity(
    broker: &Broker,
    image: &MetadataImage,
    mechanism: vltava_security::sasl::ScramMechanism,
    token_id: &str,
) -> Option<vltava_security::sasl::ScramIdentity> {
    let token = token_for_login(image, token_id, now_ms())?;
    let password = broker.delegation_tokens.password(token_id)?;
    let mut principal = KafkaPrincipal::parse(&token.owner)?;
    principal.token_authenticated = true;
    Some(vltava_security::sasl::ScramIdentity {
        credential: vltava_security::sasl::ScramCredential::generate(
            mechanism,
            &password,
            None,
            TOKEN_SCRAM_ITERATIONS,
        ),
        principal,
        expiry_ms: Some(token.expiry_timestamp_ms),
    })
}

/// Iterations of the SCRAM credential derived from a token's HMAC (Kafka's
/// token cache uses SCRAM's minimum, 4096).
const TOKEN_SCRAM_ITERATIONS: i32 = 4096;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The active controller removes expired tokens every
/// `delegation.token.expiry.check.interval.ms` (Kafka's expiry sweep).
pub async fn run_expiry_sweep(broker: Arc<Broker>) {
    let settings = &broker.delegation_tokens;
    if !settings.enabled() {
        return;
    }
    let period = Duration::from_millis(settings.expiry_check_interval_ms);
    let mut stopping = broker.stopping.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stopping.changed() => return,
        }
        if !broker.controller.quorum().is_leader() {
            continue;
        }
        let expired = expired_tokens(&broker.controller.image(), now_ms());
        if expired.is_empty() {
            continue;
        }
        tracing::info!(tokens = expired.len(), "removing expired delegation tokens");
        let records = expired.into_iter().map(|token_id| MetadataRecord::RemoveDelegationToken { token_id }).collect();
        if let Err(e) = broker.controller.alter_delegation_tokens(records) {
            tracing::warn!(error = %e.message, "could not remove expired delegation tokens");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: Option<&str>) -> TokenSettings {
        let mut s = BTreeMap::new();
        if let Some(secret) = secret {
            s.insert("delegation.token.master.key".to_string(), secret.to_string());
        }
        s.insert("delegation.token.max.lifetime.ms".into(), "10000".into());
        s.insert("delegation.token.expiry.time.ms".into(), "3000".into());
        TokenSettings::from_settings(&s).unwrap()
    }

    fn user(name: &str) -> KafkaPrincipal {
        KafkaPrincipal::user(name)
    }

    fn image_with(token: &DelegationTokenInfo) -> MetadataImage {
        MetadataImage::default().apply(&[MetadataRecord::DelegationToken(token.clone())])
    }

    #[test]
    fn settings_are_read_with_kafka_defaults_and_refused_when_bad() {
        let s = TokenSettings::from_settings(&BTreeMap::new()).unwrap();
        assert!(!s.enabled());
        assert_eq!(
            (s.max_lifetime_ms, s.expiry_time_ms, s.expiry_check_interval_ms),
            (MAX_LIFETIME_MS_DEFAULT, EXPIRY_TIME_MS_DEFAULT, EXPIRY_CHECK_INTERVAL_MS_DEFAULT)
        );
        let bad: BTreeMap<String, String> =
            [("delegation.token.expiry.time.ms".to_string(), "0".to_string())].into_iter().collect();
        assert_eq!(TokenSettings::from_settings(&bad).unwrap_err().0, "delegation.token.expiry.time.ms");
        let secret: BTreeMap<String, String> =
            [("delegation.token.secret.key".to_string(), "s".to_string())].into_iter().collect();
        assert!(TokenSettings::from_settings(&secret).unwrap().enabled());
    }

    #[test]
    fn the_hmac_is_hmac_sha512_of_the_token_id() {
        let s = settings(Some("key"));
        // HMAC-SHA512(key="key", "The quick brown fox jumps over the lazy dog")
        let expected = "b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb\
                        82f948a549f7b791a5b41915ee4d1ec3935357e4e2317250d0372afa2ebeeb3a";
        let hmac = s.hmac("The quick brown fox jumps over the lazy dog").unwrap();
        let hex: String = hmac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert!(settings(None).hmac("x").is_none());
        assert_eq!(s.password("id").unwrap(), base64::engine::general_purpose::STANDARD.encode(s.hmac("id").unwrap()));
    }

    #[test]
    fn create_caps_lifetimes_and_refuses_without_a_secret() {
        let s = settings(Some("k"));
        let t = create(&s, "t1".into(), &user("alice"), &user("admin"), &[user("bob")], -1, 1000).unwrap();
        assert_eq!((t.issue_timestamp_ms, t.expiry_timestamp_ms, t.max_timestamp_ms), (1000, 4000, 11000));
        assert_eq!((t.owner.as_str(), t.requester.as_str()), ("User:alice", "User:admin"));
        assert_eq!(t.renewers, vec!["User:bob".to_string()]);
        let short = create(&s, "t2".into(), &user("a"), &user("a"), &[], 2000, 1000).unwrap();
        assert_eq!((short.expiry_timestamp_ms, short.max_timestamp_ms), (3000, 3000));
        let long = create(&s, "t3".into(), &user("a"), &user("a"), &[], 99_999, 0).unwrap();
        assert_eq!(long.max_timestamp_ms, 10000, "capped by delegation.token.max.lifetime.ms");
        let off = create(&settings(None), "t".into(), &user("a"), &user("a"), &[], -1, 0).unwrap_err();
        assert_eq!(off.0, ResponseError::DelegationTokenAuthDisabled);
    }

    #[test]
    fn renew_checks_the_hmac_the_principal_and_the_expiry() {
        let s = settings(Some("k"));
        let t = create(&s, "t1".into(), &user("alice"), &user("alice"), &[user("bob")], -1, 1000).unwrap();
        let image = image_with(&t);
        let hmac = s.hmac("t1").unwrap();
        let renewed = renew(&s, &image, &hmac, "User:bob", -1, 2000).unwrap();
        assert_eq!(renewed.expiry_timestamp_ms, 5000);
        assert_eq!(renew(&s, &image, &hmac, "User:alice", 500, 2000).unwrap().expiry_timestamp_ms, 2500);
        let short = create(&s, "t2".into(), &user("alice"), &user("alice"), &[], 4000, 1000).unwrap();
        let short_image = image_with(&short);
        let short_hmac = s.hmac("t2").unwrap();
        assert_eq!(
            renew(&s, &short_image, &short_hmac, "User:alice", -1, 3000).unwrap().expiry_timestamp_ms,
            5000,
            "never past the token's max timestamp"
        );
        let err = |r: Result<DelegationTokenInfo, Refusal>| r.unwrap_err().0;
        assert_eq!(err(renew(&s, &image, &hmac, "User:eve", -1, 2000)), ResponseError::DelegationTokenOwnerMismatch);
        assert_eq!(err(renew(&s, &image, b"nope", "User:alice", -1, 2000)), ResponseError::DelegationTokenNotFound);
        assert_eq!(err(renew(&s, &image, &hmac, "User:alice", -1, 4001)), ResponseError::DelegationTokenExpired);
        let other_secret = settings(Some("other"));
        assert_eq!(
            err(renew(&other_secret, &image, &hmac, "User:alice", -1, 2000)),
            ResponseError::DelegationTokenNotFound,
            "an HMAC made with another secret names nothing"
        );
    }

    #[test]
    fn expire_shortens_or_removes() {
        let s = settings(Some("k"));
        let t = create(&s, "t1".into(), &user("alice"), &user("alice"), &[], -1, 1000).unwrap();
        let image = image_with(&t);
        let hmac = s.hmac("t1").unwrap();
        let (record, expiry) = expire(&s, &image, &hmac, "User:alice", 100, 2000).unwrap();
        assert_eq!(expiry, 2100);
        assert!(matches!(record, MetadataRecord::DelegationToken(ref t) if t.expiry_timestamp_ms == 2100));
        let (record, expiry) = expire(&s, &image, &hmac, "User:alice", -1, 2000).unwrap();
        assert_eq!((record, expiry), (MetadataRecord::RemoveDelegationToken { token_id: "t1".into() }, 2000));
        assert_eq!(
            expire(&s, &image, &hmac, "User:bob", -1, 2000).unwrap_err().0,
            ResponseError::DelegationTokenOwnerMismatch
        );
        assert_eq!(expired_tokens(&image, 4000), Vec::<String>::new());
        assert_eq!(expired_tokens(&image, 4001), vec!["t1".to_string()]);
        assert!(token_for_login(&image, "t1", 4000).is_some());
        assert!(token_for_login(&image, "t1", 4001).is_none());
    }

    #[test]
    fn describe_shows_tokens_to_their_owners_and_renewers() {
        let s = settings(Some("k"));
        let t = create(&s, "t1".into(), &user("alice"), &user("admin"), &[user("bob")], -1, 0).unwrap();
        assert!(describable(&t, "User:alice", None));
        assert!(describable(&t, "User:bob", None));
        assert!(describable(&t, "User:admin", None));
        assert!(!describable(&t, "User:eve", None));
        assert!(describable(&t, "User:bob", Some(&["User:alice".to_string()])));
        assert!(!describable(&t, "User:alice", Some(&["User:carol".to_string()])));
        assert!(!describable(&t, "User:alice", Some(&[])));
        assert_eq!(new_token_id().len(), 22);
    }
}
