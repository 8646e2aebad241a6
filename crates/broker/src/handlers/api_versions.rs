//! ApiVersions: the table in `vltava_protocol::api_versions`.

use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::ApiVersionsResponse;
use vltava_protocol::api_versions::SUPPORTED;
use vltava_protocol::StrBytes;

use crate::features;

pub fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|r| ApiVersion::default().with_api_key(r.key as i16).with_min_version(r.min).with_max_version(r.max))
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}

/// Kafka's rule for `client_software_name` and `_version` (ApiVersions v3+):
/// alphanumerics, with `-` and `.` inside.
pub fn is_valid_software_token(s: &str) -> bool {
    let b = s.as_bytes();
    let inner_ok = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() && b.iter().all(inner_ok),
        _ => false,
    }
}

/// Answers an ApiVersions request: INVALID_REQUEST for v3+ requests whose
/// client software name or version breaks Kafka's rule. v3+ carry the
/// supported and finalized features (from the metadata `image`); their
/// epoch is the metadata offset the broker has applied, as in Kafka's KRaft
/// mode.
pub fn handle(
    request: &kafka_protocol::messages::ApiVersionsRequest,
    version: i16,
    image: &vltava_metadata::MetadataImage,
) -> ApiVersionsResponse {
    if version >= 3
        && !(is_valid_software_token(&request.client_software_name)
            && is_valid_software_token(&request.client_software_version))
    {
        return ApiVersionsResponse::default().with_error_code(vltava_protocol::ResponseError::InvalidRequest.code());
    }
    let supported = features::SUPPORTED
        .iter()
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let finalized = features::finalized(image)
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    response(0)
        .with_supported_features(supported)
        .with_finalized_features_epoch(image.offset as i64)
        .with_finalized_features(finalized)
}

#[cfg(test)]
mod tests {
    use super::is_valid_software_token as ok;

    #[test]
    fn software_tokens() {
        assert!(ok("librdkafka") && ok("apache-kafka-java") && ok("2.12.0") && ok("a"));
        assert!(!ok("") && !ok("bad name!") && !ok("-x") && !ok("x.") && !ok("a_b"));
    }
}
