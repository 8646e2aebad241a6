//! Word count: reads lines (UTF-8 strings, any key) from `--input`, splits
//! them into lower-case words, counts each word, and writes every new count
//! to `--output`: key the word, value the count as a UTF-8 decimal string
//! (`--value-format long`: as a big-endian 64-bit integer, Kafka's
//! LongSerializer, what Kafka's WordCountDemo writes).
//!
//! cargo run --release -p vltava-streams --example wordcount -- \
//!     --brokers 127.0.0.1:9092 --application-id wordcount --input lines --output counts

mod common;

use clap::Parser;
use vltava_streams::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: common::Common,
    #[arg(long, default_value = "lines")]
    input: String,
    #[arg(long, default_value = "counts")]
    output: String,
    /// How counts are written: `string` (UTF-8 decimal) or `long` (8 bytes big-endian)
    #[arg(long = "value-format", default_value = "string", value_parser = ["string", "long"])]
    value_format: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let builder = StreamsBuilder::new();
    let counts = builder
        .stream(&cli.input, Consumed::with(Serdes::option(Serdes::bytes()), Serdes::string()))?
        .flat_map_values(|_, line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())?
        .group_by(|_, word: &String| word.clone(), Grouped::with(Serdes::string(), Serdes::string()))?
        .count(Materialized::as_store("counts"))?
        .to_stream()?;
    if cli.value_format == "long" {
        counts.to(&cli.output, Produced::with(Serdes::string(), Serdes::option(Serdes::i64())))?;
    } else {
        counts
            .map_values(|_, count: Option<i64>| count.map(|n| n.to_string()))?
            .to(&cli.output, Produced::with(Serdes::string(), Serdes::option(Serdes::string())))?;
    }
    common::run(builder.build()?, &cli.common)
}
