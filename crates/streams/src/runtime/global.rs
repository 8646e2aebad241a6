//! The global thread: reads every partition of each global store's topic
//! (no consumer group), loads them to the end before the stream threads
//! start processing, then keeps applying updates until shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use super::restore::{RestoreConsumer, RestoreContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::topics::client_config;
use super::util::raw_record;
use super::Shared;
use crate::config::{ProcessingGuarantee, StreamsConfig};
use crate::error::{Result, StreamsError};
use crate::topology::Topology;

pub(crate) fn run(
    config: StreamsConfig,
    topology: Arc<Topology>,
    shared: Arc<Shared>,
    process_id: String,
) -> Result<()> {
    let mut c = client_config(&config.client_props(&["consumer.", "global.consumer."]));
    c.set("client.id", format!("{}-{process_id}-GlobalStreamThread-global-consumer", config.application_id));
    // librdkafka assigns only with a group id; this consumer never joins the group (no subscribe, no commit)
    c.set("group.id", format!("{}-unjoined", config.application_id));
    c.set("enable.auto.commit", "false");
    c.set("enable.partition.eof", "true");
    c.set("auto.offset.reset", "earliest");
    let eos = config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
    c.set("isolation.level", if eos { "read_committed" } else { "read_uncommitted" });
    let consumer: RestoreConsumer = c.create_with_context(RestoreContext)?;
    let mut tpl = TopicPartitionList::new();
    let mut by_topic = BTreeMap::new();
    let mut remaining: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (i, g) in topology.global_stores().iter().enumerate() {
        by_topic.insert(g.topic.clone(), i);
        let md = consumer.fetch_metadata(Some(&g.topic), Duration::from_secs(30))?;
        let parts: Vec<i32> = md
            .topics()
            .iter()
            .find(|t| t.name() == g.topic && t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if parts.is_empty() {
            return Err(StreamsError::Topology(format!(
                "global topic {} is missing: create it before starting",
                g.topic
            )));
        }
        for p in parts {
            tpl.add_partition_offset(&g.topic, p, Offset::Beginning)?;
            let (_, high) = consumer.fetch_watermarks(&g.topic, p, Duration::from_secs(30))?;
            if high > 0 {
                remaining.insert((g.topic.clone(), p));
                ends.insert((g.topic.clone(), p), high);
            }
        }
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut loaded = 0u64;
    if remaining.is_empty() {
        shared.globals_loaded.store(true, Ordering::SeqCst);
    }
    while !shared.shutdown.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            // the event names the partition only: it ends a topic's load when one global topic has it
            Some(Err(KafkaError::PartitionEOF(p))) if ends.keys().filter(|(_, q)| *q == p).count() == 1 => {
                remaining.retain(|(_, q)| *q != p);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "global consumer"),
            Some(Ok(m)) => {
                let raw = raw_record(&m);
                let tp = (raw.topic.clone(), raw.partition);
                if ends.get(&tp).is_some_and(|&end| raw.offset + 1 >= end) {
                    remaining.remove(&tp);
                }
                if let Some(&i) = by_topic.get(&raw.topic) {
                    let spec = &topology.global_stores()[i];
                    let store = shared
                        .globals
                        .get(&spec.store.name)
                        .ok_or_else(|| StreamsError::Topology(format!("global store {} not open", spec.store.name)))?;
                    (spec.update)(&mut store.lock(), &raw)?;
                    loaded += 1;
                }
            }
        }
        if remaining.is_empty() && !shared.globals_loaded.load(Ordering::SeqCst) {
            tracing::info!("global stores loaded: {loaded} records in {:?}", started.elapsed());
            shared.globals_loaded.store(true, Ordering::SeqCst);
        }
    }
    Ok(())
}
