//! `vltava`: the broker and the command-line tools, in one binary.
//!
//! `vltava server` runs a broker; every other command is a Kafka client
//! (librdkafka through the `rdkafka` crate, and `connection.rs` for the few
//! requests librdkafka has no call for), so it works against any
//! Kafka-compatible cluster.

mod acl;
mod alloc;
mod bench;
mod client;
mod client_metrics;
mod cluster;
mod connect;
mod connection;
mod consume;
mod consumer_group;
mod group;
mod group_config;
mod log_dirs;
mod produce;
mod quota;
mod schema;
mod share_group;
mod topic;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vltava_broker::config::{parse_properties, BrokerConfig};
use vltava_broker::ShutdownHandle;

#[global_allocator]
static GLOBAL: alloc::GuardedAlloc = alloc::GuardedAlloc;

#[derive(Parser)]
#[command(
    name = "vltava",
    version,
    about = "An event streaming platform that speaks the Apache Kafka protocol",
    after_help = client::EXIT_CODES_HELP
)]
struct Cli {
    #[command(flatten)]
    client: client::ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no options: 127.0.0.1:9092, data under ./data.
    ///
    /// Examples:
    ///   vltava server
    ///   vltava server --data-dir /var/lib/vltava --listen 0.0.0.0:9092 --advertised-listener kafka1:9092
    ///   vltava server --config server.properties --set num.partitions=3
    #[command(verbatim_doc_comment)]
    Server(ServerArgs),
    /// Create, list, describe, delete and change topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Write records from stdin (or a file) to a topic, one per line.
    ///
    /// Examples:
    ///   printf 'hello\nworld\n' | vltava produce greetings
    ///   printf 'user1:hello\n' | vltava produce greetings --key-sep :
    ///   vltava produce greetings --file lines.txt --header source=import --acks all
    ///   echo '{"key":"k","value":"v","headers":{"h":"1"}}' | vltava produce greetings --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Produce(produce::ProduceArgs),
    /// Read records from a topic and print them.
    ///
    /// Without --group the partitions are assigned directly (no consumer
    /// group is needed); the default start is the end of each partition.
    ///
    /// Examples:
    ///   vltava consume greetings --from-beginning --exit-at-end
    ///   vltava consume greetings --from-beginning -n 10 --format '%k => %v (partition %p, offset %o)\n'
    ///   vltava consume greetings --offset 42 --partition 0 --json
    ///   vltava consume greetings --group billing
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Show the cluster: brokers, controller, cluster id, metadata quorum, feature flags.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Show the brokers' log directories: partition sizes, offset lag, free space.
    #[command(subcommand)]
    LogDirs(log_dirs::LogDirsCommand),
    /// Show and change client quotas (byte rates per user and client id).
    #[command(subcommand)]
    Quota(quota::QuotaCommand),
    /// Create, list and delete ACLs (with authorizer.class.name set).
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Client-metrics subscriptions (KIP-714): which metrics clients push.
    #[command(subcommand)]
    ClientMetrics(client_metrics::ClientMetricsCommand),
    /// Create, list and delete SCRAM users (SASL SCRAM-SHA-256/512).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Register, read, list, delete and check schemas in a schema registry
    /// (`--registry URL`, default http://127.0.0.1:8081).
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Run a Kafka Connect-compatible worker (REST API on `listeners`,
    /// default http://127.0.0.1:8083).
    ///
    /// Examples:
    ///   vltava connect --config connect.properties
    ///   vltava connect --config connect.properties --set listeners=http://0.0.0.0:8084
    #[command(verbatim_doc_comment)]
    Connect(connect::ConnectArgs),
    /// List, create, show, pause, resume, restart and delete connectors on
    /// a Connect worker (`--url`, default http://127.0.0.1:8083).
    #[command(subcommand)]
    Connector(connect::ConnectorCommand),
    /// Measure a Kafka-compatible cluster: produce and consume throughput,
    /// end-to-end latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// A Kafka-style server.properties file (log.dirs, listeners, num.partitions, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (Kafka's log.dirs).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HOST:PORT to listen on (Kafka's listeners).
    #[arg(long)]
    listen: Option<String>,
    /// HOST:PORT clients are told to connect to; defaults to --listen.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Write the client port to this file once connections are accepted
    /// (with --listen HOST:0, the port the system picked).
    #[arg(long, value_name = "PATH")]
    port_file: Option<PathBuf>,
    /// Any broker config as key=value, e.g. --set auto.create.topics.enable=false. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Start even though the metadata log is corrupt before its end, keeping
    /// only the entries before the corruption (what was created after it is
    /// lost). Without it such a node refuses to start.
    #[arg(long)]
    truncate_corrupt_metadata_log: bool,
    /// A SCRAM user a new cluster starts with, as `kafka-storage format
    /// --add-scram`: 'SCRAM-SHA-512=[name=admin,password=admin-secret]'
    /// (also salt=BASE64, iterations=N). Repeatable; applied once, with the
    /// cluster id.
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=..,password=..]")]
    add_scram: Vec<String>,
}

fn server_config(args: &ServerArgs) -> anyhow::Result<BrokerConfig> {
    let mut settings = Vec::new();
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        settings.extend(parse_properties(&text));
    }
    // --set log.dirs=a,b (several directories) wins over --data-dir
    if let Some(dir) = &args.data_dir {
        settings.push(("log.dirs".into(), dir.display().to_string()));
    }
    for kv in &args.set {
        let (k, v) = kv.split_once('=').with_context(|| format!("--set expects KEY=VALUE, got {kv:?}"))?;
        settings.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(listen) = &args.listen {
        settings.push(("listeners".into(), listen.clone()));
    }
    if let Some(adv) = &args.advertised_listener {
        settings.push(("advertised.listeners".into(), adv.clone()));
    }
    let mut config = BrokerConfig::default();
    config.apply(&settings)?;
    config.truncate_corrupt_metadata_log = args.truncate_corrupt_metadata_log;
    config.port_file = args.port_file.clone();
    for spec in &args.add_scram {
        config.bootstrap_scram.push(vltava_security::sasl::scram::AddScram::parse(spec)?);
    }
    Ok(config)
}

fn run_server(args: &ServerArgs) -> anyhow::Result<()> {
    // reloadable: BROKER_LOGGER configs change the levels at runtime
    vltava_broker::log_levels::init();
    let config = server_config(args)?;
    // the web console on the admin listener
    vltava_console::install();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (handle, rx) = ShutdownHandle::new();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("signal handler");
            let mut int = signal(SignalKind::interrupt()).expect("signal handler");
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("received stop signal");
            handle.shutdown();
        });
        vltava_broker::run(config, rx).await
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = &cli.client;
    let result = match &cli.command {
        Command::Server(server) => {
            // As before the client commands existed: `Error: {:?}` and exit 1.
            return match run_server(server) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("Error: {err:?}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Topic(cmd) => topic::run(args, cmd),
        Command::Produce(cmd) => produce::run(args, cmd),
        Command::Consume(cmd) => consume::run(args, cmd),
        Command::Group(cmd) => group::run(args, cmd),
        Command::Cluster(cmd) => cluster::run(args, cmd),
        Command::LogDirs(cmd) => log_dirs::run(args, cmd),
        Command::Quota(cmd) => quota::run(args, cmd),
        Command::Acl(cmd) => acl::run(args, cmd),
        Command::ClientMetrics(cmd) => client_metrics::run(args, cmd),
        Command::User(cmd) => user::run(args, cmd),
        Command::Schema(cmd) => schema::run(args, cmd),
        Command::Connect(cmd) => {
            vltava_broker::log_levels::init();
            connect::run_worker(cmd)
        }
        Command::Connector(cmd) => connect::run(cmd),
        Command::Bench(cmd) => bench::run(args, cmd),
    };
    match result {
        Ok(()) => ExitCode::from(client::EXIT_OK),
        Err(err) => {
            // One line: the error and its context, joined by ": ".
            let line = format!("{err:#}").replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::from(client::exit_code(&err))
        }
    }
}
