//! `vltava`: the broker and (later) the command-line tools, in one binary.

mod alloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vltava_broker::config::{parse_properties, BrokerConfig};
use vltava_broker::ShutdownHandle;

#[global_allocator]
static GLOBAL: alloc::GuardedAlloc = alloc::GuardedAlloc;

#[derive(Parser)]
#[command(name = "vltava", version, about = "An event streaming platform that speaks the Apache Kafka protocol")]
struct Cli {
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
    Server(ServerArgs),
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
    /// Any broker config as key=value, e.g. --set auto.create.topics.enable=false. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

fn server_config(args: &ServerArgs) -> anyhow::Result<BrokerConfig> {
    let mut settings = Vec::new();
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        settings.extend(parse_properties(&text));
    }
    for kv in &args.set {
        let (k, v) = kv.split_once('=').with_context(|| format!("--set expects KEY=VALUE, got {kv:?}"))?;
        settings.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(dir) = &args.data_dir {
        settings.push(("log.dirs".into(), dir.display().to_string()));
    }
    if let Some(listen) = &args.listen {
        settings.push(("listeners".into(), listen.clone()));
    }
    if let Some(adv) = &args.advertised_listener {
        settings.push(("advertised.listeners".into(), adv.clone()));
    }
    let mut config = BrokerConfig::default();
    config.apply(&settings)?;
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            let config = server_config(&args)?;
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
    }
}
