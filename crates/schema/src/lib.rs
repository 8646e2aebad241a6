//! Schema formats of the schema registry (Confluent's API): parsing a
//! schema (with its references resolved), its canonical and normalized
//! text, the record name the subject name strategies use, payload
//! validation, and the compatibility rules between versions
//! (BACKWARD/FORWARD/FULL and their transitive forms) for each type.
//!
//! The registry (crates/broker/src/schema_registry) stores and serves
//! schemas; this crate knows what they mean. It has no I/O.

pub mod avro;
mod decode;
pub mod json;
pub mod protobuf;

use std::fmt;
use std::str::FromStr;

/// `schemaType` of the REST API (absent means AVRO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    pub const ALL: [SchemaType; 3] = [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf];

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchemaType {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, SchemaError> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            _ => Err(SchemaError::Invalid(format!("unknown schema type {s}"))),
        }
    }
}

/// `compatibilityLevel` / `compatibility` of `/config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compatibility {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Checked against every earlier version (else only the latest).
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive | Compatibility::ForwardTransitive | Compatibility::FullTransitive
        )
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compatibility {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, SchemaError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => Compatibility::None,
            "BACKWARD" => Compatibility::Backward,
            "BACKWARD_TRANSITIVE" => Compatibility::BackwardTransitive,
            "FORWARD" => Compatibility::Forward,
            "FORWARD_TRANSITIVE" => Compatibility::ForwardTransitive,
            "FULL" => Compatibility::Full,
            "FULL_TRANSITIVE" => Compatibility::FullTransitive,
            _ => return Err(SchemaError::Invalid(format!("invalid compatibility level {s}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Not a valid schema of its type (REST 42201, "Invalid schema").
    #[error("{0}")]
    Invalid(String),
    /// A reference that was not given resolved (REST 42201 as well).
    #[error("unresolved reference {0}")]
    UnresolvedReference(String),
}

/// A reference of a schema to another registered one: `name` is how the
/// schema refers to it (Avro: a full type name; JSON: a `$ref` URL;
/// Protobuf: an import path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A referenced schema's text, resolved by the registry (transitively:
/// the referenced schemas' own references come too, each once).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub text: String,
}

/// Runs a third-party parser on input from the network: a panic in it
/// becomes an invalid schema, not a dead request.
pub(crate) fn parse_guarded<T>(parse: impl FnOnce() -> Result<T, SchemaError>) -> Result<T, SchemaError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse))
        .unwrap_or_else(|_| Err(SchemaError::Invalid("Invalid schema: the parser failed on it".into())))
}

/// A parsed, valid schema.
#[derive(Debug, Clone)]
pub enum ParsedSchema {
    Avro(avro::AvroSchema),
    Json(json::JsonSchema),
    Protobuf(protobuf::ProtobufSchema),
}

/// Parses `text` of type `ty`; `resolved` holds the referenced schemas.
pub fn parse(ty: SchemaType, text: &str, resolved: &[Resolved]) -> Result<ParsedSchema, SchemaError> {
    Ok(match ty {
        SchemaType::Avro => ParsedSchema::Avro(avro::AvroSchema::parse(text, resolved)?),
        SchemaType::Json => ParsedSchema::Json(json::JsonSchema::parse(text, resolved)?),
        SchemaType::Protobuf => ParsedSchema::Protobuf(protobuf::ProtobufSchema::parse(text, resolved)?),
    })
}

impl ParsedSchema {
    pub fn schema_type(&self) -> SchemaType {
        match self {
            ParsedSchema::Avro(_) => SchemaType::Avro,
            ParsedSchema::Json(_) => SchemaType::Json,
            ParsedSchema::Protobuf(_) => SchemaType::Protobuf,
        }
    }

    /// The text the registry stores and compares to find an already
    /// registered schema (Confluent's canonical string: Avro's parsing
    /// canonical form keeps defaults/docs; JSON compact; Protobuf as given).
    pub fn canonical(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.canonical(),
            ParsedSchema::Json(s) => s.canonical(),
            ParsedSchema::Protobuf(s) => s.canonical(),
        }
    }

    /// `normalize=true`: the normalized form (Confluent's normalization).
    pub fn normalized(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.normalized(),
            ParsedSchema::Json(s) => s.normalized(),
            ParsedSchema::Protobuf(s) => s.normalized(),
        }
    }

    /// The record name RecordNameStrategy and TopicRecordNameStrategy use:
    /// Avro: the record's full name; Protobuf: the first message's full
    /// name; JSON: `title`. None when the schema has none.
    pub fn record_name(&self) -> Option<String> {
        match self {
            ParsedSchema::Avro(s) => s.record_name(),
            ParsedSchema::Json(s) => s.record_name(),
            ParsedSchema::Protobuf(s) => s.record_name(),
        }
    }

    /// The payload after the 5-byte wire header as JSON (the console's
    /// message browser): Avro decoded, JSON parsed, Protobuf decoded as
    /// the message its indexes select. Err names why it does not decode.
    pub fn decode_payload(&self, payload: &[u8]) -> Result<serde_json::Value, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match self {
            ParsedSchema::Avro(s) => s.decode_payload(payload),
            ParsedSchema::Json(s) => s.decode_payload(payload),
            ParsedSchema::Protobuf(s) => s.decode_payload(payload),
        }))
        .unwrap_or_else(|_| Err("the decoder failed on the payload".to_string()))
    }

    /// The payload after the 5-byte wire header (magic 0, schema id)
    /// decodes against this schema (Protobuf: the message indexes come
    /// first, as Confluent's serializers write them). Err names the reason.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), String> {
        match self {
            ParsedSchema::Avro(s) => s.validate_payload(payload),
            ParsedSchema::Json(s) => s.validate_payload(payload),
            ParsedSchema::Protobuf(s) => s.validate_payload(payload),
        }
    }
}

/// Whether `new` may be registered after `previous` (oldest first) under
/// `level`: the reasons it may not, empty when it may. Schemas of another
/// type than `new` are incompatible. A non-transitive level checks only
/// the last of `previous`; a transitive one checks from the newest back
/// and stops at the first version `new` is incompatible with (Confluent).
pub fn check_compatibility(level: Compatibility, new: &ParsedSchema, previous: &[ParsedSchema]) -> Vec<String> {
    if level == Compatibility::None {
        return Vec::new();
    }
    let against: &[ParsedSchema] =
        if level.transitive() { previous } else { &previous[previous.len().saturating_sub(1)..] };
    let (backward, forward) = match level {
        Compatibility::Backward | Compatibility::BackwardTransitive => (true, false),
        Compatibility::Forward | Compatibility::ForwardTransitive => (false, true),
        _ => (true, true),
    };
    for old in against.iter().rev() {
        let mut reasons = Vec::new();
        // FORWARD: a reader of `old` reads data written with `new`.
        if forward {
            reasons.extend(reasons_reading(old, new, "old", "new"));
        }
        // BACKWARD: a reader of `new` reads data written with `old`.
        if backward {
            reasons.extend(reasons_reading(new, old, "new", "old"));
        }
        if !reasons.is_empty() {
            return reasons;
        }
    }
    Vec::new()
}

/// [`can_read`] with the reader and writer named as the check sees them.
fn reasons_reading(reader: &ParsedSchema, writer: &ParsedSchema, reader_name: &str, writer_name: &str) -> Vec<String> {
    match (reader, writer) {
        (ParsedSchema::Avro(r), ParsedSchema::Avro(w)) => r.can_read_named(w, reader_name, writer_name),
        (ParsedSchema::Json(r), ParsedSchema::Json(w)) => r.can_read_named(w, reader_name, writer_name),
        (ParsedSchema::Protobuf(r), ParsedSchema::Protobuf(w)) => r.can_read_as(w, reader_name, writer_name),
        _ => can_read(reader, writer),
    }
}

/// Why a reader using `reader` cannot read what `writer` wrote (empty: it can).
pub fn can_read(reader: &ParsedSchema, writer: &ParsedSchema) -> Vec<String> {
    match (reader, writer) {
        (ParsedSchema::Avro(r), ParsedSchema::Avro(w)) => r.can_read(w),
        (ParsedSchema::Json(r), ParsedSchema::Json(w)) => r.can_read(w),
        (ParsedSchema::Protobuf(r), ParsedSchema::Protobuf(w)) => r.can_read(w),
        (r, w) => vec![format!(
            "Incompatible because of different schema type: {} cannot read {}",
            r.schema_type(),
            w.schema_type()
        )],
    }
}
