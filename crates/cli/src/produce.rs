//! `vltava produce TOPIC`: one record per input line (stdin or `--file`),
//! optionally split into key and value at `--key-sep`, or JSON lines
//! (`{"key":..,"value":..,"headers":{..},"partition":..,"timestamp":..}`).
//! Every record is flushed before exit; any failed delivery makes the exit
//! code 1.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::util::Timeout;

use crate::client::{self, ClientArgs, LogSink};

/// Delivery reports are served every this many records.
const POLL_EVERY_RECORDS: u64 = 1000;
/// How long to wait for queue space when the producer queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(50);

#[derive(clap::Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// Split each line at the first SEP into key and value (\t, \n escapes
    /// allowed); a line without SEP has no key.
    #[arg(short = 'K', long, value_name = "SEP")]
    key_sep: Option<String>,
    /// A header added to every record, KEY=VALUE. Repeatable.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Partition to write to (default: by key hash, or spread when no key).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long, value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: Option<String>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, value_parser = ["0", "1", "all", "-1"])]
    acks: Option<String>,
    /// Read lines from this file instead of stdin.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Each line is a JSON object: {"key":..,"value":..,"headers":{..},"partition":..,"timestamp":..}.
    #[arg(long, conflicts_with = "key_sep")]
    json: bool,
}

/// Counts deliveries; keeps the first failure for the final message.
struct DeliveryTally {
    sink: LogSink,
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTally {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.sink.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.sink.error(error, reason);
    }
}

impl ProducerContext for DeliveryTally {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("tally lock");
                if first.is_none() {
                    *first = Some(client::describe_kafka_error(err));
                }
            }
        }
    }
}

/// One record parsed from an input line.
#[derive(Debug, Default, PartialEq)]
struct Record {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

/// Splits a line at the first occurrence of `sep` into key and value.
fn split_key(line: &[u8], sep: &[u8]) -> (Option<Vec<u8>>, Vec<u8>) {
    if sep.is_empty() {
        return (None, line.to_vec());
    }
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(line[..at].to_vec()), line[at + sep.len()..].to_vec()),
        None => (None, line.to_vec()),
    }
}

/// A JSON key or value as bytes: strings as they are, null as no value,
/// anything else as compact JSON text.
fn json_bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(other.to_string().into_bytes()),
    }
}

/// Parses one JSON-lines record.
fn parse_json_record(line: &[u8]) -> anyhow::Result<Record> {
    let v: serde_json::Value = serde_json::from_slice(line).context("not valid JSON")?;
    let obj = v.as_object().ok_or_else(|| anyhow!("expected a JSON object"))?;
    let mut rec = Record::default();
    for (k, val) in obj {
        match k.as_str() {
            "key" => rec.key = json_bytes(val),
            "value" => rec.value = json_bytes(val),
            "partition" => {
                let p = val.as_i64().ok_or_else(|| anyhow!("\"partition\" must be an integer"))?;
                rec.partition = Some(i32::try_from(p).context("\"partition\" out of range")?);
            }
            "timestamp" => {
                rec.timestamp = Some(val.as_i64().ok_or_else(|| anyhow!("\"timestamp\" must be an integer (ms)"))?)
            }
            "headers" => match val {
                serde_json::Value::Object(h) => {
                    for (hk, hv) in h {
                        rec.headers.push((hk.clone(), json_bytes(hv)));
                    }
                }
                serde_json::Value::Null => {}
                _ => return Err(anyhow!("\"headers\" must be an object")),
            },
            other => {
                return Err(anyhow!("unknown field {other:?} (expected key, value, headers, partition, timestamp)"))
            }
        }
    }
    Ok(rec)
}

fn parse_header_flags(flags: &[String]) -> anyhow::Result<Vec<(String, Option<Vec<u8>>)>> {
    flags
        .iter()
        .map(|kv| {
            let (k, v) = client::parse_key_value(kv).context("--header expects KEY=VALUE")?;
            Ok((k.to_string(), Some(v.as_bytes().to_vec())))
        })
        .collect()
}

fn owned_headers(list: &[(String, Option<Vec<u8>>)]) -> Option<OwnedHeaders> {
    if list.is_empty() {
        return None;
    }
    let mut h = OwnedHeaders::new_with_capacity(list.len());
    for (k, v) in list {
        h = h.insert(Header { key: k, value: v.as_deref() });
    }
    Some(h)
}

pub fn run(args: &ClientArgs, a: &ProduceArgs) -> anyhow::Result<()> {
    let mut defaults: Vec<(&str, &str)> = vec![("message.timeout.ms", "30000"), ("linger.ms", "5")];
    if let Some(acks) = &a.acks {
        defaults.push(("acks", acks));
    }
    if let Some(codec) = &a.compression {
        defaults.push(("compression.type", codec));
    }
    let config = args.config(&defaults)?;
    let tally = DeliveryTally {
        sink: LogSink::new(args.verbose),
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let producer: BaseProducer<DeliveryTally> = client::create(&config, tally)?;
    let md = client::fetch_metadata(producer.client(), &producer.context().sink, args, Some(&a.topic))?;
    let partitions = client::topic_partitions(&md, &a.topic)?;
    if let Some(p) = a.partition {
        if !partitions.contains(&p) {
            return Err(client::NotFound(format!(
                "topic {:?} has no partition {p} (it has {})",
                a.topic,
                partitions.len()
            ))
            .into());
        }
    }

    let input: Box<dyn Read> = match &a.file {
        Some(path) => Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut input = BufReader::with_capacity(1 << 16, input);
    let key_sep = a.key_sep.as_deref().map(client::unescape);
    let flag_headers = parse_header_flags(&a.headers)?;
    let mut line = Vec::with_capacity(1024);
    let mut line_no: u64 = 0;
    let mut sent: u64 = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).context("cannot read input")? == 0 {
            break;
        }
        line_no += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let mut rec = if a.json {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            parse_json_record(&line).with_context(|| format!("line {line_no}"))?
        } else {
            let (key, value) = match &key_sep {
                Some(sep) => split_key(&line, sep.as_bytes()),
                None => (None, line.clone()),
            };
            Record { key, value: Some(value), ..Record::default() }
        };
        rec.headers.extend(flag_headers.iter().cloned());
        let partition = rec.partition.or(a.partition);
        let headers = owned_headers(&rec.headers);
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&a.topic);
        if let Some(k) = &rec.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &rec.value {
            record = record.payload(v.as_slice());
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(ts) = rec.timestamp {
            record = record.timestamp(ts);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(QUEUE_FULL_WAIT);
                }
                Err((err, _)) => {
                    return Err(anyhow!("line {line_no}: cannot produce: {}", client::describe_kafka_error(&err)))
                }
            }
        }
        sent += 1;
        if sent.is_multiple_of(POLL_EVERY_RECORDS) {
            producer.poll(Duration::ZERO);
        }
    }
    // Waits for every record: message.timeout.ms bounds each one.
    let flushed = producer.flush(Timeout::Never);
    let tally = producer.context();
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    if failed > 0 || flushed.is_err() || delivered != sent {
        let why = tally
            .first_error
            .lock()
            .expect("tally lock")
            .clone()
            .or_else(|| tally.sink.last_error())
            .unwrap_or_else(|| "not acknowledged".into());
        return Err(anyhow!("{} of {sent} records were not delivered to {:?}: {why}", sent - delivered, a.topic));
    }
    if args.verbose || std::io::stderr().is_terminal() {
        eprintln!("produced {delivered} records to {:?}", a.topic);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_split_at_first_separator() {
        assert_eq!(split_key(b"k:v:w", b":"), (Some(b"k".to_vec()), b"v:w".to_vec()));
        assert_eq!(split_key(b"novalue", b":"), (None, b"novalue".to_vec()));
        assert_eq!(split_key(b"a::b", b"::"), (Some(b"a".to_vec()), b"b".to_vec()));
        assert_eq!(split_key(b":v", b":"), (Some(Vec::new()), b"v".to_vec()));
    }

    #[test]
    fn json_record_fields() {
        let r =
            parse_json_record(br#"{"key":"k","value":{"a":1},"headers":{"h":"x","n":null},"partition":2}"#).unwrap();
        assert_eq!(r.key, Some(b"k".to_vec()));
        assert_eq!(r.value, Some(br#"{"a":1}"#.to_vec()));
        assert_eq!(r.headers, vec![("h".into(), Some(b"x".to_vec())), ("n".into(), None)]);
        assert_eq!(r.partition, Some(2));
        assert!(parse_json_record(br#"{"valu":"typo"}"#).is_err());
        assert!(parse_json_record(b"[1]").is_err());
        assert_eq!(parse_json_record(br#"{"value":null}"#).unwrap().value, None);
    }
}
