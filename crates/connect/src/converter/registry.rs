//! Confluent's schema-registry converters (AvroConverter,
//! JsonSchemaConverter, ProtobufConverter): `schema.registry.url`
//! (+ `basic.auth.credentials.source=USER_INFO`, `basic.auth.user.info`),
//! `auto.register.schemas` (default true), `use.latest.version`, subjects
//! by TopicNameStrategy (`<topic>-key` / `<topic>-value`). The bytes are
//! Confluent's wire format: magic byte 0, the schema id (4 bytes, big
//! endian), for Protobuf the message indexes, then the payload.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use prost_reflect::MessageDescriptor;
use serde_json::json;

use super::json::Json;
use super::Converter;
use super::{avro, jsonschema, protobuf};
use crate::config::{Props, PropsExt};
use crate::data::{Schema, Value};
use crate::error::{ConnectError, Result};

/// Which of Confluent's formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Avro,
    Json,
    Protobuf,
}

impl Format {
    fn schema_type(self) -> &'static str {
        match self {
            Format::Avro => "AVRO",
            Format::Json => "JSON",
            Format::Protobuf => "PROTOBUF",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Format::Avro => "Avro",
            Format::Json => "JSON Schema",
            Format::Protobuf => "Protobuf",
        }
    }
}

/// A schema compiled for encoding or decoding.
enum Compiled {
    Avro(apache_avro::Schema),
    Json,
    Protobuf(MessageDescriptor, Vec<i32>),
}

/// A schema the converter wrote with: its id and compiled form.
struct Writing {
    id: i32,
    compiled: Arc<Compiled>,
}

/// A schema read by id: its Connect schema and compiled form (per message indexes for Protobuf).
struct Reading {
    format: Format,
    text: String,
    avro: Option<(apache_avro::Schema, Schema)>,
    json: Option<Schema>,
    protobuf: Mutex<HashMap<Vec<i32>, (MessageDescriptor, Schema)>>,
}

/// A schema registry client (Confluent's REST API).
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    auth: Option<(String, String)>,
}

impl RegistryClient {
    pub fn new(props: &Props) -> Result<RegistryClient> {
        let url = props.required("schema.registry.url")?;
        let base = url.split(',').next().unwrap_or("").trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConnectError::config(format!(
                "Invalid value {url} for configuration schema.registry.url: not an http(s) URL"
            )));
        }
        let auth = match props.str_or("basic.auth.credentials.source", "").trim().to_ascii_uppercase().as_str() {
            "USER_INFO" => {
                let info = props.required("basic.auth.user.info")?;
                let (u, p) = info.split_once(':').unwrap_or((info, ""));
                Some((u.to_string(), p.to_string()))
            }
            "URL" => {
                // user:pass@ in the URL
                let rest = base.split_once("://").map_or("", |(_, r)| r);
                rest.split_once('@').map(|(info, _)| {
                    let (u, p) = info.split_once(':').unwrap_or((info, ""));
                    (u.to_string(), p.to_string())
                })
            }
            "" => None,
            other => {
                return Err(ConnectError::config(format!(
                    "Invalid value {other} for configuration basic.auth.credentials.source: String must be one of: URL, USER_INFO"
                )));
            }
        };
        // reqwest's rustls needs a provider (lib.rs installs ring too; this is idempotent)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ConnectError::config(format!("schema registry client: {e}")))?;
        Ok(RegistryClient { base, http, auth })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Accept", "application/vnd.schemaregistry.v1+json, application/json");
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/vnd.schemaregistry.v1+json").body(b.to_string());
        }
        let resp =
            req.send().await.map_err(|e| ConnectError::retriable(format!("schema registry {}: {e}", self.base)))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ConnectError::retriable(format!("schema registry: {e}")))?;
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
        if status.is_success() {
            return Ok(json);
        }
        let message = json.get("message").and_then(|m| m.as_str()).unwrap_or(&text).to_string();
        let code = json.get("error_code").and_then(|c| c.as_i64()).unwrap_or(i64::from(status.as_u16()));
        let err = format!("{message}; error code: {code}");
        if status.is_server_error() {
            Err(ConnectError::retriable(err))
        } else {
            Err(ConnectError::data(err))
        }
    }

    /// Registers a schema under `subject` (or finds it there): its id.
    pub async fn register(&self, subject: &str, ty: &str, text: &str) -> Result<i32> {
        let body = json!({"schema": text, "schemaType": ty});
        let answer = self.call(reqwest::Method::POST, &format!("/subjects/{subject}/versions"), Some(body)).await?;
        id_of(&answer)
    }

    /// The id of a schema already registered under `subject`.
    pub async fn lookup(&self, subject: &str, ty: &str, text: &str) -> Result<i32> {
        let body = json!({"schema": text, "schemaType": ty});
        let answer = self.call(reqwest::Method::POST, &format!("/subjects/{subject}"), Some(body)).await?;
        id_of(&answer)
    }

    /// The latest version under `subject`: (id, schemaType, text).
    pub async fn latest(&self, subject: &str) -> Result<(i32, String, String)> {
        let answer = self.call(reqwest::Method::GET, &format!("/subjects/{subject}/versions/latest"), None).await?;
        Ok((id_of(&answer)?, schema_type_of(&answer), text_of(&answer)?))
    }

    /// The schema with `id`: (schemaType, text).
    pub async fn by_id(&self, id: i32) -> Result<(String, String)> {
        let answer = self.call(reqwest::Method::GET, &format!("/schemas/ids/{id}"), None).await?;
        Ok((schema_type_of(&answer), text_of(&answer)?))
    }
}

fn id_of(answer: &serde_json::Value) -> Result<i32> {
    answer
        .get("id")
        .and_then(|i| i.as_i64())
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| ConnectError::data(format!("schema registry answer without an id: {answer}")))
}

fn schema_type_of(answer: &serde_json::Value) -> String {
    answer.get("schemaType").and_then(|t| t.as_str()).unwrap_or("AVRO").to_string()
}

fn text_of(answer: &serde_json::Value) -> Result<String> {
    answer
        .get("schema")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .ok_or_else(|| ConnectError::data(format!("schema registry answer without a schema: {answer}")))
}

/// One of Confluent's registry converters.
pub struct RegistryConverter {
    format: Format,
    is_key: bool,
    auto_register: bool,
    use_latest: bool,
    client: RegistryClient,
    /// (subject, schema text) -> how to write.
    writing: Mutex<HashMap<(String, String), Arc<Writing>>>,
    /// id -> how to read.
    reading: Mutex<HashMap<i32, Arc<Reading>>>,
}

impl RegistryConverter {
    pub fn new(format: Format, props: &Props, is_key: bool) -> Result<RegistryConverter> {
        let strategy = props.str_or("key.subject.name.strategy", "");
        let strategy = if is_key { strategy } else { props.str_or("value.subject.name.strategy", "") };
        if !strategy.is_empty() && !strategy.ends_with("TopicNameStrategy") {
            return Err(ConnectError::config(format!(
                "Invalid value {strategy} for configuration {}.subject.name.strategy: only TopicNameStrategy is supported",
                if is_key { "key" } else { "value" }
            )));
        }
        Ok(RegistryConverter {
            format,
            is_key,
            auto_register: props.bool_or("auto.register.schemas", true)?,
            use_latest: props.bool_or("use.latest.version", false)?,
            client: RegistryClient::new(props)?,
            writing: Mutex::new(HashMap::new()),
            reading: Mutex::new(HashMap::new()),
        })
    }

    fn subject(&self, topic: &str) -> String {
        format!("{topic}-{}", if self.is_key { "key" } else { "value" })
    }

    fn schema_text(&self, schema: &Schema) -> Result<String> {
        Ok(match self.format {
            Format::Avro => avro::avro_schema(schema)?.to_string(),
            Format::Json => jsonschema::json_schema(schema)?.to_text(),
            Format::Protobuf => protobuf::proto_text(schema)?,
        })
    }

    fn compile(&self, text: &str) -> Result<Compiled> {
        Ok(match self.format {
            Format::Avro => Compiled::Avro(avro::parse(text)?),
            Format::Json => Compiled::Json,
            Format::Protobuf => {
                let parsed = vltava_schema::protobuf::ProtobufSchema::parse(text, &[])
                    .map_err(|e| ConnectError::data(format!("Invalid Protobuf schema: {e}")))?;
                let desc = parsed
                    .message_by_indexes(&[0], vltava_schema::protobuf::Counting::Declared)
                    .ok_or_else(|| ConnectError::data("the Protobuf schema declares no message"))?;
                Compiled::Protobuf(desc, vec![0])
            }
        })
    }

    async fn writing(&self, topic: &str, schema: &Schema) -> Result<Arc<Writing>> {
        let subject = self.subject(topic);
        let text = self.schema_text(schema)?;
        let key = (subject.clone(), text.clone());
        if let Some(w) = self.writing.lock().get(&key) {
            return Ok(w.clone());
        }
        let ty = self.format.schema_type();
        let (id, write_text) = if self.use_latest {
            let (id, latest_ty, latest_text) = self.client.latest(&subject).await?;
            if latest_ty != ty {
                return Err(ConnectError::data(format!(
                    "the latest schema of subject {subject} is {latest_ty}, not {ty}"
                )));
            }
            (id, latest_text)
        } else if self.auto_register {
            (self.client.register(&subject, ty, &text).await?, text.clone())
        } else {
            (self.client.lookup(&subject, ty, &text).await?, text.clone())
        };
        let w = Arc::new(Writing { id, compiled: Arc::new(self.compile(&write_text)?) });
        self.writing.lock().insert(key, w.clone());
        Ok(w)
    }

    async fn reading(&self, id: i32) -> Result<Arc<Reading>> {
        if let Some(r) = self.reading.lock().get(&id) {
            return Ok(r.clone());
        }
        let (ty, text) = self.client.by_id(id).await?;
        let format = match ty.as_str() {
            "AVRO" => Format::Avro,
            "JSON" => Format::Json,
            "PROTOBUF" => Format::Protobuf,
            other => return Err(ConnectError::data(format!("schema {id} has unknown type {other}"))),
        };
        if format != self.format {
            return Err(ConnectError::data(format!(
                "schema {id} is a {} schema; the {} converter cannot read it",
                format.name(),
                self.format.name()
            )));
        }
        let mut reading =
            Reading { format, text: text.clone(), avro: None, json: None, protobuf: Mutex::new(HashMap::new()) };
        match format {
            Format::Avro => {
                let parsed = avro::parse(&text)?;
                let json: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| serde_json::Value::String(text.clone()));
                let connect = avro::ConnectSchemaReader::default().read(&json, None)?;
                reading.avro = Some((parsed, connect));
            }
            Format::Json => reading.json = Some(jsonschema::connect_schema(&Json::parse(text.as_bytes())?)?),
            Format::Protobuf => {}
        }
        let r = Arc::new(reading);
        self.reading.lock().insert(id, r.clone());
        Ok(r)
    }

    fn protobuf_message(reading: &Reading, indexes: &[i32]) -> Result<(MessageDescriptor, Schema)> {
        if let Some(m) = reading.protobuf.lock().get(indexes) {
            return Ok(m.clone());
        }
        let parsed = vltava_schema::protobuf::ProtobufSchema::parse(&reading.text, &[])
            .map_err(|e| ConnectError::data(format!("Invalid Protobuf schema: {e}")))?;
        use vltava_schema::protobuf::Counting;
        let desc = parsed
            .message_by_indexes(indexes, Counting::Declared)
            .or_else(|| parsed.message_by_indexes(indexes, Counting::Descriptor))
            .ok_or_else(|| ConnectError::data(format!("message indexes {indexes:?} select no message")))?;
        let schema = protobuf::connect_schema(&desc)?;
        reading.protobuf.lock().insert(indexes.to_vec(), (desc.clone(), schema.clone()));
        Ok((desc, schema))
    }
}

#[async_trait]
impl Converter for RegistryConverter {
    async fn from_connect(&self, topic: &str, schema: Option<&Schema>, value: &Value) -> Result<Option<Vec<u8>>> {
        if value.is_null() && schema.is_none_or(|s| s.optional || self.format == Format::Protobuf) {
            return Ok(None);
        }
        let Some(schema) = schema else {
            return Err(ConnectError::data(format!(
                "The {} converter needs a schema: the record on topic {topic} has none (use the JsonConverter with schemas.enable=false for schemaless data)",
                self.format.name()
            )));
        };
        let w = self.writing(topic, schema).await?;
        let mut out = vec![0u8];
        out.extend_from_slice(&w.id.to_be_bytes());
        match &*w.compiled {
            Compiled::Avro(parsed) => out.extend(avro::encode(parsed, schema, value)?),
            Compiled::Json => out.extend(jsonschema::to_payload(schema, value)?.to_text().into_bytes()),
            Compiled::Protobuf(desc, indexes) => {
                out.extend(vltava_schema::protobuf::encode_message_indexes(indexes));
                out.extend(protobuf::encode(desc, value)?);
            }
        }
        Ok(Some(out))
    }

    async fn to_connect(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let Some(bytes) = bytes else { return Ok((None, Value::Null)) };
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(ConnectError::data(format!(
                "Failed to deserialize data for topic {topic} to {}: Unknown magic byte!",
                self.format.name()
            )));
        }
        let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let payload = &bytes[5..];
        let r = self.reading(id).await?;
        match r.format {
            Format::Avro => {
                let Some((parsed, schema)) = &r.avro else { unreachable!() };
                Ok((Some(schema.clone()), avro::decode(parsed, schema, payload)?))
            }
            Format::Json => {
                let Some(schema) = &r.json else { unreachable!() };
                let json = Json::parse(payload)?;
                Ok((Some(schema.clone()), jsonschema::from_payload(schema, &json)?))
            }
            Format::Protobuf => {
                let (indexes, rest) = protobuf::read_indexes(payload)?;
                let (desc, schema) = Self::protobuf_message(&r, &indexes)?;
                Ok((Some(schema), protobuf::decode(&desc, rest)?))
            }
        }
    }
}
