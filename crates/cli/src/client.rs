//! What every client-side command shares: the global flags (`--brokers`,
//! `-X key=value`, `--timeout`, `-v`), building librdkafka configurations
//! from them, a client context that keeps librdkafka's log lines quiet unless
//! `-v` is given (but remembers the last error for the one-line message), the
//! reachability check, the mapping from errors to exit codes, and byte
//! counts for people.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::ClientConfig;

/// Exit code of a command that succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code of a command that failed (broker unreachable, request refused, ...).
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a command whose topic, group or broker does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;

/// The exit codes, as shown at the end of `vltava --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error (broker unreachable, request refused, delivery failed, ...)
  2  usage error (unknown flag, missing argument)
  3  not found (the topic, group or broker does not exist)";

/// The group id of consumers that only use manual assignment. librdkafka
/// needs a group id for `assign()`, but such a consumer never joins the group
/// and never commits.
pub const MANUAL_ASSIGNMENT_GROUP: &str = "vltava-cli-assign";

/// Flags that apply to every client-side command.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientArgs {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(short = 'b', long, global = true, env = "VLTAVA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// A librdkafka client property, e.g. -X security.protocol=ssl. Repeatable; applied last.
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub properties: Vec<String>,
    /// A Kafka client properties file (as Kafka's tools take), applied
    /// before the -X properties (which win).
    #[arg(long = "command-config", value_name = "FILE", global = true)]
    pub command_config: Option<std::path::PathBuf>,
    /// Seconds to wait for the cluster to answer metadata and admin requests.
    #[arg(long = "timeout", value_name = "SECONDS", global = true, default_value_t = 5.0)]
    pub timeout_secs: f64,
    /// Print librdkafka's log lines on stderr.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

impl ClientArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs.max(0.1))
    }

    /// A configuration with the bootstrap brokers, short connection timeouts
    /// and the `-X` properties applied on top of `defaults`.
    pub fn config(&self, defaults: &[(&str, &str)]) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new();
        let timeout_ms = self.timeout().as_millis().to_string();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            .set("topic.metadata.refresh.interval.ms", "30000")
            .set("client.id", "vltava-cli")
            // TCP_NODELAY, as the Java client always sets it: small requests go out at once.
            .set("socket.nagle.disable", "true")
            .set_log_level(if self.verbose { RDKafkaLogLevel::Debug } else { RDKafkaLogLevel::Error });
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in self.client_properties()? {
            config.set(k, v);
        }
        Ok(config)
    }

    /// The client properties of `--command-config` then `-X`, in that
    /// order (a later one wins).
    pub fn client_properties(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        if let Some(path) = &self.command_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --command-config {}", path.display()))?;
            out.extend(vltava_broker::config::parse_properties(&text));
        }
        for kv in &self.properties {
            let (k, v) = parse_key_value(kv).with_context(|| "-X expects KEY=VALUE")?;
            out.push((k.to_string(), v.to_string()));
        }
        Ok(out)
    }

    /// The last value given to client property `key`.
    pub fn client_property(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self.client_properties()?.into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v))
    }

    /// A consumer that is used only for metadata, watermarks and manual
    /// assignment (it never joins a group).
    pub fn metadata_consumer(&self) -> anyhow::Result<BaseConsumer<CliContext>> {
        let config = self.config(&[
            ("group.id", MANUAL_ASSIGNMENT_GROUP),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("allow.auto.create.topics", "false"),
        ])?;
        create(&config, CliContext::new(self.verbose))
    }
}

/// Creates any librdkafka client, turning configuration errors into one line.
pub fn create<T, C>(config: &ClientConfig, context: C) -> anyhow::Result<T>
where
    T: FromClientConfigAndContext<C>,
    C: ClientContext,
{
    T::from_config_and_context(config, context).map_err(|e| anyhow!("cannot create the Kafka client: {e}"))
}

/// Splits `key=value` (the value may contain `=`).
pub fn parse_key_value(kv: &str) -> anyhow::Result<(&str, &str)> {
    let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("expected KEY=VALUE, got {kv:?}"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(anyhow!("expected KEY=VALUE, got {kv:?}"));
    }
    Ok((k, v))
}

/// The error of a command whose topic, partition or group does not exist
/// (exit code 3).
#[derive(Debug)]
pub struct NotFound(pub String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// The exit code for an error returned by a command.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<NotFound>()) {
        EXIT_NOT_FOUND
    } else {
        EXIT_ERROR
    }
}

/// Records librdkafka's log lines: printed on stderr only with `-v`; the
/// last error-level line is kept so that a failure can say why in one line.
pub struct LogSink {
    verbose: bool,
    last_error: Mutex<Option<String>>,
}

impl LogSink {
    pub fn new(verbose: bool) -> Self {
        LogSink { verbose, last_error: Mutex::new(None) }
    }

    pub fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if self.verbose {
            eprintln!("librdkafka {level:?} {fac}: {message}");
        }
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            *self.last_error.lock().expect("log sink lock") = Some(message.to_string());
        }
    }

    pub fn error(&self, error: KafkaError, reason: &str) {
        if self.verbose {
            eprintln!("librdkafka error: {error}: {reason}");
        }
        // "all brokers down" says less than the connection error before it.
        let mut last = self.last_error.lock().expect("log sink lock");
        let is_summary = matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown));
        if last.is_none() || !is_summary {
            *last = Some(reason.to_string());
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("log sink lock").clone()
    }
}

/// The client context of admin clients and consumers: quiet logs.
pub struct CliContext {
    pub sink: LogSink,
}

impl CliContext {
    pub fn new(verbose: bool) -> Self {
        CliContext { sink: LogSink::new(verbose) }
    }
}

impl ClientContext for CliContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.sink.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.sink.error(error, reason);
    }
}

impl ConsumerContext for CliContext {}

/// Fetches metadata (all topics, or one), turning "no broker answered" into
/// a one-line error that names the brokers and why they did not answer.
pub fn fetch_metadata<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    sink: &LogSink,
    args: &ClientArgs,
    topic: Option<&str>,
) -> anyhow::Result<Metadata> {
    // Nothing listens at any bootstrap address: say so now rather than
    // after the timeout.
    if let Some(why) = all_refused(&args.brokers) {
        return Err(anyhow!("cannot reach the cluster at {}: {why}", args.brokers));
    }
    let started = Instant::now();
    match client.fetch_metadata(topic, args.timeout()) {
        Ok(md) => Ok(md),
        Err(e) => Err(unreachable_error(&args.brokers, sink, &e, started.elapsed())),
    }
}

/// The HOST:PORT pairs of a bootstrap list (`PLAINTEXT://` style prefixes dropped).
pub fn bootstrap_addresses(brokers: &str) -> Vec<String> {
    brokers
        .split(',')
        .map(|b| b.trim())
        .filter(|b| !b.is_empty())
        .map(|b| b.rsplit("://").next().unwrap_or(b).to_string())
        .collect()
}

/// How long the reachability probe waits for one TCP connection.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `Some(reason)` when every bootstrap address refuses TCP connections (or
/// does not resolve); `None` when any might be a broker.
fn all_refused(brokers: &str) -> Option<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let mut reasons = Vec::new();
    for addr in bootstrap_addresses(brokers) {
        let resolved: Vec<_> = match addr.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                reasons.push(format!("{addr}: {e}"));
                continue;
            }
        };
        for sa in resolved {
            match TcpStream::connect_timeout(&sa, PROBE_CONNECT_TIMEOUT) {
                Ok(_) => return None,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => reasons.push(refused_reason(&addr)),
                // Timeouts and the like: let librdkafka try, with its own timeout.
                Err(_) => return None,
            }
        }
    }
    if reasons.is_empty() {
        None
    } else {
        reasons.dedup();
        Some(reasons.join("; "))
    }
}

/// Why a broker address gave nothing: it refuses connections.
pub fn refused_reason(addr: &str) -> String {
    format!("{addr}: connection refused (is a broker running there?)")
}

/// The one-line error for a request that no broker answered.
pub fn unreachable_error(brokers: &str, sink: &LogSink, err: &KafkaError, waited: Duration) -> anyhow::Error {
    let why = sink.last_error().unwrap_or_else(|| match err.rdkafka_error_code() {
        Some(code) => code.to_string(),
        None => err.to_string(),
    });
    anyhow!("cannot reach the cluster at {brokers} (no answer within {:.1}s): {why}", waited.as_secs_f64())
}

/// A readable form of a librdkafka error: its code's description without
/// the Rust enum wrapper.
pub fn describe_kafka_error(err: &KafkaError) -> String {
    match error_code(err) {
        Some(code) => describe_code(code),
        None => err.to_string(),
    }
}

/// The error code inside any librdkafka error, including admin errors.
pub fn error_code(err: &KafkaError) -> Option<RDKafkaErrorCode> {
    match err {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// A readable form of an error code, with a hint for the codes that mean the
/// broker does not implement the request.
pub fn describe_code(code: RDKafkaErrorCode) -> String {
    match code {
        RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature => {
            format!("{code} (the broker does not support this request)")
        }
        RDKafkaErrorCode::BrokerTransportFailure => {
            format!("{code} (the broker closed the connection; it may not support this request)")
        }
        RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut => {
            format!("{code} (no answer in time; the broker may not support this request)")
        }
        _ => code.to_string(),
    }
}

/// Whether an error code means the broker does not implement a request.
pub fn is_unsupported(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnsupportedVersion
            | RDKafkaErrorCode::UnsupportedFeature
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::InvalidRequest
    )
}

/// The partitions of one topic from a metadata answer, or `NotFound`.
pub fn topic_partitions(md: &Metadata, topic: &str) -> anyhow::Result<Vec<i32>> {
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| NotFound(format!("topic {topic:?} does not exist")))?;
    if let Some(err) = t.error() {
        let code = RDKafkaErrorCode::from(err);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Err(NotFound(format!("topic {topic:?} does not exist")).into());
        }
        return Err(anyhow!("topic {topic:?}: {}", describe_code(code)));
    }
    if t.partitions().is_empty() {
        return Err(NotFound(format!("topic {topic:?} does not exist")).into());
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// A byte count for people: `0B`, `512B`, `39.8KiB`, `1.2GiB`.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes.abs() < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// Set by SIGINT/SIGTERM for the commands that stop cleanly (consume, bench).
static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set a flag instead of killing the process, so a
/// long-running command can flush its output and report.
pub fn catch_stop_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_stop_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop_signal as *const () as libc::sighandler_t);
    }
}

/// Whether SIGINT or SIGTERM arrived since `catch_stop_signals`.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Decodes `\n`, `\t`, `\r`, `\0` and `\\` in a command-line argument.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_first_equals() {
        assert_eq!(parse_key_value("a=b=c").unwrap(), ("a", "b=c"));
        assert_eq!(parse_key_value(" a =").unwrap(), ("a", ""));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }

    #[test]
    fn bootstrap_list_is_split() {
        assert_eq!(bootstrap_addresses("a:1, PLAINTEXT://b:2,,"), vec!["a:1", "b:2"]);
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(unescape(r"a\tb\n"), "a\tb\n");
        assert_eq!(unescape(r"\\n"), "\\n");
        assert_eq!(unescape(r"x\q"), "x\\q");
        assert_eq!(unescape("tail\\"), "tail\\");
    }

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.0KiB");
        assert_eq!(human_bytes(40_765), "39.8KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0GiB");
    }

    #[test]
    fn not_found_maps_to_exit_code_3() {
        let err: anyhow::Error = NotFound("topic x".into()).into();
        assert_eq!(exit_code(&err), EXIT_NOT_FOUND);
        assert_eq!(exit_code(&err.context("describe")), EXIT_NOT_FOUND);
        assert_eq!(exit_code(&anyhow!("boom")), EXIT_ERROR);
    }
}
