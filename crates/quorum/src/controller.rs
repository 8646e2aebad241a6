//! The active controller's duties: the Raft leader fences brokers whose
//! heartbeats stop (and those shutting down or whose log directory
//! failed), unfences them when they come back, writes the cluster id once,
//! and moves leaderships back to preferred replicas. Pure logic over the
//! image, the heartbeats heard and `now`: it returns the records to
//! propose.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vltava_metadata::{MetadataImage, MetadataRecord};

/// What a broker tells the controllers every `broker.heartbeat.interval.ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub incarnation: u64,
    /// Controlled shutdown: move my leaderships away.
    pub shutting_down: bool,
    /// Log directories that failed (I/O errors): this broker serves nothing
    /// from them until it restarts.
    #[serde(default)]
    pub offline_log_dirs: Vec<String>,
    /// How many log directories the broker has: when every one failed, the
    /// controller fences the broker (its leaderships move); when only some
    /// did, `offline_replicas` go offline alone.
    #[serde(default)]
    pub log_dirs: usize,
    /// The replicas (topic id, partition) in the failed directories.
    #[serde(default)]
    pub offline_replicas: Vec<(uuid::Uuid, i32)>,
}

/// Timings the active controller works with.
#[derive(Debug, Clone)]
pub struct DutySettings {
    pub session_timeout: Duration,
    /// Proposed as the cluster id if the log has none yet.
    pub cluster_id: String,
    pub auto_leader_rebalance: Option<Duration>,
    /// Feature levels a new cluster starts with, written with its cluster
    /// id (Kafka's bootstrap feature levels at format time). A cluster
    /// created before a feature existed keeps it at 0 until UpdateFeatures
    /// raises it.
    pub bootstrap_features: Vec<(String, i16)>,
    /// Other records a new cluster starts with, written with its cluster
    /// id (the SCRAM users of `--add-scram`).
    pub bootstrap_records: Vec<MetadataRecord>,
}

/// The last heartbeat the active controller heard from a broker.
#[derive(Debug, Clone, Copy)]
struct Heard {
    at: Instant,
    incarnation: u64,
    shutting_down: bool,
    log_dir_failed: bool,
}

impl Heard {
    fn new(at: Instant, hb: &Heartbeat) -> Self {
        Self {
            at,
            incarnation: hb.incarnation,
            shutting_down: hb.shutting_down,
            // an old heartbeat without the count: one directory
            log_dir_failed: !hb.offline_log_dirs.is_empty() && hb.offline_log_dirs.len() >= hb.log_dirs,
        }
    }

    /// Whether the broker asks not to serve (controlled shutdown, or a
    /// failed log directory).
    fn must_be_fenced(&self) -> bool {
        self.shutting_down || self.log_dir_failed
    }
}

/// How long the controller waits before proposing about a broker again.
const REPEAT_AFTER: Duration = Duration::from_secs(1);

pub struct ControllerDuties {
    settings: DutySettings,
    was_leader: bool,
    heard: HashMap<i32, Heard>,
    /// The replicas each broker last reported in failed log directories.
    offline: HashMap<i32, (u64, Vec<(uuid::Uuid, i32)>)>,
    proposed: HashMap<i32, Instant>,
    cluster_id_proposed: Option<Instant>,
    last_rebalance: Option<Instant>,
}

impl ControllerDuties {
    pub fn new(settings: DutySettings) -> Self {
        Self {
            settings,
            was_leader: false,
            heard: HashMap::new(),
            offline: HashMap::new(),
            proposed: HashMap::new(),
            cluster_id_proposed: None,
            last_rebalance: None,
        }
    }

    pub fn heard(&mut self, hb: &Heartbeat, now: Instant) {
        self.heard.insert(hb.broker_id, Heard::new(now, hb));
        if hb.offline_replicas.is_empty() {
            self.offline.remove(&hb.broker_id);
        } else {
            self.offline.insert(hb.broker_id, (hb.incarnation, hb.offline_replicas.clone()));
        }
    }

    /// What the controller proposes now (nothing unless `leader`).
    pub fn on_tick(&mut self, image: &MetadataImage, leader: bool, now: Instant) -> Vec<MetadataRecord> {
        if leader && !self.was_leader {
            // a new controller gives every broker a full session to be heard;
            // what was heard stays (which process, shutting down or not, its
            // log directory), only the clock restarts
            for b in image.brokers() {
                let heard = self.heard.get(&b.id).copied().unwrap_or(Heard {
                    at: now,
                    incarnation: b.incarnation,
                    shutting_down: false,
                    log_dir_failed: false,
                });
                self.heard.insert(b.id, Heard { at: now, ..heard });
            }
        }
        self.was_leader = leader;
        if !leader {
            return Vec::new();
        }
        let mut records = Vec::new();
        if image.cluster_id.is_none() && self.cluster_id_proposed.is_none_or(|t| now.duration_since(t) > REPEAT_AFTER) {
            records.push(MetadataRecord::ClusterId { cluster_id: self.settings.cluster_id.clone() });
            records.extend(
                self.settings
                    .bootstrap_features
                    .iter()
                    .map(|(name, level)| MetadataRecord::FeatureLevel { name: name.clone(), level: *level }),
            );
            records.extend(self.settings.bootstrap_records.iter().cloned());
            self.cluster_id_proposed = Some(now);
        }
        for b in image.brokers() {
            if self.proposed.get(&b.id).is_some_and(|t| now.duration_since(*t) < REPEAT_AFTER) {
                continue;
            }
            let heard = self.heard.get(&b.id).copied().unwrap_or(Heard {
                at: now,
                incarnation: 0,
                shutting_down: false,
                log_dir_failed: false,
            });
            let (silent, current) = (now.duration_since(heard.at), heard.incarnation == b.incarnation);
            // replicas in a failed directory the image does not have offline yet
            let newly_offline: Vec<(uuid::Uuid, i32)> = match self.offline.get(&b.id) {
                Some((incarnation, replicas)) if *incarnation == b.incarnation => {
                    replicas.iter().copied().filter(|r| !b.offline_replicas.contains(r)).collect()
                }
                _ => Vec::new(),
            };
            let record = if !b.fenced && current && heard.must_be_fenced() {
                if heard.log_dir_failed {
                    tracing::warn!(broker = b.id, "broker's log directory failed: fencing it");
                } else {
                    tracing::info!(broker = b.id, "controlled shutdown: fencing broker");
                }
                Some(MetadataRecord::FenceBroker { broker_id: b.id, incarnation: b.incarnation, controlled: true })
            } else if !b.fenced && silent > self.settings.session_timeout {
                tracing::warn!(
                    broker = b.id,
                    silent_ms = silent.as_millis() as u64,
                    "broker missed heartbeats: fencing it"
                );
                Some(MetadataRecord::FenceBroker { broker_id: b.id, incarnation: b.incarnation, controlled: false })
            } else if !b.fenced && current && !newly_offline.is_empty() {
                tracing::warn!(
                    broker = b.id,
                    replicas = newly_offline.len(),
                    "replicas in a failed log directory: moving their leadership"
                );
                Some(MetadataRecord::OfflineReplicas {
                    broker_id: b.id,
                    incarnation: b.incarnation,
                    replicas: newly_offline,
                })
            } else if b.fenced && current && !heard.must_be_fenced() && silent < self.settings.session_timeout {
                tracing::info!(broker = b.id, "broker heartbeating again: unfencing it");
                Some(MetadataRecord::UnfenceBroker { broker_id: b.id, incarnation: b.incarnation })
            } else {
                None
            };
            if let Some(r) = record {
                self.proposed.insert(b.id, now);
                records.push(r);
            }
        }
        if let Some(interval) = self.settings.auto_leader_rebalance {
            if self.last_rebalance.is_none_or(|t| now.duration_since(t) >= interval) {
                self.last_rebalance = Some(now);
                let live = image.live_brokers();
                for topic in image.topics() {
                    for p in &topic.partitions {
                        let preferred = p.replicas.first().copied().unwrap_or(-1);
                        if p.leader != preferred && p.isr.contains(&preferred) && live.contains(&preferred) {
                            records.push(MetadataRecord::ElectPreferred {
                                topic_id: topic.topic_id,
                                partition: p.partition,
                            });
                        }
                    }
                }
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(brokers: &[(i32, u64)]) -> MetadataImage {
        let records: Vec<MetadataRecord> = brokers
            .iter()
            .map(|(id, inc)| MetadataRecord::RegisterBroker {
                broker_id: *id,
                incarnation: *inc,
                host: "h".into(),
                port: 1,
            })
            .chain([MetadataRecord::ClusterId { cluster_id: "c".into() }])
            .collect();
        MetadataImage::default().apply(&records)
    }

    fn hb(id: i32, inc: u64, shutting_down: bool, failed: bool) -> Heartbeat {
        Heartbeat {
            broker_id: id,
            incarnation: inc,
            shutting_down,
            offline_log_dirs: if failed { vec!["/data".into()] } else { vec![] },
            log_dirs: 1,
            offline_replicas: vec![],
        }
    }

    #[test]
    fn silent_shutting_down_and_failed_brokers_are_fenced_and_the_living_unfenced() {
        let settings = DutySettings {
            session_timeout: Duration::from_secs(3),
            cluster_id: "c".into(),
            bootstrap_features: vec![("transaction.version".into(), 2)],
            bootstrap_records: Vec::new(),
            auto_leader_rebalance: None,
        };
        let mut duties = ControllerDuties::new(settings);
        let image = image_with(&[(1, 10), (2, 20), (3, 30)]);
        let t0 = Instant::now();
        assert!(duties.on_tick(&image, false, t0).is_empty(), "followers propose nothing");
        assert!(duties.on_tick(&image, true, t0).is_empty(), "a new controller gives every broker a session");
        duties.heard(&hb(1, 10, false, false), t0 + Duration::from_secs(2));
        duties.heard(&hb(2, 20, true, false), t0 + Duration::from_secs(2));
        duties.heard(&hb(3, 30, false, true), t0 + Duration::from_secs(2));
        let records = duties.on_tick(&image, true, t0 + Duration::from_secs(2));
        let fenced: Vec<i32> = records
            .iter()
            .filter_map(|r| match r {
                MetadataRecord::FenceBroker { broker_id, .. } => Some(*broker_id),
                _ => None,
            })
            .collect();
        assert_eq!(fenced, vec![2, 3]);
        let image = image.apply(&records);
        // broker 1 goes silent; 2 restarts (a new incarnation is not unfenced by
        // the old one's heartbeat); 3 still reports its failed directory
        let t = t0 + Duration::from_secs(6);
        duties.heard(&hb(2, 20, false, false), t);
        duties.heard(&hb(3, 30, false, true), t);
        let records = duties.on_tick(&image, true, t);
        assert_eq!(
            records,
            vec![
                MetadataRecord::FenceBroker { broker_id: 1, incarnation: 10, controlled: false },
                MetadataRecord::UnfenceBroker { broker_id: 2, incarnation: 20 },
            ]
        );
    }

    #[test]
    fn a_failed_directory_among_several_takes_its_replicas_offline_not_the_broker() {
        let settings = DutySettings {
            session_timeout: Duration::from_secs(3),
            cluster_id: "c".into(),
            bootstrap_features: vec![("transaction.version".into(), 2)],
            bootstrap_records: Vec::new(),
            auto_leader_rebalance: None,
        };
        let mut duties = ControllerDuties::new(settings);
        let image = image_with(&[(1, 10)]);
        let t0 = Instant::now();
        assert!(duties.on_tick(&image, true, t0).is_empty());
        let replica = (uuid::Uuid::new_v4(), 3);
        let mut one_of_two = hb(1, 10, false, true);
        one_of_two.log_dirs = 2;
        one_of_two.offline_replicas = vec![replica];
        duties.heard(&one_of_two, t0 + Duration::from_millis(500));
        let records = duties.on_tick(&image, true, t0 + Duration::from_millis(500));
        assert_eq!(
            records,
            vec![MetadataRecord::OfflineReplicas { broker_id: 1, incarnation: 10, replicas: vec![replica] }]
        );
        // once the image has them, nothing more is proposed
        let image = image.apply(&records);
        let t = t0 + Duration::from_secs(2);
        duties.heard(&one_of_two, t);
        assert!(duties.on_tick(&image, true, t).is_empty());
        // every directory failed: the broker is fenced
        let mut all = one_of_two.clone();
        all.log_dirs = 1;
        duties.heard(&all, t0 + Duration::from_millis(2600));
        let records = duties.on_tick(&image, true, t0 + Duration::from_millis(2600));
        assert!(matches!(records[..], [MetadataRecord::FenceBroker { broker_id: 1, .. }]), "{records:?}");
    }
}
