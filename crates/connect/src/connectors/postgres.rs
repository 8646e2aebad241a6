//! The PostgreSQL connectors, under the class names of Confluent's JDBC
//! connectors (`io.confluent.connect.jdbc.JdbcSourceConnector`,
//! `JdbcSinkConnector`) and with their keys, on `tokio-postgres`:
//!
//! - the source ([`source`]) copies table rows to topics (`topic.prefix` +
//!   table), finding new rows by an incrementing column, a timestamp column,
//!   both, or copying whole tables (`mode=bulk`), and resumes from its
//!   committed offsets (`{"incrementing": N}`, `{"timestamp": ms,
//!   "timestamp_nanos": ns}`) under the partition
//!   `{"protocol":"1","table":"db.schema.table"}`;
//! - the sink ([`sink`]) writes Struct records to tables (`insert.mode`
//!   insert / upsert / update, `pk.mode`, `auto.create`, `auto.evolve`,
//!   `delete.enabled`), one transaction per `put`, so nothing is left for
//!   `flush`.
//!
//! This module holds what both share: the plugins and their configuration,
//! the connection (`connection.url` as `jdbc:postgresql://`, `postgresql://`
//! or `postgres://`), identifier quoting, error classes, and Connect's
//! Decimal bytes as decimal text and back.

mod sink;
mod source;

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::{Client, NoTls};

use crate::config::{ConfigDef, ConfigErrors, ConfigKey, ConfigType, Props, PropsExt};
use crate::connector::{ConnectorKind, Plugin, SinkTask, SourceTask};
pub(crate) use crate::data::calendar::civil_from_days;
use crate::error::{ConnectError, Result};

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub const MODES: &[&str] = &["bulk", "incrementing", "timestamp", "timestamp+incrementing"];
pub const INSERT_MODES: &[&str] = &["insert", "upsert", "update"];
pub const PK_MODES: &[&str] = &["none", "kafka", "record_key", "record_value"];

pub struct JdbcSource;
pub struct JdbcSink;

fn connection_keys() -> Vec<ConfigKey> {
    vec![
        ConfigKey::required(
            "connection.url",
            ConfigType::String,
            "JDBC connection URL: jdbc:postgresql://host:port/database (or postgresql://, postgres://).",
        )
        .group("Database"),
        ConfigKey::optional("connection.user", ConfigType::String, "", "JDBC connection user.").group("Database"),
        ConfigKey::optional("connection.password", ConfigType::Password, "", "JDBC connection password.")
            .group("Database"),
        ConfigKey::optional(
            "db.timezone",
            ConfigType::String,
            "UTC",
            "Name of the time zone for timestamps without a time zone.",
        )
        .group("Database"),
    ]
}

#[async_trait]
impl Plugin for JdbcSource {
    fn class(&self) -> &'static str {
        "io.confluent.connect.jdbc.JdbcSourceConnector"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["PostgresSource", "PostgresSourceConnector"]
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }
    fn config_def(&self) -> ConfigDef {
        let mut keys = connection_keys();
        keys.extend([
            ConfigKey::optional("table.whitelist", ConfigType::List, "", "Tables to copy (schema.table or table).")
                .group("Database"),
            ConfigKey::optional("table.include.list", ConfigType::List, "", "Tables to copy (as table.whitelist).")
                .group("Database"),
            ConfigKey::optional(
                "table.blacklist",
                ConfigType::List,
                "",
                "Tables not to copy, when no whitelist names the tables.",
            )
            .group("Database"),
            ConfigKey::optional("table.exclude.list", ConfigType::List, "", "Tables not to copy (as table.blacklist).")
                .group("Database"),
            ConfigKey::optional(
                "schema.pattern",
                ConfigType::String,
                "",
                "The schema to list tables in when no whitelist names them (default: every non-system schema).",
            )
            .group("Database"),
            ConfigKey::required("mode", ConfigType::String, "How new rows are found each time a table is polled.")
                .group("Mode")
                .one_of(MODES),
            ConfigKey::optional(
                "incrementing.column.name",
                ConfigType::String,
                "",
                "A strictly increasing integer column, to find new rows.",
            )
            .group("Mode"),
            ConfigKey::optional(
                "timestamp.column.name",
                ConfigType::String,
                "",
                "A timestamp column, set when a row is inserted or changed, to find new and changed rows.",
            )
            .group("Mode"),
            ConfigKey::optional(
                "timestamp.initial",
                ConfigType::String,
                "",
                "Epoch milliseconds to start timestamp queries at (-1: now; empty: every row).",
            )
            .group("Mode"),
            ConfigKey::optional(
                "validate.non.null",
                ConfigType::Boolean,
                "true",
                "Refuse incrementing and timestamp columns that may be NULL.",
            )
            .group("Mode"),
            ConfigKey::required("topic.prefix", ConfigType::String, "Prefix of the topic names (prefix + table).")
                .group("Connector"),
            ConfigKey::optional("poll.interval.ms", ConfigType::Int, "5000", "How often each table is polled.")
                .group("Connector"),
            ConfigKey::optional("batch.max.rows", ConfigType::Int, "100", "The most rows one poll returns.")
                .group("Connector"),
            ConfigKey::optional(
                "timestamp.delay.interval.ms",
                ConfigType::Long,
                "0",
                "How long after its timestamp a row is copied (transactions still open may write older timestamps).",
            )
            .group("Connector"),
        ]);
        ConfigDef::new(keys)
    }
    async fn validate(&self, props: &Props) -> ConfigErrors {
        let mut errors = self.config_def().validate(props);
        let mode = props.str_or("mode", "").trim().to_ascii_lowercase();
        let has = |key: &str| !props.str_or(key, "").trim().is_empty();
        if mode.contains("incrementing") && !has("incrementing.column.name") {
            errors.add("incrementing.column.name", format!("mode {mode} needs incrementing.column.name"));
        }
        if mode.contains("timestamp") && !has("timestamp.column.name") {
            errors.add("timestamp.column.name", format!("mode {mode} needs timestamp.column.name"));
        }
        if !source::included_tables(props).is_empty() && !source::excluded_tables(props).is_empty() {
            errors.add("table.blacklist", "table.whitelist and table.blacklist cannot both be set");
        }
        if let (true, Err(e)) = (props.contains_key("connection.url"), pg_config(props)) {
            errors.add("connection.url", e.to_string());
        }
        errors
    }
    async fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        source::task_configs(props, max_tasks).await
    }
    fn source_task(&self) -> Option<Box<dyn SourceTask>> {
        Some(Box::new(source::JdbcSourceTask::default()))
    }
    fn exactly_once_source(&self) -> bool {
        true
    }
}

#[async_trait]
impl Plugin for JdbcSink {
    fn class(&self) -> &'static str {
        "io.confluent.connect.jdbc.JdbcSinkConnector"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["PostgresSink", "PostgresSinkConnector"]
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_def(&self) -> ConfigDef {
        let mut keys = connection_keys();
        keys.extend([
            ConfigKey::optional(
                "insert.mode",
                ConfigType::String,
                "insert",
                "insert, upsert (by the primary key) or update.",
            )
            .group("Writes")
            .one_of(INSERT_MODES),
            ConfigKey::optional("batch.size", ConfigType::Int, "3000", "The most rows one statement writes.")
                .group("Writes"),
            ConfigKey::optional(
                "delete.enabled",
                ConfigType::Boolean,
                "false",
                "Tombstones delete the row of their key (needs pk.mode=record_key).",
            )
            .group("Writes"),
            ConfigKey::optional(
                "table.name.format",
                ConfigType::String,
                "${topic}",
                "The table of a record; ${topic} is its topic.",
            )
            .group("Data Mapping"),
            ConfigKey::optional("pk.mode", ConfigType::String, "none", "Where the primary key comes from.")
                .group("Data Mapping")
                .one_of(PK_MODES),
            ConfigKey::optional(
                "pk.fields",
                ConfigType::List,
                "",
                "The primary key fields (record_key / record_value: empty means all of the struct's fields).",
            )
            .group("Data Mapping"),
            ConfigKey::optional(
                "fields.whitelist",
                ConfigType::List,
                "",
                "The value fields written (empty: all of them).",
            )
            .group("Data Mapping"),
            ConfigKey::optional(
                "auto.create",
                ConfigType::Boolean,
                "false",
                "Create a missing table from the record's schema (CREATE TABLE).",
            )
            .group("DDL Support"),
            ConfigKey::optional(
                "auto.evolve",
                ConfigType::Boolean,
                "false",
                "Add columns for new optional fields (ALTER TABLE ADD COLUMN).",
            )
            .group("DDL Support"),
        ]);
        ConfigDef::new(keys)
    }
    async fn validate(&self, props: &Props) -> ConfigErrors {
        let mut errors = self.config_def().validate(props);
        let insert_mode = props.str_or("insert.mode", "insert").trim().to_ascii_lowercase();
        let pk_mode = props.str_or("pk.mode", "none").trim().to_ascii_lowercase();
        if insert_mode != "insert" && pk_mode == "none" {
            errors.add("pk.mode", format!("insert.mode={insert_mode} needs a primary key: set pk.mode"));
        }
        if props.bool_or("delete.enabled", false).unwrap_or(false) && pk_mode != "record_key" {
            errors.add("delete.enabled", "Deletes are only supported for pk.mode record_key");
        }
        if let (true, Err(e)) = (props.contains_key("connection.url"), pg_config(props)) {
            errors.add("connection.url", e.to_string());
        }
        errors
    }
    async fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone(); max_tasks.max(1)])
    }
    fn sink_task(&self) -> Option<Box<dyn SinkTask>> {
        Some(Box::new(sink::JdbcSinkTask::default()))
    }
}

/// The connection settings of `connection.url` (`jdbc:postgresql://`,
/// `postgresql://` or `postgres://` `[user[:password]@]host[:port][,host..]/db?params`),
/// `connection.user` and `connection.password` (which win over the URL's).
pub(crate) fn pg_config(props: &Props) -> Result<tokio_postgres::Config> {
    let url = props.get("connection.url").map(|s| s.trim()).unwrap_or("");
    let bad = |why: &str| ConnectError::config(format!("connection.url {url}: {why}"));
    let rest = url.strip_prefix("jdbc:").unwrap_or(url);
    let rest = rest
        .strip_prefix("postgresql://")
        .or_else(|| rest.strip_prefix("postgres://"))
        .ok_or_else(|| bad("expected jdbc:postgresql://host:port/database (or postgresql:// or postgres://)"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut cfg = tokio_postgres::Config::new();
    cfg.connect_timeout(CONNECT_TIMEOUT);
    cfg.application_name("vltava-connect");
    if let Some(info) = userinfo {
        let (user, password) = info.split_once(':').unwrap_or((info, ""));
        cfg.user(percent_decode(user));
        if !password.is_empty() {
            cfg.password(percent_decode(password));
        }
    }
    let hosts = if hosts.is_empty() { "localhost" } else { hosts };
    for host in hosts.split(',') {
        let (name, port) = if let Some(v6) = host.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            (addr, after.strip_prefix(':'))
        } else {
            match host.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad(&format!("bad port {p}")))?,
            None => 5432,
        };
        cfg.host(if name.is_empty() { "localhost" } else { name });
        cfg.port(port);
    }
    let db = percent_decode(db);
    if !db.is_empty() {
        cfg.dbname(db);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "user" => {
                cfg.user(value);
            }
            "password" => {
                cfg.password(value);
            }
            "dbname" => {
                cfg.dbname(value);
            }
            "options" => {
                cfg.options(value);
            }
            "currentSchema" => {
                cfg.options(format!("-c search_path={value}"));
            }
            "ApplicationName" | "application_name" => {
                cfg.application_name(value);
            }
            "connectTimeout" | "connect_timeout" => {
                let secs: u64 = value.parse().map_err(|_| bad(&format!("bad {key} {value}")))?;
                if secs > 0 {
                    cfg.connect_timeout(Duration::from_secs(secs));
                }
            }
            // other JDBC driver settings (ssl, loggerLevel, ...) have no meaning here
            _ => {}
        }
    }
    if let Some(user) = props.get("connection.user").filter(|u| !u.is_empty()) {
        cfg.user(user.as_str());
    }
    if let Some(password) = props.get("connection.password").filter(|p| !p.is_empty()) {
        cfg.password(password.as_str());
    }
    if cfg.get_user().is_none() {
        cfg.user("postgres");
    }
    Ok(cfg)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection, its driver task spawned, the session in `db.timezone`.
pub(crate) async fn connect(cfg: &tokio_postgres::Config, timezone: &str) -> Result<Client> {
    let (client, connection) = cfg.connect(NoTls).await.map_err(|e| pg_error("connecting to PostgreSQL", &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("PostgreSQL connection: {}", error_text(&e));
        }
    });
    client
        .batch_execute(&format!("SET TIME ZONE {}", quote_literal(timezone)))
        .await
        .map_err(|e| pg_error("setting db.timezone", &e))?;
    Ok(client)
}

/// A driver error with the server's message, detail and hint.
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Connect's error class of a driver error: the connection or the server's
/// state (retried) against the data (a bad record) against the rest.
pub(crate) fn pg_error(context: &str, e: &tokio_postgres::Error) -> ConnectError {
    let text = format!("{context}: {}", error_text(e));
    let Some(code) = e.code() else { return ConnectError::retriable(text) };
    match code.code().get(..2).unwrap_or("") {
        // connection, transaction rollback (serialization, deadlock), resources, operator intervention, system
        "08" | "40" | "53" | "57" | "58" => ConnectError::retriable(text),
        // another task created the same table or column at the same moment: try again
        _ if matches!(code.code(), "42P07" | "42701" | "23505") && context.starts_with("DDL") => {
            ConnectError::retriable(text)
        }
        // data exception, integrity constraint, syntax or undefined object (a record's field or type)
        "22" | "23" | "42" => ConnectError::data(text),
        _ => ConnectError::fatal(text),
    }
}

/// `"name"`, quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, quotes doubled.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A table name as configured (`table` or `schema.table`), quoted.
pub(crate) fn quote_table(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(name),
    }
}

/// Two's complement negation of a big-endian number: invert, add one.
fn negate(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        *b = !*b;
    }
    for b in bytes.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
}

/// Connect Decimal bytes (big-endian two's complement unscaled) at `scale`
/// as decimal text (`-12.345`).
pub(crate) fn decimal_text(bytes: &[u8], scale: i32) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        negate(&mut magnitude);
    }
    // repeated division by ten gives the digits, least significant first
    let mut digits = Vec::new();
    while magnitude.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in magnitude.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    let mut text = String::from_utf8_lossy(&digits).into_owned();
    if scale > 0 {
        let scale = scale as usize;
        if text.len() <= scale {
            text = format!("{}{text}", "0".repeat(scale + 1 - text.len()));
        }
        text.insert(text.len() - scale, '.');
    } else if scale < 0 && text != "0" {
        text.push_str(&"0".repeat(scale.unsigned_abs() as usize));
    }
    if negative && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        text.insert(0, '-');
    }
    text
}

/// Decimal text (`-12.3`, as PostgreSQL writes a numeric) as Connect Decimal
/// bytes at `scale` (digits past `scale` are cut). `None` for text that is
/// no finite number (`NaN`, `Infinity`).
pub(crate) fn decimal_bytes(text: &str, scale: u32) -> Option<Vec<u8>> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = scale as usize;
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(scale).collect();
    // big-endian magnitude, with a leading zero byte for the sign bit
    let mut magnitude: Vec<u8> = vec![0];
    for d in int.bytes().chain(frac.bytes()) {
        let mut carry = u32::from(d - b'0');
        for b in magnitude.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry > 0 {
            magnitude.insert(0, carry as u8);
        }
        if magnitude[0] & 0x80 != 0 {
            magnitude.insert(0, 0);
        }
    }
    if negative {
        negate(&mut magnitude);
    }
    // the shortest two's complement form, as Java's BigInteger.toByteArray
    while magnitude.len() > 1
        && ((magnitude[0] == 0 && magnitude[1] & 0x80 == 0) || (magnitude[0] == 0xff && magnitude[1] & 0x80 != 0))
    {
        magnitude.remove(0);
    }
    Some(magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn connection_urls_of_jdbc_and_libpq_forms_parse() {
        let cfg = pg_config(&props(&[
            ("connection.url", "jdbc:postgresql://127.0.0.1:5433/shop?user=u1&ssl=false"),
            ("connection.password", "pw"),
        ]))
        .unwrap();
        assert_eq!(cfg.get_ports(), &[5433]);
        assert_eq!(cfg.get_dbname(), Some("shop"));
        assert_eq!(cfg.get_user(), Some("u1"));
        assert_eq!(cfg.get_password(), Some(&b"pw"[..]));
        let cfg =
            pg_config(&props(&[("connection.url", "postgres://bob:s%40cret@db.example/app"), ("connection.user", "")]))
                .unwrap();
        assert_eq!(cfg.get_ports(), &[5432]);
        assert_eq!(cfg.get_user(), Some("bob"));
        assert_eq!(cfg.get_password(), Some(&b"s@cret"[..]));
        assert!(pg_config(&props(&[("connection.url", "jdbc:mysql://x/y")])).is_err());
        assert!(pg_config(&props(&[("connection.url", "postgresql://h:notaport/y")])).is_err());
    }

    #[test]
    fn decimals_round_trip_as_java_big_integers() {
        for (text, scale, bytes) in [
            ("0", 0, vec![0u8]),
            ("1.00", 2, vec![100]),
            ("1.28", 2, vec![0, 128]),
            ("-1.28", 2, vec![0x80]),
            ("-1.29", 2, vec![0xff, 0x7f]),
            ("-0.01", 2, vec![0xff]),
            (
                "123456789012345678901234567890.5",
                1,
                vec![0x0f, 0x95, 0x1a, 0x9f, 0xa3, 0xa2, 0x86, 0xc9, 0x4f, 0x0e, 0x76, 0x6c, 0x39],
            ),
        ] {
            let b = decimal_bytes(text, scale).unwrap();
            assert_eq!(b, bytes, "{text}");
            assert_eq!(decimal_text(&b, scale as i32), text);
        }
        assert_eq!(decimal_bytes("NaN", 2), None);
        assert_eq!(decimal_bytes("2.5", 3).map(|b| decimal_text(&b, 3)), Some("2.500".into()));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
