//! Metrics with Kafka's names, as the Prometheus JMX exporter's standard
//! Kafka rules render Kafka's MBeans (lower-case, `kafka_<domain>_<type>_
//! <name>`, `_total` for meters), so that Kafka dashboards and alerts carry
//! over. Counters and histograms are recorded where things happen (through
//! the `metrics` crate's global recorder); gauges of state (partitions,
//! logs, the quorum, the process) are computed from the broker when
//! `/metrics` is scraped. README's "Metrics" section lists the mapping.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::Broker;

/// `kafka.network:type=RequestMetrics,name=TotalTimeMs,request=...`
pub const REQUEST_TOTAL_TIME: &str = "kafka_network_requestmetrics_totaltimems";
/// `kafka.network:type=RequestMetrics,name=RequestsPerSec,request=...`
pub const REQUESTS: &str = "kafka_network_requestmetrics_requests_total";
/// `kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=...`
pub const MESSAGES_IN: &str = "kafka_server_brokertopicmetrics_messagesin_total";
/// `kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=...`
pub const BYTES_IN: &str = "kafka_server_brokertopicmetrics_bytesin_total";
/// `kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec,topic=...`
pub const BYTES_OUT: &str = "kafka_server_brokertopicmetrics_bytesout_total";
/// `kafka.server:type=BrokerTopicMetrics,name=FailedProduceRequestsPerSec,topic=...`
pub const FAILED_PRODUCE: &str = "kafka_server_brokertopicmetrics_failedproducerequests_total";
/// `kafka.server:type=socket-server-metrics,name=connection-count,listener=...`
pub const CONNECTIONS: &str = "kafka_server_socket_server_metrics_connection_count";
/// `kafka.server:type=socket-server-metrics,name=connection-creation-total,listener=...`
pub const CONNECTIONS_CREATED: &str = "kafka_server_socket_server_metrics_connection_creation_total";

/// `kafka.server:type=ReplicaManager,name=IsrShrinksPerSec` / `IsrExpandsPerSec`
pub const ISR_SHRINKS: &str = "kafka_server_replicamanager_isrshrinks_total";
pub const ISR_EXPANDS: &str = "kafka_server_replicamanager_isrexpands_total";
/// `kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs`
pub const FLUSH_TIME: &str = "kafka_log_logflushstats_logflushrateandtimems";
/// Records one fsync made durable (vltava's group commit: every append
/// before an fsync starts shares it).
pub const FLUSH_RECORDS: &str = "vltava_log_flush_group_commit_records";

/// Group-commit batch buckets, in records.
const RECORD_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0, 100000.0];

/// Request latency buckets, in milliseconds.
const LATENCY_BUCKETS_MS: &[f64] =
    &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0];

/// A gauge not set by a scrape for this long disappears (a deleted
/// partition's series, for one).
const GAUGE_IDLE: Duration = Duration::from_secs(120);

/// The process's recorder, installed once (several brokers in one test
/// process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("timems".into()), LATENCY_BUCKETS_MS)
            .expect("buckets are not empty")
            .set_buckets_for_metric(Matcher::Suffix("records".into()), RECORD_BUCKETS)
            .expect("buckets are not empty")
            .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only this broker's gauges");
        }
        // broker-wide counters are served from 0, as Kafka's meters
        counter!(ISR_SHRINKS).increment(0);
        counter!(ISR_EXPANDS).increment(0);
        handle
    })
}

/// Kafka's name of an API (`Produce`, `FindCoordinator`, ...), the
/// `request` label of RequestMetrics.
pub fn api_name(api: kafka_protocol::messages::ApiKey) -> &'static str {
    static NAMES: OnceLock<std::collections::HashMap<i16, &'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        kafka_protocol::messages::ApiKey::iter()
            .map(|k| (k as i16, &*Box::leak(format!("{k:?}").into_boxed_str())))
            .collect()
    });
    names.get(&(api as i16)).copied().unwrap_or("Unknown")
}

/// One request answered: its API (Kafka's name) and how long it took from
/// being read to its response being written.
pub fn request_done(api: &'static str, elapsed: Duration) {
    counter!(REQUESTS, "request" => api).increment(1);
    histogram!(REQUEST_TOTAL_TIME, "request" => api).record(elapsed.as_secs_f64() * 1000.0);
}

/// A topic's produce counters, registered once (by each of its partitions
/// here, as handles to the same series) so that an append only adds. The
/// partition's own totals are kept too, for readers in the process (the
/// console's throughput chart) that must not render every metric.
pub struct TopicCounters {
    messages_in: metrics::Counter,
    bytes_in: metrics::Counter,
    messages_total: std::sync::atomic::AtomicU64,
    bytes_total: std::sync::atomic::AtomicU64,
}

impl TopicCounters {
    pub fn new(topic: &str) -> Self {
        Self {
            messages_in: counter!(MESSAGES_IN, "topic" => topic.to_string()),
            bytes_in: counter!(BYTES_IN, "topic" => topic.to_string()),
            messages_total: Default::default(),
            bytes_total: Default::default(),
        }
    }

    /// Records appended to the topic by producers.
    pub fn produced(&self, messages: u64, bytes: u64) {
        self.messages_in.increment(messages);
        self.bytes_in.increment(bytes);
        self.messages_total.fetch_add(messages, std::sync::atomic::Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// (messages, bytes) produced to this partition here since it opened.
    pub fn produced_totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.messages_total.load(Relaxed), self.bytes_total.load(Relaxed))
    }
}

/// A produce to a topic failed.
pub fn produce_failed(topic: &str) {
    counter!(FAILED_PRODUCE, "topic" => topic.to_string()).increment(1);
}

/// Bytes sent to consumers and followers by this process (all topics).
static BYTES_OUT_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes of a topic sent to consumers and followers.
pub fn fetched(topic: &str, bytes: u64) {
    counter!(BYTES_OUT, "topic" => topic.to_string()).increment(bytes);
    BYTES_OUT_TOTAL.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Every byte [`fetched`] so far in this process.
pub fn bytes_out_total() -> u64 {
    BYTES_OUT_TOTAL.load(std::sync::atomic::Ordering::Relaxed)
}

/// A leader's ISR lost members.
pub fn isr_shrunk() {
    counter!(ISR_SHRINKS).increment(1);
}

/// A leader added a follower to its ISR.
pub fn isr_expanded() {
    counter!(ISR_EXPANDS).increment(1);
}

/// An fsync of a partition's log took `elapsed` and made `records` more
/// offsets durable.
pub fn flushed(elapsed: Duration, records: u64) {
    histogram!(FLUSH_TIME).record(elapsed.as_secs_f64() * 1000.0);
    histogram!(FLUSH_RECORDS).record(records as f64);
}

/// A client's measured rate of a quota `key` and the throttle it was
/// given (Kafka's `kafka.server:type=Produce|Fetch,user=,client-id=`
/// byte-rate and throttle-time).
pub fn quota(key: &str, client: &crate::quotas::Client, rate: f64, throttle: Duration) {
    let kind = match key {
        crate::quotas::PRODUCER_BYTE_RATE => "produce",
        crate::quotas::CONSUMER_BYTE_RATE => "fetch",
        _ => return,
    };
    let labels = [("user", client.user.clone()), ("client_id", client.client_id.clone())];
    gauge!(format!("kafka_server_{kind}_byte_rate"), &labels).set(rate);
    gauge!(format!("kafka_server_{kind}_throttle_time"), &labels).set(throttle.as_secs_f64() * 1000.0);
}

/// A connection was accepted (`opened`) or closed on a listener.
pub fn connection(listener: &str, opened: bool) {
    let g = gauge!(CONNECTIONS, "listener" => listener.to_string());
    if opened {
        g.increment(1.0);
        counter!(CONNECTIONS_CREATED, "listener" => listener.to_string()).increment(1);
    } else {
        g.decrement(1.0);
    }
}

/// The Prometheus text of every metric, with the state gauges computed now
/// (`broker`: none while the broker is still recovering its logs).
pub fn render(broker: Option<&Broker>) -> String {
    let handle = handle();
    process_gauges();
    if let Some(broker) = broker {
        state_gauges(broker);
        broker.client_metrics.export();
    }
    handle.run_upkeep();
    handle.render()
}

/// `process_resident_memory_bytes` and `process_open_fds`, the names of
/// Prometheus' process collector, from /proc.
fn process_gauges() {
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        if let Some(pages) = statm.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()) {
            gauge!("process_resident_memory_bytes").set(pages * 4096.0);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge!("process_open_fds").set(fds.count() as f64);
    }
}

/// ReplicaManager, Log, controller and quorum gauges from the broker's
/// state now.
fn state_gauges(broker: &Broker) {
    let image = broker.controller.image();
    let per_partition = broker.config.metrics_per_partition;
    let (mut partitions, mut leaders, mut under_replicated, mut under_min_isr, mut offline_dirs) = (0, 0, 0, 0, 0);
    for p in broker.replicas.all() {
        partitions += 1;
        if p.is_offline() {
            offline_dirs += 1;
            continue;
        }
        let state = p.state();
        if state.leader == broker.config.node_id {
            leaders += 1;
            if state.isr.len() < state.replicas.len() {
                under_replicated += 1;
            }
            if (state.isr.len() as i32) < p.settings().min_insync_replicas {
                under_min_isr += 1;
            }
        }
        if per_partition {
            let (topic, index) = (p.topic.clone(), p.index.to_string());
            let w = p.watermarks();
            let labels = [("topic", topic), ("partition", index)];
            gauge!("kafka_log_log_size", &labels).set(p.size_bytes() as f64);
            gauge!("kafka_log_log_logstartoffset", &labels).set(w.log_start_offset as f64);
            gauge!("kafka_log_log_logendoffset", &labels).set(p.log_end_offset() as f64);
            gauge!("kafka_cluster_partition_underreplicated", &labels).set(
                if state.leader == broker.config.node_id && state.isr.len() < state.replicas.len() { 1.0 } else { 0.0 },
            );
        }
    }
    gauge!("kafka_server_replicamanager_partitioncount").set(partitions as f64);
    gauge!("kafka_server_replicamanager_leadercount").set(leaders as f64);
    gauge!("kafka_server_replicamanager_underreplicatedpartitions").set(under_replicated as f64);
    gauge!("kafka_server_replicamanager_underminisrpartitioncount").set(under_min_isr as f64);
    gauge!("kafka_server_replicamanager_offlinereplicacount").set(offline_dirs as f64);
    let offline_dirs_count = broker.replicas.log_dirs().iter().filter(|d| d.is_offline()).count();
    gauge!("kafka_log_logmanager_offlinelogdirectorycount").set(offline_dirs_count as f64);

    // the controller's view: Kafka reports these on the active controller only
    let active = broker.controller.quorum().is_leader();
    gauge!("kafka_controller_kafkacontroller_activecontrollercount").set(if active { 1.0 } else { 0.0 });
    let (mut global_partitions, mut offline) = (0, 0);
    for t in image.topics() {
        for p in &t.partitions {
            global_partitions += 1;
            if p.leader < 0 {
                offline += 1;
            }
        }
    }
    let controller_value = |v: usize| if active { v as f64 } else { 0.0 };
    gauge!("kafka_controller_kafkacontroller_offlinepartitionscount").set(controller_value(offline));
    gauge!("kafka_controller_kafkacontroller_globalpartitioncount").set(controller_value(global_partitions));
    gauge!("kafka_controller_kafkacontroller_globaltopiccount").set(controller_value(image.topic_count()));
    let fenced = image.brokers().filter(|b| b.fenced).count();
    gauge!("kafka_controller_kafkacontroller_fencedbrokercount").set(controller_value(fenced));
    gauge!("kafka_controller_kafkacontroller_activebrokercount")
        .set(controller_value(image.brokers().count() - fenced));

    // the metadata log (KRaft's raft-metrics and metadata loader)
    let status = broker.controller.quorum().status();
    gauge!("kafka_server_raft_metrics_current_leader").set(status.leader as f64);
    gauge!("kafka_server_raft_metrics_current_epoch").set(status.epoch as f64);
    gauge!("kafka_server_raft_metrics_high_watermark").set(status.high_watermark as f64);
    gauge!("kafka_server_metadataloader_currentmetadataoffset").set(image.offset as f64);

    // coordinators
    let mut by_state: std::collections::BTreeMap<&'static str, usize> = std::collections::BTreeMap::new();
    for (group, _, state) in broker.groups.list() {
        *by_state.entry(state.name()).or_default() += 1;
        if per_partition {
            group_lag(broker, &image, &group);
        }
    }
    for state in ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"] {
        let count = by_state.get(state).copied().unwrap_or(0);
        gauge!("kafka_coordinator_group_groupmetadatamanager_numgroups", "state" => state).set(count as f64);
    }
    gauge!("kafka_coordinator_transaction_transactionstatemanager_transactionalids").set(broker.txns.count() as f64);
}

/// `kafka_consumergroup_lag{group,topic,partition}` (the name Kafka
/// dashboards know from kafka_exporter): the high watermark less the
/// committed offset, for the group's partitions with a replica here.
fn group_lag(broker: &Broker, image: &vltava_metadata::MetadataImage, group: &str) {
    let Ok(offsets) = broker.groups.fetch_offsets(group, None) else { return };
    for (topic, index, committed) in offsets {
        let (Some(committed), Some(t)) = (committed, image.topic(&topic)) else { continue };
        let Some(p) = broker.replicas.get(&t.topic_id, index) else { continue };
        let lag = (p.watermarks().high_watermark - committed.offset).max(0);
        let labels = [("group", group.to_string()), ("topic", topic), ("partition", index.to_string())];
        gauge!("kafka_consumergroup_lag", &labels).set(lag as f64);
    }
}
