//! Decoded payloads as JSON, for people (the console's message browser).

use base64::Engine;
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};
use serde_json::{Map, Number, Value as Json};

/// How deep nested messages are shown (deeper ones as a marker).
const DEPTH_MAX: usize = 64;

/// A Protobuf message as JSON: its set fields by name.
pub(crate) fn protobuf_message(message: &DynamicMessage, depth: usize) -> Json {
    if depth > DEPTH_MAX {
        return Json::String(format!("<{} nested too deep>", message.descriptor().full_name()));
    }
    let mut out = Map::new();
    for (field, value) in message.fields() {
        out.insert(field.name().to_string(), protobuf_value(value, &field.kind(), depth));
    }
    Json::Object(out)
}

fn protobuf_value(value: &Value, kind: &Kind, depth: usize) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(f) => Number::from_f64(f64::from(*f)).map_or_else(|| Json::String(f.to_string()), Json::Number),
        Value::F64(f) => Number::from_f64(*f).map_or_else(|| Json::String(f.to_string()), Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(v) => Json::String(v.name().to_string()),
            None => Json::from(*n),
        },
        Value::Message(m) => protobuf_message(m, depth + 1),
        Value::List(items) => Json::Array(items.iter().map(|v| protobuf_value(v, kind, depth)).collect()),
        Value::Map(entries) => {
            let value_kind = kind.as_message().map(|entry| entry.map_entry_value_field().kind());
            let mut out = Map::new();
            for (key, v) in entries {
                let key = match key {
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                    MapKey::String(s) => s.clone(),
                };
                let v = match &value_kind {
                    Some(k) => protobuf_value(v, k, depth),
                    None => protobuf_value(v, kind, depth),
                };
                out.insert(key, v);
            }
            Json::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, SchemaType};
    use serde_json::json;

    #[test]
    fn payloads_decode_to_json() {
        let avro = parse(
            SchemaType::Avro,
            r#"{"type":"record","name":"U","fields":[{"name":"n","type":"string"},{"name":"a","type":"int"},
               {"name":"e","type":["null","string"],"default":null}]}"#,
            &[],
        )
        .unwrap();
        assert_eq!(avro.decode_payload(b"\x06Ada\x48\x00").unwrap(), json!({"n": "Ada", "a": 36, "e": null}));
        assert!(avro.decode_payload(b"\x06Ad").is_err(), "truncated");
        assert!(avro.decode_payload(b"\x06Ada\x48\x00\x00").is_err(), "bytes left over");

        let js = parse(SchemaType::Json, r#"{"type":"object"}"#, &[]).unwrap();
        assert_eq!(js.decode_payload(br#"{"id": 7}"#).unwrap(), json!({"id": 7}));
        assert!(js.decode_payload(b"{nope").is_err());

        let pb = parse(
            SchemaType::Protobuf,
            "syntax = \"proto3\"; package t; enum Kind { A = 0; B = 1; }
             message R { string s = 1; double v = 2; Kind k = 3; repeated int64 xs = 4; map<string, int32> m = 5; }",
            &[],
        )
        .unwrap();
        // message index [0] (a single 0), then s="x", v=2.5, k=B, xs=[1,2], m={"a":1}
        let mut payload = vec![0x00, 0x0a, 0x01, b'x', 0x11];
        payload.extend_from_slice(&2.5f64.to_le_bytes());
        payload.extend_from_slice(&[0x18, 0x01, 0x22, 0x02, 0x01, 0x02, 0x2a, 0x05, 0x0a, 0x01, b'a', 0x10, 0x01]);
        assert_eq!(
            pb.decode_payload(&payload).unwrap(),
            json!({"s": "x", "v": 2.5, "k": "B", "xs": [1, 2], "m": {"a": 1}})
        );
        assert!(pb.decode_payload(&[0x02, 0x0a]).is_err(), "an index selecting no message");
    }
}
