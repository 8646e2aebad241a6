//! `vltava bench e2e`: a producer thread sends at a fixed rate, each
//! record carrying a run id and its send time; a consumer (manual
//! assignment, starting at the high watermarks) records the
//! produce()-to-receive latency of every record of this run in an HDR
//! histogram. Both clocks are the same monotonic clock of this process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::{latency_histogram, latency_json, latency_line, thousands, BrokerProbe, CommonBenchArgs};
use crate::client::{self, CliContext, ClientArgs};

/// Bytes at the start of each payload: run id (8) and send time in ns (8).
const STAMP_BYTES: usize = 16;
/// How long the consumer waits for stragglers after the producer is done.
const DRAIN_SECS_MAX: u64 = 10;

#[derive(clap::Args)]
pub struct E2eBenchArgs {
    /// Topic to use (created with --partitions when missing).
    #[arg(short = 't', long, default_value = "vltava-bench-e2e")]
    topic: String,
    /// Records per second.
    #[arg(short = 'r', long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds to produce for.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Bytes per record value (at least 16: the run id and send time).
    #[arg(short = 's', long, default_value_t = 100)]
    record_size: usize,
    /// Partitions of the topic when it has to be created.
    #[arg(short = 'p', long, default_value_t = 8)]
    partitions: i32,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = ["0", "1", "all", "-1"])]
    acks: String,
    /// How long a batch waits for more records, in ms (librdkafka linger.ms).
    #[arg(long, default_value_t = 0.0)]
    linger_ms: f64,
    #[command(flatten)]
    common: CommonBenchArgs,
}

/// Sends `total` records at `rate` per second; returns (sent, errors).
fn paced_producer(
    producer: &BaseProducer,
    a: &E2eBenchArgs,
    total: u64,
    run_id: u64,
    started: Instant,
    sent_counter: &AtomicU64,
) -> (u64, u64) {
    let (topic, rate) = (a.topic.as_str(), a.rate);
    let mut payload = super::payload(a.record_size);
    payload[..8].copy_from_slice(&run_id.to_le_bytes());
    let interval_ns = 1_000_000_000f64 / rate as f64;
    let send_start = Instant::now();
    let mut errors = 0u64;
    let mut sent = 0u64;
    while sent < total && !client::stop_requested() {
        let due = send_start + Duration::from_nanos((sent as f64 * interval_ns) as u64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let sent_ns = started.elapsed().as_nanos() as u64;
        payload[8..16].copy_from_slice(&sent_ns.to_le_bytes());
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err(_) => {
                    errors += 1;
                    break;
                }
            }
        }
        sent += 1;
        sent_counter.store(sent, Ordering::Relaxed);
        producer.poll(Duration::ZERO);
    }
    let _ = producer.flush(Timeout::Never);
    (sent, errors)
}

pub fn run(args: &ClientArgs, a: &E2eBenchArgs) -> anyhow::Result<()> {
    if a.rate == 0 {
        return Err(anyhow!("--rate must be at least 1"));
    }
    if a.record_size < STAMP_BYTES {
        return Err(anyhow!("--record-size must be at least {STAMP_BYTES} (run id and send time)"));
    }
    let total = (a.rate as f64 * a.duration).round() as u64;
    let partitions = super::ensure_topic(args, &a.topic, a.partitions)?;

    let consumer_config = args.config(&[
        ("group.id", client::MANUAL_ASSIGNMENT_GROUP),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("allow.auto.create.topics", "false"),
        ("fetch.wait.max.ms", "100"),
        ("fetch.min.bytes", "1"),
        ("fetch.queue.backoff.ms", "0"),
    ])?;
    let consumer: BaseConsumer<CliContext> = client::create(&consumer_config, CliContext::new(args.verbose))?;
    let md = client::fetch_metadata(consumer.client(), &consumer.context().sink, args, Some(&a.topic))?;
    let ids = client::topic_partitions(&md, &a.topic)?;
    let mut tpl = TopicPartitionList::with_capacity(ids.len());
    for &p in &ids {
        let (_, high) = consumer
            .fetch_watermarks(&a.topic, p, args.timeout())
            .map_err(|e| anyhow!("cannot read offsets of partition {p}: {}", client::describe_kafka_error(&e)))?;
        tpl.add_partition_offset(&a.topic, p, Offset::Offset(high)).map_err(|e| anyhow!("{e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| anyhow!("cannot assign partitions: {}", client::describe_kafka_error(&e)))?;

    let linger = a.linger_ms.to_string();
    let producer_config = args.config(&[
        ("acks", a.acks.as_str()),
        ("linger.ms", linger.as_str()),
        ("message.timeout.ms", "30000"),
        ("enable.idempotence", "false"),
    ])?;
    let producer: BaseProducer = client::create(&producer_config, DefaultProducerContext)?;
    producer
        .client()
        .fetch_metadata(Some(&a.topic), args.timeout())
        .map_err(|e| anyhow!("producer cannot reach the cluster: {}", client::describe_kafka_error(&e)))?;
    // Let the consumer's first fetches start before the clock does.
    let _ = consumer.poll(Duration::from_millis(200));

    client::catch_stop_signals();
    let probe = BrokerProbe::start(a.common.broker_pid)?;
    let bar = super::progress(Some(total), "e2e");
    // Tells this run's records from any other writer's.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let run_id: u64 = (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40);
    let started = Instant::now();
    let sent_counter = AtomicU64::new(0);
    let mut latency = latency_histogram();
    let mut received = 0u64;
    let mut foreign = 0u64;
    let (sent, produce_errors) = std::thread::scope(|scope| {
        let producer_thread = scope.spawn(|| paced_producer(&producer, a, total, run_id, started, &sent_counter));
        let mut done_at: Option<Instant> = None;
        loop {
            if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) {
                let now_ns = started.elapsed().as_nanos() as u64;
                match msg.payload() {
                    Some(p) if p.len() >= STAMP_BYTES && p[..8] == run_id.to_le_bytes() => {
                        let sent_ns = u64::from_le_bytes(p[8..16].try_into().expect("8 bytes"));
                        latency.saturating_record((now_ns.saturating_sub(sent_ns) / 1000).max(1));
                        received += 1;
                        if received.is_multiple_of(1000) {
                            bar.set_position(received);
                        }
                    }
                    _ => foreign += 1,
                }
            }
            if producer_thread.is_finished() {
                let at = *done_at.get_or_insert_with(Instant::now);
                let sent_so_far = sent_counter.load(Ordering::Relaxed);
                if received >= sent_so_far || at.elapsed() > Duration::from_secs(DRAIN_SECS_MAX) {
                    break;
                }
            }
        }
        producer_thread.join().expect("producer thread panicked")
    });
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let usage = probe.map(|p| p.finish()).transpose()?;
    let lost = sent.saturating_sub(received);

    let mut obj = serde_json::Map::new();
    obj.insert("benchmark".into(), json!("e2e"));
    obj.insert("topic".into(), json!(a.topic));
    obj.insert("partitions".into(), json!(partitions));
    obj.insert("record_size".into(), json!(a.record_size));
    obj.insert("acks".into(), json!(a.acks));
    obj.insert("linger_ms".into(), json!(a.linger_ms));
    obj.insert("rate".into(), json!(a.rate));
    obj.insert("records_sent".into(), json!(sent));
    obj.insert("records".into(), json!(received));
    obj.insert("lost".into(), json!(lost));
    obj.insert("errors".into(), json!(produce_errors + lost));
    obj.insert("elapsed_sec".into(), json!(super::round3(elapsed)));
    obj.insert("records_per_sec".into(), json!((received as f64 / elapsed).round()));
    obj.insert("latency_ms".into(), latency_json(&latency));
    let table = vec![
        (
            "bench e2e".to_string(),
            format!(
                "topic {} ({partitions} partitions), {} records/s for {} s, {} B records, acks={}, linger.ms={}",
                a.topic, a.rate, a.duration, a.record_size, a.acks, a.linger_ms
            ),
        ),
        (
            "records".to_string(),
            format!(
                "{} received of {} sent, {lost} lost, {produce_errors} produce errors{}",
                thousands(received),
                thousands(sent),
                if foreign > 0 { format!(", {foreign} from other writers ignored") } else { String::new() }
            ),
        ),
        ("e2e latency (ms)".to_string(), latency_line(&latency)),
    ];
    super::print_report(a.common.json, obj, table, usage.as_ref(), elapsed);
    if produce_errors + lost > 0 && !client::stop_requested() {
        return Err(anyhow!("{} of {sent} records did not arrive", produce_errors + lost));
    }
    Ok(())
}
