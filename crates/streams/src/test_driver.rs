//! `TopologyTestDriver`: runs a topology in memory, without a broker, as
//! Kafka Streams' driver does. Every sub-topology gets one task (partition
//! 0); a record piped into an input topic is processed at once, and what a
//! task writes to a topic another task reads (a repartition topic) is
//! processed there before `pipe_input` returns. Global stores are fed by
//! piping into their topic. Wall-clock punctuations run when the mock clock
//! is advanced. Stores are in memory unless the config names a `state.dir`
//! (set with `with_state_dir`), where persistent stores are then opened.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Result, StreamsError};
use crate::record::{Headers, OutRecord, RawRecord, Record};
use crate::serde::SerdeRef;
use crate::state::{open_byte_store, ChangelogTarget, SharedStore, StoreInstance, StoreSpec};
use crate::task::{DeserializationHandler, RecordCollector, Task, TaskSetup};
use crate::topology::{TaskId, Topology};
use crate::Data;

struct Buffer(Arc<Mutex<Vec<OutRecord>>>);

impl RecordCollector for Buffer {
    fn send(&mut self, record: OutRecord) -> Result<()> {
        self.0.lock().push(record);
        Ok(())
    }
}

struct DriverInner {
    application_id: String,
    tasks: BTreeMap<u32, Task>,
    /// Actual topic name -> the sub-topology reading it.
    readers: HashMap<String, u32>,
    globals: BTreeMap<String, SharedStore>,
    /// Global topic -> its store's name.
    global_topics: HashMap<String, usize>,
    topology: Arc<Topology>,
    written: Arc<Mutex<Vec<OutRecord>>>,
    outputs: HashMap<String, VecDeque<OutRecord>>,
    offsets: HashMap<String, i64>,
    clock: Arc<AtomicI64>,
}

impl DriverInner {
    fn next_offset(&mut self, topic: &str) -> i64 {
        let o = self.offsets.entry(topic.to_string()).or_insert(0);
        *o += 1;
        *o - 1
    }

    fn pipe(&mut self, raw: RawRecord) -> Result<()> {
        let mut queue = VecDeque::from([raw]);
        while let Some(raw) = queue.pop_front() {
            if let Some(&g) = self.global_topics.get(&raw.topic) {
                let spec = &self.topology.globals[g];
                let store = self.globals[&spec.store.name].clone();
                (spec.update)(&mut store.lock(), &raw)?;
                continue;
            }
            let sub = *self
                .readers
                .get(&raw.topic)
                .ok_or_else(|| StreamsError::Topology(format!("no source reads topic {}", raw.topic)))?;
            self.tasks.get_mut(&sub).expect("a task per sub-topology").process(&raw)?;
            self.route(&mut queue);
        }
        Ok(())
    }

    /// Moves what the tasks wrote: to the reading task's queue, or to the outputs.
    fn route(&mut self, queue: &mut VecDeque<RawRecord>) {
        let written = std::mem::take(&mut *self.written.lock());
        for r in written {
            if self.readers.contains_key(&r.topic) || self.global_topics.contains_key(&r.topic) {
                let offset = self.next_offset(&r.topic);
                queue.push_back(RawRecord {
                    topic: r.topic.clone(),
                    partition: 0,
                    offset,
                    timestamp: r.timestamp,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r.headers.clone(),
                });
            }
            self.outputs.entry(r.topic.clone()).or_default().push_back(r);
        }
    }
}

/// Runs a topology in memory (see the module docs).
pub struct TopologyTestDriver {
    inner: Rc<RefCell<DriverInner>>,
}

/// Options of a test driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub application_id: String,
    /// Persistent stores go here (redb files); `None`: every store in memory.
    pub state_dir: Option<PathBuf>,
    pub deserialization_handler: DeserializationHandler,
    /// The mock wall clock's start (ms).
    pub wall_clock_start_ms: i64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            application_id: "test-app".to_string(),
            state_dir: None,
            deserialization_handler: DeserializationHandler::LogAndFail,
            wall_clock_start_ms: 0,
        }
    }
}

impl TopologyTestDriver {
    pub fn new(topology: Topology) -> Result<Self> {
        Self::with_config(topology, DriverConfig::default())
    }

    pub fn with_config(topology: Topology, config: DriverConfig) -> Result<Self> {
        let topology = Arc::new(topology);
        let app = config.application_id.clone();
        let clock = Arc::new(AtomicI64::new(config.wall_clock_start_ms));
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut globals = BTreeMap::new();
        let mut global_topics = HashMap::new();
        for (i, g) in topology.globals.iter().enumerate() {
            let store = StoreInstance::new(&g.store.name, open_byte_store(&g.store, None)?, None);
            globals.insert(g.store.name.clone(), store.shared());
            global_topics.insert(g.topic.clone(), i);
        }
        let mut tasks = BTreeMap::new();
        let mut readers = HashMap::new();
        for sub in topology.subtopologies() {
            let id = TaskId { subtopology: sub.id, partition: 0 };
            for t in &sub.source_topics {
                readers.insert(t.resolve(&app), sub.id);
            }
            let dir = config.state_dir.as_ref().map(|d| d.join(&app).join(id.to_string()));
            let mut open = |spec: &StoreSpec, changelog: Option<ChangelogTarget>| -> Result<StoreInstance> {
                if let Some(d) = &dir {
                    std::fs::create_dir_all(d)?;
                }
                Ok(StoreInstance::new(&spec.name, open_byte_store(spec, dir.as_deref())?, changelog))
            };
            let c = clock.clone();
            let setup = TaskSetup {
                application_id: app.clone(),
                globals: globals.clone(),
                collector: Box::new(Buffer(written.clone())),
                clock: Arc::new(move || c.load(Ordering::SeqCst)),
                handler: config.deserialization_handler,
            };
            tasks.insert(sub.id, Task::new(id, topology.clone(), &mut open, setup)?);
        }
        let mut inner = DriverInner {
            application_id: app,
            tasks,
            readers,
            globals,
            global_topics,
            topology,
            written,
            outputs: HashMap::new(),
            offsets: HashMap::new(),
            clock,
        };
        // what init wrote (punctuation-free processors may write nothing)
        let mut queue = VecDeque::new();
        inner.route(&mut queue);
        while let Some(raw) = queue.pop_front() {
            inner.pipe(raw)?;
        }
        Ok(TopologyTestDriver { inner: Rc::new(RefCell::new(inner)) })
    }

    /// An input topic to pipe records into.
    pub fn create_input_topic<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> TestInputTopic<K, V> {
        TestInputTopic {
            driver: self.inner.clone(),
            topic: topic.to_string(),
            key_serde,
            value_serde,
            next_timestamp: 0,
            advance_ms: 0,
        }
    }

    /// An output topic to read what the topology wrote (`topic` is the
    /// actual name: internal topics carry the application id).
    pub fn create_output_topic<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic { driver: self.inner.clone(), topic: topic.to_string(), key_serde, value_serde }
    }

    /// Moves the mock wall clock forward and runs the wall-clock
    /// punctuations that became due.
    pub fn advance_wall_clock_time(&self, by: Duration) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let now = inner.clock.fetch_add(by.as_millis() as i64, Ordering::SeqCst) + by.as_millis() as i64;
        let subs: Vec<u32> = inner.tasks.keys().copied().collect();
        for s in subs {
            inner.tasks.get_mut(&s).expect("task").punctuate_wall_clock(now)?;
            let mut queue = VecDeque::new();
            inner.route(&mut queue);
            while let Some(raw) = queue.pop_front() {
                inner.pipe(raw)?;
            }
        }
        Ok(())
    }

    /// A store's typed handle, e.g. `driver.state_store::<KeyValueStore<String, i64>>("counts")`.
    pub fn state_store<S: Clone + 'static>(&self, name: &str) -> Result<S> {
        let inner = self.inner.borrow();
        for t in inner.tasks.values() {
            if t.stores().contains_key(name) {
                return t.store_handle(name);
            }
        }
        if let Some(g) = inner.topology.globals.iter().find(|g| g.store.name == name) {
            let h = g.store.handle(inner.globals[name].clone(), &g.topic);
            return h.downcast_ref::<S>().cloned().ok_or_else(|| {
                StreamsError::Topology(format!("state store {name} is not a {}", std::any::type_name::<S>()))
            });
        }
        Err(StreamsError::Topology(format!("no state store named {name}")))
    }

    /// Every record written to `topic` and not read yet, as bytes (changelog
    /// and repartition topics included).
    pub fn written(&self, topic: &str) -> Vec<OutRecord> {
        self.inner.borrow().outputs.get(topic).map(|q| q.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn application_id(&self) -> String {
        self.inner.borrow().application_id.clone()
    }
}

/// Pipes records into a topic of a [`TopologyTestDriver`].
pub struct TestInputTopic<K, V> {
    driver: Rc<RefCell<DriverInner>>,
    topic: String,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
    next_timestamp: i64,
    advance_ms: i64,
}

impl<K: Data, V: Data> TestInputTopic<K, V> {
    /// Records piped without a timestamp get `start_ms`, then `start_ms +
    /// advance`, and so on (Kafka's `createInputTopic(..., start, autoAdvance)`).
    pub fn with_timestamps(mut self, start_ms: i64, advance: Duration) -> Self {
        self.next_timestamp = start_ms;
        self.advance_ms = advance.as_millis() as i64;
        self
    }

    fn auto_timestamp(&mut self) -> i64 {
        let t = self.next_timestamp;
        self.next_timestamp += self.advance_ms;
        t
    }

    fn pipe_bytes(
        &mut self,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let mut d = self.driver.borrow_mut();
        let offset = d.next_offset(&self.topic);
        d.pipe(RawRecord { topic: self.topic.clone(), partition: 0, offset, timestamp, key, value, headers })
    }

    pub fn pipe_input(&mut self, key: K, value: V) -> Result<()> {
        let ts = self.auto_timestamp();
        self.pipe_input_at(key, value, ts)
    }

    pub fn pipe_input_at(&mut self, key: K, value: V, timestamp: i64) -> Result<()> {
        self.pipe_record(Record::new(key, value, timestamp))
    }

    pub fn pipe_record(&mut self, record: Record<K, V>) -> Result<()> {
        let k = self.key_serde.serialize(&self.topic, &record.key)?;
        let v = self.value_serde.serialize(&self.topic, &record.value)?;
        self.pipe_bytes(k, v, record.timestamp, record.headers)
    }

    /// A record with a null key.
    pub fn pipe_value(&mut self, value: V) -> Result<()> {
        let ts = self.auto_timestamp();
        self.pipe_value_at(value, ts)
    }

    pub fn pipe_value_at(&mut self, value: V, timestamp: i64) -> Result<()> {
        let v = self.value_serde.serialize(&self.topic, &value)?;
        self.pipe_bytes(None, v, timestamp, Headers::default())
    }

    /// A tombstone (null value) for `key`.
    pub fn pipe_tombstone_at(&mut self, key: K, timestamp: i64) -> Result<()> {
        let k = self.key_serde.serialize(&self.topic, &key)?;
        self.pipe_bytes(k, None, timestamp, Headers::default())
    }

    /// Raw bytes, as a producer of another language could write them.
    pub fn pipe_raw(&mut self, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) -> Result<()> {
        self.pipe_bytes(key, value, timestamp, Headers::default())
    }
}

/// Reads what a topology wrote to a topic of a [`TopologyTestDriver`].
pub struct TestOutputTopic<K, V> {
    driver: Rc<RefCell<DriverInner>>,
    topic: String,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
}

impl<K: Data, V: Data> TestOutputTopic<K, V> {
    pub fn is_empty(&self) -> bool {
        self.queue_size() == 0
    }

    pub fn queue_size(&self) -> usize {
        self.driver.borrow().outputs.get(&self.topic).map_or(0, |q| q.len())
    }

    /// The next record, decoded; an error when there is none.
    pub fn read_record(&self) -> Result<Record<K, V>> {
        let r = self
            .driver
            .borrow_mut()
            .outputs
            .get_mut(&self.topic)
            .and_then(|q| q.pop_front())
            .ok_or_else(|| StreamsError::InvalidState(format!("no record left in output topic {}", self.topic)))?;
        Ok(Record {
            key: self.key_serde.deserialize(&self.topic, r.key.as_deref())?,
            value: self.value_serde.deserialize(&self.topic, r.value.as_deref())?,
            timestamp: r.timestamp,
            headers: r.headers,
        })
    }

    pub fn read_key_value(&self) -> Result<(K, V)> {
        let r = self.read_record()?;
        Ok((r.key, r.value))
    }

    pub fn read_value(&self) -> Result<V> {
        Ok(self.read_record()?.value)
    }

    pub fn read_records_to_list(&self) -> Result<Vec<Record<K, V>>> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.read_record()?);
        }
        Ok(out)
    }

    pub fn read_key_values_to_list(&self) -> Result<Vec<(K, V)>> {
        Ok(self.read_records_to_list()?.into_iter().map(|r| (r.key, r.value)).collect())
    }

    /// The last value per key (a table's latest state).
    pub fn read_key_values_to_map(&self) -> Result<BTreeMap<K, V>>
    where
        K: Ord,
    {
        Ok(self.read_key_values_to_list()?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{Processor, ProcessorContext, PunctuationType, ScheduleId};
    use crate::serde::Serdes;
    use crate::state::{KeyValueStore, Stores};
    use crate::{Consumed, Produced, StreamsBuilder};

    /// Counts per key in a store; emits every count at each stream-time punctuation.
    struct Counter {
        store: Option<KeyValueStore<String, i64>>,
    }

    impl Processor<String, String, String, i64> for Counter {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
            self.store = Some(ctx.state_store("counts")?);
            ctx.schedule(Duration::from_millis(10), PunctuationType::StreamTime);
            Ok(())
        }
        fn process(&mut self, _ctx: &mut ProcessorContext<'_, String, i64>, r: Record<String, String>) -> Result<()> {
            let store = self.store.as_ref().expect("init");
            let n = store.get(&r.key)?.unwrap_or(0) + 1;
            store.put(&r.key, &n)
        }
        fn punctuate(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, _id: ScheduleId, ts: i64) -> Result<()> {
            for (k, v) in self.store.as_ref().expect("init").all()? {
                ctx.forward(Record::new(k, v, ts))?;
            }
            Ok(())
        }
    }

    #[test]
    fn processor_api_with_a_store_and_stream_time_punctuation() {
        let mut t = Topology::new();
        t.add_source("src", &["in"], Serdes::string(), Serdes::string()).unwrap();
        t.add_processor("count", || Counter { store: None }, &["src"]).unwrap();
        t.add_state_store(Stores::key_value("counts", Serdes::string(), Serdes::i64()), &["count"]).unwrap();
        t.add_sink("out", "out", Serdes::string(), Serdes::i64(), &["count"]).unwrap();
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
        input.pipe_input_at("a".into(), "x".into(), 1).unwrap();
        input.pipe_input_at("b".into(), "x".into(), 5).unwrap();
        input.pipe_input_at("a".into(), "x".into(), 9).unwrap();
        assert!(output.is_empty(), "no punctuation before stream time 10");
        input.pipe_input_at("a".into(), "x".into(), 10).unwrap();
        let got = output.read_records_to_list().unwrap();
        assert_eq!(
            got.iter().map(|r| (r.key.clone(), r.value, r.timestamp)).collect::<Vec<_>>(),
            vec![("a".to_string(), 3, 10), ("b".to_string(), 1, 10)]
        );
        let store: KeyValueStore<String, i64> = driver.state_store("counts").unwrap();
        assert_eq!(store.get(&"a".to_string()).unwrap(), Some(3));
        // every put went to the changelog, with the record's timestamp
        let changelog = driver.written("test-app-counts-changelog");
        assert_eq!(changelog.len(), 4);
        assert_eq!(changelog[3].key.as_deref(), Some(&b"a"[..]));
        assert_eq!(changelog[3].value.as_deref(), Some(&3i64.to_be_bytes()[..]));
        assert_eq!(changelog[3].timestamp, 10);
        assert_eq!(changelog[3].partition, Some(0));
    }

    #[test]
    fn dsl_stateless_chain_and_a_type_error_is_reported() {
        let b = StreamsBuilder::new();
        let s = b.stream("in", Consumed::with(Serdes::string(), Serdes::i64())).unwrap();
        s.filter(|_, v| *v % 2 == 0)
            .unwrap()
            .map_values(|k, v| format!("{k}={v}"))
            .unwrap()
            .to("out", Produced::value_serde(Serdes::string()))
            .unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 1);
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut input = driver.create_input_topic("in", Serdes::string(), Serdes::i64());
        let output = driver.create_output_topic("out", Serdes::string(), Serdes::string());
        for i in 0..5 {
            input.pipe_input_at("k".into(), i, 100 + i).unwrap();
        }
        assert_eq!(
            output.read_key_values_to_list().unwrap(),
            vec![("k".to_string(), "k=0".to_string()), ("k".into(), "k=2".into()), ("k".into(), "k=4".into())]
        );
        // bytes that are not an i64: the default handler fails the task with a serde error
        let err = input.pipe_raw(Some(b"k".to_vec()), Some(vec![1, 2, 3]), 7).unwrap_err();
        assert!(matches!(err, StreamsError::Serde { .. }), "{err}");
    }
}
