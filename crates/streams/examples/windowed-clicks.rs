//! Windowed clicks: counts clicks per user (the record key, a UTF-8
//! string) in 1-minute tumbling windows by record timestamp, and writes
//! `<user>@<window start ms>` -> count (big-endian 64-bit) to `--output`.
//! With `--suppress`, each window's count is written once, when the window
//! closes (stream time past its end plus `--grace-ms`); without it, every
//! update is written.
//!
//! cargo run --release -p vltava-streams --example windowed-clicks -- \
//!     --brokers 127.0.0.1:9092 --application-id clicks --input clicks --output clicks-per-minute

mod common;

use std::time::Duration;

use clap::Parser;
use vltava_streams::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder, Suppressed, TimeWindows};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: common::Common,
    #[arg(long, default_value = "clicks")]
    input: String,
    #[arg(long, default_value = "clicks-per-minute")]
    output: String,
    /// How late (by stream time) a click may arrive and still count
    #[arg(long = "grace-ms", default_value_t = 0)]
    grace_ms: u64,
    /// Write each window's final count only, once the window closes
    #[arg(long)]
    suppress: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let builder = StreamsBuilder::new();
    let windows = TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_millis(cli.grace_ms))?;
    let mut counts = builder
        .stream(&cli.input, Consumed::with(Serdes::string(), Serdes::option(Serdes::bytes())))?
        .group_by_key(Grouped::with(Serdes::string(), Serdes::option(Serdes::bytes())))?
        .windowed_by(windows)?
        .count(Materialized::as_store("clicks-per-minute"))?;
    if cli.suppress {
        counts = counts.suppress(Suppressed::until_window_closes())?;
    }
    counts
        .to_stream()?
        .map(|w, count| (format!("{}@{}", w.key, w.window.start_ms), count))?
        .to(&cli.output, Produced::with(Serdes::string(), Serdes::option(Serdes::i64())))?;
    common::run(builder.build()?, &cli.common)
}
