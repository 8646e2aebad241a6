//! Avro schemas: parsing with named-type references (apache-avro), the
//! canonical and normalized texts, payload validation (binary datum
//! decode) and the Avro specification's schema resolution rules as
//! Confluent's checker reports them (`{errorType:'...', description:'...',
//! additionalInfo:'...'}`).

use std::collections::{BTreeSet, HashMap, HashSet};

use apache_avro::schema::{
    EnumSchema, FixedSchema, InnerDecimalSchema, RecordField, RecordSchema, UnionSchema, UuidSchema,
};
use apache_avro::Schema;
use serde_json::Value;

use crate::{Resolved, SchemaError};

#[derive(Debug, Clone)]
pub struct AvroSchema {
    schema: Box<Schema>,
    /// Every named type by full name: the main schema's and the references'.
    named: HashMap<String, Schema>,
    /// The referenced schemas (their named types resolve the main one's).
    references: Vec<Schema>,
    canonical: String,
}

impl AvroSchema {
    pub fn parse(text: &str, resolved: &[Resolved]) -> Result<Self, SchemaError> {
        crate::parse_guarded(|| Self::parse_unguarded(text, resolved))
    }

    fn parse_unguarded(text: &str, resolved: &[Resolved]) -> Result<Self, SchemaError> {
        let invalid = |e: apache_avro::Error| SchemaError::Invalid(format!("Invalid schema: {e}"));
        let (schema, references): (Schema, Vec<Schema>) = if resolved.is_empty() {
            (Schema::parse_str(text).map_err(invalid)?, Vec::new())
        } else {
            Schema::parse_str_with_list(text, resolved.iter().map(|r| r.text.as_str())).map_err(invalid)?
        };
        let mut named = HashMap::new();
        for s in references.iter().chain(std::iter::once(&schema)) {
            collect_named(s, &mut named);
        }
        let json = serde_json::to_value(&schema).map_err(|e| SchemaError::Invalid(format!("Invalid schema: {e}")))?;
        let mut canonical = String::new();
        write_as_avro_does(&json, None, &mut canonical);
        Ok(Self { schema: Box::new(schema), named, references, canonical })
    }

    /// Compact JSON as Avro (Java) writes a parsed schema, which is what
    /// Confluent stores: docs, defaults, aliases and custom properties
    /// kept, names relative to the enclosing namespace, types defined
    /// elsewhere (references) by name.
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// Full names everywhere (no `namespace` attributes), keys in the
    /// Parsing Canonical Form's order then the others sorted: schemas that
    /// differ only in layout, key order or namespace spelling normalize to
    /// the same text. Docs, defaults, aliases and logical types stay (docs
    /// and aliases are part of a schema's identity for Confluent too).
    pub fn normalized(&self) -> String {
        let json: Value = serde_json::from_str(&self.canonical).unwrap_or(Value::Null);
        let mut out = String::new();
        normalize(&json, None, &mut out);
        out
    }

    pub fn record_name(&self) -> Option<String> {
        match self.schema.as_ref() {
            Schema::Record(r) => Some(r.name.fullname(None)),
            _ => None,
        }
    }

    /// Decodes `payload` as one binary Avro datum of this schema; every
    /// byte must be used. A walk over the bytes that builds no values,
    /// with every length checked against the bytes left and the nesting
    /// depth and item count bounded (the broker calls it on produced
    /// records).
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), String> {
        let mut walk = DatumWalk {
            named: &self.named,
            bytes: payload,
            pos: 0,
            steps_left: AVRO_STEPS_PER_BYTE.saturating_mul(payload.len()).saturating_add(AVRO_STEPS_MIN),
        };
        walk.value(&self.schema, 0).map_err(|e| format!("payload is not Avro of the schema: {e}"))?;
        if walk.pos != payload.len() {
            return Err(format!(
                "payload is not Avro of the schema: {} bytes left after the datum ({} bytes)",
                payload.len() - walk.pos,
                payload.len()
            ));
        }
        Ok(())
    }

    /// The payload (one binary datum, checked by [`Self::validate_payload`]
    /// first) as JSON: records as objects, unions as their branch's value,
    /// enums as their symbol, bytes and fixed as arrays of numbers.
    pub fn decode_payload(&self, payload: &[u8]) -> Result<Value, String> {
        self.validate_payload(payload)?;
        let mut reader = payload;
        let schemata: Vec<&Schema> = std::iter::once(self.schema.as_ref()).chain(&self.references).collect();
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&self.schema)
            .writer_schemata(schemata)
            .and_then(|b| b.build())
            .and_then(|r| r.read_value(&mut reader))
            .map_err(|e| format!("payload is not Avro of the schema: {e}"))?;
        Value::try_from(value).map_err(|e| format!("the Avro value has no JSON form: {e}"))
    }

    /// Why a reader with this schema cannot read data written with `writer`.
    pub fn can_read(&self, writer: &Self) -> Vec<String> {
        self.can_read_named(writer, "new", "old")
    }

    /// [`Self::can_read`] with the names the reasons give the reader and
    /// the writer (Confluent: "new"/"old" when checking BACKWARD,
    /// "old"/"new" when checking FORWARD).
    pub fn can_read_named(&self, writer: &Self, reader_name: &str, writer_name: &str) -> Vec<String> {
        let mut checker = Checker {
            reader_named: &self.named,
            writer_named: &writer.named,
            in_progress: HashSet::new(),
            steps_left: COMPATIBILITY_STEPS_MAX,
        };
        let mut location = Vec::new();
        let found = checker.check(&self.schema, &writer.schema, &mut location);
        if checker.steps_left == 0 {
            return vec![too_complex()];
        }
        found.iter().map(|i| i.confluent_string(reader_name, writer_name)).collect()
    }
}

fn collect_named(schema: &Schema, named: &mut HashMap<String, Schema>) {
    match schema {
        Schema::Record(r) => {
            named.insert(r.name.fullname(None), schema.clone());
            for f in &r.fields {
                collect_named(&f.schema, named);
            }
        }
        Schema::Enum(e) => {
            named.insert(e.name.fullname(None), schema.clone());
        }
        Schema::Fixed(f) | Schema::Duration(f) => {
            named.insert(f.name.fullname(None), Schema::Fixed(f.clone()));
        }
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                named.insert(f.name.fullname(None), Schema::Fixed(f.clone()));
            }
        }
        Schema::Uuid(UuidSchema::Fixed(f)) => {
            named.insert(f.name.fullname(None), Schema::Fixed(f.clone()));
        }
        Schema::Array(a) => collect_named(&a.items, named),
        Schema::Map(m) => collect_named(&m.types, named),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_named(v, named);
            }
        }
        _ => {}
    }
}

/// Writes `json` (apache-avro's serialization of a parsed schema) in the
/// key order and name spelling of Avro's Java `Schema.toString()`.
fn write_as_avro_does(json: &Value, namespace: Option<&str>, out: &mut String) {
    let map = match json {
        Value::Array(branches) => {
            write_list(branches, out, |branch, out| write_as_avro_does(branch, namespace, out));
            return;
        }
        Value::String(name) if !is_primitive(name) => {
            out.push_str(&Value::String(relative(&qualify(name, namespace), namespace)).to_string());
            return;
        }
        Value::Object(map) => map,
        other => {
            out.push_str(&other.to_string());
            return;
        }
    };
    let is_named = matches!(map.get("type").and_then(Value::as_str), Some("record" | "error" | "enum" | "fixed"));
    let mut entries = Entries::default();
    if is_named {
        let full = qualify(
            map.get("name").and_then(Value::as_str).unwrap_or_default(),
            map.get("namespace").and_then(Value::as_str).or(namespace),
        );
        let (own, short) = match full.rsplit_once('.') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, full.as_str()),
        };
        entries.value("type", map.get("type"));
        entries.value("name", Some(&Value::String(short.to_string())));
        if own != namespace {
            entries.value("namespace", Some(&Value::String(own.unwrap_or_default().to_string())));
        }
        entries.value("doc", map.get("doc"));
        entries.schema("fields", map.get("fields"), own);
        for key in ["symbols", "default", "size"] {
            entries.value(key, map.get(key));
        }
        entries.rest(map, &["namespace", "aliases"]);
        let aliases = map.get("aliases").and_then(Value::as_array).map(|aliases| {
            let relative_to_own =
                |a: &Value| a.as_str().map_or(a.clone(), |a| Value::String(relative(&qualify(a, own), own)));
            Value::Array(aliases.iter().map(relative_to_own).collect())
        });
        entries.value("aliases", aliases.as_ref());
    } else if map.contains_key("name") {
        // A record field.
        entries.value("name", map.get("name"));
        entries.schema("type", map.get("type"), namespace);
        for key in ["doc", "default", "order"] {
            entries.value(key, map.get(key));
        }
        entries.rest(map, &["aliases"]);
        entries.value("aliases", map.get("aliases"));
    } else {
        // array, map, or a primitive with properties (logical types).
        for key in ["type", "items", "values"] {
            entries.schema(key, map.get(key), namespace);
        }
        entries.rest(map, &[]);
    }
    entries.write(out);
}

/// An object's members in the order they are added, each key once.
#[derive(Default)]
struct Entries {
    members: Vec<(String, String)>,
}

impl Entries {
    fn has(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    fn value(&mut self, key: &str, value: Option<&Value>) {
        if let Some(v) = value.filter(|_| !self.has(key)) {
            self.members.push((key.to_string(), v.to_string()));
        }
    }

    /// A member holding schemas, written relative to `namespace`.
    fn schema(&mut self, key: &str, value: Option<&Value>, namespace: Option<&str>) {
        if let Some(v) = value.filter(|_| !self.has(key)) {
            let mut text = String::new();
            write_as_avro_does(v, namespace, &mut text);
            self.members.push((key.to_string(), text));
        }
    }

    /// The members not added yet (custom properties), but `later`.
    fn rest(&mut self, map: &serde_json::Map<String, Value>, later: &[&str]) {
        for (k, v) in map.iter().filter(|(k, _)| !later.contains(&k.as_str())) {
            self.value(k, Some(v));
        }
    }

    fn write(self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.members.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::String(k).to_string());
            out.push(':');
            out.push_str(&v);
        }
        out.push('}');
    }
}

const PCF_KEY_ORDER: [&str; 7] = ["name", "type", "fields", "symbols", "items", "values", "size"];

/// Writes `json` normalized (see [`AvroSchema::normalized`]) to `out`.
fn normalize(json: &Value, namespace: Option<&str>, out: &mut String) {
    match json {
        Value::Array(items) => write_list(items, out, |item, out| normalize(item, namespace, out)),
        Value::Object(map) => {
            let is_named = matches!(map.get("type").and_then(Value::as_str), Some("record" | "enum" | "fixed"));
            let own_namespace = map.get("namespace").and_then(Value::as_str).or(namespace);
            let full_name = map.get("name").and_then(Value::as_str).map(|n| qualify(n, own_namespace));
            // Names inside a named type resolve against its namespace.
            let inner_namespace = match (&full_name, is_named) {
                (Some(n), true) => n.rsplit_once('.').map(|(ns, _)| ns),
                _ => namespace,
            };
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != "namespace").collect();
            keys.sort_by_key(|k| (PCF_KEY_ORDER.iter().position(|p| p == k).unwrap_or(PCF_KEY_ORDER.len()), *k));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                let v = &map[k.as_str()];
                match k.as_str() {
                    "name" if is_named => {
                        out.push_str(&Value::String(full_name.clone().unwrap_or_default()).to_string())
                    }
                    // `type` of a complex schema is a keyword; of a field, a schema.
                    "type"
                        if map.contains_key("fields")
                            || map.contains_key("symbols")
                            || map.contains_key("size")
                            || map.contains_key("items")
                            || map.contains_key("values") =>
                    {
                        out.push_str(&v.to_string())
                    }
                    "type" | "items" | "values" | "fields" => normalize(v, inner_namespace, out),
                    "aliases" if is_named => {
                        let qualified: Vec<Value> = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|x| x.as_str().map_or(x.clone(), |s| Value::String(qualify(s, own_namespace))))
                            .collect();
                        out.push_str(&Value::Array(qualified).to_string())
                    }
                    _ => out.push_str(&v.to_string()),
                }
            }
            out.push('}');
        }
        Value::String(s) if !is_primitive(s) => out.push_str(&Value::String(qualify(s, namespace)).to_string()),
        other => out.push_str(&other.to_string()),
    }
}

/// Writes `[a,b,...]`, each item by `write`.
fn write_list(items: &[Value], out: &mut String, mut write: impl FnMut(&Value, &mut String)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(item, out);
    }
    out.push(']');
}

fn is_primitive(s: &str) -> bool {
    matches!(s, "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string")
}

/// `full_name` as written inside `namespace`: without it when it is the same.
fn relative(full_name: &str, namespace: Option<&str>) -> String {
    match (full_name.rsplit_once('.'), namespace) {
        (Some((ns, name)), Some(enclosing)) if ns == enclosing => name.to_string(),
        _ => full_name.to_string(),
    }
}

fn qualify(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() && !name.contains('.') => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

/// The kinds of Avro's resolution rules (logical types read as the type
/// they annotate; references resolved).
enum Kind<'a> {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(&'a Schema),
    Map(&'a Schema),
    Union(&'a UnionSchema),
    Record(&'a RecordSchema),
    Enum(&'a EnumSchema),
    Fixed(&'a FixedSchema),
    /// A reference to a name not known (not produced by a parsed schema).
    Unknown,
}

impl Kind<'_> {
    /// Avro's (Java) type names, as Confluent's messages show them.
    fn type_name(&self) -> &'static str {
        match self {
            Kind::Null => "NULL",
            Kind::Boolean => "BOOLEAN",
            Kind::Int => "INT",
            Kind::Long => "LONG",
            Kind::Float => "FLOAT",
            Kind::Double => "DOUBLE",
            Kind::Bytes => "BYTES",
            Kind::String => "STRING",
            Kind::Array(_) => "ARRAY",
            Kind::Map(_) => "MAP",
            Kind::Union(_) => "UNION",
            Kind::Record(_) => "RECORD",
            Kind::Enum(_) => "ENUM",
            Kind::Fixed(_) => "FIXED",
            Kind::Unknown => "UNKNOWN",
        }
    }
}

fn kind<'a>(schema: &'a Schema, named: &'a HashMap<String, Schema>) -> Kind<'a> {
    match schema {
        Schema::Null => Kind::Null,
        Schema::Boolean => Kind::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Kind::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Kind::Long,
        Schema::Float => Kind::Float,
        Schema::Double => Kind::Double,
        Schema::Bytes | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => Kind::Bytes,
        Schema::String | Schema::Uuid(UuidSchema::String) => Kind::String,
        Schema::Decimal(d) => match &d.inner {
            InnerDecimalSchema::Bytes => Kind::Bytes,
            InnerDecimalSchema::Fixed(f) => Kind::Fixed(f),
        },
        Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Fixed(f) | Schema::Duration(f) => Kind::Fixed(f),
        Schema::Array(a) => Kind::Array(&a.items),
        Schema::Map(m) => Kind::Map(&m.types),
        Schema::Union(u) => Kind::Union(u),
        Schema::Record(r) => Kind::Record(r),
        Schema::Enum(e) => Kind::Enum(e),
        Schema::Ref { name } => match named.get(&name.fullname(None)) {
            Some(Schema::Ref { .. }) | None => Kind::Unknown,
            Some(s) => kind(s, named),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IncompatibilityType {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

/// One reason a reader cannot read a writer's data, at `location` (a
/// JSON-pointer-like path in the reader schema, as Avro's checker builds it).
#[derive(Debug, Clone)]
struct Incompatibility {
    kind: IncompatibilityType,
    location: String,
    message: String,
}

impl Incompatibility {
    /// Confluent's text, naming the reader and the writer schema by their
    /// roles in the check ("new" and "old" in a BACKWARD check).
    fn confluent_string(&self, reader: &str, writer: &str) -> String {
        let (error_type, description) = match self.kind {
            IncompatibilityType::FixedSizeMismatch => (
                "FIXED_SIZE_MISMATCH",
                format!(
                    "The size of FIXED type field at path '{}' in the {reader} schema does not match with the {writer} schema",
                    self.location
                ),
            ),
            IncompatibilityType::TypeMismatch => (
                "TYPE_MISMATCH",
                format!(
                    "The type (path '{}') of a field in the {reader} schema does not match with the {writer} schema",
                    self.location
                ),
            ),
            IncompatibilityType::NameMismatch => {
                ("NAME_MISMATCH", format!("The name of the schema has changed (path '{}')", self.location))
            }
            IncompatibilityType::MissingEnumSymbols => (
                "MISSING_ENUM_SYMBOLS",
                format!(
                    "The {reader} schema is missing enum symbols '{}' at path '{}' in the {writer} schema",
                    self.message, self.location
                ),
            ),
            IncompatibilityType::MissingUnionBranch => (
                "MISSING_UNION_BRANCH",
                format!(
                    "The {reader} schema is missing a type inside a union field at path '{}' in the {writer} schema",
                    self.location
                ),
            ),
            IncompatibilityType::ReaderFieldMissingDefaultValue => (
                "READER_FIELD_MISSING_DEFAULT_VALUE",
                format!(
                    "The field '{}' at path '{}' in the {reader} schema has no default value and is missing in the {writer} schema",
                    self.message, self.location
                ),
            ),
        };
        format!("{{errorType:'{error_type}', description:'{description}', additionalInfo:'{}'}}", self.message)
    }
}

/// Avro's schema resolution rules (specification, "Schema Resolution"),
/// walked the way Avro's own compatibility checker walks them.
struct Checker<'a> {
    reader_named: &'a HashMap<String, Schema>,
    writer_named: &'a HashMap<String, Schema>,
    /// Pairs of named types being compared (recursive types: a pair met
    /// again is assumed compatible, its answer comes from the outer visit).
    in_progress: HashSet<(String, String)>,
    /// Comparisons left (nested unions probe every branch pair).
    steps_left: usize,
}

/// Type pairs one compatibility check compares at most.
pub(crate) const COMPATIBILITY_STEPS_MAX: usize = 100_000;

/// The reason given when a check ran out of steps: refused, not assumed.
pub(crate) fn too_complex() -> String {
    format!(
        "{{errorType:'SCHEMA_TOO_COMPLEX', description:'The schemas need more than {COMPATIBILITY_STEPS_MAX} \
         comparisons to check; not checked'}}"
    )
}

impl Checker<'_> {
    fn check(&mut self, reader: &Schema, writer: &Schema, location: &mut Vec<String>) -> Vec<Incompatibility> {
        if self.steps_left == 0 {
            return Vec::new();
        }
        self.steps_left -= 1;
        let r = kind(reader, self.reader_named);
        let w = kind(writer, self.writer_named);
        let mut out = Vec::new();
        match (&r, &w) {
            (Kind::Null, Kind::Null)
            | (Kind::Boolean, Kind::Boolean)
            | (Kind::Int, Kind::Int)
            | (Kind::Long, Kind::Long | Kind::Int)
            | (Kind::Float, Kind::Float | Kind::Long | Kind::Int)
            | (Kind::Double, Kind::Double | Kind::Float | Kind::Long | Kind::Int)
            | (Kind::Bytes, Kind::Bytes | Kind::String)
            | (Kind::String, Kind::String | Kind::Bytes) => {}
            (Kind::Array(ri), Kind::Array(wi)) => {
                location.push("items".into());
                out.extend(self.check(ri, wi, location));
                location.pop();
            }
            (Kind::Map(rv), Kind::Map(wv)) => {
                location.push("values".into());
                out.extend(self.check(rv, wv, location));
                location.pop();
            }
            (Kind::Fixed(rf), Kind::Fixed(wf)) => {
                out.extend(self.check_names(&rf.name, rf.aliases.as_deref(), &wf.name, location));
                if rf.size != wf.size {
                    location.push("size".into());
                    out.push(incompatible(
                        IncompatibilityType::FixedSizeMismatch,
                        location,
                        format!("expected: {}, found: {}", wf.size, rf.size),
                    ));
                    location.pop();
                }
            }
            (Kind::Enum(re), Kind::Enum(we)) => {
                out.extend(self.check_names(&re.name, re.aliases.as_deref(), &we.name, location));
                let missing: BTreeSet<&String> = we.symbols.iter().filter(|s| !re.symbols.contains(s)).collect();
                if !missing.is_empty() && re.default.is_none() {
                    location.push("symbols".into());
                    let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                    out.push(incompatible(
                        IncompatibilityType::MissingEnumSymbols,
                        location,
                        format!("[{}]", list.join(", ")),
                    ));
                    location.pop();
                }
            }
            (Kind::Record(rr), Kind::Record(wr)) => {
                let pair = (rr.name.fullname(None), wr.name.fullname(None));
                if self.in_progress.insert(pair.clone()) {
                    out.extend(self.check_names(&rr.name, rr.aliases.as_deref(), &wr.name, location));
                    out.extend(self.check_fields(rr, wr, location));
                    self.in_progress.remove(&pair);
                }
            }
            (_, Kind::Union(wu)) => {
                // Every branch the writer may have written must be readable.
                for (i, branch) in wu.variants().iter().enumerate() {
                    location.push(i.to_string());
                    out.extend(self.check(reader, branch, location));
                    location.pop();
                }
            }
            (Kind::Union(ru), _) => {
                let readable = ru.variants().iter().any(|branch| {
                    let mut probe = location.clone();
                    self.check(branch, writer, &mut probe).is_empty()
                });
                if !readable {
                    out.push(incompatible(
                        IncompatibilityType::MissingUnionBranch,
                        location,
                        format!("reader union lacking writer type: {}", w.type_name()),
                    ));
                }
            }
            _ => out.push(incompatible(
                IncompatibilityType::TypeMismatch,
                location,
                format!("reader type: {} not compatible with writer type: {}", r.type_name(), w.type_name()),
            )),
        }
        out
    }

    /// Named types match by unqualified name, or when a reader alias is the
    /// writer's full name.
    fn check_names(
        &self,
        reader: &apache_avro::schema::Name,
        reader_aliases: Option<&[apache_avro::schema::Alias]>,
        writer: &apache_avro::schema::Name,
        location: &mut Vec<String>,
    ) -> Option<Incompatibility> {
        let writer_full = writer.fullname(None);
        let aliased = reader_aliases
            .unwrap_or_default()
            .iter()
            .any(|a| a.fully_qualified_name(reader.namespace()).fullname(None) == writer_full);
        if reader.name() == writer.name() || aliased {
            return None;
        }
        location.push("name".into());
        let found = incompatible(IncompatibilityType::NameMismatch, location, format!("expected: {writer_full}"));
        location.pop();
        Some(found)
    }

    fn check_fields(
        &mut self,
        reader: &RecordSchema,
        writer: &RecordSchema,
        location: &mut Vec<String>,
    ) -> Vec<Incompatibility> {
        let mut out = Vec::new();
        location.push("fields".into());
        for (pos, field) in reader.fields.iter().enumerate() {
            location.push(pos.to_string());
            match writer_field(writer, field) {
                Some(written) => {
                    location.push("type".into());
                    out.extend(self.check(&field.schema, &written.schema, location));
                    location.pop();
                }
                None if field.default.is_some() => {}
                None => {
                    out.push(incompatible(
                        IncompatibilityType::ReaderFieldMissingDefaultValue,
                        location,
                        field.name.clone(),
                    ));
                }
            }
            location.pop();
        }
        location.pop();
        out
    }
}

/// The writer's field a reader field reads: by name, else by the reader
/// field's aliases.
fn writer_field<'w>(writer: &'w RecordSchema, field: &RecordField) -> Option<&'w RecordField> {
    let by_name = |n: &str| writer.fields.iter().find(|f| f.name == n);
    by_name(&field.name).or_else(|| field.aliases.iter().find_map(|a| by_name(a)))
}

fn incompatible(kind: IncompatibilityType, location: &[String], message: String) -> Incompatibility {
    Incompatibility { kind, location: format!("/{}", location.join("/")), message }
}

/// Nesting depth of a datum the payload walk follows (recursive types).
const AVRO_DEPTH_MAX: usize = 128;
/// Values the walk may visit per payload byte (zero-width values, such as
/// nulls in an array, cost no bytes) and at least.
const AVRO_STEPS_PER_BYTE: usize = 64;
const AVRO_STEPS_MIN: usize = 65_536;

/// Walks one binary datum (Avro specification, "Binary Encoding").
struct DatumWalk<'a> {
    named: &'a HashMap<String, Schema>,
    bytes: &'a [u8],
    pos: usize,
    steps_left: usize,
}

impl DatumWalk<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
                format!("needs {n} bytes at offset {}, {} left", self.pos, self.bytes.len() - self.pos)
            })?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    /// A zig-zag varint long.
    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first().unwrap_or(&0);
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(format!("varint longer than 10 bytes at offset {}", self.pos))
    }

    fn int(&mut self) -> Result<i32, String> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| format!("int out of range: {v}"))
    }

    fn length(&mut self) -> Result<usize, String> {
        let len = self.long()?;
        usize::try_from(len).map_err(|_| format!("negative length {len}"))
    }

    fn value(&mut self, schema: &Schema, depth: usize) -> Result<(), String> {
        if depth > AVRO_DEPTH_MAX {
            return Err(format!("nested deeper than {AVRO_DEPTH_MAX}"));
        }
        self.steps_left = self.steps_left.checked_sub(1).ok_or("too many values for its size")?;
        match kind(schema, self.named) {
            Kind::Null => {}
            Kind::Boolean => {
                let b = self.take(1)?[0];
                if b > 1 {
                    return Err(format!("boolean byte {b}"));
                }
            }
            Kind::Int => {
                self.int()?;
            }
            Kind::Long => {
                self.long()?;
            }
            Kind::Float => {
                self.take(4)?;
            }
            Kind::Double => {
                self.take(8)?;
            }
            Kind::Bytes => {
                let n = self.length()?;
                self.take(n)?;
            }
            Kind::String => {
                let n = self.length()?;
                let at = self.pos;
                std::str::from_utf8(self.take(n)?).map_err(|e| format!("string at offset {at} is not UTF-8: {e}"))?;
            }
            Kind::Fixed(f) => {
                self.take(f.size)?;
            }
            Kind::Enum(e) => {
                let i = self.int()?;
                if usize::try_from(i).map_or(true, |i| i >= e.symbols.len()) {
                    return Err(format!("enum {} has no symbol {i}", e.name.fullname(None)));
                }
            }
            Kind::Union(u) => {
                let i = self.long()?;
                let branch = usize::try_from(i)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| format!("union has no branch {i}"))?;
                self.value(branch, depth + 1)?;
            }
            Kind::Record(r) => {
                for field in &r.fields {
                    self.value(&field.schema, depth + 1)?;
                }
            }
            Kind::Array(items) => self.blocks(|walk| walk.value(items, depth + 1))?,
            Kind::Map(values) => self.blocks(|walk| {
                walk.value(&Schema::String, depth + 1)?;
                walk.value(values, depth + 1)
            })?,
            Kind::Unknown => return Err("the schema has an unresolved named type".to_string()),
        }
        Ok(())
    }

    /// Array and map blocks: a count (negative: followed by a byte size),
    /// the items, until a zero count.
    fn blocks(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), String>) -> Result<(), String> {
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.long()?;
            }
            for _ in 0..count.unsigned_abs() {
                item(self)?;
            }
        }
    }
}
