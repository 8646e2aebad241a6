//! `vltava topic ...`: create, list, describe, delete, alter-config and
//! add-partitions, through librdkafka's admin client (CreateTopics,
//! DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs) and
//! metadata/ListOffsets for describe, whose replica sizes come from
//! DescribeLogDirs ([`crate::log_dirs`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Context as _};
use futures::executor::block_on;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigResourceResult, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication, TopicResult,
};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use serde_json::json;

use crate::client::human_bytes;
use crate::client::{self, describe_code, CliContext, ClientArgs, NotFound};
use crate::connection;
use crate::log_dirs::ReplicaSizes;

#[derive(clap::Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    ///
    /// Examples:
    ///   vltava topic create orders -p 8 -r 1
    ///   vltava topic create audit -p 3 -c segment.bytes=104857600 -c message.timestamp.type=LogAppendTime
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Create(CreateArgs),
    /// List topics (names, one per line; --long for partitions and replicas).
    ///
    /// Examples:
    ///   vltava topic list
    ///   vltava topic list --long
    ///   vltava topic list --json
    #[command(verbatim_doc_comment)]
    List(ListArgs),
    /// Show a topic's partitions, leaders, replicas, ISR, offsets, size on
    /// disk and configs.
    ///
    /// Sizes come from DescribeLogDirs sent to each replica's broker (SIZE:
    /// BROKER=SIZE per replica, "?" where the broker could not be asked,
    /// which "size on disk" names); configs from DescribeConfigs ("n/a" when
    /// unavailable).
    ///
    /// Examples:
    ///   vltava topic describe orders
    ///   vltava topic describe orders --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Describe(DescribeArgs),
    /// Delete a topic and its data.
    ///
    /// Examples:
    ///   vltava topic delete orders
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(DeleteArgs),
    /// Change a topic's configs (reads them with DescribeConfigs, then writes
    /// the merged set with AlterConfigs).
    ///
    /// Examples:
    ///   vltava topic alter-config orders --set retention.ms=86400000
    ///   vltava topic alter-config orders --delete retention.ms
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    AlterConfig(AlterConfigArgs),
    /// Raise a topic's partition count.
    ///
    /// Examples:
    ///   vltava topic add-partitions orders -p 16
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    AddPartitions(AddPartitionsArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Topic name.
    name: String,
    /// Partitions (default: the broker's num.partitions).
    #[arg(short = 'p', long, default_value_t = -1, allow_negative_numbers = true)]
    partitions: i32,
    /// Replication factor (default: the broker's default.replication.factor).
    #[arg(short = 'r', long = "replication-factor", default_value_t = -1, allow_negative_numbers = true)]
    replication_factor: i32,
    /// A topic config, e.g. -c segment.bytes=1048576. Repeatable.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// Succeed without change when the topic already exists.
    #[arg(long)]
    if_not_exists: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// A table with partitions and replication factor.
    #[arg(short = 'l', long)]
    long: bool,
    /// One JSON array on stdout.
    #[arg(long, conflicts_with = "long")]
    json: bool,
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    /// Topic name.
    name: String,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// Topic name.
    name: String,
    /// Succeed when the topic does not exist.
    #[arg(long)]
    if_exists: bool,
}

#[derive(clap::Args)]
pub struct AlterConfigArgs {
    /// Topic name.
    name: String,
    /// Set a config, e.g. --set retention.ms=86400000. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Return a config to its default. Repeatable.
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
}

#[derive(clap::Args)]
pub struct AddPartitionsArgs {
    /// Topic name.
    name: String,
    /// The new total number of partitions.
    #[arg(short = 'p', long)]
    partitions: usize,
}

pub fn run(args: &ClientArgs, cmd: &TopicCommand) -> anyhow::Result<()> {
    match cmd {
        TopicCommand::Create(a) => create(args, a),
        TopicCommand::List(a) => list(args, a),
        TopicCommand::Describe(a) => describe(args, a),
        TopicCommand::Delete(a) => delete(args, a),
        TopicCommand::AlterConfig(a) => alter_config(args, a),
        TopicCommand::AddPartitions(a) => add_partitions(args, a),
    }
}

/// An admin client that has already reached the cluster once (so an
/// unreachable broker fails fast with one line), and that cluster's metadata.
pub struct Admin {
    pub client: AdminClient<CliContext>,
    pub options: AdminOptions,
}

impl Admin {
    pub fn connect(args: &ClientArgs) -> anyhow::Result<(Admin, Metadata)> {
        let config = args.config(&[("allow.auto.create.topics", "false")])?;
        let client: AdminClient<CliContext> = client::create(&config, CliContext::new(args.verbose))?;
        let md = client::fetch_metadata(client.inner(), &client.inner().context().sink, args, None)?;
        let options = AdminOptions::new().request_timeout(Some(args.timeout())).operation_timeout(Some(args.timeout()));
        Ok((Admin { client, options }, md))
    }

    /// The error of a whole admin request (`api` is the Kafka request), in one line.
    pub fn request_error(&self, what: &str, api: &str, err: KafkaError) -> anyhow::Error {
        match client::error_code(&err) {
            Some(code) if client::is_unsupported(code) => {
                anyhow!("{what}: the broker does not support {api} ({code})")
            }
            Some(code) => anyhow!("{what}: {}", describe_code(code)),
            None => anyhow!("{what}: {err}"),
        }
    }
}

/// Turns per-topic admin results into `Ok` or the first error; `missing_ok`
/// and `exists_ok` say which codes count as success.
fn check_topic_results(
    what: &str,
    results: Vec<TopicResult>,
    missing_ok: bool,
    exists_ok: bool,
) -> anyhow::Result<Vec<(String, Option<RDKafkaErrorCode>)>> {
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok(name) => out.push((name, None)),
            Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) if missing_ok => {
                out.push((name, Some(RDKafkaErrorCode::UnknownTopicOrPartition)))
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) if exists_ok => {
                out.push((name, Some(RDKafkaErrorCode::TopicAlreadyExists)))
            }
            Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                return Err(NotFound(format!("{what} {name:?}: topic does not exist")).into())
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                return Err(anyhow!("{what} {name:?}: topic already exists"))
            }
            Err((name, code)) => return Err(anyhow!("{what} {name:?}: {}", describe_code(code))),
        }
    }
    Ok(out)
}

fn create(args: &ClientArgs, a: &CreateArgs) -> anyhow::Result<()> {
    let (admin, _) = Admin::connect(args)?;
    let mut new_topic = NewTopic::new(&a.name, a.partitions, TopicReplication::Fixed(a.replication_factor));
    for kv in &a.configs {
        let (k, v) = client::parse_key_value(kv).context("-c expects KEY=VALUE")?;
        new_topic = new_topic.set(k, v);
    }
    let results = block_on(admin.client.create_topics([&new_topic], &admin.options))
        .map_err(|e| admin.request_error("create topic", "CreateTopics", e))?;
    for (name, code) in check_topic_results("create topic", results, false, a.if_not_exists)? {
        match code {
            Some(_) => println!("topic {name:?} already exists"),
            None => println!("created topic {name:?}"),
        }
    }
    Ok(())
}

/// Replication factor of a topic as metadata shows it (replicas of partition 0).
fn replication_factor(t: &rdkafka::metadata::MetadataTopic) -> usize {
    t.partitions().iter().map(|p| p.replicas().len()).max().unwrap_or(0)
}

fn list(args: &ClientArgs, a: &ListArgs) -> anyhow::Result<()> {
    let (_admin, md) = Admin::connect(args)?;
    let mut topics: Vec<_> = md.topics().iter().filter(|t| t.error().is_none()).collect();
    topics.sort_by(|x, y| x.name().cmp(y.name()));
    if a.json {
        let rows: Vec<_> = topics
            .iter()
            .map(|t| {
                json!({"name": t.name(), "partitions": t.partitions().len(), "replication_factor": replication_factor(t)})
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else if a.long {
        let width = topics.iter().map(|t| t.name().len()).max().unwrap_or(0).max(4);
        println!("{:<width$}  PARTITIONS  REPLICAS", "NAME");
        for t in topics {
            println!("{:<width$}  {:>10}  {:>8}", t.name(), t.partitions().len(), replication_factor(t));
        }
    } else {
        for t in topics {
            println!("{}", t.name());
        }
    }
    Ok(())
}

/// What describe found about one partition.
struct PartitionRow {
    id: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// (log start offset, high watermark), or the error from ListOffsets.
    offsets: Result<(i64, i64), String>,
}

/// Non-default configs of a topic, or why they are not available.
fn non_default_configs(admin: &Admin, topic: &str) -> Result<BTreeMap<String, String>, String> {
    let spec = ResourceSpecifier::Topic(topic);
    let results: Vec<ConfigResourceResult> = match block_on(admin.client.describe_configs([&spec], &admin.options)) {
        Ok(r) => r,
        Err(e) => return Err(unavailable(client::error_code(&e), "DescribeConfigs")),
    };
    match results.into_iter().next() {
        Some(Ok(resource)) => Ok(resource
            .entries
            .into_iter()
            .filter(|e| !e.is_default)
            .map(|e| {
                let value = if e.is_sensitive { "(sensitive)".into() } else { e.value.unwrap_or_default() };
                (e.name, value)
            })
            .collect()),
        Some(Err(code)) => Err(unavailable(Some(code), "DescribeConfigs")),
        None => Err("empty DescribeConfigs answer".into()),
    }
}

/// Why a request the broker did not answer usefully gave nothing.
fn unavailable(code: Option<RDKafkaErrorCode>, api: &str) -> String {
    match code {
        Some(c) if client::is_unsupported(c) => format!("the broker does not support {api}"),
        Some(c) => format!("{api}: {c}"),
        None => format!("{api} failed"),
    }
}

fn describe(args: &ClientArgs, a: &DescribeArgs) -> anyhow::Result<()> {
    let (admin, md) = Admin::connect(args)?;
    client::topic_partitions(&md, &a.name)?;
    let topic = md.topics().iter().find(|t| t.name() == a.name).expect("checked above");
    let mut rows: Vec<PartitionRow> = topic
        .partitions()
        .iter()
        .map(|p| PartitionRow {
            id: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            offsets: Err(String::new()),
        })
        .collect();
    rows.sort_by_key(|r| r.id);
    let watermarks = args.metadata_consumer()?;
    for row in &mut rows {
        row.offsets = watermarks
            .client()
            .fetch_watermarks(&a.name, row.id, args.timeout())
            .map_err(|e| client::describe_kafka_error(&e));
    }
    let configs = non_default_configs(&admin, &a.name);
    let sizes = replica_sizes(args, &a.name, &rows);
    let size_total: i64 =
        rows.iter().flat_map(|r| r.replicas.iter().filter_map(|b| sizes.replica(*b, r.id).ok())).sum();
    let size_failures = sizes.failures();

    if a.json {
        let partitions: Vec<_> = rows
            .iter()
            .map(|r| {
                let (low, high, err) = match &r.offsets {
                    Ok((l, h)) => (json!(l), json!(h), serde_json::Value::Null),
                    Err(e) => (serde_json::Value::Null, serde_json::Value::Null, json!(e)),
                };
                let replica_sizes: Vec<_> = r
                    .replicas
                    .iter()
                    .map(|b| match sizes.replica(*b, r.id) {
                        Ok(bytes) => json!({"broker": b, "size_bytes": bytes, "error": null}),
                        Err(why) => json!({"broker": b, "size_bytes": null, "error": why}),
                    })
                    .collect();
                json!({"partition": r.id, "leader": r.leader, "replicas": r.replicas, "isr": r.isr,
                       "log_start_offset": low, "high_watermark": high, "offsets_error": err,
                       "replica_sizes": replica_sizes})
            })
            .collect();
        let out = json!({
            "name": a.name,
            "partitions": partitions,
            "replication_factor": replication_factor(topic),
            "size_bytes": size_total,
            "configs": match &configs { Ok(c) => json!(c), Err(_) => serde_json::Value::Null },
            "configs_error": match &configs { Ok(_) => serde_json::Value::Null, Err(e) => json!(e) },
            "size_error": if size_failures.is_empty() { serde_json::Value::Null } else { json!(size_failures.join("; ")) },
        });
        println!("{out}");
        return Ok(());
    }

    println!("topic:              {}", a.name);
    println!("partitions:         {}", rows.len());
    println!("replication factor: {}", replication_factor(topic));
    if size_failures.is_empty() {
        println!("size on disk:       {} (all replicas)", human_bytes(size_total));
    } else {
        println!("size on disk:       at least {} (unknown on {})", human_bytes(size_total), size_failures.join("; "));
    }
    match &configs {
        Ok(c) if c.is_empty() => println!("configs:            (all defaults)"),
        Ok(c) => {
            let text: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("configs:            {}", text.join(", "));
        }
        Err(e) => println!("configs:            n/a ({e})"),
    }
    println!();
    println!(
        "{:>9}  {:>6}  {:<10}  {:<10}  {:>12}  {:>14}  {:>10}  SIZE",
        "PARTITION", "LEADER", "REPLICAS", "ISR", "START-OFFSET", "HIGH-WATERMARK", "RECORDS"
    );
    let list = |v: &[i32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    for r in &rows {
        let (low, high, count) = match &r.offsets {
            Ok((l, h)) => (l.to_string(), h.to_string(), (h - l).to_string()),
            Err(e) => (format!("n/a ({e})"), "n/a".into(), "n/a".into()),
        };
        let size: Vec<String> = r
            .replicas
            .iter()
            .map(|b| match sizes.replica(*b, r.id) {
                Ok(bytes) => format!("{b}={}", human_bytes(bytes)),
                Err(_) => format!("{b}=?"),
            })
            .collect();
        println!(
            "{:>9}  {:>6}  {:<10}  {:<10}  {:>12}  {:>14}  {:>10}  {}",
            r.id,
            r.leader,
            list(&r.replicas),
            list(&r.isr),
            low,
            high,
            count,
            size.join(",")
        );
    }
    Ok(())
}

/// The sizes of the topic's replicas, asked of every replica broker (fenced
/// ones too: a broker whose log dir failed is fenced).
fn replica_sizes(args: &ClientArgs, topic: &str, rows: &[PartitionRow]) -> ReplicaSizes {
    let replica_brokers: BTreeSet<i32> = rows.iter().flat_map(|r| r.replicas.iter().copied()).collect();
    let partitions = rows.iter().map(|r| r.id).collect();
    let brokers = connection::connect_bootstrap(args).and_then(|mut conn| connection::brokers(&mut conn));
    match brokers {
        Ok(brokers) => match crate::connection::Security::of(args) {
            Ok(security) => {
                ReplicaSizes::of_topic(&brokers, &replica_brokers, topic, partitions, args.timeout(), &security)
            }
            Err(e) => ReplicaSizes::unknown(&replica_brokers, &format!("{e:#}")),
        },
        Err(e) => ReplicaSizes::unknown(&replica_brokers, &format!("{e:#}")),
    }
}

fn delete(args: &ClientArgs, a: &DeleteArgs) -> anyhow::Result<()> {
    let (admin, md) = Admin::connect(args)?;
    if !a.if_exists {
        // Say "not found" even when the broker's answer would be less clear.
        client::topic_partitions(&md, &a.name)?;
    }
    let results = block_on(admin.client.delete_topics(&[&a.name], &admin.options))
        .map_err(|e| admin.request_error("delete topic", "DeleteTopics", e))?;
    for (name, code) in check_topic_results("delete topic", results, a.if_exists, false)? {
        match code {
            Some(_) => println!("topic {name:?} does not exist"),
            None => println!("deleted topic {name:?}"),
        }
    }
    Ok(())
}

fn alter_config(args: &ClientArgs, a: &AlterConfigArgs) -> anyhow::Result<()> {
    if a.set.is_empty() && a.delete.is_empty() {
        return Err(anyhow!("nothing to change: give --set KEY=VALUE or --delete KEY"));
    }
    let (admin, md) = Admin::connect(args)?;
    client::topic_partitions(&md, &a.name)?;
    // AlterConfigs replaces the whole set: start from the current non-defaults.
    let mut configs = non_default_configs(&admin, &a.name)
        .map_err(|why| anyhow!("alter-config {:?}: cannot read the current configs: {why}", a.name))?;
    for key in &a.delete {
        configs.remove(key);
    }
    for kv in &a.set {
        let (k, v) = client::parse_key_value(kv).context("--set expects KEY=VALUE")?;
        configs.insert(k.to_string(), v.to_string());
    }
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&a.name));
    for (k, v) in &configs {
        alter = alter.set(k, v);
    }
    let results = block_on(admin.client.alter_configs([&alter], &admin.options))
        .map_err(|e| admin.request_error("alter-config", "AlterConfigs", e))?;
    for r in results {
        if let Err((_, code)) = r {
            return Err(anyhow!("alter-config {:?}: {}", a.name, describe_code(code)));
        }
    }
    // rdkafka 0.39 drops AlterConfigs' per-resource errors (INVALID_CONFIG
    // and the like), so read the configs back to know whether they applied.
    let now = non_default_configs(&admin, &a.name)
        .map_err(|why| anyhow!("alter-config {:?}: cannot read the configs back: {why}", a.name))?;
    for (k, v) in &configs {
        let applied = now.get(k).is_some_and(|cur| cur == v || cur == "(sensitive)");
        if !applied {
            return Err(anyhow!(
                "alter-config {:?}: the broker did not apply {k}={v} (unknown config or invalid value?)",
                a.name
            ));
        }
    }
    for k in &a.delete {
        if now.contains_key(k) {
            return Err(anyhow!("alter-config {:?}: the broker kept {k}", a.name));
        }
    }
    println!("updated configs of topic {:?}", a.name);
    Ok(())
}

fn add_partitions(args: &ClientArgs, a: &AddPartitionsArgs) -> anyhow::Result<()> {
    let (admin, md) = Admin::connect(args)?;
    let current = client::topic_partitions(&md, &a.name)?.len();
    if a.partitions <= current {
        return Err(anyhow!(
            "topic {:?} has {current} partitions; -p gives the new total, which must be larger",
            a.name
        ));
    }
    let spec = NewPartitions::new(&a.name, a.partitions);
    let results = block_on(admin.client.create_partitions([&spec], &admin.options))
        .map_err(|e| admin.request_error("add-partitions", "CreatePartitions", e))?;
    check_topic_results("add-partitions", results, false, false)?;
    println!("topic {:?} now has {} partitions", a.name, a.partitions);
    Ok(())
}
