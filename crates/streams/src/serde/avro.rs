//! Avro keys and values through a Confluent-compatible schema registry
//! (`schema.registry.url`; vltava serves one, as does Confluent's), in the
//! wire format of Confluent's `KafkaAvroSerializer`, so Java, Python and Go
//! clients read what we write and we read theirs:
//!
//! ```text
//! [0: magic byte][schema id: 4 bytes, big-endian][Avro binary of the datum]
//! ```
//!
//! Subjects are named by the TopicNameStrategy: `<topic>-key` and
//! `<topic>-value`. Serializing registers the serde's schema under the
//! subject on first use (`auto.register.schemas`, default true; false: the
//! schema must already be registered, it is looked up) and caches the id.
//! Deserializing fetches the writer's schema by the id in the bytes (cached)
//! and, when it differs from the serde's schema, resolves the datum to the
//! serde's schema with Avro's schema resolution (added fields take their
//! defaults, ...), then turns it into `T` with serde.
//!
//! `T` is any `serde::Serialize + DeserializeOwned` whose shape matches the
//! schema: a struct for a record (field names as in the schema), `Option<X>`
//! for a `["null", X]` union, `String`, `i32`/`i64`, `f64`, `Vec<X>` for an
//! array, ... (apache-avro's serde mapping).

use std::collections::HashMap;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;

use super::{Serde, SerdeRef};
use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};

pub const SCHEMA_REGISTRY_URL_CONFIG: &str = "schema.registry.url";
pub const AUTO_REGISTER_SCHEMAS_CONFIG: &str = "auto.register.schemas";
/// `user:password` for HTTP basic authentication (Confluent's name).
pub const BASIC_AUTH_USER_INFO_CONFIG: &str = "basic.auth.user.info";

/// The wire format's first byte.
pub const MAGIC_BYTE: u8 = 0;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A schema registry client: registers and looks up schemas, fetches them by
/// id; what it learns is cached (ids never change meaning in a registry).
pub struct SchemaRegistryClient {
    urls: Vec<String>,
    agent: ureq::Agent,
    authorization: Option<String>,
    by_id: Mutex<HashMap<i32, Arc<Schema>>>,
    /// (subject, schema text) -> id
    ids: Mutex<HashMap<(String, String), i32>>,
}

impl SchemaRegistryClient {
    /// `urls`: one URL or several, comma-separated (tried in turn).
    pub fn new(urls: &str) -> Result<Arc<Self>> {
        Self::build(urls, None).map(Arc::new)
    }

    /// With HTTP basic authentication (`user:password`).
    pub fn with_basic_auth(urls: &str, user_info: &str) -> Result<Arc<Self>> {
        Self::build(urls, Some(format!("Basic {}", base64(user_info.as_bytes())))).map(Arc::new)
    }

    fn build(urls: &str, authorization: Option<String>) -> Result<Self> {
        let urls: Vec<String> =
            urls.split(',').map(|u| u.trim().trim_end_matches('/').to_string()).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() || urls.iter().any(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
            return Err(StreamsError::config(
                SCHEMA_REGISTRY_URL_CONFIG,
                "expected http://HOST:PORT[,http://HOST:PORT...] (the schema registry's address)",
            ));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Ok(SchemaRegistryClient {
            urls,
            agent,
            authorization,
            by_id: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
        })
    }

    /// From a streams config: `schema.registry.url` (required) and
    /// `basic.auth.user.info` (optional).
    pub fn from_config(config: &StreamsConfig) -> Result<Arc<Self>> {
        let url = config.client_configs.get(SCHEMA_REGISTRY_URL_CONFIG).ok_or_else(|| {
            StreamsError::config(SCHEMA_REGISTRY_URL_CONFIG, "required by the Avro serde (the schema registry's URL)")
        })?;
        match config.client_configs.get(BASIC_AUTH_USER_INFO_CONFIG) {
            Some(ui) => Self::with_basic_auth(url, ui),
            None => Self::new(url),
        }
    }

    /// Sends a request to each URL in turn until one answers; an error
    /// status is an error with Confluent's `error_code` and `message`.
    fn call(&self, post: bool, path: &str, body: Option<&Json>) -> std::result::Result<Json, String> {
        let mut failures = Vec::new();
        for base in &self.urls {
            let url = format!("{base}{path}");
            let sent = if post {
                let body = body.map(Json::to_string).unwrap_or_default();
                let r = self.agent.post(&url).header("Accept", CONTENT_TYPE).header("Content-Type", CONTENT_TYPE);
                match &self.authorization {
                    Some(a) => r.header("Authorization", a).send(body),
                    None => r.send(body),
                }
            } else {
                let r = self.agent.get(&url).header("Accept", CONTENT_TYPE);
                match &self.authorization {
                    Some(a) => r.header("Authorization", a).call(),
                    None => r.call(),
                }
            };
            let mut response = match sent {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let text = match response.body_mut().read_to_string() {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{url}: reading the answer: {e}"));
                    continue;
                }
            };
            let value: Json = serde_json::from_str(&text).unwrap_or(Json::String(text));
            if (200..300).contains(&status) {
                return Ok(value);
            }
            let code = value.get("error_code").and_then(Json::as_i64).unwrap_or(i64::from(status));
            let message = value.get("message").and_then(Json::as_str).map(str::to_string).unwrap_or(value.to_string());
            if status >= 500 {
                failures.push(format!("{url}: HTTP {status}, error {code}: {message}"));
                continue;
            }
            return Err(format!("{url}: HTTP {status}, error {code}: {message}"));
        }
        Err(failures.join("; "))
    }

    fn id_of(value: &Json, what: &str) -> std::result::Result<i32, String> {
        value
            .get("id")
            .and_then(Json::as_i64)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| format!("{what}: the registry's answer has no schema id: {value}"))
    }

    /// Registers `schema` (Avro JSON) under `subject` (or finds it there:
    /// the same schema keeps its id); returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> std::result::Result<i32, String> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.lock().get(&key) {
            return Ok(*id);
        }
        let body = serde_json::json!({ "schema": schema });
        let answer = self.call(true, &format!("/subjects/{}/versions", segment(subject)), Some(&body))?;
        let id = Self::id_of(&answer, "registering")?;
        self.ids.lock().insert(key, id);
        Ok(id)
    }

    /// The id of `schema` already registered under `subject`.
    pub fn lookup(&self, subject: &str, schema: &str) -> std::result::Result<i32, String> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.lock().get(&key) {
            return Ok(*id);
        }
        let body = serde_json::json!({ "schema": schema });
        let answer = self.call(true, &format!("/subjects/{}", segment(subject)), Some(&body))?;
        let id = Self::id_of(&answer, "looking the schema up")?;
        self.ids.lock().insert(key, id);
        Ok(id)
    }

    /// The schema with this id.
    pub fn schema_by_id(&self, id: i32) -> std::result::Result<Arc<Schema>, String> {
        if let Some(s) = self.by_id.lock().get(&id) {
            return Ok(s.clone());
        }
        let answer = self.call(false, &format!("/schemas/ids/{id}"), None)?;
        if let Some(kind) = answer.get("schemaType").and_then(Json::as_str) {
            if kind != "AVRO" {
                return Err(format!("schema {id} is a {kind} schema, not Avro"));
            }
        }
        let text = answer
            .get("schema")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("schema {id}: the registry's answer has no schema: {answer}"))?;
        let schema = Arc::new(Schema::parse_str(text).map_err(|e| format!("schema {id} does not parse: {e}"))?);
        self.by_id.lock().insert(id, schema.clone());
        Ok(schema)
    }
}

/// A path segment, percent-encoded.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Avro through a schema registry (see the module docs).
pub struct AvroSerde<T> {
    registry: Arc<SchemaRegistryClient>,
    schema: Schema,
    /// What is registered: the schema's JSON, compact.
    schema_text: String,
    is_key: bool,
    auto_register: bool,
    /// writer schema id -> whether it is the serde's own schema (no resolution needed)
    same_schema: Mutex<HashMap<i32, bool>>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> AvroSerde<T> {
    /// A serde writing `schema` (Avro JSON) for keys (`is_key`, subject
    /// `<topic>-key`) or values (`<topic>-value`).
    pub fn new(registry: Arc<SchemaRegistryClient>, schema: &str, is_key: bool) -> Result<Self> {
        let parsed = Schema::parse_str(schema)
            .map_err(|e| StreamsError::config("avro schema", format!("the schema does not parse: {e}")))?;
        let schema_text = serde_json::from_str::<Json>(schema).map(|j| j.to_string()).unwrap_or(schema.to_string());
        Ok(AvroSerde {
            registry,
            schema: parsed,
            schema_text,
            is_key,
            auto_register: true,
            same_schema: Mutex::new(HashMap::new()),
            _t: PhantomData,
        })
    }

    /// From a streams config (`schema.registry.url`, `auto.register.schemas`,
    /// `basic.auth.user.info`), as a shared serde.
    pub fn from_config(config: &StreamsConfig, schema: &str, is_key: bool) -> Result<SerdeRef<T>> {
        let mut serde = Self::new(SchemaRegistryClient::from_config(config)?, schema, is_key)?;
        if let Some(v) = config.client_configs.get(AUTO_REGISTER_SCHEMAS_CONFIG) {
            serde.auto_register = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(StreamsError::config(
                        AUTO_REGISTER_SCHEMAS_CONFIG,
                        format!("{v:?} is not true or false"),
                    ))
                }
            };
        }
        Ok(Arc::new(serde))
    }

    /// Off: serializing looks the schema up instead of registering it.
    pub fn auto_register(mut self, on: bool) -> Self {
        self.auto_register = on;
        self
    }

    pub fn into_ref(self) -> SerdeRef<T> {
        Arc::new(self)
    }

    fn subject(&self, topic: &str) -> String {
        format!("{topic}-{}", if self.is_key { "key" } else { "value" })
    }

    fn same_as_ours(&self, id: i32, writer: &Schema) -> bool {
        *self.same_schema.lock().entry(id).or_insert_with(|| writer.canonical_form() == self.schema.canonical_form())
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Serde<T> for AvroSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>> {
        let subject = self.subject(topic);
        let id = if self.auto_register {
            self.registry.register(&subject, &self.schema_text)
        } else {
            self.registry.lookup(&subject, &self.schema_text)
        }
        .map_err(|e| StreamsError::serde(topic, format!("schema registry, subject {subject}: {e}")))?;
        let writer = GenericDatumWriter::builder(&self.schema)
            .build()
            .map_err(|e| StreamsError::serde(topic, format!("the Avro schema: {e}")))?;
        let mut out = Vec::with_capacity(64);
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&id.to_be_bytes());
        writer
            .write_ser(&mut out, value)
            .map_err(|e| StreamsError::serde(topic, format!("the value does not fit the Avro schema: {e}")))?;
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T> {
        let data =
            data.ok_or_else(|| StreamsError::serde(topic, "null bytes for an Avro datum (use Serdes::option)"))?;
        if data.len() < 5 {
            return Err(StreamsError::serde(
                topic,
                format!("{} bytes: too short for Avro in the registry's format", data.len()),
            ));
        }
        if data[0] != MAGIC_BYTE {
            return Err(StreamsError::serde(
                topic,
                format!("unknown magic byte {} (not written by a schema-registry Avro serializer)", data[0]),
            ));
        }
        let id = i32::from_be_bytes([data[1], data[2], data[3], data[4]]);
        let writer = self
            .registry
            .schema_by_id(id)
            .map_err(|e| StreamsError::serde(topic, format!("schema registry, schema id {id}: {e}")))?;
        let same = self.same_as_ours(id, &writer);
        let reader = GenericDatumReader::builder(&writer)
            .maybe_reader_schema((!same).then_some(&self.schema))
            .build()
            .map_err(|e| StreamsError::serde(topic, format!("schema id {id}: {e}")))?;
        let mut cursor = Cursor::new(&data[5..]);
        let value = reader
            .read_value(&mut cursor)
            .map_err(|e| StreamsError::serde(topic, format!("Avro datum with schema id {id}: {e}")))?;
        apache_avro::from_value::<T>(&value).map_err(|e| {
            StreamsError::serde(topic, format!("Avro datum with schema id {id} does not fit the type: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::state::restore::test_broker::TestBroker;

    const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"string"},
        {"name":"quantity","type":"long"},
        {"name":"note","type":["null","string"],"default":null}]}"#;

    const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"string"},
        {"name":"quantity","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"price","type":"double","default":1.5}]}"#;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Order {
        id: String,
        quantity: i64,
        note: Option<String>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct OrderV2 {
        id: String,
        quantity: i64,
        note: Option<String>,
        price: f64,
    }

    #[test]
    fn base64_encodes_as_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:secret"), "dXNlcjpzZWNyZXQ=");
    }

    #[test]
    fn bad_configs_and_bad_bytes_are_errors() {
        assert!(SchemaRegistryClient::new("").is_err());
        assert!(SchemaRegistryClient::new("localhost:8081").is_err());
        let registry = SchemaRegistryClient::new("http://127.0.0.1:1").unwrap();
        assert!(AvroSerde::<Order>::new(registry.clone(), "{not json", false).is_err());
        let serde = AvroSerde::<Order>::new(registry, ORDER_V1, false).unwrap();
        for bad in [&b""[..], &[0, 0, 0], &[1, 0, 0, 0, 1, 2]] {
            let e = serde.deserialize("orders", Some(bad)).unwrap_err();
            assert!(matches!(e, StreamsError::Serde { .. }), "{e}");
        }
        assert!(serde.deserialize("orders", None).is_err());
        let config = StreamsConfig::new("app", "127.0.0.1:9092");
        let e = AvroSerde::<Order>::from_config(&config, ORDER_V1, false).err().unwrap();
        assert!(e.to_string().contains("schema.registry.url"), "{e}");
    }

    #[test]
    fn round_trips_through_vltavas_registry_in_confluents_wire_format() {
        let broker = TestBroker::start();
        let config =
            StreamsConfig::new("app", &broker.bootstrap).with("schema.registry.url", &broker.registry_url).unwrap();
        let values = AvroSerde::<Order>::from_config(&config, ORDER_V1, false).unwrap();
        let keys = AvroSerde::<String>::from_config(&config, r#""string""#, true).unwrap();

        let order = Order { id: "ab".into(), quantity: 3, note: None };
        let bytes = values.serialize("orders", &order).unwrap().unwrap();
        // Java's KafkaAvroSerializer layout: magic 0, the id big-endian, then
        // the Avro binary: "ab" = zigzag length 2 (0x04) + bytes, 3L = 0x06,
        // the union's branch 0 (null) = 0x00
        let id = i32::from_be_bytes(bytes[1..5].try_into().unwrap());
        assert!(id > 0);
        assert_eq!(bytes, [&[0u8][..], &id.to_be_bytes(), &[0x04, b'a', b'b', 0x06, 0x00]].concat());
        assert_eq!(values.deserialize("orders", Some(&bytes)).unwrap(), order);

        let with_note = Order { id: "x".into(), quantity: -1, note: Some("hi".into()) };
        let b2 = values.serialize("orders", &with_note).unwrap().unwrap();
        assert_eq!(&b2[5..], &[0x02, b'x', 0x01, 0x02, 0x04, b'h', b'i']);
        assert_eq!(values.deserialize("orders", Some(&b2)).unwrap(), with_note);

        // keys: subject <topic>-key, its own id
        let kb = keys.serialize("orders", &"k-1".to_string()).unwrap().unwrap();
        assert_eq!(&kb[5..], &[0x06, b'k', b'-', b'1']);
        assert_eq!(keys.deserialize("orders", Some(&kb)).unwrap(), "k-1");

        // the registry holds both subjects, with our schemas
        let client = SchemaRegistryClient::new(&broker.registry_url).unwrap();
        let subjects = client.call(false, "/subjects", None).unwrap();
        let mut subjects: Vec<String> =
            subjects.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        subjects.sort();
        assert_eq!(subjects, ["orders-key", "orders-value"]);
        let registered = client.schema_by_id(id).unwrap();
        assert_eq!(registered.canonical_form(), Schema::parse_str(ORDER_V1).unwrap().canonical_form());
        assert_eq!(client.lookup("orders-value", &serde_json::from_str::<Json>(ORDER_V1).unwrap().to_string()), Ok(id));

        // schema evolution: v1 bytes read with v2 (the default fills the new field),
        // v2 bytes read with v1 (the extra field is skipped)
        let v2 = AvroSerde::<OrderV2>::from_config(&config, ORDER_V2, false).unwrap();
        assert_eq!(
            v2.deserialize("orders", Some(&bytes)).unwrap(),
            OrderV2 { id: "ab".into(), quantity: 3, note: None, price: 1.5 }
        );
        let new = OrderV2 { id: "n".into(), quantity: 7, note: Some("z".into()), price: 9.25 };
        let b3 = v2.serialize("orders", &new).unwrap().unwrap();
        let id3 = i32::from_be_bytes(b3[1..5].try_into().unwrap());
        assert_ne!(id3, id);
        assert_eq!(
            values.deserialize("orders", Some(&b3)).unwrap(),
            Order { id: "n".into(), quantity: 7, note: Some("z".into()) }
        );

        // without auto-registration, an unknown subject is an error naming it
        let strict =
            AvroSerde::<Order>::from_config(&config.with("auto.register.schemas", "false").unwrap(), ORDER_V1, false)
                .unwrap();
        let e = strict.serialize("payments", &order).unwrap_err();
        assert!(e.to_string().contains("payments-value"), "{e}");
        assert_eq!(strict.serialize("orders", &order).unwrap().unwrap(), bytes);
        // an unknown id is an error
        let mut unknown = bytes.clone();
        unknown[1..5].copy_from_slice(&9999i32.to_be_bytes());
        assert!(values.deserialize("orders", Some(&unknown)).is_err());
        // a value that does not fit the schema is an error, not a panic
        let wrong = AvroSerde::<Order>::from_config(&config, r#""long""#, false).unwrap();
        assert!(wrong.serialize("other", &order).is_err());
    }
}
