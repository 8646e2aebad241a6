//! `vltava client-metrics create|list|delete`: client-metrics
//! subscriptions (KIP-714), the CLIENT_METRICS config resources, as
//! Kafka's `kafka-client-metrics.sh`. Clients matching a subscription push
//! the metrics it names every `--interval` ms; the broker shows them on
//! `/metrics`. Through [`crate::connection`]: ListConfigResources,
//! DescribeConfigs and IncrementalAlterConfigs on resource type 16.

use kafka_protocol::messages::{
    describe_configs_request, incremental_alter_configs_request, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, ListConfigResourcesRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::client::{self, ClientArgs};
use crate::connection::{self, error_name, BrokerConnection};

const CLIENT_METRICS: i8 = 16;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const KEYS: [&str; 3] = ["metrics", "interval.ms", "match"];

#[derive(clap::Subcommand)]
pub enum ClientMetricsCommand {
    /// Create or change a subscription (only the options given change).
    ///
    /// Examples:
    ///   vltava client-metrics create --name all --metrics '*' --interval 60000
    ///   vltava client-metrics create --name producers --metrics org.apache.kafka.producer. \
    ///       --match 'client_id=orders-.*' --match client_software_name=librdkafka
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Create(CreateArgs),
    /// Show the subscriptions (one, with --name).
    ///
    /// Examples:
    ///   vltava client-metrics list
    ///   vltava client-metrics list --name all --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    List(ListArgs),
    /// Delete a subscription: its clients stop pushing what it asked for.
    ///
    /// Example:
    ///   vltava client-metrics delete --name all
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(DeleteArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The subscription's name.
    #[arg(long)]
    name: String,
    /// Metric name prefixes to push, comma-separated or repeated; `*` for
    /// every metric.
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Push interval in milliseconds (100 to 3600000; Kafka's default 300000).
    #[arg(long, value_name = "MS")]
    interval: Option<i64>,
    /// `selector=regex` a client must match (repeatable): client_id,
    /// client_instance_id, client_software_name, client_software_version,
    /// client_source_address, client_source_port.
    #[arg(long = "match", value_name = "SELECTOR=REGEX")]
    matches: Vec<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this subscription.
    #[arg(long)]
    name: Option<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    #[arg(long)]
    name: String,
}

pub fn run(args: &ClientArgs, cmd: &ClientMetricsCommand) -> anyhow::Result<()> {
    let mut conn = connection::connect_bootstrap(args)?;
    match cmd {
        ClientMetricsCommand::Create(a) => {
            let mut ops = Vec::new();
            if !a.metrics.is_empty() {
                ops.push((KEYS[0], Some(a.metrics.join(","))));
            }
            if let Some(ms) = a.interval {
                ops.push((KEYS[1], Some(ms.to_string())));
            }
            if !a.matches.is_empty() {
                ops.push((KEYS[2], Some(a.matches.join(","))));
            }
            if ops.is_empty() {
                return Err(anyhow::anyhow!("give at least one of --metrics, --interval, --match"));
            }
            alter(&mut conn, &a.name, &ops)?;
            println!("subscription {} set", a.name);
            Ok(())
        }
        ClientMetricsCommand::Delete(a) => {
            let existing = describe(&mut conn, std::slice::from_ref(&a.name))?;
            if existing.first().is_none_or(|(_, configs)| configs.is_empty()) {
                return Err(anyhow::anyhow!("no client metrics subscription named {}", a.name));
            }
            let ops: Vec<(&str, Option<String>)> = KEYS.iter().map(|k| (*k, None)).collect();
            alter(&mut conn, &a.name, &ops)?;
            println!("subscription {} deleted", a.name);
            Ok(())
        }
        ClientMetricsCommand::List(a) => {
            let names = match &a.name {
                Some(n) => vec![n.clone()],
                None => list_names(&mut conn)?,
            };
            let subs: Vec<_> = describe(&mut conn, &names)?.into_iter().filter(|(_, c)| !c.is_empty()).collect();
            if a.json {
                let list: Vec<_> = subs
                    .iter()
                    .map(|(name, configs)| {
                        let configs: serde_json::Map<String, serde_json::Value> =
                            configs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                        json!({"name": name, "configs": configs})
                    })
                    .collect();
                println!("{}", json!({ "subscriptions": list }));
                return Ok(());
            }
            if subs.is_empty() {
                println!("no client metrics subscriptions");
            }
            for (name, configs) in subs {
                let what: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{name}  {}", what.join("  "));
            }
            Ok(())
        }
    }
}

fn failed(conn: &BrokerConnection, code: i16, message: Option<StrBytes>) -> anyhow::Error {
    anyhow::anyhow!("{}: {}{}", conn.address(), error_name(code), message.map(|m| format!(": {m}")).unwrap_or_default())
}

fn alter(conn: &mut BrokerConnection, name: &str, ops: &[(&str, Option<String>)]) -> anyhow::Result<()> {
    alter_resource(conn, CLIENT_METRICS, name, ops)
}

/// IncrementalAlterConfigs on one resource: SET the keys with a value, DELETE the others.
pub(crate) fn alter_resource(
    conn: &mut BrokerConnection,
    resource_type: i8,
    name: &str,
    ops: &[(&str, Option<String>)],
) -> anyhow::Result<()> {
    let configs = ops
        .iter()
        .map(|(key, value)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(if value.is_some() { OP_SET } else { OP_DELETE })
                .with_value(value.clone().map(StrBytes::from_string))
        })
        .collect();
    let resource = incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(configs);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    for r in response.responses {
        if r.error_code != 0 {
            return Err(failed(conn, r.error_code, r.error_message));
        }
    }
    Ok(())
}

fn list_names(conn: &mut BrokerConnection) -> anyhow::Result<Vec<String>> {
    let request = ListConfigResourcesRequest::default().with_resource_types(vec![CLIENT_METRICS]);
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    if response.error_code != 0 {
        return Err(failed(conn, response.error_code, None));
    }
    let mut names: Vec<String> = response.config_resources.into_iter().map(|r| r.resource_name.to_string()).collect();
    names.sort();
    Ok(names)
}

/// A subscription's name and configs.
type Described = (String, Vec<(String, String)>);

/// Each subscription's configs (empty: it does not exist).
fn describe(conn: &mut BrokerConnection, names: &[String]) -> anyhow::Result<Vec<Described>> {
    Ok(describe_resources(conn, CLIENT_METRICS, names)?
        .into_iter()
        .map(|(name, configs)| (name, configs.into_iter().map(|(k, v, _)| (k, v)).collect()))
        .collect())
}

/// A config's name, value and source.
pub(crate) type SourcedConfig = (String, String, i8);

/// DescribeConfigs of resources of one type: each one's keys with their
/// value and source (Kafka's `ConfigSource` code).
pub(crate) fn describe_resources(
    conn: &mut BrokerConnection,
    resource_type: i8,
    names: &[String],
) -> anyhow::Result<Vec<(String, Vec<SourcedConfig>)>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let resources = names
        .iter()
        .map(|n| {
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(n.clone()))
        })
        .collect();
    let (response, _) =
        conn.send(&DescribeConfigsRequest::default().with_resources(resources)).map_err(|e| conn.error(e))?;
    let mut out = Vec::new();
    for r in response.results {
        if r.error_code != 0 {
            return Err(failed(conn, r.error_code, r.error_message));
        }
        let configs = r
            .configs
            .into_iter()
            .map(|c| (c.name.to_string(), c.value.map(|v| v.to_string()).unwrap_or_default(), c.config_source))
            .collect();
        out.push((r.resource_name.to_string(), configs));
    }
    Ok(out)
}
