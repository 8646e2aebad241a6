//! Connect's data model: a [`Schema`] (Kafka Connect's types, logical types
//! by name) and a [`Value`], and the [`Record`] that flows from a source
//! task to Kafka and from Kafka to a sink task, through converters and
//! transforms.
//!
//! Schemaless data (JsonConverter with `schemas.enable=false`, a
//! StringConverter) has `schema: None`; a JSON object becomes a
//! [`Value::Map`] with string keys, as Connect gives a `java.util.Map`.

use std::collections::BTreeMap;

/// Connect's schema types (`org.apache.kafka.connect.data.Schema.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    /// The name JsonConverter writes in `"type"` (`int32`, `struct`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// The type JsonConverter's `"type"` names, and Cast's type names.
    pub fn parse(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" | "float32" => SchemaType::Float32,
            "double" | "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

/// Dates of the logical types (days since the epoch) and their names, for
/// the converters, transforms and connectors that print or parse them.
pub mod calendar {
    /// Month names, January first (Java's English `MMMM`; `MMM` is the first three letters).
    pub const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];

    /// Days since 1970-01-01 as (year, month 1-12, day 1-31), proleptic Gregorian.
    pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    /// Days since 1970-01-01 of a (proleptic Gregorian) date.
    pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

/// Logical type names, as Connect's `name` of the schema.
pub mod logical {
    /// int64 milliseconds since the epoch.
    pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
    /// int32 days since the epoch.
    pub const DATE: &str = "org.apache.kafka.connect.data.Date";
    /// int32 milliseconds since midnight.
    pub const TIME: &str = "org.apache.kafka.connect.data.Time";
    /// bytes: a big-endian two's-complement unscaled integer; parameter `scale`.
    pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
    pub const DECIMAL_SCALE: &str = "scale";
}

/// A Connect schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub ty: SchemaType,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub default: Option<Value>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Map keys.
    pub key: Option<Box<Schema>>,
    /// Array elements and map values.
    pub value: Option<Box<Schema>>,
}

/// A field of a struct schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

impl Schema {
    /// A required schema of a primitive type.
    pub fn of(ty: SchemaType) -> Schema {
        Schema {
            ty,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            default: None,
            fields: Vec::new(),
            key: None,
            value: None,
        }
    }

    /// The same schema, optional.
    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }

    /// The same schema with a (logical type) name.
    pub fn named(mut self, name: &str) -> Schema {
        self.name = Some(name.to_string());
        self
    }

    /// A struct schema with these fields.
    pub fn structure(name: Option<&str>, fields: Vec<Field>) -> Schema {
        Schema { name: name.map(str::to_string), fields, ..Schema::of(SchemaType::Struct) }
    }

    /// An array of `element`.
    pub fn array(element: Schema) -> Schema {
        Schema { value: Some(Box::new(element)), ..Schema::of(SchemaType::Array) }
    }

    /// A map from `key` to `value`.
    pub fn map(key: Schema, value: Schema) -> Schema {
        Schema { key: Some(Box::new(key)), value: Some(Box::new(value)), ..Schema::of(SchemaType::Map) }
    }

    /// The field named `name` of a struct schema.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl Field {
    pub fn new(name: &str, schema: Schema) -> Field {
        Field { name: name.to_string(), schema }
    }
}

/// A Connect value. With a schema, its variant matches the schema's type
/// (a logical type keeps its underlying variant: a Timestamp is an
/// `Int64` of milliseconds, a Decimal `Bytes`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in order; schemaless JSON objects have `String` keys.
    Map(Vec<(Value, Value)>),
    /// Field values, in the schema's field order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A struct's field, or a string-keyed map's entry.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Value::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Value::String(s) if s == name)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Integers of any width as i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int8(v) => Some(v.into()),
            Value::Int16(v) => Some(v.into()),
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v),
            _ => None,
        }
    }
}

/// A record header: a key and a Connect value.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub key: String,
    pub schema: Option<Schema>,
    pub value: Value,
}

/// A source partition or offset: a JSON object, as Connect stores them in
/// the offsets topic (`["connector",{partition}]` -> `{offset}`).
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// One record: produced by a source task (with `source_partition` and
/// `source_offset`) or consumed for a sink task (with `kafka_offset`).
/// Transforms see and change the same type.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub topic: String,
    /// The Kafka partition: chosen by a source task (or `None`: the
    /// producer's partitioner), or where a sink record was read.
    pub partition: Option<i32>,
    pub key_schema: Option<Schema>,
    pub key: Value,
    pub value_schema: Option<Schema>,
    pub value: Value,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
    /// Source records: where in the source this record came from.
    pub source_partition: Option<JsonMap>,
    pub source_offset: Option<JsonMap>,
    /// Sink records: the offset in `topic`/`partition`.
    pub kafka_offset: Option<i64>,
}

impl Record {
    /// A source record with a schemaless or schema'd value and no key.
    pub fn source(
        topic: &str,
        partition: JsonMap,
        offset: JsonMap,
        value_schema: Option<Schema>,
        value: Value,
    ) -> Record {
        Record {
            topic: topic.to_string(),
            partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema,
            value,
            timestamp: None,
            headers: Vec::new(),
            source_partition: Some(partition),
            source_offset: Some(offset),
            kafka_offset: None,
        }
    }
}
