//! Restoration benchmark: fills a changelog topic (one partition, compacted)
//! with `--bytes` of keys and values (distinct keys, in a scattered order as
//! a real application writes them), then times restoring it into a
//! persistent store (a redb file), as a task does on start or after it moved
//! (`state::restore`: read to the end in batches, one store transaction per
//! batch, then a durable flush). Prints one summary line; `seconds` covers
//! everything from the end-offset query to the flush's fsync.
//!
//! ```sh
//! cargo run --release -p vltava-streams --example restore_bench -- \
//!     --brokers 127.0.0.1:9092 --bytes 1073741824 --value-size 1000
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use vltava_streams::state::memory::MemoryStore;
use vltava_streams::state::redb_store::RedbStore;
use vltava_streams::state::restore::{restore_consumer_config, restore_with, RestoreOptions};
use vltava_streams::state::{ByteStore, StoreInstance};

#[derive(Parser, Debug)]
#[command(about = "Times restoring a state store from its changelog topic")]
struct Args {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...]
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Bytes of keys and values to write to the changelog (1 GiB: 1073741824)
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Bytes per value (keys are 16 bytes)
    #[arg(long, default_value_t = 1000)]
    value_size: usize,
    /// The changelog topic (default: restore-bench-<pid>-changelog, created)
    #[arg(long)]
    topic: Option<String>,
    /// Restore what the topic holds without writing to it first
    #[arg(long)]
    skip_fill: bool,
    /// The store: redb (persistent, what is measured) or memory (to see the consumer's share)
    #[arg(long, default_value = "redb", value_parser = ["redb", "memory"])]
    store: String,
    /// Restoration batch size in bytes (one store transaction each)
    #[arg(long, default_value_t = RestoreOptions::default().batch_bytes)]
    batch_bytes: usize,
    /// A librdkafka property for the restore consumer, KEY=VALUE (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    consumer_config: Vec<String>,
    /// redb's page cache in MiB
    #[arg(long, default_value_t = vltava_streams::state::redb_store::DEFAULT_CACHE_BYTES >> 20)]
    cache_mb: usize,
    /// Where the store file goes (default: a temp directory, deleted after)
    #[arg(long)]
    state_dir: Option<std::path::PathBuf>,
}

/// Runs a future to completion on this thread (the admin client's calls).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// A bijection on u64 (splitmix64's finalizer): distinct, scattered keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

fn create_topic(brokers: &str, topic: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().map_err(|e| e.to_string())?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.create_topics([&new], &opts)).map_err(|e| e.to_string())?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(format!("creating {t}: {e}")),
        }
    }
    Ok(())
}

fn fill(args: &Args, topic: &str) -> Result<(u64, u64, Duration), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| e.to_string())?;
    let record_size = 16 + args.value_size as u64;
    let records = args.bytes.div_ceil(record_size);
    let mut value = vec![0u8; args.value_size];
    let t0 = Instant::now();
    for i in 0..records {
        let key = format!("{:016x}", mix(i));
        let seed = mix(i ^ 0x5555);
        for (j, b) in value.iter_mut().enumerate() {
            *b = (seed >> ((j % 8) * 8)) as u8 ^ j as u8;
        }
        let mut record = BaseRecord::<str, [u8]>::to(topic).partition(0).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("producing: {e}")),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300)).map_err(|e| format!("flushing the producer: {e}"))?;
    Ok((records, records * record_size, t0.elapsed()))
}

fn run(args: Args) -> Result<(), String> {
    let topic = args.topic.clone().unwrap_or_else(|| format!("restore-bench-{}-changelog", std::process::id()));
    let mut fill_note = String::new();
    if !args.skip_fill {
        create_topic(&args.brokers, &topic)?;
        let (records, bytes, took) = fill(&args, &topic)?;
        fill_note = format!(
            " fill_records={records} fill_seconds={:.2} fill_MB/s={:.1}",
            took.as_secs_f64(),
            bytes as f64 / 1e6 / took.as_secs_f64()
        );
    }
    let temp;
    let dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().map_err(|e| e.to_string())?;
            temp.path().to_path_buf()
        }
    };
    let mut base = ClientConfig::new();
    // librdkafka's default fetch sizes: 16 MB partition fetches measured 4x slower against vltava
    base.set("bootstrap.servers", &args.brokers);
    for kv in &args.consumer_config {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("-X {kv}: expected KEY=VALUE"))?;
        base.set(k, v);
    }
    let consumer: BaseConsumer = restore_consumer_config(&base).create().map_err(|e| e.to_string())?;
    let byte_store: Box<dyn ByteStore> = match args.store.as_str() {
        "memory" => Box::new(MemoryStore::default()),
        _ => Box::new(RedbStore::open_with_cache("bench", &dir, args.cache_mb << 20).map_err(|e| e.to_string())?),
    };
    let mut store = StoreInstance::new("bench", byte_store, None);
    let options =
        RestoreOptions { batch_bytes: args.batch_bytes, batch_records: usize::MAX, ..RestoreOptions::default() };
    // restore_store's steps, timed apart: reading and applying the batches, then the final flush (fsync)
    let t0 = Instant::now();
    let restored =
        restore_with(&consumer, &topic, 0, None, &options, |batch| store.restore(batch)).map_err(|e| e.to_string())?;
    let t_flush = Instant::now();
    store.flush().map_err(|e| e.to_string())?;
    let flush_secs = t_flush.elapsed().as_secs_f64();
    let secs = t0.elapsed().as_secs_f64();
    let entries = store.approximate_len();
    drop(store);
    let file_bytes = std::fs::metadata(dir.join("bench.redb")).map(|m| m.len()).unwrap_or(0);
    // what a task pays at start before restoring the rest: opening the file (with its integrity check)
    let mut reopen_note = String::new();
    if args.store == "redb" {
        let t = Instant::now();
        let reopened = RedbStore::open_with_cache("bench", &dir, args.cache_mb << 20).map_err(|e| e.to_string())?;
        reopen_note = format!(" reopen_seconds={:.2}", t.elapsed().as_secs_f64());
        drop(reopened);
    }
    println!(
        "restore_bench: store={} topic={topic} records={} bytes={} seconds={secs:.2} (flush {flush_secs:.2}) records/s={:.0} MB/s={:.1} \
         store_entries={entries} store_file_MB={:.0} next_offset={}{reopen_note}{fill_note}",
        args.store,
        restored.records,
        restored.bytes,
        restored.records as f64 / secs,
        restored.bytes as f64 / 1e6 / secs,
        file_bytes as f64 / 1e6,
        restored.next_offset,
    );
    if entries != restored.records {
        return Err(format!("the store holds {entries} entries after restoring {} distinct keys", restored.records));
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("restore_bench: {e}");
        std::process::exit(1);
    }
}
