//! A stateless application: drops blank lines from `--input` and writes the
//! others upper-cased to `--output`, keys kept (the benchmark's stateless case).
//!
//! cargo run --release -p vltava-streams --example filter-map -- \
//!     --brokers 127.0.0.1:9092 --application-id shout --input lines --output shouted

mod common;

use clap::Parser;
use vltava_streams::{Consumed, Produced, Serdes, StreamsBuilder};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: common::Common,
    #[arg(long, default_value = "lines")]
    input: String,
    #[arg(long, default_value = "shouted")]
    output: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let builder = StreamsBuilder::new();
    builder
        .stream(&cli.input, Consumed::with(Serdes::option(Serdes::bytes()), Serdes::string()))?
        .filter(|_, line| !line.trim().is_empty())?
        .map_values(|_, line| line.to_uppercase())?
        .to(&cli.output, Produced::value_serde(Serdes::string()))?;
    common::run(builder.build()?, &cli.common)
}
