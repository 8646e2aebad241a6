//! `vltava bench produce`: K producer threads, each with its own librdkafka
//! producer, send one reused payload as fast as the producer queue allows.
//! Every record carries its send time (ns since the run started) as its
//! delivery opaque, so the delivery report records the produce()-to-ack
//! latency in a per-thread HDR histogram without any per-record allocation
//! on our side.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::util::Timeout;
use serde_json::json;

use super::{latency_histogram, latency_json, latency_line, thousands, BrokerProbe, CommonBenchArgs, MB_BYTES};
use crate::client::{self, ClientArgs, LogSink};

/// Records sent between two polls of delivery reports and progress updates.
const SEND_CHUNK_RECORDS: u64 = 1024;
/// Records in flight per producer (librdkafka's queue.buffering.max.messages).
const QUEUE_RECORDS_MAX: &str = "500000";
/// Default record count when neither --records nor --duration is given.
const RECORDS_DEFAULT: u64 = 1_000_000;

#[derive(clap::Args)]
pub struct ProduceBenchArgs {
    /// Topic to write to (created with --partitions when missing).
    #[arg(short = 't', long, default_value = "vltava-bench")]
    topic: String,
    /// Records to send in total (default 1,000,000, or unlimited with --duration).
    #[arg(short = 'n', long)]
    records: Option<u64>,
    /// Bytes per record value.
    #[arg(short = 's', long, default_value_t = 100)]
    record_size: usize,
    /// Partitions of the topic when it has to be created.
    #[arg(short = 'p', long, default_value_t = 8)]
    partitions: i32,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = ["0", "1", "all", "-1"])]
    acks: String,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: String,
    /// Largest batch in bytes (librdkafka batch.size).
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u64,
    /// How long a batch waits for more records, in ms (librdkafka linger.ms).
    #[arg(long, default_value_t = 5.0)]
    linger_ms: f64,
    /// Producer instances, each on its own thread.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Start each value with the schema registry's wire header (magic byte
    /// 0, this schema id) followed by an Avro `bytes` datum, so a topic with
    /// confluent.value.schema.validation accepts it when the id is
    /// registered (as the Avro schema "bytes") under its subject.
    #[arg(long, value_name = "ID")]
    value_schema_id: Option<i32>,
    /// Stop after this many seconds (with --records: whichever comes first).
    #[arg(short = 'd', long, value_name = "SECONDS")]
    duration: Option<f64>,
    #[command(flatten)]
    common: CommonBenchArgs,
}

/// Per-producer delivery accounting.
struct Deliveries {
    sink: LogSink,
    started: Instant,
    latency_us: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.sink.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.sink.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    /// Send time in ns since `started`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                let now_ns = self.started.elapsed().as_nanos() as usize;
                let us = (now_ns.saturating_sub(sent_ns) / 1000) as u64;
                self.latency_us.lock().expect("histogram lock").saturating_record(us.max(1));
            }
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("error lock");
                if first.is_none() {
                    *first = Some(client::describe_kafka_error(err));
                }
            }
        }
    }
}

/// What one producer thread did.
struct ThreadResult {
    sent: u64,
    delivered: u64,
    failed: u64,
    first_error: Option<String>,
    latency_us: Histogram<u64>,
}

/// Sends `quota` records (or until `deadline`/stop), then flushes.
fn produce_loop(
    producer: BaseProducer<Deliveries>,
    topic: &str,
    quota: u64,
    deadline: Option<Instant>,
    payload: &[u8],
    progress: &AtomicU64,
    stop: &AtomicBool,
) -> ThreadResult {
    let started = producer.context().started;
    let mut sent: u64 = 0;
    'outer: while sent < quota {
        let chunk_start = sent;
        let chunk_end = (sent + SEND_CHUNK_RECORDS).min(quota);
        while sent < chunk_end {
            let sent_ns = started.elapsed().as_nanos() as usize;
            let mut record = BaseRecord::with_opaque_to(topic, sent_ns).payload(payload);
            loop {
                match producer.send::<(), [u8]>(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((err, _)) => {
                        let ctx = producer.context();
                        ctx.failed.fetch_add(1, Ordering::Relaxed);
                        let mut first = ctx.first_error.lock().expect("error lock");
                        first.get_or_insert_with(|| client::describe_kafka_error(&err));
                        break;
                    }
                }
            }
            sent += 1;
        }
        progress.fetch_add(sent - chunk_start, Ordering::Relaxed);
        producer.poll(Duration::ZERO);
        if stop.load(Ordering::Relaxed) || client::stop_requested() || deadline.is_some_and(|d| Instant::now() >= d) {
            break 'outer;
        }
    }
    // Delivery reports arrive during flush; message.timeout.ms bounds it.
    let _ = producer.flush(Timeout::Never);
    let ctx = producer.context();
    let latency_us = std::mem::replace(&mut *ctx.latency_us.lock().expect("histogram lock"), latency_histogram());
    ThreadResult {
        sent,
        delivered: ctx.delivered.load(Ordering::Relaxed),
        failed: ctx.failed.load(Ordering::Relaxed),
        first_error: ctx.first_error.lock().expect("error lock").clone(),
        latency_us,
    }
}

/// Avro's encoding of a non-negative `long` (zig-zag, then a varint) in
/// exactly `width` bytes: padded with continuation bytes when shorter, which
/// Avro decoders read as the same number.
fn avro_length(n: usize, width: usize) -> Vec<u8> {
    let mut z = (n as u64) << 1;
    let mut out = Vec::with_capacity(width);
    for i in 0..width {
        let last = i + 1 == width;
        out.push((z & 0x7f) as u8 | if last { 0 } else { 0x80 });
        z >>= 7;
    }
    out
}

/// A `len`-byte value in Confluent's wire format: magic byte 0, the schema
/// id (big endian), then an Avro `bytes` datum (its length, the bytes)
/// filling the rest.
fn schema_framed(id: i32, len: usize) -> anyhow::Result<Vec<u8>> {
    const HEADER_BYTES: usize = 5;
    // wide enough for any length below `len`
    let width = (1..=10).find(|w| (len as u64) << 1 < 1u64 << (7 * w)).unwrap_or(10);
    let fill = len
        .checked_sub(HEADER_BYTES + width)
        .ok_or_else(|| anyhow!("--value-schema-id needs --record-size of at least 6 bytes"))?;
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&avro_length(fill, width));
    out.extend_from_slice(&super::payload(fill));
    Ok(out)
}

pub fn run(args: &ClientArgs, a: &ProduceBenchArgs) -> anyhow::Result<()> {
    if a.producers == 0 {
        return Err(anyhow!("--producers must be at least 1"));
    }
    let total = match (a.records, a.duration) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => RECORDS_DEFAULT,
    };
    let partitions = super::ensure_topic(args, &a.topic, a.partitions)?;
    let batch_size = a.batch_size.to_string();
    let linger = a.linger_ms.to_string();
    let config = args.config(&[
        ("acks", a.acks.as_str()),
        ("compression.type", a.compression.as_str()),
        ("batch.size", batch_size.as_str()),
        ("batch.num.messages", "1000000"),
        ("linger.ms", linger.as_str()),
        ("queue.buffering.max.messages", QUEUE_RECORDS_MAX),
        ("queue.buffering.max.kbytes", "1048576"),
        ("message.timeout.ms", "60000"),
        ("enable.idempotence", "false"),
    ])?;
    let payload = match a.value_schema_id {
        Some(id) => schema_framed(id, a.record_size)?,
        None => super::payload(a.record_size),
    };
    let started = Instant::now();
    let mut producers = Vec::new();
    for _ in 0..a.producers {
        let ctx = Deliveries {
            sink: LogSink::new(args.verbose),
            started,
            latency_us: Mutex::new(latency_histogram()),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        };
        let producer: BaseProducer<Deliveries> = client::create(&config, ctx)?;
        // Connect and learn the partitions before the clock starts.
        client::fetch_metadata(producer.client(), &producer.context().sink, args, Some(&a.topic))?;
        producers.push(producer);
    }

    client::catch_stop_signals();
    let probe = BrokerProbe::start(a.common.broker_pid)?;
    let bar = super::progress((total != u64::MAX).then_some(total), "produce");
    let progress = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let run_started = Instant::now();
    let deadline = a.duration.map(|s| run_started + Duration::from_secs_f64(s));
    let k = u64::from(a.producers);
    let results: Vec<ThreadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .into_iter()
            .enumerate()
            .map(|(i, producer)| {
                let quota = if total == u64::MAX { u64::MAX } else { total / k + u64::from((i as u64) < total % k) };
                let (topic, payload, progress, stop) = (&a.topic, &payload, &progress, &stop);
                scope.spawn(move || produce_loop(producer, topic, quota, deadline, payload, progress, stop))
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) {
            bar.set_position(progress.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100));
        }
        handles.into_iter().map(|h| h.join().expect("producer thread panicked")).collect()
    });
    let elapsed = run_started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let usage = probe.map(|p| p.finish()).transpose()?;

    let mut latency = latency_histogram();
    let (mut sent, mut delivered, mut failed, mut first_error) = (0u64, 0u64, 0u64, None);
    for r in results {
        sent += r.sent;
        delivered += r.delivered;
        failed += r.failed;
        first_error = first_error.or(r.first_error);
        latency.add(&r.latency_us).map_err(|e| anyhow!("merging histograms: {e:?}"))?;
    }
    let lost = sent.saturating_sub(delivered + failed);
    let errors = failed + lost;
    let records_per_sec = delivered as f64 / elapsed;
    let mb_per_sec = delivered as f64 * a.record_size as f64 / MB_BYTES / elapsed;

    let mut obj = serde_json::Map::new();
    obj.insert("benchmark".into(), json!("produce"));
    obj.insert("topic".into(), json!(a.topic));
    obj.insert("partitions".into(), json!(partitions));
    obj.insert("record_size".into(), json!(a.record_size));
    obj.insert("acks".into(), json!(a.acks));
    obj.insert("compression".into(), json!(a.compression));
    obj.insert("batch_size".into(), json!(a.batch_size));
    obj.insert("linger_ms".into(), json!(a.linger_ms));
    obj.insert("producers".into(), json!(a.producers));
    obj.insert("value_schema_id".into(), json!(a.value_schema_id));
    obj.insert("records_sent".into(), json!(sent));
    obj.insert("records".into(), json!(delivered));
    obj.insert("errors".into(), json!(errors));
    obj.insert("first_error".into(), json!(first_error));
    obj.insert("elapsed_sec".into(), json!(super::round3(elapsed)));
    obj.insert("records_per_sec".into(), json!(records_per_sec.round()));
    obj.insert("mb_per_sec".into(), json!(super::round3(mb_per_sec)));
    obj.insert("latency_ms".into(), latency_json(&latency));
    let table = vec![
        (
            "bench produce".to_string(),
            format!(
                "topic {} ({partitions} partitions), {} B records, acks={}, compression={}, batch.size={}, \
                 linger.ms={}, producers={}",
                a.topic, a.record_size, a.acks, a.compression, a.batch_size, a.linger_ms, a.producers
            ),
        ),
        (
            "records".to_string(),
            format!(
                "{} delivered of {} sent, {errors} errors, in {elapsed:.2} s",
                thousands(delivered),
                thousands(sent)
            ),
        ),
        ("throughput".to_string(), format!("{} records/s, {mb_per_sec:.1} MB/s", thousands(records_per_sec as u64))),
        ("latency (ms)".to_string(), latency_line(&latency)),
    ];
    super::print_report(a.common.json, obj, table, usage.as_ref(), elapsed);
    if errors > 0 {
        return Err(anyhow!(
            "{errors} of {sent} records were not delivered: {}",
            first_error.unwrap_or_else(|| "not acknowledged".into())
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_framed_values_are_a_header_and_one_avro_bytes_datum() {
        for len in [6usize, 63, 64, 65, 69, 70, 71, 100, 8197, 8198, 1 << 20] {
            let v = schema_framed(7, len).unwrap();
            assert_eq!(v.len(), len);
            assert_eq!(&v[..5], &[0, 0, 0, 0, 7]);
            let (mut n, mut shift, mut at) = (0u64, 0, 5);
            loop {
                let b = v[at];
                n |= u64::from(b & 0x7f) << shift;
                shift += 7;
                at += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
            assert_eq!((n >> 1) as usize, len - at, "len {len}");
        }
        assert!(schema_framed(7, 5).is_err());
    }
}
