//! Connect data <-> JSON Schema for the JsonSchemaConverter, after
//! Confluent's JsonSchemaData: a struct is an `object` with `title` (the
//! schema name) and `properties` (each with `connect.index`), an optional
//! schema `{"oneOf":[{"type":"null"},T]}`, Connect's integer and float
//! widths in `connect.type`, bytes a base64 `string`, Decimal a `number`
//! titled `org.apache.kafka.connect.data.Decimal`, a map with string keys
//! an object with `additionalProperties`, other maps arrays of
//! `{"key":..,"value":..}`. Payloads are plain JSON.

use super::json::{decimal_schema, DecimalFormat, Json, JsonConverter};
use crate::data::{logical, Field, Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};

fn obj(entries: Vec<(&str, Json)>) -> Json {
    Json::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn s(text: &str) -> Json {
    Json::String(text.to_string())
}

/// The JSON Schema of a Connect schema.
pub fn json_schema(schema: &Schema) -> Result<Json> {
    let inner = non_optional(schema)?;
    if schema.optional {
        return Ok(obj(vec![("oneOf", Json::Array(vec![obj(vec![("type", s("null"))]), inner]))]));
    }
    Ok(inner)
}

fn non_optional(schema: &Schema) -> Result<Json> {
    let mut out: Vec<(String, Json)> = Vec::new();
    let mut push = |k: &str, v: Json| out.push((k.to_string(), v));
    match schema.ty {
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => {
            push("type", s("integer"));
            push("connect.type", s(schema.ty.name()));
        }
        SchemaType::Float32 => {
            push("type", s("number"));
            push("connect.type", s("float32"));
        }
        SchemaType::Float64 => {
            push("type", s("number"));
            push("connect.type", s("float64"));
        }
        SchemaType::Boolean => push("type", s("boolean")),
        SchemaType::String => push("type", s("string")),
        SchemaType::Bytes if schema.name.as_deref() == Some(logical::DECIMAL) => push("type", s("number")),
        SchemaType::Bytes => {
            push("type", s("string"));
            push("connect.type", s("bytes"));
        }
        SchemaType::Array => {
            let items = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
            push("type", s("array"));
            push("items", json_schema(items)?);
        }
        SchemaType::Map => {
            let (Some(k), Some(v)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                return Err(ConnectError::data("map schema without key or value schema"));
            };
            if k.ty == SchemaType::String && !k.optional {
                push("type", s("object"));
                push("additionalProperties", json_schema(v)?);
            } else {
                push("type", s("array"));
                push(
                    "items",
                    obj(vec![
                        ("type", s("object")),
                        ("properties", obj(vec![("key", json_schema(k)?), ("value", json_schema(v)?)])),
                    ]),
                );
            }
            push("connect.type", s("map"));
        }
        SchemaType::Struct => {
            push("type", s("object"));
            let mut props = Vec::new();
            for (i, f) in schema.fields.iter().enumerate() {
                let mut p = json_schema(&f.schema)?;
                if let Json::Object(entries) = &mut p {
                    entries.push(("connect.index".into(), Json::Number(i.into())));
                }
                props.push((f.name.clone(), p));
            }
            push("properties", Json::Object(props));
        }
    }
    if let Some(name) = &schema.name {
        push("title", s(name));
    }
    if let Some(v) = schema.version {
        push("connect.version", Json::Number(v.into()));
    }
    if let Some(doc) = &schema.doc {
        push("description", s(doc));
    }
    if !schema.parameters.is_empty() {
        let params = schema.parameters.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        push("connect.parameters", Json::Object(params));
    }
    Ok(Json::Object(out))
}

/// The Connect schema of a JSON Schema.
pub fn connect_schema(json: &Json) -> Result<Schema> {
    let branches = match (json.get("oneOf"), json.get("anyOf")) {
        (Some(Json::Array(b)), _) | (None, Some(Json::Array(b))) => Some(b),
        _ => None,
    };
    if let Some(branches) = branches {
        let non_null: Vec<&Json> =
            branches.iter().filter(|b| b.get("type").and_then(Json::as_str) != Some("null")).collect();
        if non_null.len() == 1 {
            let mut schema = connect_schema(non_null[0])?;
            schema.optional = non_null.len() != branches.len();
            return Ok(schema);
        }
        return Err(ConnectError::data("JSON Schema unions of several non-null types are not supported"));
    }
    if json.get("$ref").is_some() {
        return Err(ConnectError::data("JSON Schema references ($ref) are not supported by this converter"));
    }
    let (ty, optional) = match json.get("type") {
        Some(Json::String(t)) => (t.clone(), false),
        Some(Json::Array(types)) => {
            let non_null: Vec<&str> = types.iter().filter_map(Json::as_str).filter(|t| *t != "null").collect();
            if non_null.len() != 1 {
                return Err(ConnectError::data("JSON Schema type lists of several non-null types are not supported"));
            }
            (non_null[0].to_string(), non_null.len() != types.len())
        }
        None if json.get("properties").is_some() => ("object".into(), false),
        None if json.get("enum").is_some() => ("string".into(), false),
        _ => return Err(ConnectError::data(format!("JSON Schema without a type: {}", json.to_text()))),
    };
    let connect_type = json.get("connect.type").and_then(Json::as_str);
    let title = json.get("title").and_then(Json::as_str);
    let mut schema = match ty.as_str() {
        "integer" => Schema::of(match connect_type {
            Some("int8") => SchemaType::Int8,
            Some("int16") => SchemaType::Int16,
            Some("int32") => SchemaType::Int32,
            _ => SchemaType::Int64,
        }),
        "number" if title == Some(logical::DECIMAL) => {
            let scale = json
                .get("connect.parameters")
                .and_then(|p| p.get(logical::DECIMAL_SCALE))
                .and_then(Json::as_str)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            decimal_schema(scale)
        }
        "number" => Schema::of(if connect_type == Some("float32") { SchemaType::Float32 } else { SchemaType::Float64 }),
        "boolean" => Schema::of(SchemaType::Boolean),
        "string" => Schema::of(if connect_type == Some("bytes") { SchemaType::Bytes } else { SchemaType::String }),
        "array" => {
            let items = json.get("items").ok_or_else(|| ConnectError::data("JSON Schema array without items"))?;
            if connect_type == Some("map") {
                let (Some(k), Some(v)) = (
                    items.get("properties").and_then(|p| p.get("key")),
                    items.get("properties").and_then(|p| p.get("value")),
                ) else {
                    return Err(ConnectError::data("JSON Schema map array without key and value properties"));
                };
                Schema::map(connect_schema(k)?, connect_schema(v)?)
            } else {
                Schema::array(connect_schema(items)?)
            }
        }
        "object" => match (json.get("properties"), json.get("additionalProperties")) {
            (Some(Json::Object(props)), _) => {
                let mut fields: Vec<(i64, Field)> = Vec::new();
                for (i, (name, p)) in props.iter().enumerate() {
                    let index = p.get("connect.index").and_then(|n| match n {
                        Json::Number(n) => n.as_i64(),
                        _ => None,
                    });
                    fields.push((index.unwrap_or(i as i64), Field::new(name, connect_schema(p)?)));
                }
                fields.sort_by_key(|(i, _)| *i);
                Schema::structure(None, fields.into_iter().map(|(_, f)| f).collect())
            }
            (_, Some(values @ Json::Object(_))) => Schema::map(Schema::of(SchemaType::String), connect_schema(values)?),
            _ => Schema::structure(None, Vec::new()),
        },
        "null" => return Err(ConnectError::data("a null JSON Schema has no Connect schema")),
        other => return Err(ConnectError::data(format!("Unknown JSON Schema type {other}"))),
    };
    schema.optional = optional;
    if let Some(t) = title {
        schema.name = Some(t.to_string());
    }
    if let Some(Json::Number(v)) = json.get("connect.version") {
        schema.version = v.as_i64().and_then(|v| i32::try_from(v).ok());
    }
    if let Some(d) = json.get("description").and_then(Json::as_str) {
        schema.doc = Some(d.to_string());
    }
    if let Some(Json::Object(params)) = json.get("connect.parameters") {
        for (k, v) in params {
            if let Some(v) = v.as_str() {
                schema.parameters.insert(k.clone(), v.to_string());
            }
        }
    }
    Ok(schema)
}

fn leaf_converter() -> JsonConverter {
    JsonConverter { schemas_enable: false, decimal_format: DecimalFormat::Numeric, replace_null_with_default: true }
}

/// The JSON payload of Connect data.
pub fn to_payload(schema: &Schema, value: &Value) -> Result<Json> {
    let c = leaf_converter();
    match (schema.ty, value) {
        (SchemaType::Map, Value::Map(entries))
            if schema.key.as_deref().is_some_and(|k| k.ty != SchemaType::String || k.optional) =>
        {
            let (Some(ks), Some(vs)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                return Err(ConnectError::data("map schema without key or value schema"));
            };
            let mut out = Vec::new();
            for (k, v) in entries {
                out.push(Json::Object(vec![("key".into(), to_payload(ks, k)?), ("value".into(), to_payload(vs, v)?)]));
            }
            Ok(Json::Array(out))
        }
        (SchemaType::Array, Value::Array(items)) => {
            let element = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
            Ok(Json::Array(items.iter().map(|i| to_payload(element, i)).collect::<Result<_>>()?))
        }
        (SchemaType::Struct, Value::Struct(values)) => {
            let mut out = Vec::new();
            for f in &schema.fields {
                let v = values.iter().find(|(n, _)| *n == f.name).map_or(&Value::Null, |(_, v)| v);
                out.push((f.name.clone(), to_payload(&f.schema, v)?));
            }
            Ok(Json::Object(out))
        }
        (SchemaType::Map, Value::Map(entries)) => {
            let vs = schema.value.as_deref().ok_or_else(|| ConnectError::data("map schema without values"))?;
            let mut out = Vec::new();
            for (k, v) in entries {
                out.push((super::display(k), to_payload(vs, v)?));
            }
            Ok(Json::Object(out))
        }
        _ => c.value_to_json(Some(schema), value),
    }
}

/// The Connect data of a JSON payload.
pub fn from_payload(schema: &Schema, json: &Json) -> Result<Value> {
    let c = leaf_converter();
    if *json == Json::Null {
        return c.json_to_value(Some(schema), json);
    }
    match (schema.ty, json) {
        (SchemaType::Map, Json::Array(entries)) => {
            let (Some(ks), Some(vs)) = (schema.key.as_deref(), schema.value.as_deref()) else {
                return Err(ConnectError::data("map schema without key or value schema"));
            };
            let mut out = Vec::new();
            for e in entries {
                let k = from_payload(ks, e.get("key").unwrap_or(&Json::Null))?;
                let v = from_payload(vs, e.get("value").unwrap_or(&Json::Null))?;
                out.push((k, v));
            }
            Ok(Value::Map(out))
        }
        (SchemaType::Map, Json::Object(entries)) => {
            let vs = schema.value.as_deref().ok_or_else(|| ConnectError::data("map schema without values"))?;
            let mut out = Vec::new();
            for (k, v) in entries {
                out.push((Value::String(k.clone()), from_payload(vs, v)?));
            }
            Ok(Value::Map(out))
        }
        (SchemaType::Array, Json::Array(items)) => {
            let element = schema.value.as_deref().ok_or_else(|| ConnectError::data("array schema without items"))?;
            Ok(Value::Array(items.iter().map(|i| from_payload(element, i)).collect::<Result<_>>()?))
        }
        (SchemaType::Struct, Json::Object(_)) => {
            let mut out = Vec::new();
            for f in &schema.fields {
                out.push((f.name.clone(), from_payload(&f.schema, json.get(&f.name).unwrap_or(&Json::Null))?));
            }
            Ok(Value::Struct(out))
        }
        _ => c.json_to_value(Some(schema), json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::json::i128_unscaled;

    #[test]
    fn a_struct_round_trips_through_json_schema() {
        let schema = Schema::structure(
            Some("com.example.Row"),
            vec![
                Field::new("id", Schema::of(SchemaType::Int32)),
                Field::new("name", Schema::of(SchemaType::String).optional()),
                Field::new("price", decimal_schema(2)),
                Field::new("blob", Schema::of(SchemaType::Bytes)),
                Field::new("codes", Schema::map(Schema::of(SchemaType::Int64), Schema::of(SchemaType::String))),
                Field::new("attrs", Schema::map(Schema::of(SchemaType::String), Schema::of(SchemaType::Float64))),
            ],
        );
        let value = Value::Struct(vec![
            ("id".into(), Value::Int32(1)),
            ("name".into(), Value::Null),
            ("price".into(), Value::Bytes(i128_unscaled(1050))),
            ("blob".into(), Value::Bytes(vec![1, 2])),
            ("codes".into(), Value::Map(vec![(Value::Int64(3), Value::String("c".into()))])),
            ("attrs".into(), Value::Map(vec![(Value::String("w".into()), Value::Float64(0.5))])),
        ]);
        let js = json_schema(&schema).unwrap();
        assert_eq!(js.get("title").and_then(Json::as_str), Some("com.example.Row"));
        let text = js.to_text();
        let back = connect_schema(&Json::parse(text.as_bytes()).unwrap()).unwrap();
        assert_eq!(back, schema);
        let payload = to_payload(&schema, &value).unwrap().to_text();
        assert_eq!(
            payload,
            r#"{"id":1,"name":null,"price":10.5,"blob":"AQI=","codes":[{"key":3,"value":"c"}],"attrs":{"w":0.5}}"#
        );
        assert_eq!(from_payload(&back, &Json::parse(payload.as_bytes()).unwrap()).unwrap(), value);
    }
}
