//! UpdateFeatures (KIP-584): each update checked against `features`, then
//! the changes committed together as `FeatureLevel` records (unless
//! `validate_only`). As Kafka's controller, one refused update refuses the
//! request: v2 answers with it as the top-level error, v0-v1 with it for
//! every feature. A feature named twice is INVALID_REQUEST.

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
    let image = broker.controller.image();
    let mut changes = Vec::new();
    let mut refused: Option<(ResponseError, String)> = None;
    for update in &request.feature_updates {
        // v0 has allow_downgrade instead of upgrade_type
        let how = if version == 0 {
            Some(if update.allow_downgrade { UpgradeType::SafeDowngrade } else { UpgradeType::Upgrade })
        } else {
            UpgradeType::from_code(update.upgrade_type)
        };
        let checked = match how {
            Some(how) => {
                features::check_update(&image, &update.feature, update.max_version_level, how, broker.config.node_id)
                    .map_err(|m| (ResponseError::InvalidUpdateVersion, m))
            }
            None => Err((ResponseError::InvalidRequest, format!("Unknown upgrade type {}", update.upgrade_type))),
        };
        match checked {
            Ok(true) => changes.push((update.feature.to_string(), update.max_version_level)),
            Ok(false) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    if refused.is_none() && !changes.is_empty() && !request.validate_only {
        if let Err(e) = broker.controller.set_feature_levels(&changes) {
            refused = Some((e.error, e.message));
        }
    }
    let (code, message) = refused.map_or((0, None), |(e, m)| (e.code(), Some(StrBytes::from_string(m))));
    if version >= 2 {
        return UpdateFeaturesResponse::default().with_error_code(code).with_error_message(message);
    }
    let results = request
        .feature_updates
        .iter()
        .map(|update| {
            UpdatableFeatureResult::default()
                .with_feature(update.feature.clone())
                .with_error_code(code)
                .with_error_message(message.clone())
        })
        .collect();
    UpdateFeaturesResponse::default().with_results(results)
}
