//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554):
//! SCRAM users kept in the metadata log, salted (the client sends a salted
//! password; the log keeps the salt, StoredKey, ServerKey and iterations).
//! Errors as Kafka's: DUPLICATE_RESOURCE for a user named twice,
//! RESOURCE_NOT_FOUND for a credential that does not exist,
//! UNSUPPORTED_SASL_MECHANISM, UNACCEPTABLE_CREDENTIAL for an empty name
//! or iterations outside 4096..=16384.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::{
    alter_user_scram_credentials_response::AlterUserScramCredentialsResult,
    describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult},
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use vltava_metadata::MetadataRecord;
use vltava_protocol::{ResponseError, StrBytes};
use vltava_security::sasl::scram::{self, ScramCredential, ScramMechanism};

use crate::Broker;

pub fn describe(
    broker: &Arc<Broker>,
    r: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> DescribeUserScramCredentialsResponse {
    let image = broker.controller.image();
    let info = |credentials: &BTreeMap<i8, vltava_metadata::ScramCredentialData>| {
        credentials
            .iter()
            .map(|(m, c)| CredentialInfo::default().with_mechanism(*m).with_iterations(c.iterations))
            .collect::<Vec<_>>()
    };
    let results = match r.users.as_ref().filter(|u| !u.is_empty()) {
        None => image
            .scram_users()
            .map(|(name, credentials)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(name.clone()))
                    .with_credential_infos(info(credentials))
            })
            .collect(),
        Some(users) => {
            let mut count: BTreeMap<String, usize> = BTreeMap::new();
            for u in users {
                *count.entry(u.name.to_string()).or_default() += 1;
            }
            let mut seen = BTreeSet::new();
            let mut results = Vec::new();
            for u in users {
                let name = u.name.to_string();
                if !seen.insert(name.clone()) {
                    continue;
                }
                let result = DescribeUserScramCredentialsResult::default().with_user(u.name.clone());
                let with_error = |code: ResponseError, message: String| {
                    result.clone().with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
                };
                results.push(if count[&name] > 1 {
                    with_error(
                        ResponseError::DuplicateResource,
                        format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                        ),
                    )
                } else {
                    match image.scram_users().find(|(n, _)| **n == name) {
                        Some((_, credentials)) => result.with_credential_infos(info(credentials)),
                        None => with_error(
                            ResponseError::ResourceNotFound,
                            format!("Attempt to describe a user credential that does not exist: {name}"),
                        ),
                    }
                });
            }
            results
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn result(user: &str, error: Option<(ResponseError, String)>) -> AlterUserScramCredentialsResult {
    let r = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.to_string()));
    match error {
        None => r,
        Some((code, message)) => {
            r.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
        }
    }
}

fn mechanism(code: i8) -> Result<ScramMechanism, (ResponseError, String)> {
    ScramMechanism::from_code(code)
        .ok_or((ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism".to_string()))
}

pub fn alter(
    broker: &Arc<Broker>,
    r: AlterUserScramCredentialsRequest,
    _version: i16,
) -> AlterUserScramCredentialsResponse {
    let image = broker.controller.image();
    // Kafka: a user may appear once in a request, deletions and upsertions together
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for name in r.deletions.iter().map(|d| &d.name).chain(r.upsertions.iter().map(|u| &u.name)) {
        *times.entry(name.to_string()).or_default() += 1;
    }
    let once = |name: &str| times.get(name) == Some(&1);
    let mut results = Vec::new();
    let mut records = Vec::new();
    let mut accepted = Vec::new();
    for d in r.deletions.iter().filter(|d| once(&d.name)) {
        let name = d.name.to_string();
        let checked = mechanism(d.mechanism).and_then(|m| {
            if name.is_empty() {
                return Err((ResponseError::UnacceptableCredential, "Username must not be empty".into()));
            }
            image.scram_credential(&name, m.code()).map(|_| m).ok_or((
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".into(),
            ))
        });
        match checked {
            Ok(m) => {
                accepted.push(results.len());
                records.push(MetadataRecord::RemoveUserScramCredential { name: name.clone(), mechanism: m.code() });
                results.push(result(&name, None));
            }
            Err(e) => results.push(result(&name, Some(e))),
        }
    }
    for u in r.upsertions.iter().filter(|u| once(&u.name)) {
        let name = u.name.to_string();
        let checked = mechanism(u.mechanism).and_then(|m| {
            if name.is_empty() {
                return Err((ResponseError::UnacceptableCredential, "Username must not be empty".into()));
            }
            if u.iterations < scram::ITERATIONS_MIN {
                return Err((ResponseError::UnacceptableCredential, "Too few iterations".into()));
            }
            if u.iterations > scram::ITERATIONS_MAX {
                return Err((ResponseError::UnacceptableCredential, "Too many iterations".into()));
            }
            if u.salt.is_empty() || u.salted_password.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "Salt and salted password must not be empty".into(),
                ));
            }
            Ok(m)
        });
        match checked {
            Ok(m) => {
                let credential = ScramCredential::from_salted_password(m, &u.salted_password, &u.salt, u.iterations);
                accepted.push(results.len());
                records.push(crate::sasl::scram_record(&name, m, &credential));
                results.push(result(&name, None));
            }
            Err(e) => results.push(result(&name, Some(e))),
        }
    }
    for (name, n) in &times {
        if *n > 1 {
            results.push(result(
                name,
                Some((
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".into(),
                )),
            ));
        }
    }
    if !records.is_empty() {
        if let Err(e) = broker.controller.alter_scram_credentials(records) {
            for i in accepted {
                results[i].error_code = e.error.code();
                results[i].error_message = Some(StrBytes::from_string(e.message.clone()));
            }
        }
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}
