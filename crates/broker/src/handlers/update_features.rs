//! UpdateFeatures (KIP-584): checked against `features` (see there: every
//! feature is at the only level vltava runs, so a request is accepted only
//! when it changes nothing). v0-v1 answer per feature; v2 answers with the
//! first failure as the top-level error, as Kafka does. A feature named
//! twice is INVALID_REQUEST.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use vltava_protocol::{ResponseError, StrBytes};

use crate::features::{self, UpgradeType};
use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: UpdateFeaturesRequest, version: i16) -> UpdateFeaturesResponse {
    let mut seen = HashSet::new();
    if let Some(twice) = request.feature_updates.iter().find(|u| !seen.insert(u.feature.to_string())) {
        return UpdateFeaturesResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "Feature {} was specified more than once.",
                twice.feature
            ))));
    }
    let results: Vec<UpdatableFeatureResult> = request
        .feature_updates
        .iter()
        .map(|update| {
            // v0 has allow_downgrade instead of upgrade_type
            let how = if version == 0 {
                Some(if update.allow_downgrade { UpgradeType::SafeDowngrade } else { UpgradeType::Upgrade })
            } else {
                UpgradeType::from_code(update.upgrade_type)
            };
            let checked = match how {
                Some(how) => {
                    features::check_update(&update.feature, update.max_version_level, how, broker.config.node_id)
                        .map_err(|m| (ResponseError::InvalidUpdateVersion, m))
                }
                None => Err((ResponseError::InvalidRequest, format!("Unknown upgrade type {}", update.upgrade_type))),
            };
            let result = UpdatableFeatureResult::default().with_feature(update.feature.clone());
            match checked {
                Ok(()) => result,
                Err((error, message)) => {
                    result.with_error_code(error.code()).with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    if version >= 2 {
        let failed = results.iter().find(|r| r.error_code != 0);
        return UpdateFeaturesResponse::default()
            .with_error_code(failed.map_or(0, |r| r.error_code))
            .with_error_message(failed.and_then(|r| r.error_message.clone()));
    }
    UpdateFeaturesResponse::default().with_results(results)
}
