//! `KTable::suppress`: holds a table's updates back and emits only some.
//! [`Suppressed::until_window_closes`] (windowed tables from a windowed
//! aggregation) emits each window's final value once, when stream time
//! reaches the window's end plus the aggregation's grace period (for session
//! and sliding windows, the time after which no record can change the
//! window); [`Suppressed::until_time_limit`] emits a key's latest value a
//! fixed time (by stream time) after its first held update.
//!
//! The held updates live in a logged key-value store
//! (`KTABLE-SUPPRESS-STATE-STORE-NNNNNNNNNN`, or `<name>-store` with
//! `with_name`), so they survive a crash: the changelog restores them and
//! the in-memory time index is rebuilt from the store at init. Entry layout:
//! `[buffer time: 8 BE][record timestamp: 8 BE][new: flag, u32 length,
//! bytes][old: same]`, keyed by the serialized key.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::ktable::{Change, KTable};
use super::windowed::window_close_after;
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{SerdeRef, Serdes};
use crate::state::{KeyValueStore, Stores, Windowed};
use crate::Data;

type EndFn<K> = Arc<dyn Fn(&K) -> i64 + Send + Sync>;

enum Kind<K> {
    /// Window end of a key; the delay comes from the windowed aggregation.
    WindowCloses(EndFn<K>),
    TimeLimit(i64),
}

/// What `KTable::suppress` holds back (see the module docs).
pub struct Suppressed<K> {
    kind: Kind<K>,
    name: Option<String>,
}

impl<K: 'static> Suppressed<Windowed<K>> {
    /// Only each window's final result, once the window closes.
    pub fn until_window_closes() -> Self {
        Suppressed { kind: Kind::WindowCloses(Arc::new(|k: &Windowed<K>| k.window.end_ms)), name: None }
    }
}

impl<K> Suppressed<K> {
    /// A key's latest value, `limit` (stream time) after its first held update.
    pub fn until_time_limit(limit: Duration) -> Self {
        Suppressed { kind: Kind::TimeLimit(i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)), name: None }
    }

    /// Names the node (and the buffer store `<name>-store`).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// This table's updates held back as `suppressed` says (see the module
    /// docs). The result is not materialized (its store is `None`).
    pub fn suppress(&self, suppressed: Suppressed<K>) -> Result<KTable<K, V>> {
        let (end_of, delay, drop_tombstones) = match suppressed.kind {
            Kind::WindowCloses(end) => {
                let grace = window_close_after(&self.builder, &self.node).ok_or_else(|| {
                    StreamsError::Topology(format!(
                        "suppress(until_window_closes) on {}: the table is not the result of a windowed aggregation \
                         (use until_time_limit for other tables)",
                        self.node
                    ))
                })?;
                (Some(end), grace, true)
            }
            Kind::TimeLimit(d) => (None, d, false),
        };
        let key_serde = self.key_serde.clone().ok_or_else(|| {
            StreamsError::Topology(format!(
                "suppress after {} needs the table's key serde (Materialized::with)",
                self.node
            ))
        })?;
        let value_serde = self.value_serde.clone().ok_or_else(|| {
            StreamsError::Topology(format!(
                "suppress after {} needs the table's value serde (Materialized::with)",
                self.node
            ))
        })?;
        let (node, store) = {
            let mut b = self.builder.borrow_mut();
            match &suppressed.name {
                Some(n) => (n.clone(), format!("{n}-store")),
                None => (b.new_name("KTABLE-SUPPRESS"), b.new_name("KTABLE-SUPPRESS-STATE-STORE")),
            }
        };
        {
            let mut b = self.builder.borrow_mut();
            let (store_name, ks, vs) = (store.clone(), key_serde.clone(), value_serde.clone());
            b.topology.add_processor(
                &node,
                move || SuppressProcessor {
                    end_of: end_of.clone(),
                    delay,
                    drop_tombstones,
                    store_name: store_name.clone(),
                    key_serde: ks.clone(),
                    value_serde: vs.clone(),
                    store: None,
                    index: BTreeSet::new(),
                },
                &[&self.node],
            )?;
            b.topology.add_state_store(Stores::key_value(&store, Serdes::bytes(), Serdes::bytes()), &[&node])?;
        }
        Ok(KTable {
            builder: self.builder.clone(),
            node,
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
            store: None,
        })
    }
}

struct Entry {
    time: i64,
    timestamp: i64,
    new: Option<Vec<u8>>,
    old: Option<Vec<u8>>,
}

fn put_opt(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
    match v {
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.push(0),
    }
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Some(h)
}

fn read_opt(b: &mut &[u8]) -> Option<Option<Vec<u8>>> {
    match take(b, 1)?[0] {
        0 => Some(None),
        _ => {
            let len = u32::from_be_bytes(take(b, 4)?.try_into().ok()?) as usize;
            Some(Some(take(b, len)?.to_vec()))
        }
    }
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(26);
        out.extend_from_slice(&self.time.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        put_opt(&mut out, &self.new);
        put_opt(&mut out, &self.old);
        out
    }

    fn decode(store: &str, mut b: &[u8]) -> Result<Entry> {
        let bad = || StreamsError::store(store, "a malformed suppression buffer entry (delete the store to reset it)");
        let time = i64::from_be_bytes(take(&mut b, 8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let timestamp = i64::from_be_bytes(take(&mut b, 8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let new = read_opt(&mut b).ok_or_else(bad)?;
        let old = read_opt(&mut b).ok_or_else(bad)?;
        Ok(Entry { time, timestamp, new, old })
    }
}

struct SuppressProcessor<K, V> {
    end_of: Option<EndFn<K>>,
    delay: i64,
    drop_tombstones: bool,
    store_name: String,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
    store: Option<KeyValueStore<Vec<u8>, Vec<u8>>>,
    /// (buffer time, serialized key): the held keys by when they are due.
    index: BTreeSet<(i64, Vec<u8>)>,
}

impl<K: Data, V: Data> SuppressProcessor<K, V> {
    fn store(&self) -> Result<&KeyValueStore<Vec<u8>, Vec<u8>>> {
        self.store.as_ref().ok_or_else(|| StreamsError::store(&self.store_name, "used before init"))
    }

    fn ser_value(&self, v: &Option<V>) -> Result<Option<Vec<u8>>> {
        match v {
            Some(v) => self.value_serde.serialize(&self.store_name, v),
            None => Ok(None),
        }
    }

    fn de_value(&self, b: &Option<Vec<u8>>) -> Result<Option<V>> {
        match b {
            Some(b) => Ok(Some(self.value_serde.deserialize(&self.store_name, Some(b))?)),
            None => Ok(None),
        }
    }

    /// Emits (and forgets) every held key due by the stream time.
    fn evict(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        let expiry = ctx.stream_time().saturating_sub(self.delay);
        while let Some((time, kb)) = self.index.first().cloned() {
            if time > expiry {
                break;
            }
            self.index.pop_first();
            let store = self.store()?.clone();
            let Some(bytes) = store.get(&kb)? else { continue };
            let e = Entry::decode(&self.store_name, &bytes)?;
            store.delete(&kb)?;
            if e.new.is_none() && self.drop_tombstones {
                continue;
            }
            let key = self.key_serde.deserialize(&self.store_name, Some(&kb))?;
            let change = Change { new: self.de_value(&e.new)?, old: self.de_value(&e.old)? };
            ctx.forward(Record::new(key, change, e.timestamp))?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data> Processor<K, Change<V>, K, Change<V>> for SuppressProcessor<K, V> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        let store: KeyValueStore<Vec<u8>, Vec<u8>> = ctx.state_store(&self.store_name)?;
        self.index.clear();
        for (k, v) in store.all()? {
            let e = Entry::decode(&self.store_name, &v)?;
            self.index.insert((e.time, k));
        }
        self.store = Some(store);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, r: Record<K, Change<V>>) -> Result<()> {
        let kb = self
            .key_serde
            .serialize(&self.store_name, &r.key)?
            .ok_or_else(|| StreamsError::serde(&self.store_name, "a suppressed key serialized to null"))?;
        let store = self.store()?.clone();
        let held = match store.get(&kb)? {
            Some(b) => Some(Entry::decode(&self.store_name, &b)?),
            None => None,
        };
        let (time, old) = match held {
            Some(h) => {
                self.index.remove(&(h.time, kb.clone()));
                (h.time, h.old)
            }
            None => {
                let time = match &self.end_of {
                    Some(end) => end(&r.key),
                    None => r.timestamp,
                };
                (time, self.ser_value(&r.value.old)?)
            }
        };
        let e = Entry { time, timestamp: r.timestamp, new: self.ser_value(&r.value.new)?, old };
        store.put(&kb, &e.encode())?;
        self.index.insert((time, kb));
        self.evict(ctx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use parking_lot::Mutex;

    use super::*;
    use crate::dsl::options::{Consumed, Materialized, Produced};
    use crate::dsl::windowed::tests::grouped;
    use crate::dsl::windows::{TimeWindows, WindowedSerde};
    use crate::dsl::StreamsBuilder;
    use crate::record::{OutRecord, RawRecord};
    use crate::state::memory::MemoryStore;
    use crate::state::{ChangelogTarget, StoreInstance, StoreSpec};
    use crate::task::{RecordCollector, Task, TaskSetup};
    use crate::test_driver::TopologyTestDriver;
    use crate::topology::{TaskId, Topology};

    fn windowed_counts_suppressed() -> Topology {
        let b = StreamsBuilder::new();
        let g = grouped(&b);
        let w = TimeWindows::of_size_and_grace(Duration::from_millis(10), Duration::from_millis(5)).unwrap();
        g.windowed_by(w)
            .unwrap()
            .count(Materialized::default())
            .unwrap()
            .suppress(Suppressed::until_window_closes())
            .unwrap()
            .to_stream()
            .unwrap()
            .to("out", Produced::default())
            .unwrap();
        b.build().unwrap()
    }

    type Row = (String, i64, Option<i64>, i64);

    fn rows(driver: &TopologyTestDriver) -> Vec<Row> {
        let o =
            driver.create_output_topic("out", WindowedSerde::time(Serdes::string(), 10), Serdes::option(Serdes::i64()));
        o.read_records_to_list()
            .unwrap()
            .into_iter()
            .map(|r| (r.key.key, r.key.window.start_ms, r.value, r.timestamp))
            .collect()
    }

    fn row(k: &str, start: i64, v: i64, ts: i64) -> Row {
        (k.to_string(), start, Some(v), ts)
    }

    #[test]
    fn until_window_closes_emits_each_window_once_when_stream_time_passes_end_plus_grace() {
        let t = windowed_counts_suppressed();
        assert!(t.describe().contains("KTABLE-SUPPRESS-0000000003"), "{}", t.describe());
        assert!(t.describe().contains("KTABLE-SUPPRESS-STATE-STORE-0000000004"));
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        let mut pipe = |k: &str, ts: i64| i.pipe_input_at(k.to_string(), "v".to_string(), ts).unwrap();
        for (k, ts) in [("a", 1), ("a", 8), ("b", 9), ("a", 12), ("a", 3)] {
            pipe(k, ts);
        }
        assert!(rows(&driver).is_empty(), "stream time 12 < 10 + 5: nothing final yet");
        pipe("a", 15);
        assert_eq!(rows(&driver), vec![row("a", 0, 3, 8), row("b", 0, 1, 9)]);
        pipe("a", 4); // late: dropped by the aggregation, nothing re-emitted
        pipe("a", 24);
        assert!(rows(&driver).is_empty());
        pipe("a", 25);
        assert_eq!(rows(&driver), vec![row("a", 10, 2, 15)]);
        pipe("a", 40);
        pipe("a", 41);
        assert_eq!(rows(&driver), vec![row("a", 20, 2, 25)]);
    }

    #[test]
    fn until_time_limit_emits_the_latest_value_after_the_limit() {
        let b = StreamsBuilder::new();
        let table =
            b.table("t", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_store("tbl")).unwrap();
        table
            .suppress(Suppressed::until_time_limit(Duration::from_millis(10)).with_name("hold"))
            .unwrap()
            .to_stream()
            .unwrap()
            .to("out", Produced::default())
            .unwrap();
        let t = b.build().unwrap();
        assert!(t.describe().contains("hold-store"));
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut i = driver.create_input_topic("t", Serdes::string(), Serdes::string());
        let o = driver.create_output_topic("out", Serdes::string(), Serdes::option(Serdes::string()));
        let s = |v: &str| Some(v.to_string());
        i.pipe_input_at("a".into(), "a1".into(), 0).unwrap();
        i.pipe_input_at("a".into(), "a2".into(), 5).unwrap();
        i.pipe_input_at("b".into(), "b1".into(), 6).unwrap();
        assert!(o.is_empty());
        i.pipe_input_at("a".into(), "a3".into(), 10).unwrap();
        let got: Vec<(String, Option<String>, i64)> =
            o.read_records_to_list().unwrap().into_iter().map(|r| (r.key, r.value, r.timestamp)).collect();
        assert_eq!(got, vec![("a".to_string(), s("a3"), 10)]);
        i.pipe_input_at("b".into(), "b2".into(), 16).unwrap();
        let got: Vec<(String, Option<String>, i64)> =
            o.read_records_to_list().unwrap().into_iter().map(|r| (r.key, r.value, r.timestamp)).collect();
        assert_eq!(got, vec![("b".to_string(), s("b2"), 16)]);
    }

    #[test]
    fn until_window_closes_refuses_a_table_that_is_not_windowed() {
        let b = StreamsBuilder::new();
        let g = grouped(&b);
        let w = TimeWindows::of_size_with_no_grace(Duration::from_millis(10)).unwrap();
        let windowed = g.windowed_by(w).unwrap().count(Materialized::default()).unwrap();
        // a table of windowed keys that no windowed aggregation made
        let fake: KTable<Windowed<String>, i64> =
            KTable { builder: b.inner.clone(), node: "KSTREAM-SOURCE-0000000000".to_string(), ..windowed.clone() };
        let err = fake.suppress(Suppressed::until_window_closes()).err().expect("an error");
        assert!(err.to_string().contains("not the result of a windowed aggregation"), "{err}");
    }

    #[test]
    fn until_window_closes_on_sessions_waits_for_gap_and_grace_and_drops_merged_sessions() {
        use crate::dsl::windows::SessionWindows;
        let b = StreamsBuilder::new();
        let g = grouped(&b);
        let w = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(5)).unwrap();
        g.windowed_by_session(w)
            .unwrap()
            .count(Materialized::default())
            .unwrap()
            .suppress(Suppressed::until_window_closes())
            .unwrap()
            .to_stream()
            .unwrap()
            .to("out", Produced::default())
            .unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        let o =
            driver.create_output_topic("out", WindowedSerde::session(Serdes::string()), Serdes::option(Serdes::i64()));
        let read = || -> Vec<(i64, i64, Option<i64>, i64)> {
            o.read_records_to_list()
                .unwrap()
                .into_iter()
                .map(|r| (r.key.window.start_ms, r.key.window.end_ms, r.value, r.timestamp))
                .collect()
        };
        for ts in [0, 3, 8] {
            i.pipe_input_at("a".into(), "v".into(), ts).unwrap();
        }
        assert!(read().is_empty());
        i.pipe_input_at("a".into(), "v".into(), 20).unwrap();
        // [0,0] and [0,3] were merged away: only [0,8] is final
        assert_eq!(read(), vec![(0, 8, Some(3), 8)]);
        i.pipe_input_at("a".into(), "v".into(), 25).unwrap();
        assert!(read().is_empty(), "a record at 25 still extends [20,20]");
        assert_eq!(read(), vec![]);
        i.pipe_input_at("a".into(), "v".into(), 31).unwrap();
        assert_eq!(read(), vec![(20, 25, Some(2), 25)]);
    }

    type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    struct Collect(Arc<Mutex<Vec<OutRecord>>>);
    impl RecordCollector for Collect {
        fn send(&mut self, record: OutRecord) -> Result<()> {
            self.0.lock().push(record);
            Ok(())
        }
    }

    #[test]
    fn the_buffer_survives_a_crash_through_its_changelog() {
        // run 1: two windows held in the buffer, then the process dies
        let driver = TopologyTestDriver::new(windowed_counts_suppressed()).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        i.pipe_input_at("a".into(), "v".into(), 1).unwrap();
        i.pipe_input_at("b".into(), "v".into(), 9).unwrap();
        assert!(rows(&driver).is_empty());
        let mut changelogs: BTreeMap<String, Batch> = BTreeMap::new();
        for store in ["KSTREAM-AGGREGATE-STATE-STORE-0000000001", "KTABLE-SUPPRESS-STATE-STORE-0000000004"] {
            let topic = format!("test-app-{store}-changelog");
            let recs = driver.written(&topic);
            assert!(!recs.is_empty(), "{topic} written");
            changelogs.insert(topic, recs.into_iter().map(|r| (r.key.unwrap_or_default(), r.value)).collect());
        }
        drop(driver);

        // run 2: a new task restores both stores from their changelogs
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut open = |spec: &StoreSpec, changelog: Option<ChangelogTarget>| -> Result<StoreInstance> {
            let batch = changelog.as_ref().and_then(|c| changelogs.get(&c.topic)).cloned().unwrap_or_default();
            let mut s = StoreInstance::new(&spec.name, Box::new(MemoryStore::default()), changelog);
            s.restore(&batch)?;
            Ok(s)
        };
        let setup = TaskSetup {
            application_id: "test-app".to_string(),
            globals: BTreeMap::new(),
            collector: Box::new(Collect(out.clone())),
            clock: Arc::new(|| 0),
            handler: Default::default(),
        };
        let topology = Arc::new(windowed_counts_suppressed());
        let mut task = Task::new(TaskId { subtopology: 0, partition: 0 }, topology, &mut open, setup).unwrap();
        let raw = RawRecord {
            topic: "in".to_string(),
            partition: 0,
            offset: 2,
            timestamp: 15,
            key: Some(b"a".to_vec()),
            value: Some(b"v".to_vec()),
            headers: Default::default(),
        };
        task.process(&raw).unwrap();
        let serde = WindowedSerde::time(Serdes::string(), 10);
        let got: Vec<(String, i64, i64, i64)> = out
            .lock()
            .iter()
            .filter(|r| r.topic == "out")
            .map(|r| {
                let k = serde.deserialize("out", r.key.as_deref()).unwrap();
                let v = Serdes::i64().deserialize("out", r.value.as_deref()).unwrap();
                (k.key, k.window.start_ms, v, r.timestamp)
            })
            .collect();
        assert_eq!(got, vec![("a".to_string(), 0, 1, 1), ("b".to_string(), 0, 1, 9)]);
    }
}
