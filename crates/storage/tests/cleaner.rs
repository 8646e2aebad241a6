//! Log compaction: latest value per key, offsets kept, tombstone expiry,
//! and a crash in the middle of cleaning.

use std::collections::HashMap;

use vltava_protocol::batch::{build_keyed_batch, records_of, records_section, BatchHeader, Batches};
use vltava_storage::cleaner::clean;
use vltava_storage::{CleanerConfig, Log, LogConfig};

fn config() -> LogConfig {
    LogConfig { segment_bytes: 2048, segment_ms: u64::MAX / 2, index_interval_bytes: 256, segment_index_bytes: 1 << 20 }
}

fn cleaner_config(now_ms: i64, delete_retention_ms: i64) -> CleanerConfig {
    CleanerConfig {
        now_ms,
        delete_retention_ms,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        min_cleanable_dirty_ratio: 0.0,
    }
}

/// 300 updates over 10 keys; value = "key:sequence". Every 7th update of
/// key k0 is a tombstone, and the last write of k9 is a tombstone.
fn fill(log: &mut Log) -> Vec<(i64, String, Option<String>)> {
    let mut written = Vec::new();
    for i in 0..300i64 {
        let key = format!("k{}", i % 10);
        let value = if (i % 10 == 0 && i % 7 == 0) || (i == 299) { None } else { Some(format!("{key}:{i}")) };
        let mut batch = build_keyed_batch(0, 1000 + i, &[(Some(key.as_bytes()), value.as_deref().map(str::as_bytes))]);
        let info = log.append(&mut batch, 0, None).unwrap();
        written.push((info.base_offset, key, value));
    }
    written
}

/// Every record in the log: offset -> (key, value).
fn read_back(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, 1 << 20).unwrap() {
        let bytes = slice.read().unwrap();
        for item in Batches::new(&bytes) {
            let Ok((_, batch)) = item else { break };
            let section = records_section(batch).unwrap();
            for r in records_of(batch, &section).unwrap() {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                    r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                ));
            }
            offset = BatchHeader::parse(batch).unwrap().last_offset() + 1;
        }
    }
    out
}

fn compact(log: &mut Log, cfg: &CleanerConfig) -> bool {
    let Some(plan) = log.cleaning_plan(cfg) else { return false };
    let cleaned = clean(&plan, cfg).unwrap();
    log.swap_cleaned(cleaned, plan.end_offset).unwrap();
    true
}

#[test]
fn keeps_latest_per_key_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), false).unwrap();
    let written = fill(&mut log);
    let before = log.size_bytes();
    let active_base = log.cleaning_plan(&cleaner_config(0, i64::MAX)).unwrap().end_offset;
    assert!(compact(&mut log, &cleaner_config(10_000, i64::MAX)));
    assert!(log.size_bytes() < before / 3, "compaction shrank the log: {} -> {}", before, log.size_bytes());
    let got = read_back(&log);
    // offsets are the original ones, in order, and each record is what was written there
    let by_offset: HashMap<i64, (String, Option<String>)> =
        written.iter().map(|(o, k, v)| (*o, (k.clone(), v.clone()))).collect();
    for w in got.windows(2) {
        assert!(w[0].0 < w[1].0);
    }
    for (o, k, v) in &got {
        assert_eq!(by_offset[o], (k.clone(), v.clone()), "offset {o} kept its record");
    }
    // in the cleaned range, each key appears once: its latest write there
    let mut latest_in_range: HashMap<&str, i64> = HashMap::new();
    for (o, k, _) in written.iter().filter(|(o, _, _)| *o < active_base) {
        latest_in_range.insert(k, *o);
    }
    let cleaned: Vec<_> = got.iter().filter(|(o, _, _)| *o < active_base).collect();
    assert_eq!(cleaned.len(), latest_in_range.len());
    for (o, k, _) in cleaned {
        assert_eq!(latest_in_range[k.as_str()], *o);
    }
    // every key's latest value overall is readable
    let mut latest: HashMap<String, Option<String>> = HashMap::new();
    for (_, k, v) in &written {
        latest.insert(k.clone(), v.clone());
    }
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    for (_, k, v) in &got {
        seen.insert(k.clone(), v.clone());
    }
    assert_eq!(seen, latest);
    // a second run has nothing new to do
    assert!(!compact(&mut log, &cleaner_config(10_000, i64::MAX)));
    assert_eq!(log.verify().unwrap(), 300);
}

#[test]
fn tombstones_expire_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), false).unwrap();
    fill(&mut log);
    // timestamps are 1000..1299: with a 500 ms horizon at now=1700, tombstones
    // written before 1200 are old enough to drop, later ones stay
    let cfg = cleaner_config(1700, 500);
    let cleaned_end = log.cleaning_plan(&cfg).unwrap().end_offset;
    assert!(compact(&mut log, &cfg));
    let got = read_back(&log);
    for (o, k, v) in &got {
        if v.is_none() && *o < cleaned_end {
            assert!(1000 + o >= 1200, "tombstone of {k} at offset {o} should have expired");
        }
    }
    let kept_recent = got.iter().filter(|(o, _, v)| v.is_none() && *o < cleaned_end && 1000 + o >= 1200).count();
    let written_recent = (200..cleaned_end).filter(|i| i % 10 == 0 && i % 7 == 0).count();
    assert!(kept_recent <= written_recent);
    assert!(got.iter().any(|(o, _, v)| v.is_none() && *o == 299), "the active segment's tombstone stays");
}

#[test]
fn crash_during_cleaning_leaves_a_valid_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), false).unwrap();
    let written = fill(&mut log);
    let cfg = cleaner_config(10_000, i64::MAX);
    let plan = log.cleaning_plan(&cfg).unwrap();
    let cleaned = clean(&plan, &cfg).unwrap();
    assert!(cleaned.iter().any(|c| c.path.is_some()));
    // crash: the cleaned files are written, nothing swapped
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config(), true).unwrap();
    assert_eq!(read_back(&log).len(), written.len(), "the original segments are intact");
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".cleaned")));
    drop(log);
    // crash after a swap renamed the log but before indexes were rebuilt
    let mut log = Log::open(dir.path(), config(), false).unwrap();
    assert!(compact(&mut log, &cfg));
    drop(log);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "index" || x == "timeindex") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let log = Log::open(dir.path(), config(), true).unwrap();
    assert_eq!(log.verify().unwrap(), 300);
    assert!(read_back(&log).len() < written.len());
}

#[test]
fn aborted_transactions_are_dropped_not_kept_as_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), false).unwrap();
    let mut txn = build_keyed_batch(0, 500, &[(Some(b"k-aborted"), Some(b"never committed"))]);
    vltava_protocol::batch::make_transactional(&mut txn, 5, 0);
    log.append(&mut txn, 0, None).unwrap();
    log.append_txn_marker(5, 0, false, 0, 0, 600).unwrap();
    fill(&mut log); // rolls segments past the transaction
    assert!(compact(&mut log, &cleaner_config(10_000, i64::MAX)));
    let got = read_back(&log);
    assert!(got.iter().all(|(_, k, _)| k != "k-aborted"), "an aborted record survived compaction");
}
