//! `vltava bench ...`: throughput and latency of any Kafka-compatible
//! cluster. This module holds what the three benchmarks share: latency
//! histograms, the broker process probe (`--broker-pid`: CPU seconds and peak
//! RSS from /proc), the progress bar, topic preparation and the final
//! report (a table, or one JSON object with `--json`).

mod consume;
mod e2e;
mod produce;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::anyhow;
use futures::executor::block_on;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use serde_json::{json, Value};

use crate::client::{self, ClientArgs};
use crate::topic::Admin;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Produce records as fast as possible; report records/s, MB/s and
    /// delivery latency percentiles (produce() call to delivery report).
    ///
    /// MB is 2^20 bytes of record values. The topic is created with
    /// --partitions when it does not exist.
    ///
    /// Examples:
    ///   vltava bench produce --topic bench --records 5000000 --record-size 100 --partitions 8
    ///   vltava bench produce --topic bench --records 2000000 --acks all --json
    ///   vltava bench produce --topic bench --duration 30 --producers 2 --broker-pid $(pidof vltava)
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Produce(produce::ProduceBenchArgs),
    /// Read a topic from the beginning (manual assignment, no group); report records/s and MB/s.
    ///
    /// Examples:
    ///   vltava bench consume --topic bench
    ///   vltava bench consume --topic bench --records 5000000 --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Consume(consume::ConsumeBenchArgs),
    /// Produce at a fixed rate while consuming; report end-to-end latency
    /// (produce() call to the record's arrival at the consumer) percentiles.
    ///
    /// Examples:
    ///   vltava bench e2e --topic e2e --rate 10000 --duration 30
    ///   vltava bench e2e --topic e2e --rate 1000 --duration 10 --acks all --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    E2e(e2e::E2eBenchArgs),
}

pub fn run(args: &ClientArgs, cmd: &BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Produce(a) => produce::run(args, a),
        BenchCommand::Consume(a) => consume::run(args, a),
        BenchCommand::E2e(a) => e2e::run(args, a),
    }
}

/// Flags every benchmark has.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonBenchArgs {
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// PID of a local broker process: report its CPU seconds and peak RSS during the run.
    #[arg(long, value_name = "PID")]
    broker_pid: Option<u32>,
}

/// Bytes in the "MB" of MB/s (as kafka-producer-perf-test counts).
const MB_BYTES: f64 = 1024.0 * 1024.0;
/// Largest latency the histograms hold: one hour, in microseconds.
const LATENCY_US_MAX: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// p50/p95/p99/p99.9/max in milliseconds.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return json!({"p50": null, "p95": null, "p99": null, "p999": null, "max": null});
    }
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

fn latency_line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "n/a (no records)".into();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    )
}

/// CPU time and peak memory of a local broker process, from /proc.
pub struct BrokerProbe {
    pid: u32,
    cpu_start_secs: f64,
    /// Whether VmHWM was reset at the start (writing 5 to clear_refs), so
    /// the peak belongs to this run rather than the process's whole life.
    peak_reset: bool,
}

/// What the probe measured.
pub struct BrokerUsage {
    cpu_secs: f64,
    peak_rss_mib: f64,
    peak_reset: bool,
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of a process in seconds.
fn process_cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| anyhow!("--broker-pid {pid}: cannot read /proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).ok_or_else(|| anyhow!("bad utime"))?;
    let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).ok_or_else(|| anyhow!("bad stime"))?;
    Ok((utime + stime) / clock_ticks_per_sec())
}

/// A `Vm*` line of /proc/PID/status, in MiB.
fn process_status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| anyhow!("--broker-pid {pid}: cannot read /proc/{pid}/status: {e}"))?;
    let line =
        status.lines().find(|l| l.starts_with(field)).ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))?;
    let kib: f64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|_| anyhow!("bad {field} line {line:?}"))?;
    Ok(kib / 1024.0)
}

impl BrokerProbe {
    pub fn start(pid: Option<u32>) -> anyhow::Result<Option<BrokerProbe>> {
        let Some(pid) = pid else { return Ok(None) };
        let cpu_start_secs = process_cpu_secs(pid)?;
        let peak_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        Ok(Some(BrokerProbe { pid, cpu_start_secs, peak_reset }))
    }

    pub fn finish(&self) -> anyhow::Result<BrokerUsage> {
        Ok(BrokerUsage {
            cpu_secs: process_cpu_secs(self.pid)? - self.cpu_start_secs,
            peak_rss_mib: process_status_mib(self.pid, "VmHWM:")?,
            peak_reset: self.peak_reset,
        })
    }
}

impl BrokerUsage {
    fn add_to(&self, out: &mut serde_json::Map<String, Value>, elapsed_secs: f64) {
        out.insert("broker_cpu_seconds".into(), json!(round3(self.cpu_secs)));
        out.insert("broker_cpu_cores".into(), json!(round3(self.cpu_secs / elapsed_secs.max(1e-9))));
        out.insert("broker_peak_rss_mib".into(), json!(round3(self.peak_rss_mib)));
        out.insert("broker_peak_rss_this_run".into(), json!(self.peak_reset));
    }

    fn line(&self, elapsed_secs: f64) -> String {
        format!(
            "cpu {:.2} s ({:.0}% of one core), peak RSS {:.1} MiB{}",
            self.cpu_secs,
            100.0 * self.cpu_secs / elapsed_secs.max(1e-9),
            self.peak_rss_mib,
            if self.peak_reset { "" } else { " (since the broker started)" }
        )
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A progress bar on stderr when it is a terminal, otherwise nothing.
pub fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(&format!(
                "{what} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} ({{per_sec}}) {{msg}}"
            ))
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{what} [{{elapsed_precise}}] {{human_pos}} ({{per_sec}}) {{msg}}"))
                .expect("valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Creates `topic` with `partitions` when it does not exist; returns its
/// partition count.
pub fn ensure_topic(args: &ClientArgs, topic: &str, partitions: i32) -> anyhow::Result<usize> {
    let (admin, md) = Admin::connect(args)?;
    if let Ok(existing) = client::topic_partitions(&md, topic) {
        return Ok(existing.len());
    }
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let results = block_on(admin.client.create_topics([&new_topic], &admin.options))
        .map_err(|e| admin.request_error("create topic", "CreateTopics", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(anyhow!("create topic {name:?}: {}", client::describe_code(code))),
        }
    }
    // Wait until metadata shows the new topic with its leaders.
    let deadline = std::time::Instant::now() + args.timeout();
    loop {
        let md = client::fetch_metadata(admin.client.inner(), &admin.client.inner().context().sink, args, Some(topic))?;
        if let Ok(p) = client::topic_partitions(&md, topic) {
            let t = md.topics().iter().find(|t| t.name() == topic).expect("found above");
            if t.partitions().iter().all(|p| p.leader() >= 0) {
                return Ok(p.len());
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(anyhow!("topic {topic:?} was created but has no leaders yet"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints the report: the JSON object, or the table lines.
pub fn print_report(
    json_out: bool,
    mut object: serde_json::Map<String, Value>,
    table: Vec<(String, String)>,
    broker: Option<&BrokerUsage>,
    elapsed_secs: f64,
) {
    if json_out {
        if let Some(b) = broker {
            b.add_to(&mut object, elapsed_secs);
        }
        println!("{}", Value::Object(object));
        return;
    }
    let mut rows = table;
    if let Some(b) = broker {
        rows.push(("broker".into(), b.line(elapsed_secs)));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
}

/// A payload of `len` bytes that does not compress to nothing (xorshift
/// bytes), so compression settings are measured honestly.
pub fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn own_process_can_be_probed() {
        let pid = std::process::id();
        let probe = BrokerProbe::start(Some(pid)).unwrap().unwrap();
        let usage = probe.finish().unwrap();
        assert!(usage.cpu_secs >= 0.0);
        assert!(usage.peak_rss_mib > 0.0);
    }

    #[test]
    fn latency_percentiles_in_ms() {
        let mut h = latency_histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap();
        }
        let j = latency_json(&h);
        assert!((j["p50"].as_f64().unwrap() - 5.0).abs() < 0.01);
        assert!((j["max"].as_f64().unwrap() - 10.0).abs() < 0.01);
    }
}
