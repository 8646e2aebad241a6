//! The JDBC source task on PostgreSQL: each of its tables is queried every
//! `poll.interval.ms` for the rows past its offset (`mode`: a strictly
//! increasing column, a timestamp column older than
//! `timestamp.delay.interval.ms`, both, or the whole table), and the rows
//! are handed out `batch.max.rows` at a time as Struct records named after
//! the table, each with the offset of its row, so a restart resumes after
//! the last committed row.

use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::json;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, RowStream};

use super::{connect, decimal_bytes, pg_config, pg_error, quote_ident, quote_literal, quote_table, MODES};
use crate::config::{Props, PropsExt};
use crate::connector::{OffsetReader, SourceTask, SourceTaskContext};
use crate::data::{logical, Field, JsonMap, Record, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

/// The longest a poll waits for a table's next query before answering empty.
const POLL_WAIT_MAX: Duration = Duration::from_millis(500);
/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// The task config key listing a task's tables (set by `task_configs`).
const TASK_TABLES: &str = "tables";

/// `table.whitelist` and `table.include.list`.
pub(super) fn included_tables(props: &Props) -> Vec<String> {
    let mut tables = props.list("table.whitelist");
    tables.extend(props.list("table.include.list"));
    tables
}

/// `table.blacklist` and `table.exclude.list`.
pub(super) fn excluded_tables(props: &Props) -> Vec<String> {
    let mut tables = props.list("table.blacklist");
    tables.extend(props.list("table.exclude.list"));
    tables
}

/// The tables split over at most `max_tasks` tasks (each task's config gets
/// its share under `tables`). Without a whitelist, the database's tables
/// (in `schema.pattern`, or every non-system schema) less the blacklist.
pub(super) async fn task_configs(props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
    let mut tables = included_tables(props);
    if tables.is_empty() {
        let client = connect(&pg_config(props)?, props.str_or("db.timezone", "UTC")).await?;
        let schema = props.str_or("schema.pattern", "").trim().to_string();
        let rows = client
            .query(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables \
                 WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
                 AND ($1 = '' OR table_schema = $1) ORDER BY 1, 2",
                &[&schema],
            )
            .await
            .map_err(|e| pg_error("listing tables", &e))?;
        let excluded = excluded_tables(props);
        for row in rows {
            let (schema, table): (String, String) = (row.get(0), row.get(1));
            let qualified = format!("{schema}.{table}");
            if !excluded.contains(&table) && !excluded.contains(&qualified) {
                tables.push(qualified);
            }
        }
    }
    let groups = max_tasks.max(1).min(tables.len());
    let mut configs: Vec<Vec<String>> = vec![Vec::new(); groups];
    for (i, table) in tables.into_iter().enumerate() {
        configs[i % groups].push(table);
    }
    Ok(configs
        .into_iter()
        .map(|tables| {
            let mut p = props.clone();
            p.insert(TASK_TABLES.into(), tables.join(","));
            p
        })
        .collect())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

struct Settings {
    pg: tokio_postgres::Config,
    timezone: String,
    mode: Mode,
    incrementing_column: String,
    timestamp_column: String,
    topic_prefix: String,
    poll_interval: Duration,
    batch_max_rows: usize,
    timestamp_delay_ms: i64,
    validate_non_null: bool,
    /// Where timestamp queries start without a committed offset (micros since the epoch).
    timestamp_initial_micros: Option<i64>,
}

/// How a column's value is read: the binary form of the types decoded here,
/// text (`::text` in the query) for the others.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Int16,
    Int32,
    Int64,
    Oid,
    Float32,
    Float64,
    Bytes,
    Text,
    /// numeric(p, s): Connect Decimal at scale s (read as text).
    Decimal(u32),
    /// numeric without a scale: a double (read as text).
    NumericDouble,
    Timestamp,
    Date,
    Time,
    /// Any other type, read as its text.
    Other,
}

impl Kind {
    fn of(oid: u32, typmod: i32) -> Kind {
        match Type::from_oid(oid) {
            Some(Type::BOOL) => Kind::Bool,
            Some(Type::INT2) => Kind::Int16,
            Some(Type::INT4) => Kind::Int32,
            Some(Type::INT8) => Kind::Int64,
            Some(Type::OID) => Kind::Oid,
            Some(Type::FLOAT4) => Kind::Float32,
            Some(Type::FLOAT8) => Kind::Float64,
            Some(Type::BYTEA) => Kind::Bytes,
            Some(Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) => Kind::Text,
            Some(Type::NUMERIC) => {
                // typmod: ((precision << 16) | scale) + 4; scale an 11-bit signed number
                let scale = (typmod.wrapping_sub(4)) & 0x7ff;
                if typmod >= 4 && scale & 0x400 == 0 {
                    Kind::Decimal(scale as u32)
                } else {
                    Kind::NumericDouble
                }
            }
            Some(Type::TIMESTAMP | Type::TIMESTAMPTZ) => Kind::Timestamp,
            Some(Type::DATE) => Kind::Date,
            Some(Type::TIME) => Kind::Time,
            _ => Kind::Other,
        }
    }

    fn read_as_text(self) -> bool {
        matches!(self, Kind::Decimal(_) | Kind::NumericDouble | Kind::Other)
    }

    fn schema(self) -> Schema {
        let logical = |ty, name| Schema { version: Some(1), ..Schema::of(ty).named(name) };
        match self {
            Kind::Bool => Schema::of(SchemaType::Boolean),
            Kind::Int16 => Schema::of(SchemaType::Int16),
            Kind::Int32 => Schema::of(SchemaType::Int32),
            Kind::Int64 | Kind::Oid => Schema::of(SchemaType::Int64),
            Kind::Float32 => Schema::of(SchemaType::Float32),
            Kind::Float64 | Kind::NumericDouble => Schema::of(SchemaType::Float64),
            Kind::Bytes => Schema::of(SchemaType::Bytes),
            Kind::Text | Kind::Other => Schema::of(SchemaType::String),
            Kind::Decimal(scale) => {
                let mut s = logical(SchemaType::Bytes, logical::DECIMAL);
                s.parameters.insert(logical::DECIMAL_SCALE.into(), scale.to_string());
                s
            }
            Kind::Timestamp => logical(SchemaType::Int64, logical::TIMESTAMP),
            Kind::Date => logical(SchemaType::Int32, logical::DATE),
            Kind::Time => logical(SchemaType::Int32, logical::TIME),
        }
    }
}

/// A value as the server sent it (binary, or text for `::text` columns).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Raw<'a>, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn fixed<const N: usize>(raw: &[u8], column: &str) -> Result<[u8; N]> {
    raw.try_into()
        .map_err(|_| ConnectError::data(format!("column {column}: {} bytes where {N} were expected", raw.len())))
}

/// A timestamp's microseconds since 1970-01-01 (±infinity saturate).
fn timestamp_micros(raw: &[u8], column: &str) -> Result<i64> {
    Ok(i64::from_be_bytes(fixed(raw, column)?).saturating_add(PG_EPOCH_MICROS))
}

fn decode(kind: Kind, raw: &[u8], column: &str) -> Result<Value> {
    let text = || String::from_utf8_lossy(raw).into_owned();
    Ok(match kind {
        Kind::Bool => Value::Boolean(raw.first().is_some_and(|&b| b != 0)),
        Kind::Int16 => Value::Int16(i16::from_be_bytes(fixed(raw, column)?)),
        Kind::Int32 => Value::Int32(i32::from_be_bytes(fixed(raw, column)?)),
        Kind::Int64 => Value::Int64(i64::from_be_bytes(fixed(raw, column)?)),
        Kind::Oid => Value::Int64(u32::from_be_bytes(fixed(raw, column)?).into()),
        Kind::Float32 => Value::Float32(f32::from_be_bytes(fixed(raw, column)?)),
        Kind::Float64 => Value::Float64(f64::from_be_bytes(fixed(raw, column)?)),
        Kind::Bytes => Value::Bytes(raw.to_vec()),
        Kind::Text | Kind::Other => Value::String(text()),
        Kind::Decimal(scale) => Value::Bytes(
            decimal_bytes(&text(), scale)
                .ok_or_else(|| ConnectError::data(format!("column {column}: {} is not a finite decimal", text())))?,
        ),
        Kind::NumericDouble => Value::Float64(
            text().parse().map_err(|_| ConnectError::data(format!("column {column}: {} is not a number", text())))?,
        ),
        Kind::Timestamp => Value::Int64(timestamp_micros(raw, column)?.div_euclid(1000)),
        Kind::Date => Value::Int32(i32::from_be_bytes(fixed(raw, column)?).saturating_add(PG_EPOCH_DAYS)),
        Kind::Time => Value::Int32((i64::from_be_bytes(fixed(raw, column)?) / 1000) as i32),
    })
}

struct Column {
    name: String,
    kind: Kind,
}

/// Where a table's rows were read up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Offset {
    incrementing: Option<i64>,
    timestamp_micros: Option<i64>,
}

impl Offset {
    /// Connect's JDBC offset: `incrementing`, and `timestamp` (ms) with `timestamp_nanos` (of the second).
    fn to_json(self) -> JsonMap {
        let mut map = JsonMap::new();
        if let Some(i) = self.incrementing {
            map.insert("incrementing".into(), i.into());
        }
        if let Some(us) = self.timestamp_micros {
            map.insert("timestamp".into(), us.div_euclid(1000).into());
            map.insert("timestamp_nanos".into(), (us.rem_euclid(1_000_000) * 1000).into());
        }
        map
    }

    fn from_json(map: &JsonMap) -> Offset {
        let timestamp_micros = map.get("timestamp").and_then(|t| t.as_i64()).map(|ms| {
            match map.get("timestamp_nanos").and_then(|n| n.as_i64()) {
                Some(nanos) => ms.div_euclid(1000).saturating_mul(1_000_000).saturating_add(nanos / 1000),
                None => ms.saturating_mul(1000),
            }
        });
        Offset { incrementing: map.get("incrementing").and_then(|i| i.as_i64()), timestamp_micros }
    }
}

/// One table of the task, resolved in the database.
struct Table {
    /// As configured (`table` or `schema.table`).
    configured: String,
    /// Known once the table was looked up.
    resolved: Option<Resolved>,
    offset: Offset,
    next_query: Instant,
}

struct Resolved {
    topic: String,
    partition: JsonMap,
    columns: Vec<Column>,
    schema: Schema,
    sql: String,
    incrementing: Option<usize>,
    timestamp: Option<usize>,
}

/// A query in progress: its rows are handed out over several polls.
struct Active {
    table: usize,
    rows: Pin<Box<RowStream>>,
}

#[derive(Default)]
pub(super) struct JdbcSourceTask {
    settings: Option<Settings>,
    offsets: Option<std::sync::Arc<dyn OffsetReader>>,
    client: Option<Client>,
    database: String,
    tables: Vec<Table>,
    active: Option<Active>,
}

fn settings(props: &Props) -> Result<Settings> {
    let mode = match props.required("mode")?.trim().to_ascii_lowercase().as_str() {
        "bulk" => Mode::Bulk,
        "incrementing" => Mode::Incrementing,
        "timestamp" => Mode::Timestamp,
        "timestamp+incrementing" => Mode::TimestampIncrementing,
        other => {
            return Err(ConnectError::config(format!(
                "Invalid value {other} for configuration mode: String must be one of: {}",
                MODES.join(", ")
            )))
        }
    };
    let incrementing_column = props.str_or("incrementing.column.name", "").trim().to_string();
    let timestamp_column = props.str_or("timestamp.column.name", "").trim().to_string();
    if matches!(mode, Mode::Incrementing | Mode::TimestampIncrementing) && incrementing_column.is_empty() {
        return Err(ConnectError::config("mode needs incrementing.column.name"));
    }
    if matches!(mode, Mode::Timestamp | Mode::TimestampIncrementing) && timestamp_column.is_empty() {
        return Err(ConnectError::config("mode needs timestamp.column.name"));
    }
    let timestamp_initial_micros = match props.str_or("timestamp.initial", "").trim() {
        "" => None,
        "-1" => Some(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)),
        ms => Some(
            ms.parse::<i64>()
                .map_err(|_| ConnectError::config(format!("timestamp.initial {ms}: not epoch milliseconds")))?
                .saturating_mul(1000),
        ),
    };
    Ok(Settings {
        pg: pg_config(props)?,
        timezone: props.str_or("db.timezone", "UTC").to_string(),
        mode,
        incrementing_column,
        timestamp_column,
        topic_prefix: props.required("topic.prefix")?.to_string(),
        poll_interval: Duration::from_millis(props.int_or("poll.interval.ms", 5000)?.max(1) as u64),
        batch_max_rows: props.int_or("batch.max.rows", 100)?.max(1) as usize,
        timestamp_delay_ms: props.int_or("timestamp.delay.interval.ms", 0)?.max(0),
        validate_non_null: props.bool_or("validate.non.null", true)?,
        timestamp_initial_micros,
    })
}

/// The query of a table in `mode`; its parameters are those of [`JdbcSourceTask::params`].
fn query_sql(s: &Settings, table: &str, columns: &[Column], ts_with_zone: bool) -> String {
    let select: Vec<String> = columns
        .iter()
        .map(|c| if c.kind.read_as_text() { format!("{}::text", quote_ident(&c.name)) } else { quote_ident(&c.name) })
        .collect();
    let mut sql = format!("SELECT {} FROM {table}", select.join(", "));
    let inc = quote_ident(&s.incrementing_column);
    let ts = quote_ident(&s.timestamp_column);
    let (epoch, now) = if ts_with_zone {
        ("TIMESTAMPTZ 'epoch'", "CURRENT_TIMESTAMP")
    } else {
        ("TIMESTAMP 'epoch'", "LOCALTIMESTAMP")
    };
    let last_ts = format!("COALESCE({epoch} + $1::int8 * INTERVAL '1 microsecond', '-infinity')");
    match s.mode {
        Mode::Bulk => {}
        Mode::Incrementing => sql.push_str(&format!(" WHERE {inc} > $1::int8 ORDER BY {inc} ASC")),
        Mode::Timestamp => sql.push_str(&format!(
            " WHERE {ts} > {last_ts} AND {ts} < {now} - $2::int8 * INTERVAL '1 millisecond' ORDER BY {ts} ASC"
        )),
        Mode::TimestampIncrementing => sql.push_str(&format!(
            " WHERE {ts} < {now} - $3::int8 * INTERVAL '1 millisecond' \
             AND ({ts} > {last_ts} OR ({ts} = {last_ts} AND {inc} > $2::int8)) ORDER BY {ts} ASC, {inc} ASC"
        )),
    }
    sql
}

impl JdbcSourceTask {
    fn settings(&self) -> Result<&Settings> {
        self.settings.as_ref().ok_or_else(|| ConnectError::fatal("the JDBC source task was not started"))
    }

    /// A live connection, with every table resolved and its offset read.
    async fn ensure_ready(&mut self) -> Result<()> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) && self.tables.iter().all(|t| t.resolved.is_some()) {
            return Ok(());
        }
        self.active = None;
        let settings = self.settings()?;
        let client = connect(&settings.pg, &settings.timezone).await?;
        if self.database.is_empty() {
            let row = client
                .query_one("SELECT current_database()::text", &[])
                .await
                .map_err(|e| pg_error("reading the database name", &e))?;
            self.database = row.get(0);
        }
        for i in 0..self.tables.len() {
            if self.tables[i].resolved.is_none() {
                let resolved = self.resolve(&client, &self.tables[i].configured).await?;
                let committed = match &self.offsets {
                    Some(reader) => reader.offset(&resolved.partition).await?,
                    None => None,
                };
                let settings = self.settings()?;
                let offset = match committed {
                    Some(o) => Offset::from_json(&o),
                    None => Offset {
                        incrementing: None,
                        timestamp_micros: if matches!(settings.mode, Mode::Timestamp | Mode::TimestampIncrementing) {
                            settings.timestamp_initial_micros
                        } else {
                            None
                        },
                    },
                };
                let table = &mut self.tables[i];
                table.offset = offset;
                table.resolved = Some(resolved);
            }
        }
        self.client = Some(client);
        Ok(())
    }

    async fn resolve(&self, client: &Client, configured: &str) -> Result<Resolved> {
        let s = self.settings()?;
        let quoted = quote_table(configured);
        let found = client
            .query_opt(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                &[&quoted],
            )
            .await
            .map_err(|e| pg_error(&format!("looking up table {configured}"), &e))?;
        let Some(found) = found else {
            return Err(ConnectError::fatal(format!(
                "table {configured} does not exist in database {}",
                self.database
            )));
        };
        let (schema_name, table_name): (String, String) = (found.get(0), found.get(1));
        let qualified = format!("{}.{}", quote_ident(&schema_name), quote_ident(&table_name));
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid, a.atttypmod, a.attnotnull FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&qualified],
            )
            .await
            .map_err(|e| pg_error(&format!("reading the columns of {configured}"), &e))?;
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        for row in rows {
            let (name, oid, typmod, not_null): (String, u32, i32, bool) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let kind = Kind::of(oid, typmod);
            let schema = if not_null { kind.schema() } else { kind.schema().optional() };
            fields.push(Field::new(&name, schema));
            columns.push((Column { name, kind }, not_null));
        }
        let find = |name: &str, what: &str, ok: fn(Kind) -> bool| -> Result<Option<usize>> {
            if name.is_empty() {
                return Ok(None);
            }
            let i = columns.iter().position(|(c, _)| c.name == name).ok_or_else(|| {
                ConnectError::fatal(format!("{what} column {name} does not exist in table {configured}"))
            })?;
            if !ok(columns[i].0.kind) {
                return Err(ConnectError::fatal(format!(
                    "{what} column {name} of table {configured} has an unsupported type ({:?})",
                    columns[i].0.kind
                )));
            }
            if s.validate_non_null && !columns[i].1 {
                return Err(ConnectError::fatal(format!(
                    "Cannot make incremental queries using {what} column {name} on {configured} because this \
                     column is nullable (make it NOT NULL or set validate.non.null=false)"
                )));
            }
            Ok(Some(i))
        };
        let uses_inc = matches!(s.mode, Mode::Incrementing | Mode::TimestampIncrementing);
        let uses_ts = matches!(s.mode, Mode::Timestamp | Mode::TimestampIncrementing);
        let incrementing = if uses_inc {
            find(&s.incrementing_column, "incrementing", |k| matches!(k, Kind::Int16 | Kind::Int32 | Kind::Int64))?
        } else {
            None
        };
        let timestamp = if uses_ts { find(&s.timestamp_column, "timestamp", |k| k == Kind::Timestamp)? } else { None };
        let ts_with_zone = match timestamp {
            Some(_) => {
                let row = client
                    .query_one(
                        &format!(
                            "SELECT format_type(atttypid, NULL) = 'timestamp with time zone' FROM pg_attribute \
                             WHERE attrelid = to_regclass($1) AND attname = {}",
                            quote_literal(&s.timestamp_column)
                        ),
                        &[&qualified],
                    )
                    .await
                    .map_err(|e| pg_error("reading the timestamp column's type", &e))?;
                row.get::<_, bool>(0)
            }
            None => false,
        };
        let columns: Vec<Column> = columns.into_iter().map(|(c, _)| c).collect();
        let sql = query_sql(s, &qualified, &columns, ts_with_zone);
        let mut partition = JsonMap::new();
        partition.insert("protocol".into(), json!("1"));
        partition.insert("table".into(), json!(format!("{}.{schema_name}.{table_name}", self.database)));
        Ok(Resolved {
            topic: format!("{}{table_name}", s.topic_prefix),
            partition,
            schema: Schema::structure(Some(&table_name), fields),
            columns,
            sql,
            incrementing,
            timestamp,
        })
    }

    /// The query parameters of a table at its offset.
    fn params(&self, table: &Table) -> Result<Vec<Option<i64>>> {
        let s = self.settings()?;
        let inc = Some(table.offset.incrementing.unwrap_or(-1));
        let delay = Some(s.timestamp_delay_ms);
        Ok(match s.mode {
            Mode::Bulk => vec![],
            Mode::Incrementing => vec![inc],
            Mode::Timestamp => vec![table.offset.timestamp_micros, delay],
            Mode::TimestampIncrementing => vec![table.offset.timestamp_micros, inc, delay],
        })
    }

    /// Starts the query of the table due first, or waits for it (a little).
    async fn start_next_query(&mut self) -> Result<bool> {
        let Some((i, due)) = self.tables.iter().enumerate().map(|(i, t)| (i, t.next_query)).min_by_key(|&(_, d)| d)
        else {
            tokio::time::sleep(POLL_WAIT_MAX).await;
            return Ok(false);
        };
        let now = Instant::now();
        if due > now {
            tokio::time::sleep((due - now).min(POLL_WAIT_MAX)).await;
            return Ok(false);
        }
        let interval = self.settings()?.poll_interval;
        self.tables[i].next_query = now + interval;
        let params = self.params(&self.tables[i])?;
        let sql = self.tables[i].resolved.as_ref().map(|r| r.sql.clone()).unwrap_or_default();
        let client = self.client.as_ref().ok_or_else(|| ConnectError::retriable("not connected"))?;
        let rows = client
            .query_raw(sql.as_str(), params)
            .await
            .map_err(|e| pg_error(&format!("querying {}", self.tables[i].configured), &e))?;
        self.active = Some(Active { table: i, rows: Box::pin(rows) });
        Ok(true)
    }

    /// Up to `batch.max.rows` rows of the query in progress, as records.
    async fn read_rows(&mut self) -> Result<Vec<Record>> {
        let batch_max = self.settings()?.batch_max_rows;
        let mode = self.settings()?.mode;
        let Some(active) = self.active.as_mut() else { return Ok(Vec::new()) };
        let Table { configured, resolved, offset, .. } = &mut self.tables[active.table];
        let Some(resolved) = resolved.as_ref() else { return Ok(Vec::new()) };
        let mut records = Vec::new();
        let mut done = false;
        while records.len() < batch_max {
            let row = match active.rows.next().await {
                None => {
                    done = true;
                    break;
                }
                Some(Err(e)) => {
                    self.active = None;
                    return Err(pg_error(&format!("reading {configured}"), &e));
                }
                Some(Ok(row)) => row,
            };
            let mut values = Vec::with_capacity(resolved.columns.len());
            for (i, column) in resolved.columns.iter().enumerate() {
                let raw: Option<Raw> =
                    row.try_get(i).map_err(|e| ConnectError::data(format!("column {}: {e}", column.name)))?;
                let value = match &raw {
                    None => Value::Null,
                    Some(raw) => decode(column.kind, raw.0, &column.name)?,
                };
                if let (true, Some(v)) = (Some(i) == resolved.incrementing, value.as_i64()) {
                    offset.incrementing = Some(v);
                }
                if let (true, Some(raw)) = (Some(i) == resolved.timestamp, &raw) {
                    offset.timestamp_micros = Some(timestamp_micros(raw.0, &column.name)?);
                }
                values.push((column.name.clone(), value));
            }
            let source_offset = if mode == Mode::Bulk { JsonMap::new() } else { offset.to_json() };
            records.push(Record::source(
                &resolved.topic,
                resolved.partition.clone(),
                source_offset,
                Some(resolved.schema.clone()),
                Value::Struct(values),
            ));
        }
        if done {
            self.active = None;
        }
        Ok(records)
    }
}

#[async_trait]
impl SourceTask for JdbcSourceTask {
    async fn start(&mut self, props: &Props, ctx: SourceTaskContext) -> Result<()> {
        let settings = settings(props)?;
        let mut names = props.list(TASK_TABLES);
        if names.is_empty() {
            names = included_tables(props);
        }
        if names.is_empty() {
            return Err(ConnectError::config("the task has no tables: set table.whitelist"));
        }
        let now = Instant::now();
        self.tables = names
            .into_iter()
            .map(|configured| Table { configured, resolved: None, offset: Offset::default(), next_query: now })
            .collect();
        self.settings = Some(settings);
        self.offsets = Some(ctx.offsets);
        // connect now when the database is up; poll retries otherwise
        match self.ensure_ready().await {
            Err(e) if e.is_retriable() => {
                tracing::warn!("JDBC source {}-{}: {e}; retrying at the next poll", ctx.connector, ctx.task);
                Ok(())
            }
            other => other,
        }
    }

    async fn poll(&mut self) -> Result<Vec<Record>> {
        if let Err(e) = self.ensure_ready().await {
            if e.is_retriable() {
                tokio::time::sleep(POLL_WAIT_MAX).await;
            }
            return Err(e);
        }
        // bounded: each table's query at most once per poll
        for _ in 0..=self.tables.len() {
            if self.active.is_none() && !self.start_next_query().await? {
                return Ok(Vec::new());
            }
            let records = self.read_rows().await?;
            if !records.is_empty() {
                return Ok(records);
            }
        }
        Ok(Vec::new())
    }

    async fn stop(&mut self) {
        self.active = None;
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_keep_microseconds_as_connect_writes_them() {
        let o = Offset { incrementing: Some(7), timestamp_micros: Some(1_700_000_000_123_456) };
        let json = o.to_json();
        assert_eq!(json["timestamp"], 1_700_000_000_123i64);
        assert_eq!(json["timestamp_nanos"], 123_456_000);
        assert_eq!(Offset::from_json(&json), o);
        let before_1970 = Offset { incrementing: None, timestamp_micros: Some(-1_500) };
        assert_eq!(Offset::from_json(&before_1970.to_json()), before_1970);
    }

    #[test]
    fn numeric_type_modifiers_give_the_scale() {
        assert_eq!(Kind::of(1700, (10 << 16 | 2) + 4), Kind::Decimal(2));
        assert_eq!(Kind::of(1700, -1), Kind::NumericDouble);
        assert_eq!(Kind::of(2950, -1), Kind::Other);
        assert!(decode(Kind::Int32, &[1, 2], "c").is_err());
        assert_eq!(decode(Kind::Date, &0i32.to_be_bytes(), "c").unwrap(), Value::Int32(10_957));
    }
}
