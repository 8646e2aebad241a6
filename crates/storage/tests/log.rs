//! Log behaviour: append/read, roll, indexes, truncation, recovery.

use std::fs::OpenOptions;
use std::path::Path;

use proptest::prelude::*;
use vltava_protocol::batch::{build_batch, BatchHeader, Batches};
use vltava_storage::{Log, LogConfig, StorageError};

fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 4096, segment_ms: u64::MAX / 2, index_interval_bytes: 256, segment_index_bytes: 1 << 20 }
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:06}-{}", "x".repeat(i % 40)).into_bytes()
}

/// Appends `n` batches of 3 records each with timestamps 1000*i.
fn fill(log: &mut Log, n: usize) {
    for i in 0..n {
        let (a, b, c) = (value(3 * i), value(3 * i + 1), value(3 * i + 2));
        let mut batch = build_batch(0, 1000 * i as i64, &[&a, &b, &c]);
        let info = log.append(&mut batch, 0, None).unwrap();
        assert_eq!(info.last_offset - info.base_offset, 2);
    }
}

/// Reads every batch from `offset` to the end, returning their base offsets.
fn read_all(log: &Log, mut offset: i64) -> Vec<i64> {
    let mut bases = Vec::new();
    while let Some(slice) = log.read(offset, 1000).unwrap() {
        let bytes = slice.read().unwrap();
        let mut last = offset;
        for item in Batches::new(&bytes) {
            let Ok((_, batch)) = item else { break };
            let h = BatchHeader::parse(batch).unwrap();
            bases.push(h.base_offset());
            last = h.last_offset() + 1;
        }
        assert!(last > offset, "read must make progress");
        offset = last;
    }
    bases
}

#[test]
fn append_read_roll_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 200);
    assert_eq!(log.log_end_offset(), 600);
    assert!(log.segment_count() > 5, "small segments must roll: {}", log.segment_count());
    let bases = read_all(&log, 0);
    assert_eq!(bases, (0..200).map(|i| i * 3).collect::<Vec<_>>());
    // a read in the middle of a batch starts at that batch
    let slice = log.read(301, 1).unwrap().unwrap();
    let bytes = slice.read().unwrap();
    assert_eq!(BatchHeader::parse(&bytes).unwrap().base_offset(), 300);
    assert_eq!(bytes.len(), BatchHeader::parse(&bytes).unwrap().total_bytes(), "first batch whole even past max_bytes");
    assert!(log.read(600, 100).unwrap().is_none());
    assert!(matches!(log.read(601, 100), Err(StorageError::OffsetOutOfRange { .. })));
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_config(), false).unwrap();
    assert_eq!(log.log_end_offset(), 600);
    assert_eq!(read_all(&log, 0).len(), 200);
    assert_eq!(log.verify().unwrap(), 600);
}

#[test]
fn timestamp_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 100);
    let batch = log.batch_at_or_after_timestamp(50_500).unwrap().unwrap();
    assert_eq!(BatchHeader::parse(&batch).unwrap().base_offset(), 51 * 3);
    let batch = log.batch_at_or_after_timestamp(0).unwrap().unwrap();
    assert_eq!(BatchHeader::parse(&batch).unwrap().base_offset(), 0);
    assert!(log.batch_at_or_after_timestamp(100_000).unwrap().is_none());
    assert_eq!(log.max_timestamp(), Some((99_000, 299)));
}

#[test]
fn truncate_then_append_keeps_offsets_dense() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 100);
    log.truncate_to(150).unwrap();
    assert_eq!(log.log_end_offset(), 150);
    fill(&mut log, 1);
    assert_eq!(log.log_end_offset(), 153);
    assert_eq!(log.verify().unwrap(), 153);
}

fn newest_segment(dir: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

#[test]
fn recovery_cut_at_every_byte_of_last_batch() {
    let template = tempfile::tempdir().unwrap();
    let mut log = Log::open(template.path(), LogConfig::default(), false).unwrap();
    fill(&mut log, 5);
    drop(log);
    let seg = newest_segment(template.path());
    let full = std::fs::read(&seg).unwrap();
    let mut last_start = 0;
    for item in Batches::new(&full) {
        last_start = item.unwrap().0;
    }
    for cut in last_start..full.len() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(seg.file_name().unwrap()), &full[..cut]).unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default(), true).unwrap();
        assert_eq!(log.log_end_offset(), 12, "cut at {cut}: the 4 whole batches remain");
        assert_eq!(read_all(&log, 0), vec![0, 3, 6, 9]);
        fill(&mut log, 1);
        assert_eq!(log.verify().unwrap(), 15, "cut at {cut}: appendable after recovery");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Garbage appended to, or flipped inside, the tail never survives
    /// recovery, and the batches before it always do.
    #[test]
    fn recovery_drops_corrupt_tail(garbage in proptest::collection::vec(any::<u8>(), 1..200), flip in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
        fill(&mut log, 4);
        drop(log);
        let seg = newest_segment(dir.path());
        let mut bytes = std::fs::read(&seg).unwrap();
        let expect_end = if flip {
            let n = bytes.len();
            bytes[n - 1] ^= 0xff;
            9
        } else {
            bytes.extend_from_slice(&garbage);
            12
        };
        std::fs::write(&seg, &bytes).unwrap();
        let log = Log::open(dir.path(), LogConfig::default(), true).unwrap();
        prop_assert_eq!(log.log_end_offset(), expect_end);
        prop_assert_eq!(log.verify().unwrap(), expect_end);
    }

    /// Any index lookup agrees with a linear scan.
    #[test]
    fn reads_find_the_batch_holding_the_offset(n in 1usize..80, probe in 0i64..240) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), false).unwrap();
        fill(&mut log, n);
        let probe = probe % (3 * n as i64);
        let bytes = log.read(probe, 1).unwrap().unwrap().read().unwrap();
        prop_assert_eq!(BatchHeader::parse(&bytes).unwrap().base_offset(), probe - probe % 3);
    }
}

#[test]
fn stale_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 50);
    log.close().unwrap();
    drop(log);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "index") {
            let f = OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(3).unwrap();
        }
    }
    let log = Log::open(dir.path(), small_config(), false).unwrap();
    assert_eq!(read_all(&log, 0).len(), 50);
}

#[test]
fn retention_by_size_and_time_keeps_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 200); // timestamps 0..199_000
    let segments = log.segment_count();
    assert!(segments > 5);
    // nothing is old enough at t=100_000 for a 200 s retention
    assert_eq!(log.enforce_retention(100_000, 200_000, -1).unwrap(), 0);
    // by size: keep at most ~3 segments' worth
    let deleted = log.enforce_retention(0, -1, 3 * 4096).unwrap();
    assert!(deleted > 0);
    assert!(log.size_bytes() >= 2 * 4096 && log.size_bytes() < 4 * 4096 + 4096, "size {}", log.size_bytes());
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(matches!(log.read(start - 1, 100), Err(StorageError::OffsetOutOfRange { .. })));
    assert!(log.read(start, 100).unwrap().is_some());
    // by time: everything but the active segment is older than 1 ms at t = 10^9
    log.enforce_retention(1_000_000_000, 1, -1).unwrap();
    assert_eq!(log.segment_count(), 1, "only the active segment is left");
    assert_eq!(log.log_end_offset(), 600);
    assert_eq!(log.verify().unwrap(), 600);
}

#[test]
fn delete_records_moves_log_start_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 100);
    assert_eq!(log.delete_records_before(151).unwrap(), 151);
    assert!(matches!(log.read(150, 10), Err(StorageError::OffsetOutOfRange { .. })));
    assert!(log.read(151, 10).unwrap().is_some());
    assert!(log.delete_records_before(301).is_err(), "beyond the log end");
    assert_eq!(log.delete_records_before(10).unwrap(), 151, "never moves back");
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_config(), false).unwrap();
    assert_eq!(log.log_start_offset(), 151);
}

/// A batch from producer `pid` at `epoch` with sequences `seq..seq+n`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("p{pid}-{seq}-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    let mut b = build_batch(0, 1000, &refs);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    if transactional {
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    }
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn idempotent_retries_are_deduplicated_across_restarts() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), false).unwrap();
        let first = log.append(&mut producer_batch(9, 0, 0, 3, false), 0, None).unwrap();
        let second = log.append(&mut producer_batch(9, 0, 3, 2, false), 0, None).unwrap();
        assert!(!first.duplicate && !second.duplicate);
        let retry = log.append(&mut producer_batch(9, 0, 3, 2, false), 0, None).unwrap();
        assert!(retry.duplicate);
        assert_eq!((retry.base_offset, retry.last_offset), (second.base_offset, second.last_offset));
        assert_eq!(log.log_end_offset(), 5);
        assert!(matches!(log.append(&mut producer_batch(9, 0, 9, 1, false), 0, None), Err(StorageError::Producer(_))));
        fill(&mut log, 50); // roll a few segments, so snapshots are written
        if clean {
            log.close().unwrap();
        }
        drop(log);
        let mut log = Log::open(dir.path(), small_config(), !clean).unwrap();
        let retry = log.append(&mut producer_batch(9, 0, 3, 2, false), 0, None).unwrap();
        assert!(retry.duplicate, "clean={clean}: producer state survives a restart");
        assert_eq!(retry.base_offset, 3);
        let next = log.append(&mut producer_batch(9, 0, 5, 1, false), 0, None).unwrap();
        assert!(!next.duplicate);
    }
}

#[test]
fn transactions_hold_back_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 2); // offsets 0..5
    log.append(&mut producer_batch(4, 0, 0, 2, true), 0, None).unwrap(); // 6, 7
    assert_eq!(log.last_stable_offset(), 6);
    fill(&mut log, 1); // 8..10
    let marker = log.append_txn_marker(4, 0, false, 0, 0, 2000).unwrap();
    assert_eq!(marker, 11);
    assert_eq!(log.last_stable_offset(), 12);
    let aborted = log.aborted_txns(0, 12);
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].first_offset, aborted[0].last_offset), (6, 11));
    drop(log);
    let log = Log::open(dir.path(), small_config(), true).unwrap();
    assert_eq!(log.aborted_txns(0, 100).len(), 1, "aborted transactions are rebuilt");
    assert_eq!(log.last_stable_offset(), 12);
}

#[test]
fn reset_starts_an_empty_log_beyond_the_old_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 40);
    assert!(log.segment_count() > 1);
    assert!(log.reset_to(log.log_end_offset()).is_err(), "only forward");
    log.reset_to(500).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (500, 500, 1));
    // a leader's batch continues there
    let mut batch = build_batch(0, 5, &[b"a", b"b"]);
    vltava_protocol::batch::assign_offsets(&mut batch, 500, 3);
    log.append_assigned(&batch).unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_config(), true).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 502));
    assert_eq!(read_all(&log, 500), vec![500]);
}

#[test]
fn an_offline_log_dir_refuses_every_log_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = vltava_storage::LogDir::new(dir.path());
    let mut a =
        Log::open_in(&log_dir, &dir.path().join("a-0"), small_config(), vltava_storage::Recovery::None).unwrap();
    let b = Log::open_in(&log_dir, &dir.path().join("b-0"), small_config(), vltava_storage::Recovery::None).unwrap();
    fill(&mut a, 3);
    let slice = a.read(0, 100).unwrap().unwrap();
    let flush = a.flush_target().unwrap();
    assert_eq!(flush.offset, 9);
    flush.sync().unwrap();

    log_dir.fail("EIO on a-0");
    let mut batch = build_batch(0, 0, &[b"x"]);
    assert!(matches!(a.append(&mut batch, 0, None), Err(StorageError::Offline { .. })));
    assert!(matches!(b.read(0, 100), Err(StorageError::Offline { .. })), "the whole directory is offline");
    assert!(matches!(a.flush_target(), Err(StorageError::Offline { .. })));
    assert!(matches!(flush.sync(), Err(StorageError::Offline { .. })), "no fsync is retried after a failure");
    assert!(matches!(slice.read(), Err(StorageError::Offline { .. })));
    assert!(matches!(a.close(), Err(StorageError::Offline { .. })));
    assert_eq!(a.log_end_offset(), 9, "nothing was appended");
}

#[test]
fn leader_epochs_start_where_their_first_batch_lands() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    let mut batch = build_batch(0, 0, &[b"a", b"b"]);
    log.append(&mut batch, 3, None).unwrap();
    let mut batch = build_batch(0, 0, &[b"c"]);
    log.append(&mut batch, 5, None).unwrap();
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 2)));
    assert_eq!(log.end_offset_for_epoch(4), Some((3, 2)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 3)));
    log.truncate_to(2).unwrap();
    assert_eq!(log.latest_epoch(), Some(3), "truncation drops the epochs starting at or after it");
    drop(log);
    let log = Log::open(dir.path(), small_config(), false).unwrap();
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 2)), "persisted");
}

#[test]
fn a_roll_waits_for_no_disk_and_the_next_flush_covers_the_rolled_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    assert!(!log.has_unflushed_segments());
    fill(&mut log, 200);
    assert!(log.segment_count() > 3);
    assert!(log.has_unflushed_segments(), "rolled segments wait for a flush");
    assert_eq!(log.recovery_point(), 0);
    let target = log.flush_target().unwrap();
    assert_eq!(target.offset, 600);
    target.sync().unwrap();
    log.flushed(&target);
    assert!(!log.has_unflushed_segments());
    assert_eq!(log.recovery_point(), 600);
    // appends after the target was taken are not covered by it
    fill(&mut log, 1);
    let late = log.flush_target().unwrap();
    log.flushed(&target);
    assert_eq!(log.recovery_point(), 600);
    late.sync().unwrap();
    log.flushed(&late);
    assert_eq!(log.recovery_point(), 603);
}

#[test]
fn recovery_from_a_recovery_point_checks_every_later_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 200);
    let bases: Vec<i64> = vltava_storage::segment_bases(dir.path()).unwrap();
    assert!(bases.len() >= 4);
    drop(log);
    // a middle segment (after the recovery point) lost its tail in a power
    // loss: it is cut, and what follows it cannot be trusted
    let middle = bases[bases.len() / 2];
    let path = dir.path().join(vltava_storage::segment_file_name(middle, "log"));
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
    let log_dir = vltava_storage::LogDir::new(dir.path());
    let log = Log::open_in(&log_dir, dir.path(), small_config(), vltava_storage::Recovery::From(bases[1])).unwrap();
    let remaining = vltava_storage::segment_bases(dir.path()).unwrap();
    assert_eq!(remaining.last(), Some(&middle), "segments after the cut one are removed");
    assert!(log.log_end_offset() < 600 && log.log_end_offset() > middle);
    assert_eq!(read_all(&log, 0).len() as i64 * 3, log.log_end_offset());
}

#[test]
fn a_flush_taken_before_a_truncation_does_not_move_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), false).unwrap();
    fill(&mut log, 10);
    let target = log.flush_target().unwrap();
    assert_eq!(target.offset, 30);
    target.sync().unwrap();
    // a follower cuts its tail and takes other batches before the flush is reported
    log.truncate_to(12).unwrap();
    fill(&mut log, 10);
    log.flushed(&target);
    assert_eq!(log.recovery_point(), 0, "what is below 30 now was not what the target synced");
    let again = log.flush_target().unwrap();
    again.sync().unwrap();
    log.flushed(&again);
    assert_eq!(log.recovery_point(), 42);
}
