//! Restoration: replaying one store instance's changelog partition into its
//! byte store before the task processes (on start, after a task moved, after
//! a crash), from the checkpointed offset or from the beginning.
//!
//! The runtime gives a [`BaseConsumer`] that never joins a group (see
//! [`restore_consumer_config`]: `isolation.level=read_committed`, so records
//! of aborted transactions are never restored; `enable.auto.commit=false`;
//! `enable.partition.eof=true`). [`restore_store`] assigns the partition at
//! the start offset, reads up to the partition's end as `fetch_watermarks`
//! gives it when the call starts, applies the records in batches through
//! [`StoreInstance::restore`] (unlogged; a persistent store commits each
//! batch as one transaction), flushes the store and returns the next offset
//! to checkpoint.
//!
//! Where the end is: records of a committed transaction are followed by a
//! control record (the commit marker), an aborted transaction's by an abort
//! marker; neither is handed to the application. librdkafka moves the
//! consumer's position past them, so the end is reached when the position
//! reaches the end offset. When the tail of the partition is a transaction
//! still open, a read_committed consumer stops at the last stable offset,
//! below the end: librdkafka then reports a partition EOF there, and the
//! restoration ends at that offset (what a later commit of that transaction
//! adds is read by the next restoration, from the checkpoint). Without the
//! EOF events, a restoration that stops progressing short of the end for
//! [`RestoreOptions::stall_timeout`] fails with an error that says where.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::StoreInstance;
use crate::error::{Result, StreamsError};

type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// How a restoration batches and how long it waits.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Records per batch handed to the store (one store transaction each).
    pub batch_records: usize,
    /// Or this many bytes of keys and values, whichever comes first.
    pub batch_bytes: usize,
    /// Fail when no record arrives and the position does not move for this long.
    pub stall_timeout: Duration,
    /// For the end offset query.
    pub metadata_timeout: Duration,
    /// Once set (the runtime sets it when the instance closes), the
    /// restoration stops within one poll with [`StreamsError::Cancelled`];
    /// what was applied stays in the store, and the next restoration starts
    /// from the checkpoint again (changelog records are whole values, so
    /// applying them twice is harmless).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            batch_records: 100_000,
            batch_bytes: 64 << 20,
            stall_timeout: Duration::from_secs(120),
            metadata_timeout: Duration::from_secs(60),
            cancel: None,
        }
    }
}

/// What a restoration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The next offset to read: what the checkpoint records for this
    /// changelog partition.
    pub next_offset: i64,
    /// The partition's end offset when the restoration started.
    pub end_offset: i64,
    /// Changelog records applied (tombstones included).
    pub records: u64,
    /// Bytes of keys and values applied.
    pub bytes: u64,
    pub elapsed: Duration,
}

/// The client configs of a restore consumer: `base` (bootstrap servers,
/// security, ...) plus what restoration needs. The consumer is assigned
/// partitions and never joins a group nor commits, but librdkafka refuses
/// `assign` ("Unknown group") without a `group.id`: `base`'s is kept, else
/// [`RESTORE_GROUP_ID`] is set.
pub fn restore_consumer_config(base: &ClientConfig) -> ClientConfig {
    let mut c = base.clone();
    c.set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    if c.get("group.id").is_none() {
        c.set("group.id", RESTORE_GROUP_ID);
    }
    c
}

/// The `group.id` [`restore_consumer_config`] sets when none is given (never joined, never committed to).
pub const RESTORE_GROUP_ID: &str = "vltava-streams-restore";

fn position<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str, partition: i32) -> Option<i64> {
    let tpl = consumer.position().ok()?;
    match tpl.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Errors a restoration cannot wait out.
fn fatal(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::OffsetOutOfRange
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::Authentication
        )
    )
}

/// Restores `store` from `topic`/`partition` starting at `start` (the
/// checkpointed offset; `None`: the partition's beginning), flushes it and
/// returns where to checkpoint. The consumer is unassigned afterwards.
pub fn restore_store<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    store: &mut StoreInstance,
    topic: &str,
    partition: i32,
    start: Option<i64>,
    options: &RestoreOptions,
) -> Result<Restored> {
    let name = store.name.clone();
    let restored = restore_with(consumer, topic, partition, start, options, |batch| store.restore(batch)).map_err(
        |e| match e {
            StreamsError::Kafka(k) => StreamsError::store(&name, format!("restoring from {topic}-{partition}: {k}")),
            other => other,
        },
    )?;
    store.flush()?;
    Ok(restored)
}

/// [`restore_store`] with the batches going to `apply` (a store the caller
/// holds otherwise, a global store's update path, ...), called on a scoped
/// thread of its own so that applying a batch overlaps reading the next
/// (one batch in flight). Does not flush.
pub fn restore_with<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    start: Option<i64>,
    options: &RestoreOptions,
    mut apply: impl FnMut(&[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> + Send,
) -> Result<Restored> {
    let t0 = Instant::now();
    let (low, high) = consumer.fetch_watermarks(topic, partition, options.metadata_timeout)?;
    let start = start.unwrap_or(low);
    if start > high {
        return Err(StreamsError::TaskCorrupted(format!(
            "{topic}-{partition}: the checkpointed offset {start} is past the changelog's end {high} (the changelog \
             was deleted or recreated, or the checkpoint is ahead of what read_committed sees)"
        )));
    }
    let from = if start < low {
        tracing::warn!(
            topic,
            partition,
            start,
            low,
            "the changelog no longer holds the checkpointed offset: restoring from its beginning"
        );
        low
    } else {
        start
    };
    let mut done = Restored { next_offset: from, end_offset: high, records: 0, bytes: 0, elapsed: Duration::ZERO };
    if from >= high {
        done.elapsed = t0.elapsed();
        return Ok(done);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
    consumer.assign(&tpl)?;
    // the store applies one batch while the consumer reads the next
    let result = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(1);
        let applier = scope.spawn(move || -> Result<()> {
            for batch in rx {
                apply(&batch)?;
            }
            Ok(())
        });
        let read = read_to_end(consumer, topic, partition, high, options, &mut done, &mut |batch| {
            tx.send(batch).map_err(|_| StreamsError::store(topic, "the store stopped taking restored records"))
        });
        drop(tx);
        let applied =
            applier.join().unwrap_or_else(|_| Err(StreamsError::store(topic, "applying restored records panicked")));
        // the store's error is the cause when the reader could not hand a batch over
        applied.and(read)
    });
    let unassigned = consumer.unassign();
    result?;
    unassigned?;
    done.elapsed = t0.elapsed();
    tracing::debug!(topic, partition, from, next = done.next_offset, records = done.records, "restored");
    Ok(done)
}

/// One entry of the consumer queue.
enum Event<'a> {
    Record { partition: i32, offset: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]> },
    Eof { topic: &'a [u8], partition: i32 },
    Error(KafkaError),
}

/// The consumer queue of a consumer with a `group.id` (where fetched records
/// arrive after `assign`), read in batches (`rd_kafka_consume_batch_queue`):
/// one record per `BaseConsumer::poll` call costs about ten times more
/// than the record (measured: 110k against 2.7M records/s of 100 bytes).
/// Control records and aborted transactions are skipped by librdkafka
/// there, which moves the consumer's position past them.
struct ConsumerQueue(*mut rdsys::rd_kafka_queue_t);

impl ConsumerQueue {
    fn of<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Result<ConsumerQueue> {
        // SAFETY: a live client handle; NULL when the client has no consumer group.
        let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        if queue.is_null() {
            return Err(StreamsError::config(
                "group.id",
                "the restore consumer needs one (see restore_consumer_config)",
            ));
        }
        Ok(ConsumerQueue(queue))
    }

    /// Takes up to `slots.len()` entries (waiting at most `wait` for the
    /// first), hands each to `f` and releases them. Returns how many.
    fn take(&self, slots: &mut [*mut rdsys::rd_kafka_message_t], wait: Duration, mut f: impl FnMut(Event)) -> usize {
        let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: the queue is live and `slots` has room for `slots.len()` pointers.
        let n = unsafe { rdsys::rd_kafka_consume_batch_queue(self.0, wait_ms, slots.as_mut_ptr(), slots.len()) };
        let n = usize::try_from(n).unwrap_or(0);
        for &msg in &slots[..n] {
            // SAFETY: librdkafka returned `n` valid messages; each is read here, then released exactly once;
            // the slices do not outlive the message.
            unsafe {
                let m = &*msg;
                let bytes = |p: *mut std::ffi::c_void, len: usize| {
                    (!p.is_null()).then(|| std::slice::from_raw_parts(p as *const u8, len))
                };
                match m.err {
                    rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => f(Event::Record {
                        partition: m.partition,
                        offset: m.offset,
                        key: bytes(m.key, m.key_len),
                        value: bytes(m.payload, m.len),
                    }),
                    rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                        let topic = if m.rkt.is_null() {
                            &[][..]
                        } else {
                            std::ffi::CStr::from_ptr(rdsys::rd_kafka_topic_name(m.rkt)).to_bytes()
                        };
                        f(Event::Eof { topic, partition: m.partition })
                    }
                    err => f(Event::Error(KafkaError::MessageConsumption(RDKafkaErrorCode::from(err)))),
                }
                rdsys::rd_kafka_message_destroy(msg);
            }
        }
        n
    }
}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: obtained from rd_kafka_queue_get_consumer, released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) };
    }
}

fn read_to_end<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    high: i64,
    options: &RestoreOptions,
    done: &mut Restored,
    apply: &mut impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let queue = ConsumerQueue::of(consumer)?;
    let mut slots = vec![std::ptr::null_mut(); 4096];
    let capacity = options.batch_records.min(100_000);
    let mut batch: Batch = Vec::with_capacity(capacity);
    let mut batch_bytes = 0usize;
    let mut last_progress = Instant::now();
    let mut last_error: Option<KafkaError> = None;
    let mut eof = false;
    while done.next_offset < high && !eof {
        if options.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(StreamsError::Cancelled(format!(
                "restoring {topic}-{partition} stopped at offset {} of {high}: the instance is closing",
                done.next_offset
            )));
        }
        let mut fatal_error = None;
        let mut progressed = false;
        let n = queue.take(&mut slots, Duration::from_millis(200), |event| match event {
            Event::Record { partition: p, offset, key, value } => {
                if p != partition || offset < done.next_offset {
                    return;
                }
                match key {
                    Some(k) => {
                        let size = k.len() + value.map_or(0, <[u8]>::len);
                        batch_bytes += size;
                        done.bytes += size as u64;
                        done.records += 1;
                        batch.push((k.to_vec(), value.map(<[u8]>::to_vec)));
                    }
                    None => tracing::warn!(topic, partition, offset, "a changelog record without a key, skipped"),
                }
                done.next_offset = offset + 1;
                progressed = true;
            }
            // the end a read_committed consumer may read: below `high` only
            // when a transaction is still open at the tail
            Event::Eof { topic: t, partition: p } => eof |= p == partition && t == topic.as_bytes(),
            Event::Error(e) if fatal(&e) => fatal_error = Some(e),
            Event::Error(e) => {
                tracing::debug!(topic, partition, error = %e, "restore consumer error (retried)");
                last_error = Some(e);
            }
        });
        if let Some(e) = fatal_error {
            return Err(e.into());
        }
        if progressed {
            last_progress = Instant::now();
        }
        if batch.len() >= options.batch_records || batch_bytes >= options.batch_bytes {
            apply(std::mem::replace(&mut batch, Vec::with_capacity(capacity)))?;
            batch_bytes = 0;
        }
        // past control records and aborted transactions, the position moves without records
        if n == 0 || eof {
            if let Some(pos) = position(consumer, topic, partition) {
                if pos > done.next_offset {
                    done.next_offset = pos;
                    last_progress = Instant::now();
                }
            }
        }
        if !eof && done.next_offset < high && last_progress.elapsed() > options.stall_timeout {
            return Err(StreamsError::store(
                topic,
                format!(
                    "partition {partition}: restoration stopped at offset {} short of the end {high} for {:?}{} \
                     (a transaction left open on the changelog? is enable.partition.eof set on the restore consumer?)",
                    done.next_offset,
                    options.stall_timeout,
                    last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
                ),
            ));
        }
    }
    if !batch.is_empty() {
        apply(batch)?;
    }
    Ok(())
}

/// A vltava broker for tests: `$VLTAVA_BIN` (default: this workspace's
/// `target/release/vltava`) in a temp data directory on free ports,
/// with the schema registry; killed on drop. A missing binary fails the test.
#[cfg(test)]
pub(crate) mod test_broker {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    pub struct TestBroker {
        child: Child,
        pub bootstrap: String,
        pub registry_url: String,
        _dir: tempfile::TempDir,
    }

    impl TestBroker {
        pub fn start() -> TestBroker {
            let bin = std::env::var("VLTAVA_BIN")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/vltava").to_string());
            assert!(PathBuf::from(&bin).is_file(), "the vltava binary {bin} is missing (set VLTAVA_BIN)");
            let dir = tempfile::tempdir().unwrap();
            let port_file = dir.path().join("port");
            let child = Command::new(&bin)
                .arg("server")
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--port-file")
                .arg(&port_file)
                .args(["--set", "schema.registry.listeners=http://127.0.0.1:0"])
                .args(["--set", "admin.listeners="])
                .args(["--set", "num.partitions=2"])
                .args(["--set", "auto.create.topics.enable=true"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
            let mut broker = TestBroker { child, bootstrap: String::new(), registry_url: String::new(), _dir: dir };
            let registry_file = port_file.with_file_name("port.registry");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let read = |p: &PathBuf| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u16>().ok());
                if let (Some(p), Some(r)) = (read(&port_file), read(&registry_file)) {
                    broker.bootstrap = format!("127.0.0.1:{p}");
                    broker.registry_url = format!("http://127.0.0.1:{r}");
                    return broker;
                }
                if let Ok(Some(status)) = broker.child.try_wait() {
                    let log = std::fs::read_to_string(broker._dir.path().join("server.log")).unwrap_or_default();
                    panic!("vltava server exited ({status}): {log}");
                }
                assert!(Instant::now() < deadline, "vltava server did not write its port files in 60 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for TestBroker {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;
    use std::time::Duration;

    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::test_broker::TestBroker;
    use super::*;
    use crate::state::redb_store::RedbStore;

    fn producer(bootstrap: &str, transactional_id: Option<&str>) -> BaseProducer {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap).set("acks", "all").set("enable.idempotence", "true");
        if let Some(id) = transactional_id {
            c.set("transactional.id", id);
        }
        c.create().expect("producer")
    }

    fn send(p: &BaseProducer, topic: &str, key: &str, value: Option<&str>) {
        let mut r = BaseRecord::<str, str>::to(topic).partition(1).key(key);
        if let Some(v) = value {
            r = r.payload(v);
        }
        p.send(r).map_err(|(e, _)| e).expect("send");
    }

    fn consumer(bootstrap: &str, eof: bool) -> BaseConsumer {
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", bootstrap);
        let mut c = restore_consumer_config(&base);
        if !eof {
            c.set("enable.partition.eof", "false");
        }
        c.create().expect("consumer")
    }

    fn contents(store: &StoreInstance) -> Vec<(String, String)> {
        store
            .range(Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn opts() -> RestoreOptions {
        RestoreOptions { batch_records: 2, stall_timeout: Duration::from_secs(30), ..RestoreOptions::default() }
    }

    #[test]
    fn restores_a_changelog_with_tombstones_and_aborted_transactions() {
        let broker = TestBroker::start();
        let topic = "app-counts-changelog";
        let t = Duration::from_secs(30);
        let plain = producer(&broker.bootstrap, None);
        for (k, v) in [("k1", Some("v1")), ("k2", Some("v2")), ("k1", Some("v1b")), ("k3", Some("v3")), ("k2", None)] {
            send(&plain, topic, k, v);
        }
        plain.flush(t).unwrap();
        let tx = producer(&broker.bootstrap, Some("restore-test"));
        tx.init_transactions(t).unwrap();
        tx.begin_transaction().unwrap();
        send(&tx, topic, "k4", Some("aborted"));
        send(&tx, topic, "k1", Some("aborted"));
        tx.flush(t).unwrap();
        tx.abort_transaction(t).unwrap();
        tx.begin_transaction().unwrap();
        send(&tx, topic, "k5", Some("v5"));
        send(&tx, topic, "k3", None);
        send(&tx, topic, "k6", Some("v6"));
        tx.commit_transaction(t).unwrap();
        // the tail: an aborted transaction and its marker
        tx.begin_transaction().unwrap();
        send(&tx, topic, "k7", Some("aborted"));
        tx.flush(t).unwrap();
        tx.abort_transaction(t).unwrap();
        let expected = pairs(&[("k1", "v1b"), ("k5", "v5"), ("k6", "v6")]);

        for eof in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let c = consumer(&broker.bootstrap, eof);
            let (_, high) = c.fetch_watermarks(topic, 1, t).unwrap();
            assert_eq!(high, 14, "5 records, 2 aborted + marker, 3 committed + marker, 1 aborted + marker");
            let mut store =
                StoreInstance::new("counts", Box::new(RedbStore::open("counts", dir.path()).unwrap()), None);
            let r = restore_store(&c, &mut store, topic, 1, None, &opts()).unwrap();
            assert_eq!(contents(&store), expected, "eof events: {eof}");
            assert_eq!((r.next_offset, r.end_offset, r.records), (14, 14, 8), "eof events: {eof}");
            assert!(store.take_changelog().is_empty(), "restoration is not logged");
            // from the checkpoint: nothing more
            let again = restore_store(&c, &mut store, topic, 1, Some(r.next_offset), &opts()).unwrap();
            assert_eq!((again.next_offset, again.records), (14, 0));
            // reopened: restored state was flushed
            drop(store);
            let store = StoreInstance::new("counts", Box::new(RedbStore::open("counts", dir.path()).unwrap()), None);
            assert_eq!(contents(&store), expected);
            // from a checkpoint in the middle, into an empty store: only what follows
            let mut fresh = StoreInstance::new("m", Box::new(crate::state::memory::MemoryStore::default()), None);
            let r = restore_store(&c, &mut fresh, topic, 1, Some(3), &opts()).unwrap();
            assert_eq!(contents(&fresh), pairs(&[("k5", "v5"), ("k6", "v6")]));
            assert_eq!(r.next_offset, 14);
        }

        // an open transaction at the tail: restoration ends at the last stable offset
        tx.begin_transaction().unwrap();
        send(&tx, topic, "k8", Some("open"));
        tx.flush(t).unwrap();
        let c = consumer(&broker.bootstrap, true);
        let mut store = StoreInstance::new("m", Box::new(crate::state::memory::MemoryStore::default()), None);
        let r = restore_store(&c, &mut store, topic, 1, None, &opts()).unwrap();
        assert_eq!(contents(&store), expected);
        assert_eq!(r.next_offset, 14, "stops before the open transaction's record");
        tx.commit_transaction(t).unwrap();
        let r = restore_store(&c, &mut store, topic, 1, Some(r.next_offset), &opts()).unwrap();
        assert_eq!(contents(&store), pairs(&[("k1", "v1b"), ("k5", "v5"), ("k6", "v6"), ("k8", "open")]));
        assert_eq!((r.next_offset, r.records), (16, 1));

        // the store's error ends the restoration and is what it returns; the consumer is usable after it
        let e =
            restore_with(&c, topic, 1, None, &opts(), |_| Err(StreamsError::store("counts", "disk full"))).unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        let mut again = StoreInstance::new("m", Box::new(crate::state::memory::MemoryStore::default()), None);
        assert_eq!(restore_store(&c, &mut again, topic, 1, None, &opts()).unwrap().next_offset, 16);
        assert_eq!(contents(&again), contents(&store));

        // a cancelled restoration stops before reading on; the consumer is usable after it
        let cancel = Arc::new(AtomicBool::new(true));
        let cancelled = RestoreOptions { cancel: Some(cancel.clone()), ..opts() };
        let mut partial = StoreInstance::new("m", Box::new(crate::state::memory::MemoryStore::default()), None);
        let e = restore_store(&c, &mut partial, topic, 1, None, &cancelled).unwrap_err();
        assert!(matches!(e, StreamsError::Cancelled(_)), "{e}");
        cancel.store(false, Ordering::SeqCst);
        assert_eq!(restore_store(&c, &mut partial, topic, 1, None, &cancelled).unwrap().next_offset, 16);
        assert_eq!(contents(&partial), contents(&store));

        // a checkpoint past the end is an error, not a silent restore
        let e = restore_store(&c, &mut store, topic, 1, Some(99), &opts()).unwrap_err();
        assert!(matches!(e, StreamsError::TaskCorrupted(_)), "{e}");
        // an empty partition: nothing to do
        let r = restore_store(&c, &mut store, topic, 0, None, &opts()).unwrap();
        assert_eq!((r.next_offset, r.records), (0, 0));
    }
}
