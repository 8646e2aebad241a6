//! `org.apache.kafka.connect.json.JsonConverter`: Connect data as JSON,
//! with `schemas.enable=true` in Connect's envelope
//! `{"schema":{...},"payload":...}`, else plain JSON.
//!
//! JSON objects keep their key order both ways ([`Json`]): Connect writes a
//! schema's keys in a fixed order (`type`, `fields`/`items`/`keys`/`values`,
//! `optional`, `name`, `version`, `doc`, `parameters`, `default`) and a
//! struct's fields in schema order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::Converter;
use crate::config::{Props, PropsExt};
use crate::data::{logical, Field, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

/// A JSON document whose objects keep their key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(bytes: &[u8]) -> Result<Json> {
        serde_json::from_slice(bytes).map_err(|e| {
            ConnectError::data(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
            ))
        })
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// Compact text, as Jackson writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Json::String(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "NULL",
            Json::Bool(_) => "BOOLEAN",
            Json::Number(_) => "NUMBER",
            Json::String(_) => "STRING",
            Json::Array(_) => "ARRAY",
            Json::Object(_) => "OBJECT",
        }
    }

    fn float(v: f64) -> Json {
        serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
    }
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Json, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> std::result::Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Json, E> {
                Ok(Json::float(v))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Json, E> {
                Ok(Json::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Json, E> {
                Ok(Json::String(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Json, A::Error> {
                let mut entries: Vec<(String, Json)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    // a repeated key: the last one wins, as Jackson's tree reads it
                    entries.retain(|(e, _)| *e != k);
                    entries.push((k, v));
                }
                Ok(Json::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.clone()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(a) => Json::Array(a.iter().map(Json::from).collect()),
            serde_json::Value::Object(o) => Json::Object(o.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect()),
        }
    }
}

/// `decimal.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalFormat {
    Base64,
    Numeric,
}

/// The JsonConverter.
pub struct JsonConverter {
    pub schemas_enable: bool,
    pub decimal_format: DecimalFormat,
    pub replace_null_with_default: bool,
}

impl JsonConverter {
    pub fn new(props: &Props) -> Result<JsonConverter> {
        let decimal_format = match props.str_or("decimal.format", "BASE64").trim().to_ascii_uppercase().as_str() {
            "BASE64" => DecimalFormat::Base64,
            "NUMERIC" => DecimalFormat::Numeric,
            other => {
                return Err(ConnectError::config(format!(
                    "Invalid value {other} for configuration decimal.format: String must be one of: BASE64, NUMERIC"
                )));
            }
        };
        Ok(JsonConverter {
            schemas_enable: props.bool_or("schemas.enable", true)?,
            decimal_format,
            replace_null_with_default: props.bool_or("replace.null.with.default", true)?,
        })
    }

    /// The JSON of a value (the envelope with `schemas.enable`).
    pub fn to_json(&self, schema: Option<&Schema>, value: &Value) -> Result<Json> {
        let payload = self.value_to_json(schema, value)?;
        if !self.schemas_enable {
            return Ok(payload);
        }
        let schema = schema.map(|s| self.schema_to_json(s)).transpose()?.unwrap_or(Json::Null);
        Ok(Json::Object(vec![("schema".into(), schema), ("payload".into(), payload)]))
    }

    /// The data of JSON (an envelope with `schemas.enable`).
    pub fn from_json(&self, json: &Json) -> Result<(Option<Schema>, Value)> {
        if !self.schemas_enable {
            return Ok((None, self.json_to_value(None, json)?));
        }
        let envelope_ok = matches!(json, Json::Object(e) if e.len() == 2)
            && json.get("schema").is_some()
            && json.get("payload").is_some();
        if !envelope_ok {
            return Err(ConnectError::data(
                "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain \
                 additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in \
                 your converter configuration.",
            ));
        }
        let schema = match json.get("schema") {
            None | Some(Json::Null) => None,
            Some(s) => Some(self.json_to_schema(s)?),
        };
        let value = self.json_to_value(schema.as_ref(), json.get("payload").unwrap_or(&Json::Null))?;
        Ok((schema, value))
    }

    /// Connect's JSON form of a schema.
    pub fn schema_to_json(&self, schema: &Schema) -> Result<Json> {
        let mut out: Vec<(String, Json)> = vec![("type".into(), Json::String(schema.ty.name().into()))];
        match schema.ty {
            SchemaType::Array => {
                let items = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
                out.push(("items".into(), self.schema_to_json(items)?));
            }
            SchemaType::Map => {
                let (Some(k), Some(v)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                    return Err(ConnectError::data("map schema without key or value schema"));
                };
                out.push(("keys".into(), self.schema_to_json(k)?));
                out.push(("values".into(), self.schema_to_json(v)?));
            }
            SchemaType::Struct => {
                let mut fields = Vec::new();
                for f in &schema.fields {
                    let Json::Object(mut entries) = self.schema_to_json(&f.schema)? else { unreachable!() };
                    entries.push(("field".into(), Json::String(f.name.clone())));
                    fields.push(Json::Object(entries));
                }
                out.push(("fields".into(), Json::Array(fields)));
            }
            _ => {}
        }
        out.push(("optional".into(), Json::Bool(schema.optional)));
        if let Some(name) = &schema.name {
            out.push(("name".into(), Json::String(name.clone())));
        }
        if let Some(version) = schema.version {
            out.push(("version".into(), Json::Number(version.into())));
        }
        if let Some(doc) = &schema.doc {
            out.push(("doc".into(), Json::String(doc.clone())));
        }
        if !schema.parameters.is_empty() {
            let params = schema.parameters.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect();
            out.push(("parameters".into(), Json::Object(params)));
        }
        if let Some(default) = &schema.default {
            out.push(("default".into(), self.value_to_json(Some(schema), default)?));
        }
        Ok(Json::Object(out))
    }

    /// The schema of Connect's JSON form.
    pub fn json_to_schema(&self, json: &Json) -> Result<Schema> {
        let ty = json
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| ConnectError::data("Schema must contain 'type' field"))?;
        let ty = SchemaType::parse(ty)
            .filter(|_| !matches!(ty, "float32" | "float64"))
            .ok_or_else(|| ConnectError::data(format!("Unknown schema type: {ty}")))?;
        let mut schema = Schema::of(ty);
        match ty {
            SchemaType::Array => {
                let items = json.get("items").filter(|j| **j != Json::Null);
                let items = items.ok_or_else(|| ConnectError::data("Array schema did not specify the element type"))?;
                schema.value = Some(Box::new(self.json_to_schema(items)?));
            }
            SchemaType::Map => {
                let k =
                    json.get("keys").ok_or_else(|| ConnectError::data("Map schema did not specify the key type"))?;
                let v = json
                    .get("values")
                    .ok_or_else(|| ConnectError::data("Map schema did not specify the value type"))?;
                schema.key = Some(Box::new(self.json_to_schema(k)?));
                schema.value = Some(Box::new(self.json_to_schema(v)?));
            }
            SchemaType::Struct => {
                let Some(Json::Array(fields)) = json.get("fields") else {
                    return Err(ConnectError::data("Struct schema's \"fields\" argument is not an array."));
                };
                for f in fields {
                    let name = f
                        .get("field")
                        .and_then(Json::as_str)
                        .ok_or_else(|| ConnectError::data("Struct schema's field name not specified properly"))?;
                    if schema.field(name).is_some() {
                        return Err(ConnectError::data(format!(
                            "Cannot create field because of field name duplication {name}"
                        )));
                    }
                    schema.fields.push(Field::new(name, self.json_to_schema(f)?));
                }
            }
            _ => {}
        }
        schema.optional = matches!(json.get("optional"), Some(Json::Bool(true)));
        schema.name = json.get("name").and_then(Json::as_str).map(str::to_string);
        if let Some(Json::Number(n)) = json.get("version") {
            schema.version = n.as_i64().and_then(|v| i32::try_from(v).ok());
        }
        schema.doc = json.get("doc").and_then(Json::as_str).map(str::to_string);
        if let Some(Json::Object(params)) = json.get("parameters") {
            for (k, v) in params {
                let v = v.as_str().ok_or_else(|| ConnectError::data("Schema parameters must have string values."))?;
                schema.parameters.insert(k.clone(), v.to_string());
            }
        }
        if let Some(default) = json.get("default") {
            let value = self.json_to_value(Some(&schema), default)?;
            if !value.is_null() {
                schema.default = Some(value);
            }
        }
        Ok(schema)
    }

    /// The JSON of a value (no envelope).
    pub fn value_to_json(&self, schema: Option<&Schema>, value: &Value) -> Result<Json> {
        if value.is_null() {
            let Some(schema) = schema else { return Ok(Json::Null) };
            if let (Some(default), true) = (&schema.default, self.replace_null_with_default) {
                return self.value_to_json(Some(schema), default);
            }
            if schema.optional {
                return Ok(Json::Null);
            }
            return Err(ConnectError::data(
                "Conversion error: null value for field that is required and has no default value",
            ));
        }
        if let Some(schema) = schema {
            check_type(schema, value)?;
            if schema.name.as_deref() == Some(logical::DECIMAL) {
                let Value::Bytes(unscaled) = value else { unreachable!() };
                return Ok(match self.decimal_format {
                    DecimalFormat::Base64 => Json::String(B64.encode(unscaled)),
                    DecimalFormat::Numeric => {
                        let scale = decimal_scale(schema)?;
                        let text = decimal_to_string(unscaled, scale)?;
                        Json::Number(
                            serde_json::from_str(&text)
                                .map_err(|e| ConnectError::data(format!("decimal {text}: {e}")))?,
                        )
                    }
                });
            }
        }
        Ok(match value {
            Value::Null => Json::Null,
            Value::Boolean(b) => Json::Bool(*b),
            Value::Int8(v) => Json::Number((*v).into()),
            Value::Int16(v) => Json::Number((*v).into()),
            Value::Int32(v) => Json::Number((*v).into()),
            Value::Int64(v) => Json::Number((*v).into()),
            Value::Float32(v) => {
                serde_json::from_str::<serde_json::Number>(&serde_json::to_string(v).unwrap_or_default())
                    .map_or(Json::Null, Json::Number)
            }
            Value::Float64(v) => Json::float(*v),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(B64.encode(b)),
            Value::Array(items) => {
                let element = schema.and_then(|s| s.value.as_deref());
                Json::Array(items.iter().map(|i| self.value_to_json(element, i)).collect::<Result<_>>()?)
            }
            Value::Map(entries) => {
                let (ks, vs) = (schema.and_then(|s| s.key.as_deref()), schema.and_then(|s| s.value.as_deref()));
                let object_mode = match ks {
                    Some(k) => k.ty == SchemaType::String,
                    None => entries.iter().all(|(k, _)| matches!(k, Value::String(_))),
                };
                if object_mode {
                    let mut out = Vec::new();
                    for (k, v) in entries {
                        let key = match self.value_to_json(ks, k)? {
                            Json::String(s) => s,
                            other => other.to_text(),
                        };
                        out.push((key, self.value_to_json(vs, v)?));
                    }
                    Json::Object(out)
                } else {
                    let mut out = Vec::new();
                    for (k, v) in entries {
                        out.push(Json::Array(vec![self.value_to_json(ks, k)?, self.value_to_json(vs, v)?]));
                    }
                    Json::Array(out)
                }
            }
            Value::Struct(values) => {
                let Some(schema) = schema else {
                    return Err(ConnectError::data("Java class class org.apache.kafka.connect.data.Struct does not have corresponding schema type."));
                };
                let mut out = Vec::new();
                for f in &schema.fields {
                    let v = values.iter().find(|(n, _)| *n == f.name).map_or(&Value::Null, |(_, v)| v);
                    out.push((f.name.clone(), self.value_to_json(Some(&f.schema), v)?));
                }
                Json::Object(out)
            }
        })
    }

    /// The value of JSON, under `schema` or inferred (integers Int64, other
    /// numbers Float64, objects string-keyed maps).
    pub fn json_to_value(&self, schema: Option<&Schema>, json: &Json) -> Result<Value> {
        let Some(schema) = schema else {
            return Ok(match json {
                Json::Null => Value::Null,
                Json::Bool(b) => Value::Boolean(*b),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int64(i),
                    None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
                },
                Json::String(s) => Value::String(s.clone()),
                Json::Array(items) => {
                    Value::Array(items.iter().map(|i| self.json_to_value(None, i)).collect::<Result<_>>()?)
                }
                Json::Object(entries) => Value::Map(
                    entries
                        .iter()
                        .map(|(k, v)| Ok((Value::String(k.clone()), self.json_to_value(None, v)?)))
                        .collect::<Result<_>>()?,
                ),
            });
        };
        if *json == Json::Null {
            if let (Some(default), true) = (&schema.default, self.replace_null_with_default) {
                return Ok(default.clone());
            }
            if schema.optional {
                return Ok(Value::Null);
            }
            return Err(ConnectError::data(format!(
                "Invalid null value for required {} field",
                schema.ty.name().to_ascii_uppercase()
            )));
        }
        let bad = |what: &str| {
            ConnectError::data(format!(
                "Invalid type for {}: expected {what} but found {}",
                schema.ty.name().to_ascii_uppercase(),
                json.type_name()
            ))
        };
        if schema.name.as_deref() == Some(logical::DECIMAL) {
            return match json {
                Json::String(s) => {
                    B64.decode(s).map(Value::Bytes).map_err(|_| ConnectError::data("Invalid bytes field"))
                }
                Json::Number(n) => Ok(Value::Bytes(decimal_from_string(&n.to_string(), decimal_scale(schema)?)?)),
                _ => Err(ConnectError::data(format!(
                    "Invalid type for Decimal, underlying representation should be numeric or bytes but was {}",
                    json.type_name()
                ))),
            };
        }
        let int = || match json {
            Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or_else(|| bad("a number")),
            _ => Err(bad("a number")),
        };
        Ok(match schema.ty {
            SchemaType::Boolean => match json {
                Json::Bool(b) => Value::Boolean(*b),
                _ => return Err(bad("a boolean")),
            },
            SchemaType::Int8 => Value::Int8(int()? as i8),
            SchemaType::Int16 => Value::Int16(int()? as i16),
            SchemaType::Int32 => Value::Int32(int()? as i32),
            SchemaType::Int64 => Value::Int64(int()?),
            SchemaType::Float32 | SchemaType::Float64 => {
                let Json::Number(n) = json else { return Err(bad("a number")) };
                let f = n.as_f64().unwrap_or(f64::NAN);
                if schema.ty == SchemaType::Float32 {
                    Value::Float32(f as f32)
                } else {
                    Value::Float64(f)
                }
            }
            SchemaType::String => match json {
                Json::String(s) => Value::String(s.clone()),
                _ => return Err(bad("a string")),
            },
            SchemaType::Bytes => match json {
                Json::String(s) => Value::Bytes(B64.decode(s).map_err(|_| ConnectError::data("Invalid bytes field"))?),
                _ => return Err(bad("base64 bytes")),
            },
            SchemaType::Array => {
                let Json::Array(items) = json else { return Err(bad("an array")) };
                let element = schema.value.as_deref();
                Value::Array(items.iter().map(|i| self.json_to_value(element, i)).collect::<Result<_>>()?)
            }
            SchemaType::Map => {
                let (ks, vs) = (schema.key.as_deref(), schema.value.as_deref());
                if ks.is_none_or(|k| k.ty == SchemaType::String) {
                    let Json::Object(entries) = json else {
                        return Err(ConnectError::data(format!(
                            "Maps with string fields should be encoded as JSON objects, but found {}",
                            json.type_name()
                        )));
                    };
                    let mut out = Vec::new();
                    for (k, v) in entries {
                        out.push((Value::String(k.clone()), self.json_to_value(vs, v)?));
                    }
                    Value::Map(out)
                } else {
                    let Json::Array(entries) = json else {
                        return Err(ConnectError::data(format!(
                            "Maps with non-string fields should be encoded as JSON array of tuples, but found {}",
                            json.type_name()
                        )));
                    };
                    let mut out = Vec::new();
                    for e in entries {
                        let Json::Array(pair) = e else {
                            return Err(ConnectError::data(format!(
                                "Found invalid map entry instead of array tuple: {}",
                                e.type_name()
                            )));
                        };
                        if pair.len() != 2 {
                            return Err(ConnectError::data(format!(
                                "Found invalid map entry, expected length 2 but found :{}",
                                pair.len()
                            )));
                        }
                        out.push((self.json_to_value(ks, &pair[0])?, self.json_to_value(vs, &pair[1])?));
                    }
                    Value::Map(out)
                }
            }
            SchemaType::Struct => {
                if !matches!(json, Json::Object(_)) {
                    return Err(ConnectError::data(format!(
                        "Structs should be encoded as JSON objects, but found {}",
                        json.type_name()
                    )));
                }
                let mut out = Vec::new();
                for f in &schema.fields {
                    let v = self.json_to_value(Some(&f.schema), json.get(&f.name).unwrap_or(&Json::Null))?;
                    out.push((f.name.clone(), v));
                }
                Value::Struct(out)
            }
        })
    }
}

#[async_trait]
impl Converter for JsonConverter {
    async fn from_connect(&self, _topic: &str, schema: Option<&Schema>, value: &Value) -> Result<Option<Vec<u8>>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        Ok(Some(self.to_json(schema, value)?.to_text().into_bytes()))
    }

    async fn to_connect(&self, _topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        match bytes {
            None => Ok((None, Value::Null)),
            Some(b) => self.from_json(&Json::parse(b)?),
        }
    }
}

/// Whether `value`'s variant is the one `schema`'s type holds (a DataException otherwise).
pub fn check_type(schema: &Schema, value: &Value) -> Result<()> {
    let ok = matches!(
        (schema.ty, value),
        (_, Value::Null)
            | (SchemaType::Int8, Value::Int8(_))
            | (SchemaType::Int16, Value::Int16(_))
            | (SchemaType::Int32, Value::Int32(_))
            | (SchemaType::Int64, Value::Int64(_))
            | (SchemaType::Float32, Value::Float32(_))
            | (SchemaType::Float64, Value::Float64(_))
            | (SchemaType::Boolean, Value::Boolean(_))
            | (SchemaType::String, Value::String(_))
            | (SchemaType::Bytes, Value::Bytes(_))
            | (SchemaType::Array, Value::Array(_))
            | (SchemaType::Map, Value::Map(_))
            | (SchemaType::Struct, Value::Struct(_))
    );
    if ok {
        Ok(())
    } else {
        Err(ConnectError::data(format!(
            "Invalid Java object for schema with type {}: {}",
            schema.ty.name().to_ascii_uppercase(),
            value_kind(value)
        )))
    }
}

/// The Java class Connect would name for a value.
pub fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "class java.lang.Boolean",
        Value::Int8(_) => "class java.lang.Byte",
        Value::Int16(_) => "class java.lang.Short",
        Value::Int32(_) => "class java.lang.Integer",
        Value::Int64(_) => "class java.lang.Long",
        Value::Float32(_) => "class java.lang.Float",
        Value::Float64(_) => "class java.lang.Double",
        Value::String(_) => "class java.lang.String",
        Value::Bytes(_) => "class [B",
        Value::Array(_) => "class java.util.ArrayList",
        Value::Map(_) => "class java.util.HashMap",
        Value::Struct(_) => "class org.apache.kafka.connect.data.Struct",
    }
}

/// A Decimal schema's `scale` parameter.
pub fn decimal_scale(schema: &Schema) -> Result<u32> {
    schema
        .parameters
        .get(logical::DECIMAL_SCALE)
        .and_then(|s| s.trim().parse::<u32>().ok())
        .ok_or_else(|| ConnectError::data("Invalid Decimal schema: scale parameter not found."))
}

/// A Decimal's unscaled big-endian two's-complement bytes as an i128.
pub fn unscaled_i128(unscaled: &[u8]) -> Result<i128> {
    if unscaled.is_empty() {
        return Ok(0);
    }
    if unscaled.len() > 16 {
        return Err(ConnectError::data("Decimal values wider than 128 bits are not supported"));
    }
    let fill = if unscaled[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - unscaled.len()..].copy_from_slice(unscaled);
    Ok(i128::from_be_bytes(buf))
}

/// The shortest big-endian two's-complement bytes of an i128 (as Java's BigInteger.toByteArray).
pub fn i128_unscaled(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// A Decimal's text (`12.30` for unscaled 1230, scale 2).
pub fn decimal_to_string(unscaled: &[u8], scale: u32) -> Result<String> {
    let v = unscaled_i128(unscaled)?;
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    let scale = scale as usize;
    if scale == 0 {
        return Ok(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Ok(format!("{sign}{int}.{frac}"))
}

/// A decimal number's text as unscaled bytes at `scale` (digits beyond the scale refused).
pub fn decimal_from_string(text: &str, scale: u32) -> Result<Vec<u8>> {
    let bad = || ConnectError::data(format!("Invalid decimal {text} for scale {scale}"));
    let lower = text.to_ascii_lowercase();
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (lower.as_str(), 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = format!("{int}{frac}");
    let mut frac_len = frac.len() as i32 - exp;
    while frac_len > scale as i32 {
        if !digits.ends_with('0') {
            return Err(bad());
        }
        digits.pop();
        frac_len -= 1;
    }
    while frac_len < scale as i32 {
        digits.push('0');
        frac_len += 1;
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let v: i128 = digits.parse().map_err(|_| bad())?;
    Ok(i128_unscaled(if neg { -v } else { v }))
}

/// A Decimal schema at `scale` (Connect's `Decimal.schema(scale)`).
pub fn decimal_schema(scale: u32) -> Schema {
    let mut parameters = BTreeMap::new();
    parameters.insert(logical::DECIMAL_SCALE.to_string(), scale.to_string());
    Schema { name: Some(logical::DECIMAL.into()), version: Some(1), parameters, ..Schema::of(SchemaType::Bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(props: &[(&str, &str)]) -> JsonConverter {
        JsonConverter::new(&props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap()
    }

    #[tokio::test]
    async fn a_struct_with_schemas_enable_writes_connects_envelope() {
        let c = conv(&[]);
        // JsonConverterTest.structToJson's schema and value
        let schema = Schema::structure(
            None,
            vec![
                Field::new("field1", Schema::of(SchemaType::Boolean)),
                Field::new("field2", Schema::of(SchemaType::String)),
                Field::new("field3", Schema::of(SchemaType::String)),
                Field::new("field4", Schema::of(SchemaType::Boolean)),
            ],
        );
        let value = Value::Struct(vec![
            ("field1".into(), Value::Boolean(true)),
            ("field2".into(), Value::String("string2".into())),
            ("field3".into(), Value::String("string3".into())),
            ("field4".into(), Value::Boolean(false)),
        ]);
        let bytes = c.from_connect("t", Some(&schema), &value).await.unwrap().unwrap();
        let expected = r#"{"schema":{"type":"struct","fields":[{"type":"boolean","optional":false,"field":"field1"},{"type":"string","optional":false,"field":"field2"},{"type":"string","optional":false,"field":"field3"},{"type":"boolean","optional":false,"field":"field4"}],"optional":false},"payload":{"field1":true,"field2":"string2","field3":"string3","field4":false}}"#;
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        let (s, v) = c.to_connect("t", Some(&bytes)).await.unwrap();
        assert_eq!(s.as_ref(), Some(&schema));
        assert_eq!(v, value);
    }

    #[tokio::test]
    async fn logical_types_and_bytes() {
        let c = conv(&[]);
        // JsonConverterTest: decimalToJson (156 at scale 2 -> "AJw="), dateToJson, timestampToJson
        let schema = Schema::structure(
            Some("com.example.Row"),
            vec![
                Field::new("d", decimal_schema(2)),
                Field::new("day", Schema { version: Some(1), ..Schema::of(SchemaType::Int32).named(logical::DATE) }),
                Field::new(
                    "ts",
                    Schema { version: Some(1), ..Schema::of(SchemaType::Int64).named(logical::TIMESTAMP) },
                ),
                Field::new("b", Schema::of(SchemaType::Bytes).optional()),
                Field::new("m", Schema::map(Schema::of(SchemaType::Int32), Schema::of(SchemaType::String))),
            ],
        );
        let value = Value::Struct(vec![
            ("d".into(), Value::Bytes(i128_unscaled(156))),
            ("day".into(), Value::Int32(10000)),
            ("ts".into(), Value::Int64(4_000_000_000)),
            ("b".into(), Value::Bytes(b"test-string".to_vec())),
            ("m".into(), Value::Map(vec![(Value::Int32(1), Value::String("a".into()))])),
        ]);
        let bytes = c.from_connect("t", Some(&schema), &value).await.unwrap().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"d"}"#), "{text}");
        assert!(
            text.contains(r#""payload":{"d":"AJw=","day":10000,"ts":4000000000,"b":"dGVzdC1zdHJpbmc=","m":[[1,"a"]]}"#),
            "{text}"
        );
        let (s, v) = c.to_connect("t", Some(&bytes)).await.unwrap();
        assert_eq!((s.unwrap(), v), (schema.clone(), value.clone()));

        let numeric = conv(&[("decimal.format", "NUMERIC")]);
        let text = String::from_utf8(numeric.from_connect("t", Some(&schema), &value).await.unwrap().unwrap()).unwrap();
        assert!(text.contains(r#""d":1.56"#), "{text}");
        let (_, v) = numeric.to_connect("t", Some(text.as_bytes())).await.unwrap();
        assert_eq!(v, value);
    }

    #[tokio::test]
    async fn schemaless_json_reads_as_maps_int64_float64() {
        let c = conv(&[("schemas.enable", "false")]);
        let (s, v) = c.to_connect("t", Some(br#"{"b":1,"a":[2.5,"x",null,true]}"#)).await.unwrap();
        assert!(s.is_none());
        assert_eq!(
            v,
            Value::Map(vec![
                (Value::String("b".into()), Value::Int64(1)),
                (
                    Value::String("a".into()),
                    Value::Array(vec![
                        Value::Float64(2.5),
                        Value::String("x".into()),
                        Value::Null,
                        Value::Boolean(true)
                    ])
                ),
            ])
        );
        assert_eq!(c.from_connect("t", None, &v).await.unwrap().unwrap(), br#"{"b":1,"a":[2.5,"x",null,true]}"#);
        assert_eq!(c.to_connect("t", None).await.unwrap(), (None, Value::Null));
        assert_eq!(c.from_connect("t", None, &Value::Null).await.unwrap(), None);
        // a string with a schema, schemas off: just the JSON string
        let s = Schema::of(SchemaType::String);
        assert_eq!(c.from_connect("t", Some(&s), &Value::String("hi".into())).await.unwrap().unwrap(), br#""hi""#);
    }

    #[tokio::test]
    async fn bad_input_is_a_data_error() {
        let c = conv(&[]);
        let err = c.to_connect("t", Some(br#"{"a":1}"#)).await.unwrap_err();
        assert!(
            err.to_string().starts_with("JsonConverter with schemas.enable requires \"schema\" and \"payload\""),
            "{err}"
        );
        assert!(matches!(c.to_connect("t", Some(b"{not json")).await, Err(ConnectError::Data(_))));
        let bad = br#"{"schema":{"type":"int32","optional":false},"payload":"x"}"#;
        assert!(matches!(c.to_connect("t", Some(bad)).await, Err(ConnectError::Data(_))));
        let null = br#"{"schema":{"type":"int32","optional":false},"payload":null}"#;
        assert_eq!(
            c.to_connect("t", Some(null)).await.unwrap_err().to_string(),
            "Invalid null value for required INT32 field"
        );
        let s = Schema::of(SchemaType::Int32);
        assert!(matches!(c.from_connect("t", Some(&s), &Value::String("x".into())).await, Err(ConnectError::Data(_))));
        // a null envelope schema: schemaless payload
        let (s, v) = c.to_connect("t", Some(br#"{"schema":null,"payload":{"a":1}}"#)).await.unwrap();
        assert!(s.is_none());
        assert_eq!(v.get("a"), Some(&Value::Int64(1)));
    }

    #[test]
    fn decimals_convert_both_ways() {
        for (v, scale, text) in
            [(156i128, 2, "1.56"), (-5, 3, "-0.005"), (0, 0, "0"), (-128, 1, "-12.8"), (255, 0, "255")]
        {
            let bytes = i128_unscaled(v);
            assert_eq!(unscaled_i128(&bytes).unwrap(), v);
            assert_eq!(decimal_to_string(&bytes, scale).unwrap(), text);
            assert_eq!(decimal_from_string(text, scale).unwrap(), bytes);
        }
        assert_eq!(i128_unscaled(128), vec![0, 128]);
        assert_eq!(i128_unscaled(-1), vec![0xff]);
        assert!(decimal_from_string("1.234", 2).is_err());
    }
}
