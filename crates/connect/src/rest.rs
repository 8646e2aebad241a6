//! Kafka Connect's REST API (axum), on the worker's `listeners`.
//!
//! OWNER: herder helper.
