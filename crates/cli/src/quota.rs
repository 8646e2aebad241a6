//! `vltava quota describe|alter`: client quotas (KIP-546) through
//! DescribeClientQuotas / AlterClientQuotas, which librdkafka has no call
//! for, so they go through [`crate::connection`]. Entities as Kafka's
//! `kafka-configs --entity-type users|clients`: `--user NAME`,
//! `--client-id ID` (either or both), `--ip ADDR`; `--user-default`,
//! `--client-id-default` and `--ip-default` name the type's default.

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request, AlterClientQuotasRequest, DescribeClientQuotasRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::client::{self, ClientArgs};
use crate::connection;

#[derive(clap::Subcommand)]
pub enum QuotaCommand {
    /// Show client quotas; with an entity, those of that entity only.
    ///
    /// Examples:
    ///   vltava quota describe
    ///   vltava quota describe --client-id app --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Describe(DescribeArgs),
    /// Set or remove quotas of one entity.
    ///
    /// Examples:
    ///   vltava quota alter --client-id app --producer-byte-rate 1048576
    ///   vltava quota alter --user alice --client-id app --consumer-byte-rate 2097152
    ///   vltava quota alter --client-id-default --producer-byte-rate 10485760
    ///   vltava quota alter --client-id app --delete producer_byte_rate
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Alter(AlterArgs),
}

#[derive(clap::Args, Default)]
pub struct EntityArgs {
    /// A user (the principal's name; ANONYMOUS without authentication).
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The default of every user.
    #[arg(long)]
    user_default: bool,
    /// A client id.
    #[arg(long, conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The default of every client id.
    #[arg(long)]
    client_id_default: bool,
    /// A client IP address (connection_creation_rate).
    #[arg(long, conflicts_with_all = ["ip_default", "user", "user_default", "client_id", "client_id_default"])]
    ip: Option<String>,
    /// The default of every IP address.
    #[arg(long, conflicts_with_all = ["user", "user_default", "client_id", "client_id_default"])]
    ip_default: bool,
}

impl EntityArgs {
    /// `(type, name)` pairs; `None` names the default.
    fn entity(&self) -> Vec<(&'static str, Option<String>)> {
        let mut out = Vec::new();
        if self.user.is_some() || self.user_default {
            out.push(("user", self.user.clone()));
        }
        if self.client_id.is_some() || self.client_id_default {
            out.push(("client-id", self.client_id.clone()));
        }
        if self.ip.is_some() || self.ip_default {
            out.push(("ip", self.ip.clone()));
        }
        out
    }
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    entity: EntityArgs,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct AlterArgs {
    #[command(flatten)]
    entity: EntityArgs,
    /// Bytes per second this entity may produce.
    #[arg(long)]
    producer_byte_rate: Option<f64>,
    /// Bytes per second this entity may fetch.
    #[arg(long)]
    consumer_byte_rate: Option<f64>,
    /// Percentage of a request handler's time this entity may use.
    #[arg(long)]
    request_percentage: Option<f64>,
    /// Partitions per second this entity may create or delete.
    #[arg(long)]
    controller_mutation_rate: Option<f64>,
    /// Connections per second from this IP address.
    #[arg(long)]
    connection_creation_rate: Option<f64>,
    /// A quota key to remove (repeatable).
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
    /// Check the change without making it.
    #[arg(long)]
    validate_only: bool,
}

pub fn run(args: &ClientArgs, cmd: &QuotaCommand) -> anyhow::Result<()> {
    match cmd {
        QuotaCommand::Describe(a) => describe(args, a),
        QuotaCommand::Alter(a) => alter(args, a),
    }
}

/// `(type, name)` pairs of a quota entity; `None` names the default.
type Entity = Vec<(String, Option<String>)>;

fn name_of(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "<default>".to_string())
}

fn describe(args: &ClientArgs, a: &DescribeArgs) -> anyhow::Result<()> {
    let mut conn = connection::connect_bootstrap(args)?;
    let components = a
        .entity
        .entity()
        .into_iter()
        .map(|(t, name)| {
            describe_client_quotas_request::ComponentData::default()
                .with_entity_type(StrBytes::from_static_str(t))
                .with_match_type(if name.is_some() { 0 } else { 1 })
                .with_match(name.map(StrBytes::from_string))
        })
        .collect::<Vec<_>>();
    let strict = !components.is_empty();
    let request = DescribeClientQuotasRequest::default().with_components(components).with_strict(strict);
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    if response.error_code != 0 {
        return Err(connection::refused(conn.address(), response.error_code, response.error_message.as_deref()));
    }
    let mut entries: Vec<(Entity, Vec<(String, f64)>)> = response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let entity =
                e.entity.into_iter().map(|x| (x.entity_type.to_string(), x.entity_name.map(|n| n.to_string())));
            let values = e.values.into_iter().map(|v| (v.key.to_string(), v.value)).collect();
            (entity.collect(), values)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    if a.json {
        let list: Vec<_> = entries
            .iter()
            .map(|(entity, values)| {
                let entity: serde_json::Map<String, serde_json::Value> =
                    entity.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
                let values: serde_json::Map<String, serde_json::Value> =
                    values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({"entity": entity, "quotas": values})
            })
            .collect();
        println!("{}", json!({ "quotas": list }));
        return Ok(());
    }
    if entries.is_empty() {
        println!("no client quotas");
    }
    for (entity, values) in entries {
        let who: Vec<String> = entity.iter().map(|(t, n)| format!("{t}={}", name_of(n))).collect();
        let what: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{}  {}", who.join(" "), what.join(" "));
    }
    Ok(())
}

fn alter(args: &ClientArgs, a: &AlterArgs) -> anyhow::Result<()> {
    let entity = a.entity.entity();
    if entity.is_empty() {
        return Err(anyhow::anyhow!("name an entity: --user, --client-id (or both), --ip, or their --*-default"));
    }
    let mut ops: Vec<alter_client_quotas_request::OpData> = [
        ("producer_byte_rate", a.producer_byte_rate),
        ("consumer_byte_rate", a.consumer_byte_rate),
        ("request_percentage", a.request_percentage),
        ("controller_mutation_rate", a.controller_mutation_rate),
        ("connection_creation_rate", a.connection_creation_rate),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        value.map(|v| {
            alter_client_quotas_request::OpData::default().with_key(StrBytes::from_static_str(key)).with_value(v)
        })
    })
    .collect();
    ops.extend(a.delete.iter().map(|key| {
        alter_client_quotas_request::OpData::default().with_key(StrBytes::from_string(key.clone())).with_remove(true)
    }));
    if ops.is_empty() {
        return Err(anyhow::anyhow!("nothing to change: give a quota (e.g. --producer-byte-rate N) or --delete KEY"));
    }
    let entry = alter_client_quotas_request::EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    alter_client_quotas_request::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(t))
                        .with_entity_name(n.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_ops(ops);
    let mut conn = connection::connect_bootstrap(args)?;
    let request = AlterClientQuotasRequest::default().with_entries(vec![entry]).with_validate_only(a.validate_only);
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    for e in &response.entries {
        if e.error_code != 0 {
            return Err(connection::refused(conn.address(), e.error_code, e.error_message.as_deref()));
        }
    }
    let who: Vec<String> = entity.iter().map(|(t, n)| format!("{t}={}", name_of(n))).collect();
    println!("{} quotas of {}", if a.validate_only { "validated" } else { "altered" }, who.join(" "));
    Ok(())
}
