//! Interactive queries against a real broker: two `KafkaStreams` instances
//! of one application (different `application.server`s and state dirs)
//! share a 4-partition input; each key's count is read from the instance
//! `query_metadata_for_key` names, a range is read across both, and
//! `all_metadata` lists both with disjoint tasks covering every partition.
//!
//! Starts the broker binary from VLTAVA_BIN (default
//! this workspace's target/release/vltava); fails if it is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use vltava_streams::runtime::util::block_on;
use vltava_streams::{
    KafkaStreams, KeyValueStore, Processor, ProcessorContext, Record, Serdes, Stores, StreamsConfig, StreamsState,
    TaskId, Topology,
};

const WAIT: Duration = Duration::from_secs(120); // a deadline, not a verdict

struct Broker {
    child: Child,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    let bin = std::env::var("VLTAVA_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/vltava").to_string());
    assert!(Path::new(&bin).is_file(), "broker binary {bin} missing: build vltava-cli or set VLTAVA_BIN");
    let dir = tempfile::tempdir().expect("temp dir");
    let port_file = dir.path().join("broker.port");
    let log = std::fs::File::create(dir.path().join("broker.log")).expect("log file");
    let mut cmd = Command::new(&bin);
    cmd.arg("server")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--port-file")
        .arg(&port_file)
        .args(["--listen", "127.0.0.1:0"]);
    for set in [
        "admin.listeners=http://127.0.0.1:0",
        "schema.registry.listeners=http://127.0.0.1:0",
        "group.consumer.min.session.timeout.ms=3000",
        "group.consumer.session.timeout.ms=4000",
        "group.consumer.min.heartbeat.interval.ms=300",
        "group.consumer.heartbeat.interval.ms=300",
    ] {
        cmd.args(["--set", set]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            if let Ok(p) = p.trim().parse::<u16>() {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "the broker did not write its port file");
        std::thread::sleep(Duration::from_millis(50));
    };
    Broker { child, bootstrap: format!("127.0.0.1:{port}"), _dir: dir }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Counter {
    store: Option<KeyValueStore<String, i64>>,
}

impl Processor<String, String, String, i64> for Counter {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> vltava_streams::Result<()> {
        self.store = Some(ctx.state_store("counts")?);
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        r: Record<String, String>,
    ) -> vltava_streams::Result<()> {
        let store = self.store.as_ref().expect("init ran");
        let n = store.get(&r.key)?.unwrap_or(0) + 1;
        store.put(&r.key, &n)?;
        ctx.forward(Record::new(r.key, n, r.timestamp))
    }
}

fn topology(input: &str) -> Topology {
    let mut t = Topology::new();
    t.add_source("source", &[input], Serdes::string(), Serdes::string()).unwrap();
    t.add_processor("count", || Counter { store: None }, &["source"]).unwrap();
    t.add_state_store(Stores::key_value("counts", Serdes::string(), Serdes::i64()), &["count"]).unwrap();
    t
}

fn instance(bootstrap: &str, input: &str, server: &str, state_dir: &Path) -> KafkaStreams {
    let dir = state_dir.to_string_lossy().to_string();
    let config = StreamsConfig::from_pairs([
        ("application.id", "iq-app"),
        ("bootstrap.servers", bootstrap),
        ("application.server", server),
        ("state.dir", dir.as_str()),
        ("commit.interval.ms", "100"),
    ])
    .unwrap();
    let mut s = KafkaStreams::new(topology(input), config).unwrap();
    s.start().unwrap();
    s
}

#[test]
fn keys_are_found_on_the_instance_that_holds_them() {
    let broker = start_broker();
    let input = "iq-input";
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &broker.bootstrap).create().unwrap();
    let topic = NewTopic::new(input, 4, TopicReplication::Fixed(1));
    let created = block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..400 {
        let key = format!("k{:02}", i % 40);
        *want.entry(key.clone()).or_default() += 1;
        let value = format!("v{i}");
        let mut rec = BaseRecord::to(input).key(key.as_str()).payload(value.as_str());
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let dirs = tempfile::tempdir().unwrap();
    let (da, db) = (dirs.path().join("a"), dirs.path().join("b"));
    let mut a = instance(&broker.bootstrap, input, "host-a:1001", &da);
    let mut b = instance(&broker.bootstrap, input, "host-b:1002", &db);
    let by_host = |host: &str| -> &KafkaStreams {
        match host {
            "host-a:1001" => &a,
            "host-b:1002" => &b,
            other => panic!("unknown host {other}"),
        }
    };

    // both instances know both, with disjoint tasks covering the four partitions
    wait_until("both instances running with two tasks each, known to both", || {
        let ok = |s: &KafkaStreams| {
            let Ok(m) = s.all_metadata() else { return false };
            let tasks: Vec<&BTreeSet<TaskId>> = m.iter().map(|i| &i.tasks).collect();
            let union: BTreeSet<TaskId> = tasks.iter().flat_map(|t| t.iter().copied()).collect();
            s.state() == StreamsState::Running
                && m.len() == 2
                && tasks.iter().all(|t| !t.is_empty())
                && tasks.iter().map(|t| t.len()).sum::<usize>() == 4
                && union == (0..4).map(|p| TaskId { subtopology: 0, partition: p }).collect()
        };
        ok(&a) && ok(&b)
    });
    let meta = a.all_metadata().unwrap();
    let servers: BTreeSet<&str> = meta.iter().map(|m| m.server.as_str()).collect();
    assert_eq!(servers, BTreeSet::from(["host-a:1001", "host-b:1002"]));

    // every key read where query_metadata_for_key says it is
    wait_until("every count read from the instance holding its key", || {
        want.iter().all(|(k, n)| {
            let Ok(m) = a.query_metadata_for_key("counts", k, Serdes::string()) else { return false };
            let Some(host) = m.active_host else { return false };
            by_host(&host).key_value_get::<String, i64>("counts", k, Serdes::string()).ok().flatten() == Some(*n)
        })
    });
    for k in want.keys() {
        let ma = a.query_metadata_for_key("counts", k, Serdes::string()).unwrap();
        let mb = b.query_metadata_for_key("counts", k, Serdes::string()).unwrap();
        assert_eq!(ma, mb, "the two instances agree on where {k} lives");
        assert_eq!(ma.partition, vltava_streams::runtime::partition_for_key(k.as_bytes(), 4));
        // the other instance does not hold it
        let host = ma.active_host.unwrap();
        let other = if host == "host-a:1001" { &b } else { &a };
        assert!(other.key_value_get::<String, i64>("counts", k, Serdes::string()).is_err());
    }

    // a range read over both instances' local stores
    let mut ranged: BTreeMap<String, i64> = BTreeMap::new();
    for s in [&a, &b] {
        for store in s.store::<KeyValueStore<String, i64>>("counts").unwrap() {
            ranged.extend(store.range(&"k10".to_string(), &"k19".to_string()).unwrap());
        }
    }
    let expected: BTreeMap<String, i64> =
        want.iter().filter(|(k, _)| k.as_str() >= "k10" && k.as_str() <= "k19").map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(ranged, expected);

    // no application.server: metadata calls fail with the config named
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(a.state(), StreamsState::NotRunning);
    let plain =
        KafkaStreams::new(topology(input), StreamsConfig::new("iq-plain", &broker.bootstrap)).expect("new instance");
    let err = plain.query_metadata_for_key("counts", &"k00".to_string(), Serdes::string()).unwrap_err();
    assert!(err.to_string().contains("application.server"), "{err}");
}

struct Failing;

impl Processor<String, String, String, String> for Failing {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, String, String>,
        r: Record<String, String>,
    ) -> vltava_streams::Result<()> {
        if r.value == "boom" {
            return Err(vltava_streams::StreamsError::Processing("boom".into()));
        }
        Ok(())
    }
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let created = block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}

#[test]
fn a_failing_thread_takes_the_client_to_error_and_start_checks_copartitioning() {
    let broker = start_broker();
    create_topic(&broker.bootstrap, "fail-in", 2);
    create_topic(&broker.bootstrap, "two", 2);
    create_topic(&broker.bootstrap, "three", 3);
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().to_string_lossy().to_string();

    // a source reading topics of different partition counts cannot run
    let mut t = Topology::new();
    t.add_source("s", &["two", "three"], Serdes::string(), Serdes::string()).unwrap();
    let config = StreamsConfig::from_pairs([
        ("application.id", "copart"),
        ("bootstrap.servers", &broker.bootstrap),
        ("state.dir", &dir),
    ])
    .unwrap();
    let err = KafkaStreams::new(t, config).unwrap().start().unwrap_err().to_string();
    assert!(err.contains("Topics not co-partitioned: [{three=3, two=2}]"), "{err}");

    // a processor error fails its thread; the client goes PendingError -> Error
    let mut t = Topology::new();
    t.add_source("s", &["fail-in"], Serdes::string(), Serdes::string()).unwrap();
    t.add_processor("p", || Failing, &["s"]).unwrap();
    let config = StreamsConfig::from_pairs([
        ("application.id", "failing"),
        ("bootstrap.servers", &broker.bootstrap),
        ("state.dir", &dir),
        ("num.stream.threads", "2"),
    ])
    .unwrap();
    let mut s = KafkaStreams::new(t, config).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    s.set_state_listener(move |old, new| s2.lock().unwrap().push((old, new)));
    s.start().unwrap();
    wait_until("the instance running", || s.state() == StreamsState::Running);
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &broker.bootstrap).create().unwrap();
    producer.send(BaseRecord::to("fail-in").key("k").payload("boom")).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    wait_until("the client in the Error state", || s.state() == StreamsState::Error);
    assert!(s.close().is_err(), "close reports the failure");
    let seen = seen.lock().unwrap().clone();
    use StreamsState::*;
    assert_eq!(seen.first(), Some(&(Created, Rebalancing)));
    let tail: Vec<_> = seen.iter().skip_while(|(_, n)| *n != PendingError).copied().collect();
    assert!(matches!(tail.first(), Some((Running | Rebalancing, PendingError))), "{seen:?}");
    assert_eq!(tail[1..], [(PendingError, Error), (Error, PendingShutdown), (PendingShutdown, NotRunning)]);

    // a persistent store without a changelog whose file cannot be opened fails its thread: its state
    // exists nowhere else, so it is never replaced by an empty store, and the file is left as it was
    create_topic(&broker.bootstrap, "unlogged-in", 1);
    let mut t = Topology::new();
    t.add_source("source", &["unlogged-in"], Serdes::string(), Serdes::string()).unwrap();
    t.add_processor("count", || Counter { store: None }, &["source"]).unwrap();
    let store = Stores::key_value("counts", Serdes::string(), Serdes::i64()).with_logging_disabled();
    t.add_state_store(store, &["count"]).unwrap();
    let task_dir = dirs.path().join("unlogged").join("0_0");
    std::fs::create_dir_all(&task_dir).unwrap();
    let file = task_dir.join("counts.redb");
    std::fs::write(&file, b"not a redb file").unwrap();
    let config = StreamsConfig::from_pairs([
        ("application.id", "unlogged"),
        ("bootstrap.servers", &broker.bootstrap),
        ("state.dir", &dir),
    ])
    .unwrap();
    let mut s = KafkaStreams::new(t, config).unwrap();
    s.start().unwrap();
    wait_until("the client in the Error state", || s.state() == StreamsState::Error);
    assert!(s.close().is_err(), "close reports the failure");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a redb file");
}

fn produce(bootstrap: &str, topic: &str, records: &[(&str, &str)]) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("partitioner", "murmur2_random").create().unwrap();
    for (k, v) in records {
        producer.send(BaseRecord::to(topic).key(*k).payload(*v)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Every (key, value) of `topic` until `want` were read (then one second more).
fn read_all(bootstrap: &str, topic: &str, want: usize) -> Vec<(String, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("read-{topic}-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut done: Option<Instant> = None;
    while Instant::now() < deadline && done.is_none_or(|d| d.elapsed() < Duration::from_secs(1)) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let s = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).to_string();
            out.push((s(m.key()), s(m.payload())));
        }
        if out.len() >= want && done.is_none() {
            done = Some(Instant::now());
        }
    }
    out
}

#[test]
fn a_global_table_is_loaded_before_processing_and_kept_up_to_date() {
    use vltava_streams::{Consumed, Materialized, Produced, StreamsBuilder};
    let broker = start_broker();
    create_topic(&broker.bootstrap, "customers", 3);
    create_topic(&broker.bootstrap, "orders", 2);
    let customers: Vec<(String, String)> = (0..30).map(|i| (format!("c{i}"), format!("name{i}"))).collect();
    let refs: Vec<(&str, &str)> = customers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    produce(&broker.bootstrap, "customers", &refs);

    let b = StreamsBuilder::new();
    let g = b
        .global_table(
            "customers",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::as_store("customers-store"),
        )
        .unwrap();
    b.stream("orders", Consumed::with(Serdes::string(), Serdes::string()))
        .unwrap()
        .join_global(
            &g,
            |_, customer: &String| customer.clone(),
            |order: &String, name: &String| format!("{order}:{name}"),
        )
        .unwrap()
        .to("enriched", Produced::with(Serdes::string(), Serdes::string()))
        .unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().to_string_lossy().to_string();
    let config = StreamsConfig::from_pairs([
        ("application.id", "global-app"),
        ("bootstrap.servers", &broker.bootstrap),
        ("state.dir", &dir),
        ("commit.interval.ms", "100"),
    ])
    .unwrap();
    // orders for every customer are there before the instance starts: none may miss its customer
    let orders: Vec<(String, String)> = (0..30).map(|i| (format!("o{i}"), format!("c{i}"))).collect();
    let refs: Vec<(&str, &str)> = orders.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    produce(&broker.bootstrap, "orders", &refs);
    let mut s = KafkaStreams::new(b.build().unwrap(), config).unwrap();
    s.start().unwrap();
    let mut got = read_all(&broker.bootstrap, "enriched", 30);
    got.sort();
    let mut want: Vec<(String, String)> = (0..30).map(|i| (format!("o{i}"), format!("c{i}:name{i}"))).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        s.key_value_get::<String, String>("customers-store", &"c7".to_string(), Serdes::string()).unwrap(),
        Some("name7".to_string())
    );

    // a new customer reaches the global store while the instance runs
    produce(&broker.bootstrap, "customers", &[("c-new", "newcomer")]);
    wait_until("the new customer in the global store", || {
        s.key_value_get::<String, String>("customers-store", &"c-new".to_string(), Serdes::string())
            .ok()
            .flatten()
            .is_some()
    });
    produce(&broker.bootstrap, "orders", &[("o-new", "c-new")]);
    let got = read_all(&broker.bootstrap, "enriched", 31);
    assert!(got.contains(&("o-new".to_string(), "c-new:newcomer".to_string())), "{got:?}");
    s.close().unwrap();
}

fn partition_count(bootstrap: &str, topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    md.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).unwrap_or(0)
}

#[test]
fn a_dsl_word_count_runs_through_its_repartition_topic() {
    use vltava_streams::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
    let broker = start_broker();
    create_topic(&broker.bootstrap, "lines", 3);
    let lines = ["the quick brown fox", "jumps over the lazy dog", "The dog barks", "fox and dog"];
    let keyed: Vec<(String, &str)> = (0..40).map(|i| (format!("l{i}"), lines[i % lines.len()])).collect();
    let refs: Vec<(&str, &str)> = keyed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    produce(&broker.bootstrap, "lines", &refs);
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (_, l) in &keyed {
        for w in l.split_whitespace() {
            *want.entry(w.to_lowercase()).or_default() += 1;
        }
    }

    let b = StreamsBuilder::new();
    b.stream("lines", Consumed::with(Serdes::string(), Serdes::string()))
        .unwrap()
        .flat_map_values(|_, line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
        .unwrap()
        .group_by(|_, w: &String| w.clone(), Grouped::with(Serdes::string(), Serdes::string()))
        .unwrap()
        .count(Materialized::as_store("counts"))
        .unwrap()
        .to_stream()
        .unwrap()
        .to("word-counts", Produced::with(Serdes::string(), Serdes::option(Serdes::i64())))
        .unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().to_string_lossy().to_string();
    let config = StreamsConfig::from_pairs([
        ("application.id", "wc"),
        ("bootstrap.servers", &broker.bootstrap),
        ("state.dir", &dir),
        ("commit.interval.ms", "100"),
        ("num.stream.threads", "2"),
    ])
    .unwrap();
    let mut s = KafkaStreams::new(b.build().unwrap(), config).unwrap();
    s.start().unwrap();
    // internal topics: the repartition topic takes its writer's (the input's) partition count
    assert_eq!(partition_count(&broker.bootstrap, "wc-counts-repartition"), 3);
    assert_eq!(partition_count(&broker.bootstrap, "wc-counts-changelog"), 3);
    wait_until("every word's count queryable and exact", || {
        want.iter()
            .all(|(w, n)| s.key_value_get::<String, i64>("counts", w, Serdes::string()).ok().flatten() == Some(*n))
    });
    s.close().unwrap();
}
