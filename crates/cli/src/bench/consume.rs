//! `vltava bench consume`: reads a topic from the beginning of every
//! partition (manual assignment, no group) up to the high watermarks seen at
//! the start, or `--records`, and reports records/s and MB/s.
//!
//! Records are taken from librdkafka's consumer queue in batches
//! (`rd_kafka_consume_batch_queue`): polling one record at a time through
//! the `rdkafka` crate spends most of the client's time reading the clock,
//! which would make the benchmark measure itself rather than the broker.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::{thousands, BrokerProbe, CommonBenchArgs, MB_BYTES};
use crate::client::{self, CliContext, ClientArgs};

/// How long the consumer may see no record before the run is declared stuck.
const IDLE_SECS_MAX: u64 = 30;
/// Records taken from librdkafka's queue per call.
const BATCH_RECORDS_MAX: usize = 8192;
/// How long one batch call waits for the first record.
const BATCH_WAIT_MS: i32 = 100;

/// What one batch held.
#[derive(Default)]
struct BatchCount {
    records: u64,
    bytes: u64,
    error: Option<String>,
}

/// The consumer queue of a consumer with a group id (where fetched records
/// arrive after `assign`), released on drop.
struct ConsumerQueue(*mut rdsys::rd_kafka_queue_t);

impl ConsumerQueue {
    fn of(consumer: &BaseConsumer<CliContext>) -> anyhow::Result<ConsumerQueue> {
        // SAFETY: a live client handle; NULL when the client has no consumer group.
        let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        if queue.is_null() {
            return Err(anyhow!("librdkafka has no consumer queue (group.id missing)"));
        }
        Ok(ConsumerQueue(queue))
    }

    /// Takes up to `slots.len()` records (waiting at most `wait_ms` for the
    /// first), counts at most `wanted` of them and releases them all.
    fn take(&self, slots: &mut [*mut rdsys::rd_kafka_message_t], wait_ms: i32, wanted: u64) -> BatchCount {
        // SAFETY: the queue is live and `slots` has room for `slots.len()` pointers.
        let n = unsafe { rdsys::rd_kafka_consume_batch_queue(self.0, wait_ms, slots.as_mut_ptr(), slots.len()) };
        let mut count = BatchCount::default();
        if n < 0 {
            count.error = Some("rd_kafka_consume_batch_queue failed".into());
            return count;
        }
        for &msg in &slots[..n as usize] {
            // SAFETY: librdkafka returned `n` valid messages, each released exactly once here.
            unsafe {
                let m = &*msg;
                if m.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && count.records < wanted {
                    count.records += 1;
                    count.bytes += (m.len + m.key_len) as u64;
                } else if m.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    && m.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF
                {
                    count.error.get_or_insert_with(|| RDKafkaErrorCode::from(m.err).to_string());
                }
                rdsys::rd_kafka_message_destroy(msg);
            }
        }
        count
    }
}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: obtained from rd_kafka_queue_get_consumer, released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) };
    }
}

#[derive(clap::Args)]
pub struct ConsumeBenchArgs {
    /// Topic to read.
    #[arg(short = 't', long, default_value = "vltava-bench")]
    topic: String,
    /// Stop after this many records (default: everything up to the high watermarks at the start).
    #[arg(short = 'n', long)]
    records: Option<u64>,
    /// Largest fetch per partition in bytes (librdkafka fetch.message.max.bytes).
    #[arg(long, default_value_t = 1 << 20)]
    partition_fetch_bytes: u64,
    #[command(flatten)]
    common: CommonBenchArgs,
}

pub fn run(args: &ClientArgs, a: &ConsumeBenchArgs) -> anyhow::Result<()> {
    let fetch_bytes = a.partition_fetch_bytes.to_string();
    let config = args.config(&[
        ("group.id", client::MANUAL_ASSIGNMENT_GROUP),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("allow.auto.create.topics", "false"),
        // Larger per-partition fetches measured slower here (bigger
        // responses, less overlap between broker and client).
        ("fetch.message.max.bytes", fetch_bytes.as_str()),
    ])?;
    let consumer: BaseConsumer<CliContext> = client::create(&config, CliContext::new(args.verbose))?;
    let md = client::fetch_metadata(consumer.client(), &consumer.context().sink, args, Some(&a.topic))?;
    let partitions = client::topic_partitions(&md, &a.topic)?;
    let mut available: u64 = 0;
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&a.topic, p, args.timeout())
            .map_err(|e| anyhow!("cannot read offsets of partition {p}: {}", client::describe_kafka_error(&e)))?;
        available += (high - low).max(0) as u64;
        tpl.add_partition_offset(&a.topic, p, Offset::Beginning).map_err(|e| anyhow!("{e}"))?;
    }
    let target = a.records.map_or(available, |n| n.min(available));
    if target == 0 {
        return Err(anyhow!("topic {:?} has no records to read (produce some with `vltava bench produce`)", a.topic));
    }

    client::catch_stop_signals();
    let probe = BrokerProbe::start(a.common.broker_pid)?;
    let bar = super::progress(Some(target), "consume");
    let started = Instant::now();
    consumer.assign(&tpl).map_err(|e| anyhow!("cannot assign partitions: {}", client::describe_kafka_error(&e)))?;
    let queue = ConsumerQueue::of(&consumer)?;
    let mut slots = vec![std::ptr::null_mut(); BATCH_RECORDS_MAX];
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut first_error: Option<String> = None;
    while records < target && !client::stop_requested() {
        let batch = queue.take(&mut slots, BATCH_WAIT_MS, target - records);
        if let Some(e) = batch.error {
            first_error.get_or_insert(e);
        }
        if batch.records > 0 {
            records += batch.records;
            bytes += batch.bytes;
            bar.set_position(records);
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(IDLE_SECS_MAX) {
            break;
        }
    }
    drop(queue);
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let usage = probe.map(|p| p.finish()).transpose()?;
    let records_per_sec = records as f64 / elapsed;
    let mb_per_sec = bytes as f64 / MB_BYTES / elapsed;

    let mut obj = serde_json::Map::new();
    obj.insert("benchmark".into(), json!("consume"));
    obj.insert("topic".into(), json!(a.topic));
    obj.insert("partitions".into(), json!(partitions.len()));
    obj.insert("records_expected".into(), json!(target));
    obj.insert("records".into(), json!(records));
    obj.insert("bytes".into(), json!(bytes));
    obj.insert("errors".into(), json!(u64::from(first_error.is_some())));
    obj.insert("first_error".into(), json!(first_error));
    obj.insert("elapsed_sec".into(), json!(super::round3(elapsed)));
    obj.insert("records_per_sec".into(), json!(records_per_sec.round()));
    obj.insert("mb_per_sec".into(), json!(super::round3(mb_per_sec)));
    let table = vec![
        (
            "bench consume".to_string(),
            format!("topic {} ({} partitions), from the beginning", a.topic, partitions.len()),
        ),
        ("records".to_string(), format!("{} of {} in {elapsed:.2} s", thousands(records), thousands(target))),
        ("throughput".to_string(), format!("{} records/s, {mb_per_sec:.1} MB/s", thousands(records_per_sec as u64))),
    ];
    super::print_report(a.common.json, obj, table, usage.as_ref(), elapsed);
    if records < target && !client::stop_requested() {
        return Err(anyhow!(
            "read {records} of {target} records: nothing arrived for {IDLE_SECS_MAX} s{}",
            first_error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
        ));
    }
    Ok(())
}
