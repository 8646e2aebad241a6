//! Partition counts of the sub-topologies and creation of the internal
//! topics: a repartition topic gets the partition count of the
//! sub-topology that writes it (the largest of that sub-topology's source
//! topics, iterated to a fixed point as repartition topics feed one
//! another); a changelog gets its sub-topology's task count. Every source
//! topic of one sub-topology must have the same count (co-partitioning).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::util::block_on;
use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::topology::{InternalTopicKind, Topology};

/// What start() learned about the topics.
#[derive(Clone, Debug, Default)]
pub(crate) struct TopicLayout {
    /// Sub-topology -> its task count.
    pub sub_partitions: BTreeMap<u32, i32>,
    /// Sub-topology -> its source topics (actual names).
    pub sub_sources: BTreeMap<u32, Vec<String>>,
}

pub(crate) fn client_config(props: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

/// Partition counts of `topics` on the cluster (`None`: the topic does not exist).
fn partition_counts(consumer: &BaseConsumer, topics: &BTreeSet<String>) -> Result<BTreeMap<String, Option<i32>>> {
    let mut out = BTreeMap::new();
    for t in topics {
        let md = consumer.fetch_metadata(Some(t), Duration::from_secs(30))?;
        let count = md
            .topics()
            .iter()
            .find(|mt| mt.name() == t)
            .filter(|mt| mt.error().is_none() && !mt.partitions().is_empty())
            .map(|mt| mt.partitions().len() as i32);
        out.insert(t.clone(), count);
    }
    Ok(out)
}

/// Computes every sub-topology's partition count from the user topics'
/// counts (`known`, actual names) and the repartition topics between them.
pub(crate) fn compute_layout(
    topology: &Topology,
    app: &str,
    known: &BTreeMap<String, i32>,
) -> Result<(TopicLayout, BTreeMap<String, i32>)> {
    let subs = topology.subtopologies();
    let mut counts: BTreeMap<String, i32> = BTreeMap::new();
    let internal: BTreeSet<String> =
        subs.iter().flat_map(|s| s.source_topics.iter().filter(|t| t.internal).map(|t| t.resolve(app))).collect();
    for s in &subs {
        for t in s.source_topics.iter().filter(|t| !t.internal) {
            let name = t.resolve(app);
            let n = *known.get(&name).ok_or_else(|| {
                StreamsError::Topology(format!("source topic {name} is missing: create it before starting"))
            })?;
            counts.insert(name, n);
        }
    }
    // repartition topics: the writer's count, to a fixed point
    loop {
        let mut progress = false;
        for s in &subs {
            let writes: Vec<String> = s
                .sink_topics
                .iter()
                .map(|t| t.resolve(app))
                .filter(|t| internal.contains(t) && !counts.contains_key(t))
                .collect();
            if writes.is_empty() {
                continue;
            }
            let srcs: Vec<Option<i32>> = s.source_topics.iter().map(|t| counts.get(&t.resolve(app)).copied()).collect();
            if srcs.iter().all(Option::is_some) {
                let n = srcs.into_iter().flatten().max().unwrap_or(1);
                for w in writes {
                    counts.insert(w, n);
                    progress = true;
                }
            }
        }
        if !progress {
            break;
        }
    }
    let mut layout = TopicLayout::default();
    for s in &subs {
        let mut per_topic = BTreeMap::new();
        for t in &s.source_topics {
            let name = t.resolve(app);
            let n = *counts
                .get(&name)
                .ok_or_else(|| StreamsError::Topology(format!("Number of partitions is not set for topic: {name}")))?;
            per_topic.insert(name, n);
        }
        let distinct: BTreeSet<i32> = per_topic.values().copied().collect();
        if distinct.len() > 1 {
            let shown: Vec<String> = per_topic.iter().map(|(t, n)| format!("{t}={n}")).collect();
            return Err(StreamsError::Topology(format!(
                "Topics not co-partitioned: [{{{}}}] (sub-topology {} reads them together: give them the same number of partitions)",
                shown.join(", "),
                s.id
            )));
        }
        layout.sub_partitions.insert(s.id, distinct.into_iter().next().unwrap_or(1));
        layout.sub_sources.insert(s.id, per_topic.into_keys().collect());
    }
    Ok((layout, counts))
}

/// Creates the internal topics (and the metadata topic when given), then
/// waits until metadata shows them; returns the layout.
pub(crate) fn prepare_topics(
    topology: &Topology,
    config: &StreamsConfig,
    extra: &[(String, i32, BTreeMap<String, String>)],
) -> Result<TopicLayout> {
    let app = &config.application_id;
    let consumer: BaseConsumer = client_config(&config.client_props(&["consumer.", "main.consumer."])).create()?;
    let user: BTreeSet<String> = topology
        .subtopologies()
        .iter()
        .flat_map(|s| s.source_topics.iter().filter(|t| !t.internal).map(|t| t.resolve(app)))
        .collect();
    let known: BTreeMap<String, i32> =
        partition_counts(&consumer, &user)?.into_iter().filter_map(|(t, n)| n.map(|n| (t, n))).collect();
    let (layout, counts) = compute_layout(topology, app, &known)?;
    let mut wanted: Vec<(String, i32, BTreeMap<String, String>)> = Vec::new();
    for it in topology.internal_topics() {
        let name = it.name.resolve(app);
        let n = match &it.kind {
            InternalTopicKind::Repartition => counts.get(&name).copied().unwrap_or(1),
            InternalTopicKind::Changelog { .. } => layout.sub_partitions.get(&it.subtopology).copied().unwrap_or(1),
        };
        wanted.push((name, n, it.configs.clone()));
    }
    wanted.extend(extra.iter().cloned());
    if wanted.is_empty() {
        return Ok(layout);
    }
    let admin: AdminClient<DefaultClientContext> = client_config(&config.client_props(&["admin."])).create()?;
    let new: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, n, configs)| {
            let mut t = NewTopic::new(name, *n, TopicReplication::Fixed(config.replication_factor as i32));
            for (k, v) in configs {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in block_on(admin.create_topics(new.iter(), &opts))? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(StreamsError::Topology(format!("could not create internal topic {t}: {code}")));
            }
        }
    }
    let names: BTreeSet<String> = wanted.iter().map(|(n, _, _)| n.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = partition_counts(&consumer, &names)?;
        let missing: Vec<&String> = got.iter().filter(|(_, n)| n.is_none()).map(|(t, _)| t).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(StreamsError::Topology(format!("internal topics {missing:?} not in the metadata after 60 s")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Serdes;
    use crate::topology::TopicName;

    #[test]
    fn layout_follows_repartition_writers_and_checks_copartitioning() {
        let mut t = Topology::new();
        t.add_source("in", &["in"], Serdes::string(), Serdes::string()).unwrap();
        t.add_sink_topic("to-rk", TopicName::internal("rk-repartition"), Serdes::string(), Serdes::string(), &["in"])
            .unwrap();
        t.add_source_topics("from-rk", vec![TopicName::internal("rk-repartition")], Serdes::string(), Serdes::string())
            .unwrap();
        t.add_sink("out", "out", Serdes::string(), Serdes::string(), &["from-rk"]).unwrap();
        let known = BTreeMap::from([("in".to_string(), 6)]);
        let (layout, counts) = compute_layout(&t, "app", &known).unwrap();
        assert_eq!(counts.get("app-rk-repartition"), Some(&6));
        assert_eq!(layout.sub_partitions.values().copied().collect::<Vec<_>>(), vec![6, 6]);

        let mut t = Topology::new();
        t.add_source("a", &["x", "y"], Serdes::string(), Serdes::string()).unwrap();
        let err = compute_layout(&t, "app", &BTreeMap::from([("x".to_string(), 2), ("y".to_string(), 3)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Topics not co-partitioned: [{x=2, y=3}]"), "{err}");
        let err = compute_layout(&t, "app", &BTreeMap::from([("x".to_string(), 2)])).unwrap_err().to_string();
        assert!(err.contains("source topic y is missing"), "{err}");
    }
}
