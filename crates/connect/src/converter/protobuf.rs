//! Connect data <-> Protobuf for the ProtobufConverter: a struct is a
//! proto3 message (named by the schema name's last part, its namespace the
//! package; unnamed ones `ConnectDefault1`, `ConnectDefault2`, ...; nested
//! structs nested messages), int8/int16/int32 `int32`, arrays `repeated`,
//! maps `map<K, V>`; optional fields proto3 `optional`. Reading derives a
//! Connect schema from the message descriptor (every field optional, as
//! Confluent's ProtobufData reads them). Logical types travel as their
//! underlying type (Decimal as bytes, Timestamp as int64).

use std::collections::HashMap;

use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as P};

use crate::data::{Field, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

/// The `.proto` text of a struct schema (its first message is the record's).
pub fn proto_text(schema: &Schema) -> Result<String> {
    if schema.ty != SchemaType::Struct {
        return Err(ConnectError::data(format!("ProtobufConverter needs a struct schema, not {}", schema.ty.name())));
    }
    let mut gen = Gen { defaults: 0 };
    let (package, _) = split_name(schema.name.as_deref());
    let mut out = String::from("syntax = \"proto3\";\n");
    if let Some(p) = package {
        out.push_str(&format!("package {p};\n"));
    }
    out.push('\n');
    gen.message(schema, &mut out, 0)?;
    Ok(out)
}

fn split_name(name: Option<&str>) -> (Option<String>, Option<String>) {
    match name {
        None => (None, None),
        Some(n) => match n.rsplit_once('.') {
            Some((p, last)) => (Some(p.split('.').map(ident).collect::<Vec<_>>().join(".")), Some(ident(last))),
            None => (None, Some(ident(n))),
        },
    }
}

fn ident(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

struct Gen {
    defaults: usize,
}

impl Gen {
    fn message(&mut self, schema: &Schema, out: &mut String, depth: usize) -> Result<String> {
        let name = match split_name(schema.name.as_deref()).1 {
            Some(n) => n,
            None => {
                self.defaults += 1;
                format!("ConnectDefault{}", self.defaults)
            }
        };
        let pad = "  ".repeat(depth);
        let mut body = String::new();
        for (i, f) in schema.fields.iter().enumerate() {
            let number = i + 1;
            let fname = ident(&f.name);
            let line = match f.schema.ty {
                SchemaType::Array => {
                    let element = f.schema.value.as_deref().ok_or_else(|| ConnectError::data("array without items"))?;
                    if matches!(element.ty, SchemaType::Array | SchemaType::Map) {
                        return Err(ConnectError::data(format!(
                            "field {}: Protobuf has no arrays of arrays or maps",
                            f.name
                        )));
                    }
                    format!("repeated {} {fname} = {number};", self.scalar_or_nested(element, &mut body, depth + 1)?)
                }
                SchemaType::Map => {
                    let (Some(k), Some(v)) = (f.schema.key.as_deref(), f.schema.value.as_deref()) else {
                        return Err(ConnectError::data("map schema without key or value schema"));
                    };
                    let key = match k.ty {
                        SchemaType::String => "string",
                        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 => "int32",
                        SchemaType::Int64 => "int64",
                        SchemaType::Boolean => "bool",
                        other => {
                            return Err(ConnectError::data(format!(
                                "field {}: Protobuf map keys cannot be {}",
                                f.name,
                                other.name()
                            )));
                        }
                    };
                    if matches!(v.ty, SchemaType::Array | SchemaType::Map) {
                        return Err(ConnectError::data(format!(
                            "field {}: Protobuf map values cannot be collections",
                            f.name
                        )));
                    }
                    format!("map<{key}, {}> {fname} = {number};", self.scalar_or_nested(v, &mut body, depth + 1)?)
                }
                _ => {
                    let ty = self.scalar_or_nested(&f.schema, &mut body, depth + 1)?;
                    let optional =
                        if f.schema.optional && f.schema.ty != SchemaType::Struct { "optional " } else { "" };
                    format!("{optional}{ty} {fname} = {number};")
                }
            };
            body.push_str(&format!("{pad}  {line}\n"));
        }
        out.push_str(&format!("{pad}message {name} {{\n{body}{pad}}}\n"));
        Ok(name)
    }

    fn scalar_or_nested(&mut self, schema: &Schema, body: &mut String, depth: usize) -> Result<String> {
        Ok(match schema.ty {
            SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 => "int32".into(),
            SchemaType::Int64 => "int64".into(),
            SchemaType::Float32 => "float".into(),
            SchemaType::Float64 => "double".into(),
            SchemaType::Boolean => "bool".into(),
            SchemaType::String => "string".into(),
            SchemaType::Bytes => "bytes".into(),
            SchemaType::Struct => {
                let mut nested = String::new();
                let name = self.message(schema, &mut nested, depth)?;
                body.push_str(&nested);
                name
            }
            other => return Err(ConnectError::data(format!("a {} cannot be nested here in Protobuf", other.name()))),
        })
    }
}

/// The message (bytes) of Connect data.
pub fn encode(desc: &MessageDescriptor, value: &Value) -> Result<Vec<u8>> {
    Ok(to_message(desc, value)?.encode_to_vec())
}

fn to_message(desc: &MessageDescriptor, value: &Value) -> Result<DynamicMessage> {
    let Value::Struct(values) = value else {
        return Err(ConnectError::data(format!("a {} message needs a struct value", desc.full_name())));
    };
    let mut msg = DynamicMessage::new(desc.clone());
    for (name, v) in values {
        if v.is_null() {
            continue;
        }
        let Some(field) = desc.get_field_by_name(&ident(name)) else {
            return Err(ConnectError::data(format!("message {} has no field {name}", desc.full_name())));
        };
        let pv = field_value(&field, v)?;
        msg.try_set_field(&field, pv).map_err(|e| ConnectError::data(format!("field {name}: {e}")))?;
    }
    Ok(msg)
}

fn field_value(field: &FieldDescriptor, v: &Value) -> Result<P> {
    if field.is_map() {
        let Value::Map(entries) = v else {
            return Err(ConnectError::data(format!("field {}: not a map", field.name())));
        };
        let Kind::Message(entry) = field.kind() else { unreachable!() };
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let mut out = HashMap::new();
        for (k, val) in entries {
            let key = match (kf.kind(), k) {
                (Kind::String, Value::String(s)) => MapKey::String(s.clone()),
                (Kind::Bool, Value::Boolean(b)) => MapKey::Bool(*b),
                (Kind::Int32, k) if k.as_i64().is_some() => MapKey::I32(k.as_i64().unwrap_or(0) as i32),
                (Kind::Int64, k) if k.as_i64().is_some() => MapKey::I64(k.as_i64().unwrap_or(0)),
                _ => return Err(ConnectError::data(format!("field {}: bad map key {k:?}", field.name()))),
            };
            out.insert(key, single(&vf.kind(), val, field)?);
        }
        return Ok(P::Map(out));
    }
    if field.is_list() {
        let Value::Array(items) = v else {
            return Err(ConnectError::data(format!("field {}: not an array", field.name())));
        };
        return Ok(P::List(items.iter().map(|i| single(&field.kind(), i, field)).collect::<Result<_>>()?));
    }
    single(&field.kind(), v, field)
}

fn single(kind: &Kind, v: &Value, field: &FieldDescriptor) -> Result<P> {
    let bad = || ConnectError::data(format!("field {}: {v:?} does not fit {kind:?}", field.name()));
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => P::I32(v.as_i64().ok_or_else(bad)? as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => P::I64(v.as_i64().ok_or_else(bad)?),
        Kind::Uint32 | Kind::Fixed32 => P::U32(v.as_i64().ok_or_else(bad)? as u32),
        Kind::Uint64 | Kind::Fixed64 => P::U64(v.as_i64().ok_or_else(bad)? as u64),
        Kind::Float => match v {
            Value::Float32(f) => P::F32(*f),
            Value::Float64(f) => P::F32(*f as f32),
            _ => return Err(bad()),
        },
        Kind::Double => match v {
            Value::Float32(f) => P::F64(f64::from(*f)),
            Value::Float64(f) => P::F64(*f),
            _ => return Err(bad()),
        },
        Kind::Bool => match v {
            Value::Boolean(b) => P::Bool(*b),
            _ => return Err(bad()),
        },
        Kind::String => match v {
            Value::String(s) => P::String(s.clone()),
            _ => return Err(bad()),
        },
        Kind::Bytes => match v {
            Value::Bytes(b) => P::Bytes(bytes::Bytes::from(b.clone())),
            _ => return Err(bad()),
        },
        Kind::Enum(e) => match v {
            Value::String(s) => P::EnumNumber(e.get_value_by_name(s).ok_or_else(bad)?.number()),
            other => P::EnumNumber(other.as_i64().ok_or_else(bad)? as i32),
        },
        Kind::Message(m) => P::Message(to_message(m, v)?),
    })
}

/// The Connect schema of a message (every field optional).
pub fn connect_schema(desc: &MessageDescriptor) -> Result<Schema> {
    connect_schema_depth(desc, 0)
}

fn connect_schema_depth(desc: &MessageDescriptor, depth: usize) -> Result<Schema> {
    if depth > 32 {
        return Err(ConnectError::data(format!("message {} nests too deep (recursive?)", desc.full_name())));
    }
    let mut fields = Vec::new();
    for f in desc.fields() {
        let schema = if f.is_map() {
            let Kind::Message(entry) = f.kind() else { unreachable!() };
            let k = kind_schema(&entry.map_entry_key_field().kind(), depth)?;
            let v = kind_schema(&entry.map_entry_value_field().kind(), depth)?;
            Schema::map(k, v.optional()).optional()
        } else if f.is_list() {
            Schema::array(kind_schema(&f.kind(), depth)?.optional()).optional()
        } else {
            kind_schema(&f.kind(), depth)?.optional()
        };
        fields.push(Field::new(f.name(), schema));
    }
    Ok(Schema::structure(Some(desc.full_name()), fields))
}

fn kind_schema(kind: &Kind, depth: usize) -> Result<Schema> {
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Schema::of(SchemaType::Int32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => {
            Schema::of(SchemaType::Int64)
        }
        Kind::Float => Schema::of(SchemaType::Float32),
        Kind::Double => Schema::of(SchemaType::Float64),
        Kind::Bool => Schema::of(SchemaType::Boolean),
        Kind::String | Kind::Enum(_) => Schema::of(SchemaType::String),
        Kind::Bytes => Schema::of(SchemaType::Bytes),
        Kind::Message(m) => connect_schema_depth(m, depth + 1)?,
    })
}

/// The Connect data of a message's bytes, under [`connect_schema`]'s schema.
pub fn decode(desc: &MessageDescriptor, payload: &[u8]) -> Result<Value> {
    let msg = DynamicMessage::decode(desc.clone(), payload)
        .map_err(|e| ConnectError::data(format!("Failed to deserialize Protobuf data: {e}")))?;
    Ok(message_value(&msg))
}

fn message_value(msg: &DynamicMessage) -> Value {
    let desc = msg.descriptor();
    let mut out = Vec::new();
    for f in desc.fields() {
        let v = if f.supports_presence() && !msg.has_field(&f) {
            Value::Null
        } else {
            proto_value(&msg.get_field(&f), &f.kind())
        };
        out.push((f.name().to_string(), v));
    }
    Value::Struct(out)
}

fn proto_value(v: &P, kind: &Kind) -> Value {
    match v {
        P::Bool(b) => Value::Boolean(*b),
        P::I32(i) => Value::Int32(*i),
        P::I64(i) => Value::Int64(*i),
        P::U32(i) => Value::Int64((*i).into()),
        P::U64(i) => Value::Int64(*i as i64),
        P::F32(f) => Value::Float32(*f),
        P::F64(f) => Value::Float64(*f),
        P::String(s) => Value::String(s.clone()),
        P::Bytes(b) => Value::Bytes(b.to_vec()),
        P::EnumNumber(n) => match kind {
            Kind::Enum(e) => Value::String(e.get_value(*n).map_or_else(|| n.to_string(), |v| v.name().to_string())),
            _ => Value::String(n.to_string()),
        },
        P::Message(m) => message_value(m),
        P::List(items) => Value::Array(items.iter().map(|i| proto_value(i, kind)).collect()),
        P::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut out: Vec<(Value, Value)> = entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        MapKey::Bool(b) => Value::Boolean(*b),
                        MapKey::I32(i) => Value::Int32(*i),
                        MapKey::I64(i) => Value::Int64(*i),
                        MapKey::U32(i) => Value::Int64((*i).into()),
                        MapKey::U64(i) => Value::Int64(*i as i64),
                        MapKey::String(s) => Value::String(s.clone()),
                    };
                    (key, proto_value(v, &value_kind))
                })
                .collect();
            out.sort_by_key(|(k, _)| super::display(k));
            Value::Map(out)
        }
    }
}

/// Reads the message-index prefix of a Confluent Protobuf payload: (indexes, rest).
pub fn read_indexes(payload: &[u8]) -> Result<(Vec<i32>, &[u8])> {
    fn varint(rest: &mut &[u8]) -> Result<i32> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let (&b, tail) =
                rest.split_first().ok_or_else(|| ConnectError::data("truncated Protobuf message indexes"))?;
            *rest = tail;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let z = v as u32;
                return Ok(((z >> 1) as i32) ^ -((z & 1) as i32));
            }
        }
        Err(ConnectError::data("bad varint in Protobuf message indexes"))
    }
    let mut rest = payload;
    let count = varint(&mut rest)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    if !(0..=100).contains(&count) {
        return Err(ConnectError::data(format!("bad Protobuf message index count {count}")));
    }
    let mut indexes = Vec::new();
    for _ in 0..count {
        indexes.push(varint(&mut rest)?);
    }
    Ok((indexes, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_round_trips_through_protobuf() {
        let schema = Schema::structure(
            Some("com.example.Row"),
            vec![
                Field::new("id", Schema::of(SchemaType::Int64)),
                Field::new("name", Schema::of(SchemaType::String).optional()),
                Field::new("tags", Schema::array(Schema::of(SchemaType::String))),
                Field::new("attrs", Schema::map(Schema::of(SchemaType::String), Schema::of(SchemaType::Int32))),
                Field::new("inner", Schema::structure(None, vec![Field::new("x", Schema::of(SchemaType::Float64))])),
            ],
        );
        let text = proto_text(&schema).unwrap();
        assert!(text.contains("package com.example;"), "{text}");
        assert!(text.contains("message Row {"), "{text}");
        assert!(text.contains("optional string name = 2;"), "{text}");
        let parsed = vltava_schema::protobuf::ProtobufSchema::parse(&text, &[]).unwrap();
        let desc = parsed.message_by_indexes(&[0], vltava_schema::protobuf::Counting::Declared).unwrap();
        assert_eq!(desc.full_name(), "com.example.Row");
        let value = Value::Struct(vec![
            ("id".into(), Value::Int64(5)),
            ("name".into(), Value::Null),
            ("tags".into(), Value::Array(vec![Value::String("a".into())])),
            ("attrs".into(), Value::Map(vec![(Value::String("k".into()), Value::Int32(2))])),
            ("inner".into(), Value::Struct(vec![("x".into(), Value::Float64(0.25))])),
        ]);
        let bytes = encode(&desc, &value).unwrap();
        assert_eq!(decode(&desc, &bytes).unwrap(), value);
        let back = connect_schema(&desc).unwrap();
        assert_eq!(back.fields.len(), 5);
        assert_eq!(back.field("inner").unwrap().schema.ty, SchemaType::Struct);
        assert!(decode(&desc, &[0xff, 0xff]).is_err());
        assert_eq!(read_indexes(&[0, 9]).unwrap(), (vec![0], &[9u8][..]));
        assert_eq!(read_indexes(&[4, 2, 6]).unwrap().0, vec![1, 3]);
        assert!(read_indexes(&[]).is_err());
    }
}
