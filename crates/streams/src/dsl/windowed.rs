//! Windowed aggregations: `KGroupedStream::windowed_by` (tumbling and
//! hopping [`TimeWindows`]), `windowed_by_sliding` ([`SlidingWindows`]) and
//! `windowed_by_session` ([`SessionWindows`]), each with `count`, `reduce`
//! and `aggregate` (sessions also merge aggregates), giving a
//! `KTable<Windowed<K>, VA>` whose node forwards `Change{new, old}` and whose
//! store is a window store of `ValueAndTimestamp<VA>` (sessions: a session
//! store of `VA`) named `KSTREAM-AGGREGATE-STATE-STORE-NNNNNNNNNN` or after
//! `Materialized`, kept for `max(Materialized retention, size + grace)`.
//!
//! A record updates every window it falls in whose end (by the task's stream
//! time) is not past the grace period; a record whose windows have all
//! closed is dropped and logged, as Kafka Streams does. Streams are
//! repartitioned first when a key change requires it (topic
//! `<store>-repartition`).
//!
//! How long after a window's end it closes is registered per aggregation
//! node, so that `suppress(until_window_closes)` downstream knows it.

use std::cell::RefCell;
use std::rc::Weak;
use std::sync::Arc;
use std::time::Duration;

use super::grouped::KGroupedStream;
use super::kstream::KStream;
use super::ktable::{Change, KTable, TimestampedSerde, ValueAndTimestamp};
use super::options::Materialized;
use super::windows::{SessionWindows, SlidingWindows, TimeWindows, WindowedSerde};
use super::{BuilderInner, Shared};
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{SerdeRef, Serdes};
use crate::state::{SessionStore, StoreBuilder, Stores, Window, WindowStore, Windowed};
use crate::Data;

/// (builder, aggregation node, ms after a window's end at which it is closed).
type CloseEntry = (Weak<RefCell<BuilderInner>>, String, i64);

thread_local! {
    static WINDOW_CLOSE: RefCell<Vec<CloseEntry>> = const { RefCell::new(Vec::new()) };
}

fn register_window_close(builder: &Shared, node: &str, close_after_ms: i64) {
    WINDOW_CLOSE.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|(b, _, _)| b.strong_count() > 0);
        r.push((std::rc::Rc::downgrade(builder), node.to_string(), close_after_ms));
    });
}

/// How long after a window's end the windowed aggregation upstream of `node`
/// (the node itself, or its nearest ancestor that is one) closes the window:
/// stream time must reach `end + this` for the window's result to be final.
pub(crate) fn window_close_after(builder: &Shared, node: &str) -> Option<i64> {
    let lookup = |name: &str| {
        WINDOW_CLOSE.with(|r| {
            r.borrow()
                .iter()
                .find(|(b, n, _)| n == name && b.upgrade().is_some_and(|b| std::rc::Rc::ptr_eq(&b, builder)))
                .map(|(_, _, c)| *c)
        })
    };
    let b = builder.borrow();
    let nodes = &b.topology.nodes;
    let mut current = nodes.iter().position(|n| n.name == node)?;
    let mut seen = 0;
    loop {
        if let Some(c) = lookup(&nodes[current].name) {
            return Some(c);
        }
        // follow the first parent (windowed tables have one line of ancestry)
        current = *nodes[current].parents.first()?;
        seen += 1;
        if seen > nodes.len() {
            return None;
        }
    }
}

/// A grouped stream windowed by time (tumbling, hopping or sliding windows).
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeKind,
}

#[derive(Clone, Copy)]
enum TimeKind {
    Fixed(TimeWindows),
    Sliding(SlidingWindows),
}

/// A grouped stream windowed by sessions.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    fn copy(&self) -> KGroupedStream<K, V> {
        KGroupedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            name: self.name.clone(),
        }
    }

    /// The value serde of the grouping (`Grouped`'s, else the stream's).
    fn value_serde(&self) -> Option<SerdeRef<V>> {
        self.value.clone().or_else(|| self.stream.value_serde.clone())
    }

    /// Aggregations per key and tumbling or hopping time window.
    pub fn windowed_by(&self, windows: TimeWindows) -> Result<TimeWindowedKStream<K, V>> {
        Ok(TimeWindowedKStream { grouped: self.copy(), windows: TimeKind::Fixed(windows) })
    }

    /// Aggregations per key and sliding window.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> Result<TimeWindowedKStream<K, V>> {
        Ok(TimeWindowedKStream { grouped: self.copy(), windows: TimeKind::Sliding(windows) })
    }

    /// Aggregations per key and session.
    pub fn windowed_by_session(&self, windows: SessionWindows) -> Result<SessionWindowedKStream<K, V>> {
        Ok(SessionWindowedKStream { grouped: self.copy(), windows })
    }
}

type AggFn<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;

fn millis(d: Option<Duration>) -> i64 {
    d.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// The store's name, the key serde and the value serde of an aggregation.
struct Prepared<K, VA> {
    store: String,
    node: String,
    key: SerdeRef<K>,
    value: SerdeRef<VA>,
}

fn prepare<K: Data, V: Data, VA: Data>(
    grouped: &KGroupedStream<K, V>,
    materialized: &Materialized<K, VA>,
    default_value: Option<SerdeRef<VA>>,
    what: &str,
) -> Result<(Prepared<K, VA>, KStream<K, V>)> {
    let (store, node) = {
        let mut b = grouped.stream.builder.borrow_mut();
        let store = materialized.name.clone().unwrap_or_else(|| b.new_name("KSTREAM-AGGREGATE-STATE-STORE"));
        (store, b.new_name("KSTREAM-AGGREGATE"))
    };
    // through `<Grouped name or store>-repartition` if the key changed
    let input = grouped.repartitioned(&store, materialized.key.clone())?;
    let key = materialized.key.clone().or_else(|| input.key_serde.clone()).ok_or_else(|| {
        StreamsError::Topology(format!(
            "windowed {what} into store {store} needs a key serde: give one with Grouped::with or Materialized::with"
        ))
    })?;
    let value = materialized.value.clone().or(default_value).ok_or_else(|| {
        StreamsError::Topology(format!(
            "windowed {what} into store {store} needs a value serde: give one with Materialized::with_value_serde"
        ))
    })?;
    Ok((Prepared { store, node, key, value }, input))
}

fn configure<S>(mut b: StoreBuilder<S>, materialized: &Materialized<impl Sized, impl Sized>) -> StoreBuilder<S> {
    b = match &materialized.logging {
        Some(c) => b.with_logging_enabled(c.clone()),
        None => b.with_logging_disabled(),
    };
    if materialized.in_memory {
        b = b.in_memory();
    }
    b
}

fn drop_late(ctx: &ProcessorContext<'_, impl Data, impl Data>, ts: i64, window: &str, close: i64) {
    let (topic, partition, offset) =
        ctx.record_metadata().map(|m| (m.topic.clone(), m.partition, m.offset)).unwrap_or_default();
    tracing::warn!(
        task = %ctx.task_id(), node = ctx.node_name(), topic, partition, offset, timestamp = ts, window,
        close_time = close, "skipping a record for an expired window (later than the grace period)"
    );
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// The number of records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> Result<KTable<Windowed<K>, i64>> {
        self.build(
            materialized,
            Some(Serdes::i64()),
            "count",
            Arc::new(|_: &K, _: V, a: Option<i64>| a.unwrap_or(0) + 1),
        )
    }

    /// The values of each key and window combined with `reducer(aggregate, value)`.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<Windowed<K>, V>> {
        let default = self.grouped.value_serde();
        self.build(
            materialized,
            default,
            "reduce",
            Arc::new(move |_: &K, v: V, a: Option<V>| match a {
                Some(a) => reducer(a, v),
                None => v,
            }),
        )
    }

    /// `aggregator(key, value, aggregate)` per key and window, starting from `initializer()`.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> Result<KTable<Windowed<K>, VA>> {
        self.build(
            materialized,
            None,
            "aggregate",
            Arc::new(move |k: &K, v: V, a: Option<VA>| aggregator(k, v, a.unwrap_or_else(&initializer))),
        )
    }

    fn build<VA: Data>(
        &self,
        materialized: Materialized<K, VA>,
        default_value: Option<SerdeRef<VA>>,
        what: &str,
        agg: AggFn<K, V, VA>,
    ) -> Result<KTable<Windowed<K>, VA>> {
        let (p, input) = prepare(&self.grouped, &materialized, default_value, what)?;
        let (size_ms, min_retention, close_after) = match self.windows {
            TimeKind::Fixed(w) => (w.size_ms, w.size_ms.saturating_add(w.grace_ms), w.grace_ms),
            TimeKind::Sliding(w) => (
                w.time_difference_ms,
                w.time_difference_ms.saturating_mul(2).saturating_add(w.grace_ms),
                // a sliding window (inclusive end) still takes records at end + grace
                w.grace_ms.saturating_add(1),
            ),
        };
        let retention = millis(materialized.retention).max(min_retention);
        let store = Stores::window(
            &p.store,
            Duration::from_millis(retention.max(0) as u64),
            Duration::from_millis(size_ms as u64),
            false,
            p.key.clone(),
            TimestampedSerde::new_ref(p.value.clone()),
        );
        let store = configure(store, &materialized);
        {
            let mut b = input.builder.borrow_mut();
            let store_name = p.store.clone();
            match self.windows {
                TimeKind::Fixed(windows) => {
                    b.topology.add_processor(
                        &p.node,
                        move || TimeWindowAgg {
                            windows,
                            store_name: store_name.clone(),
                            agg: agg.clone(),
                            store: None,
                        },
                        &[&input.node],
                    )?;
                }
                TimeKind::Sliding(windows) => {
                    b.topology.add_processor(
                        &p.node,
                        move || SlidingWindowAgg {
                            d: windows.time_difference_ms,
                            grace: windows.grace_ms,
                            store_name: store_name.clone(),
                            agg: agg.clone(),
                            store: None,
                        },
                        &[&input.node],
                    )?;
                }
            }
            b.topology.add_state_store(store, &[&p.node])?;
        }
        register_window_close(&input.builder, &p.node, close_after);
        Ok(KTable {
            builder: input.builder.clone(),
            node: p.node,
            key_serde: Some(WindowedSerde::time(p.key, size_ms)),
            value_serde: Some(p.value),
            store: Some(p.store),
        })
    }
}

type Store<K, VA> = WindowStore<K, ValueAndTimestamp<VA>>;

fn get_store<S: Clone + 'static>(store: &Option<S>, name: &str) -> Result<S> {
    store.clone().ok_or_else(|| StreamsError::Topology(format!("store {name} used before init")))
}

/// Tumbling / hopping window aggregation.
struct TimeWindowAgg<K, V, VA> {
    windows: TimeWindows,
    store_name: String,
    agg: AggFn<K, V, VA>,
    store: Option<Store<K, VA>>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>> for TimeWindowAgg<K, V, VA> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>, r: Record<K, V>) -> Result<()> {
        let store = get_store(&self.store, &self.store_name)?;
        let close = ctx.stream_time().saturating_sub(self.windows.grace_ms);
        for w in self.windows.windows_for(r.timestamp) {
            if w.end_ms <= close {
                drop_late(ctx, r.timestamp, &format!("[{},{})", w.start_ms, w.end_ms), close);
                continue;
            }
            let old = store.fetch(&r.key, w.start_ms)?;
            let ts = old.as_ref().map_or(r.timestamp, |o| o.timestamp.max(r.timestamp));
            let old = old.map(|o| o.value);
            let new = (self.agg)(&r.key, r.value.clone(), old.clone());
            store.put(&r.key, Some(&ValueAndTimestamp { value: new.clone(), timestamp: ts }), w.start_ms)?;
            let key = Windowed { key: r.key.clone(), window: w };
            ctx.forward(Record {
                key,
                value: Change { new: Some(new), old },
                timestamp: ts,
                headers: r.headers.clone(),
            })?;
        }
        Ok(())
    }
}

/// Sliding window aggregation: each record makes its left window `[t - d,
/// t]` (when not there yet) and, when later records are within `d`, its
/// right window `[t + 1, t + 1 + d]`; it updates every window holding `t`.
/// Records earlier than `d` go to the window `[0, d]`.
struct SlidingWindowAgg<K, V, VA> {
    d: i64,
    grace: i64,
    store_name: String,
    agg: AggFn<K, V, VA>,
    store: Option<Store<K, VA>>,
}

impl<K: Data, V: Data, VA: Data> SlidingWindowAgg<K, V, VA> {
    /// Aggregates the record into the window starting at `start` holding
    /// `current` (None: a new window) and forwards the change.
    fn update(
        &self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        store: &Store<K, VA>,
        start: i64,
        current: Option<ValueAndTimestamp<VA>>,
        r: &Record<K, V>,
        close: i64,
    ) -> Result<()> {
        self.update_seeded(ctx, store, start, current, false, r, close)
    }

    /// As `update`; `fresh`: the window is new (seeded from another
    /// window's aggregate), so no old value is forwarded.
    #[allow(clippy::too_many_arguments)]
    fn update_seeded(
        &self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        store: &Store<K, VA>,
        start: i64,
        current: Option<ValueAndTimestamp<VA>>,
        fresh: bool,
        r: &Record<K, V>,
        close: i64,
    ) -> Result<()> {
        let end = start.saturating_add(self.d);
        if end < close {
            drop_late(ctx, r.timestamp, &format!("[{start},{end}]"), close);
            return Ok(());
        }
        let ts = current.as_ref().map_or(r.timestamp, |c| c.timestamp.max(r.timestamp));
        let old = current.map(|c| c.value);
        let new = (self.agg)(&r.key, r.value.clone(), old.clone());
        store.put(&r.key, Some(&ValueAndTimestamp { value: new.clone(), timestamp: ts }), start)?;
        let old = if fresh { None } else { old };
        self.forward(ctx, &r.key, start, Change { new: Some(new), old }, ts, r)
    }

    fn forward(
        &self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        key: &K,
        start: i64,
        change: Change<VA>,
        ts: i64,
        r: &Record<K, V>,
    ) -> Result<()> {
        let window = Window { start_ms: start, end_ms: start.saturating_add(self.d) };
        ctx.forward(Record {
            key: Windowed { key: key.clone(), window },
            value: change,
            timestamp: ts,
            headers: r.headers.clone(),
        })
    }

    /// Creates this record's right window holding what `right` holds.
    fn create_right(
        &self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        store: &Store<K, VA>,
        r: &Record<K, V>,
        right: &ValueAndTimestamp<VA>,
    ) -> Result<()> {
        let start = r.timestamp + 1;
        store.put(&r.key, Some(right), start)?;
        self.forward(ctx, &r.key, start, Change { new: Some(right.value.clone()), old: None }, right.timestamp, r)
    }

    fn process_early(
        &self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        store: &Store<K, VA>,
        r: &Record<K, V>,
        close: i64,
    ) -> Result<()> {
        let t = r.timestamp;
        let mut combined: Option<ValueAndTimestamp<VA>> = None;
        let mut right: Option<ValueAndTimestamp<VA>> = None;
        let mut right_exists = false;
        let mut previous: Option<i64> = None;
        let mut starts = Vec::new();
        for (start, v) in store.fetch_range(&r.key, 0, t + 1)? {
            starts.push(start);
            if start == 0 {
                if v.timestamp < t {
                    previous = Some(v.timestamp);
                }
                combined = Some(v);
            } else if start <= t {
                right = Some(v.clone());
                self.update(ctx, store, start, Some(v), r, close)?;
            } else if start == t + 1 {
                right_exists = true;
            }
        }
        if right.is_none() {
            if let Some(c) = combined.as_ref().filter(|c| c.timestamp > t) {
                right = Some(c.clone());
            }
        }
        if let Some(rw) = right.as_ref().filter(|rw| !right_exists && rw.timestamp > t) {
            self.create_right(ctx, store, r, rw)?;
        }
        if let Some(p) = previous {
            if !starts.contains(&(p + 1)) {
                self.update(ctx, store, p + 1, None, r, close)?;
            }
        }
        self.update(ctx, store, 0, combined, r, close)
    }
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>> for SlidingWindowAgg<K, V, VA> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>, r: Record<K, V>) -> Result<()> {
        let store = get_store(&self.store, &self.store_name)?;
        let close = ctx.stream_time().saturating_sub(self.grace);
        let t = r.timestamp;
        if t.saturating_add(self.d) < close {
            drop_late(ctx, t, &format!("[{t},{}]", t.saturating_add(self.d)), close);
            return Ok(());
        }
        if t < 0 {
            drop_late(ctx, t, "(negative timestamp)", close);
            return Ok(());
        }
        if t < self.d {
            return self.process_early(ctx, &store, &r, close);
        }
        let mut left_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut right_agg: Option<ValueAndTimestamp<VA>> = None;
        let (mut left_exists, mut right_exists) = (false, false);
        let mut previous: Option<i64> = None;
        let mut starts = Vec::new();
        let from = t.saturating_sub(self.d.saturating_mul(2)).max(0);
        for (start, v) in store.fetch_range(&r.key, from, t + 1)? {
            starts.push(start);
            let end = start + self.d;
            if end < t {
                previous = Some(v.timestamp);
                left_agg = Some(v);
            } else if end == t {
                left_exists = true;
                if v.timestamp < t {
                    previous = Some(v.timestamp);
                }
                self.update(ctx, &store, start, Some(v), &r, close)?;
            } else if start <= t {
                right_agg = Some(v.clone());
                self.update(ctx, &store, start, Some(v), &r, close)?;
            } else if start == t + 1 {
                right_exists = true;
            }
        }
        if let Some(p) = previous {
            let start = p + 1;
            if !starts.contains(&start) && start + self.d >= t {
                self.update(ctx, &store, start, None, &r, close)?;
            }
        }
        if !left_exists {
            let seed = match previous {
                Some(p) if t - self.d <= p => left_agg.map(|l| ValueAndTimestamp { value: l.value, timestamp: t }),
                _ => None,
            };
            self.update_seeded(ctx, &store, t - self.d, seed, true, &r, close)?;
        }
        if let Some(rw) = right_agg.as_ref().filter(|rw| !right_exists && rw.timestamp > t) {
            self.create_right(ctx, &store, &r, rw)?;
        }
        Ok(())
    }
}

type MergeFn<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;
type InitFn<VA> = Arc<dyn Fn() -> Option<VA> + Send + Sync>;

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    /// The number of records per key and session.
    pub fn count(&self, materialized: Materialized<K, i64>) -> Result<KTable<Windowed<K>, i64>> {
        self.build(
            materialized,
            Some(Serdes::i64()),
            "count",
            Arc::new(|| Some(0)),
            Arc::new(|_: &K, v: V, a: Option<i64>| {
                let _ = v;
                a.unwrap_or(0) + 1
            }),
            Arc::new(|_: &K, a: Option<i64>, b: i64| a.unwrap_or(0) + b),
        )
    }

    /// The values of each session combined with `reducer` (merged sessions too).
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> Result<KTable<Windowed<K>, V>> {
        let default = self.grouped.value_serde();
        let reducer = Arc::new(reducer);
        let r2 = reducer.clone();
        self.build(
            materialized,
            default,
            "reduce",
            Arc::new(|| None),
            Arc::new(move |_: &K, v: V, a: Option<V>| match a {
                Some(a) => reducer(a, v),
                None => v,
            }),
            Arc::new(move |_: &K, a: Option<V>, b: V| match a {
                Some(a) => r2(a, b),
                None => b,
            }),
        )
    }

    /// `aggregator(key, value, aggregate)` per session from `initializer()`;
    /// when a record joins sessions, `merger(key, agg1, agg2)` combines them.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> Result<KTable<Windowed<K>, VA>> {
        let init = Arc::new(initializer);
        let (i1, i2) = (init.clone(), init.clone());
        self.build(
            materialized,
            None,
            "aggregate",
            Arc::new(move || Some(init())),
            Arc::new(move |k: &K, v: V, a: Option<VA>| aggregator(k, v, a.unwrap_or_else(|| i1()))),
            Arc::new(move |k: &K, a: Option<VA>, b: VA| merger(k, a.unwrap_or_else(|| i2()), b)),
        )
    }

    fn build<VA: Data>(
        &self,
        materialized: Materialized<K, VA>,
        default_value: Option<SerdeRef<VA>>,
        what: &str,
        init: InitFn<VA>,
        agg: AggFn<K, V, VA>,
        merge: MergeFn<K, VA>,
    ) -> Result<KTable<Windowed<K>, VA>> {
        let (p, input) = prepare(&self.grouped, &materialized, default_value, what)?;
        let w = self.windows;
        let retention = millis(materialized.retention).max(w.inactivity_gap_ms.saturating_add(w.grace_ms));
        let store =
            Stores::session(&p.store, Duration::from_millis(retention.max(0) as u64), p.key.clone(), p.value.clone());
        let store = configure(store, &materialized);
        {
            let mut b = input.builder.borrow_mut();
            let store_name = p.store.clone();
            b.topology.add_processor(
                &p.node,
                move || SessionAgg {
                    windows: w,
                    store_name: store_name.clone(),
                    init: init.clone(),
                    agg: agg.clone(),
                    merge: merge.clone(),
                    store: None,
                },
                &[&input.node],
            )?;
            b.topology.add_state_store(store, &[&p.node])?;
        }
        // a record at end + gap still extends a session while it is within the grace
        register_window_close(
            &input.builder,
            &p.node,
            w.inactivity_gap_ms.saturating_add(w.grace_ms).saturating_add(1),
        );
        Ok(KTable {
            builder: input.builder.clone(),
            node: p.node,
            key_serde: Some(WindowedSerde::session(p.key)),
            value_serde: Some(p.value),
            store: Some(p.store),
        })
    }
}

struct SessionAgg<K, V, VA> {
    windows: SessionWindows,
    store_name: String,
    init: InitFn<VA>,
    agg: AggFn<K, V, VA>,
    merge: MergeFn<K, VA>,
    store: Option<SessionStore<K, VA>>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>> for SessionAgg<K, V, VA> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>, r: Record<K, V>) -> Result<()> {
        let store = get_store(&self.store, &self.store_name)?;
        let t = r.timestamp;
        let close = ctx.stream_time().saturating_sub(self.windows.grace_ms);
        let gap = self.windows.inactivity_gap_ms;
        let point = Window { start_ms: t, end_ms: t };
        let sessions = store.find_sessions(&r.key, t.saturating_sub(gap), t.saturating_add(gap))?;
        let mut merged = point;
        let mut agg = (self.init)();
        for (s, v) in &sessions {
            agg = Some((self.merge)(&r.key, agg, v.clone()));
            merged.start_ms = merged.start_ms.min(s.window.start_ms);
            merged.end_ms = merged.end_ms.max(s.window.end_ms);
        }
        if merged.end_ms < close {
            drop_late(ctx, t, &format!("[{},{}]", merged.start_ms, merged.end_ms), close);
            return Ok(());
        }
        let mut old = None;
        if merged != point {
            for (s, v) in sessions {
                store.remove(&s)?;
                let ts = s.window.end_ms;
                ctx.forward(Record {
                    key: s,
                    value: Change { new: None, old: Some(v) },
                    timestamp: ts,
                    headers: r.headers.clone(),
                })?;
            }
        } else if let Some((_, v)) = sessions.into_iter().next() {
            old = Some(v);
        }
        let new = (self.agg)(&r.key, r.value.clone(), agg);
        let key = Windowed { key: r.key.clone(), window: merged };
        store.put(&key, &new)?;
        ctx.forward(Record { key, value: Change { new: Some(new), old }, timestamp: merged.end_ms, headers: r.headers })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dsl::options::{Consumed, Produced};
    use crate::dsl::StreamsBuilder;
    use crate::test_driver::TopologyTestDriver;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// The string stream of topic `in`, grouped by key.
    pub(crate) fn grouped(b: &StreamsBuilder) -> KGroupedStream<String, String> {
        b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
            .unwrap()
            .group_by_key(crate::dsl::options::Grouped::default())
            .unwrap()
    }

    /// (key, window start, window end, value, timestamp) of every output record.
    type Row = (String, i64, i64, Option<i64>, i64);

    fn run(
        b: &StreamsBuilder,
        table: KTable<Windowed<String>, i64>,
        out_serde: SerdeRef<Windowed<String>>,
        input: &[(&str, i64)],
    ) -> (TopologyTestDriver, Vec<Row>) {
        table.to_stream().unwrap().to("out", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        for (k, t) in input {
            i.pipe_input_at(k.to_string(), "v".to_string(), *t).unwrap();
        }
        let o = driver.create_output_topic("out", out_serde, Serdes::option(Serdes::i64()));
        let rows = o
            .read_records_to_list()
            .unwrap()
            .into_iter()
            .map(|r| (r.key.key, r.key.window.start_ms, r.key.window.end_ms, r.value, r.timestamp))
            .collect();
        (driver, rows)
    }

    fn row(k: &str, start: i64, end: i64, v: Option<i64>, ts: i64) -> Row {
        (k.to_string(), start, end, v, ts)
    }

    #[test]
    fn tumbling_count_takes_out_of_order_records_within_grace_and_drops_later_ones() {
        let b = StreamsBuilder::new();
        let w = TimeWindows::of_size_and_grace(ms(10), ms(5)).unwrap();
        let table = grouped(&b).windowed_by(w).unwrap().count(Materialized::default()).unwrap();
        assert_eq!(table.queryable_store_name(), Some("KSTREAM-AGGREGATE-STATE-STORE-0000000001"));
        let input = [("a", 1), ("a", 12), ("a", 8), ("b", 9), ("a", 16), ("a", 3), ("a", 10)];
        let (driver, rows) = run(&b, table, WindowedSerde::time(Serdes::string(), 10), &input);
        assert_eq!(
            rows,
            vec![
                row("a", 0, 10, Some(1), 1),
                row("a", 10, 20, Some(1), 12),
                // stream time 12, window [0,10) closes at 15: still open
                row("a", 0, 10, Some(2), 8),
                row("b", 0, 10, Some(1), 9),
                row("a", 10, 20, Some(2), 16),
                // a@3: stream time 16 >= 10 + 5, dropped
                row("a", 10, 20, Some(3), 16),
            ]
        );
        let store: WindowStore<String, ValueAndTimestamp<i64>> =
            driver.state_store("KSTREAM-AGGREGATE-STATE-STORE-0000000001").unwrap();
        assert_eq!(store.fetch(&"a".to_string(), 0).unwrap(), Some(ValueAndTimestamp { value: 2, timestamp: 8 }));
        assert_eq!(store.fetch(&"a".to_string(), 10).unwrap(), Some(ValueAndTimestamp { value: 3, timestamp: 16 }));
        assert_eq!(store.retention_ms(), 15);
        // the changelog got every update
        assert_eq!(driver.written("test-app-KSTREAM-AGGREGATE-STATE-STORE-0000000001-changelog").len(), 6);
    }

    #[test]
    fn hopping_windows_reduce_and_aggregate() {
        let b = StreamsBuilder::new();
        let w = TimeWindows::of_size_with_no_grace(ms(10)).unwrap().advance_by(ms(5)).unwrap();
        let table = grouped(&b)
            .windowed_by(w)
            .unwrap()
            .aggregate(|| 0i64, |_, _, a| a + 1, Materialized::as_store("hops").with_value_serde(Serdes::i64()))
            .unwrap();
        let input = [("a", 7), ("a", 12), ("a", 4), ("a", 14)];
        let (_d, rows) = run(&b, table, WindowedSerde::time(Serdes::string(), 10), &input);
        assert_eq!(
            rows,
            vec![
                row("a", 0, 10, Some(1), 7),
                row("a", 5, 15, Some(1), 7),
                row("a", 5, 15, Some(2), 12),
                row("a", 10, 20, Some(1), 12),
                // a@4 falls in [0,10) only, closed at stream time 12: dropped
                row("a", 5, 15, Some(3), 14),
                row("a", 10, 20, Some(2), 14),
            ]
        );

        // reduce keeps the serde of the stream's values
        let b = StreamsBuilder::new();
        let table = grouped(&b)
            .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)).unwrap())
            .unwrap()
            .reduce(|a, v| format!("{a}{v}"), Materialized::default())
            .unwrap();
        table.to_stream().unwrap().to("out", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        i.pipe_input_at("k".into(), "x".into(), 1).unwrap();
        i.pipe_input_at("k".into(), "y".into(), 2).unwrap();
        let o = driver.create_output_topic(
            "out",
            WindowedSerde::time(Serdes::string(), 10),
            Serdes::option(Serdes::string()),
        );
        let vals: Vec<Option<String>> = o.read_records_to_list().unwrap().into_iter().map(|r| r.value).collect();
        assert_eq!(vals, vec![Some("x".to_string()), Some("xy".to_string())]);
    }

    #[test]
    fn sliding_windows_count_with_an_out_of_order_record() {
        let b = StreamsBuilder::new();
        let w = SlidingWindows::of_time_difference_and_grace(ms(10), ms(100)).unwrap();
        let table = grouped(&b).windowed_by_sliding(w).unwrap().count(Materialized::default()).unwrap();
        let input = [("a", 20), ("a", 25), ("a", 40), ("a", 22)];
        let (_d, rows) = run(&b, table, WindowedSerde::time(Serdes::string(), 10), &input);
        assert_eq!(
            rows,
            vec![
                row("a", 10, 20, Some(1), 20),
                // a@25: the right window of 20, then its own left window
                row("a", 21, 31, Some(1), 25),
                row("a", 15, 25, Some(2), 25),
                row("a", 30, 40, Some(1), 40),
                // a@22 (out of order): updates the windows holding it, makes its own
                row("a", 15, 25, Some(3), 25),
                row("a", 21, 31, Some(2), 25),
                row("a", 12, 22, Some(2), 22),
                row("a", 23, 33, Some(1), 25),
            ]
        );
    }

    #[test]
    fn sliding_windows_put_early_records_in_the_first_window() {
        let b = StreamsBuilder::new();
        let w = SlidingWindows::of_time_difference_and_grace(ms(10), ms(100)).unwrap();
        let table = grouped(&b).windowed_by_sliding(w).unwrap().count(Materialized::default()).unwrap();
        let input = [("a", 3), ("a", 5), ("a", 12)];
        let (_d, rows) = run(&b, table, WindowedSerde::time(Serdes::string(), 10), &input);
        assert_eq!(
            rows,
            vec![
                row("a", 0, 10, Some(1), 3),
                row("a", 4, 14, Some(1), 5),
                row("a", 0, 10, Some(2), 5),
                row("a", 4, 14, Some(2), 12),
                row("a", 6, 16, Some(1), 12),
                row("a", 2, 12, Some(3), 12),
            ]
        );
    }

    #[test]
    fn sliding_windows_drop_records_past_the_grace() {
        let b = StreamsBuilder::new();
        let w = SlidingWindows::of_time_difference_and_grace(ms(10), ms(5)).unwrap();
        let table = grouped(&b).windowed_by_sliding(w).unwrap().count(Materialized::default()).unwrap();
        // a@14 at stream time 30: its windows end by 25 < 30 - 5
        let input = [("a", 30), ("a", 14)];
        let (_d, rows) = run(&b, table, WindowedSerde::time(Serdes::string(), 10), &input);
        assert_eq!(rows, vec![row("a", 20, 30, Some(1), 30)]);
    }

    #[test]
    fn session_windows_merge_and_drop_late_records() {
        let b = StreamsBuilder::new();
        let w = SessionWindows::of_inactivity_gap_and_grace(ms(5), ms(10)).unwrap();
        let table = grouped(&b).windowed_by_session(w).unwrap().count(Materialized::as_store("sessions")).unwrap();
        let input = [("a", 0), ("a", 3), ("a", 20), ("a", 10), ("a", 14), ("a", 16), ("a", 1)];
        let (driver, rows) = run(&b, table, WindowedSerde::session(Serdes::string()), &input);
        assert_eq!(
            rows,
            vec![
                row("a", 0, 0, Some(1), 0),
                row("a", 0, 0, None, 0),
                row("a", 0, 3, Some(2), 3),
                row("a", 20, 20, Some(1), 20),
                // a@10: stream time 20, close 10: [10,10] still accepted
                row("a", 10, 10, Some(1), 10),
                row("a", 10, 10, None, 10),
                row("a", 10, 14, Some(2), 14),
                // a@16 joins [10,14] and [20,20]
                row("a", 10, 14, None, 14),
                row("a", 20, 20, None, 20),
                row("a", 10, 20, Some(4), 20),
                // a@1 would merge into [0,3], which ended before 20 - 10: dropped
            ]
        );
        let store: SessionStore<String, i64> = driver.state_store("sessions").unwrap();
        let all: Vec<(i64, i64, i64)> =
            store.all().unwrap().into_iter().map(|(w, v)| (w.window.start_ms, w.window.end_ms, v)).collect();
        // [0,3] ended more than the retention (gap + grace = 15) before 20: expired
        assert_eq!(all, vec![(10, 20, 4)]);
    }

    #[test]
    fn session_aggregate_uses_the_merger() {
        let b = StreamsBuilder::new();
        let w = SessionWindows::of_inactivity_gap_and_grace(ms(5), ms(20)).unwrap();
        let table = grouped(&b)
            .windowed_by_session(w)
            .unwrap()
            .aggregate(
                String::new,
                |_, v, a| format!("{a}{v}"),
                |_, a, b| format!("{a}|{b}"),
                Materialized::with(Serdes::string(), Serdes::string()),
            )
            .unwrap();
        table.to_stream().unwrap().to("out", Produced::default()).unwrap();
        let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        i.pipe_input_at("k".into(), "x".into(), 0).unwrap();
        i.pipe_input_at("k".into(), "y".into(), 10).unwrap();
        i.pipe_input_at("k".into(), "z".into(), 5).unwrap();
        let o = driver.create_output_topic(
            "out",
            WindowedSerde::session(Serdes::string()),
            Serdes::option(Serdes::string()),
        );
        let got: Vec<(i64, i64, Option<String>)> = o
            .read_records_to_list()
            .unwrap()
            .into_iter()
            .map(|r| (r.key.window.start_ms, r.key.window.end_ms, r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, Some("x".to_string())),
                (10, 10, Some("y".to_string())),
                (0, 0, None),
                (10, 10, None),
                // init "" merged with "x" then "y", then z aggregated
                (0, 10, Some("|x|yz".to_string())),
            ]
        );
    }

    #[test]
    fn windowed_clicks_pipeline_with_group_by_and_suppress() {
        use crate::dsl::options::Grouped;
        use crate::dsl::suppress::Suppressed;
        let b = StreamsBuilder::new();
        // value "user:page" -> per-user clicks in 10 ms windows, final counts only
        b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
            .unwrap()
            .group_by(
                |_, v: &String| v.split(':').next().unwrap_or_default().to_string(),
                Grouped::with(Serdes::string(), Serdes::string()).with_name("by-user"),
            )
            .unwrap()
            .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(2)).unwrap())
            .unwrap()
            .count(Materialized::as_store("clicks"))
            .unwrap()
            .suppress(Suppressed::until_window_closes())
            .unwrap()
            .to_stream()
            .unwrap()
            .map(|w, c| (format!("{}@{}", w.key, w.window.start_ms), c.unwrap_or(0)))
            .unwrap()
            .to("out", Produced::with(Serdes::string(), Serdes::i64()))
            .unwrap();
        let t = b.build().unwrap();
        let names: Vec<String> = t.internal_topics().into_iter().map(|t| t.name.name).collect();
        assert!(names.contains(&"by-user-repartition".to_string()), "{names:?}");
        assert!(names.contains(&"clicks-changelog".to_string()), "{names:?}");
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut i = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        for (v, ts) in [("ann:a", 1), ("bob:b", 2), ("ann:c", 9), ("ann:d", 11), ("bob:e", 5), ("bob:f", 12)] {
            i.pipe_input_at("k".into(), v.into(), ts).unwrap();
        }
        let o = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
        assert_eq!(
            o.read_key_values_to_list().unwrap(),
            vec![("ann@0".to_string(), 2), ("bob@0".to_string(), 2)],
            "[0,10) closes at stream time 12; bob@5 came within the grace"
        );
        i.pipe_input_at("k".into(), "ann:g".into(), 3).unwrap(); // late: dropped
        i.pipe_input_at("k".into(), "ann:h".into(), 22).unwrap();
        assert_eq!(o.read_key_values_to_list().unwrap(), vec![("ann@10".to_string(), 1), ("bob@10".to_string(), 1)]);
    }

    #[test]
    fn a_key_change_repartitions_through_the_store_named_topic() {
        let b = StreamsBuilder::new();
        let mut g = grouped(&b);
        g.stream.repartition_required = true;
        g.windowed_by(TimeWindows::of_size_with_no_grace(ms(10)).unwrap())
            .unwrap()
            .count(Materialized::default())
            .unwrap();
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 2);
        let names: Vec<String> = t.internal_topics().into_iter().map(|t| t.name.name).collect();
        assert!(names.contains(&"KSTREAM-AGGREGATE-STATE-STORE-0000000001-repartition".to_string()), "{names:?}");
        assert!(names.contains(&"KSTREAM-AGGREGATE-STATE-STORE-0000000001-changelog".to_string()), "{names:?}");
    }
}
