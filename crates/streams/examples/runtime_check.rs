//! A check of the runtime with the Processor API: counts records per key
//! (UTF-8 keys) of `--input` in a persistent, logged key-value store and
//! writes each new count to `--output` (key: the key, value: the count as a
//! big-endian 64-bit integer, Kafka's LongSerializer). Runs until SIGINT or
//! SIGTERM, then closes cleanly (commit, checkpoint, leave the group).
//!
//! cargo run --release -p vltava-streams --example runtime_check -- \
//!     --brokers 127.0.0.1:9092 --application-id check --input in --output out

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use vltava_streams::{
    KafkaStreams, KeyValueStore, Processor, ProcessorContext, Record, Serdes, Stores, StreamsConfig, StreamsState,
    Topology,
};

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    brokers: String,
    #[arg(long = "application-id")]
    application_id: String,
    /// at_least_once or exactly_once_v2
    #[arg(long = "processing-guarantee", default_value = "at_least_once")]
    processing_guarantee: String,
    #[arg(long, default_value = "in")]
    input: String,
    #[arg(long, default_value = "out")]
    output: String,
    #[arg(long = "state-dir")]
    state_dir: Option<String>,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long = "application-server")]
    application_server: Option<String>,
    /// Any other config, KEY=VALUE (repeatable)
    #[arg(long = "config", value_name = "KEY=VALUE")]
    extra: Vec<String>,
}

struct Counter {
    store: Option<KeyValueStore<String, i64>>,
}

impl Processor<String, String, String, i64> for Counter {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> vltava_streams::Result<()> {
        self.store = Some(ctx.state_store("counts")?);
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        r: Record<String, String>,
    ) -> vltava_streams::Result<()> {
        let Some(store) = self.store.as_ref() else {
            return Err(vltava_streams::StreamsError::Processing("process before init".into()));
        };
        let n = store.get(&r.key)?.unwrap_or(0) + 1;
        store.put(&r.key, &n)?;
        ctx.forward(Record::new(r.key, n, r.timestamp))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut t = Topology::new();
    t.add_source("source", &[cli.input.as_str()], Serdes::string(), Serdes::string())?;
    t.add_processor("count", || Counter { store: None }, &["source"])?;
    t.add_state_store(Stores::key_value("counts", Serdes::string(), Serdes::i64()), &["count"])?;
    t.add_sink("sink", &cli.output, Serdes::string(), Serdes::i64(), &["count"])?;

    let threads = cli.threads.to_string();
    let mut pairs: Vec<(String, String)> = vec![
        ("application.id".into(), cli.application_id.clone()),
        ("bootstrap.servers".into(), cli.brokers.clone()),
        ("processing.guarantee".into(), cli.processing_guarantee.clone()),
        ("num.stream.threads".into(), threads),
    ];
    if let Some(d) = &cli.state_dir {
        pairs.push(("state.dir".into(), d.clone()));
    }
    if let Some(s) = &cli.application_server {
        pairs.push(("application.server".into(), s.clone()));
    }
    for kv in &cli.extra {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--config {kv}: expected KEY=VALUE"))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    let config = StreamsConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;

    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst))?;
    let mut streams = KafkaStreams::new(t, config)?;
    streams.set_state_listener(|old, new| tracing::info!("state {old:?} -> {new:?}"));
    streams.start()?;
    while !stop.load(Ordering::SeqCst) {
        if streams.state() == StreamsState::Error {
            let _ = streams.close();
            return Err("the streams application failed (see the log above)".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    streams.close()?;
    Ok(())
}
