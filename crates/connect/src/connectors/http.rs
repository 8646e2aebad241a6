//! `io.confluent.connect.http.HttpSinkConnector` (alias `HttpSink`): record
//! values sent to an HTTP API in batches of `batch.max.size`, with
//! Confluent's configuration names. A batch is a JSON array of the values
//! (`batch.json.as.array=true`) or the values joined by `batch.separator`
//! between `batch.prefix` and `batch.suffix`. Failed requests (connection
//! errors, timeouts and the `retry.on.status.codes`) are retried
//! `max.retries` times with an exponential backoff from `retry.backoff.ms`;
//! then `behavior.on.error` decides: `fail` fails the task, `log`/`ignore`
//! drop the batch.
//!
//! `put` sends everything it is given before it returns, so `flush` has
//! nothing left to do and the runtime's offset commit follows delivery
//! (at-least-once: a batch is sent again only if the task fails or is
//! restarted after sending it and before the commit).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use crate::config::{ConfigDef, ConfigErrors, ConfigKey, ConfigType, Props, PropsExt};
use crate::connector::{ConnectorKind, Plugin, SinkTask, SinkTaskContext};
use crate::data::{Record, Value};
use crate::error::{ConnectError, Result};

/// The longest wait between two retries of one request, whatever
/// `retry.backoff.ms` and the attempt number make of the exponential
/// backoff (so `put` stays well within the consumer's poll interval).
const RETRY_BACKOFF_MS_MAX: u64 = 30_000;
/// How much of an error answer's body goes into the log or task trace.
const ERROR_BODY_CHARS_MAX: usize = 500;

pub struct HttpSink;

#[async_trait]
impl Plugin for HttpSink {
    fn class(&self) -> &'static str {
        "io.confluent.connect.http.HttpSinkConnector"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["HttpSink"]
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sink
    }
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new(vec![
            ConfigKey::required(
                "http.api.url",
                ConfigType::String,
                "HTTP API URL the records are sent to; ${topic} and ${key} are replaced by a record's.",
            )
            .group("Connection"),
            ConfigKey::optional("request.method", ConfigType::String, "POST", "HTTP request method.")
                .one_of(&["POST", "PUT", "PATCH"])
                .group("Connection"),
            ConfigKey::optional(
                "headers",
                ConfigType::String,
                "",
                "HTTP request headers, `Name:Value` separated by header.separator.",
            )
            .group("Connection"),
            ConfigKey::optional("header.separator", ConfigType::String, "|", "Separator of the headers property.")
                .group("Connection"),
            ConfigKey::optional(
                "http.connect.timeout.ms",
                ConfigType::Int,
                "30000",
                "Time to wait for a connection, in milliseconds.",
            )
            .group("Connection"),
            ConfigKey::optional(
                "http.request.timeout.ms",
                ConfigType::Int,
                "30000",
                "Time to wait for a request's answer, in milliseconds.",
            )
            .group("Connection"),
            ConfigKey::optional("auth.type", ConfigType::String, "NONE", "Authentication: NONE or BASIC.")
                .one_of(&["NONE", "BASIC"])
                .group("Authentication"),
            ConfigKey::optional("connection.user", ConfigType::String, "", "The username for BASIC authentication.")
                .group("Authentication"),
            ConfigKey::optional(
                "connection.password",
                ConfigType::Password,
                "",
                "The password for BASIC authentication.",
            )
            .group("Authentication"),
            ConfigKey::optional(
                "batch.max.size",
                ConfigType::Int,
                "1",
                "The number of records accumulated in a batch before the HTTP API is invoked.",
            )
            .group("Batching"),
            ConfigKey::optional(
                "batch.json.as.array",
                ConfigType::Boolean,
                "false",
                "Send a batch as a JSON array of the records' values.",
            )
            .group("Batching"),
            ConfigKey::optional("batch.prefix", ConfigType::String, "", "Prefix added to a batch.").group("Batching"),
            ConfigKey::optional("batch.suffix", ConfigType::String, "", "Suffix added to a batch.").group("Batching"),
            ConfigKey::optional("batch.separator", ConfigType::String, ",", "Separator of the records in a batch.")
                .group("Batching"),
            ConfigKey::optional(
                "request.body.format",
                ConfigType::String,
                "string",
                "How values are written: string (strings as they are) or json (strings holding JSON embedded as JSON).",
            )
            .one_of(&["string", "json"])
            .group("Batching"),
            ConfigKey::optional(
                "max.retries",
                ConfigType::Int,
                "10",
                "The maximum number of times to retry a request before behavior.on.error applies.",
            )
            .group("Retries"),
            ConfigKey::optional(
                "retry.backoff.ms",
                ConfigType::Int,
                "3000",
                "The wait before the first retry, doubled at each further one (at most 30 s).",
            )
            .group("Retries"),
            ConfigKey::optional(
                "retry.on.status.codes",
                ConfigType::String,
                "400-",
                "Status codes to retry: codes or ranges, comma-separated (`400-` is every code from 400).",
            )
            .group("Retries"),
            ConfigKey::optional(
                "behavior.on.error",
                ConfigType::String,
                "fail",
                "What a request that still fails does: fail the task, or log or ignore it and go on.",
            )
            .one_of(&["fail", "log", "ignore"])
            .group("Retries"),
        ])
    }
    async fn validate(&self, props: &Props) -> ConfigErrors {
        let mut errors = self.config_def().validate(props);
        if errors.is_empty() {
            if let Err(e) = HttpSettings::from_props(props) {
                errors.add(e.key, e.message);
            }
        }
        errors
    }
    async fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone(); max_tasks.max(1)])
    }
    fn sink_task(&self) -> Option<Box<dyn SinkTask>> {
        Some(Box::new(HttpSinkTask::default()))
    }
}

/// A bad setting: the key it is about and Connect's kind of message.
#[derive(Debug)]
pub(crate) struct SettingError {
    pub key: &'static str,
    pub message: String,
}

impl SettingError {
    pub(crate) fn new(key: &'static str, message: impl Into<String>) -> SettingError {
        SettingError { key, message: message.into() }
    }
}

impl From<SettingError> for ConnectError {
    fn from(e: SettingError) -> ConnectError {
        ConnectError::config(format!("{}: {}", e.key, e.message))
    }
}

/// What `behavior.on.error` says to do with a batch that still fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnError {
    Fail,
    Log,
    Ignore,
}

/// The task's settings, parsed once.
#[derive(Debug)]
struct HttpSettings {
    /// The URL (placeholders, if any, replaced by `x`: checked at start).
    url: reqwest::Url,
    /// `http.api.url` when it holds `${topic}` or `${key}`.
    url_template: Option<String>,
    method: reqwest::Method,
    headers: HeaderMap,
    basic_auth: Option<(String, String)>,
    batch_max: usize,
    json_array: bool,
    prefix: String,
    suffix: String,
    separator: String,
    json_body: bool,
    max_retries: u32,
    retry_backoff_ms: u64,
    retry_codes: StatusCodes,
    on_error: OnError,
    connect_timeout: Duration,
    request_timeout: Duration,
}

fn int_setting(props: &Props, key: &'static str, default: i64, min: i64) -> Result<i64, SettingError> {
    let v = props.int_or(key, default).map_err(|e| SettingError::new(key, e.to_string()))?;
    if v < min {
        return Err(SettingError::new(
            key,
            format!("Invalid value {v} for configuration {key}: Value must be at least {min}"),
        ));
    }
    Ok(v)
}

impl HttpSettings {
    fn from_props(props: &Props) -> Result<HttpSettings, SettingError> {
        let url_text = props.get("http.api.url").ok_or_else(|| {
            SettingError::new(
                "http.api.url",
                "Missing required configuration \"http.api.url\" which has no default value.",
            )
        })?;
        let url_text = url_text.trim();
        let templated = url_text.contains("${topic}") || url_text.contains("${key}");
        let url = reqwest::Url::parse(&url_text.replace("${topic}", "x").replace("${key}", "x"))
            .map_err(|e| SettingError::new("http.api.url", format!("Invalid URL {url_text}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SettingError::new("http.api.url", format!("Invalid URL {url_text}: not http or https")));
        }
        let method = match props.str_or("request.method", "POST").trim().to_ascii_uppercase().as_str() {
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            other => {
                return Err(SettingError::new(
                    "request.method",
                    format!(
                    "Invalid value {other} for configuration request.method: String must be one of: POST, PUT, PATCH"
                ),
                ))
            }
        };
        let headers = parse_headers(props.str_or("headers", ""), props.str_or("header.separator", "|"))?;
        let basic_auth = match props.str_or("auth.type", "NONE").trim().to_ascii_uppercase().as_str() {
            "NONE" => None,
            "BASIC" => {
                let user = props.str_or("connection.user", "");
                if user.is_empty() {
                    return Err(SettingError::new(
                        "connection.user",
                        "connection.user is required with auth.type=BASIC",
                    ));
                }
                Some((user.to_string(), props.str_or("connection.password", "").to_string()))
            }
            other => {
                return Err(SettingError::new(
                    "auth.type",
                    format!("Invalid value {other} for configuration auth.type: String must be one of: NONE, BASIC"),
                ))
            }
        };
        let json_array = props
            .bool_or("batch.json.as.array", false)
            .map_err(|e| SettingError::new("batch.json.as.array", e.to_string()))?;
        let json_body = match props.str_or("request.body.format", "string").trim().to_ascii_lowercase().as_str() {
            "string" => false,
            "json" => true,
            other => {
                return Err(SettingError::new(
                    "request.body.format",
                    format!(
                    "Invalid value {other} for configuration request.body.format: String must be one of: string, json"
                ),
                ))
            }
        };
        let on_error = match props.str_or("behavior.on.error", "fail").trim().to_ascii_lowercase().as_str() {
            "fail" => OnError::Fail,
            "log" => OnError::Log,
            "ignore" => OnError::Ignore,
            other => {
                return Err(SettingError::new(
                    "behavior.on.error",
                    format!("Invalid value {other} for configuration behavior.on.error: String must be one of: fail, log, ignore"),
                ))
            }
        };
        Ok(HttpSettings {
            url,
            url_template: templated.then(|| url_text.to_string()),
            method,
            headers,
            basic_auth,
            batch_max: int_setting(props, "batch.max.size", 1, 1)? as usize,
            json_array,
            prefix: props.str_or("batch.prefix", "").to_string(),
            suffix: props.str_or("batch.suffix", "").to_string(),
            separator: props.str_or("batch.separator", ",").to_string(),
            json_body,
            max_retries: int_setting(props, "max.retries", 10, 0)?.min(i64::from(u32::MAX)) as u32,
            retry_backoff_ms: int_setting(props, "retry.backoff.ms", 3000, 0)? as u64,
            retry_codes: StatusCodes::parse(props.str_or("retry.on.status.codes", "400-"))
                .map_err(|m| SettingError::new("retry.on.status.codes", m))?,
            on_error,
            connect_timeout: Duration::from_millis(int_setting(props, "http.connect.timeout.ms", 30_000, 1)? as u64),
            request_timeout: Duration::from_millis(int_setting(props, "http.request.timeout.ms", 30_000, 1)? as u64),
        })
    }

    /// The URL a record goes to (`${topic}` and `${key}` replaced, percent-encoded).
    fn url_for(&self, record: &Record) -> Result<reqwest::Url> {
        let Some(template) = &self.url_template else { return Ok(self.url.clone()) };
        let key = match &record.key {
            Value::String(s) => s.clone(),
            other => crate::converter::display(other),
        };
        let text =
            template.replace("${topic}", &percent_encode(&record.topic)).replace("${key}", &percent_encode(&key));
        reqwest::Url::parse(&text).map_err(|e| ConnectError::data(format!("HTTP sink: URL {text}: {e}")))
    }

    /// The wait before retry number `attempt` (0 for the first retry).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64.checked_shl(attempt.min(32)).unwrap_or(u64::MAX);
        Duration::from_millis(
            self.retry_backoff_ms.saturating_mul(factor).min(RETRY_BACKOFF_MS_MAX.max(self.retry_backoff_ms)),
        )
    }

    /// The body of one batch, `None` when every value in it is null
    /// (tombstones are skipped: there is nothing to send).
    fn body(&self, records: &[Record]) -> Option<String> {
        let values: Vec<&Value> = records.iter().map(|r| &r.value).filter(|v| !v.is_null()).collect();
        if values.is_empty() {
            return None;
        }
        if self.json_array {
            let items: Vec<serde_json::Value> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) if self.json_body => {
                        serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.clone()))
                    }
                    other => value_to_json(other),
                })
                .collect();
            return Some(serde_json::Value::Array(items).to_string());
        }
        let texts: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => value_to_json(other).to_string(),
            })
            .collect();
        Some(format!("{}{}{}", self.prefix, texts.join(&self.separator), self.suffix))
    }

    /// The Content-Type of a body, unless `headers` sets one.
    fn content_type(&self) -> &'static str {
        if self.json_array || self.json_body {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        }
    }
}

/// Every byte but URL-unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Name:Value` pairs separated by `separator`.
fn parse_headers(text: &str, separator: &str) -> Result<HeaderMap, SettingError> {
    let mut headers = HeaderMap::new();
    if text.trim().is_empty() {
        return Ok(headers);
    }
    let parts: Vec<&str> = if separator.is_empty() { vec![text] } else { text.split(separator).collect() };
    for part in parts.into_iter().filter(|p| !p.trim().is_empty()) {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| SettingError::new("headers", format!("Invalid header {part:?}: expected Name:Value")))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| SettingError::new("headers", format!("Invalid header name {:?}", name.trim())))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| SettingError::new("headers", format!("Invalid value of header {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// `retry.on.status.codes`: single codes and inclusive ranges (`500-599`,
/// `400-` for every code from 400).
#[derive(Clone, Debug, PartialEq, Eq)]
struct StatusCodes(Vec<(u16, u16)>);

impl StatusCodes {
    fn parse(text: &str) -> Result<StatusCodes, String> {
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || format!("Invalid status code or range {item:?} in retry.on.status.codes");
            let code = |s: &str| s.trim().parse::<u16>().map_err(|_| bad());
            let range = match item.split_once('-') {
                None => (code(item)?, code(item)?),
                Some((from, "")) => (code(from)?, u16::MAX),
                Some((from, to)) => (code(from)?, code(to)?),
            };
            if range.0 > range.1 {
                return Err(bad());
            }
            ranges.push(range);
        }
        Ok(StatusCodes(ranges))
    }

    fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(from, to)| (from..=to).contains(&code))
    }
}

/// A record value as JSON, as Connect's JsonConverter writes schemaless
/// data: structs and string-keyed maps as objects, other maps as arrays of
/// `[key, value]` pairs, bytes in base64, non-finite floats as null.
pub(crate) fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Int8(v) => J::from(*v),
        Value::Int16(v) => J::from(*v),
        Value::Int32(v) => J::from(*v),
        Value::Int64(v) => J::from(*v),
        // through its shortest text, so 0.1f32 stays 0.1
        Value::Float32(v) => {
            v.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(J::Null, J::Number)
        }
        Value::Float64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Array(items) => J::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) => J::Object(
            entries.iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), value_to_json(v))).collect(),
        ),
        Value::Map(entries) => {
            J::Array(entries.iter().map(|(k, v)| J::Array(vec![value_to_json(k), value_to_json(v)])).collect())
        }
        Value::Struct(fields) => J::Object(fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
    }
}

/// How one request went.
enum Attempt {
    Delivered,
    /// Worth another try (a retried status code, a connection error, a timeout).
    Retry(String),
    /// Not worth another try (a status code not in `retry.on.status.codes`).
    GiveUp(String),
}

#[derive(Default)]
struct HttpSinkTask {
    settings: Option<HttpSettings>,
    client: Option<reqwest::Client>,
    connector: String,
}

impl HttpSinkTask {
    async fn send_once(
        &self,
        settings: &HttpSettings,
        client: &reqwest::Client,
        url: &reqwest::Url,
        body: &str,
    ) -> Attempt {
        let mut request = client
            .request(settings.method.clone(), url.clone())
            .header(CONTENT_TYPE, settings.content_type())
            .headers(settings.headers.clone())
            .body(body.to_string());
        if let Some((user, password)) = &settings.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return Attempt::Delivered;
                }
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(ERROR_BODY_CHARS_MAX).collect();
                let message = format!("{} {url} answered {status}: {text}", settings.method);
                if settings.retry_codes.contains(status.as_u16()) {
                    Attempt::Retry(message)
                } else {
                    Attempt::GiveUp(message)
                }
            }
            // no answer (refused, reset, timed out): always worth another try
            Err(e) => Attempt::Retry(format!("{} {url}: {e}", settings.method)),
        }
    }

    /// Sends one batch, retrying as configured; what `behavior.on.error`
    /// says when it still fails.
    async fn send(
        &self,
        settings: &HttpSettings,
        client: &reqwest::Client,
        url: &reqwest::Url,
        body: &str,
    ) -> Result<()> {
        let mut attempt = 0u32;
        let failure = loop {
            match self.send_once(settings, client, url, body).await {
                Attempt::Delivered => return Ok(()),
                Attempt::GiveUp(message) => break message,
                Attempt::Retry(message) if attempt >= settings.max_retries => {
                    break format!("{message} (after {attempt} retries)")
                }
                Attempt::Retry(message) => {
                    let wait = settings.backoff(attempt);
                    tracing::warn!(connector = %self.connector, "HTTP sink: {message}; retry {} of {} in {wait:?}", attempt + 1, settings.max_retries);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        };
        match settings.on_error {
            // Fatal, not Retriable: this task already retried with backoff,
            // and the runtime's retry would send the batches of this put
            // that were delivered again (duplicates) before this one.
            OnError::Fail => Err(ConnectError::fatal(format!("HTTP sink: {failure}"))),
            OnError::Log => {
                tracing::error!(connector = %self.connector, "HTTP sink: dropping a batch of records: {failure}");
                Ok(())
            }
            OnError::Ignore => Ok(()),
        }
    }
}

#[async_trait]
impl SinkTask for HttpSinkTask {
    async fn start(&mut self, props: &Props, ctx: SinkTaskContext) -> Result<()> {
        let settings = HttpSettings::from_props(props)?;
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| ConnectError::fatal(format!("HTTP sink: cannot make an HTTP client: {e}")))?;
        self.connector = ctx.connector;
        self.settings = Some(settings);
        self.client = Some(client);
        Ok(())
    }

    async fn put(&mut self, records: Vec<Record>) -> Result<()> {
        let (Some(settings), Some(client)) = (self.settings.as_ref(), self.client.as_ref()) else {
            return Err(ConnectError::fatal("HTTP sink: not started"));
        };
        // batches of consecutive records going to the same URL
        let mut batches: Vec<(reqwest::Url, Vec<Record>)> = Vec::new();
        for record in records {
            let url = settings.url_for(&record)?;
            match batches.last_mut() {
                Some((last, batch)) if *last == url && batch.len() < settings.batch_max => batch.push(record),
                _ => batches.push((url, vec![record])),
            }
        }
        for (url, batch) in &batches {
            if let Some(body) = settings.body(batch) {
                self.send(settings, client, url, &body).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        // put delivered everything before it returned
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn record(offset: i64, value: Value) -> Record {
        Record {
            topic: "t".into(),
            partition: Some(0),
            key_schema: None,
            key: Value::Null,
            value_schema: None,
            value,
            timestamp: Some(0),
            headers: Vec::new(),
            source_partition: None,
            source_offset: None,
            kafka_offset: Some(offset),
        }
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (Value::String(k.to_string()), v.clone())).collect())
    }

    #[test]
    fn status_code_ranges_parse_as_confluent_documents_them() {
        let codes = StatusCodes::parse("400-").unwrap();
        assert!(codes.contains(400) && codes.contains(503) && !codes.contains(399));
        let codes = StatusCodes::parse("404, 408,500-599").unwrap();
        assert!(codes.contains(404) && codes.contains(408) && codes.contains(599));
        assert!(!codes.contains(400) && !codes.contains(600));
        assert!(StatusCodes::parse("").unwrap().0.is_empty());
        assert!(StatusCodes::parse("5xx").is_err());
        assert!(StatusCodes::parse("500-400").is_err());
    }

    #[test]
    fn batches_are_json_arrays_or_joined_values() {
        let base = [("http.api.url", "http://127.0.0.1:1/x")];
        let records = vec![
            record(0, map(&[("id", Value::Int32(1)), ("f", Value::Float32(0.1))])),
            record(1, Value::Null),
            record(2, Value::String("{\"id\":2}".into())),
        ];
        let mut p = props(&base);
        p.insert("batch.json.as.array".into(), "true".into());
        let s = HttpSettings::from_props(&p).unwrap();
        assert_eq!(s.body(&records).unwrap(), r#"[{"f":0.1,"id":1},"{\"id\":2}"]"#);
        p.insert("request.body.format".into(), "json".into());
        let s = HttpSettings::from_props(&p).unwrap();
        assert_eq!(s.body(&records).unwrap(), r#"[{"f":0.1,"id":1},{"id":2}]"#);
        let mut p = props(&base);
        p.insert("batch.separator".into(), "\n".into());
        p.insert("batch.prefix".into(), "<".into());
        p.insert("batch.suffix".into(), ">".into());
        let s = HttpSettings::from_props(&p).unwrap();
        assert_eq!(s.body(&records).unwrap(), "<{\"f\":0.1,\"id\":1}\n{\"id\":2}>");
        assert_eq!(s.body(&[record(3, Value::Null)]), None);
    }

    #[test]
    fn values_become_jsonconverter_json() {
        let v = Value::Struct(vec![
            ("b".into(), Value::Bytes(vec![1, 2, 3])),
            ("m".into(), Value::Map(vec![(Value::Int32(1), Value::Boolean(true))])),
            ("n".into(), Value::Float64(f64::NAN)),
            ("a".into(), Value::Array(vec![Value::Int64(-1), Value::Null])),
        ]);
        assert_eq!(value_to_json(&v).to_string(), r#"{"a":[-1,null],"b":"AQID","m":[[1,true]],"n":null}"#);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("http.api.url", "not a url")], "http.api.url"),
            (&[("http.api.url", "ftp://x/")], "http.api.url"),
            (&[("http.api.url", "http://x/"), ("headers", "NoColon")], "headers"),
            (&[("http.api.url", "http://x/"), ("auth.type", "BASIC")], "connection.user"),
            (&[("http.api.url", "http://x/"), ("batch.max.size", "0")], "batch.max.size"),
            (&[("http.api.url", "http://x/"), ("retry.on.status.codes", "abc")], "retry.on.status.codes"),
        ];
        for (pairs, key) in cases {
            let err = HttpSettings::from_props(&props(pairs)).unwrap_err();
            assert_eq!(err.key, *key, "{pairs:?}: {err:?}");
        }
        let s =
            HttpSettings::from_props(&props(&[("http.api.url", "http://x/"), ("headers", "A:1|B: two:2")])).unwrap();
        assert_eq!(s.headers.get("a").unwrap(), "1");
        assert_eq!(s.headers.get("b").unwrap(), "two:2");
    }

    #[test]
    fn urls_take_the_records_topic_and_key() {
        let s = HttpSettings::from_props(&props(&[("http.api.url", "http://h:1/t/${topic}/k/${key}")])).unwrap();
        let mut r = record(0, Value::Null);
        r.key = Value::String("a b/c".into());
        assert_eq!(s.url_for(&r).unwrap().as_str(), "http://h:1/t/t/k/a%20b%2Fc");
        r.key = Value::Int32(7);
        assert_eq!(s.url_for(&r).unwrap().as_str(), "http://h:1/t/t/k/7");
        let plain = HttpSettings::from_props(&props(&[("http.api.url", "http://h:1/x")])).unwrap();
        assert_eq!(plain.url_for(&r).unwrap().as_str(), "http://h:1/x");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut p = props(&[("http.api.url", "http://x/"), ("retry.backoff.ms", "1000")]);
        let s = HttpSettings::from_props(&p).unwrap();
        let waits: Vec<u64> = (0..7).map(|a| s.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(s.backoff(200).as_millis(), 30000);
        p.insert("retry.backoff.ms".into(), "0".into());
        assert_eq!(HttpSettings::from_props(&p).unwrap().backoff(5).as_millis(), 0);
    }

    /// (method, Authorization header, body) of each request a test server got.
    type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

    /// A real HTTP server on a loopback port that answers 500 to the first
    /// `fail_first` requests and records every request.
    async fn server(fail_first: usize, status: u16) -> (String, Seen) {
        use axum::http::{HeaderMap as AxHeaders, StatusCode};
        let seen: Seen = Arc::default();
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(move |method: axum::http::Method, headers: AxHeaders, body: String| {
            let seen = seen2.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                let mut seen = seen.lock();
                seen.push((method.to_string(), auth, body));
                if seen.len() <= fail_first {
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                } else {
                    StatusCode::OK
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/ingest"), seen)
    }

    async fn started(p: Props) -> HttpSinkTask {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut task = HttpSinkTask::default();
        task.start(&p, SinkTaskContext { connector: "http".into(), task: 0 }).await.unwrap();
        task
    }

    #[tokio::test]
    async fn failed_requests_are_retried_until_delivered() {
        let (url, seen) = server(3, 500).await;
        let mut task = started(props(&[
            ("http.api.url", &url),
            ("batch.max.size", "2"),
            ("batch.json.as.array", "true"),
            ("retry.backoff.ms", "10"),
            ("auth.type", "BASIC"),
            ("connection.user", "u"),
            ("connection.password", "p"),
            ("request.method", "PUT"),
        ]))
        .await;
        let records: Vec<Record> = (0..5).map(|i| record(i, map(&[("i", Value::Int64(i))]))).collect();
        task.put(records).await.unwrap();
        task.flush().await.unwrap();
        let seen = seen.lock();
        // three failures of the first batch, then the three batches once each
        let bodies: Vec<&str> = seen.iter().map(|(_, _, b)| b.as_str()).collect();
        assert_eq!(
            bodies,
            [
                r#"[{"i":0},{"i":1}]"#,
                r#"[{"i":0},{"i":1}]"#,
                r#"[{"i":0},{"i":1}]"#,
                r#"[{"i":0},{"i":1}]"#,
                r#"[{"i":2},{"i":3}]"#,
                r#"[{"i":4}]"#
            ]
        );
        assert!(seen.iter().all(|(m, auth, _)| m == "PUT" && auth.as_deref() == Some("Basic dTpw")), "{seen:?}");
    }

    #[tokio::test]
    async fn exhausted_retries_fail_the_task_or_drop_the_batch() {
        let (url, seen) = server(usize::MAX, 503).await;
        let base = [("http.api.url", url.as_str()), ("retry.backoff.ms", "1"), ("max.retries", "2")];
        let mut task = started(props(&base)).await;
        let err = task.put(vec![record(0, Value::String("a".into()))]).await.unwrap_err();
        assert!(matches!(err, ConnectError::Fatal(_)), "{err:?}");
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(seen.lock().len(), 3);
        let mut p = props(&base);
        p.insert("behavior.on.error".into(), "log".into());
        let mut task = started(p).await;
        task.put(vec![record(1, Value::String("b".into()))]).await.unwrap();
        assert_eq!(seen.lock().len(), 6);
    }

    #[tokio::test]
    async fn codes_not_listed_are_not_retried_and_connection_errors_are() {
        let (url, seen) = server(usize::MAX, 404).await;
        let mut task =
            started(props(&[("http.api.url", &url), ("retry.on.status.codes", "500-"), ("retry.backoff.ms", "1")]))
                .await;
        assert!(task.put(vec![record(0, Value::String("a".into()))]).await.is_err());
        assert_eq!(seen.lock().len(), 1);
        // nothing listens on port 1: refused connections are retried, then fail
        let mut task =
            started(props(&[("http.api.url", "http://127.0.0.1:1/"), ("retry.backoff.ms", "1"), ("max.retries", "1")]))
                .await;
        let err = task.put(vec![record(0, Value::String("a".into()))]).await.unwrap_err();
        assert!(err.to_string().contains("after 1 retries"), "{err}");
    }
}
