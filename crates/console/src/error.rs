//! What goes wrong in the console, and how it is answered: an HTML page for
//! a page route ([`PageError`]), a JSON body for `/api/v1` ([`ApiError`]).
//! Both carry the HTTP status, the Kafka error (name and code) when a Kafka
//! request failed, and a message for a person.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kafka_protocol::error::ResponseError;
use serde::Serialize;

/// One failure of a console request.
#[derive(Debug, Clone)]
pub struct ConsoleError {
    pub status: StatusCode,
    /// The Kafka error code, when a Kafka request answered with one.
    pub kafka_code: Option<i16>,
    pub message: String,
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, kafka_code: None, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A Kafka error `code` (non-zero) with what was being done and the
    /// broker's error message, if any: `context: NAME (code): message`.
    /// The HTTP status follows the error's meaning (404 for unknown
    /// resources, 403 for authorization, 409 for "already exists", 400 for
    /// invalid input, 503 for retriable errors).
    pub fn kafka(code: i16, context: &str, message: Option<&str>) -> Self {
        let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code));
        let name = kafka_error_name(code);
        let detail = match message.filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => error.to_string(),
        };
        Self {
            status: status_of(code, &name, error),
            kafka_code: Some(code),
            message: format!("{context}: {name} ({code}): {detail}"),
        }
    }

    /// `Ok` for error code 0, [`Self::kafka`] otherwise.
    pub fn check(code: i16, context: &str, message: Option<&str>) -> Result<(), Self> {
        if code == 0 {
            Ok(())
        } else {
            Err(Self::kafka(code, context, message))
        }
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`).
pub fn kafka_error_name(code: i16) -> String {
    vltava_protocol::error_name(code)
}

fn status_of(code: i16, name: &str, error: ResponseError) -> StatusCode {
    if name.ends_with("AUTHORIZATION_FAILED") || name == "SASL_AUTHENTICATION_FAILED" {
        StatusCode::FORBIDDEN
    } else if name.starts_with("UNKNOWN_TOPIC") || name == "GROUP_ID_NOT_FOUND" || name == "RESOURCE_NOT_FOUND" {
        StatusCode::NOT_FOUND
    } else if name.ends_with("ALREADY_EXISTS") || name == "NON_EMPTY_GROUP" {
        StatusCode::CONFLICT
    } else if name.starts_with("INVALID_") || name == "POLICY_VIOLATION" || name == "OFFSET_OUT_OF_RANGE" {
        StatusCode::BAD_REQUEST
    } else if error.is_retriable() || code == -1 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// The JSON error body of `/api/v1`: `{"error": "...", "kafka_error":
/// "UNKNOWN_TOPIC_OR_PARTITION", "kafka_error_code": 3}` (the last two
/// only when Kafka answered with an error).
#[derive(Serialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_error_code: Option<i16>,
}

/// A [`ConsoleError`] answered as JSON (`/api/v1`).
#[derive(Debug)]
pub struct ApiError(pub ConsoleError);

impl From<ConsoleError> for ApiError {
    fn from(e: ConsoleError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = ErrorBody {
            error: e.message,
            kafka_error: e.kafka_code.map(kafka_error_name),
            kafka_error_code: e.kafka_code,
        };
        (e.status, Json(body)).into_response()
    }
}

/// A [`ConsoleError`] answered as an HTML page (the page routes).
#[derive(Debug)]
pub struct PageError(pub ConsoleError);

impl From<ConsoleError> for PageError {
    fn from(e: ConsoleError) -> Self {
        Self(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let title = e.status.canonical_reason().unwrap_or("Error");
        let body = crate::layout::error_page(e.status, title, &e.message);
        (e.status, body).into_response()
    }
}

/// What a JSON route returns.
pub type ApiResult<T> = Result<Json<T>, ApiError>;
/// What a page route returns.
pub type PageResult = Result<maud::Markup, PageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_get_kafkas_names_and_a_fitting_status() {
        assert_eq!(kafka_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(kafka_error_name(0), "NONE");
        let e = ConsoleError::kafka(3, "describe topic t", None);
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert!(e.message.starts_with("describe topic t: UNKNOWN_TOPIC_OR_PARTITION (3): "), "{}", e.message);
        assert_eq!(ConsoleError::kafka(29, "x", None).status, StatusCode::FORBIDDEN); // TOPIC_AUTHORIZATION_FAILED
        assert_eq!(ConsoleError::kafka(36, "x", None).status, StatusCode::CONFLICT); // TOPIC_ALREADY_EXISTS
        assert_eq!(ConsoleError::kafka(40, "x", Some("bad")).status, StatusCode::BAD_REQUEST); // INVALID_CONFIG
        assert!(ConsoleError::kafka(40, "x", Some("bad")).message.ends_with(": bad"));
        assert!(ConsoleError::check(0, "x", None).is_ok());
    }
}
