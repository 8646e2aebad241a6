//! Client metrics (KIP-714): clients push their own metrics to the broker.
//!
//! - Subscriptions are CLIENT_METRICS config resources (type 16) in the
//!   metadata log, with Kafka's keys: `metrics` (metric name prefixes, `*`
//!   for all), `interval.ms` (push interval) and `match` (`selector=regex`
//!   pairs on the client's id, instance id, software name and version,
//!   source address and port; every pair must match the whole value).
//! - GetTelemetrySubscriptions tells a client what to push and how often
//!   (the union of the subscriptions it matches, the shortest interval);
//!   PushTelemetry brings an OTLP `MetricsData`, compressed with any of the
//!   codecs offered. Kafka's checks: a push before its interval is
//!   THROTTLING_QUOTA_EXCEEDED, a stale subscription id
//!   UNKNOWN_SUBSCRIPTION_ID, a payload over `telemetry.max.bytes`
//!   TELEMETRY_TOO_LARGE, one that does not decode INVALID_RECORD.
//! - What clients push appears on `/metrics` (Kafka hands it to a plugin:
//!   vltava exports it itself), named after the OTLP metric with `.` made
//!   `_`, labelled with the client's id, instance id, principal and
//!   software, and the data point's attributes. Cumulative temporality is
//!   asked for, so a counter's value is its total. A client that stops
//!   pushing is forgotten after three intervals; its series go with it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, MetricsData};
use parking_lot::Mutex;
use prost::Message;
use uuid::Uuid;
use vltava_metadata::MetadataImage;
use vltava_protocol::ResponseError;

/// Kafka's ConfigResource type of a client-metrics subscription.
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const METRICS: &str = "metrics";
pub const INTERVAL_MS: &str = "interval.ms";
pub const MATCH: &str = "match";
/// Every metric (an entry of `metrics`).
const ALL_METRICS: &str = "*";
/// Kafka's defaults and bounds of `interval.ms`.
pub const INTERVAL_MS_DEFAULT: i32 = 300_000;
const INTERVAL_MS_MIN: i64 = 100;
const INTERVAL_MS_MAX: i64 = 3_600_000;
/// What a `match` pair may select on.
const SELECTORS: [&str; 6] = [
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];
/// Codecs a client may compress its metrics with, preferred first (zstd,
/// lz4, gzip, snappy), as Kafka offers them.
const ACCEPTED_COMPRESSION: [i8; 4] = [4, 3, 1, 2];
/// A client instance is forgotten after this many push intervals without
/// a request (Kafka: three, and at least its cache expiry).
const EXPIRY_INTERVALS: u32 = 3;
const EXPIRY_MIN: Duration = Duration::from_secs(60);

/// The configs of a subscription, with Kafka's defaults, as DescribeConfigs
/// shows them.
pub fn defaults() -> [(&'static str, String); 3] {
    [(METRICS, String::new()), (INTERVAL_MS, INTERVAL_MS_DEFAULT.to_string()), (MATCH, String::new())]
}

/// Whether `key` may be set to `value` (`None`: removed) on a subscription.
pub fn check(key: &str, value: Option<&str>) -> Result<(), String> {
    let Some(value) = value else {
        return if [METRICS, INTERVAL_MS, MATCH].contains(&key) {
            Ok(())
        } else {
            Err(format!("Unknown client metrics config: {key}"))
        };
    };
    match key {
        METRICS => Ok(()),
        INTERVAL_MS => match value.trim().parse::<i64>() {
            Ok(ms) if (INTERVAL_MS_MIN..=INTERVAL_MS_MAX).contains(&ms) => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for interval.ms: must be between {INTERVAL_MS_MIN} and {INTERVAL_MS_MAX}"
            )),
        },
        MATCH => parse_match(value).map(|_| ()),
        _ => Err(format!("Unknown client metrics config: {key}")),
    }
}

/// Whether `name` may name a subscription (Kafka: not empty).
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `selector=regex` pairs, each regex anchored to the whole value.
fn parse_match(value: &str) -> Result<Vec<(String, regex::Regex)>, String> {
    list(value)
        .map(|pair| {
            let (selector, pattern) =
                pair.split_once('=').ok_or_else(|| format!("Illegal client matching pattern: {pair}"))?;
            let selector = selector.trim();
            if !SELECTORS.contains(&selector) {
                return Err(format!("Illegal client matching selector: {selector}"));
            }
            let regex = regex::Regex::new(&format!("^(?:{})$", pattern.trim()))
                .map_err(|e| format!("Illegal regex pattern {pattern}: {e}"))?;
            Ok((selector.to_string(), regex))
        })
        .collect()
}

/// One subscription as GetTelemetrySubscriptions applies it.
struct Subscription {
    metrics: Vec<String>,
    interval_ms: i32,
    matches: Vec<(String, regex::Regex)>,
}

impl Subscription {
    /// `None` when a stored value no longer parses (not expected: values
    /// are checked when set).
    fn of(configs: &BTreeMap<String, String>) -> Option<Self> {
        let metrics = configs.get(METRICS).map(|v| list(v).map(str::to_string).collect()).unwrap_or_default();
        let interval_ms = match configs.get(INTERVAL_MS) {
            Some(v) => v.trim().parse().ok()?,
            None => INTERVAL_MS_DEFAULT,
        };
        let matches = match configs.get(MATCH) {
            Some(v) => parse_match(v).ok()?,
            None => Vec::new(),
        };
        Some(Self { metrics, interval_ms, matches })
    }
}

/// Who a client is, as `match` selects on it.
#[derive(Clone, Debug, Default)]
pub struct ClientIdentity {
    pub client_id: String,
    pub principal: String,
    pub software_name: String,
    pub software_version: String,
    pub source: Option<SocketAddr>,
}

impl ClientIdentity {
    fn selector(&self, selector: &str, instance: &Uuid) -> String {
        match selector {
            "client_instance_id" => kafka_uuid(instance),
            "client_id" => self.client_id.clone(),
            "client_software_name" => self.software_name.clone(),
            "client_software_version" => self.software_version.clone(),
            "client_source_address" => self.source.map(|a| a.ip().to_string()).unwrap_or_default(),
            "client_source_port" => self.source.map(|a| a.port().to_string()).unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// Kafka's text form of a uuid (URL-safe base64, no padding), as clients
/// print their instance id.
fn kafka_uuid(id: &Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Pushed series: (metric name, labels) -> last value.
type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

/// What one client instance was told and has pushed.
struct Instance {
    identity: ClientIdentity,
    /// The subscriptions' fingerprint this instance's subscription was
    /// computed from: a change makes it recomputed.
    fingerprint: u64,
    subscription_id: i32,
    metrics: Vec<String>,
    interval: Duration,
    last_get: Option<Instant>,
    last_push: Option<Instant>,
    last_seen: Instant,
    terminating: bool,
    /// The last value of each pushed series.
    values: Series,
}

/// The broker's client instances and the software each connection
/// announced in ApiVersions. A terminated instance is kept (its values
/// dropped) until it expires, so a push after the last one is refused.
#[derive(Default)]
pub struct ClientMetrics {
    instances: Mutex<HashMap<Uuid, Instance>>,
    software: Mutex<HashMap<SocketAddr, (String, String)>>,
}

/// What a PushTelemetry brings.
pub struct Push<'a> {
    pub subscription_id: i32,
    pub terminating: bool,
    /// Kafka's codec id of `metrics`.
    pub compression: i8,
    pub metrics: &'a [u8],
    /// `telemetry.max.bytes`.
    pub max_bytes: usize,
}

pub type PushResult = Result<(), (ResponseError, String)>;

/// A GetTelemetrySubscriptions answer.
pub struct Subscribed {
    pub client_instance_id: Uuid,
    pub subscription_id: i32,
    pub push_interval_ms: i32,
    pub requested_metrics: Vec<String>,
    pub accepted_compression_types: Vec<i8>,
}

impl ClientMetrics {
    /// A connection's ApiVersions named its client software.
    pub fn announced(&self, peer: SocketAddr, name: &str, version: &str) {
        if !name.is_empty() || !version.is_empty() {
            self.software.lock().insert(peer, (name.to_string(), version.to_string()));
        }
    }

    /// A connection closed.
    pub fn disconnected(&self, peer: &SocketAddr) {
        self.software.lock().remove(peer);
    }

    /// The software a connection announced (empty when it did not).
    pub fn software(&self, peer: &SocketAddr) -> (String, String) {
        self.software.lock().get(peer).cloned().unwrap_or_default()
    }

    /// GetTelemetrySubscriptions: the client's instance id (a new one for
    /// the zero uuid) and what it should push.
    pub fn subscriptions(
        &self,
        image: &MetadataImage,
        requested: Uuid,
        identity: ClientIdentity,
    ) -> Result<Subscribed, (ResponseError, String)> {
        self.subscriptions_at(Instant::now(), image, requested, identity)
    }

    fn subscriptions_at(
        &self,
        now: Instant,
        image: &MetadataImage,
        requested: Uuid,
        identity: ClientIdentity,
    ) -> Result<Subscribed, (ResponseError, String)> {
        let mut instances = self.instances.lock();
        expire(&mut instances, now);
        let id = if requested.is_nil() { new_instance_id(&instances) } else { requested };
        let instance = instance(&mut instances, image, id, identity, now);
        let elapsed_since = |t: Option<Instant>| t.map(|t| now.duration_since(t));
        let last = [elapsed_since(instance.last_get), elapsed_since(instance.last_push)].into_iter().flatten().min();
        if last.is_some_and(|e| e < instance.interval) {
            return Err((
                ResponseError::ThrottlingQuotaExceeded,
                format!("Request from the client {} arrived before the next push interval", kafka_uuid(&id)),
            ));
        }
        instance.last_get = Some(now);
        Ok(Subscribed {
            client_instance_id: id,
            subscription_id: instance.subscription_id,
            push_interval_ms: instance.interval.as_millis() as i32,
            requested_metrics: instance.metrics.clone(),
            accepted_compression_types: ACCEPTED_COMPRESSION.to_vec(),
        })
    }

    /// PushTelemetry: checks the push against what the instance was told,
    /// then keeps the values (`metrics`, compressed with `compression`).
    pub fn push(&self, image: &MetadataImage, id: Uuid, identity: ClientIdentity, push: Push<'_>) -> PushResult {
        self.push_at(Instant::now(), image, id, identity, push)
    }

    fn push_at(
        &self,
        now: Instant,
        image: &MetadataImage,
        id: Uuid,
        identity: ClientIdentity,
        push: Push<'_>,
    ) -> PushResult {
        let Push { subscription_id, terminating, compression, metrics, max_bytes } = push;
        if id.is_nil() {
            return Err((ResponseError::InvalidRequest, "Invalid client instance id".into()));
        }
        let mut instances = self.instances.lock();
        expire(&mut instances, now);
        let instance = instance(&mut instances, image, id, identity, now);
        if instance.terminating {
            return Err((
                ResponseError::InvalidRequest,
                "The client sent a terminating push before: no push is accepted after it".into(),
            ));
        }
        instance.terminating = terminating;
        // the first push after a GetTelemetrySubscriptions may come early:
        // clients jitter the interval
        let fresh = match (instance.last_get, instance.last_push) {
            (Some(get), Some(push)) => get > push,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        let on_time = fresh || instance.last_push.is_some_and(|p| now.duration_since(p) >= instance.interval);
        if !on_time && !terminating {
            return Err((ResponseError::ThrottlingQuotaExceeded, "Pushed before the push interval".into()));
        }
        instance.last_push = Some(now);
        if subscription_id != instance.subscription_id {
            return Err((ResponseError::UnknownSubscriptionId, "The subscription changed".into()));
        }
        if !ACCEPTED_COMPRESSION.contains(&compression) && compression != 0 {
            return Err((ResponseError::UnsupportedCompressionType, format!("Unknown compression type {compression}")));
        }
        if metrics.len() > max_bytes {
            return Err((
                ResponseError::TelemetryTooLarge,
                format!("The metrics are {} bytes, over telemetry.max.bytes {max_bytes}", metrics.len()),
            ));
        }
        if terminating {
            instance.values.clear();
        }
        if metrics.is_empty() {
            return Ok(());
        }
        let raw = vltava_protocol::batch::decompress(compression as i16, metrics, max_bytes.saturating_mul(16))
            .map_err(|e| (ResponseError::InvalidRecord, e.to_string()))?;
        let data = MetricsData::decode(raw.as_slice())
            .map_err(|e| (ResponseError::InvalidRecord, format!("The metrics are not OTLP MetricsData: {e}")))?;
        if !terminating {
            record(&mut instance.values, &data);
        }
        Ok(())
    }

    /// Sets a gauge for every series live clients pushed (called when
    /// `/metrics` is scraped).
    pub fn export(&self) {
        let now = Instant::now();
        let mut instances = self.instances.lock();
        expire(&mut instances, now);
        for (id, instance) in instances.iter() {
            let client = [
                ("client_instance_id", kafka_uuid(id)),
                ("client_id", instance.identity.client_id.clone()),
                ("principal", instance.identity.principal.clone()),
                ("client_software_name", instance.identity.software_name.clone()),
                ("client_software_version", instance.identity.software_version.clone()),
            ];
            for ((name, labels), value) in &instance.values {
                let mut all: Vec<(String, String)> = client.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                all.extend(labels.iter().filter(|(k, _)| !client.iter().any(|(c, _)| c == k)).cloned());
                metrics::gauge!(name.clone(), &all).set(*value);
            }
        }
    }

    /// The number of client instances known (for tests and gauges).
    pub fn instances(&self) -> usize {
        self.instances.lock().len()
    }
}

fn new_instance_id(instances: &HashMap<Uuid, Instance>) -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if !instances.contains_key(&id) {
            return id;
        }
    }
}

fn expire(instances: &mut HashMap<Uuid, Instance>, now: Instant) {
    instances.retain(|_, i| {
        let ttl = (i.interval * EXPIRY_INTERVALS).max(EXPIRY_MIN);
        now.saturating_duration_since(i.last_seen) < ttl
    });
}

/// The instance `id`, created (or its subscription recomputed when the
/// subscriptions changed) as needed.
fn instance<'a>(
    instances: &'a mut HashMap<Uuid, Instance>,
    image: &MetadataImage,
    id: Uuid,
    identity: ClientIdentity,
    now: Instant,
) -> &'a mut Instance {
    let fingerprint = fingerprint(image);
    let instance = instances.entry(id).or_insert_with(|| Instance {
        identity: identity.clone(),
        fingerprint: fingerprint.wrapping_add(1),
        subscription_id: 0,
        metrics: Vec::new(),
        interval: Duration::ZERO,
        last_get: None,
        last_push: None,
        last_seen: now,
        terminating: false,
        values: BTreeMap::new(),
    });
    instance.last_seen = now;
    if instance.identity.client_id.is_empty() {
        instance.identity = identity;
    }
    if instance.fingerprint != fingerprint {
        let (metrics, interval_ms) = matched(image, &instance.identity, &id);
        instance.subscription_id = subscription_id(&metrics, interval_ms, &id);
        instance.metrics = metrics;
        instance.interval = Duration::from_millis(interval_ms as u64);
        instance.fingerprint = fingerprint;
        // a changed subscription is answered at once
        instance.last_get = None;
        instance.last_push = None;
    }
    instance
}

/// A hash of every subscription's configs.
fn fingerprint(image: &MetadataImage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (name, configs) in image.resource_configs(RESOURCE_CLIENT_METRICS) {
        name.hash(&mut h);
        configs.hash(&mut h);
    }
    h.finish()
}

/// The metric prefixes and push interval of the subscriptions matching a
/// client (all metrics as the single prefix `*` when one asks for all).
fn matched(image: &MetadataImage, identity: &ClientIdentity, id: &Uuid) -> (Vec<String>, i32) {
    let mut metrics = std::collections::BTreeSet::new();
    let mut interval = INTERVAL_MS_DEFAULT;
    for (_, configs) in image.resource_configs(RESOURCE_CLIENT_METRICS) {
        let Some(s) = Subscription::of(configs) else { continue };
        if s.matches.iter().all(|(selector, regex)| regex.is_match(&identity.selector(selector, id))) {
            metrics.extend(s.metrics);
            interval = interval.min(s.interval_ms);
        }
    }
    if metrics.contains(ALL_METRICS) {
        return (vec![ALL_METRICS.to_string()], interval);
    }
    (metrics.into_iter().collect(), interval)
}

/// Changes whenever the metrics or the interval change (Kafka: a CRC32C
/// of both, XORed with the instance id's hash).
fn subscription_id(metrics: &[String], interval_ms: i32, id: &Uuid) -> i32 {
    let text = format!("{metrics:?}{interval_ms}");
    let crc = crc32c::crc32c(text.as_bytes());
    let (hi, lo) = id.as_u64_pair();
    (crc ^ (hi as u32) ^ ((hi >> 32) as u32) ^ (lo as u32) ^ ((lo >> 32) as u32)) as i32
}

/// A Prometheus-safe name: OTLP's `org.apache.kafka.producer.x` becomes
/// `org_apache_kafka_producer_x`.
fn prometheus_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn label_value(v: &Option<any_value::Value>) -> String {
    match v {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn labels(attributes: &[KeyValue]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = attributes
        .iter()
        .map(|kv| (prometheus_name(&kv.key), label_value(&kv.value.as_ref().and_then(|v| v.value.clone()))))
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn number(p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> Option<f64> {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => Some(d),
        Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
        None => None,
    }
}

/// Keeps the latest value of each series in `data`: gauges and sums as
/// themselves, histograms and summaries as their `_count` and `_sum`.
fn record(values: &mut Series, data: &MetricsData) {
    let metrics = data.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
    for m in metrics {
        let name = prometheus_name(&m.name);
        let mut put = |suffix: &str, attributes: &[KeyValue], value: f64| {
            values.insert((format!("{name}{suffix}"), labels(attributes)), value);
        };
        match &m.data {
            Some(metric::Data::Gauge(g)) => {
                g.data_points.iter().for_each(|p| number(p).into_iter().for_each(|v| put("", &p.attributes, v)))
            }
            Some(metric::Data::Sum(s)) => {
                s.data_points.iter().for_each(|p| number(p).into_iter().for_each(|v| put("", &p.attributes, v)))
            }
            Some(metric::Data::Histogram(h)) => h.data_points.iter().for_each(|p| {
                put("_count", &p.attributes, p.count as f64);
                put("_sum", &p.attributes, p.sum.unwrap_or(0.0));
            }),
            Some(metric::Data::Summary(s)) => s.data_points.iter().for_each(|p| {
                put("_count", &p.attributes, p.count as f64);
                put("_sum", &p.attributes, p.sum);
            }),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points.iter().for_each(|p| {
                put("_count", &p.attributes, p.count as f64);
                put("_sum", &p.attributes, p.sum.unwrap_or(0.0));
            }),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
    use vltava_metadata::MetadataRecord;

    fn image(subs: &[(&str, &str, &str)]) -> MetadataImage {
        let records: Vec<MetadataRecord> = subs
            .iter()
            .map(|(name, key, value)| MetadataRecord::ResourceConfig {
                resource_type: RESOURCE_CLIENT_METRICS,
                name: name.to_string(),
                key: key.to_string(),
                value: Some(value.to_string()),
            })
            .collect();
        MetadataImage::default().apply(&records)
    }

    fn client(id: &str) -> ClientIdentity {
        ClientIdentity { client_id: id.into(), principal: "User:ANONYMOUS".into(), ..Default::default() }
    }

    fn payload(name: &str, value: f64) -> Vec<u8> {
        let point = NumberDataPoint {
            attributes: vec![KeyValue {
                key: "node.id".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue("1".into())) }),
                ..Default::default()
            }],
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        };
        let metric = Metric {
            name: name.into(),
            data: Some(metric::Data::Gauge(Gauge { data_points: vec![point] })),
            ..Default::default()
        };
        MetricsData {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics: vec![metric], ..Default::default() }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn configs_are_checked_as_kafka_does() {
        assert!(check(INTERVAL_MS, Some("100")).is_ok());
        assert!(check(INTERVAL_MS, Some("99")).is_err());
        assert!(check(INTERVAL_MS, Some("3600001")).is_err());
        assert!(check(MATCH, Some("client_id=app-.*, client_software_name=librdkafka")).is_ok());
        assert!(check(MATCH, Some("client_colour=red")).is_err(), "unknown selector");
        assert!(check(MATCH, Some("client_id=(")).is_err(), "bad regex");
        assert!(check(MATCH, Some("client_id")).is_err(), "no =");
        assert!(check("metric.names", Some("x")).is_err());
        assert!(check(METRICS, None).is_ok());
    }

    #[test]
    fn matching_subscriptions_are_merged() {
        let img = image(&[
            ("prod", METRICS, "org.apache.kafka.producer."),
            ("prod", INTERVAL_MS, "1000"),
            ("prod", MATCH, "client_id=app-.*"),
            ("other", METRICS, "org.apache.kafka.consumer."),
            ("other", MATCH, "client_id=someone-else"),
            ("slow", METRICS, "org.apache.kafka.client."),
            ("slow", INTERVAL_MS, "5000"),
        ]);
        let id = Uuid::new_v4();
        let (metrics, interval) = matched(&img, &client("app-1"), &id);
        assert_eq!(metrics, vec!["org.apache.kafka.client.", "org.apache.kafka.producer."]);
        assert_eq!(interval, 1000);
        let (metrics, interval) = matched(&img, &client("app"), &id);
        assert_eq!((metrics, interval), (vec!["org.apache.kafka.client.".to_string()], 5000), "regex is anchored");
        let all = image(&[("a", METRICS, "*"), ("b", METRICS, "x.")]);
        assert_eq!(matched(&all, &client("c"), &id).0, vec!["*"]);
        assert_eq!(matched(&MetadataImage::default(), &client("c"), &id), (vec![], INTERVAL_MS_DEFAULT));
    }

    #[test]
    fn pushes_follow_kafka_rules_and_values_are_kept() {
        let img = image(&[("all", METRICS, "*"), ("all", INTERVAL_MS, "1000")]);
        let cm = ClientMetrics::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let got = cm.subscriptions_at(at(0), &img, Uuid::nil(), client("app")).unwrap();
        assert!(!got.client_instance_id.is_nil());
        assert_eq!(got.requested_metrics, vec!["*"]);
        assert_eq!(got.push_interval_ms, 1000);
        let id = got.client_instance_id;
        let again = cm.subscriptions_at(at(500), &img, id, client("app"));
        assert_eq!(again.err().map(|e| e.0), Some(ResponseError::ThrottlingQuotaExceeded));
        let sub = got.subscription_id;
        let push = |ms: u64, sub: i32, terminating: bool, metrics: &[u8], max_bytes: usize| {
            let p = Push { subscription_id: sub, terminating, compression: 0, metrics, max_bytes };
            cm.push_at(at(ms), &img, id, client("app"), p).map_err(|e| e.0)
        };
        let body = payload("org.apache.kafka.producer.record.queue.time.avg", 2.5);
        assert_eq!(push(600, sub ^ 1, false, &body, 1 << 20), Err(ResponseError::UnknownSubscriptionId));
        assert_eq!(push(1700, sub, false, &body, 1 << 20), Ok(()));
        assert_eq!(push(2000, sub, false, &body, 1 << 20), Err(ResponseError::ThrottlingQuotaExceeded));
        {
            let instances = cm.instances.lock();
            let values = &instances[&id].values;
            let key = (
                "org_apache_kafka_producer_record_queue_time_avg".to_string(),
                vec![("node_id".to_string(), "1".to_string())],
            );
            assert_eq!(values.get(&key), Some(&2.5));
        }
        assert_eq!(push(2800, sub, false, b"\xff\xff not protobuf", 1 << 20), Err(ResponseError::InvalidRecord));
        assert_eq!(push(3900, sub, false, &body, 4), Err(ResponseError::TelemetryTooLarge));
        assert_eq!(push(4000, sub, true, &[], 1 << 20), Ok(()), "a terminating push is never early");
        assert_eq!(push(6000, sub, false, &body, 1 << 20), Err(ResponseError::InvalidRequest));
        let p = Push { subscription_id: 0, terminating: false, compression: 0, metrics: &body, max_bytes: 1 << 20 };
        assert_eq!(cm.push(&img, Uuid::nil(), client("app"), p).map_err(|e| e.0), Err(ResponseError::InvalidRequest));
    }

    #[test]
    fn a_changed_subscription_changes_the_id_and_is_answered_at_once() {
        let cm = ClientMetrics::default();
        let before = image(&[("all", METRICS, "*")]);
        let got = cm.subscriptions(&before, Uuid::nil(), client("app")).unwrap();
        let after = image(&[("all", METRICS, "org.apache.kafka.")]);
        let again = cm.subscriptions(&after, got.client_instance_id, client("app")).unwrap();
        assert_ne!(again.subscription_id, got.subscription_id);
        assert_eq!(again.requested_metrics, vec!["org.apache.kafka."]);
    }
}
