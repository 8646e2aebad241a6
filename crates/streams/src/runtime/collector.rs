//! A stream thread's producer and the [`RecordCollector`] its tasks write
//! through. Java's default partitioner (`murmur2_random`), `acks=all`,
//! idempotence; under exactly_once_v2 the producer is transactional
//! (`transactional.id = <app>-<process uuid>-<thread n>`) and a transaction
//! begins before the first send after a commit. Delivery reports record the
//! last offset written per partition (the changelog offsets a checkpoint
//! names) and the first error (which fails the thread at the next flush).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::topics::client_config;
use crate::config::{ProcessingGuarantee, StreamsConfig};
use crate::error::{Result, StreamsError};
use crate::record::OutRecord;
use crate::task::RecordCollector;

#[derive(Default)]
pub(crate) struct Deliveries {
    /// (topic, partition) -> last offset acknowledged.
    pub offsets: HashMap<(String, i32), i64>,
    pub error: Option<String>,
}

#[derive(Default)]
pub(crate) struct ProducerCtx {
    pub deliveries: Mutex<Deliveries>,
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut d = self.deliveries.lock();
        match result {
            Ok(m) => {
                let e = d.offsets.entry((m.topic().to_string(), m.partition())).or_insert(-1);
                *e = (*e).max(m.offset());
            }
            Err((e, m)) => {
                if d.error.is_none() {
                    d.error = Some(format!("sending to {}-{} failed: {e}", m.topic(), m.partition()));
                }
            }
        }
    }
}

/// The thread's producer.
pub(crate) struct ThreadProducer {
    pub producer: BaseProducer<ProducerCtx>,
    pub transactional: bool,
    /// A transaction is open (exactly_once_v2).
    pub in_txn: AtomicBool,
}

impl ThreadProducer {
    pub fn create(config: &StreamsConfig, process_id: &str, thread: usize) -> Result<Arc<ThreadProducer>> {
        let app = &config.application_id;
        let props = config.client_props(&["producer."]);
        let mut c = client_config(&props);
        c.set("client.id", format!("{app}-{process_id}-StreamThread-{thread}-producer"));
        c.set("partitioner", "murmur2_random");
        c.set("acks", "all");
        c.set("enable.idempotence", "true");
        let transactional = config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        if transactional {
            c.set("transactional.id", format!("{app}-{process_id}-{thread}"));
            if !props.contains_key("transaction.timeout.ms") {
                // Kafka Streams' default under exactly-once: a crashed instance's open transaction
                // blocks read_committed readers (and the task's new owner) for at most this long
                c.set("transaction.timeout.ms", "10000");
            }
        }
        let producer: BaseProducer<ProducerCtx> = c.create_with_context(ProducerCtx::default())?;
        if transactional {
            producer.init_transactions(Duration::from_secs(60))?;
        }
        Ok(Arc::new(ThreadProducer { producer, transactional, in_txn: AtomicBool::new(false) }))
    }

    pub fn send(&self, r: &OutRecord) -> Result<()> {
        if self.transactional && !self.in_txn.load(Ordering::SeqCst) {
            self.producer.begin_transaction()?;
            self.in_txn.store(true, Ordering::SeqCst);
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&r.topic);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v.as_slice());
        }
        if let Some(p) = r.partition {
            rec = rec.partition(p);
        }
        if r.timestamp >= 0 {
            rec = rec.timestamp(r.timestamp);
        }
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(r.headers.0.len());
            for (k, v) in &r.headers.0 {
                h = h.insert(Header { key: k, value: v.as_deref() });
            }
            rec = rec.headers(h);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    rec = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Waits until every record sent is acknowledged; fails with the first
    /// delivery error.
    pub fn flush(&self) -> Result<()> {
        self.wait_delivered(Duration::from_secs(60))?;
        self.take_error()
    }

    /// Serves delivery reports until nothing is in flight (rdkafka's own
    /// `flush` polls in 100 ms steps, which would cost every commit 100 ms).
    pub fn wait_delivered(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(StreamsError::Kafka(KafkaError::Flush(RDKafkaErrorCode::MessageTimedOut)));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        Ok(())
    }

    pub fn take_error(&self) -> Result<()> {
        match self.producer.context().deliveries.lock().error.take() {
            Some(e) => Err(StreamsError::Processing(e)),
            None => Ok(()),
        }
    }

    pub fn delivered_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.producer.context().deliveries.lock().offsets.get(&(topic.to_string(), partition)).copied()
    }
}

/// A task's collector: sends through the thread's producer.
pub(crate) struct ProducerCollector(pub Arc<ThreadProducer>);

impl RecordCollector for ProducerCollector {
    fn send(&mut self, record: OutRecord) -> Result<()> {
        self.0.send(&record)
    }
}
