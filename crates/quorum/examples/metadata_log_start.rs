//! Measures what a start costs with a long metadata log: writes N entries
//! (AlterIsr-sized records over 100 topics) through one voter, then times
//! reopening it, with the default snapshot settings and with snapshots off.
//!
//!     cargo run --release -p vltava-quorum --example metadata_log_start -- 100000

use std::time::{Duration, Instant};

use vltava_metadata::{EntryData, MetadataRecord};
use vltava_quorum::node::{NodeSettings, QuorumNode};

fn fill(dir: &std::path::Path, settings: &NodeSettings, entries: u64) -> Duration {
    let mut node = QuorumNode::open(dir, settings.clone(), Instant::now()).expect("open");
    while !node.is_leader() {
        node.tick();
        node.process_ready(Instant::now()).expect("ready");
    }
    let topics: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::new_v4()).collect();
    let setup = EntryData {
        id: 1,
        records: topics
            .iter()
            .enumerate()
            .flat_map(|(i, id)| {
                [
                    MetadataRecord::Topic { name: format!("topic-{i}"), topic_id: *id },
                    MetadataRecord::Partition {
                        topic_id: *id,
                        partition: 0,
                        replicas: vec![0],
                        isr: vec![0],
                        leader: 0,
                        leader_epoch: 0,
                        partition_epoch: 0,
                        target_replicas: None,
                    },
                ]
            })
            .collect(),
    };
    node.propose(setup.encode()).expect("propose");
    let started = Instant::now();
    for i in 0..entries {
        let topic_id = topics[(i % 100) as usize];
        let data = EntryData {
            id: i + 2,
            records: vec![MetadataRecord::AlterIsr {
                topic_id,
                partition: 0,
                leader_epoch: 0,
                partition_epoch: i as i32,
                isr: vec![0],
            }],
        };
        node.propose(data.encode()).expect("propose");
        if i % 100 == 99 {
            // one fsync per hundred entries, as proposals arriving together share one
            node.process_ready(Instant::now()).expect("ready");
        }
    }
    while node.has_ready() {
        node.process_ready(Instant::now()).expect("ready");
    }
    started.elapsed()
}

fn main() {
    let entries: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let default = NodeSettings::new(0, vec![]);
    let runs = [
        ("defaults (snapshot every 20 MiB, 16 MiB segments)", default.snapshot_bytes, default.log.segment_bytes),
        ("snapshot every 1 MiB, 1 MiB segments", 1 << 20, 1 << 20),
        ("no snapshots", u64::MAX, default.log.segment_bytes),
    ];
    for (label, snapshot_bytes, segment_bytes) in runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = default.clone();
        settings.snapshot_bytes = snapshot_bytes;
        settings.log.segment_bytes = segment_bytes;
        let wrote = fill(dir.path(), &settings, entries);
        let size: u64 = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
        let snapshots = vltava_quorum::snapshot::list(dir.path()).len();
        let opened = Instant::now();
        let node = QuorumNode::open(dir.path(), settings.clone(), Instant::now()).expect("reopen");
        let start = opened.elapsed();
        println!(
            "{label}: {entries} entries written in {:.1} s; on disk {:.1} MiB, {snapshots} snapshot file(s); \
             start {:.0} ms (image: {} topics, applied index {})",
            wrote.as_secs_f64(),
            size as f64 / (1 << 20) as f64,
            start.as_secs_f64() * 1000.0,
            node.image().topic_count(),
            node.applied_index(),
        );
    }
}
