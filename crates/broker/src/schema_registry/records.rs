//! The records of `_schemas` in Confluent Schema Registry's JSON format,
//! so that Confluent's tools and backups read vltava's topic and the other
//! way round. Keys (field order as Confluent writes them, which matters
//! for compaction: equal keys must be equal bytes):
//!
//! | keytype          | key fields                         | value                                      |
//! |------------------|------------------------------------|--------------------------------------------|
//! | `SCHEMA`         | subject, version, magic 1          | subject, version, id, schemaType (absent for AVRO), references, schema, deleted |
//! | `CONFIG`         | subject (null: global), magic 0    | compatibilityLevel                         |
//! | `MODE`           | subject (null: global), magic 0    | mode                                       |
//! | `DELETE_SUBJECT` | subject, magic 0                   | subject, version (the last one deleted)    |
//! | `NOOP`           | magic 0                            | null (the writer's catch-up marker)        |
//!
//! A permanent delete is a tombstone (null value) on the SCHEMA key; a
//! config or mode reset is a tombstone on its key.

use serde::{Deserialize, Serialize};
use vltava_schema::{Reference, SchemaType};

/// A decoded key of `_schemas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Schema {
        subject: String,
        version: i32,
    },
    Config {
        subject: Option<String>,
    },
    Mode {
        subject: Option<String>,
    },
    DeleteSubject {
        subject: String,
    },
    Noop,
    /// A keytype vltava does not use (CLEAR_SUBJECT, CONTEXT, ...): skipped.
    Other,
}

#[derive(Serialize)]
struct SchemaKeyJson<'a> {
    keytype: &'static str,
    subject: &'a str,
    version: i32,
    magic: i32,
}

#[derive(Serialize)]
struct SubjectKeyJson<'a> {
    keytype: &'static str,
    subject: Option<&'a str>,
    magic: i32,
}

#[derive(Serialize)]
struct NoopKeyJson {
    keytype: &'static str,
    magic: i32,
}

impl Key {
    pub fn encode(&self) -> Vec<u8> {
        let json = match self {
            Key::Schema { subject, version } => {
                serde_json::to_vec(&SchemaKeyJson { keytype: "SCHEMA", subject, version: *version, magic: 1 })
            }
            Key::Config { subject } => {
                serde_json::to_vec(&SubjectKeyJson { keytype: "CONFIG", subject: subject.as_deref(), magic: 0 })
            }
            Key::Mode { subject } => {
                serde_json::to_vec(&SubjectKeyJson { keytype: "MODE", subject: subject.as_deref(), magic: 0 })
            }
            Key::DeleteSubject { subject } => {
                serde_json::to_vec(&SubjectKeyJson { keytype: "DELETE_SUBJECT", subject: Some(subject), magic: 0 })
            }
            Key::Noop | Key::Other => serde_json::to_vec(&NoopKeyJson { keytype: "NOOP", magic: 0 }),
        };
        json.expect("a key serializes")
    }

    /// None when `bytes` is not a key of this format.
    pub fn decode(bytes: &[u8]) -> Option<Key> {
        #[derive(Deserialize)]
        struct Raw {
            keytype: String,
            #[serde(default)]
            subject: Option<String>,
            #[serde(default)]
            version: Option<i32>,
        }
        let raw: Raw = serde_json::from_slice(bytes).ok()?;
        Some(match raw.keytype.as_str() {
            "SCHEMA" => Key::Schema { subject: raw.subject?, version: raw.version? },
            "CONFIG" => Key::Config { subject: raw.subject },
            "MODE" => Key::Mode { subject: raw.subject },
            "DELETE_SUBJECT" => Key::DeleteSubject { subject: raw.subject? },
            "NOOP" => Key::Noop,
            _ => Key::Other,
        })
    }
}

/// A reference as the REST API and `_schemas` write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceJson {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

impl From<&ReferenceJson> for Reference {
    fn from(r: &ReferenceJson) -> Self {
        Reference { name: r.name.clone(), subject: r.subject.clone(), version: r.version }
    }
}

impl From<&Reference> for ReferenceJson {
    fn from(r: &Reference) -> Self {
        ReferenceJson { name: r.name.clone(), subject: r.subject.clone(), version: r.version }
    }
}

/// The value of a SCHEMA key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    #[serde(rename = "schemaType", default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Vec<ReferenceJson>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

impl SchemaValue {
    pub fn schema_type(&self) -> Option<SchemaType> {
        match &self.schema_type {
            None => Some(SchemaType::Avro),
            Some(t) => t.parse().ok(),
        }
    }

    /// `schemaType` as written: absent for AVRO, as Confluent does.
    pub fn type_field(ty: SchemaType) -> Option<String> {
        (ty != SchemaType::Avro).then(|| ty.as_str().to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    pub compatibility_level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    pub subject: String,
    pub version: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_confluents_bytes() {
        let k = Key::Schema { subject: "s".into(), version: 1 };
        assert_eq!(k.encode(), br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#);
        assert_eq!(Key::Config { subject: None }.encode(), br#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
        assert_eq!(Key::Noop.encode(), br#"{"keytype":"NOOP","magic":0}"#);
        for k in [
            k,
            Key::Config { subject: Some("x".into()) },
            Key::Mode { subject: None },
            Key::DeleteSubject { subject: "d".into() },
            Key::Noop,
        ] {
            assert_eq!(Key::decode(&k.encode()), Some(k));
        }
        assert_eq!(Key::decode(br#"{"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}"#), Some(Key::Other));
        assert_eq!(Key::decode(b"not json"), None);
    }

    #[test]
    fn schema_value_omits_the_avro_type() {
        let v = SchemaValue {
            subject: "s".into(),
            version: 1,
            id: 7,
            schema_type: None,
            references: vec![],
            schema: "\"string\"".into(),
            deleted: false,
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"subject":"s","version":1,"id":7,"references":[],"schema":"\"string\"","deleted":false}"#);
        assert_eq!(serde_json::from_str::<SchemaValue>(&json).unwrap(), v);
        // Confluent's older records have no references and no deleted flag
        let old: SchemaValue =
            serde_json::from_str(r#"{"subject":"s","version":1,"id":7,"schema":"\"int\""}"#).unwrap();
        assert!(!old.deleted && old.references.is_empty() && old.schema_type() == Some(SchemaType::Avro));
    }
}
