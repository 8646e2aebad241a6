//! The JDBC sink task on PostgreSQL: each `put` writes its records in one
//! transaction (durable when `put` returns, so `flush` has nothing left):
//! runs of records for the same table and columns go as one COPY
//! (`insert.mode=insert`), multi-row `INSERT .. ON CONFLICT (pk) DO UPDATE`
//! (`upsert`), `UPDATE`s (`update`) or one `DELETE` of tombstones' keys
//! (`delete.enabled`). Tables are created from the records' schemas
//! (`auto.create`) and given columns for new optional fields (`auto.evolve`),
//! in the same transaction. Values travel as text and PostgreSQL casts them
//! to the column's type, so a record's `int64` fills an `integer` column and
//! its string a `jsonb` one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement, Transaction};

use super::{civil_from_days, connect, decimal_text, pg_config, pg_error, quote_ident, quote_literal, quote_table};
use crate::config::{Props, PropsExt};
use crate::connector::{SinkTask, SinkTaskContext};
use crate::data::{logical, Record, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

/// The most parameters PostgreSQL takes in one statement.
const PARAMS_MAX: usize = 65_535;
/// COPY data is sent in pieces of about this size.
const COPY_CHUNK_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

struct Settings {
    pg: tokio_postgres::Config,
    timezone: String,
    insert_mode: InsertMode,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    fields_whitelist: Vec<String>,
    table_format: String,
    auto_create: bool,
    auto_evolve: bool,
    batch_size: usize,
    delete_enabled: bool,
}

fn settings(props: &Props) -> Result<Settings> {
    let insert_mode = match props.str_or("insert.mode", "insert").trim().to_ascii_lowercase().as_str() {
        "insert" => InsertMode::Insert,
        "upsert" => InsertMode::Upsert,
        "update" => InsertMode::Update,
        other => return Err(ConnectError::config(format!("insert.mode {other}: expected insert, upsert or update"))),
    };
    let pk_mode = match props.str_or("pk.mode", "none").trim().to_ascii_lowercase().as_str() {
        "none" => PkMode::None,
        "kafka" => PkMode::Kafka,
        "record_key" => PkMode::RecordKey,
        "record_value" => PkMode::RecordValue,
        other => {
            return Err(ConnectError::config(format!(
                "pk.mode {other}: expected none, kafka, record_key or record_value"
            )))
        }
    };
    let delete_enabled = props.bool_or("delete.enabled", false)?;
    if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
        return Err(ConnectError::config("insert.mode upsert and update need a primary key: set pk.mode"));
    }
    if delete_enabled && pk_mode != PkMode::RecordKey {
        return Err(ConnectError::config("Deletes are only supported for pk.mode record_key"));
    }
    let pk_fields = props.list("pk.fields");
    if pk_mode == PkMode::Kafka && !pk_fields.is_empty() && pk_fields.len() != 3 {
        return Err(ConnectError::config("pk.mode kafka: pk.fields names 3 columns (topic, partition, offset)"));
    }
    Ok(Settings {
        pg: pg_config(props)?,
        timezone: props.str_or("db.timezone", "UTC").to_string(),
        insert_mode,
        pk_mode,
        pk_fields,
        fields_whitelist: props.list("fields.whitelist"),
        table_format: props.str_or("table.name.format", "${topic}").to_string(),
        auto_create: props.bool_or("auto.create", false)?,
        auto_evolve: props.bool_or("auto.evolve", false)?,
        batch_size: props.int_or("batch.size", 3000)?.max(1) as usize,
        delete_enabled,
    })
}

/// One column of a row to write: its name, schema (none for schemaless
/// data) and value as text (`None`: NULL).
struct Column<'a> {
    name: Cow<'a, str>,
    schema: Option<Cow<'a, Schema>>,
    text: Option<String>,
}

/// A record as a table row: primary key columns first.
struct Row<'a> {
    table: String,
    columns: Vec<Column<'a>>,
    /// How many of `columns` form the primary key.
    pk_len: usize,
    delete: bool,
}

impl Row<'_> {
    fn same_shape(&self, other: &Row) -> bool {
        self.table == other.table
            && self.delete == other.delete
            && self.pk_len == other.pk_len
            && self.columns.len() == other.columns.len()
            && self.columns.iter().zip(&other.columns).all(|(a, b)| a.name == b.name)
    }
}

static TOPIC_SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::of(SchemaType::String));
static PARTITION_SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::of(SchemaType::Int32));
static OFFSET_SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::of(SchemaType::Int64));

fn where_is(record: &Record) -> String {
    format!("{}-{}@{}", record.topic, record.partition.unwrap_or(-1), record.kafka_offset.unwrap_or(-1))
}

/// The fields of a Struct (with its schema) or a JSON object (schemaless).
fn struct_fields<'a>(
    schema: Option<&'a Schema>,
    value: &'a Value,
    what: &str,
    record: &Record,
) -> Result<Vec<(&'a str, Option<&'a Schema>, &'a Value)>> {
    match value {
        Value::Struct(fields) => Ok(fields
            .iter()
            .map(|(name, v)| (name.as_str(), schema.and_then(|s| s.field(name)).map(|f| &f.schema), v))
            .collect()),
        Value::Map(entries) if schema.is_none_or(|s| s.ty == SchemaType::Map) => entries
            .iter()
            .map(|(k, v)| match k {
                Value::String(name) => Ok((name.as_str(), None, v)),
                other => Err(ConnectError::data(format!(
                    "{what} of {}: map key {other:?} is not a string",
                    where_is(record)
                ))),
            })
            .collect(),
        other => Err(ConnectError::data(format!(
            "JdbcSink needs a Struct {what} (JsonConverter with schemas.enable=true, Avro, ...) or a JSON object; \
             {} has {}",
            where_is(record),
            match other {
                Value::Null => "null".to_string(),
                v => format!("a {}", crate::converter::display(v).chars().take(80).collect::<String>()),
            }
        ))),
    }
}

/// The schema of a schemaless primitive key, for `auto.create`.
fn inferred_schema(value: &Value) -> Option<Schema> {
    Some(Schema::of(match value {
        Value::Boolean(_) => SchemaType::Boolean,
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => SchemaType::Int64,
        Value::Float32(_) | Value::Float64(_) => SchemaType::Float64,
        Value::String(_) => SchemaType::String,
        Value::Bytes(_) => SchemaType::Bytes,
        _ => return None,
    }))
}

impl Settings {
    /// The row a record writes (or deletes); `None` for a tombstone to skip.
    fn row<'a>(&self, record: &'a Record) -> Result<Option<Row<'a>>> {
        let table = self.table_format.replace("${topic}", &record.topic);
        let delete = record.value.is_null();
        if delete && !self.delete_enabled {
            return Ok(None);
        }
        let mut columns: Vec<Column<'a>> = Vec::new();
        match self.pk_mode {
            PkMode::None | PkMode::RecordValue => {}
            PkMode::Kafka => {
                let names: Vec<&str> = if self.pk_fields.len() == 3 {
                    self.pk_fields.iter().map(String::as_str).collect()
                } else {
                    vec!["__connect_topic", "__connect_partition", "__connect_offset"]
                };
                let values = [
                    (&*TOPIC_SCHEMA, Some(record.topic.clone())),
                    (&*PARTITION_SCHEMA, record.partition.map(|p| p.to_string())),
                    (&*OFFSET_SCHEMA, record.kafka_offset.map(|o| o.to_string())),
                ];
                for (name, (schema, text)) in names.into_iter().zip(values) {
                    columns.push(Column {
                        name: Cow::Owned(name.to_string()),
                        schema: Some(Cow::Borrowed(schema)),
                        text,
                    });
                }
            }
            PkMode::RecordKey => match &record.key {
                Value::Null => {
                    return Err(ConnectError::data(format!(
                        "pk.mode record_key: the record {} has no key",
                        where_is(record)
                    )))
                }
                Value::Struct(_) | Value::Map(_) => {
                    for (name, schema, value) in struct_fields(record.key_schema.as_ref(), &record.key, "key", record)?
                    {
                        if self.pk_fields.is_empty() || self.pk_fields.iter().any(|f| f == name) {
                            columns.push(Column {
                                name: Cow::Borrowed(name),
                                schema: schema.map(Cow::Borrowed),
                                text: sql_text(schema, value)?,
                            });
                        }
                    }
                    if let Some(missing) = self.pk_fields.iter().find(|f| !columns.iter().any(|c| c.name == **f)) {
                        return Err(ConnectError::data(format!(
                            "pk.fields {missing} is not a field of the key of {}",
                            where_is(record)
                        )));
                    }
                }
                primitive => {
                    if self.pk_fields.len() > 1 {
                        return Err(ConnectError::config(
                            "pk.mode record_key with a primitive key takes one pk.fields name",
                        ));
                    }
                    let name = self.pk_fields.first().map_or("__connect_key", String::as_str);
                    let schema = match &record.key_schema {
                        Some(s) => Some(Cow::Borrowed(s)),
                        None => inferred_schema(primitive).map(Cow::Owned),
                    };
                    columns.push(Column {
                        name: Cow::Owned(name.to_string()),
                        text: sql_text(schema.as_deref(), primitive)?,
                        schema,
                    });
                }
            },
        }
        let mut pk_len = columns.len();
        if delete {
            return Ok(Some(Row { table, columns, pk_len, delete }));
        }
        let fields = struct_fields(record.value_schema.as_ref(), &record.value, "value", record)?;
        if self.pk_mode == PkMode::RecordValue {
            let pk: Vec<&str> = if self.pk_fields.is_empty() {
                fields.iter().map(|f| f.0).collect()
            } else {
                self.pk_fields.iter().map(String::as_str).collect()
            };
            for name in pk {
                let Some((name, schema, value)) = fields.iter().find(|f| f.0 == name) else {
                    return Err(ConnectError::data(format!(
                        "pk.fields {name} is not a field of the value of {}",
                        where_is(record)
                    )));
                };
                columns.push(Column {
                    name: Cow::Borrowed(name),
                    schema: schema.map(Cow::Borrowed),
                    text: sql_text(*schema, value)?,
                });
            }
            pk_len = columns.len();
        }
        for (name, schema, value) in fields {
            let listed = self.fields_whitelist.is_empty() || self.fields_whitelist.iter().any(|f| f == name);
            if listed && !columns.iter().any(|c| c.name == name) {
                columns.push(Column {
                    name: Cow::Borrowed(name),
                    schema: schema.map(Cow::Borrowed),
                    text: sql_text(schema, value)?,
                });
            }
        }
        Ok(Some(Row { table, columns, pk_len, delete }))
    }
}

fn float_text(v: f64, shortest: String) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        shortest
    }
}

fn date_text(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if year <= 0 {
        format!("{:04}-{month:02}-{day:02} BC", 1 - year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

fn time_text(ms_of_day: i64) -> String {
    let ms = ms_of_day.rem_euclid(86_400_000);
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// A value as the text PostgreSQL reads for a column of its type (NULL: `None`).
fn sql_text(schema: Option<&Schema>, value: &Value) -> Result<Option<String>> {
    let logical = schema.and_then(|s| s.name.as_deref());
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Boolean(b) => b.to_string(),
        Value::Int32(days) if logical == Some(logical::DATE) => date_text((*days).into()),
        Value::Int32(ms) if logical == Some(logical::TIME) => time_text((*ms).into()),
        Value::Int64(ms) if logical == Some(logical::TIMESTAMP) => {
            let days = ms.div_euclid(86_400_000);
            let (date, time) = (date_text(days), time_text(ms.rem_euclid(86_400_000)));
            match date.strip_suffix(" BC") {
                Some(d) => format!("{d} {time}+00 BC"),
                None => format!("{date} {time}+00"),
            }
        }
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => float_text((*v).into(), v.to_string()),
        Value::Float64(v) => float_text(*v, v.to_string()),
        Value::String(s) => s.clone(),
        Value::Bytes(b) if logical == Some(logical::DECIMAL) => {
            let scale =
                schema.and_then(|s| s.parameters.get(logical::DECIMAL_SCALE)).and_then(|s| s.parse().ok()).unwrap_or(0);
            decimal_text(b, scale)
        }
        Value::Bytes(b) => {
            let mut text = String::with_capacity(2 + 2 * b.len());
            text.push_str("\\x");
            for byte in b {
                text.push_str(&format!("{byte:02x}"));
            }
            text
        }
        nested => json_of(schema, nested).to_string(),
    }))
}

/// Nested values (arrays, maps, structs) as JSON, for a `jsonb` column.
fn json_of(schema: Option<&Schema>, value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Int8(v) => (*v).into(),
        Value::Int16(v) => (*v).into(),
        Value::Int32(v) => (*v).into(),
        Value::Int64(v) => (*v).into(),
        Value::Float32(v) => serde_json::Number::from_f64((*v).into()).map_or(J::Null, J::Number),
        Value::Float64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Array(items) => {
            let element = schema.and_then(|s| s.value.as_deref());
            J::Array(items.iter().map(|v| json_of(element, v)).collect())
        }
        Value::Map(entries) => {
            let element = schema.and_then(|s| s.value.as_deref());
            J::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = k.as_str().map_or_else(|| crate::converter::display(k), str::to_string);
                        (key, json_of(element, v))
                    })
                    .collect(),
            )
        }
        Value::Struct(fields) => J::Object(
            fields
                .iter()
                .map(|(name, v)| {
                    let field = schema.and_then(|s| s.field(name)).map(|f| &f.schema);
                    (name.clone(), json_of(field, v))
                })
                .collect(),
        ),
    }
}

/// The column type `auto.create`/`auto.evolve` give a field.
fn sql_type(schema: &Schema) -> &'static str {
    match schema.name.as_deref() {
        Some(logical::DECIMAL) => return "NUMERIC",
        Some(logical::DATE) => return "DATE",
        Some(logical::TIME) => return "TIME",
        Some(logical::TIMESTAMP) => return "TIMESTAMP",
        _ => {}
    }
    match schema.ty {
        SchemaType::Int8 | SchemaType::Int16 => "SMALLINT",
        SchemaType::Int32 => "INT",
        SchemaType::Int64 => "BIGINT",
        SchemaType::Float32 => "REAL",
        SchemaType::Float64 => "DOUBLE PRECISION",
        SchemaType::Boolean => "BOOLEAN",
        SchemaType::String => "TEXT",
        SchemaType::Bytes => "BYTEA",
        SchemaType::Array | SchemaType::Map | SchemaType::Struct => "JSONB",
    }
}

/// A column definition for CREATE TABLE / ADD COLUMN.
fn column_definition(column: &Column, table: &str, primary: bool) -> Result<String> {
    let Some(schema) = column.schema.as_deref() else {
        return Err(ConnectError::data(format!(
            "cannot create column {} of table {table} for schemaless data: create the table first, or use a \
             converter with schemas (JsonConverter schemas.enable=true, Avro, ...)",
            column.name
        )));
    };
    let mut def = format!("{} {}", quote_ident(&column.name), sql_type(schema));
    if let Some(default) = &schema.default {
        if let Some(text) = sql_text(Some(schema), default)? {
            def.push_str(&format!(" DEFAULT {}", quote_literal(&text)));
        }
    }
    if primary || !schema.optional {
        def.push_str(" NOT NULL");
    }
    Ok(def)
}

/// `($1::text::type1, $2::text::type2), (...)` for `rows` rows of columns of `types`.
fn values_list(types: &[String], rows: usize) -> String {
    let n = types.len();
    (0..rows)
        .map(|r| {
            let cols: Vec<String> =
                types.iter().enumerate().map(|(i, t)| format!("${}::text::{t}", r * n + i + 1)).collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table's columns, as they are in the database.
struct TableInfo {
    quoted: String,
    /// Name and type (without modifiers: values are cast to it, the column's
    /// modifiers then check them).
    columns: Vec<(String, String)>,
}

impl TableInfo {
    fn column_type(&self, name: &str) -> Option<&str> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str())
    }
}

async fn read_table(tx: &Transaction<'_>, name: &str) -> Result<Option<TableInfo>> {
    let quoted = quote_table(name);
    let rows = tx
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&quoted],
        )
        .await
        .map_err(|e| pg_error(&format!("reading the columns of table {name}"), &e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(TableInfo { quoted, columns: rows.iter().map(|r| (r.get(0), r.get(1))).collect() }))
}

#[derive(Default)]
pub(super) struct JdbcSinkTask {
    settings: Option<Settings>,
    client: Option<Client>,
    tables: HashMap<String, TableInfo>,
    statements: HashMap<String, Statement>,
}

/// What one `put` works with inside its transaction.
struct Writer<'t, 's> {
    tx: &'t Transaction<'t>,
    settings: &'s Settings,
    tables: &'s mut HashMap<String, TableInfo>,
    statements: &'s mut HashMap<String, Statement>,
}

impl Writer<'_, '_> {
    async fn statement(&mut self, sql: String) -> Result<Statement> {
        if let Some(s) = self.statements.get(&sql) {
            return Ok(s.clone());
        }
        let statement = self.tx.prepare(&sql).await.map_err(|e| pg_error("preparing a statement", &e))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The table of `row`, created or given new columns as the settings allow.
    async fn table_for(&mut self, row: &Row<'_>) -> Result<Option<&TableInfo>> {
        let s = self.settings;
        if !self.tables.contains_key(&row.table) {
            let info = match read_table(self.tx, &row.table).await? {
                Some(info) => info,
                None if row.delete => return Ok(None),
                None if s.auto_create => {
                    let mut defs = Vec::new();
                    for (i, c) in row.columns.iter().enumerate() {
                        defs.push(column_definition(c, &row.table, i < row.pk_len)?);
                    }
                    if row.pk_len > 0 {
                        let pk: Vec<String> = row.columns[..row.pk_len].iter().map(|c| quote_ident(&c.name)).collect();
                        defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
                    }
                    let sql = format!("CREATE TABLE {} ({})", quote_table(&row.table), defs.join(", "));
                    tracing::info!("JDBC sink: {sql}");
                    self.tx.batch_execute(&sql).await.map_err(|e| pg_error("DDL: CREATE TABLE", &e))?;
                    read_table(self.tx, &row.table).await?.ok_or_else(|| {
                        ConnectError::fatal(format!("table {} not found after CREATE TABLE", row.table))
                    })?
                }
                None => {
                    return Err(ConnectError::data(format!(
                        "Table {} is missing and auto-creation is disabled (auto.create=false)",
                        row.table
                    )))
                }
            };
            self.tables.insert(row.table.clone(), info);
        }
        let Some(info) = self.tables.get(&row.table) else { return Ok(None) };
        let missing: Vec<&Column> = row.columns.iter().filter(|c| info.column_type(&c.name).is_none()).collect();
        if missing.is_empty() {
            return Ok(self.tables.get(&row.table));
        }
        let names = missing.iter().map(|c| c.name.to_string()).collect::<Vec<_>>().join(", ");
        if !s.auto_evolve || row.delete {
            return Err(ConnectError::data(format!(
                "Table {} is missing fields ({names}) and auto-evolution is disabled (auto.evolve=false)",
                row.table
            )));
        }
        let mut adds = Vec::new();
        for c in missing {
            let schema = c.schema.as_deref();
            if schema.is_some_and(|s| !s.optional && s.default.is_none()) {
                return Err(ConnectError::data(format!(
                    "Cannot ALTER TABLE {} to add missing field {}, as the field is not optional and does not \
                     have a default value",
                    row.table, c.name
                )));
            }
            adds.push(format!("ADD COLUMN {}", column_definition(c, &row.table, false)?));
        }
        let sql = format!("ALTER TABLE {} {}", info.quoted, adds.join(", "));
        tracing::info!("JDBC sink: {sql}");
        self.tx.batch_execute(&sql).await.map_err(|e| pg_error("DDL: ALTER TABLE", &e))?;
        let info = read_table(self.tx, &row.table)
            .await?
            .ok_or_else(|| ConnectError::fatal(format!("table {} not found after ALTER TABLE", row.table)))?;
        self.tables.insert(row.table.clone(), info);
        Ok(self.tables.get(&row.table))
    }

    /// Writes rows of one table and one shape.
    async fn write(&mut self, rows: &[Row<'_>]) -> Result<()> {
        let Some(first) = rows.first() else { return Ok(()) };
        let Some(info) = self.table_for(first).await? else { return Ok(()) };
        let quoted = info.quoted.clone();
        let names: Vec<String> = first.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let casts: Vec<String> =
            first.columns.iter().map(|c| info.column_type(&c.name).unwrap_or("text").to_string()).collect();
        let pk_len = first.pk_len;
        let per_statement = (PARAMS_MAX / names.len().max(1)).clamp(1, self.settings.batch_size);
        if first.delete {
            let pk = names[..pk_len].join(", ");
            for chunk in rows.chunks(per_statement) {
                let values = values_list(&casts[..pk_len], chunk.len());
                let sql = format!("DELETE FROM {quoted} WHERE ({pk}) IN (VALUES {values})");
                let params: Vec<&Option<String>> =
                    chunk.iter().flat_map(|r| r.columns[..pk_len].iter().map(|c| &c.text)).collect();
                self.execute(sql, &params).await?;
            }
            return Ok(());
        }
        match self.settings.insert_mode {
            InsertMode::Insert => self.copy(&quoted, &names, rows).await,
            InsertMode::Upsert => {
                let updates: Vec<String> = names[pk_len..].iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
                let conflict = if updates.is_empty() {
                    format!("ON CONFLICT ({}) DO NOTHING", names[..pk_len].join(", "))
                } else {
                    format!("ON CONFLICT ({}) DO UPDATE SET {}", names[..pk_len].join(", "), updates.join(", "))
                };
                for chunk in rows.chunks(per_statement) {
                    // one statement may not change a row twice: the last record of a key wins
                    let mut last: HashMap<Vec<&Option<String>>, usize> = HashMap::new();
                    for (i, r) in chunk.iter().enumerate() {
                        last.insert(r.columns[..pk_len].iter().map(|c| &c.text).collect(), i);
                    }
                    let mut keep: Vec<usize> = last.into_values().collect();
                    keep.sort_unstable();
                    let sql = format!(
                        "INSERT INTO {quoted} ({}) VALUES {} {conflict}",
                        names.join(", "),
                        values_list(&casts, keep.len())
                    );
                    let params: Vec<&Option<String>> =
                        keep.iter().flat_map(|&i| chunk[i].columns.iter().map(|c| &c.text)).collect();
                    self.execute(sql, &params).await?;
                }
                Ok(())
            }
            InsertMode::Update => {
                let sets: Vec<String> = names[pk_len..]
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n} = ${}::text::{}", i + 1, casts[pk_len + i]))
                    .collect();
                let n_sets = sets.len();
                let wheres: Vec<String> = names[..pk_len]
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n} = ${}::text::{}", n_sets + i + 1, casts[i]))
                    .collect();
                if sets.is_empty() {
                    return Ok(());
                }
                let sql = format!("UPDATE {quoted} SET {} WHERE {}", sets.join(", "), wheres.join(" AND "));
                for r in rows {
                    let params: Vec<&Option<String>> =
                        r.columns[pk_len..].iter().chain(&r.columns[..pk_len]).map(|c| &c.text).collect();
                    self.execute(sql.clone(), &params).await?;
                }
                Ok(())
            }
        }
    }

    async fn execute(&mut self, sql: String, params: &[&Option<String>]) -> Result<()> {
        let statement = self.statement(sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| *p as &(dyn ToSql + Sync)).collect();
        self.tx.execute(&statement, &params).await.map_err(|e| pg_error("writing rows", &e))?;
        Ok(())
    }

    /// Inserts rows with COPY (text format).
    async fn copy(&mut self, quoted: &str, names: &[String], rows: &[Row<'_>]) -> Result<()> {
        let sql = format!("COPY {quoted} ({}) FROM STDIN", names.join(", "));
        let sink = self.tx.copy_in::<_, Bytes>(&sql).await.map_err(|e| pg_error("starting COPY", &e))?;
        let mut sink = Box::pin(sink);
        let mut buf = Vec::with_capacity(COPY_CHUNK_BYTES);
        for row in rows {
            for (i, c) in row.columns.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                match &c.text {
                    None => buf.extend_from_slice(b"\\N"),
                    Some(text) => {
                        for &b in text.as_bytes() {
                            match b {
                                b'\\' => buf.extend_from_slice(b"\\\\"),
                                b'\t' => buf.extend_from_slice(b"\\t"),
                                b'\n' => buf.extend_from_slice(b"\\n"),
                                b'\r' => buf.extend_from_slice(b"\\r"),
                                b => buf.push(b),
                            }
                        }
                    }
                }
            }
            buf.push(b'\n');
            if buf.len() >= COPY_CHUNK_BYTES {
                let chunk = Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(COPY_CHUNK_BYTES)));
                sink.send(chunk).await.map_err(|e| pg_error("COPY", &e))?;
            }
        }
        if !buf.is_empty() {
            sink.send(Bytes::from(buf)).await.map_err(|e| pg_error("COPY", &e))?;
        }
        sink.as_mut().finish().await.map_err(|e| pg_error("COPY", &e))?;
        Ok(())
    }
}

impl JdbcSinkTask {
    async fn write_all(&mut self, rows: &[Row<'_>]) -> Result<()> {
        let settings =
            self.settings.as_ref().ok_or_else(|| ConnectError::fatal("the JDBC sink task was not started"))?;
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = Some(connect(&settings.pg, &settings.timezone).await?);
        }
        let Some(client) = self.client.as_mut() else { return Err(ConnectError::retriable("not connected")) };
        let tx = client.transaction().await.map_err(|e| pg_error("BEGIN", &e))?;
        let mut writer = Writer { tx: &tx, settings, tables: &mut self.tables, statements: &mut self.statements };
        let mut start = 0;
        while start < rows.len() {
            let end = rows[start..].iter().position(|r| !r.same_shape(&rows[start])).map_or(rows.len(), |n| start + n);
            writer.write(&rows[start..end]).await?;
            start = end;
        }
        tx.commit().await.map_err(|e| pg_error("COMMIT", &e))
    }
}

#[async_trait]
impl SinkTask for JdbcSinkTask {
    async fn start(&mut self, props: &Props, ctx: SinkTaskContext) -> Result<()> {
        let settings = settings(props)?;
        match connect(&settings.pg, &settings.timezone).await {
            Ok(client) => self.client = Some(client),
            Err(e) if e.is_retriable() => {
                tracing::warn!("JDBC sink {}-{}: {e}; connecting again at the first put", ctx.connector, ctx.task)
            }
            Err(e) => return Err(e),
        }
        self.settings = Some(settings);
        Ok(())
    }

    async fn put(&mut self, records: Vec<Record>) -> Result<()> {
        let settings =
            self.settings.as_ref().ok_or_else(|| ConnectError::fatal("the JDBC sink task was not started"))?;
        let mut rows = Vec::with_capacity(records.len());
        for record in &records {
            if let Some(row) = settings.row(record)? {
                rows.push(row);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let result = self.write_all(&rows).await;
        if result.is_err() {
            // the transaction rolled back, with any table it created or changed
            self.tables.clear();
            self.statements.clear();
        }
        result
    }

    async fn flush(&mut self) -> Result<()> {
        // every put committed its transaction
        Ok(())
    }

    async fn stop(&mut self) {
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_postgres_reads_them() {
        let ts = Schema::of(SchemaType::Int64).named(logical::TIMESTAMP);
        assert_eq!(
            sql_text(Some(&ts), &Value::Int64(1_700_000_000_123)).unwrap().unwrap(),
            "2023-11-14 22:13:20.123+00"
        );
        assert_eq!(sql_text(Some(&ts), &Value::Int64(-1)).unwrap().unwrap(), "1969-12-31 23:59:59.999+00");
        let date = Schema::of(SchemaType::Int32).named(logical::DATE);
        assert_eq!(sql_text(Some(&date), &Value::Int32(19_723)).unwrap().unwrap(), "2024-01-01");
        let mut dec = Schema::of(SchemaType::Bytes).named(logical::DECIMAL);
        dec.parameters.insert("scale".into(), "2".into());
        assert_eq!(sql_text(Some(&dec), &Value::Bytes(vec![0x80])).unwrap().unwrap(), "-1.28");
        assert_eq!(sql_text(None, &Value::Bytes(vec![1, 0xab])).unwrap().unwrap(), "\\x01ab");
        assert_eq!(sql_text(None, &Value::Float64(f64::NAN)).unwrap().unwrap(), "NaN");
        assert_eq!(sql_text(None, &Value::Null).unwrap(), None);
        let nested = Value::Map(vec![(Value::String("a".into()), Value::Array(vec![Value::Int32(1)]))]);
        assert_eq!(sql_text(None, &nested).unwrap().unwrap(), r#"{"a":[1]}"#);
    }

    #[test]
    fn primitive_values_are_refused_with_the_record_named() {
        let mut props = Props::new();
        props.insert("connection.url".into(), "jdbc:postgresql://localhost/db".into());
        let s = settings(&props).unwrap();
        let mut record =
            Record::source("t", Default::default(), Default::default(), None, Value::String("line".into()));
        record.kafka_offset = Some(4);
        let err = s.row(&record).err().unwrap();
        assert!(matches!(err, ConnectError::Data(ref m) if m.contains("t--1@4")), "{err}");
    }
}
