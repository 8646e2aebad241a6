//! What the example binaries share: their command line (`--brokers`,
//! `--application-id`, `--processing-guarantee`, ...) and running a
//! topology until SIGINT/SIGTERM, then closing cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use vltava_streams::{KafkaStreams, StreamsConfig, Topology};

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT...]
    #[arg(long)]
    pub brokers: String,
    /// application.id: the consumer group, the prefix of internal topics
    #[arg(long = "application-id")]
    pub application_id: String,
    /// at_least_once or exactly_once_v2
    #[arg(long = "processing-guarantee", default_value = "at_least_once")]
    pub processing_guarantee: String,
    /// state.dir (default: the system temp dir + /vltava-streams)
    #[arg(long = "state-dir")]
    pub state_dir: Option<String>,
    /// num.stream.threads
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// application.server (HOST:PORT) for interactive queries
    #[arg(long = "application-server")]
    pub application_server: Option<String>,
    /// Any other Kafka Streams or client config, KEY=VALUE (repeatable)
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub extra: Vec<String>,
}

impl Common {
    pub fn config(&self) -> Result<StreamsConfig, Box<dyn std::error::Error>> {
        let threads = self.threads.to_string();
        let mut pairs: Vec<(String, String)> = vec![
            ("application.id".into(), self.application_id.clone()),
            ("bootstrap.servers".into(), self.brokers.clone()),
            ("processing.guarantee".into(), self.processing_guarantee.clone()),
            ("num.stream.threads".into(), threads),
        ];
        if let Some(d) = &self.state_dir {
            pairs.push(("state.dir".into(), d.clone()));
        }
        if let Some(s) = &self.application_server {
            pairs.push(("application.server".into(), s.clone()));
        }
        for kv in &self.extra {
            let (k, v) = kv.split_once('=').ok_or_else(|| format!("--config {kv}: expected KEY=VALUE"))?;
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(StreamsConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?)
    }
}

/// Starts `topology` and runs it until SIGINT or SIGTERM, then closes it
/// (commits, checkpoints, leaves the group). Exits non-zero if it failed.
pub fn run(topology: Topology, common: &Common) -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst))?;
    let mut streams = KafkaStreams::new(topology, common.config()?)?;
    streams.set_state_listener(|old, new| tracing::info!("state {old:?} -> {new:?}"));
    streams.start()?;
    while !stop.load(Ordering::SeqCst) {
        if streams.state() == vltava_streams::StreamsState::Error {
            let _ = streams.close();
            return Err("the streams application failed (see the log above)".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    streams.close()?;
    Ok(())
}
