//! Client quotas as Kafka enforces them (KIP-13, KIP-55, KIP-219): the
//! quotas live in the metadata log (`ClientQuota` records, set by
//! AlterClientQuotas); each request's bytes are recorded against the quota
//! entity that applies to its user and client id, and a client over its
//! rate is told how long to back off (`throttle_time_ms`) while the
//! broker holds its next request back for that long (Kafka mutes the
//! channel).
//!
//! Which quota applies (Kafka's precedence, first match wins):
//! user+client-id, user+default client-id, user, default user+client-id,
//! default user+default client-id, default user, client-id, default
//! client-id. The rate is measured per matched entity with its defaults
//! filled in by the request's own names (every user under a default user
//! quota has a rate of its own).
//!
//! What is measured: `producer_byte_rate` a Produce's size when it is read,
//! `consumer_byte_rate` a consumer Fetch's records when answered,
//! `request_percentage` the time spent handling each request (its handler
//! called and its response future polled: Kafka's request handler time),
//! as a percentage of one thread; `connection_creation_rate` connections
//! accepted per IP address (over it, a connection is closed after its
//! throttle time, as Kafka's KIP-612).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vltava_metadata::{MetadataImage, QuotaEntity};

/// `quota.window.num` and `quota.window.size.seconds`: the rate is taken
/// over this many one-second samples.
const SAMPLES: usize = 11;
const SAMPLE: Duration = Duration::from_secs(1);

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// The keys AlterClientQuotas accepts, and for which entity types.
pub fn key_allowed(key: &str, entity_types: &[&str]) -> bool {
    let ip = entity_types == ["ip"];
    match key {
        CONNECTION_CREATION_RATE => ip,
        PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE | REQUEST_PERCENTAGE | CONTROLLER_MUTATION_RATE => {
            !ip && entity_types.iter().all(|t| *t == "user" || *t == "client-id")
        }
        _ => false,
    }
}

/// A rate over the last `SAMPLES` seconds (Kafka's sampled Rate).
#[derive(Debug, Default)]
struct Sensor {
    /// (sample start, amount recorded in it)
    samples: VecDeque<(Instant, f64)>,
}

impl Sensor {
    fn record(&mut self, amount: f64, now: Instant) {
        match self.samples.back_mut() {
            Some((start, sum)) if now.duration_since(*start) < SAMPLE => *sum += amount,
            _ => self.samples.push_back((now, amount)),
        }
        while self.samples.front().is_some_and(|(start, _)| now.duration_since(*start) >= SAMPLE * SAMPLES as u32) {
            self.samples.pop_front();
        }
    }

    /// The window the rate is taken over: from the oldest sample to now,
    /// at least `SAMPLES - 1` samples long (as Kafka's, so that a first
    /// burst is not measured over a few milliseconds).
    fn window(&self, now: Instant) -> Duration {
        let elapsed = self.samples.front().map_or(Duration::ZERO, |(start, _)| now.duration_since(*start));
        elapsed.max(SAMPLE * (SAMPLES as u32 - 1))
    }

    /// Per second.
    fn rate(&self, now: Instant) -> f64 {
        let total: f64 = self.samples.iter().map(|(_, v)| v).sum();
        total / self.window(now).as_secs_f64()
    }
}

/// Who a request comes from, for quotas.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Client {
    pub user: String,
    pub client_id: String,
}

/// The quota of `key` that applies to `client`, with the entity its rate
/// is measured on (defaults filled in), by Kafka's precedence.
pub fn applicable(image: &MetadataImage, key: &str, client: &Client) -> Option<(QuotaEntity, f64)> {
    let user = |name: Option<&str>| ("user".to_string(), name.map(str::to_string));
    let id = |name: Option<&str>| ("client-id".to_string(), name.map(str::to_string));
    let (u, c) = (Some(client.user.as_str()), Some(client.client_id.as_str()));
    // (the entity as stored, sorted by type: client-id before user)
    let candidates: [QuotaEntity; 8] = [
        vec![id(c), user(u)],
        vec![id(None), user(u)],
        vec![user(u)],
        vec![id(c), user(None)],
        vec![id(None), user(None)],
        vec![user(None)],
        vec![id(c)],
        vec![id(None)],
    ];
    candidates.into_iter().find_map(|entity| {
        let value = image.client_quota(&entity)?.get(key)?.get();
        // measured per actual user and client id
        let measured = entity
            .into_iter()
            .map(|(t, _)| {
                let name = if t == "user" { client.user.clone() } else { client.client_id.clone() };
                (t, Some(name))
            })
            .collect();
        Some((measured, value))
    })
}

/// The broker's quota sensors.
#[derive(Default)]
pub struct QuotaManager {
    sensors: Mutex<HashMap<(&'static str, QuotaEntity), Sensor>>,
}

impl QuotaManager {
    /// Records `amount` (bytes; for `request_percentage`, percent-seconds
    /// of request handling) against `client`'s quota of `key`; returns how
    /// long it must back off (zero when within its quota or with none).
    pub fn record(&self, image: &MetadataImage, key: &'static str, client: &Client, amount: f64) -> Duration {
        let Some((entity, quota)) = applicable(image, key, client) else { return Duration::ZERO };
        let (rate, wait) = self.sample(key, entity, quota, amount);
        crate::broker_metrics::quota(key, client, rate, wait);
        wait
    }

    /// A connection from `ip` was accepted: how long to hold it before
    /// closing it when the IP is over its `connection_creation_rate`
    /// (Kafka's KIP-612 delayed close), zero when within it or with none.
    pub fn connection_created(&self, image: &MetadataImage, ip: std::net::IpAddr) -> Duration {
        let Some((entity, quota)) = ip_quota(image, ip) else { return Duration::ZERO };
        self.sample(CONNECTION_CREATION_RATE, entity, quota, 1.0).1
    }

    /// Records `amount` on the sensor of `(key, entity)`: its rate and the
    /// throttle that brings it back under `quota`.
    fn sample(&self, key: &'static str, entity: QuotaEntity, quota: f64, amount: f64) -> (f64, Duration) {
        let now = Instant::now();
        let mut sensors = self.sensors.lock();
        let sensor = sensors.entry((key, entity)).or_default();
        sensor.record(amount, now);
        let rate = sensor.rate(now);
        (rate, throttle(rate, quota, sensor.window(now)))
    }
}

/// A request's topic mutations under a `controller_mutation_rate` quota
/// (KIP-599): partitions created or deleted by CreateTopics,
/// CreatePartitions and DeleteTopics.
pub struct Mutations<'a> {
    manager: &'a QuotaManager,
    entity: QuotaEntity,
    quota: f64,
    /// Strict (the request versions that know THROTTLING_QUOTA_EXCEEDED): a
    /// topic is refused while the rate is over the quota. Otherwise every
    /// topic goes through and only the throttle tells the client.
    strict: bool,
}

impl QuotaManager {
    /// The mutation quota of `client`, if one applies.
    pub fn mutations(&self, image: &MetadataImage, client: &Client, strict: bool) -> Option<Mutations<'_>> {
        let (entity, quota) = applicable(image, CONTROLLER_MUTATION_RATE, client)?;
        Some(Mutations { manager: self, entity, quota, strict })
    }
}

impl Client {
    /// The quota identity of a request: the principal's name (ANONYMOUS
    /// without authentication) and the client id.
    pub fn of(session: &crate::handlers::Session) -> Self {
        Client { user: session.principal.name.clone(), client_id: session.client_id.clone() }
    }
}

/// What a topic refused under `controller_mutation_rate` is answered with.
pub const MUTATION_REFUSED: &str = "The throttling quota has been exceeded.";

impl Mutations<'_> {
    /// Whether a topic mutating `partitions` partitions may go ahead (and
    /// then it counts, even past the quota: Kafka lets one request burst).
    pub fn admit(&self, partitions: u32) -> bool {
        let now = Instant::now();
        let mut sensors = self.manager.sensors.lock();
        let sensor = sensors.entry((CONTROLLER_MUTATION_RATE, self.entity.clone())).or_default();
        if self.strict && sensor.rate(now) > self.quota {
            return false;
        }
        sensor.record(partitions as f64, now);
        true
    }

    /// `throttle` as a response's `throttle_time_ms`.
    pub fn throttle_ms(&self) -> i32 {
        self.throttle().as_millis().min(i32::MAX as u128) as i32
    }

    /// How long the client must back off now.
    pub fn throttle(&self) -> Duration {
        let now = Instant::now();
        let mut sensors = self.manager.sensors.lock();
        let sensor = sensors.entry((CONTROLLER_MUTATION_RATE, self.entity.clone())).or_default();
        throttle(sensor.rate(now), self.quota, sensor.window(now))
    }
}

/// The `connection_creation_rate` of an IP address (its own, else the IP
/// default), measured per address.
pub fn ip_quota(image: &MetadataImage, ip: std::net::IpAddr) -> Option<(QuotaEntity, f64)> {
    let addr = ip.to_string();
    let own: QuotaEntity = vec![("ip".to_string(), Some(addr))];
    let default: QuotaEntity = vec![("ip".to_string(), None)];
    let value = [&own, &default].into_iter().find_map(|e| image.client_quota(e)?.get(CONNECTION_CREATION_RATE))?;
    Some((own, value.get()))
}

/// Kafka's throttle time: how long at no traffic brings the rate over
/// `window` back to `quota`, at most one whole window.
fn throttle(rate: f64, quota: f64, window: Duration) -> Duration {
    if quota <= 0.0 {
        return window;
    }
    if rate <= quota {
        return Duration::ZERO;
    }
    let ms = (rate - quota) / quota * window.as_millis() as f64;
    Duration::from_millis(ms as u64).min(SAMPLE * SAMPLES as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vltava_metadata::{MetadataRecord, QuotaValue};

    fn quota(entity: &[(&str, Option<&str>)], key: &str, value: f64) -> MetadataRecord {
        MetadataRecord::ClientQuota {
            entity: entity.iter().map(|(t, n)| (t.to_string(), n.map(str::to_string))).collect(),
            key: key.into(),
            value: Some(QuotaValue::new(value)),
        }
    }

    #[test]
    fn kafkas_precedence_picks_the_most_specific_quota() {
        let c = Client { user: "alice".into(), client_id: "app".into() };
        let other = Client { user: "bob".into(), client_id: "other".into() };
        let k = PRODUCER_BYTE_RATE;
        let mut img = MetadataImage::default().apply(&[quota(&[("client-id", None)], k, 1.0)]);
        assert_eq!(applicable(&img, k, &c).map(|q| q.1), Some(1.0), "default client-id");
        img = img.apply(&[quota(&[("client-id", Some("app"))], k, 2.0)]);
        assert_eq!(applicable(&img, k, &c).map(|q| q.1), Some(2.0));
        img = img.apply(&[quota(&[("user", None)], k, 3.0)]);
        assert_eq!(applicable(&img, k, &c).map(|q| q.1), Some(3.0), "any user quota beats client-id ones");
        img = img.apply(&[quota(&[("user", Some("alice"))], k, 4.0)]);
        img = img.apply(&[quota(&[("user", Some("alice")), ("client-id", Some("app"))], k, 5.0)]);
        let (entity, value) = applicable(&img, k, &c).unwrap();
        assert_eq!(value, 5.0);
        assert_eq!(entity, vec![("client-id".into(), Some("app".into())), ("user".into(), Some("alice".into()))]);
        let (entity, value) = applicable(&img, k, &other).unwrap();
        assert_eq!((entity, value), (vec![("user".into(), Some("bob".into()))], 3.0), "measured per user");
        assert_eq!(applicable(&img, CONSUMER_BYTE_RATE, &c), None);
    }

    #[test]
    fn over_the_rate_means_a_throttle_that_brings_it_back() {
        let window = Duration::from_secs(10);
        assert_eq!(throttle(100.0, 100.0, window), Duration::ZERO);
        assert_eq!(throttle(150.0, 100.0, window), Duration::from_secs(5));
        assert_eq!(throttle(10_000.0, 1.0, window), Duration::from_secs(11), "at most the whole window");
        let mut s = Sensor::default();
        let t0 = Instant::now();
        s.record(10_000.0, t0);
        assert_eq!(s.rate(t0), 1000.0, "a first burst counts over the minimum window");
        s.record(10_000.0, t0 + Duration::from_secs(30));
        assert_eq!(s.samples.len(), 1, "old samples expire");
        assert!(key_allowed(CONNECTION_CREATION_RATE, &["ip"]) && !key_allowed(PRODUCER_BYTE_RATE, &["ip"]));
        assert!(key_allowed(REQUEST_PERCENTAGE, &["client-id"]));
    }

    #[test]
    fn mutations_over_the_rate_are_refused_only_in_strict_mode() {
        let img =
            MetadataImage::default().apply(&[quota(&[("client-id", Some("admin"))], CONTROLLER_MUTATION_RATE, 1.0)]);
        let qm = QuotaManager::default();
        let c = Client { user: "u".into(), client_id: "admin".into() };
        assert!(qm.mutations(&img, &Client { user: "u".into(), client_id: "other".into() }, true).is_none());
        let strict = qm.mutations(&img, &c, true).unwrap();
        assert!(strict.admit(50), "under the rate: admitted, even for a burst past it");
        assert!(!strict.admit(1), "over the rate: refused");
        assert!(!strict.throttle().is_zero());
        let permissive = qm.mutations(&img, &c, false).unwrap();
        assert!(permissive.admit(1), "older versions are only throttled");
    }

    #[test]
    fn an_ip_uses_its_own_connection_rate_else_the_default() {
        let k = CONNECTION_CREATION_RATE;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let mut img = MetadataImage::default();
        assert_eq!(ip_quota(&img, ip("10.0.0.1")), None);
        img = img.apply(&[quota(&[("ip", None)], k, 5.0), quota(&[("ip", Some("10.0.0.1"))], k, 2.0)]);
        assert_eq!(ip_quota(&img, ip("10.0.0.1")).map(|q| q.1), Some(2.0));
        let (entity, value) = ip_quota(&img, ip("10.0.0.2")).unwrap();
        assert_eq!((entity, value), (vec![("ip".into(), Some("10.0.0.2".into()))], 5.0), "measured per address");
        let qm = QuotaManager::default();
        let over = (0..100).map(|_| qm.connection_created(&img, ip("10.0.0.1"))).filter(|t| !t.is_zero()).count();
        assert!(over > 0, "100 connections at once are over 2 per second");
        assert!(qm.connection_created(&img, ip("10.0.0.3")).is_zero(), "another address has its own rate");
        assert!(key_allowed(PRODUCER_BYTE_RATE, &["user", "client-id"]) && !key_allowed("bogus", &["user"]));
    }
}
