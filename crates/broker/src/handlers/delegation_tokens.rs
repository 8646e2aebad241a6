//! CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken and
//! DescribeDelegationToken (KIP-48), decided by `delegation_tokens` and
//! written to the metadata log through the controller. As in Kafka, token
//! requests are refused (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED) on
//! PLAINTEXT and one-way TLS connections and on those authenticated with a
//! token; only a token's owner, requester and renewers may renew, expire
//! or describe it, and a principal creates tokens for itself only (what an
//! authorizer widens that as Kafka's: CREATE_TOKENS on the owner's USER
//! resource to create another's token; DESCRIBE on the token or
//! DESCRIBE_TOKENS on its owner to describe it).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    describe_delegation_token_response, CreateDelegationTokenRequest, CreateDelegationTokenResponse,
    DescribeDelegationTokenRequest, DescribeDelegationTokenResponse, ExpireDelegationTokenRequest,
    ExpireDelegationTokenResponse, RenewDelegationTokenRequest, RenewDelegationTokenResponse,
};
use vltava_metadata::{AclOperation, DelegationTokenInfo, MetadataRecord, ResourceType};
use vltava_protocol::{ResponseError, StrBytes};
use vltava_security::KafkaPrincipal;

use super::Session;
use crate::delegation_tokens::{self as tokens, now_ms};
use crate::Broker;

/// Kafka's `allowTokenRequests`: not on PLAINTEXT, not on one-way TLS (an
/// SSL connection without a client certificate), not on a connection
/// authenticated with a delegation token.
fn requests_allowed(broker: &Broker, session: &Session) -> bool {
    use vltava_security::SecurityProtocol;
    let protocol = broker.config.listeners.iter().find(|l| *l.name == *session.listener).map(|l| l.protocol);
    let anonymous = *session.principal == KafkaPrincipal::anonymous();
    let secured = match protocol {
        Some(SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) => true,
        Some(SecurityProtocol::Ssl) => !anonymous,
        Some(SecurityProtocol::Plaintext) | None => false,
    };
    secured && !session.principal.token_authenticated
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `Type:name` split as Kafka's `SecurityUtils.parseKafkaPrincipal`.
fn split_principal(principal: &str) -> (&str, &str) {
    principal.split_once(':').unwrap_or(("User", principal))
}

pub fn create(
    broker: &Arc<Broker>,
    session: &Session,
    r: CreateDelegationTokenRequest,
    _version: i16,
) -> CreateDelegationTokenResponse {
    let requester = session.principal.as_ref().clone();
    let owner = match (&r.owner_principal_type, &r.owner_principal_name) {
        (Some(t), Some(n)) if !n.is_empty() => {
            KafkaPrincipal { principal_type: t.to_string(), name: n.to_string(), token_authenticated: false }
        }
        _ => requester.clone(),
    };
    let answer = |error: Option<ResponseError>| {
        CreateDelegationTokenResponse::default()
            .with_error_code(error.map_or(0, |e| e.code()))
            .with_principal_type(str(&owner.principal_type))
            .with_principal_name(str(&owner.name))
            .with_token_requester_principal_type(str(&requester.principal_type))
            .with_token_requester_principal_name(str(&requester.name))
            .with_token_id(StrBytes::default())
            .with_hmac(Bytes::new())
    };
    if !requests_allowed(broker, session) {
        return answer(Some(ResponseError::DelegationTokenRequestNotAllowed));
    }
    // another owner's token needs CREATE_TOKENS on that USER (so never
    // without an authorizer)
    if owner != requester
        && !(broker.config.authorizer.enabled
            && broker.authorize(session, AclOperation::CreateTokens, ResourceType::User, &owner.to_string()))
    {
        return answer(Some(ResponseError::DelegationTokenAuthorizationFailed));
    }
    if owner.principal_type != KafkaPrincipal::USER_TYPE
        || r.renewers.iter().any(|p| p.principal_type.as_str() != KafkaPrincipal::USER_TYPE)
    {
        return answer(Some(ResponseError::InvalidPrincipalType));
    }
    let renewers: Vec<KafkaPrincipal> = r
        .renewers
        .iter()
        .map(|p| KafkaPrincipal {
            principal_type: p.principal_type.to_string(),
            name: p.principal_name.to_string(),
            token_authenticated: false,
        })
        .collect();
    let settings = &broker.delegation_tokens;
    let token = match tokens::create(
        settings,
        tokens::new_token_id(),
        &owner,
        &requester,
        &renewers,
        r.max_lifetime_ms,
        now_ms(),
    ) {
        Ok(t) => t,
        Err((error, message)) => {
            tracing::debug!(%message, "CreateDelegationToken refused");
            return answer(Some(error));
        }
    };
    if let Err(e) = broker.controller.alter_delegation_tokens(vec![MetadataRecord::DelegationToken(token.clone())]) {
        return answer(Some(e.error));
    }
    tracing::info!(token_id = %token.token_id, owner = %token.owner, "delegation token created");
    let hmac = settings.hmac(&token.token_id).unwrap_or_default();
    answer(None)
        .with_issue_timestamp_ms(token.issue_timestamp_ms)
        .with_expiry_timestamp_ms(token.expiry_timestamp_ms)
        .with_max_timestamp_ms(token.max_timestamp_ms)
        .with_token_id(str(&token.token_id))
        .with_hmac(Bytes::from(hmac))
}

/// Renew and Expire's shared shape: the decision, then its record.
fn change(
    broker: &Arc<Broker>,
    session: &Session,
    api: &str,
    decide: impl FnOnce(
        &tokens::TokenSettings,
        &vltava_metadata::MetadataImage,
        &str,
    ) -> Result<(MetadataRecord, i64), tokens::Refusal>,
) -> (i16, i64) {
    if !requests_allowed(broker, session) {
        return (ResponseError::DelegationTokenRequestNotAllowed.code(), -1);
    }
    let principal = session.principal.to_string();
    let (record, expiry) = match decide(&broker.delegation_tokens, &broker.controller.image(), &principal) {
        Ok(decided) => decided,
        Err((error, message)) => {
            tracing::debug!(%message, api, "delegation token request refused");
            return (error.code(), -1);
        }
    };
    match broker.controller.alter_delegation_tokens(vec![record]) {
        Ok(()) => (0, expiry),
        Err(e) => (e.error.code(), -1),
    }
}

pub fn renew(
    broker: &Arc<Broker>,
    session: &Session,
    r: RenewDelegationTokenRequest,
    _version: i16,
) -> RenewDelegationTokenResponse {
    let (error, expiry) = change(broker, session, "RenewDelegationToken", |settings, image, principal| {
        let renewed = tokens::renew(settings, image, &r.hmac, principal, r.renew_period_ms, now_ms())?;
        let expiry = renewed.expiry_timestamp_ms;
        Ok((MetadataRecord::DelegationToken(renewed), expiry))
    });
    RenewDelegationTokenResponse::default().with_error_code(error).with_expiry_timestamp_ms(expiry)
}

pub fn expire(
    broker: &Arc<Broker>,
    session: &Session,
    r: ExpireDelegationTokenRequest,
    _version: i16,
) -> ExpireDelegationTokenResponse {
    let (error, expiry) = change(broker, session, "ExpireDelegationToken", |settings, image, principal| {
        tokens::expire(settings, image, &r.hmac, principal, r.expiry_time_period_ms, now_ms())
    });
    ExpireDelegationTokenResponse::default().with_error_code(error).with_expiry_timestamp_ms(expiry)
}

fn described(broker: &Broker, t: &DelegationTokenInfo) -> describe_delegation_token_response::DescribedDelegationToken {
    let (owner_type, owner_name) = split_principal(&t.owner);
    let (requester_type, requester_name) = split_principal(&t.requester);
    describe_delegation_token_response::DescribedDelegationToken::default()
        .with_principal_type(str(owner_type))
        .with_principal_name(str(owner_name))
        .with_token_requester_principal_type(str(requester_type))
        .with_token_requester_principal_name(str(requester_name))
        .with_issue_timestamp(t.issue_timestamp_ms)
        .with_expiry_timestamp(t.expiry_timestamp_ms)
        .with_max_timestamp(t.max_timestamp_ms)
        .with_token_id(str(&t.token_id))
        .with_hmac(Bytes::from(broker.delegation_tokens.hmac(&t.token_id).unwrap_or_default()))
        .with_renewers(
            t.renewers
                .iter()
                .map(|r| {
                    let (rt, rn) = split_principal(r);
                    describe_delegation_token_response::DescribedDelegationTokenRenewer::default()
                        .with_principal_type(str(rt))
                        .with_principal_name(str(rn))
                })
                .collect(),
        )
}

pub fn describe(
    broker: &Arc<Broker>,
    session: &Session,
    r: DescribeDelegationTokenRequest,
    _version: i16,
) -> DescribeDelegationTokenResponse {
    let refused = |error: ResponseError| DescribeDelegationTokenResponse::default().with_error_code(error.code());
    if !requests_allowed(broker, session) {
        return refused(ResponseError::DelegationTokenRequestNotAllowed);
    }
    if !broker.delegation_tokens.enabled() {
        return refused(ResponseError::DelegationTokenAuthDisabled);
    }
    let owners: Option<Vec<String>> = r
        .owners
        .as_ref()
        .map(|owners| owners.iter().map(|o| format!("{}:{}", o.principal_type, o.principal_name)).collect());
    let requester = session.principal.to_string();
    let image = broker.controller.image();
    let tokens = image
        .delegation_tokens()
        .filter(|t| {
            // with an authorizer, also tokens the principal may DESCRIBE, or
            // whose owner it may DESCRIBE_TOKENS of
            tokens::describable(t, &requester, owners.as_deref())
                || (broker.config.authorizer.enabled
                    && tokens::describable(t, &t.owner, owners.as_deref())
                    && (broker.authorize(session, AclOperation::Describe, ResourceType::DelegationToken, &t.token_id)
                        || broker.authorize(session, AclOperation::DescribeTokens, ResourceType::User, &t.owner)))
        })
        .map(|t| described(broker, t))
        .collect();
    DescribeDelegationTokenResponse::default().with_tokens(tokens)
}
