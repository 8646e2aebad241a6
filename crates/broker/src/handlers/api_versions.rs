//! ApiVersions: the table in `vltava_protocol::api_versions`.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;
use vltava_protocol::api_versions::SUPPORTED;

pub fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|r| ApiVersion::default().with_api_key(r.key as i16).with_min_version(r.min).with_max_version(r.max))
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}
