//! Connect data <-> Avro for the AvroConverter, by Confluent's AvroData
//! rules: a struct is a record named by the schema's name (or
//! `io.confluent.connect.avro.ConnectDefault`), an optional schema the
//! union `["null", T]` with default null, int8/int16 an `int` with
//! `connect.type`, logical types with Avro's logical types and
//! `connect.name`/`connect.version`/`connect.parameters`, a map with
//! non-string keys an array of `MapEntry` records.

use std::collections::{HashMap, HashSet};

use apache_avro::types::Value as Avro;
use serde_json::{json, Map, Value as J};

use super::json::{check_type, decimal_scale};
use crate::data::{logical, Field, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

pub const NAMESPACE: &str = "io.confluent.connect.avro";
pub const DEFAULT_NAME: &str = "ConnectDefault";
const MAP_ENTRY: &str = "MapEntry";

/// The Avro schema (JSON) of a Connect schema.
pub fn avro_schema(schema: &Schema) -> Result<J> {
    let mut gen = SchemaGen { defined: HashSet::new(), defaults: 0 };
    gen.schema(schema)
}

struct SchemaGen {
    defined: HashSet<String>,
    defaults: usize,
}

impl SchemaGen {
    /// With an optional schema's union.
    fn schema(&mut self, schema: &Schema) -> Result<J> {
        let inner = self.non_optional(schema)?;
        if !schema.optional {
            return Ok(inner);
        }
        Ok(if null_first(schema) { json!(["null", inner]) } else { json!([inner, "null"]) })
    }

    fn non_optional(&mut self, schema: &Schema) -> Result<J> {
        let mut obj = Map::new();
        let base = match schema.ty {
            SchemaType::Int8 | SchemaType::Int16 => {
                obj.insert("connect.type".into(), J::String(schema.ty.name().into()));
                "int"
            }
            SchemaType::Int32 => "int",
            SchemaType::Int64 => "long",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => {
                let items = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
                obj.insert("items".into(), self.schema(items)?);
                "array"
            }
            SchemaType::Map => {
                let (Some(k), Some(v)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                    return Err(ConnectError::data("map schema without key or value schema"));
                };
                if k.ty == SchemaType::String && !k.optional {
                    obj.insert("values".into(), self.schema(v)?);
                    "map"
                } else {
                    let entry = if self.defined.insert(format!("{NAMESPACE}.{MAP_ENTRY}")) {
                        json!({"type": "record", "name": MAP_ENTRY, "namespace": NAMESPACE, "fields": [
                            {"name": "key", "type": self.schema(k)?},
                            {"name": "value", "type": self.schema(v)?},
                        ]})
                    } else {
                        J::String(format!("{NAMESPACE}.{MAP_ENTRY}"))
                    };
                    obj.insert("items".into(), entry);
                    "array"
                }
            }
            SchemaType::Struct => return self.record(schema),
        };
        obj.insert("type".into(), J::String(base.into()));
        if let Some(name) = &schema.name {
            obj.insert("connect.name".into(), J::String(name.clone()));
            match name.as_str() {
                logical::DECIMAL => {
                    let scale = decimal_scale(schema)?;
                    let precision = schema
                        .parameters
                        .get("connect.decimal.precision")
                        .and_then(|p| p.parse::<u32>().ok())
                        .unwrap_or(64);
                    obj.insert("logicalType".into(), "decimal".into());
                    obj.insert("scale".into(), scale.into());
                    obj.insert("precision".into(), precision.into());
                }
                logical::DATE => {
                    obj.insert("logicalType".into(), "date".into());
                }
                logical::TIME => {
                    obj.insert("logicalType".into(), "time-millis".into());
                }
                logical::TIMESTAMP => {
                    obj.insert("logicalType".into(), "timestamp-millis".into());
                }
                _ => {}
            }
        }
        self.meta(schema, &mut obj);
        if obj.len() == 1 {
            return Ok(J::String(base.into()));
        }
        Ok(J::Object(obj))
    }

    fn meta(&self, schema: &Schema, obj: &mut Map<String, J>) {
        if let Some(v) = schema.version {
            obj.insert("connect.version".into(), v.into());
        }
        if let Some(doc) = &schema.doc {
            obj.insert("connect.doc".into(), doc.clone().into());
        }
        if !schema.parameters.is_empty() {
            let params: Map<String, J> = schema.parameters.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
            obj.insert("connect.parameters".into(), J::Object(params));
        }
    }

    fn record(&mut self, schema: &Schema) -> Result<J> {
        let full = match &schema.name {
            Some(n) => n.clone(),
            None => {
                self.defaults += 1;
                if self.defaults == 1 {
                    format!("{NAMESPACE}.{DEFAULT_NAME}")
                } else {
                    format!("{NAMESPACE}.{DEFAULT_NAME}{}", self.defaults)
                }
            }
        };
        if !self.defined.insert(full.clone()) {
            return Ok(J::String(full));
        }
        let (ns, name) = match full.rsplit_once('.') {
            Some((ns, n)) => (Some(ns.to_string()), sanitize(n)),
            None => (None, sanitize(&full)),
        };
        let mut fields = Vec::new();
        for f in &schema.fields {
            let mut field = Map::new();
            field.insert("name".into(), J::String(sanitize(&f.name)));
            field.insert("type".into(), self.schema(&f.schema)?);
            if f.schema.optional && null_first(&f.schema) {
                field.insert("default".into(), J::Null);
            } else if let Some(default) = &f.schema.default {
                field.insert("default".into(), default_json(&f.schema, default)?);
            }
            fields.push(J::Object(field));
        }
        let mut obj = Map::new();
        obj.insert("type".into(), "record".into());
        obj.insert("name".into(), J::String(name));
        if let Some(ns) = ns {
            obj.insert("namespace".into(), J::String(ns));
        }
        obj.insert("fields".into(), J::Array(fields));
        if let Some(doc) = &schema.doc {
            obj.insert("doc".into(), doc.clone().into());
        }
        if let Some(v) = schema.version {
            obj.insert("connect.version".into(), v.into());
        }
        if !schema.parameters.is_empty() {
            let params: Map<String, J> = schema.parameters.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
            obj.insert("connect.parameters".into(), J::Object(params));
        }
        Ok(J::Object(obj))
    }
}

/// Avro names are `[A-Za-z_][A-Za-z0-9_]*`: others replaced by `_` (Confluent's scrubbing).
fn sanitize(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// An optional schema's union has null first unless its default is not null.
fn null_first(schema: &Schema) -> bool {
    schema.default.as_ref().is_none_or(Value::is_null)
}

/// A field default as Avro's JSON (primitives; bytes as ISO-8859-1 text).
fn default_json(schema: &Schema, v: &Value) -> Result<J> {
    Ok(match v {
        Value::Null => J::Null,
        Value::Boolean(b) => (*b).into(),
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => v.as_i64().unwrap_or(0).into(),
        Value::Float32(f) => J::from(f64::from(*f)),
        Value::Float64(f) => J::from(*f),
        Value::String(s) => s.clone().into(),
        Value::Bytes(b) => J::String(b.iter().map(|&c| c as char).collect()),
        Value::Array(items) => {
            let element = schema.value.as_deref().ok_or_else(|| ConnectError::data("array without items"))?;
            J::Array(items.iter().map(|i| default_json(element, i)).collect::<Result<_>>()?)
        }
        _ => return Err(ConnectError::data("struct and map defaults are not supported in Avro schemas")),
    })
}

/// The Avro value of Connect data under `schema` (shaped as [`avro_schema`] made it).
pub fn to_avro(schema: &Schema, value: &Value) -> Result<Avro> {
    let value = match (value, &schema.default) {
        (Value::Null, Some(d)) if !d.is_null() => d,
        _ => value,
    };
    if schema.optional {
        let first = null_first(schema);
        return Ok(match (value, first) {
            (Value::Null, true) => Avro::Union(0, Box::new(Avro::Null)),
            (Value::Null, false) => Avro::Union(1, Box::new(Avro::Null)),
            (v, true) => Avro::Union(1, Box::new(to_avro_inner(schema, v)?)),
            (v, false) => Avro::Union(0, Box::new(to_avro_inner(schema, v)?)),
        });
    }
    if value.is_null() {
        return Err(ConnectError::data(
            "Conversion error: null value for field that is required and has no default value",
        ));
    }
    to_avro_inner(schema, value)
}

fn to_avro_inner(schema: &Schema, value: &Value) -> Result<Avro> {
    check_type(schema, value)?;
    Ok(match value {
        Value::Null => Avro::Null,
        Value::Boolean(b) => Avro::Boolean(*b),
        Value::Int8(v) => Avro::Int((*v).into()),
        Value::Int16(v) => Avro::Int((*v).into()),
        Value::Int32(v) => match schema.name.as_deref() {
            Some(logical::DATE) => Avro::Date(*v),
            Some(logical::TIME) => Avro::TimeMillis(*v),
            _ => Avro::Int(*v),
        },
        Value::Int64(v) => match schema.name.as_deref() {
            Some(logical::TIMESTAMP) => Avro::TimestampMillis(*v),
            _ => Avro::Long(*v),
        },
        Value::Float32(v) => Avro::Float(*v),
        Value::Float64(v) => Avro::Double(*v),
        Value::String(s) => Avro::String(s.clone()),
        Value::Bytes(b) => match schema.name.as_deref() {
            Some(logical::DECIMAL) => Avro::Decimal(apache_avro::Decimal::from(b)),
            _ => Avro::Bytes(b.clone()),
        },
        Value::Array(items) => {
            let element = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
            Avro::Array(items.iter().map(|i| to_avro(element, i)).collect::<Result<_>>()?)
        }
        Value::Map(entries) => {
            let (Some(k), Some(v)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                return Err(ConnectError::data("map schema without key or value schema"));
            };
            if k.ty == SchemaType::String && !k.optional {
                let mut out = HashMap::new();
                for (key, val) in entries {
                    let Value::String(key) = key else {
                        return Err(ConnectError::data("a map with string keys has a key that is not a string"));
                    };
                    out.insert(key.clone(), to_avro(v, val)?);
                }
                Avro::Map(out)
            } else {
                let mut out = Vec::new();
                for (key, val) in entries {
                    out.push(Avro::Record(vec![("key".into(), to_avro(k, key)?), ("value".into(), to_avro(v, val)?)]));
                }
                Avro::Array(out)
            }
        }
        Value::Struct(values) => {
            let mut out = Vec::new();
            for f in &schema.fields {
                let v = values.iter().find(|(n, _)| *n == f.name).map_or(&Value::Null, |(_, v)| v);
                out.push((sanitize(&f.name), to_avro(&f.schema, v)?));
            }
            Avro::Record(out)
        }
    })
}

/// Reads Avro schemas (JSON) into Connect schemas, resolving named types.
#[derive(Default)]
pub struct ConnectSchemaReader {
    named: HashMap<String, Schema>,
}

impl ConnectSchemaReader {
    /// The Connect schema of an Avro schema.
    pub fn read(&mut self, avro: &J, namespace: Option<&str>) -> Result<Schema> {
        match avro {
            J::String(name) => self.primitive_or_named(name, namespace, &Map::new()),
            J::Array(branches) => {
                let non_null: Vec<&J> = branches.iter().filter(|b| b.as_str() != Some("null")).collect();
                if non_null.len() == 1 && branches.len() == 2 {
                    let mut s = self.read(non_null[0], namespace)?;
                    s.optional = true;
                    return Ok(s);
                }
                // a general union: Confluent's io.confluent.connect.avro.Union struct, a field per branch
                let mut fields = Vec::new();
                for b in &non_null {
                    let s = self.read(b, namespace)?;
                    // Confluent names a branch by its Avro type name (a named type: its short name)
                    let name = match b {
                        J::String(t) => t.rsplit('.').next().unwrap_or(t).to_string(),
                        J::Object(o) => match (o.get("name").and_then(J::as_str), o.get("type").and_then(J::as_str)) {
                            (Some(n), _) => n.rsplit('.').next().unwrap_or(n).to_string(),
                            (None, Some(t)) => t.to_string(),
                            (None, None) => s.ty.name().to_string(),
                        },
                        _ => s.ty.name().to_string(),
                    };
                    fields.push(Field::new(&name, s.optional()));
                }
                let mut s = Schema::structure(Some("io.confluent.connect.avro.Union"), fields);
                s.optional = non_null.len() != branches.len();
                Ok(s)
            }
            J::Object(obj) => {
                let ty = obj.get("type").ok_or_else(|| ConnectError::data("Avro schema without a type"))?;
                match ty.as_str() {
                    Some("record") | Some("error") => self.record(obj, namespace),
                    Some("enum") => {
                        let s = Schema::of(SchemaType::String);
                        if let Some(full) = full_name(obj, namespace) {
                            self.named.insert(full, s.clone());
                        }
                        Ok(s)
                    }
                    Some("fixed") => {
                        let s = self.logical(Schema::of(SchemaType::Bytes), obj)?;
                        if let Some(full) = full_name(obj, namespace) {
                            self.named.insert(full, s.clone());
                        }
                        Ok(s)
                    }
                    Some("array") => {
                        let items = obj.get("items").ok_or_else(|| ConnectError::data("Avro array without items"))?;
                        // Confluent's MapEntry arrays are maps with non-string keys
                        if let J::Object(entry) = items {
                            if entry.get("name").and_then(J::as_str) == Some(MAP_ENTRY) {
                                let rec = self.read(items, namespace)?;
                                if let (Some(k), Some(v)) = (rec.field("key"), rec.field("value")) {
                                    return self.meta(Schema::map(k.schema.clone(), v.schema.clone()), obj);
                                }
                            }
                        }
                        let items = self.read(items, namespace)?;
                        self.meta(Schema::array(items), obj)
                    }
                    Some("map") => {
                        let values = obj.get("values").ok_or_else(|| ConnectError::data("Avro map without values"))?;
                        let values = self.read(values, namespace)?;
                        self.meta(Schema::map(Schema::of(SchemaType::String), values), obj)
                    }
                    Some(prim) => self.primitive_or_named(prim, namespace, obj),
                    None => self.read(ty, namespace),
                }
            }
            other => Err(ConnectError::data(format!("Invalid Avro schema: {other}"))),
        }
    }

    fn primitive_or_named(&mut self, name: &str, namespace: Option<&str>, obj: &Map<String, J>) -> Result<Schema> {
        let ty = match name {
            "null" => return Err(ConnectError::data("a null Avro schema outside a union has no Connect schema")),
            "boolean" => SchemaType::Boolean,
            "int" => match obj.get("connect.type").and_then(J::as_str) {
                Some("int8") => SchemaType::Int8,
                Some("int16") => SchemaType::Int16,
                _ => SchemaType::Int32,
            },
            "long" => SchemaType::Int64,
            "float" => SchemaType::Float32,
            "double" => SchemaType::Float64,
            "bytes" => SchemaType::Bytes,
            "string" => SchemaType::String,
            other => {
                let full = if other.contains('.') {
                    other.to_string()
                } else {
                    namespace.map_or_else(|| other.to_string(), |ns| format!("{ns}.{other}"))
                };
                return self
                    .named
                    .get(&full)
                    .or_else(|| self.named.get(other))
                    .cloned()
                    .ok_or_else(|| ConnectError::data(format!("Unknown Avro type {other}")));
            }
        };
        self.logical(Schema::of(ty), obj)
    }

    fn logical(&self, mut s: Schema, obj: &Map<String, J>) -> Result<Schema> {
        match obj.get("logicalType").and_then(J::as_str) {
            Some("decimal") if matches!(s.ty, SchemaType::Bytes) => {
                let scale = obj.get("scale").and_then(J::as_u64).unwrap_or(0);
                s = super::json::decimal_schema(scale as u32);
                if let Some(p) = obj.get("precision").and_then(J::as_u64) {
                    if p != 64 {
                        s.parameters.insert("connect.decimal.precision".into(), p.to_string());
                    }
                }
            }
            Some("date") if s.ty == SchemaType::Int32 => s = versioned(s, logical::DATE),
            Some("time-millis") if s.ty == SchemaType::Int32 => s = versioned(s, logical::TIME),
            Some("timestamp-millis") if s.ty == SchemaType::Int64 => s = versioned(s, logical::TIMESTAMP),
            _ => {}
        }
        self.meta(s, obj)
    }

    fn meta(&self, mut s: Schema, obj: &Map<String, J>) -> Result<Schema> {
        if let Some(n) = obj.get("connect.name").and_then(J::as_str) {
            s.name = Some(n.to_string());
        }
        if let Some(v) = obj.get("connect.version").and_then(J::as_i64) {
            s.version = i32::try_from(v).ok();
        }
        if let Some(d) = obj.get("connect.doc").and_then(J::as_str) {
            s.doc = Some(d.to_string());
        }
        if let Some(J::Object(params)) = obj.get("connect.parameters") {
            for (k, v) in params {
                if let Some(v) = v.as_str() {
                    s.parameters.insert(k.clone(), v.to_string());
                }
            }
        }
        Ok(s)
    }

    fn record(&mut self, obj: &Map<String, J>, namespace: Option<&str>) -> Result<Schema> {
        let full = full_name(obj, namespace).ok_or_else(|| ConnectError::data("Avro record without a name"))?;
        let ns = full.rsplit_once('.').map(|(ns, _)| ns.to_string());
        let Some(J::Array(fields)) = obj.get("fields") else {
            return Err(ConnectError::data(format!("Avro record {full} without fields")));
        };
        let is_default = full == format!("{NAMESPACE}.{DEFAULT_NAME}")
            || full
                .strip_prefix(&format!("{NAMESPACE}.{DEFAULT_NAME}"))
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        let mut s = Schema::structure(if is_default { None } else { Some(&full) }, Vec::new());
        // a recursive reference sees the name (without fields: Connect has no recursive schemas)
        self.named.insert(full.clone(), s.clone());
        for f in fields {
            let name =
                f.get("name").and_then(J::as_str).ok_or_else(|| ConnectError::data("Avro field without a name"))?;
            let ty = f.get("type").ok_or_else(|| ConnectError::data(format!("Avro field {name} without a type")))?;
            let mut fs = self.read(ty, ns.as_deref())?;
            if let Some(doc) = f.get("doc").and_then(J::as_str) {
                fs.doc.get_or_insert_with(|| doc.to_string());
            }
            s.fields.push(Field::new(name, fs));
        }
        s.doc = obj.get("doc").and_then(J::as_str).map(str::to_string);
        let s = self.meta(s, obj)?;
        self.named.insert(full, s.clone());
        Ok(s)
    }
}

fn versioned(s: Schema, name: &str) -> Schema {
    Schema { version: Some(1), ..s.named(name) }
}

fn full_name(obj: &Map<String, J>, namespace: Option<&str>) -> Option<String> {
    let name = obj.get("name")?.as_str()?;
    if name.contains('.') {
        return Some(name.to_string());
    }
    let ns = obj.get("namespace").and_then(J::as_str).or(namespace).filter(|n| !n.is_empty());
    Some(ns.map_or_else(|| name.to_string(), |ns| format!("{ns}.{name}")))
}

/// The Connect value of an Avro value, under the Connect schema read from its Avro schema.
pub fn from_avro(schema: &Schema, value: Avro) -> Result<Value> {
    let value = match value {
        Avro::Union(_, inner) => *inner,
        v => v,
    };
    if matches!(value, Avro::Null) {
        return Ok(Value::Null);
    }
    let mismatch =
        |v: &Avro| ConnectError::data(format!("Avro value {v:?} does not match schema type {}", schema.ty.name()));
    Ok(match (schema.ty, value) {
        (SchemaType::Boolean, Avro::Boolean(b)) => Value::Boolean(b),
        (SchemaType::Int8, Avro::Int(i)) => Value::Int8(i as i8),
        (SchemaType::Int16, Avro::Int(i)) => Value::Int16(i as i16),
        (SchemaType::Int32, Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i)) => Value::Int32(i),
        (
            SchemaType::Int64,
            Avro::Long(i)
            | Avro::TimestampMillis(i)
            | Avro::TimestampMicros(i)
            | Avro::TimestampNanos(i)
            | Avro::LocalTimestampMillis(i)
            | Avro::LocalTimestampMicros(i)
            | Avro::LocalTimestampNanos(i)
            | Avro::TimeMicros(i),
        ) => Value::Int64(i),
        (SchemaType::Float32, Avro::Float(f)) => Value::Float32(f),
        (SchemaType::Float64, Avro::Double(f)) => Value::Float64(f),
        (SchemaType::String, Avro::String(s) | Avro::Enum(_, s)) => Value::String(s),
        (SchemaType::String, Avro::Uuid(u)) => Value::String(u.to_string()),
        (SchemaType::Bytes, Avro::Bytes(b) | Avro::Fixed(_, b)) => Value::Bytes(b),
        (SchemaType::Bytes, Avro::Decimal(d)) => {
            Value::Bytes(Vec::<u8>::try_from(&d).map_err(|e| ConnectError::data(format!("Avro decimal: {e}")))?)
        }
        (SchemaType::Array, Avro::Array(items)) => {
            let element = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
            Value::Array(items.into_iter().map(|i| from_avro(element, i)).collect::<Result<_>>()?)
        }
        (SchemaType::Map, Avro::Map(entries)) => {
            let vs = schema.value.as_deref().ok_or_else(|| ConnectError::data("map schema without values"))?;
            let mut out: Vec<(Value, Value)> =
                entries.into_iter().map(|(k, v)| Ok((Value::String(k), from_avro(vs, v)?))).collect::<Result<_>>()?;
            out.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
            Value::Map(out)
        }
        (SchemaType::Map, Avro::Array(entries)) => {
            let (Some(ks), Some(vs)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                return Err(ConnectError::data("map schema without key or value schema"));
            };
            let mut out = Vec::new();
            for e in entries {
                let Avro::Record(fields) = e else { return Err(ConnectError::data("a map entry is not a record")) };
                let mut key = Value::Null;
                let mut val = Value::Null;
                for (n, v) in fields {
                    match n.as_str() {
                        "key" => key = from_avro(ks, v)?,
                        "value" => val = from_avro(vs, v)?,
                        _ => {}
                    }
                }
                out.push((key, val));
            }
            Value::Map(out)
        }
        (SchemaType::Struct, Avro::Record(fields)) => {
            let mut fields: HashMap<String, Avro> = fields.into_iter().collect();
            let mut out = Vec::new();
            for f in &schema.fields {
                let v = fields.remove(&f.name).unwrap_or(Avro::Null);
                out.push((f.name.clone(), from_avro(&f.schema, v)?));
            }
            Value::Struct(out)
        }
        (SchemaType::Struct, other) if schema.name.as_deref() == Some("io.confluent.connect.avro.Union") => {
            // a general union's branch: the first field whose type takes it
            let mut out: Vec<(String, Value)> = schema.fields.iter().map(|f| (f.name.clone(), Value::Null)).collect();
            for (i, f) in schema.fields.iter().enumerate() {
                if let Ok(v) = from_avro(&f.schema, other.clone()) {
                    out[i].1 = v;
                    return Ok(Value::Struct(out));
                }
            }
            return Err(mismatch(&other));
        }
        (_, other) => return Err(mismatch(&other)),
    })
}

/// Encodes Connect data as an Avro datum of `avro` (the schema [`avro_schema`] made).
pub fn encode(avro: &apache_avro::Schema, schema: &Schema, value: &Value) -> Result<Vec<u8>> {
    let datum = to_avro(schema, value)?;
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(avro)
        .build()
        .map_err(|e| ConnectError::data(format!("Avro schema: {e}")))?;
    guarded(|| writer.write_value_to_vec(datum))
        .map_err(|e| ConnectError::data(format!("Failed to serialize Avro data: {e}")))
}

/// Decodes an Avro datum written with `avro`.
pub fn decode(avro: &apache_avro::Schema, schema: &Schema, payload: &[u8]) -> Result<Value> {
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(avro)
        .build()
        .map_err(|e| ConnectError::data(format!("Avro schema: {e}")))?;
    let mut rest = payload;
    let value = guarded(|| reader.read_value(&mut rest))
        .map_err(|e| ConnectError::data(format!("Failed to deserialize Avro data: {e}")))?;
    from_avro(schema, value)
}

/// Runs a third-party codec on data from the network: a panic in it is an error.
fn guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> std::result::Result<T, E>) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the Avro codec failed on this data".into()),
    }
}

/// Parses an Avro schema's text.
pub fn parse(text: &str) -> Result<apache_avro::Schema> {
    guarded(|| apache_avro::Schema::parse_str(text))
        .map_err(|e| ConnectError::data(format!("Invalid Avro schema: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::json::{decimal_schema, i128_unscaled};

    fn row_schema() -> Schema {
        Schema::structure(
            Some("com.example.Row"),
            vec![
                Field::new("id", Schema::of(SchemaType::Int64)),
                Field::new("name", Schema::of(SchemaType::String).optional()),
                Field::new("small", Schema::of(SchemaType::Int8)),
                Field::new("price", decimal_schema(2)),
                Field::new(
                    "ts",
                    Schema { version: Some(1), ..Schema::of(SchemaType::Int64).named(logical::TIMESTAMP) },
                ),
                Field::new("tags", Schema::array(Schema::of(SchemaType::String))),
                Field::new("attrs", Schema::map(Schema::of(SchemaType::String), Schema::of(SchemaType::Int32))),
                Field::new("codes", Schema::map(Schema::of(SchemaType::Int32), Schema::of(SchemaType::String))),
                Field::new(
                    "inner",
                    Schema::structure(None, vec![Field::new("x", Schema::of(SchemaType::Float64))]).optional(),
                ),
            ],
        )
    }

    fn row() -> Value {
        Value::Struct(vec![
            ("id".into(), Value::Int64(7)),
            ("name".into(), Value::Null),
            ("small".into(), Value::Int8(-3)),
            ("price".into(), Value::Bytes(i128_unscaled(1999))),
            ("ts".into(), Value::Int64(1_700_000_000_000)),
            ("tags".into(), Value::Array(vec![Value::String("a".into())])),
            ("attrs".into(), Value::Map(vec![(Value::String("k".into()), Value::Int32(1))])),
            ("codes".into(), Value::Map(vec![(Value::Int32(5), Value::String("five".into()))])),
            ("inner".into(), Value::Struct(vec![("x".into(), Value::Float64(1.5))])),
        ])
    }

    #[test]
    fn a_struct_round_trips_through_avro() {
        let schema = row_schema();
        let avro_json = avro_schema(&schema).unwrap();
        assert_eq!(avro_json["name"], "Row");
        assert_eq!(avro_json["namespace"], "com.example");
        assert_eq!(avro_json["fields"][1]["type"], json!(["null", "string"]));
        assert_eq!(avro_json["fields"][1]["default"], J::Null);
        assert_eq!(avro_json["fields"][2]["type"], json!({"type": "int", "connect.type": "int8"}));
        assert_eq!(avro_json["fields"][3]["type"]["logicalType"], "decimal");
        assert_eq!(avro_json["fields"][8]["type"][1]["name"], "ConnectDefault");
        let parsed = parse(&avro_json.to_string()).unwrap();
        let bytes = encode(&parsed, &schema, &row()).unwrap();
        let back_schema = ConnectSchemaReader::default().read(&avro_json, None).unwrap();
        assert_eq!(back_schema, schema);
        assert_eq!(decode(&parsed, &back_schema, &bytes).unwrap(), row());
    }

    #[test]
    fn bad_data_is_an_error() {
        let schema = row_schema();
        let parsed = parse(&avro_schema(&schema).unwrap().to_string()).unwrap();
        assert!(matches!(decode(&parsed, &schema, &[0xff, 0xff, 0xff]), Err(ConnectError::Data(_))));
        assert!(matches!(encode(&parsed, &schema, &Value::String("x".into())), Err(ConnectError::Data(_))));
        let missing = Value::Struct(vec![("id".into(), Value::Null)]);
        assert!(matches!(encode(&parsed, &schema, &missing), Err(ConnectError::Data(_))));
    }

    #[test]
    fn avro_written_elsewhere_reads_with_confluents_rules() {
        let avro_json: J = serde_json::from_str(
            r#"{"type":"record","name":"U","fields":[
                {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y"]}},
                {"name":"d","type":{"type":"int","logicalType":"date"}},
                {"name":"u","type":["null","long","string"]}]}"#,
        )
        .unwrap();
        let schema = ConnectSchemaReader::default().read(&avro_json, None).unwrap();
        assert_eq!(schema.name.as_deref(), Some("U"));
        assert_eq!(schema.fields[1].schema.name.as_deref(), Some(logical::DATE));
        let union = &schema.fields[2].schema;
        assert_eq!(union.name.as_deref(), Some("io.confluent.connect.avro.Union"));
        assert_eq!(union.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["long", "string"]);
        let value = Avro::Record(vec![
            ("e".into(), Avro::Enum(1, "Y".into())),
            ("d".into(), Avro::Date(19000)),
            ("u".into(), Avro::Union(2, Box::new(Avro::String("s".into())))),
        ]);
        assert_eq!(
            from_avro(&schema, value).unwrap(),
            Value::Struct(vec![
                ("e".into(), Value::String("Y".into())),
                ("d".into(), Value::Int32(19000)),
                (
                    "u".into(),
                    Value::Struct(vec![("long".into(), Value::Null), ("string".into(), Value::String("s".into()))])
                ),
            ])
        );
    }
}
