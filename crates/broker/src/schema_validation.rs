//! Schema validation on the produce path, as Confluent Server's broker-side
//! validation: with `confluent.value.schema.validation` (or `.key.`) on, a
//! produced record's value (key) must carry Confluent's wire-format header
//! (magic byte 0, then a 4-byte big-endian schema id) naming a schema the
//! registry knows and that is registered under the subject the topic's
//! `confluent.*.subject.name.strategy` names. With
//! `vltava.schema.validation.decode` on, the payload after the header must
//! also decode against that schema. One bad record refuses the partition's
//! whole batch with INVALID_RECORD, listing every record at fault
//! (KIP-467 `record_errors`).
//!
//! This is the only place the produce path decodes records: topics without
//! validation never reach it and keep appending the producer's bytes as
//! they are.

use vltava_protocol::batch::{records_of, records_section, BatchHeader, Batches, BATCH_HEADER_BYTES};
use vltava_protocol::ResponseError;

use crate::schema_registry::SchemaRegistry;

/// Confluent's wire format: magic byte 0, then the schema id (4 bytes, big endian).
const WIRE_MAGIC: u8 = 0;
const WIRE_HEADER_BYTES: usize = 5;
/// Records named in the error message (all of them go in `record_errors`).
const MESSAGE_RECORDS_MAX: usize = 3;

/// How the subject a record's schema must be registered under is named
/// (Confluent's `io.confluent.kafka.serializers.subject.*` strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value`.
    #[default]
    TopicName,
    /// The schema's record name (Avro record full name, Protobuf message, JSON title).
    RecordName,
    /// `<topic>-<record name>`.
    TopicRecordName,
}

const STRATEGY_PACKAGE: &str = "io.confluent.kafka.serializers.subject.";

impl SubjectNameStrategy {
    /// The class name (with Confluent's package) or the short name.
    pub fn parse(value: &str) -> Option<Self> {
        let short = value.trim();
        let short = short.strip_prefix(STRATEGY_PACKAGE).unwrap_or(short);
        match short {
            "TopicNameStrategy" => Some(Self::TopicName),
            "RecordNameStrategy" => Some(Self::RecordName),
            "TopicRecordNameStrategy" => Some(Self::TopicRecordName),
            _ => None,
        }
    }

    /// The subject for a key (`is_key`) or value of `topic` written with a
    /// schema whose record name is `record_name`; `None` when the strategy
    /// needs a record name and the schema has none.
    pub fn subject(self, topic: &str, is_key: bool, record_name: Option<&str>) -> Option<String> {
        match self {
            Self::TopicName => Some(format!("{topic}-{}", if is_key { "key" } else { "value" })),
            Self::RecordName => record_name.map(str::to_string),
            Self::TopicRecordName => record_name.map(|r| format!("{topic}-{r}")),
        }
    }
}

/// `valid` of the `confluent.*.subject.name.strategy` topic configs.
pub fn is_strategy(value: &str) -> bool {
    SubjectNameStrategy::parse(value).is_some()
}

/// What the `confluent.*.subject.name.strategy` configs accept, for the
/// INVALID_CONFIG message.
pub const STRATEGY_VALUES: &str = "TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy \
     (short, or with the package io.confluent.kafka.serializers.subject.)";

/// A topic's validation settings (from its configs; see `topic_config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaValidation {
    /// `confluent.key.schema.validation`: the key's strategy when on.
    pub key: Option<SubjectNameStrategy>,
    /// `confluent.value.schema.validation`: the value's strategy when on.
    pub value: Option<SubjectNameStrategy>,
    /// `vltava.schema.validation.decode`: also decode the payloads.
    pub decode: bool,
}

impl SchemaValidation {
    /// From the topic's effective config values (`get` by name).
    pub fn from_configs(get: impl Fn(&str) -> String) -> Self {
        let on = |name: &str| get(name).trim().eq_ignore_ascii_case("true");
        let strategy = |name: &str| SubjectNameStrategy::parse(&get(name)).unwrap_or_default();
        Self {
            key: on("confluent.key.schema.validation").then(|| strategy("confluent.key.subject.name.strategy")),
            value: on("confluent.value.schema.validation").then(|| strategy("confluent.value.subject.name.strategy")),
            decode: on("vltava.schema.validation.decode"),
        }
    }

    pub fn enabled(&self) -> bool {
        self.key.is_some() || self.value.is_some()
    }
}

/// Why a partition's records were refused: the error, a message, and the
/// records at fault (index in their batch, reason).
#[derive(Debug)]
pub struct Refusal {
    pub error: ResponseError,
    pub message: String,
    pub record_errors: Vec<(i32, String)>,
}

/// Checks every record of the produced `records` (one or more batches,
/// already validated by `validate_produced`) of `topic`. Returns at once
/// when the topic validates neither keys nor values.
pub fn check(
    registry: &SchemaRegistry,
    topic: &str,
    records: &[u8],
    validation: &SchemaValidation,
) -> Result<(), Refusal> {
    if !validation.enabled() {
        return Ok(());
    }
    let corrupt = |e: vltava_protocol::batch::BatchError| Refusal {
        error: ResponseError::CorruptMessage,
        message: e.to_string(),
        record_errors: Vec::new(),
    };
    let mut record_errors = Vec::new();
    let mut total = 0usize;
    let mut key_checker = SideChecker::new(registry, topic, true, validation.key, validation.decode);
    let mut value_checker = SideChecker::new(registry, topic, false, validation.value, validation.decode);
    for item in Batches::new(records) {
        let (_, batch) = item.map_err(corrupt)?;
        let header = BatchHeader::parse(batch).map_err(corrupt)?;
        if header.is_control() {
            continue;
        }
        // uncompressed: walk the producer's bytes in place, no copy
        let decompressed;
        let section: &[u8] = if header.compression() == 0 {
            &batch[BATCH_HEADER_BYTES..header.total_bytes().min(batch.len())]
        } else {
            decompressed = records_section(batch).map_err(corrupt)?;
            &decompressed
        };
        let views = records_of(batch, section).map_err(corrupt)?;
        total += views.len();
        for (i, r) in views.iter().enumerate() {
            let reason = match (key_checker.check(r.key), value_checker.check(r.value)) {
                (Ok(()), Ok(())) => continue,
                (Err(k), Ok(())) => format!("key: {k}"),
                (Ok(()), Err(v)) => format!("value: {v}"),
                (Err(k), Err(v)) => format!("key: {k}; value: {v}"),
            };
            record_errors.push((i as i32, reason));
        }
    }
    if record_errors.is_empty() {
        return Ok(());
    }
    let named: Vec<String> =
        record_errors.iter().take(MESSAGE_RECORDS_MAX).map(|(i, why)| format!("record {i}: {why}")).collect();
    let more = record_errors.len().saturating_sub(MESSAGE_RECORDS_MAX);
    let message = format!(
        "Schema validation failed for {} of {total} records of topic {topic}: {}{}",
        record_errors.len(),
        named.join("; "),
        if more > 0 { format!("; and {more} more") } else { String::new() }
    );
    Err(Refusal { error: ResponseError::InvalidRecord, message, record_errors })
}

/// Checks keys or values; remembers the last schema id that passed, so a
/// batch of records with one schema costs one registry lookup.
struct SideChecker<'a> {
    registry: &'a SchemaRegistry,
    topic: &'a str,
    is_key: bool,
    strategy: Option<SubjectNameStrategy>,
    decode: bool,
    last_ok_id: Option<i32>,
}

impl<'a> SideChecker<'a> {
    fn new(
        registry: &'a SchemaRegistry,
        topic: &'a str,
        is_key: bool,
        strategy: Option<SubjectNameStrategy>,
        decode: bool,
    ) -> Self {
        Self { registry, topic, is_key, strategy, decode, last_ok_id: None }
    }

    fn check(&mut self, data: Option<&[u8]>) -> Result<(), String> {
        // null (a tombstone value, a keyless record) is not serialized data
        let (Some(strategy), Some(data)) = (self.strategy, data) else {
            return Ok(());
        };
        let Some(header) = data.get(..WIRE_HEADER_BYTES) else {
            return Err(format!(
                "{} bytes, shorter than the 5-byte schema header (magic byte 0, schema id)",
                data.len()
            ));
        };
        if header[0] != WIRE_MAGIC {
            return Err(format!("unknown magic byte {} (expected 0 and a schema id)", header[0]));
        }
        let id = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        if self.last_ok_id == Some(id) && !self.decode {
            return Ok(());
        }
        let schema = self.registry.schema_by_id(id).ok_or_else(|| format!("unknown schema id {id}"))?;
        let record_name = schema.parsed.record_name();
        let subject = strategy
            .subject(self.topic, self.is_key, record_name.as_deref())
            .ok_or_else(|| format!("schema id {id} has no record name, which {strategy:?}Strategy needs"))?;
        if !self.registry.is_registered_under(id, &subject) {
            return Err(format!("schema id {id} is not registered under subject {subject}"));
        }
        if self.decode {
            schema
                .parsed
                .validate_payload(&data[WIRE_HEADER_BYTES..])
                .map_err(|e| format!("does not decode with schema id {id}: {e}"))?;
        }
        self.last_ok_id = Some(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vltava_protocol::batch::{build_keyed_batch, recompress, KeyValue};

    fn wire(id: i32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![WIRE_MAGIC];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// One `_schemas` record, as Confluent's registry writes it.
    fn put(r: &SchemaRegistry, subject: &str, version: i32, id: i32, schema: &str, deleted: bool) {
        let key = serde_json::json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1});
        let value = serde_json::json!({
            "subject": subject, "version": version, "id": id, "schema": schema, "deleted": deleted,
        });
        r.apply(&serde_json::to_vec(&key).unwrap(), Some(&serde_json::to_vec(&value).unwrap()));
    }

    /// Schema 1 under orders-value, 2 under customers-value, 3 under
    /// orders-key (Avro).
    fn registry() -> SchemaRegistry {
        let r = SchemaRegistry::default();
        put(&r, "orders-value", 1, 1, "\"string\"", false);
        put(&r, "customers-value", 1, 2, "\"long\"", false);
        put(&r, "orders-key", 1, 3, "\"bytes\"", false);
        assert!(r.schema_by_id(3).is_some());
        r
    }

    fn values_on() -> SchemaValidation {
        SchemaValidation { value: Some(SubjectNameStrategy::TopicName), ..Default::default() }
    }

    fn batch(records: &[KeyValue<'_>]) -> Vec<u8> {
        build_keyed_batch(0, 1_700_000_000_000, records)
    }

    #[test]
    fn strategies_parse_by_class_and_short_name() {
        for (v, s) in [
            ("io.confluent.kafka.serializers.subject.TopicNameStrategy", SubjectNameStrategy::TopicName),
            ("TopicNameStrategy", SubjectNameStrategy::TopicName),
            ("io.confluent.kafka.serializers.subject.RecordNameStrategy", SubjectNameStrategy::RecordName),
            ("RecordNameStrategy", SubjectNameStrategy::RecordName),
            ("io.confluent.kafka.serializers.subject.TopicRecordNameStrategy", SubjectNameStrategy::TopicRecordName),
            (" TopicRecordNameStrategy ", SubjectNameStrategy::TopicRecordName),
        ] {
            assert_eq!(SubjectNameStrategy::parse(v), Some(s), "{v}");
        }
        for bad in [
            "",
            "topic",
            "topicnamestrategy",
            "com.example.TopicNameStrategy",
            "io.confluent.kafka.serializers.subject.",
        ] {
            assert_eq!(SubjectNameStrategy::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_config_values_are_refused_with_what_is_accepted() {
        use crate::topic_config::validate_one;
        let e = validate_one("confluent.value.subject.name.strategy", "ByName").unwrap_err();
        assert!(e.contains("ByName") && e.contains("TopicRecordNameStrategy"), "{e}");
        assert!(validate_one("confluent.key.subject.name.strategy", "RecordNameStrategy").is_ok());
        assert!(validate_one("confluent.value.schema.validation", "yes").is_err());
        assert!(validate_one("confluent.key.schema.validation", "true").is_ok());
        assert!(validate_one("vltava.schema.validation.decode", "false").is_ok());
    }

    #[test]
    fn subjects_follow_confluents_strategies() {
        use SubjectNameStrategy::*;
        assert_eq!(TopicName.subject("orders", false, Some("x.Order")).as_deref(), Some("orders-value"));
        assert_eq!(TopicName.subject("orders", true, None).as_deref(), Some("orders-key"));
        assert_eq!(RecordName.subject("orders", false, Some("x.Order")).as_deref(), Some("x.Order"));
        assert_eq!(RecordName.subject("orders", true, None), None);
        assert_eq!(TopicRecordName.subject("orders", true, Some("x.Order")).as_deref(), Some("orders-x.Order"));
    }

    #[test]
    fn settings_come_from_the_configs() {
        let configs = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()).unwrap_or_default()
        };
        assert!(!SchemaValidation::from_configs(configs(&[])).enabled());
        let v = SchemaValidation::from_configs(configs(&[
            ("confluent.key.schema.validation", "TRUE"),
            ("confluent.key.subject.name.strategy", "RecordNameStrategy"),
            ("vltava.schema.validation.decode", "true"),
        ]));
        assert_eq!(v, SchemaValidation { key: Some(SubjectNameStrategy::RecordName), value: None, decode: true });
    }

    #[test]
    fn a_topic_without_validation_is_not_read() {
        // not even a batch: nothing is parsed when validation is off
        assert!(check(&registry(), "orders", b"not a batch", &SchemaValidation::default()).is_ok());
    }

    #[test]
    fn records_with_a_registered_id_and_tombstones_pass() {
        let v1 = wire(1, b"\x06abc");
        let b = batch(&[(None, Some(&v1)), (Some(b"k"), None), (None, Some(&v1))]);
        check(&registry(), "orders", &b, &values_on()).unwrap();
    }

    #[test]
    fn raw_bytes_unknown_ids_and_other_subjects_ids_are_refused_each_named() {
        let good = wire(1, b"x");
        let unknown = wire(42, b"x");
        let other = wire(2, b"x");
        let b = batch(&[
            (None, Some(&good)),
            (None, Some(b"plain text")),
            (None, Some(&unknown)),
            (None, Some(&other)),
            (None, Some(b"\0\0")),
        ]);
        let r = check(&registry(), "orders", &b, &values_on()).unwrap_err();
        assert_eq!(r.error, ResponseError::InvalidRecord);
        let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.0).collect();
        assert_eq!(indexes, [1, 2, 3, 4]);
        assert!(r.record_errors[0].1.contains("magic byte 112"), "{:?}", r.record_errors[0]);
        assert!(r.record_errors[1].1.contains("unknown schema id 42"));
        assert!(r.record_errors[2].1.contains("not registered under subject orders-value"));
        assert!(r.record_errors[3].1.contains("shorter than the 5-byte"));
        assert!(r.message.contains("4 of 5 records") && r.message.contains("record 1: value:"), "{}", r.message);
        assert!(r.message.contains("and 1 more"), "{}", r.message);
    }

    #[test]
    fn keys_are_checked_against_the_key_subject() {
        let key_ok = wire(3, b"k");
        let value_id_as_key = wire(1, b"k");
        let v = SchemaValidation { key: Some(SubjectNameStrategy::TopicName), ..Default::default() };
        let b = batch(&[(Some(&key_ok), Some(b"raw value")), (None, Some(b"raw"))]);
        check(&registry(), "orders", &b, &v).unwrap();
        let b = batch(&[(Some(&value_id_as_key), Some(b"raw value"))]);
        let r = check(&registry(), "orders", &b, &v).unwrap_err();
        assert!(r.record_errors[0].1.starts_with("key: schema id 1 is not registered under subject orders-key"));
    }

    #[test]
    fn a_deleted_subject_version_no_longer_validates() {
        let r = registry();
        let v1 = wire(1, b"x");
        let b = batch(&[(None, Some(&v1))]);
        check(&r, "orders", &b, &values_on()).unwrap();
        put(&r, "orders-value", 1, 1, "\"string\"", true); // soft delete
        let refused = check(&r, "orders", &b, &values_on()).unwrap_err();
        assert!(refused.record_errors[0].1.contains("not registered under subject orders-value"));
    }

    #[test]
    fn compressed_batches_are_decompressed_and_checked() {
        let bad = wire(2, b"x");
        let good = wire(1, b"x");
        for codec in [1, 2, 3, 4] {
            let b = recompress(&batch(&[(None, Some(&good)), (None, Some(&bad))]), codec).unwrap();
            let r = check(&registry(), "orders", &b, &values_on()).unwrap_err();
            assert_eq!(r.record_errors.len(), 1, "codec {codec}");
            assert_eq!(r.record_errors[0].0, 1, "codec {codec}");
        }
    }

    #[test]
    fn record_name_strategies_need_a_record_name() {
        // the stub Avro format (until the formats land) names no record
        let v = SchemaValidation { value: Some(SubjectNameStrategy::RecordName), ..Default::default() };
        let one = wire(1, b"x");
        let b = batch(&[(None, Some(&one))]);
        let r = check(&registry(), "orders", &b, &v).unwrap_err();
        assert!(r.record_errors[0].1.contains("has no record name"), "{:?}", r.record_errors);
    }

    #[test]
    fn garbage_never_panics() {
        let v = SchemaValidation {
            key: Some(SubjectNameStrategy::TopicName),
            value: Some(SubjectNameStrategy::TopicName),
            decode: true,
        };
        let good = batch(&[(Some(b"\0\0\0\0\x03k"), Some(b"\0\0\0\0\x01v"))]);
        for cut in 0..good.len() {
            let _ = check(&registry(), "orders", &good[..cut], &v);
        }
        let mut flipped = good.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = check(&registry(), "orders", &flipped, &v);
            flipped[i] ^= 0xff;
        }
    }
}
