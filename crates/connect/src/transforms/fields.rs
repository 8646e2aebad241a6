//! The field transforms (Kafka's `org.apache.kafka.connect.transforms.*`,
//! each on the key (`$Key`) or the value (`$Value`)): InsertField,
//! ReplaceField, MaskField, ExtractField, HoistField, Cast, and ValueToKey.
//! With a schema they take a Struct and update the schema; without one a
//! Map with string keys, as Connect's do.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;

use super::{Cfg, Transform};
use crate::converter::display;
use crate::converter::json::{decimal_scale, decimal_to_string, value_kind};
use crate::data::{logical, Field, Record, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

/// Which part of the record a transform works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Key,
    Value,
}

impl Part {
    fn get(self, r: &Record) -> (Option<&Schema>, &Value) {
        match self {
            Part::Key => (r.key_schema.as_ref(), &r.key),
            Part::Value => (r.value_schema.as_ref(), &r.value),
        }
    }

    fn set(self, r: &mut Record, schema: Option<Schema>, value: Value) {
        match self {
            Part::Key => {
                r.key_schema = schema;
                r.key = value;
            }
            Part::Value => {
                r.value_schema = schema;
                r.value = value;
            }
        }
    }
}

/// Replaces the part's (schema, value) with what `f` makes of them; a null
/// value passes unchanged.
fn update(
    part: Part,
    mut record: Record,
    f: impl FnOnce(&Record, Option<&Schema>, &Value) -> Result<(Option<Schema>, Value)>,
) -> Result<Option<Record>> {
    let (schema, value) = part.get(&record);
    if value.is_null() {
        return Ok(Some(record));
    }
    let (schema, value) = f(&record, schema, value)?;
    part.set(&mut record, schema, value);
    Ok(Some(record))
}

fn record_kind(r: &Record) -> &'static str {
    if r.kafka_offset.is_some() {
        "org.apache.kafka.connect.sink.SinkRecord"
    } else {
        "org.apache.kafka.connect.source.SourceRecord"
    }
}

fn require_struct<'a>(value: &'a Value, purpose: &str) -> Result<&'a Vec<(String, Value)>> {
    match value {
        Value::Struct(fields) => Ok(fields),
        other => Err(ConnectError::data(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            class_name(other)
        ))),
    }
}

fn require_map<'a>(value: &'a Value, purpose: &str) -> Result<&'a Vec<(Value, Value)>> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => Err(ConnectError::data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            class_name(other)
        ))),
    }
}

fn class_name(v: &Value) -> &'static str {
    value_kind(v).strip_prefix("class ").unwrap_or("null")
}

fn map_get<'a>(entries: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    entries.iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v)
}

fn map_put(entries: &mut Vec<(Value, Value)>, name: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(name)) {
        Some(e) => e.1 = value,
        None => entries.push((Value::String(name.to_string()), value)),
    }
}

fn struct_get<'a>(fields: &'a [(String, Value)], name: &str) -> &'a Value {
    fields.iter().find(|(n, _)| n == name).map_or(&Value::Null, |(_, v)| v)
}

/// A struct schema like `schema` (name, version, doc, parameters, optional) with `fields`.
fn struct_like(schema: &Schema, fields: Vec<Field>) -> Schema {
    Schema {
        ty: SchemaType::Struct,
        optional: schema.optional,
        name: schema.name.clone(),
        version: schema.version,
        doc: schema.doc.clone(),
        parameters: schema.parameters.clone(),
        default: None,
        fields,
        key: None,
        value: None,
    }
}

fn timestamp_schema() -> Schema {
    Schema { version: Some(1), ..Schema::of(SchemaType::Int64).named(logical::TIMESTAMP) }
}

// ---------------------------------------------------------------- InsertField

/// A field name with `!` (required) or `?` (optional, the default).
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    optional: bool,
}

impl Spec {
    fn parse(spec: Option<String>) -> Option<Spec> {
        let spec = spec?.trim().to_string();
        if spec.is_empty() {
            return None;
        }
        Some(if let Some(n) = spec.strip_suffix('!') {
            Spec { name: n.into(), optional: false }
        } else if let Some(n) = spec.strip_suffix('?') {
            Spec { name: n.into(), optional: true }
        } else {
            Spec { name: spec, optional: true }
        })
    }

    fn schema(&self, ty: SchemaType) -> Schema {
        Schema { optional: self.optional, ..Schema::of(ty) }
    }
}

/// `InsertField`: `topic.field`, `partition.field`, `offset.field`,
/// `timestamp.field`, `static.field` + `static.value`.
pub struct InsertField {
    part: Part,
    topic: Option<Spec>,
    partition: Option<Spec>,
    offset: Option<Spec>,
    timestamp: Option<Spec>,
    static_field: Option<Spec>,
    static_value: Option<String>,
}

const INSERT: &str = "field insertion";

impl InsertField {
    pub fn new(part: Part, cfg: &mut Cfg) -> InsertField {
        let t = InsertField {
            part,
            topic: Spec::parse(cfg.optional("topic.field")),
            partition: Spec::parse(cfg.optional("partition.field")),
            offset: Spec::parse(cfg.optional("offset.field")),
            timestamp: Spec::parse(cfg.optional("timestamp.field")),
            static_field: Spec::parse(cfg.optional("static.field")),
            static_value: cfg.optional("static.value"),
        };
        if t.topic.is_none()
            && t.partition.is_none()
            && t.offset.is_none()
            && t.timestamp.is_none()
            && t.static_field.is_none()
        {
            cfg.error("type", "No field insertion configured");
        }
        if let (Some(f), None) = (&t.static_field, &t.static_value) {
            let k = cfg.key("static.value");
            cfg.error(
                "static.value",
                format!("Invalid value null for configuration {k}: No value specified for static field: {}", f.name),
            );
        }
        t
    }

    /// The (name, schema, value) of each inserted field.
    fn inserted(&self, r: &Record) -> Result<Vec<(&Spec, Schema, Value)>> {
        let mut out = Vec::new();
        if let Some(s) = &self.topic {
            out.push((s, s.schema(SchemaType::String), Value::String(r.topic.clone())));
        }
        if let Some(s) = &self.partition {
            out.push((s, s.schema(SchemaType::Int32), r.partition.map_or(Value::Null, Value::Int32)));
        }
        if let Some(s) = &self.offset {
            let Some(o) = r.kafka_offset else {
                return Err(ConnectError::data(format!(
                    "Only SinkRecord supported for [{INSERT}], found: {}",
                    record_kind(r)
                )));
            };
            out.push((s, s.schema(SchemaType::Int64), Value::Int64(o)));
        }
        if let Some(s) = &self.timestamp {
            let schema = Schema { optional: s.optional, ..timestamp_schema() };
            out.push((s, schema, r.timestamp.map_or(Value::Null, Value::Int64)));
        }
        if let (Some(s), Some(v)) = (&self.static_field, &self.static_value) {
            out.push((s, s.schema(SchemaType::String), Value::String(v.clone())));
        }
        Ok(out)
    }
}

impl Transform for InsertField {
    fn apply(&self, record: Record) -> Result<Option<Record>> {
        update(self.part, record, |record, schema, value| {
            let inserted = self.inserted(record)?;
            Ok(match schema {
                None => {
                    let mut entries = require_map(value, INSERT)?.clone();
                    for (spec, _, v) in inserted {
                        // schemaless: absent partition/timestamp are not inserted
                        if !v.is_null() {
                            map_put(&mut entries, &spec.name, v);
                        }
                    }
                    (None, Value::Map(entries))
                }
                Some(schema) => {
                    let mut values = require_struct(value, INSERT)?.clone();
                    let mut fields = schema.fields.clone();
                    for (spec, s, v) in inserted {
                        if schema.field(&spec.name).is_some() {
                            return Err(ConnectError::data(format!(
                                "Cannot create field because of field name duplication {}",
                                spec.name
                            )));
                        }
                        if v.is_null() && !s.optional {
                            return Err(ConnectError::data(format!(
                                "Invalid value: null used for required field: \"{}\", schema type: {}",
                                spec.name,
                                s.ty.name().to_ascii_uppercase()
                            )));
                        }
                        fields.push(Field::new(&spec.name, s));
                        values.push((spec.name.clone(), v));
                    }
                    (Some(struct_like(schema, fields)), Value::Struct(values))
                }
            })
        })
    }
}

// ---------------------------------------------------------------- ReplaceField

/// `ReplaceField`: `include` (`whitelist`), `exclude` (`blacklist`), `renames` (`a:b,c:d`).
pub struct ReplaceField {
    part: Part,
    include: HashSet<String>,
    exclude: HashSet<String>,
    renames: HashMap<String, String>,
}

impl ReplaceField {
    pub fn new(part: Part, cfg: &mut Cfg) -> ReplaceField {
        let list = |new: &str, old: &str| -> HashSet<String> {
            let mut v = cfg.list(new);
            if v.is_empty() {
                v = cfg.list(old);
            }
            v.into_iter().collect()
        };
        let include = list("include", "whitelist");
        let exclude = list("exclude", "blacklist");
        let mut renames = HashMap::new();
        for mapping in cfg.list("renames") {
            match mapping.split_once(':') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() && !to.contains(':') => {
                    renames.insert(from.to_string(), to.to_string());
                }
                _ => {
                    let k = cfg.key("renames");
                    let all = cfg.string_or("renames", "");
                    cfg.error(
                        "renames",
                        format!("Invalid value {all} for configuration {k}: Invalid rename mapping: {mapping}"),
                    );
                }
            }
        }
        ReplaceField { part, include, exclude, renames }
    }

    fn keep(&self, name: &str) -> bool {
        !self.exclude.contains(name) && (self.include.is_empty() || self.include.contains(name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames.get(name).map_or(name, String::as_str)
    }
}

impl Transform for ReplaceField {
    fn apply(&self, record: Record) -> Result<Option<Record>> {
        update(self.part, record, |_, schema, value| {
            Ok(match schema {
                None => {
                    let entries = require_map(value, "field replacement")?;
                    let mut out = Vec::new();
                    for (k, v) in entries {
                        match k.as_str() {
                            Some(name) if self.keep(name) => {
                                out.push((Value::String(self.renamed(name).into()), v.clone()))
                            }
                            Some(_) => {}
                            None => out.push((k.clone(), v.clone())),
                        }
                    }
                    (None, Value::Map(out))
                }
                Some(schema) => {
                    let values = require_struct(value, "field replacement")?;
                    let mut fields = Vec::new();
                    let mut out = Vec::new();
                    for f in &schema.fields {
                        if self.keep(&f.name) {
                            let name = self.renamed(&f.name);
                            fields.push(Field::new(name, f.schema.clone()));
                            out.push((name.to_string(), struct_get(values, &f.name).clone()));
                        }
                    }
                    (Some(struct_like(schema, fields)), Value::Struct(out))
                }
            })
        })
    }
}

// ---------------------------------------------------------------- MaskField

/// `MaskField`: `fields` set to their type's zero value, or `replacement`.
pub struct MaskField {
    part: Part,
    fields: HashSet<String>,
    replacement: Option<String>,
}

impl MaskField {
    pub fn new(part: Part, cfg: &mut Cfg) -> MaskField {
        let fields: HashSet<String> = match cfg.required("fields") {
            Some(_) => cfg.list("fields").into_iter().collect(),
            None => HashSet::new(),
        };
        if fields.is_empty() && cfg.optional("fields").is_some() {
            let k = cfg.key("fields");
            cfg.error("fields", format!("Invalid value [] for configuration {k}: Empty list"));
        }
        let replacement = cfg.optional("replacement");
        if replacement.as_deref() == Some("") {
            let k = cfg.key("replacement");
            cfg.error("replacement", format!("Invalid value  for configuration {k}: String may not be empty"));
        }
        MaskField { part, fields, replacement }
    }

    fn masked(&self, schema: Option<&Schema>, v: &Value) -> Result<Value> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        let decimal = schema.is_some_and(|s| s.name.as_deref() == Some(logical::DECIMAL));
        if let Some(r) = &self.replacement {
            let bad = || ConnectError::data(format!("Unable to convert {r} (class java.lang.String) to number"));
            return Ok(match v {
                Value::Int8(_) => Value::Int8(r.trim().parse().map_err(|_| bad())?),
                Value::Int16(_) => Value::Int16(r.trim().parse().map_err(|_| bad())?),
                Value::Int32(_) => Value::Int32(r.trim().parse().map_err(|_| bad())?),
                Value::Int64(_) => Value::Int64(r.trim().parse().map_err(|_| bad())?),
                Value::Float32(_) => Value::Float32(r.trim().parse().map_err(|_| bad())?),
                Value::Float64(_) => Value::Float64(r.trim().parse().map_err(|_| bad())?),
                Value::String(_) => Value::String(r.clone()),
                Value::Bytes(_) if decimal => {
                    let scale = decimal_scale(schema.unwrap_or(&Schema::of(SchemaType::Bytes)))?;
                    Value::Bytes(crate::converter::json::decimal_from_string(r.trim(), scale).map_err(|_| bad())?)
                }
                other => {
                    return Err(ConnectError::data(format!(
                        "Cannot mask value of type {} with custom replacement.",
                        value_kind(other)
                    )));
                }
            });
        }
        Ok(match v {
            Value::Boolean(_) => Value::Boolean(false),
            Value::Int8(_) => Value::Int8(0),
            Value::Int16(_) => Value::Int16(0),
            Value::Int32(_) => Value::Int32(0),
            Value::Int64(_) => Value::Int64(0),
            Value::Float32(_) => Value::Float32(0.0),
            Value::Float64(_) => Value::Float64(0.0),
            Value::String(_) => Value::String(String::new()),
            Value::Bytes(_) if decimal => Value::Bytes(vec![0]),
            Value::Array(_) => Value::Array(Vec::new()),
            Value::Map(_) => Value::Map(Vec::new()),
            other => return Err(ConnectError::data(format!("Cannot mask value of type: {}", value_kind(other)))),
        })
    }
}

impl Transform for MaskField {
    fn apply(&self, record: Record) -> Result<Option<Record>> {
        update(self.part, record, |_, schema, value| {
            Ok(match schema {
                None => {
                    let mut entries = require_map(value, "masking")?.clone();
                    for (k, v) in entries.iter_mut() {
                        if k.as_str().is_some_and(|n| self.fields.contains(n)) {
                            *v = self.masked(None, v)?;
                        }
                    }
                    (None, Value::Map(entries))
                }
                Some(schema) => {
                    let mut values = require_struct(value, "masking")?.clone();
                    for (n, v) in values.iter_mut() {
                        if self.fields.contains(n.as_str()) {
                            *v = self.masked(schema.field(n).map(|f| &f.schema), v)?;
                        }
                    }
                    (Some(schema.clone()), Value::Struct(values))
                }
            })
        })
    }
}

// ---------------------------------------------------------------- ValueToKey

/// `ValueToKey`: the key becomes the value's `fields`.
pub struct ValueToKey {
    fields: Vec<String>,
}

impl ValueToKey {
    pub fn new(cfg: &mut Cfg) -> ValueToKey {
        let fields = if cfg.required("fields").is_some() { cfg.list("fields") } else { Vec::new() };
        if fields.is_empty() && cfg.optional("fields").is_some() {
            let k = cfg.key("fields");
            cfg.error("fields", format!("Invalid value [] for configuration {k}: Empty list"));
        }
        ValueToKey { fields }
    }
}

impl Transform for ValueToKey {
    fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        const PURPOSE: &str = "copying fields from value to key";
        if record.value.is_null() {
            return Ok(Some(record));
        }
        match &record.value_schema {
            None => {
                let entries = require_map(&record.value, PURPOSE)?;
                let key = self
                    .fields
                    .iter()
                    .map(|f| (Value::String(f.clone()), map_get(entries, f).cloned().unwrap_or(Value::Null)))
                    .collect();
                record.key_schema = None;
                record.key = Value::Map(key);
            }
            Some(schema) => {
                let values = require_struct(&record.value, PURPOSE)?;
                let mut fields = Vec::new();
                let mut key = Vec::new();
                for f in &self.fields {
                    let field =
                        schema.field(f).ok_or_else(|| ConnectError::data(format!("Field does not exist: {f}")))?;
                    fields.push(field.clone());
                    key.push((f.clone(), struct_get(values, f).clone()));
                }
                record.key_schema = Some(Schema::structure(None, fields));
                record.key = Value::Struct(key);
            }
        }
        Ok(Some(record))
    }
}

// ---------------------------------------------------------------- ExtractField

/// `ExtractField`: the key/value becomes its `field`.
pub struct ExtractField {
    part: Part,
    field: String,
}

impl ExtractField {
    pub fn new(part: Part, cfg: &mut Cfg) -> ExtractField {
        ExtractField { part, field: cfg.required("field").unwrap_or_default() }
    }
}

impl Transform for ExtractField {
    fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        const PURPOSE: &str = "field extraction";
        let (schema, value) = self.part.get(&record);
        let (schema, value) = match schema {
            None => {
                if value.is_null() {
                    (None, Value::Null)
                } else {
                    (None, map_get(require_map(value, PURPOSE)?, &self.field).cloned().unwrap_or(Value::Null))
                }
            }
            Some(schema) => {
                let field = schema
                    .field(&self.field)
                    .ok_or_else(|| ConnectError::data(format!("Unknown field: {}", self.field)))?;
                let v = if value.is_null() {
                    Value::Null
                } else {
                    struct_get(require_struct(value, PURPOSE)?, &self.field).clone()
                };
                (Some(field.schema.clone()), v)
            }
        };
        self.part.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

// ---------------------------------------------------------------- HoistField

/// `HoistField`: the key/value wrapped in a struct (or map) with one `field`.
pub struct HoistField {
    part: Part,
    field: String,
}

impl HoistField {
    pub fn new(part: Part, cfg: &mut Cfg) -> HoistField {
        HoistField { part, field: cfg.required("field").unwrap_or_default() }
    }
}

impl Transform for HoistField {
    fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        let (schema, value) = self.part.get(&record);
        let (schema, value) = match schema {
            None => (None, Value::Map(vec![(Value::String(self.field.clone()), value.clone())])),
            Some(s) => (
                Some(Schema::structure(None, vec![Field::new(&self.field, s.clone())])),
                Value::Struct(vec![(self.field.clone(), value.clone())]),
            ),
        };
        self.part.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

// ---------------------------------------------------------------- Cast

const CAST_OUT: &[SchemaType] = &[
    SchemaType::Int8,
    SchemaType::Int16,
    SchemaType::Int32,
    SchemaType::Int64,
    SchemaType::Float32,
    SchemaType::Float64,
    SchemaType::Boolean,
    SchemaType::String,
];

fn type_list(types: &[SchemaType]) -> String {
    types.iter().map(|t| cast_name(*t)).collect::<Vec<_>>().join(", ")
}

/// Java's `Schema.Type` name (`INT8`, `FLOAT32`, ...).
fn cast_name(t: SchemaType) -> &'static str {
    match t {
        SchemaType::Int8 => "INT8",
        SchemaType::Int16 => "INT16",
        SchemaType::Int32 => "INT32",
        SchemaType::Int64 => "INT64",
        SchemaType::Float32 => "FLOAT32",
        SchemaType::Float64 => "FLOAT64",
        SchemaType::Boolean => "BOOLEAN",
        SchemaType::String => "STRING",
        SchemaType::Bytes => "BYTES",
        SchemaType::Array => "ARRAY",
        SchemaType::Map => "MAP",
        SchemaType::Struct => "STRUCT",
    }
}

/// `Cast`: `spec` = `field:type,...` or one `type` for the whole key/value.
pub struct Cast {
    part: Part,
    casts: Vec<(String, SchemaType)>,
    whole: Option<SchemaType>,
}

impl Cast {
    pub fn new(part: Part, cfg: &mut Cfg) -> Cast {
        let mut casts = Vec::new();
        let mut whole = None;
        let spec = cfg.required("spec").map(|_| cfg.list("spec")).unwrap_or_default();
        let k = cfg.key("spec");
        let all = cfg.string_or("spec", "");
        if spec.is_empty() && cfg.optional("spec").is_some() {
            cfg.error(
                "spec",
                format!("Invalid value {all} for configuration {k}: Must specify at least one field to cast."),
            );
        }
        for item in &spec {
            let parts: Vec<&str> = item.split(':').collect();
            let ty_name = match parts.as_slice() {
                [t] => *t,
                [_, t] => *t,
                _ => {
                    cfg.error(
                        "spec",
                        format!("Invalid value {all} for configuration {k}: Invalid rename mapping: {item}"),
                    );
                    continue;
                }
            };
            let Some(ty) = SchemaType::parse(ty_name.trim().to_ascii_lowercase().as_str()) else {
                cfg.error(
                    "spec",
                    format!(
                        "Invalid value {all} for configuration {k}: Invalid type found in casting spec: {}",
                        ty_name.trim()
                    ),
                );
                continue;
            };
            if !CAST_OUT.contains(&ty) {
                cfg.error(
                    "spec",
                    format!(
                        "Invalid value {all} for configuration {k}: Cast transformation does not support casting to {}; supported types are {}",
                        cast_name(ty),
                        type_list(CAST_OUT)
                    ),
                );
                continue;
            }
            match parts.as_slice() {
                [_] => whole = Some(ty),
                [f, _] => casts.push((f.trim().to_string(), ty)),
                _ => {}
            }
        }
        if whole.is_some() && spec.len() > 1 {
            cfg.error(
                "spec",
                format!("Invalid value {all} for configuration {k}: Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec"),
            );
        }
        Cast { part, casts, whole }
    }

    fn target(&self, field: &str) -> Option<SchemaType> {
        self.casts.iter().find(|(f, _)| f == field).map(|(_, t)| *t)
    }
}

/// A value (of `schema`, if known) cast to `target`, as Connect's Cast does.
pub fn cast_value(schema: Option<&Schema>, value: &Value, target: SchemaType) -> Result<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let decimal = schema.filter(|s| s.name.as_deref() == Some(logical::DECIMAL));
    let from = match (schema, value) {
        (Some(s), _) => s.ty,
        (None, v) => value_type(v),
    };
    let supported_in = [CAST_OUT, &[SchemaType::Bytes]].concat();
    if !supported_in.contains(&from) {
        return Err(ConnectError::data(format!(
            "Cast transformation does not support casting from {}; supported types are {}",
            cast_name(from),
            type_list(&supported_in)
        )));
    }
    let out_of_range =
        || ConnectError::data(format!("Value ({}) was out of range for requested data type", display(value)));
    let unexpected = || ConnectError::data(format!("Unexpected type in Cast transformation: {}", value_kind(value)));
    // the value as a number (integer or float), bool or text
    enum N {
        I(i64),
        F(f64),
        B(bool),
        S(String),
    }
    let n = match value {
        Value::Boolean(b) => N::B(*b),
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => N::I(value.as_i64().unwrap_or(0)),
        Value::Float32(f) => N::F(f64::from(*f)),
        Value::Float64(f) => N::F(*f),
        Value::String(s) => N::S(s.clone()),
        Value::Bytes(b) => match decimal {
            Some(s) => {
                let text = decimal_to_string(b, decimal_scale(s)?)?;
                if target == SchemaType::String {
                    return Ok(Value::String(text));
                }
                N::F(text.parse().map_err(|_| out_of_range())?)
            }
            None if target == SchemaType::String => {
                return Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(b)));
            }
            None => return Err(unexpected()),
        },
        _ => return Err(unexpected()),
    };
    let int = |n: &N| -> Result<i64> {
        Ok(match n {
            N::I(i) => *i,
            N::F(f) => *f as i64,
            N::B(b) => i64::from(*b),
            N::S(s) => s.trim().parse().map_err(|_| out_of_range())?,
        })
    };
    let float = |n: &N| -> Result<f64> {
        Ok(match n {
            N::I(i) => *i as f64,
            N::F(f) => *f,
            N::B(b) => f64::from(u8::from(*b)),
            N::S(s) => s.trim().parse().map_err(|_| out_of_range())?,
        })
    };
    let parse_int = |n: &N, min: i64, max: i64| -> Result<i64> {
        // Java parses a string into the target width (out of range is an error); numbers wrap
        let v = int(n)?;
        if matches!(n, N::S(_)) && (v < min || v > max) {
            return Err(out_of_range());
        }
        Ok(v)
    };
    Ok(match target {
        SchemaType::Int8 => Value::Int8(parse_int(&n, i8::MIN.into(), i8::MAX.into())? as i8),
        SchemaType::Int16 => Value::Int16(parse_int(&n, i16::MIN.into(), i16::MAX.into())? as i16),
        SchemaType::Int32 => Value::Int32(parse_int(&n, i32::MIN.into(), i32::MAX.into())? as i32),
        SchemaType::Int64 => Value::Int64(int(&n)?),
        SchemaType::Float32 => Value::Float32(float(&n)? as f32),
        SchemaType::Float64 => Value::Float64(float(&n)?),
        SchemaType::Boolean => Value::Boolean(match &n {
            N::I(i) => *i != 0,
            N::F(f) => (*f as i64) != 0,
            N::B(b) => *b,
            N::S(s) => s.trim().eq_ignore_ascii_case("true"),
        }),
        SchemaType::String => Value::String(display(value)),
        other => {
            return Err(ConnectError::data(format!(
                "{} is not supported in the Cast transformation.",
                cast_name(other)
            )));
        }
    })
}

fn value_type(v: &Value) -> SchemaType {
    match v {
        Value::Null | Value::String(_) => SchemaType::String,
        Value::Boolean(_) => SchemaType::Boolean,
        Value::Int8(_) => SchemaType::Int8,
        Value::Int16(_) => SchemaType::Int16,
        Value::Int32(_) => SchemaType::Int32,
        Value::Int64(_) => SchemaType::Int64,
        Value::Float32(_) => SchemaType::Float32,
        Value::Float64(_) => SchemaType::Float64,
        Value::Bytes(_) => SchemaType::Bytes,
        Value::Array(_) => SchemaType::Array,
        Value::Map(_) => SchemaType::Map,
        Value::Struct(_) => SchemaType::Struct,
    }
}

/// `schema` retyped as `target` (optional and doc kept; logical names dropped; default cast).
fn cast_schema(schema: &Schema, target: SchemaType) -> Result<Schema> {
    let default = match &schema.default {
        Some(d) => Some(cast_value(Some(schema), d, target)?),
        None => None,
    };
    Ok(Schema { optional: schema.optional, doc: schema.doc.clone(), default, ..Schema::of(target) })
}

impl Transform for Cast {
    fn apply(&self, record: Record) -> Result<Option<Record>> {
        update(self.part, record, |_, schema, value| {
            Ok(match (schema, self.whole) {
                (None, Some(t)) => (None, cast_value(None, value, t)?),
                (Some(s), Some(t)) => (Some(cast_schema(s, t)?), cast_value(Some(s), value, t)?),
                (None, None) => {
                    let mut entries = require_map(value, "cast types")?.clone();
                    for (k, v) in entries.iter_mut() {
                        if let Some(t) = k.as_str().and_then(|n| self.target(n)) {
                            *v = cast_value(None, v, t)?;
                        }
                    }
                    (None, Value::Map(entries))
                }
                (Some(s), None) => {
                    let values = require_struct(value, "cast types")?;
                    let mut fields = Vec::new();
                    let mut out = Vec::new();
                    for f in &s.fields {
                        let v = struct_get(values, &f.name);
                        match self.target(&f.name) {
                            Some(t) => {
                                fields.push(Field::new(&f.name, cast_schema(&f.schema, t)?));
                                out.push((f.name.clone(), cast_value(Some(&f.schema), v, t)?));
                            }
                            None => {
                                fields.push(f.clone());
                                out.push((f.name.clone(), v.clone()));
                            }
                        }
                    }
                    (Some(struct_like(s, fields)), Value::Struct(out))
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigErrors, Props};
    use crate::data::JsonMap;

    fn make<T>(pairs: &[(&str, &str)], f: impl FnOnce(&mut Cfg) -> T) -> T {
        let mut errors = ConfigErrors::default();
        let props: Props = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let t = f(&mut Cfg { props, prefix: "transforms.t.".into(), errors: &mut errors });
        assert!(errors.is_empty(), "{errors:?}");
        t
    }

    fn schema() -> Schema {
        Schema::structure(
            Some("row"),
            vec![
                Field::new("id", Schema::of(SchemaType::Int32)),
                Field::new("name", Schema::of(SchemaType::String).optional()),
                Field::new("price", Schema::of(SchemaType::Float64)),
            ],
        )
    }

    fn with_schema() -> Record {
        let mut r = Record::source(
            "t",
            JsonMap::new(),
            JsonMap::new(),
            Some(schema()),
            Value::Struct(vec![
                ("id".into(), Value::Int32(7)),
                ("name".into(), Value::String("ann".into())),
                ("price".into(), Value::Float64(2.5)),
            ]),
        );
        r.timestamp = Some(1000);
        r.partition = Some(3);
        r
    }

    fn schemaless() -> Record {
        let mut r = with_schema();
        r.value_schema = None;
        r.value = Value::Map(vec![
            (Value::String("id".into()), Value::Int64(7)),
            (Value::String("name".into()), Value::String("ann".into())),
            (Value::String("price".into()), Value::Float64(2.5)),
        ]);
        r
    }

    #[test]
    fn insert_field_with_and_without_schema() {
        let t = make(
            &[
                ("topic.field", "topic!"),
                ("partition.field", "part"),
                ("timestamp.field", "ts"),
                ("static.field", "src"),
                ("static.value", "file"),
            ],
            |c| InsertField::new(Part::Value, c),
        );
        let out = t.apply(with_schema()).unwrap().unwrap();
        let s = out.value_schema.unwrap();
        assert_eq!(s.name.as_deref(), Some("row"));
        assert_eq!(s.fields.len(), 7);
        assert!(!s.field("topic").unwrap().schema.optional);
        assert_eq!(s.field("ts").unwrap().schema.name.as_deref(), Some(logical::TIMESTAMP));
        assert_eq!(out.value.get("part"), Some(&Value::Int32(3)));
        assert_eq!(out.value.get("src"), Some(&Value::String("file".into())));
        let out = t.apply(schemaless()).unwrap().unwrap();
        assert_eq!(out.value.get("topic"), Some(&Value::String("t".into())));
        assert_eq!(out.value.get("ts"), Some(&Value::Int64(1000)));
        // offsets exist on sink records only
        let o = make(&[("offset.field", "off")], |c| InsertField::new(Part::Value, c));
        let err = o.apply(schemaless()).unwrap_err().to_string();
        assert_eq!(
            err,
            "Only SinkRecord supported for [field insertion], found: org.apache.kafka.connect.source.SourceRecord"
        );
        let mut sink = schemaless();
        sink.kafka_offset = Some(42);
        assert_eq!(o.apply(sink).unwrap().unwrap().value.get("off"), Some(&Value::Int64(42)));
        // a string value: Connect's error
        let mut s = with_schema();
        s.value_schema = Some(Schema::of(SchemaType::String));
        s.value = Value::String("x".into());
        assert_eq!(
            t.apply(s).unwrap_err().to_string(),
            "Only Struct objects supported for [field insertion], found: java.lang.String"
        );
    }

    #[test]
    fn replace_mask_extract_hoist_value_to_key() {
        let r = make(&[("exclude", "price"), ("renames", "name:who")], |c| ReplaceField::new(Part::Value, c));
        let out = r.apply(with_schema()).unwrap().unwrap();
        assert_eq!(
            out.value,
            Value::Struct(vec![("id".into(), Value::Int32(7)), ("who".into(), Value::String("ann".into()))])
        );
        assert_eq!(out.value_schema.unwrap().fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["id", "who"]);
        let r = make(&[("whitelist", "id")], |c| ReplaceField::new(Part::Value, c));
        assert_eq!(
            r.apply(schemaless()).unwrap().unwrap().value,
            Value::Map(vec![(Value::String("id".into()), Value::Int64(7))])
        );

        let m = make(&[("fields", "name,price")], |c| MaskField::new(Part::Value, c));
        let out = m.apply(with_schema()).unwrap().unwrap();
        assert_eq!(out.value.get("name"), Some(&Value::String(String::new())));
        assert_eq!(out.value.get("price"), Some(&Value::Float64(0.0)));
        let m = make(&[("fields", "id"), ("replacement", "99")], |c| MaskField::new(Part::Value, c));
        assert_eq!(m.apply(schemaless()).unwrap().unwrap().value.get("id"), Some(&Value::Int64(99)));

        let e = make(&[("field", "name")], |c| ExtractField::new(Part::Value, c));
        let out = e.apply(with_schema()).unwrap().unwrap();
        assert_eq!((out.value_schema.unwrap().ty, out.value), (SchemaType::String, Value::String("ann".into())));
        assert_eq!(e.apply(schemaless()).unwrap().unwrap().value, Value::String("ann".into()));
        let bad = make(&[("field", "nope")], |c| ExtractField::new(Part::Value, c));
        assert_eq!(bad.apply(with_schema()).unwrap_err().to_string(), "Unknown field: nope");

        let h = make(&[("field", "wrapped")], |c| HoistField::new(Part::Key, c));
        let mut k = with_schema();
        k.key_schema = Some(Schema::of(SchemaType::Int64));
        k.key = Value::Int64(1);
        let out = h.apply(k).unwrap().unwrap();
        assert_eq!(out.key, Value::Struct(vec![("wrapped".into(), Value::Int64(1))]));

        let v = make(&[("fields", "id")], ValueToKey::new);
        let out = v.apply(with_schema()).unwrap().unwrap();
        assert_eq!(out.key, Value::Struct(vec![("id".into(), Value::Int32(7))]));
        assert_eq!(out.key_schema.unwrap().fields[0].schema.ty, SchemaType::Int32);
        assert_eq!(
            v.apply(schemaless()).unwrap().unwrap().key,
            Value::Map(vec![(Value::String("id".into()), Value::Int64(7))])
        );
        let v = make(&[("fields", "zzz")], ValueToKey::new);
        assert_eq!(v.apply(with_schema()).unwrap_err().to_string(), "Field does not exist: zzz");
    }

    #[test]
    fn cast_fields_and_whole_values() {
        let c = make(&[("spec", "id:string,price:int32")], |c| Cast::new(Part::Value, c));
        let out = c.apply(with_schema()).unwrap().unwrap();
        assert_eq!(out.value.get("id"), Some(&Value::String("7".into())));
        assert_eq!(out.value.get("price"), Some(&Value::Int32(2)));
        let s = out.value_schema.unwrap();
        assert_eq!((s.fields[0].schema.ty, s.fields[2].schema.ty), (SchemaType::String, SchemaType::Int32));
        let out = c.apply(schemaless()).unwrap().unwrap();
        assert_eq!(out.value.get("id"), Some(&Value::String("7".into())));

        let whole = make(&[("spec", "float64")], |c| Cast::new(Part::Key, c));
        let mut r = with_schema();
        r.key_schema = Some(Schema::of(SchemaType::String));
        r.key = Value::String("1.5".into());
        let out = whole.apply(r).unwrap().unwrap();
        assert_eq!((out.key_schema.unwrap().ty, out.key), (SchemaType::Float64, Value::Float64(1.5)));
        assert_eq!(cast_value(None, &Value::Float64(1.0), SchemaType::String).unwrap(), Value::String("1.0".into()));
        assert_eq!(cast_value(None, &Value::String("true".into()), SchemaType::Boolean).unwrap(), Value::Boolean(true));
        assert!(cast_value(None, &Value::String("300".into()), SchemaType::Int8).is_err());
        assert!(cast_value(None, &Value::Array(vec![]), SchemaType::Int8).is_err());

        let mut errors = ConfigErrors::default();
        let props: Props = [("spec".to_string(), "a:bytes,b:nope".to_string())].into();
        Cast::new(Part::Value, &mut Cfg { props, prefix: "transforms.c.".into(), errors: &mut errors });
        assert_eq!(errors.errors["transforms.c.spec"].len(), 2, "{errors:?}");
    }
}
