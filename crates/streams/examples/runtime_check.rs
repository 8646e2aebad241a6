//! A check of the runtime with the Processor API: counts records per key
//! (UTF-8 keys) of `--input` in a persistent, logged key-value store and
//! writes each new count to `--output` (key: the key, value: the count as a
//! big-endian 64-bit integer, Kafka's LongSerializer). Runs until SIGINT or
//! SIGTERM, then closes cleanly (commit, checkpoint, leave the group).
//!
//! cargo run --release -p vltava-streams --example runtime_check -- \
//!     --brokers 127.0.0.1:9092 --application-id check --input in --output out

mod common;

use clap::Parser;
use vltava_streams::{KeyValueStore, Processor, ProcessorContext, Record, Serdes, Stores, Topology};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: common::Common,
    #[arg(long, default_value = "in")]
    input: String,
    #[arg(long, default_value = "out")]
    output: String,
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
    let mut t = Topology::new();
    t.add_source("source", &[cli.input.as_str()], Serdes::string(), Serdes::string())?;
    t.add_processor("count", || Counter { store: None }, &["source"])?;
    t.add_state_store(Stores::key_value("counts", Serdes::string(), Serdes::i64()), &["count"])?;
    t.add_sink("sink", &cli.output, Serdes::string(), Serdes::i64(), &["count"])?;
    common::run(t, &cli.common)
}
