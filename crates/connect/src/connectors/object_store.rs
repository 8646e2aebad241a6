//! The object-store sink: record values written as JSON Lines files to S3
//! (`io.confluent.connect.s3.S3SinkConnector`, alias `S3Sink`, with
//! Confluent's configuration names) or to any store `store.url` names, the
//! local filesystem included (`vltava.connect.ObjectStoreSinkConnector`,
//! alias `ObjectStoreSink`), through the `object_store` crate.
//!
//! Files are named as Confluent's S3 sink names them:
//! `<topics.dir>/<topic>/<encoded partition>/<topic>+<kafka partition>+<start offset>.json`,
//! the start offset zero-padded to 10 digits; the encoded partition is
//! `partition=<p>` (DefaultPartitioner), `<field>=<value>`
//! (FieldPartitioner) or the record's time bucket formatted by `path.format`
//! (TimeBasedPartitioner, Hourly, Daily).
//!
//! A file is written whole, once: when its Kafka partition has `flush.size`
//! records buffered, when a record's time is `rotate.interval.ms` past the
//! first one's, when the wall clock passes a `rotate.schedule.interval.ms`
//! boundary, and at `flush` (the runtime commits consumer offsets only after
//! `flush` returns, so everything given must be durable then). After a crash
//! the task resumes at the committed offset, where a file began: replaying
//! rewrites objects of the same names with the same records (with
//! Record-time rotation; wall-clock rotation is not repeatable).

mod parquet_file;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ::object_store::path::Path as ObjectPath;
use ::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use async_trait::async_trait;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ZonedDateTime};

use super::http::{value_to_json, SettingError};
use crate::config::{ConfigDef, ConfigErrors, ConfigKey, ConfigType, Props, PropsExt};
use crate::connector::{ConnectorKind, Plugin, SinkTask, SinkTaskContext};
use crate::data::calendar::MONTHS;
use crate::data::{Record, Schema, Value};
use crate::error::{ConnectError, Result};

/// The sink under one of its class names.
pub struct StoreSink {
    class: &'static str,
    aliases: &'static [&'static str],
}

/// Confluent's S3 sink.
pub static S3_SINK: StoreSink = StoreSink { class: "io.confluent.connect.s3.S3SinkConnector", aliases: &["S3Sink"] };
/// The same sink under vltava's name, for `file://` stores.
pub static OBJECT_STORE_SINK: StoreSink =
    StoreSink { class: "vltava.connect.ObjectStoreSinkConnector", aliases: &["ObjectStoreSink"] };

const JSON_FORMAT: &str = "io.confluent.connect.s3.format.json.JsonFormat";
const PARQUET_FORMAT: &str = "io.confluent.connect.s3.format.parquet.ParquetFormat";
const PARTITIONER_PACKAGE: &str = "io.confluent.connect.storage.partitioner.";
/// Confluent's default region.
const DEFAULT_REGION: &str = "us-west-2";
const HOUR_MS: i64 = 3_600_000;

fn config_def() -> ConfigDef {
    ConfigDef::new(vec![
        ConfigKey::optional(
            "store.url",
            ConfigType::String,
            "",
            "Where objects go: file:///dir, s3://bucket, or an S3 endpoint URL (with s3.bucket.name).",
        )
        .group("Storage"),
        ConfigKey::optional("s3.bucket.name", ConfigType::String, "", "The S3 bucket.").group("Storage"),
        ConfigKey::optional("s3.region", ConfigType::String, DEFAULT_REGION, "The AWS region of the bucket.")
            .group("Storage"),
        ConfigKey::optional("aws.access.key.id", ConfigType::String, "", "AWS access key (else the environment's).")
            .group("Storage"),
        ConfigKey::optional(
            "aws.secret.access.key",
            ConfigType::Password,
            "",
            "AWS secret key (else the environment's).",
        )
        .group("Storage"),
        ConfigKey::optional("topics.dir", ConfigType::String, "topics", "Top-level directory of the files.")
            .group("Storage"),
        ConfigKey::optional("directory.delim", ConfigType::String, "/", "Directory delimiter.").group("Storage"),
        ConfigKey::optional("file.delim", ConfigType::String, "+", "Delimiter of a file name's parts.")
            .group("Storage"),
        ConfigKey::optional(
            "format.class",
            ConfigType::Class,
            JSON_FORMAT,
            "The format of the files: JsonFormat (JSON Lines) or ParquetFormat (struct records).",
        )
        .group("Connector"),
        ConfigKey::optional("parquet.codec", ConfigType::String, "snappy", "ParquetFormat's compression.")
            .one_of(&["snappy", "none"])
            .group("Connector"),
        ConfigKey::required("flush.size", ConfigType::Int, "Number of records written to a file before it is committed.")
            .group("Connector"),
        ConfigKey::optional(
            "rotate.interval.ms",
            ConfigType::Long,
            "-1",
            "Commit files when a record's time is this far past the first record's of the file.",
        )
        .group("Connector"),
        ConfigKey::optional(
            "rotate.schedule.interval.ms",
            ConfigType::Long,
            "-1",
            "Commit files at each multiple of this wall-clock interval.",
        )
        .group("Connector"),
        ConfigKey::optional(
            "behavior.on.null.values",
            ConfigType::String,
            "ignore",
            "Records with a null value: ignore (skip) or fail.",
        )
        .one_of(&["ignore", "fail"])
        .group("Connector"),
        ConfigKey::optional(
            "partitioner.class",
            ConfigType::Class,
            "io.confluent.connect.storage.partitioner.DefaultPartitioner",
            "Default, Field, TimeBased, Hourly or Daily partitioner.",
        )
        .group("Partitioner"),
        ConfigKey::optional("partition.field.name", ConfigType::List, "", "FieldPartitioner: the fields.")
            .group("Partitioner"),
        ConfigKey::optional(
            "path.format",
            ConfigType::String,
            "",
            "TimeBasedPartitioner: a Joda-Time pattern of the directories, e.g. 'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH.",
        )
        .group("Partitioner"),
        ConfigKey::optional("partition.duration.ms", ConfigType::Long, "-1", "TimeBasedPartitioner: bucket length.")
            .group("Partitioner"),
        ConfigKey::optional("locale", ConfigType::String, "", "TimeBasedPartitioner: the locale (en only).")
            .group("Partitioner"),
        ConfigKey::optional("timezone", ConfigType::String, "", "TimeBasedPartitioner: a zone name (Europe/Prague), UTC or an offset (+02:00).")
            .group("Partitioner"),
        ConfigKey::optional(
            "timestamp.extractor",
            ConfigType::String,
            "Wallclock",
            "TimeBasedPartitioner: Record, RecordField or Wallclock.",
        )
        .group("Partitioner"),
        ConfigKey::optional("timestamp.field", ConfigType::String, "timestamp", "RecordField: the field.")
            .group("Partitioner"),
    ])
}

async fn validate(props: &Props) -> ConfigErrors {
    let mut errors = config_def().validate(props);
    if errors.is_empty() {
        if let Err(e) = StoreSettings::from_props(props) {
            errors.add(e.key, e.message);
        }
    }
    errors
}

#[async_trait]
impl Plugin for StoreSink {
    fn class(&self) -> &'static str {
        self.class
    }
    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_def(&self) -> ConfigDef {
        config_def()
    }
    async fn validate(&self, props: &Props) -> ConfigErrors {
        validate(props).await
    }
    async fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone(); max_tasks.max(1)])
    }
    fn sink_task(&self) -> Option<Box<dyn SinkTask>> {
        Some(Box::new(ObjectStoreSinkTask::default()))
    }
}

/// Where the files go.
#[derive(Clone, Debug, PartialEq)]
enum Location {
    Local(PathBuf),
    S3 { bucket: String, endpoint: Option<String> },
}

/// Where a record's time comes from (`timestamp.extractor`).
#[derive(Clone, Debug)]
enum TimeSource {
    Record,
    RecordField(String),
    Wallclock,
}

/// The files' format (`format.class`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    /// JSON Lines.
    Json,
    /// Parquet, with this compression.
    Parquet(::parquet::basic::Compression),
}

impl Format {
    /// The file name extension, as Confluent's formats name them.
    fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Parquet(::parquet::basic::Compression::SNAPPY) => "snappy.parquet",
            Format::Parquet(_) => "parquet",
        }
    }
}

/// How a record's directory is chosen (`partitioner.class`).
#[derive(Clone, Debug)]
enum Partitioner {
    Default,
    Field(Vec<String>),
    Time { path_format: String, duration_ms: i64, zone: TimeZone, source: TimeSource },
}

#[derive(Clone, Debug)]
struct StoreSettings {
    location: Location,
    region: String,
    access_key: Option<String>,
    secret_key: Option<String>,
    topics_dir: String,
    dir_delim: String,
    file_delim: String,
    flush_size: usize,
    format: Format,
    rotate_interval_ms: i64,
    rotate_schedule_ms: i64,
    fail_on_null: bool,
    partitioner: Partitioner,
}

fn long_setting(props: &Props, key: &'static str, default: i64) -> Result<i64, SettingError> {
    props.int_or(key, default).map_err(|e| SettingError::new(key, e.to_string()))
}

/// A class name, with or without its package.
fn class_is(value: &str, package: &str, simple: &str) -> bool {
    let value = value.trim();
    value == simple || value.strip_prefix(package) == Some(simple)
}

impl StoreSettings {
    fn from_props(props: &Props) -> Result<StoreSettings, SettingError> {
        let url = props.str_or("store.url", "").trim();
        let bucket = props.str_or("s3.bucket.name", "").trim();
        let location = if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(SettingError::new(
                    "store.url",
                    format!("{url}: a file URL needs an absolute path (file:///dir)"),
                ));
            }
            Location::Local(PathBuf::from(rest))
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let bucket = rest.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                return Err(SettingError::new("store.url", format!("{url}: expected s3://bucket")));
            }
            Location::S3 { bucket: bucket.to_string(), endpoint: None }
        } else if url.starts_with("http://") || url.starts_with("https://") || url.is_empty() {
            if bucket.is_empty() {
                return Err(SettingError::new(
                    "s3.bucket.name",
                    "Missing required configuration \"s3.bucket.name\" which has no default value.",
                ));
            }
            Location::S3 { bucket: bucket.to_string(), endpoint: (!url.is_empty()).then(|| url.to_string()) }
        } else {
            return Err(SettingError::new(
                "store.url",
                format!("{url}: expected file:///dir, s3://bucket or http(s)://endpoint"),
            ));
        };
        let format_class = props.str_or("format.class", JSON_FORMAT).trim();
        let format = if class_is(format_class, "io.confluent.connect.s3.format.json.", "JsonFormat") {
            Format::Json
        } else if class_is(format_class, "io.confluent.connect.s3.format.parquet.", "ParquetFormat") {
            match props.str_or("parquet.codec", "snappy").trim().to_ascii_lowercase().as_str() {
                "snappy" => Format::Parquet(::parquet::basic::Compression::SNAPPY),
                "none" | "uncompressed" => Format::Parquet(::parquet::basic::Compression::UNCOMPRESSED),
                other => {
                    return Err(SettingError::new(
                        "parquet.codec",
                        format!(
                        "Invalid value {other} for configuration parquet.codec: String must be one of: snappy, none"
                    ),
                    ))
                }
            }
        } else {
            return Err(SettingError::new(
                "format.class",
                format!("Class {format_class} is not supported: {JSON_FORMAT} or {PARQUET_FORMAT}"),
            ));
        };
        let flush_size = long_setting(props, "flush.size", 0)?;
        if props.get("flush.size").is_none() {
            return Err(SettingError::new(
                "flush.size",
                "Missing required configuration \"flush.size\" which has no default value.",
            ));
        }
        if flush_size < 1 {
            return Err(SettingError::new(
                "flush.size",
                format!("Invalid value {flush_size} for configuration flush.size: Value must be at least 1"),
            ));
        }
        let partitioner = Self::partitioner(props)?;
        let opt = |key: &str| props.get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Ok(StoreSettings {
            location,
            region: opt("s3.region").unwrap_or_else(|| DEFAULT_REGION.to_string()),
            access_key: opt("aws.access.key.id"),
            secret_key: opt("aws.secret.access.key"),
            topics_dir: props.str_or("topics.dir", "topics").trim().trim_matches('/').to_string(),
            dir_delim: props.str_or("directory.delim", "/").to_string(),
            file_delim: props.str_or("file.delim", "+").to_string(),
            flush_size: flush_size as usize,
            format,
            rotate_interval_ms: long_setting(props, "rotate.interval.ms", -1)?,
            rotate_schedule_ms: long_setting(props, "rotate.schedule.interval.ms", -1)?,
            fail_on_null: props.str_or("behavior.on.null.values", "ignore").trim().eq_ignore_ascii_case("fail"),
            partitioner,
        })
    }

    fn partitioner(props: &Props) -> Result<Partitioner, SettingError> {
        let class = props.str_or("partitioner.class", "DefaultPartitioner").trim();
        let is = |simple| class_is(class, PARTITIONER_PACKAGE, simple);
        if is("DefaultPartitioner") {
            return Ok(Partitioner::Default);
        }
        if is("FieldPartitioner") {
            let fields = props.list("partition.field.name");
            if fields.is_empty() {
                return Err(SettingError::new("partition.field.name", "FieldPartitioner needs partition.field.name"));
            }
            return Ok(Partitioner::Field(fields));
        }
        let (path_format, duration_ms) = if is("HourlyPartitioner") {
            ("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".to_string(), HOUR_MS)
        } else if is("DailyPartitioner") {
            ("'year'=YYYY/'month'=MM/'day'=dd".to_string(), 24 * HOUR_MS)
        } else if is("TimeBasedPartitioner") {
            let format = props.str_or("path.format", "").trim().to_string();
            if format.is_empty() {
                return Err(SettingError::new("path.format", "TimeBasedPartitioner needs path.format"));
            }
            let duration = long_setting(props, "partition.duration.ms", -1)?;
            if duration < 1 {
                return Err(SettingError::new(
                    "partition.duration.ms",
                    "TimeBasedPartitioner needs partition.duration.ms > 0",
                ));
            }
            (format, duration)
        } else {
            return Err(SettingError::new(
                "partitioner.class",
                format!("Class {class} is not supported: DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner, HourlyPartitioner or DailyPartitioner"),
            ));
        };
        format_joda(&path_format, &Timestamp::UNIX_EPOCH.to_zoned_datetime(TimeZone::UTC))
            .map_err(|m| SettingError::new("path.format", m))?;
        let zone = parse_zone(props.str_or("timezone", "UTC")).map_err(|m| SettingError::new("timezone", m))?;
        let locale = props.str_or("locale", "en").trim().to_ascii_lowercase();
        if !(locale.is_empty() || locale == "en" || locale.starts_with("en_") || locale.starts_with("en-")) {
            return Err(SettingError::new("locale", format!("locale {locale}: only English locales are supported")));
        }
        let extractor = props.str_or("timestamp.extractor", "Wallclock").trim();
        let source = match extractor.rsplit('.').next().unwrap_or(extractor) {
            "Record" | "RecordTimestampExtractor" => TimeSource::Record,
            "Wallclock" | "WallclockTimestampExtractor" => TimeSource::Wallclock,
            "RecordField" | "RecordFieldTimestampExtractor" => {
                TimeSource::RecordField(props.str_or("timestamp.field", "timestamp").trim().to_string())
            }
            other => {
                return Err(SettingError::new(
                    "timestamp.extractor",
                    format!("{other}: expected Record, RecordField or Wallclock"),
                ))
            }
        };
        Ok(Partitioner::Time { path_format, duration_ms, zone, source })
    }

    /// The record's time for partitioning and rotation, milliseconds.
    fn record_time(&self, record: &Record, now_ms: i64) -> Result<i64> {
        let source = match &self.partitioner {
            Partitioner::Time { source, .. } => source,
            _ => &TimeSource::Record,
        };
        match source {
            TimeSource::Wallclock => Ok(now_ms),
            TimeSource::Record => record.timestamp.ok_or_else(|| {
                ConnectError::data(format!("record at {}/{:?} has no timestamp", record.topic, record.kafka_offset))
            }),
            TimeSource::RecordField(field) => {
                let value = record.value.get(field).ok_or_else(|| {
                    ConnectError::data(format!(
                        "record at {}/{:?} has no field {field}",
                        record.topic, record.kafka_offset
                    ))
                })?;
                match value {
                    Value::String(s) => s
                        .parse::<Timestamp>()
                        .map(Timestamp::as_millisecond)
                        .map_err(|e| ConnectError::data(format!("field {field}: {s:?} is not a timestamp: {e}"))),
                    other => other
                        .as_i64()
                        .ok_or_else(|| ConnectError::data(format!("field {field} is not a timestamp: {other:?}"))),
                }
            }
        }
    }

    /// The directory of a record under its topic (`partition=0`, ...).
    fn encoded_partition(&self, record: &Record, kafka_partition: i32, now_ms: i64) -> Result<String> {
        match &self.partitioner {
            Partitioner::Default => Ok(format!("partition={kafka_partition}")),
            Partitioner::Field(fields) => {
                let mut parts = Vec::with_capacity(fields.len());
                for field in fields {
                    let value = record.value.get(field).ok_or_else(|| {
                        ConnectError::data(format!(
                            "record at {}/{:?} has no field {field}",
                            record.topic, record.kafka_offset
                        ))
                    })?;
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Boolean(_) | Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
                            crate::converter::display(value)
                        }
                        other => {
                            return Err(ConnectError::data(format!(
                                "field {field}: {other:?} cannot name a partition (strings, integers, booleans can)"
                            )))
                        }
                    };
                    parts.push(format!("{field}={text}"));
                }
                Ok(parts.join(&self.dir_delim))
            }
            Partitioner::Time { path_format, duration_ms, zone, .. } => {
                let time = self.record_time(record, now_ms)?;
                let bucket = time_bucket(time, *duration_ms, zone);
                let at = Timestamp::from_millisecond(bucket)
                    .map_err(|e| ConnectError::data(format!("timestamp {time}: {e}")))?
                    .to_zoned_datetime(zone.clone());
                format_joda(path_format, &at).map_err(ConnectError::data)
            }
        }
    }

    /// The object name of a file.
    fn object_name(&self, topic: &str, encoded: &str, kafka_partition: i32, start_offset: i64) -> String {
        let d = &self.dir_delim;
        let f = &self.file_delim;
        let name = format!("{topic}{f}{kafka_partition}{f}{start_offset:010}.{}", self.format.extension());
        if self.topics_dir.is_empty() {
            format!("{topic}{d}{encoded}{d}{name}")
        } else {
            format!("{}{d}{topic}{d}{encoded}{d}{name}", self.topics_dir)
        }
    }
}

/// The start of the `duration_ms` bucket holding `time` in `zone` (as
/// Confluent's TimeBasedPartitioner: buckets are aligned in local time).
fn time_bucket(time_ms: i64, duration_ms: i64, zone: &TimeZone) -> i64 {
    let offset_s = Timestamp::from_millisecond(time_ms).map_or(0, |t| zone.to_offset(t).seconds());
    let offset_ms = i64::from(offset_s) * 1000;
    let local = time_ms.saturating_add(offset_ms);
    local.div_euclid(duration_ms).saturating_mul(duration_ms).saturating_sub(offset_ms)
}

/// `UTC`, `GMT`, `Z`, `+02:00`, `-0530`, `UTC+2`, or a named zone of the
/// system's time zone database (`Europe/Prague`, `America/Los_Angeles`).
fn parse_zone(text: &str) -> Result<TimeZone, String> {
    let t = text.trim();
    let bad = || format!("timezone {t:?}: not a time zone name (Europe/Prague) or offset (UTC, +02:00)");
    let rest = ["UTC", "GMT", "Z"].iter().find_map(|p| t.strip_prefix(p)).unwrap_or(t);
    if rest.is_empty() {
        return Ok(TimeZone::UTC);
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return TimeZone::get(t).map_err(|e| format!("timezone {t:?}: {e}")),
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 18 || m > 59 {
        return Err(bad());
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).map(TimeZone::fixed).map_err(|_| bad())
}

/// Formats `t` with a Joda-Time pattern as Confluent's `path.format` uses
/// them: `'quoted'` literals (`''` is a quote), `YYYY`/`yyyy` year, `MM`
/// month (`MMM`/`MMMM` its name), `dd` day, `HH` hour, `mm` minute, `ss`
/// second, `SSS` millisecond, `DDD` day of year; other characters as they are.
fn format_joda(pattern: &str, t: &ZonedDateTime) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            if chars.get(i) == Some(&'\'') {
                out.push('\'');
                i += 1;
                continue;
            }
            loop {
                match chars.get(i) {
                    None => return Err(format!("path.format {pattern:?}: unterminated quote")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&q) => {
                        out.push(q);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        i += run;
        let num = |v: i64| format!("{v:0run$}");
        match c {
            'Y' | 'y' | 'x' if run == 2 => out.push_str(&format!("{:02}", i64::from(t.year()).rem_euclid(100))),
            'Y' | 'y' | 'x' => out.push_str(&num(t.year().into())),
            'M' if run >= 3 => {
                let name = MONTHS.get(usize::try_from(t.month() - 1).unwrap_or(0)).copied().unwrap_or("");
                out.push_str(if run == 3 { name.get(..3).unwrap_or(name) } else { name })
            }
            'M' => out.push_str(&num(t.month().into())),
            'd' => out.push_str(&num(t.day().into())),
            'D' => out.push_str(&num(t.day_of_year().into())),
            'H' => out.push_str(&num(t.hour().into())),
            'm' => out.push_str(&num(t.minute().into())),
            's' => out.push_str(&num(t.second().into())),
            'S' => out.push_str(&format!("{:03}", t.millisecond())[..run.min(3)]),
            other => return Err(format!("path.format {pattern:?}: pattern letter {other:?} is not supported")),
        }
    }
    Ok(out)
}

/// One file being filled: the records of one encoded partition of one
/// Kafka partition.
struct OpenFile {
    start_offset: i64,
    /// JSON Lines: the file's bytes so far.
    data: Vec<u8>,
    /// Parquet: the rows and their schema, encoded when the file is written.
    rows: Vec<Value>,
    schema: Option<Schema>,
}

impl OpenFile {
    fn new(start_offset: i64, schema: Option<Schema>) -> OpenFile {
        OpenFile { start_offset, data: Vec::new(), rows: Vec::new(), schema }
    }

    /// The object's bytes.
    fn encode(&self, format: Format) -> Result<Vec<u8>, String> {
        match (format, &self.schema) {
            (Format::Json, _) => Ok(self.data.clone()),
            (Format::Parquet(codec), Some(schema)) => parquet_file::write(schema, &self.rows, codec),
            (Format::Parquet(_), None) => Err("no schema".into()),
        }
    }
}

/// The files of one Kafka partition, and when to commit them.
#[derive(Default)]
struct PartitionWriter {
    /// Encoded partition -> its file.
    files: BTreeMap<String, OpenFile>,
    /// Records in `files`.
    count: usize,
    /// The time of the first record in `files` (`rotate.interval.ms`).
    first_time_ms: Option<i64>,
    /// The wall-clock time the files are committed at (`rotate.schedule.interval.ms`).
    scheduled_ms: Option<i64>,
    /// The offset after the last record taken: a batch given again after a
    /// failed `put` is not written twice.
    next_offset: Option<i64>,
}

/// (topic, partition) -> its writer.
type Writers = BTreeMap<(String, i32), PartitionWriter>;

#[derive(Default)]
struct ObjectStoreSinkTask {
    settings: Option<StoreSettings>,
    store: Option<Arc<dyn ObjectStore>>,
    writers: Writers,
    connector: String,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn open_store(settings: &StoreSettings) -> Result<Arc<dyn ObjectStore>> {
    match &settings.location {
        Location::Local(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectError::fatal(format!("object-store sink: cannot create {}: {e}", dir.display())))?;
            let store = ::object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| ConnectError::fatal(format!("object-store sink: {}: {e}", dir.display())))?;
            Ok(Arc::new(store))
        }
        Location::S3 { bucket, endpoint } => {
            let mut builder =
                ::object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&settings.region);
            if let Some(endpoint) = endpoint {
                builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
            }
            if let Some(key) = &settings.access_key {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &settings.secret_key {
                builder = builder.with_secret_access_key(secret);
            }
            let store = builder.build().map_err(|e| ConnectError::config(format!("object-store sink: {e}")))?;
            Ok(Arc::new(store))
        }
    }
}

/// Writes every file of `writer`, each removed once it is written (a
/// failure leaves the rest for the next try).
async fn commit(
    store: &dyn ObjectStore,
    settings: &StoreSettings,
    connector: &str,
    (topic, partition): (&str, i32),
    writer: &mut PartitionWriter,
) -> Result<()> {
    while let Some((encoded, file)) = writer.files.pop_first() {
        let name = settings.object_name(topic, &encoded, partition, file.start_offset);
        let path = ObjectPath::from(name.as_str());
        let bytes = match file.encode(settings.format) {
            Ok(bytes) => bytes,
            Err(e) => {
                writer.files.insert(encoded, file);
                return Err(ConnectError::data(format!("object-store sink: {name}: {e}")));
            }
        };
        if let Err(e) = store.put(&path, PutPayload::from(bytes)).await {
            writer.files.insert(encoded, file);
            return Err(ConnectError::retriable(format!("object-store sink: writing {name}: {e}")));
        }
        tracing::debug!(connector, object = %name, "object-store sink: file written");
    }
    writer.count = 0;
    writer.first_time_ms = None;
    writer.scheduled_ms = None;
    Ok(())
}

impl ObjectStoreSinkTask {
    fn parts(&mut self) -> Result<(&StoreSettings, &Arc<dyn ObjectStore>, &mut Writers)> {
        match (&self.settings, &self.store) {
            (Some(s), Some(store)) => Ok((s, store, &mut self.writers)),
            _ => Err(ConnectError::fatal("object-store sink: not started")),
        }
    }
}

#[async_trait]
impl SinkTask for ObjectStoreSinkTask {
    async fn start(&mut self, props: &Props, ctx: SinkTaskContext) -> Result<()> {
        let settings = StoreSettings::from_props(props)?;
        self.store = Some(open_store(&settings)?);
        self.settings = Some(settings);
        self.connector = ctx.connector;
        self.writers.clear();
        Ok(())
    }

    async fn put(&mut self, records: Vec<Record>) -> Result<()> {
        let connector = self.connector.clone();
        let (settings, store, writers) = self.parts()?;
        let now = now_ms();
        // files due by the wall clock, and files a failed put left complete
        for ((topic, partition), w) in writers.iter_mut() {
            let due = w.scheduled_ms.is_some_and(|at| now >= at) || w.count >= settings.flush_size;
            if due && w.count > 0 {
                commit(store.as_ref(), settings, &connector, (topic, *partition), w).await?;
            }
        }
        for record in records {
            let partition = record.partition.unwrap_or(0);
            let offset = record.kafka_offset.ok_or_else(|| {
                ConnectError::data(format!("record of {}/{partition} has no Kafka offset", record.topic))
            })?;
            let key = (record.topic.clone(), partition);
            let w = writers.entry(key).or_default();
            if w.next_offset.is_some_and(|next| offset < next) {
                continue; // given again after a failed put: already taken
            }
            if record.value.is_null() {
                if settings.fail_on_null {
                    return Err(ConnectError::data(format!(
                        "record at {}/{partition}/{offset} has a null value (behavior.on.null.values=fail)",
                        record.topic
                    )));
                }
                w.next_offset = Some(offset + 1);
                continue;
            }
            let encoded = settings.encoded_partition(&record, partition, now)?;
            if let Format::Parquet(_) = settings.format {
                let schema = record.value_schema.as_ref();
                parquet_file::check_schema(schema)
                    .and_then(|()| schema.map_or(Ok(()), |s| parquet_file::check_row(s, &record.value)))
                    .map_err(|e| ConnectError::data(format!("record at {}/{partition}/{offset}: {e}", record.topic)))?;
                // a new schema starts new files
                if w.files.values().any(|f| f.schema.as_ref() != schema) {
                    commit(store.as_ref(), settings, &connector, (&record.topic, partition), w).await?;
                }
            }
            if settings.rotate_interval_ms > 0 {
                let time = settings.record_time(&record, now)?;
                if w.first_time_ms.is_some_and(|first| time - first >= settings.rotate_interval_ms) {
                    commit(store.as_ref(), settings, &connector, (&record.topic, partition), w).await?;
                }
                w.first_time_ms.get_or_insert(time);
            }
            if settings.rotate_schedule_ms > 0 && w.scheduled_ms.is_none() {
                let iv = settings.rotate_schedule_ms;
                w.scheduled_ms = Some(now.div_euclid(iv).saturating_add(1).saturating_mul(iv));
            }
            let file = w.files.entry(encoded).or_insert_with(|| OpenFile::new(offset, record.value_schema.clone()));
            match settings.format {
                Format::Json => {
                    let line = serde_json::to_vec(&value_to_json(&record.value)).map_err(|e| {
                        ConnectError::data(format!("record at {}/{partition}/{offset}: {e}", record.topic))
                    })?;
                    file.data.extend(line);
                    file.data.push(b'\n');
                }
                Format::Parquet(_) => file.rows.push(record.value),
            }
            w.count += 1;
            w.next_offset = Some(offset + 1);
            if w.count >= settings.flush_size {
                commit(store.as_ref(), settings, &connector, (&record.topic, partition), w).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let connector = self.connector.clone();
        let (settings, store, writers) = self.parts()?;
        for ((topic, partition), w) in writers.iter_mut() {
            if w.count > 0 {
                commit(store.as_ref(), settings, &connector, (topic, *partition), w).await?;
            }
        }
        Ok(())
    }

    async fn close(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        // not committed: the partitions' new owner writes these files from the last commit
        for key in partitions {
            self.writers.remove(key);
        }
        Ok(())
    }

    async fn stop(&mut self) {
        // what was not flushed is not committed either: it is read again
        self.writers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn record(partition: i32, offset: i64, timestamp: i64, value: Value) -> Record {
        Record {
            topic: "orders".into(),
            partition: Some(partition),
            key_schema: None,
            key: Value::Null,
            value_schema: None,
            value,
            timestamp: Some(timestamp),
            headers: Vec::new(),
            source_partition: None,
            source_offset: None,
            kafka_offset: Some(offset),
        }
    }

    fn id(i: i64) -> Value {
        Value::Map(vec![(Value::String("id".into()), Value::Int64(i))])
    }

    #[test]
    fn joda_patterns_format_as_confluent_paths() {
        let t = "2026-03-04T05:06:07.089Z".parse::<Timestamp>().unwrap().to_zoned_datetime(TimeZone::UTC);
        let f = |p: &str| format_joda(p, &t).unwrap();
        assert_eq!(f("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"), "year=2026/month=03/day=04/hour=05");
        assert_eq!(f("yyyy-MM-dd'T'HH:mm:ss.SSS"), "2026-03-04T05:06:07.089");
        assert_eq!(f("yy/MMM/MMMM/DDD/'it''s'"), "26/Mar/March/063/it's");
        assert!(format_joda("'open", &t).is_err());
        assert!(format_joda("YYYY/ww", &t).is_err());
    }

    #[test]
    fn time_buckets_align_in_the_zone() {
        let utc = parse_zone("UTC").unwrap();
        assert_eq!(time_bucket(HOUR_MS * 5 + 1234, HOUR_MS, &utc), HOUR_MS * 5);
        assert_eq!(time_bucket(-1, HOUR_MS, &utc), -HOUR_MS);
        // a day in +02:00 starts at 22:00 UTC the day before
        let plus2 = parse_zone("+02:00").unwrap();
        assert_eq!(time_bucket(HOUR_MS * 23, 24 * HOUR_MS, &plus2), HOUR_MS * 22);
        let offset = |z: &str| parse_zone(z).unwrap().to_offset(Timestamp::UNIX_EPOCH).seconds();
        assert_eq!(offset("UTC-0530"), -(5 * 3600 + 30 * 60));
        assert_eq!(offset("GMT+2"), 7200);
        assert_eq!(offset("Etc/GMT+2"), -7200); // POSIX's inverted sign, as Java reads it
                                                // named zones follow daylight saving time: a Prague day starts at 23:00 UTC in
                                                // winter, at 22:00 UTC in summer
        let prague = parse_zone("Europe/Prague").unwrap();
        let winter = "2026-01-15T12:00:00Z".parse::<Timestamp>().unwrap().as_millisecond();
        let summer = "2026-07-15T12:00:00Z".parse::<Timestamp>().unwrap().as_millisecond();
        let day = 24 * HOUR_MS;
        assert_eq!(time_bucket(winter, day, &prague), winter - 13 * HOUR_MS);
        assert_eq!(time_bucket(summer, day, &prague), summer - 14 * HOUR_MS);
        assert!(parse_zone("Nowhere/Atlantis").is_err());
        assert!(parse_zone("+25:00").is_err());
    }

    #[test]
    fn settings_check_what_confluent_checks() {
        let ok = props(&[("store.url", "file:///tmp/x"), ("flush.size", "3")]);
        let s = StoreSettings::from_props(&ok).unwrap();
        assert_eq!(s.location, Location::Local("/tmp/x".into()));
        assert_eq!(s.object_name("orders", "partition=2", 2, 42), "topics/orders/partition=2/orders+2+0000000042.json");
        let s = StoreSettings::from_props(&props(&[
            ("s3.bucket.name", "b"),
            ("flush.size", "1"),
            ("store.url", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(s.location, Location::S3 { bucket: "b".into(), endpoint: Some("http://127.0.0.1:5000".into()) });
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("store.url", "file:///x")], "flush.size"),
            (&[("flush.size", "1")], "s3.bucket.name"),
            (&[("store.url", "file://rel"), ("flush.size", "1")], "store.url"),
            (&[("store.url", "gs://b"), ("flush.size", "1")], "store.url"),
            (&[("store.url", "file:///x"), ("flush.size", "0")], "flush.size"),
            (
                &[
                    ("store.url", "file:///x"),
                    ("flush.size", "1"),
                    ("format.class", "io.confluent.connect.s3.format.avro.AvroFormat"),
                ],
                "format.class",
            ),
            (
                &[("store.url", "file:///x"), ("flush.size", "1"), ("partitioner.class", "TimeBasedPartitioner")],
                "path.format",
            ),
            (
                &[
                    ("store.url", "file:///x"),
                    ("flush.size", "1"),
                    ("partitioner.class", "TimeBasedPartitioner"),
                    ("path.format", "YYYY"),
                ],
                "partition.duration.ms",
            ),
            (
                &[
                    ("store.url", "file:///x"),
                    ("flush.size", "1"),
                    ("partitioner.class", "TimeBasedPartitioner"),
                    ("path.format", "YYYY"),
                    ("partition.duration.ms", "1000"),
                    ("timezone", "America/Nowhere"),
                ],
                "timezone",
            ),
            (&[("store.url", "file:///x"), ("flush.size", "1"), ("partitioner.class", "x.Y")], "partitioner.class"),
        ];
        for (pairs, key) in cases {
            let err = StoreSettings::from_props(&props(pairs)).unwrap_err();
            assert_eq!(err.key, *key, "{pairs:?}: {err:?}");
        }
    }

    async fn task(dir: &std::path::Path, extra: &[(&str, &str)]) -> ObjectStoreSinkTask {
        let mut p = props(extra);
        p.insert("store.url".into(), format!("file://{}", dir.display()));
        let mut t = ObjectStoreSinkTask::default();
        t.start(&p, SinkTaskContext { connector: "s3".into(), task: 0 }).await.unwrap();
        t
    }

    fn files(dir: &std::path::Path) -> BTreeMap<String, String> {
        fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let name = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                    out.insert(name, std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    #[tokio::test]
    async fn files_rotate_at_flush_size_and_flush_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = task(dir.path(), &[("flush.size", "2")]).await;
        let batch: Vec<Record> = (0..5).map(|i| record((i % 2) as i32, 10 + i, 0, id(i))).collect();
        t.put(batch.clone()).await.unwrap();
        // partition 0 got offsets 10,12,14: one full file; partition 1 got 11,13: one
        let written = files(dir.path());
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            [
                "topics/orders/partition=0/orders+0+0000000010.json",
                "topics/orders/partition=1/orders+1+0000000011.json"
            ]
        );
        assert_eq!(written["topics/orders/partition=0/orders+0+0000000010.json"], "{\"id\":0}\n{\"id\":2}\n");
        // the same batch again (a retried put) adds nothing; a tombstone is skipped
        t.put(batch).await.unwrap();
        t.put(vec![record(1, 15, 0, Value::Null)]).await.unwrap();
        assert_eq!(files(dir.path()).len(), 2);
        t.flush().await.unwrap();
        let written = files(dir.path());
        assert_eq!(written.len(), 3);
        assert_eq!(written["topics/orders/partition=0/orders+0+0000000014.json"], "{\"id\":4}\n");
        t.flush().await.unwrap();
        assert_eq!(files(dir.path()).len(), 3);
    }

    #[tokio::test]
    async fn time_based_partitions_and_record_time_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = task(
            dir.path(),
            &[
                ("flush.size", "100"),
                ("topics.dir", "out"),
                ("partitioner.class", "io.confluent.connect.storage.partitioner.TimeBasedPartitioner"),
                ("path.format", "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"),
                ("partition.duration.ms", "3600000"),
                ("locale", "en-US"),
                ("timezone", "UTC"),
                ("timestamp.extractor", "Record"),
                ("rotate.interval.ms", "7200000"),
            ],
        )
        .await;
        let base = 1_772_600_000_000; // 2026-03-04T04:53:20Z
        let times = [base, base + 1000, base + HOUR_MS, base + 3 * HOUR_MS];
        let batch: Vec<Record> =
            times.iter().enumerate().map(|(i, &ts)| record(0, i as i64, ts, id(i as i64))).collect();
        t.put(batch).await.unwrap();
        // the fourth record is 3 h past the first: the first three are committed
        assert_eq!(
            files(dir.path()).keys().collect::<Vec<_>>(),
            [
                "out/orders/year=2026/month=03/day=04/hour=04/orders+0+0000000000.json",
                "out/orders/year=2026/month=03/day=04/hour=05/orders+0+0000000002.json"
            ]
        );
        t.flush().await.unwrap();
        let written = files(dir.path());
        assert_eq!(written["out/orders/year=2026/month=03/day=04/hour=07/orders+0+0000000003.json"], "{\"id\":3}\n");
        assert_eq!(
            written["out/orders/year=2026/month=03/day=04/hour=04/orders+0+0000000000.json"],
            "{\"id\":0}\n{\"id\":1}\n"
        );
    }

    #[tokio::test]
    async fn parquet_files_hold_the_struct_records() {
        use crate::data::{Field, SchemaType};
        use ::parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let mut t = task(
            dir.path(),
            &[("flush.size", "2"), ("format.class", "io.confluent.connect.s3.format.parquet.ParquetFormat")],
        )
        .await;
        let schema = Schema::structure(Some("Row"), vec![Field::new("id", Schema::of(SchemaType::Int64))]);
        let batch: Vec<Record> = (0..3)
            .map(|i| {
                let mut r = record(0, i, 0, Value::Struct(vec![("id".into(), Value::Int64(i))]));
                r.value_schema = Some(schema.clone());
                r
            })
            .collect();
        t.put(batch).await.unwrap();
        t.flush().await.unwrap();
        let dir_path = dir.path().join("topics/orders/partition=0");
        let rows = |name: &str| {
            let bytes = std::fs::read(dir_path.join(name)).unwrap();
            let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
            reader.metadata().file_metadata().num_rows()
        };
        assert_eq!(rows("orders+0+0000000000.snappy.parquet"), 2);
        assert_eq!(rows("orders+0+0000000002.snappy.parquet"), 1);
        // schemaless records cannot be Parquet rows
        let err = t.put(vec![record(0, 3, 0, id(3))]).await.unwrap_err();
        assert!(matches!(err, ConnectError::Data(_)), "{err:?}");
    }

    #[tokio::test]
    async fn field_partitioner_and_bad_records_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = task(
            dir.path(),
            &[("flush.size", "1"), ("partitioner.class", "FieldPartitioner"), ("partition.field.name", "id")],
        )
        .await;
        t.put(vec![record(0, 0, 0, id(7))]).await.unwrap();
        assert!(files(dir.path()).contains_key("topics/orders/id=7/orders+0+0000000000.json"));
        let err = t.put(vec![record(0, 1, 0, Value::String("no fields".into()))]).await.unwrap_err();
        assert!(matches!(err, ConnectError::Data(_)), "{err:?}");
        let mut no_offset = record(0, 2, 0, id(1));
        no_offset.kafka_offset = None;
        assert!(t.put(vec![no_offset]).await.is_err());
    }
}
