//! Joins of a stream: with another stream inside a [`JoinWindows`]
//! (`join`, `left_join`, `outer_join`), with a table (`join_table`,
//! `left_join_table`: a lookup in the table's store for each stream record;
//! table updates emit nothing), with a global table (`join_global`,
//! `left_join_global`: a lookup by a key taken from the record, no
//! repartitioning).
//!
//! Stream-stream joins follow Kafka Streams (>= 3.1): each side's records go
//! to a window store of its own (duplicates kept; retention: before plus
//! after plus grace), each record is joined with the other side's records in its
//! window (output timestamp: the larger of the two); with left / outer
//! joins, a record nothing joined waits in a shared "outer" store and is
//! emitted with a missing other side only once its window has closed (stream
//! time past its timestamp + the window after it + grace), unless something
//! joins it first. A record arriving when its window is already over is
//! emitted unjoined at once. Nodes and stores are named as Kafka Streams
//! names them: `KSTREAM-WINDOWED-N` (one per side; keeps the side's records
//! in its store), `KSTREAM-JOINTHIS-N` / `KSTREAM-OUTERTHIS-N` and
//! `KSTREAM-JOINOTHER-N` / `KSTREAM-OUTEROTHER-N` (join with the other side's
//! store), `KSTREAM-MERGE-N`; stores `<join node>-store` and
//! `KSTREAM-OUTERSHARED-N-store`, or with `StreamJoined::with_store_name(s)`:
//! `s-this-join-store` (`s-outer-this-join-store`), `s-other-join-store`
//! (`s-outer-other-join-store`), `s-left-shared-join-store` (left join) /
//! `s-outer-shared-join-store` (outer join).
//!
//! Co-partitioning: a stream whose key changed is repartitioned first
//! (`<stream node>-repartition`, or `<name>-left` / `<name>-right` with a
//! join name).

use std::sync::Arc;
use std::time::Duration;

use super::global::GlobalKTable;
use super::kstream::KStream;
use super::ktable::{KTable, ValueAndTimestamp};
use super::options::{Joined, StreamJoined};
use super::windows::JoinWindows;
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::{SerdeRef, Serdes};
use crate::state::encoding::ts;
use crate::state::{KeyValueStore, StoreBuilder, Stores, WindowStore};
use crate::Data;

type Both<A, B, R> = Arc<dyn Fn(&A, &B) -> R + Send + Sync>;
type One<A, R> = Arc<dyn Fn(&A) -> R + Send + Sync>;

impl<K: Data, V: Data> KStream<K, V> {
    /// Inner join with `other`: records of a key at most the window apart.
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> Result<KStream<K, VR>> {
        self.stream_join(other, Arc::new(joiner), None, None, windows, joined)
    }

    /// Left join with `other`: a record of this stream nothing joins is
    /// emitted with `None` once its window closes.
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> Result<KStream<K, VR>> {
        let joiner = Arc::new(joiner);
        let j2 = joiner.clone();
        self.stream_join(
            other,
            Arc::new(move |a, b| joiner(a, Some(b))),
            Some(Arc::new(move |a| j2(a, None))),
            None,
            windows,
            joined,
        )
    }

    /// Outer join with `other`: a record of either side nothing joins is
    /// emitted with the other side `None` once its window closes.
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> Result<KStream<K, VR>> {
        let joiner = Arc::new(joiner);
        let (j2, j3) = (joiner.clone(), joiner.clone());
        self.stream_join(
            other,
            Arc::new(move |a, b| joiner(Some(a), Some(b))),
            Some(Arc::new(move |a| j2(Some(a), None))),
            Some(Arc::new(move |b| j3(None, Some(b)))),
            windows,
            joined,
        )
    }

    fn stream_join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        both: Both<V, VO, VR>,
        left_only: Option<One<V, VR>>,
        right_only: Option<One<VO, VR>>,
        windows: JoinWindows,
        sj: StreamJoined<K, V, VO>,
    ) -> Result<KStream<K, VR>> {
        let (left_outer, right_outer) = (left_only.is_some(), right_only.is_some());
        let this = self.repartition_if_required(
            &sj.name.as_ref().map_or_else(|| self.node.clone(), |n| format!("{n}-left")),
            sj.key.clone(),
            sj.value.clone(),
        )?;
        let that = other.repartition_if_required(
            &sj.name.as_ref().map_or_else(|| other.node.clone(), |n| format!("{n}-right")),
            sj.key.clone(),
            sj.other_value.clone(),
        )?;
        let need = |what: &str| {
            StreamsError::Topology(format!("a stream-stream join needs the {what}: give it with StreamJoined::with"))
        };
        let key = this.key_serde.clone().or_else(|| that.key_serde.clone()).ok_or_else(|| need("key serde"))?;
        let vs = this.value_serde.clone().ok_or_else(|| need("left value serde"))?;
        let vos = that.value_serde.clone().ok_or_else(|| need("right value serde"))?;
        let mut b = self.builder.borrow_mut();
        // Kafka Streams' names: a windowed node per side (it keeps the side's
        // records), a join node per side (it reads the other side's store), a merge
        let named = |suffix: &str| sj.name.as_ref().map(|n| format!("{n}{suffix}"));
        let this_windowed = named("-this-windowed").unwrap_or_else(|| b.new_name("KSTREAM-WINDOWED"));
        let other_windowed = named("-other-windowed").unwrap_or_else(|| b.new_name("KSTREAM-WINDOWED"));
        let gen_this = b.new_name(if right_outer { "KSTREAM-OUTERTHIS" } else { "KSTREAM-JOINTHIS" });
        let gen_other = b.new_name(if left_outer { "KSTREAM-OUTEROTHER" } else { "KSTREAM-JOINOTHER" });
        let this_suffix = if right_outer { "-outer-this-join" } else { "-this-join" };
        let other_suffix = if left_outer { "-outer-other-join" } else { "-other-join" };
        let this_node = named(this_suffix).unwrap_or_else(|| gen_this.clone());
        let other_node = named(other_suffix).unwrap_or_else(|| gen_other.clone());
        let merge_node = named("-merge").unwrap_or_else(|| b.new_name("KSTREAM-MERGE"));
        let shared_suffix = if right_outer { "-outer-shared-join" } else { "-left-shared-join" };
        let (this_store, other_store, outer_store) = match &sj.store_name {
            Some(n) => (
                format!("{n}{this_suffix}-store"),
                format!("{n}{other_suffix}-store"),
                format!("{n}{shared_suffix}-store"),
            ),
            None => {
                let index = gen_this.rsplit('-').next().unwrap_or_default();
                (
                    format!("{gen_this}-store"),
                    format!("{gen_other}-store"),
                    format!("KSTREAM-OUTERSHARED-{index}-store"),
                )
            }
        };
        let retention = Duration::from_millis(windows.size_ms().saturating_add(windows.grace_ms).max(0) as u64);
        let size = Duration::from_millis(windows.size_ms().max(0) as u64);
        let outer = (left_outer || right_outer).then(|| {
            Arc::new(Outer {
                store_name: outer_store.clone(),
                key: key.clone(),
                left: vs.clone(),
                right: vos.clone(),
                left_only: left_only.clone(),
                right_only: right_only.clone(),
                windows,
            })
        });
        let (o1, o2) = (outer.clone(), outer.clone());
        let (k1, k2, vs1, vos1) = (key.clone(), key.clone(), vs.clone(), vos.clone());
        let (os1, ts2) = (other_store.clone(), this_store.clone());
        let both2 = both.clone();
        let (lo, ro) = (left_only.clone(), right_only.clone());
        let s1 = this_store.clone();
        b.topology.add_processor(
            &this_windowed,
            move || WindowPut::<K, V> { store_name: s1.clone(), store: None },
            &[&this.node],
        )?;
        let s2 = other_store.clone();
        b.topology.add_processor(
            &other_windowed,
            move || WindowPut::<K, VO> { store_name: s2.clone(), store: None },
            &[&that.node],
        )?;
        b.topology.add_processor(
            &this_node,
            move || JoinSide::<K, V, VO, V, VO, VR> {
                left_side: true,
                other_store: os1.clone(),
                before: windows.before_ms,
                after: windows.after_ms,
                both: both.clone(),
                outer: o1.clone(),
                own_only: lo.clone(),
                key: k1.clone(),
                own_serde: vs1.clone(),
                stores: None,
            },
            &[&this_windowed],
        )?;
        b.topology.add_processor(
            &other_node,
            move || JoinSide::<K, VO, V, V, VO, VR> {
                left_side: false,
                other_store: ts2.clone(),
                before: windows.after_ms,
                after: windows.before_ms,
                both: Arc::new({
                    let both = both2.clone();
                    move |b: &VO, a: &V| both(a, b)
                }),
                outer: o2.clone(),
                own_only: ro.clone(),
                key: k2.clone(),
                own_serde: vos1.clone(),
                stores: None,
            },
            &[&other_windowed],
        )?;
        let nodes = [this_node.as_str(), other_node.as_str()];
        b.topology.add_state_store(
            logged(&sj.logging, Stores::window(&this_store, retention, size, true, key.clone(), vs.clone())),
            &[&this_windowed, &other_node],
        )?;
        b.topology.add_state_store(
            logged(&sj.logging, Stores::window(&other_store, retention, size, true, key.clone(), vos.clone())),
            &[&other_windowed, &this_node],
        )?;
        if outer.is_some() {
            b.topology.add_state_store(
                logged(&sj.logging, Stores::key_value(&outer_store, Serdes::bytes(), Serdes::bytes())),
                &nodes,
            )?;
        }
        b.topology.add_processor(&merge_node, Forward::<K, VR>::default, &nodes)?;
        drop(b);
        Ok(self.derive(merge_node, Some(key), None, false))
    }

    /// Joins each record with the table's value for its key (records whose
    /// key the table lacks are dropped).
    pub fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> Result<KStream<K, VR>> {
        self.table_join(table, Arc::new(move |v, t: Option<&VT>| t.map(|t| joiner(v, t))), joined, false)
    }

    /// Joins each record with the table's value for its key, `None` when the
    /// table lacks it.
    pub fn left_join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> Result<KStream<K, VR>> {
        self.table_join(table, Arc::new(move |v, t| Some(joiner(v, t))), joined, true)
    }

    fn table_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: LookupJoiner<V, VT, VR>,
        joined: Joined<K, V, VT>,
        left: bool,
    ) -> Result<KStream<K, VR>> {
        let store = table.store.clone().ok_or_else(|| {
            StreamsError::Topology(format!(
                "a stream-table join needs the table materialized (table node {} has no store)",
                table.node
            ))
        })?;
        let repartition = joined.name.as_ref().map_or_else(|| self.node.clone(), |n| format!("{n}-left"));
        let input = self.repartition_if_required(&repartition, joined.key.clone(), joined.value.clone())?;
        let mut b = self.builder.borrow_mut();
        let node =
            joined.name.clone().unwrap_or_else(|| b.new_name(if left { "KSTREAM-LEFTJOIN" } else { "KSTREAM-JOIN" }));
        let s = store.clone();
        b.topology.add_processor(
            &node,
            move || Lookup::<K, V, K, VT, VR> {
                store_name: s.clone(),
                key_of: Arc::new(|k: &K, _: &V| k.clone()),
                joiner: joiner.clone(),
                store: None,
            },
            &[&input.node],
        )?;
        b.topology.connect_processor_and_state_stores(&node, &[&store])?;
        drop(b);
        Ok(input.derive(node, input.key_serde.clone(), None, false))
    }

    /// Joins each record with the global table's value for
    /// `key_selector(key, value)` (records it lacks are dropped).
    pub fn join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        global: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, &VG) -> VR + Send + Sync + 'static,
    ) -> Result<KStream<K, VR>> {
        self.global_join(
            global,
            Arc::new(key_selector),
            Arc::new(move |v, g: Option<&VG>| g.map(|g| joiner(v, g))),
            false,
        )
    }

    /// As `join_global`, with `None` when the global table lacks the key.
    pub fn left_join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        global: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
    ) -> Result<KStream<K, VR>> {
        self.global_join(global, Arc::new(key_selector), Arc::new(move |v, g| Some(joiner(v, g))), true)
    }

    fn global_join<KG: Data, VG: Data, VR: Data>(
        &self,
        global: &GlobalKTable<KG, VG>,
        key_of: KeyOf<K, V, KG>,
        joiner: LookupJoiner<V, VG, VR>,
        left: bool,
    ) -> Result<KStream<K, VR>> {
        let mut b = self.builder.borrow_mut();
        let node = b.new_name(if left { "KSTREAM-LEFTJOIN" } else { "KSTREAM-JOIN" });
        let s = global.store.clone();
        b.topology.add_processor(
            &node,
            move || Lookup::<K, V, KG, VG, VR> {
                store_name: s.clone(),
                key_of: key_of.clone(),
                joiner: joiner.clone(),
                store: None,
            },
            &[&self.node],
        )?;
        drop(b);
        Ok(self.derive(node, self.key_serde.clone(), None, self.repartition_required))
    }
}

fn logged<S>(logging: &Option<std::collections::BTreeMap<String, String>>, s: StoreBuilder<S>) -> StoreBuilder<S> {
    match logging {
        Some(c) => s.with_logging_enabled(c.clone()),
        None => s.with_logging_disabled(),
    }
}

type KeyOf<K, V, KT> = Arc<dyn Fn(&K, &V) -> KT + Send + Sync>;
type LookupJoiner<V, VT, VR> = Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// A stream record joined with a store lookup (table or global table).
struct Lookup<K, V, KT, VT, VR> {
    store_name: String,
    key_of: KeyOf<K, V, KT>,
    joiner: LookupJoiner<V, VT, VR>,
    store: Option<KeyValueStore<KT, ValueAndTimestamp<VT>>>,
}

impl<K: Data, V: Data, KT: Data, VT: Data, VR: Data> Processor<K, V, K, VR> for Lookup<K, V, KT, VT, VR> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VR>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, VR>, r: Record<K, V>) -> Result<()> {
        let store = self.store.as_ref().ok_or_else(|| StreamsError::store(&self.store_name, "used before init"))?;
        let found = store.get(&(self.key_of)(&r.key, &r.value))?;
        if let Some(out) = (self.joiner)(&r.value, found.as_ref().map(|f| &f.value)) {
            ctx.forward(r.with_value(out))?;
        }
        Ok(())
    }
}

/// Passes records on (the join's merge node).
struct Forward<K, V>(std::marker::PhantomData<fn(K, V)>);

impl<K, V> Default for Forward<K, V> {
    fn default() -> Self {
        Forward(std::marker::PhantomData)
    }
}

impl<K: Data, V: Data> Processor<K, V, K, V> for Forward<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>) -> Result<()> {
        ctx.forward(r)
    }
}

/// The outer store shared by both sides of a left / outer join: records
/// nothing joined yet. Key: `[timestamp: 8, order-preserving][side: 0 left,
/// 1 right][key bytes]`; value: `[count: u32 BE]` then `[length: u32 BE]
/// [value bytes]` per record (several records may share a key and time).
struct Outer<K, V, VO, VR> {
    store_name: String,
    key: SerdeRef<K>,
    left: SerdeRef<V>,
    right: SerdeRef<VO>,
    left_only: Option<One<V, VR>>,
    right_only: Option<One<VO, VR>>,
    windows: JoinWindows,
}

fn outer_key(t: i64, left: bool, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&ts(t));
    k.push(if left { 0 } else { 1 });
    k.extend_from_slice(key);
    k
}

fn decode_list(store: &str, mut b: &[u8]) -> Result<Vec<Vec<u8>>> {
    let bad = || StreamsError::store(store, "a malformed outer-join store entry (delete the store to reset it)");
    let mut next = |n: usize| -> Result<Vec<u8>> {
        if b.len() < n {
            return Err(bad());
        }
        let (h, t) = b.split_at(n);
        b = t;
        Ok(h.to_vec())
    };
    let count = u32::from_be_bytes(next(4)?.try_into().map_err(|_| bad())?);
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32::from_be_bytes(next(4)?.try_into().map_err(|_| bad())?) as usize;
        out.push(next(len)?);
    }
    Ok(out)
}

fn encode_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (items.len() as u32).to_be_bytes().to_vec();
    for i in items {
        out.extend_from_slice(&(i.len() as u32).to_be_bytes());
        out.extend_from_slice(i);
    }
    out
}

impl<K: Data, V: Data, VO: Data, VR: Data> Outer<K, V, VO, VR> {
    /// Emits the records whose window closed by `stream_time`, oldest first.
    fn emit_closed(
        &self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        store: &KeyValueStore<Vec<u8>, Vec<u8>>,
        stream_time: i64,
    ) -> Result<()> {
        let w = self.windows;
        let earliest_close = w.after_ms.min(w.before_ms).saturating_add(w.grace_ms);
        for (k, v) in store.all()? {
            if k.len() < 9 {
                return Err(StreamsError::store(&self.store_name, "a malformed outer-join store key"));
            }
            let t = crate::state::encoding::read_ts(&k);
            if t.saturating_add(earliest_close) >= stream_time {
                break;
            }
            let left = k[8] == 0;
            let look = if left { w.after_ms } else { w.before_ms };
            if t.saturating_add(look).saturating_add(w.grace_ms) >= stream_time {
                continue;
            }
            let key = self.key.deserialize(&self.store_name, Some(&k[9..]))?;
            for item in decode_list(&self.store_name, &v)? {
                let out = if left {
                    let v = self.left.deserialize(&self.store_name, Some(&item))?;
                    self.left_only.as_ref().map(|f| f(&v))
                } else {
                    let v = self.right.deserialize(&self.store_name, Some(&item))?;
                    self.right_only.as_ref().map(|f| f(&v))
                };
                if let Some(out) = out {
                    ctx.forward(Record::new(key.clone(), out, t))?;
                }
            }
            store.delete(&k)?;
        }
        Ok(())
    }
}

type OuterStore = KeyValueStore<Vec<u8>, Vec<u8>>;

/// A stream-stream join's windowed node: forwards each record to the join
/// node, then keeps it in its side's window store.
struct WindowPut<K, V> {
    store_name: String,
    store: Option<WindowStore<K, V>>,
}

impl<K: Data, V: Data> Processor<K, V, K, V> for WindowPut<K, V> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, V>) -> Result<()> {
        self.store = Some(ctx.state_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>) -> Result<()> {
        let store = self.store.clone().ok_or_else(|| StreamsError::store(&self.store_name, "used before init"))?;
        let (key, value, t) = (r.key.clone(), r.value.clone(), r.timestamp);
        ctx.forward(r)?;
        store.put(&key, Some(&value), t)
    }
}

/// One side of a stream-stream join: joins its records with the other
/// side's window store.
struct JoinSide<K, VThis, VOther, V, VO, VR> {
    left_side: bool,
    other_store: String,
    /// The window in this side's frame: other records in [t - before, t + after] join.
    before: i64,
    after: i64,
    both: Both<VThis, VOther, VR>,
    outer: Option<Arc<Outer<K, V, VO, VR>>>,
    /// What this side's unjoined records become (left side of a left join,
    /// both sides of an outer join).
    own_only: Option<One<VThis, VR>>,
    key: SerdeRef<K>,
    own_serde: SerdeRef<VThis>,
    stores: Option<(WindowStore<K, VOther>, Option<OuterStore>)>,
}

impl<K: Data, VThis: Data, VOther: Data, V: Data, VO: Data, VR: Data> Processor<K, VThis, K, VR>
    for JoinSide<K, VThis, VOther, V, VO, VR>
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VR>) -> Result<()> {
        let outer = match &self.outer {
            Some(o) => Some(ctx.state_store(&o.store_name)?),
            None => None,
        };
        self.stores = Some((ctx.state_store(&self.other_store)?, outer));
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, VR>, r: Record<K, VThis>) -> Result<()> {
        let (other, outer_store) =
            self.stores.clone().ok_or_else(|| StreamsError::store(&self.other_store, "used before init"))?;
        let t = r.timestamp;
        let stream_time = ctx.stream_time();
        if let (Some(o), Some(s)) = (&self.outer, &outer_store) {
            if t == stream_time {
                o.emit_closed(ctx, s, stream_time)?;
            }
        }
        let (from, to) = (t.saturating_sub(self.before).max(0), t.saturating_add(self.after).max(0));
        let matches = other.fetch_range(&r.key, from, to)?;
        let key_bytes = || -> Result<Vec<u8>> {
            self.key
                .serialize(&self.other_store, &r.key)?
                .ok_or_else(|| StreamsError::serde(&self.other_store, "a join key serialized to null"))
        };
        if !matches.is_empty() {
            let kb = if outer_store.is_some() { Some(key_bytes()?) } else { None };
            for (other_t, ov) in &matches {
                if let (Some(s), Some(kb)) = (&outer_store, &kb) {
                    let ok = outer_key(*other_t, !self.left_side, kb);
                    if s.get(&ok)?.is_some() {
                        s.delete(&ok)?;
                    }
                }
                let out = (self.both)(&r.value, ov);
                ctx.forward(Record {
                    key: r.key.clone(),
                    value: out,
                    timestamp: t.max(*other_t),
                    headers: r.headers.clone(),
                })?;
            }
        } else if self.own_only.is_some() {
            match (&self.outer, &outer_store) {
                (Some(o), Some(s)) if to >= stream_time => {
                    let kb = outer_key(t, self.left_side, &key_bytes()?);
                    let mut items = match s.get(&kb)? {
                        Some(b) => decode_list(&o.store_name, &b)?,
                        None => Vec::new(),
                    };
                    let vb = self
                        .own_serde
                        .serialize(&o.store_name, &r.value)?
                        .ok_or_else(|| StreamsError::serde(&o.store_name, "a joined value serialized to null"))?;
                    items.push(vb);
                    s.put(&kb, &encode_list(&items))?;
                }
                _ => {
                    // the window is already over: nothing can join it any more
                    if let Some(f) = &self.own_only {
                        let out = f(&r.value);
                        ctx.forward(Record {
                            key: r.key.clone(),
                            value: out,
                            timestamp: t,
                            headers: r.headers.clone(),
                        })?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::options::{Consumed, Materialized, Produced};
    use crate::dsl::StreamsBuilder;
    use crate::test_driver::{TestInputTopic, TopologyTestDriver};
    use crate::topology::Topology;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    type Side = TestInputTopic<String, String>;

    /// Two string streams `l` and `r` joined by `join`, written to `out`.
    fn stream_join(
        join: impl FnOnce(&KStream<String, String>, &KStream<String, String>) -> KStream<String, String>,
    ) -> (TopologyTestDriver, Side, Side, Topology) {
        let b = StreamsBuilder::new();
        let l = b.stream("l", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        let r = b.stream("r", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        join(&l, &r).to("out", Produced::value_serde(Serdes::string())).unwrap();
        let t = b.build().unwrap();
        let driver = TopologyTestDriver::new(t.clone()).unwrap();
        let l = driver.create_input_topic("l", Serdes::string(), Serdes::string());
        let r = driver.create_input_topic("r", Serdes::string(), Serdes::string());
        (driver, l, r, t)
    }

    fn out(driver: &TopologyTestDriver) -> Vec<(String, String, i64)> {
        driver
            .create_output_topic("out", Serdes::string(), Serdes::string())
            .read_records_to_list()
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect()
    }

    fn o(k: &str, v: &str, ts: i64) -> (String, String, i64) {
        (k.to_string(), v.to_string(), ts)
    }

    fn pipe(side: &mut Side, k: &str, v: &str, ts: i64) {
        side.pipe_input_at(k.to_string(), v.to_string(), ts).unwrap();
    }

    fn opt(v: Option<&String>) -> String {
        v.cloned().unwrap_or_else(|| "null".to_string())
    }

    #[test]
    fn inner_join_within_the_window() {
        let w = JoinWindows::of_time_difference_and_grace(ms(10), ms(0)).unwrap();
        let (driver, mut l, mut r, t) = stream_join(|l, r| {
            l.join(r, |a: &String, b: &String| format!("{a}+{b}"), w, StreamJoined::default()).unwrap()
        });
        let d = t.describe();
        assert!(
            d.contains("KSTREAM-JOINTHIS-0000000004-store") && d.contains("KSTREAM-JOINOTHER-0000000005-store"),
            "{d}"
        );
        assert!(!d.contains("OUTERSHARED"), "{d}");
        pipe(&mut l, "a", "L1", 0);
        pipe(&mut r, "a", "R1", 5);
        pipe(&mut r, "a", "R2", 20);
        pipe(&mut r, "b", "X", 21);
        pipe(&mut l, "a", "L2", 15);
        pipe(&mut l, "a", "L3", 31);
        assert_eq!(out(&driver), vec![o("a", "L1+R1", 5), o("a", "L2+R1", 15), o("a", "L2+R2", 20)]);
    }

    #[test]
    fn left_join_emits_unjoined_records_once_their_window_closes() {
        let w = JoinWindows::of_time_difference_and_grace(ms(10), ms(0)).unwrap();
        let (driver, mut l, mut r, t) = stream_join(|l, r| {
            l.left_join(r, |a: &String, b: Option<&String>| format!("{a}+{}", opt(b)), w, StreamJoined::default())
                .unwrap()
        });
        let d = t.describe();
        assert!(d.contains("KSTREAM-OUTERSHARED-0000000004-store"), "{d}");
        assert!(d.contains("KSTREAM-OUTEROTHER-0000000005"), "{d}");
        assert!(
            d.contains("Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])"),
            "{d}"
        );
        assert!(d.contains("KSTREAM-MERGE-0000000006"), "{d}");
        pipe(&mut l, "a", "L1", 0);
        pipe(&mut l, "b", "B1", 3);
        assert!(out(&driver).is_empty(), "unjoined records wait for their window to close");
        pipe(&mut r, "a", "R1", 5);
        assert_eq!(out(&driver), vec![o("a", "L1+R1", 5)]);
        pipe(&mut l, "c", "C1", 11);
        assert!(out(&driver).is_empty(), "B1's window closes after 3 + 10");
        pipe(&mut r, "a", "R2", 14);
        assert_eq!(out(&driver), vec![o("b", "B1+null", 3)]);
        // out of order, its window already over: emitted at once
        pipe(&mut l, "d", "D1", 2);
        assert_eq!(out(&driver), vec![o("d", "D1+null", 2)]);
        // an unmatched right record emits nothing in a left join
        pipe(&mut l, "x", "X1", 30);
        assert_eq!(out(&driver), vec![o("c", "C1+null", 11)]);
        pipe(&mut l, "x", "X2", 41);
        assert_eq!(out(&driver), vec![o("x", "X1+null", 30)]);
    }

    #[test]
    fn outer_join_emits_either_side_unjoined_and_respects_the_grace() {
        let w = JoinWindows::of_time_difference_and_grace(ms(10), ms(5)).unwrap();
        let (driver, mut l, mut r, t) = stream_join(|l, r| {
            l.outer_join(
                r,
                |a: Option<&String>, b: Option<&String>| format!("{}+{}", opt(a), opt(b)),
                w,
                StreamJoined::default().with_store_name("j"),
            )
            .unwrap()
        });
        let d = t.describe();
        assert!(d.contains("j-outer-this-join-store") && d.contains("j-outer-shared-join-store"), "{d}");
        pipe(&mut l, "a", "L1", 0);
        pipe(&mut r, "b", "R1", 1);
        pipe(&mut l, "a", "L2", 15);
        assert!(out(&driver).is_empty(), "stream time 15 = 0 + 10 + 5: not closed yet");
        pipe(&mut l, "z", "Z", 16);
        assert_eq!(out(&driver), vec![o("a", "L1+null", 0)]);
        pipe(&mut l, "z", "Z2", 17);
        assert_eq!(out(&driver), vec![o("b", "null+R1", 1)]);
        pipe(&mut r, "a", "R2", 25);
        assert_eq!(out(&driver), vec![o("a", "L2+R2", 25)]);
        // L2 was joined: it is not emitted unjoined later
        pipe(&mut r, "q", "Q", 60);
        assert_eq!(out(&driver), vec![o("z", "Z+null", 16), o("z", "Z2+null", 17)]);
    }

    #[test]
    fn a_repartitioned_join_input_goes_through_its_own_topic() {
        let b = StreamsBuilder::new();
        let mut l = b.stream("l", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        let r = b.stream("r", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        l.repartition_required = true;
        let w = JoinWindows::of_time_difference_without_grace(ms(5)).unwrap();
        l.join(&r, |a: &String, b: &String| format!("{a}{b}"), w, StreamJoined::default().with_name("j")).unwrap();
        let t = b.build().unwrap();
        let names: Vec<String> = t.internal_topics().into_iter().map(|t| t.name.name).collect();
        assert!(names.contains(&"j-left-repartition".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("right")), "{names:?}");
        assert_eq!(t.subtopologies().len(), 2);
    }

    #[test]
    fn stream_table_joins_look_up_the_table_and_table_updates_emit_nothing() {
        for left in [false, true] {
            let b = StreamsBuilder::new();
            let table = b
                .table("t", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_store("tbl"))
                .unwrap();
            let s = b.stream("s", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
            let joined = if left {
                s.left_join_table(&table, |v: &String, t: Option<&String>| format!("{v}+{}", opt(t)), Joined::default())
            } else {
                s.join_table(&table, |v: &String, t: &String| format!("{v}+{t}"), Joined::default())
            };
            joined.unwrap().to("out", Produced::value_serde(Serdes::string())).unwrap();
            let driver = TopologyTestDriver::new(b.build().unwrap()).unwrap();
            let mut ti = driver.create_input_topic("t", Serdes::string(), Serdes::string());
            let mut si = driver.create_input_topic("s", Serdes::string(), Serdes::string());
            ti.pipe_input_at("a".into(), "T1".into(), 0).unwrap();
            si.pipe_input_at("a".into(), "S1".into(), 1).unwrap();
            si.pipe_input_at("b".into(), "S2".into(), 2).unwrap();
            ti.pipe_input_at("a".into(), "T2".into(), 3).unwrap();
            si.pipe_input_at("a".into(), "S3".into(), 4).unwrap();
            ti.pipe_tombstone_at("a".into(), 5).unwrap();
            si.pipe_input_at("a".into(), "S4".into(), 6).unwrap();
            let got = out(&driver);
            if left {
                assert_eq!(
                    got,
                    vec![o("a", "S1+T1", 1), o("b", "S2+null", 2), o("a", "S3+T2", 4), o("a", "S4+null", 6)]
                );
            } else {
                assert_eq!(got, vec![o("a", "S1+T1", 1), o("a", "S3+T2", 4)]);
            }
        }
    }

    #[test]
    fn global_table_joins_by_a_selected_key() {
        let b = StreamsBuilder::new();
        let g = b
            .global_table("g", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_store("gstore"))
            .unwrap();
        let s = b.stream("s", Consumed::with(Serdes::string(), Serdes::string())).unwrap();
        // the value names the global key
        s.join_global(&g, |_, v: &String| v.clone(), |v: &String, gv: &String| format!("{v}={gv}"))
            .unwrap()
            .to("out", Produced::value_serde(Serdes::string()))
            .unwrap();
        s.left_join_global(&g, |_, v: &String| v.clone(), |v: &String, gv: Option<&String>| format!("{v}={}", opt(gv)))
            .unwrap()
            .to("out-left", Produced::value_serde(Serdes::string()))
            .unwrap();
        let t = b.build().unwrap();
        assert!(t.describe().contains("Global store: gstore (topic: g)"), "{}", t.describe());
        let driver = TopologyTestDriver::new(t).unwrap();
        let mut gi = driver.create_input_topic("g", Serdes::string(), Serdes::string());
        let mut si = driver.create_input_topic("s", Serdes::string(), Serdes::string());
        gi.pipe_input_at("x".into(), "X1".into(), 7).unwrap();
        si.pipe_input_at("k1".into(), "x".into(), 10).unwrap();
        si.pipe_input_at("k2".into(), "y".into(), 11).unwrap();
        gi.pipe_tombstone_at("x".into(), 12).unwrap();
        si.pipe_input_at("k3".into(), "x".into(), 13).unwrap();
        assert_eq!(out(&driver), vec![o("k1", "x=X1", 10)]);
        let left: Vec<(String, String, i64)> = driver
            .create_output_topic("out-left", Serdes::string(), Serdes::string())
            .read_records_to_list()
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        assert_eq!(left, vec![o("k1", "x=X1", 10), o("k2", "y=null", 11), o("k3", "x=null", 13)]);
        let store: KeyValueStore<String, ValueAndTimestamp<String>> = driver.state_store("gstore").unwrap();
        assert_eq!(store.get(&"x".to_string()).unwrap(), None);
        gi.pipe_input_at("w".into(), "W".into(), 20).unwrap();
        assert_eq!(store.get(&"w".to_string()).unwrap(), Some(ValueAndTimestamp { value: "W".into(), timestamp: 20 }));
        // bytes the value serde cannot read fail with a serde error, not a panic
        assert!(gi.pipe_raw(Some(b"v".to_vec()), Some(vec![0xff, 0xfe]), 21).is_err());
    }
}
