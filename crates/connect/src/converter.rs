//! Converters between Connect data and the bytes of Kafka records:
//! `key.converter` / `value.converter` (and `header.converter`) by Kafka's
//! and Confluent's class names, with their settings under the
//! `key.converter.` / `value.converter.` prefixes.

pub mod avro;
pub mod json;
pub mod jsonschema;
pub mod protobuf;
pub mod registry;

use async_trait::async_trait;

use crate::config::Props;
use crate::data::{Schema, Value};
use crate::error::{ConnectError, Result};

/// Connect data to bytes and back, for one topic's keys or values.
#[async_trait]
#[allow(clippy::wrong_self_convention)] // Connect's names: fromConnectData / toConnectData
pub trait Converter: Send + Sync {
    /// The bytes of a value (`None` for a null: a tombstone or no key).
    async fn from_connect(&self, topic: &str, schema: Option<&Schema>, value: &Value) -> Result<Option<Vec<u8>>>;
    /// The value of bytes (`None`: a null key or tombstone).
    async fn to_connect(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)>;
}

pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const AVRO_CONVERTER: &str = "io.confluent.connect.avro.AvroConverter";
pub const JSON_SCHEMA_CONVERTER: &str = "io.confluent.connect.json.JsonSchemaConverter";
pub const PROTOBUF_CONVERTER: &str = "io.confluent.connect.protobuf.ProtobufConverter";
pub const SIMPLE_HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";

/// Every converter class this worker knows (for `/connector-plugins?connectorsOnly=false`).
pub const CLASSES: &[&str] = &[
    STRING_CONVERTER,
    BYTE_ARRAY_CONVERTER,
    JSON_CONVERTER,
    AVRO_CONVERTER,
    JSON_SCHEMA_CONVERTER,
    PROTOBUF_CONVERTER,
    SIMPLE_HEADER_CONVERTER,
];

/// The converter `class` names, configured with `props` (the keys under
/// its prefix, prefix removed), for keys when `is_key` (unless
/// `converter.type` says `key`/`value`).
pub fn create(class: &str, props: &Props, is_key: bool) -> Result<Box<dyn Converter>> {
    use crate::config::PropsExt;
    let is_key = match props.get("converter.type").map(|t| t.trim().to_ascii_lowercase()) {
        Some(t) if t == "key" => true,
        Some(t) if t == "value" => false,
        Some(t) if t == "header" => false,
        Some(t) => {
            return Err(ConnectError::config(format!(
                "Invalid value {t} for configuration converter.type: String must be one of: key, value, header"
            )));
        }
        None => is_key,
    };
    match class {
        STRING_CONVERTER | SIMPLE_HEADER_CONVERTER => {
            let encoding = props.str_or("converter.encoding", "UTF-8").trim().to_ascii_uppercase();
            if !matches!(encoding.as_str(), "UTF-8" | "UTF8") {
                return Err(ConnectError::config(format!(
                    "Invalid value {encoding} for configuration converter.encoding: only UTF-8 is supported"
                )));
            }
            Ok(Box::new(StringConverter))
        }
        BYTE_ARRAY_CONVERTER => Ok(Box::new(ByteArrayConverter)),
        JSON_CONVERTER => Ok(Box::new(json::JsonConverter::new(props)?)),
        AVRO_CONVERTER => Ok(Box::new(registry::RegistryConverter::new(registry::Format::Avro, props, is_key)?)),
        JSON_SCHEMA_CONVERTER => Ok(Box::new(registry::RegistryConverter::new(registry::Format::Json, props, is_key)?)),
        PROTOBUF_CONVERTER => {
            Ok(Box::new(registry::RegistryConverter::new(registry::Format::Protobuf, props, is_key)?))
        }
        other => Err(ConnectError::config(format!("Class {other} could not be found."))),
    }
}

/// `StringConverter`: UTF-8 text (`converter.encoding` other than UTF-8
/// is refused); any value written as its text.
pub struct StringConverter;

#[async_trait]
impl Converter for StringConverter {
    async fn from_connect(&self, _topic: &str, _schema: Option<&Schema>, value: &Value) -> Result<Option<Vec<u8>>> {
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(s.clone().into_bytes()),
            Value::Bytes(b) => Some(b.clone()),
            other => Some(display(other).into_bytes()),
        })
    }

    async fn to_connect(&self, _topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::of(crate::data::SchemaType::String).optional());
        Ok(match bytes {
            None => (schema, Value::Null),
            Some(b) => (schema, Value::String(String::from_utf8_lossy(b).into_owned())),
        })
    }
}

/// `ByteArrayConverter`: bytes as they are.
pub struct ByteArrayConverter;

#[async_trait]
impl Converter for ByteArrayConverter {
    async fn from_connect(&self, _topic: &str, _schema: Option<&Schema>, value: &Value) -> Result<Option<Vec<u8>>> {
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            other => {
                Err(ConnectError::data(format!("ByteArrayConverter is not compatible with objects of type {other:?}")))
            }
        }
    }

    async fn to_connect(&self, _topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::of(crate::data::SchemaType::Bytes).optional());
        Ok((schema, bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec()))))
    }
}

/// A value as text, as Java's `toString` of Connect data reads (a Struct
/// leaves out its null fields, as `Struct.toString` does).
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Boolean(v) => v.to_string(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => java_float(v.to_string()),
        Value::Float64(v) => java_float(v.to_string()),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Array(items) => format!("[{}]", items.iter().map(display).collect::<Vec<_>>().join(", ")),
        Value::Map(entries) => {
            format!(
                "{{{}}}",
                entries.iter().map(|(k, v)| format!("{}={}", display(k), display(v))).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Struct(fields) => {
            format!(
                "Struct{{{}}}",
                fields
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| format!("{k}={}", display(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
    }
}

/// A float's text as Java writes it: `1.0`, not `1`.
fn java_float(text: String) -> String {
    if text.contains(['.', 'e', 'E', 'N', 'i']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// A header's bytes (`SimpleHeaderConverter`: strings as UTF-8, others as text).
pub fn header_to_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::Bytes(b) => Some(b.clone()),
        other => Some(display(other).into_bytes()),
    }
}

/// A header's value from its bytes (`SimpleHeaderConverter`: a string).
pub fn header_from_bytes(bytes: Option<&[u8]>) -> Value {
    bytes.map_or(Value::Null, |b| Value::String(String::from_utf8_lossy(b).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SchemaType;

    #[test]
    fn display_reads_as_javas_to_string() {
        let v = Value::Struct(vec![
            ("a".into(), Value::Float64(1.0)),
            ("b".into(), Value::Null),
            ("c".into(), Value::Array(vec![Value::Int32(1), Value::Int32(2)])),
        ]);
        assert_eq!(display(&v), "Struct{a=1.0,c=[1, 2]}");
        assert_eq!(display(&Value::Float32(2.5)), "2.5");
    }

    #[tokio::test]
    async fn create_knows_every_class_and_refuses_others() {
        let mut props = Props::new();
        props.insert("schema.registry.url".into(), "http://127.0.0.1:1".into());
        for class in CLASSES {
            assert!(create(class, &props, false).is_ok(), "{class}");
        }
        let err = create("com.example.Nope", &props, false).err().unwrap();
        assert_eq!(err.to_string(), "Class com.example.Nope could not be found.");
        assert!(create(AVRO_CONVERTER, &Props::new(), false).is_err());
        props.insert("converter.encoding".into(), "UTF-16".into());
        assert!(create(STRING_CONVERTER, &props, false).is_err());
        let s = create(STRING_CONVERTER, &Props::new(), true).unwrap();
        let (schema, v) = s.to_connect("t", Some(b"hi")).await.unwrap();
        assert_eq!((schema.unwrap().ty, v), (SchemaType::String, Value::String("hi".into())));
        // a registry that does not answer: a retriable error, not a panic
        let avro = create(
            AVRO_CONVERTER,
            &[("schema.registry.url".to_string(), "http://127.0.0.1:1".to_string())].into(),
            false,
        )
        .unwrap();
        let err = avro
            .from_connect("t", Some(&Schema::of(SchemaType::String)), &Value::String("x".into()))
            .await
            .unwrap_err();
        assert!(err.is_retriable(), "{err}");
        let err = avro.to_connect("t", Some(b"\x01abcd")).await.unwrap_err();
        assert!(err.to_string().contains("Unknown magic byte"), "{err}");
    }
}
