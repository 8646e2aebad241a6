//! `vltava group alter-config|describe-config`: a group's own settings
//! (Kafka's GROUP config resource, type 32), as `kafka-configs.sh
//! --entity-type groups`: session timeouts and heartbeat intervals of
//! consumer and share groups, share-group delivery settings, the
//! dead-letter topic.

use serde_json::json;

use crate::client::ClientArgs;
use crate::client_metrics::{alter_resource, describe_resources};
use crate::connection;

const GROUP: i8 = 32;
/// Kafka's `ConfigSource.GROUP_CONFIG`.
const SOURCE_GROUP: i8 = 8;

#[derive(clap::Args)]
pub struct AlterConfigArgs {
    /// Group id (it need not exist yet).
    group: String,
    /// `key=value` to set (repeatable), e.g. share.record.lock.duration.ms=60000.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A key to remove, back to the broker's value (repeatable).
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
}

#[derive(clap::Args)]
pub struct DescribeConfigArgs {
    /// Group id.
    group: String,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn alter(args: &ClientArgs, a: &AlterConfigArgs) -> anyhow::Result<()> {
    let mut ops: Vec<(&str, Option<String>)> = Vec::new();
    for kv in &a.set {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--set {kv}: expected key=value"))?;
        ops.push((k.trim(), Some(v.trim().to_string())));
    }
    ops.extend(a.delete.iter().map(|k| (k.trim(), None)));
    if ops.is_empty() {
        return Err(anyhow::anyhow!("give at least one --set key=value or --delete key"));
    }
    let mut conn = connection::connect_bootstrap(args)?;
    alter_resource(&mut conn, GROUP, &a.group, &ops)?;
    println!("group {} configs altered", a.group);
    Ok(())
}

pub fn describe(args: &ClientArgs, a: &DescribeConfigArgs) -> anyhow::Result<()> {
    let mut conn = connection::connect_bootstrap(args)?;
    let described = describe_resources(&mut conn, GROUP, std::slice::from_ref(&a.group))?;
    let configs = described.into_iter().next().map(|(_, c)| c).unwrap_or_default();
    if a.json {
        let list: Vec<_> = configs
            .iter()
            .map(|(k, v, source)| json!({"name": k, "value": v, "group_override": *source == SOURCE_GROUP}))
            .collect();
        println!("{}", json!({"group": a.group, "configs": list}));
        return Ok(());
    }
    let width = configs.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (k, v, source) in configs {
        let origin = if source == SOURCE_GROUP { "group" } else { "broker default" };
        println!("{k:width$}  {v}  ({origin})");
    }
    Ok(())
}
