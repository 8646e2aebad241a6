//! Instance discovery for interactive queries. librdkafka cannot carry
//! user data in a group assignment (Kafka Streams puts `application.server`
//! there), so each instance publishes `{server, tasks, updated_ms}` under
//! its process id to the compacted topic `<application.id>-streams-metadata`
//! (a tombstone on close) and reads that topic back from every partition
//! without a group. When two instances claim a task, the newest claim wins.
//! An instance republishes every [`PUBLISH_INTERVAL`]; one not heard of for
//! [`STALE_AFTER_MS`] (killed: no tombstone) is no longer listed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::topics::client_config;
use super::util::now_ms;
use super::Shared;
use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::topology::TaskId;

/// How often an instance republishes its entry when nothing changed.
pub(crate) const PUBLISH_INTERVAL: Duration = Duration::from_secs(30);

/// An entry older than this (three missed republications, by the publisher's
/// clock) is an instance that died without its tombstone.
pub(crate) const STALE_AFTER_MS: i64 = 3 * PUBLISH_INTERVAL.as_millis() as i64;

pub(crate) fn topic_name(app: &str) -> String {
    format!("{app}-streams-metadata")
}

/// What one instance published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstanceInfo {
    pub server: String,
    pub tasks: Vec<String>,
    pub updated_ms: i64,
}

/// The task claims of every known instance -> for each task, the instance
/// (process id) with the newest claim.
pub(crate) fn owners(instances: &BTreeMap<String, InstanceInfo>) -> BTreeMap<TaskId, String> {
    let mut best: BTreeMap<TaskId, (i64, String)> = BTreeMap::new();
    for (pid, info) in instances {
        for t in &info.tasks {
            let Ok(id) = t.parse::<TaskId>() else { continue };
            let claim = (info.updated_ms, pid.clone());
            match best.get(&id) {
                Some(b) if *b >= claim => {}
                _ => {
                    best.insert(id, claim);
                }
            }
        }
    }
    best.into_iter().map(|(t, (_, pid))| (t, pid)).collect()
}

/// `instances` without the entries not republished for [`STALE_AFTER_MS`] at `now_ms`.
pub(crate) fn live(mut instances: BTreeMap<String, InstanceInfo>, now_ms: i64) -> BTreeMap<String, InstanceInfo> {
    instances.retain(|_, info| now_ms.saturating_sub(info.updated_ms) <= STALE_AFTER_MS);
    instances
}

pub(crate) fn run(config: StreamsConfig, shared: Arc<Shared>, process_id: String, server: String) -> Result<()> {
    let topic = topic_name(&config.application_id);
    let mut pc = client_config(&config.client_props(&["producer."]));
    pc.set("client.id", format!("{}-{process_id}-metadata-producer", config.application_id));
    let producer: BaseProducer = pc.create()?;
    let mut cc = client_config(&config.client_props(&["consumer."]));
    cc.set("client.id", format!("{}-{process_id}-metadata-consumer", config.application_id));
    // librdkafka assigns only with a group id; this consumer never joins the group (no subscribe, no commit)
    cc.set("group.id", format!("{}-unjoined", config.application_id));
    cc.set("enable.auto.commit", "false");
    cc.set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = cc.create()?;
    let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(30))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
        }
    }
    if tpl.count() == 0 {
        return Err(StreamsError::Topology(format!("the metadata topic {topic} has no partitions")));
    }
    consumer.assign(&tpl)?;
    let mut last_publish: Option<Instant> = None;
    while !shared.shutdown.load(Ordering::SeqCst) {
        let due = last_publish.is_none_or(|t| t.elapsed() > PUBLISH_INTERVAL);
        if shared.metadata_dirty.swap(false, Ordering::SeqCst) || due {
            let mut tasks: Vec<String> = shared.local_tasks().iter().map(|t| t.to_string()).collect();
            tasks.sort();
            let info = InstanceInfo { server: server.clone(), tasks, updated_ms: now_ms() };
            let bytes = serde_json::to_vec(&info).map_err(|e| StreamsError::Processing(e.to_string()))?;
            shared.instances.lock().insert(process_id.clone(), info);
            if let Err((e, _)) = producer.send(BaseRecord::to(&topic).key(process_id.as_str()).payload(&bytes)) {
                tracing::warn!(error = %e, "publishing this instance's metadata");
                shared.metadata_dirty.store(true, Ordering::SeqCst);
            }
            last_publish = Some(Instant::now());
        }
        producer.poll(Duration::ZERO);
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else { continue };
                if key == process_id {
                    continue;
                }
                match m.payload() {
                    None => {
                        shared.instances.lock().remove(key);
                    }
                    Some(v) => match serde_json::from_slice::<InstanceInfo>(v) {
                        Ok(info) => {
                            shared.instances.lock().insert(key.to_string(), info);
                        }
                        Err(e) => tracing::warn!(instance = key, error = %e, "unreadable instance metadata"),
                    },
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "metadata consumer"),
            None => {}
        }
    }
    let tombstone: BaseRecord<'_, str, [u8]> = BaseRecord::to(&topic).key(process_id.as_str());
    if let Err((e, _)) = producer.send(tombstone) {
        tracing::warn!(error = %e, "removing this instance's metadata");
    }
    let _ = producer.flush(Duration::from_secs(10));
    shared.instances.lock().remove(&process_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_claim_of_a_task_wins() {
        let info = |tasks: &[&str], ms| InstanceInfo {
            server: "h:1".into(),
            tasks: tasks.iter().map(|s| s.to_string()).collect(),
            updated_ms: ms,
        };
        let m = BTreeMap::from([
            ("a".to_string(), info(&["0_0", "0_1", "0_2"], 10)),
            ("b".to_string(), info(&["0_2", "1_0"], 20)),
        ]);
        let o = owners(&m);
        let got: Vec<(String, &str)> = o.iter().map(|(t, p)| (t.to_string(), p.as_str())).collect();
        assert_eq!(got, vec![("0_0".into(), "a"), ("0_1".into(), "a"), ("0_2".into(), "b"), ("1_0".into(), "b")]);
    }

    #[test]
    fn an_instance_not_republished_for_three_intervals_is_dropped() {
        let info = |ms| InstanceInfo { server: "h:1".into(), tasks: vec!["0_0".into()], updated_ms: ms };
        let now = 1_000_000;
        let m = BTreeMap::from([
            ("fresh".to_string(), info(now - 1_000)),
            ("edge".to_string(), info(now - STALE_AFTER_MS)),
            ("dead".to_string(), info(now - STALE_AFTER_MS - 1)),
        ]);
        let kept: Vec<String> = live(m, now).into_keys().collect();
        assert_eq!(kept, vec!["edge".to_string(), "fresh".to_string()]);
    }
}
