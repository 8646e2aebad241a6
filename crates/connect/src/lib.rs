//! vltava connect (`vltava-connect`): a Kafka Connect-compatible worker.
//! `vltava connect --config connect.properties` starts one; workers with the
//! same `group.id` form a cluster through a Kafka group and keep connector
//! configs, source offsets and statuses in the three topics, in Kafka
//! Connect's formats, so they run against vltava or any Kafka cluster.
//!
//! - [`config`]: properties, worker keys, config definitions and validation.
//! - [`data`]: Connect's schemas, values and records; [`error`].
//! - [`converter`]: bytes <-> Connect data (JSON, String, ByteArray, and
//!   Avro / JSON Schema / Protobuf through a schema registry).
//! - [`transforms`]: Single Message Transforms and predicates.
//! - [`connector`]: the plugin and task interfaces; [`connectors`]: the
//!   built-in ones (file, PostgreSQL, HTTP, object store).
//! - [`runtime`]: the task loops, error handling, exactly-once sources.
//! - [`status`]: states and target states.
//! - [`herder`]: the cluster (assignment, what the REST API asks);
//!   [`cluster`]: group membership; [`store`]: the config and status
//!   topics; [`rest`]: the REST API.

// `Converter::from_connect` is Connect's `fromConnectData`: a conversion that takes the converter
#![allow(clippy::wrong_self_convention)]

pub mod cluster;
pub mod config;
pub mod connector;
pub mod connectors;
pub mod converter;
pub mod data;
pub mod error;
pub mod herder;
pub mod offsets;
pub mod rest;
pub mod runtime;
pub mod status;
pub mod store;
pub mod transforms;

pub use config::WorkerConfig;

/// Runs a worker until SIGINT/SIGTERM: REST API on `listeners`, joins the
/// worker group, runs what it is assigned.
pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    // one TLS provider for every HTTP client (reqwest, object_store): ring
    let _ = rustls::crypto::ring::default_provider().install_default();
    herder::run(config).await
}
