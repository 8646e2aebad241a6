//! JSON Schemas (drafts 4, 6, 7, 2019-09 and 2020-12): the schema checked
//! against its draft's meta-schema and compiled for payload validation
//! (the `jsonschema` crate; `$ref` to a reference's name served from the
//! resolved texts, nothing fetched), the canonical and normalized texts,
//! and Confluent's compatibility rules: a structural diff of the old
//! (writer) and new (reader) schemas whose differences are compatible or
//! not (the "open/closed content model" of objects and arrays, types
//! narrowed or extended, keywords added or tightened, combined types).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::{Map, Value};

use crate::avro::{too_complex, COMPATIBILITY_STEPS_MAX};
use crate::{Resolved, SchemaError};

#[derive(Clone)]
pub struct JsonSchema {
    inner: Arc<Inner>,
}

struct Inner {
    /// The schema and, after it, the referenced documents (by name).
    documents: Vec<Value>,
    names: Vec<String>,
    validator: Validator,
    canonical: String,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchema").field("canonical", &self.inner.canonical).finish()
    }
}

/// `$schema` URIs of the supported drafts (Confluent's default is draft 7).
fn draft_of(schema: &Value) -> Result<Draft, SchemaError> {
    let Some(uri) = schema.get("$schema") else { return Ok(Draft::Draft7) };
    let uri = uri.as_str().ok_or_else(|| SchemaError::Invalid("Invalid schema: $schema is not a string".into()))?;
    let bare = uri.trim_end_matches('#').trim_start_matches("https://").trim_start_matches("http://");
    Ok(match bare {
        "json-schema.org/draft-04/schema" => Draft::Draft4,
        "json-schema.org/draft-06/schema" => Draft::Draft6,
        "json-schema.org/draft-07/schema" => Draft::Draft7,
        "json-schema.org/draft/2019-09/schema" => Draft::Draft201909,
        "json-schema.org/draft/2020-12/schema" => Draft::Draft202012,
        _ => return Err(SchemaError::Invalid(format!("Invalid schema: unsupported $schema {uri}"))),
    })
}

fn meta_validate(schema: &Value, draft: Draft) -> Result<(), String> {
    let result = match draft {
        Draft::Draft4 => jsonschema::draft4::meta::validate(schema),
        Draft::Draft6 => jsonschema::draft6::meta::validate(schema),
        Draft::Draft201909 => jsonschema::draft201909::meta::validate(schema),
        Draft::Draft202012 => jsonschema::draft202012::meta::validate(schema),
        _ => jsonschema::draft7::meta::validate(schema),
    };
    result.map_err(|e| format!("{e} at '{}'", e.instance_path()))
}

/// Serves `$ref`s to the referenced schemas by their reference name;
/// refuses everything else (the broker fetches nothing).
struct References(HashMap<String, Value>);

impl Retrieve for References {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let relative = uri.strip_prefix("json-schema:///").unwrap_or(uri);
        self.0
            .get(uri)
            .or_else(|| self.0.get(relative))
            .or_else(|| self.0.iter().find(|(name, _)| same_document(name, uri)).map(|(_, v)| v))
            .cloned()
            .ok_or_else(|| format!("unresolved reference {uri}").into())
    }
}

impl JsonSchema {
    pub fn parse(text: &str, resolved: &[Resolved]) -> Result<Self, SchemaError> {
        crate::parse_guarded(|| Self::parse_unguarded(text, resolved))
    }

    fn parse_unguarded(text: &str, resolved: &[Resolved]) -> Result<Self, SchemaError> {
        let schema: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::Invalid(format!("Invalid schema: not JSON: {e}")))?;
        if !schema.is_object() && !schema.is_boolean() {
            return Err(SchemaError::Invalid("Invalid schema: a JSON Schema is an object or a boolean".into()));
        }
        let draft = draft_of(&schema)?;
        meta_validate(&schema, draft).map_err(|e| SchemaError::Invalid(format!("Invalid schema: {e}")))?;
        let mut documents = vec![schema];
        let mut names = vec![String::new()];
        let mut references = HashMap::new();
        for r in resolved {
            let doc: Value = serde_json::from_str(&r.text)
                .map_err(|e| SchemaError::Invalid(format!("Invalid schema: reference {} is not JSON: {e}", r.name)))?;
            references.insert(r.name.clone(), doc.clone());
            documents.push(doc);
            names.push(r.name.clone());
        }
        let validator = jsonschema::options()
            .with_draft(draft)
            .with_retriever(References(references))
            .should_validate_formats(false)
            .build(&documents[0])
            .map_err(|e| SchemaError::Invalid(format!("Invalid schema: {e}")))?;
        let canonical = minify(text);
        Ok(Self { inner: Arc::new(Inner { documents, names, validator, canonical }) })
    }

    /// The text without whitespace, key order kept.
    pub fn canonical(&self) -> String {
        self.inner.canonical.clone()
    }

    /// Keys sorted at every level, compact.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        write_sorted(&self.inner.documents[0], &mut out);
        out
    }

    pub fn record_name(&self) -> Option<String> {
        self.inner.documents[0].get("title").and_then(Value::as_str).map(str::to_string)
    }

    /// The payload is a JSON document valid against the schema.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), String> {
        let instance: Value = serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let errors: Vec<String> = self
            .inner
            .validator
            .iter_errors(&instance)
            .take(PAYLOAD_ERRORS_MAX)
            .map(|e| format!("{e} at '{}'", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("payload does not follow the JSON schema: {}", errors.join("; ")))
        }
    }

    /// The payload as the JSON document it is (not checked against the schema).
    pub fn decode_payload(&self, payload: &[u8]) -> Result<Value, String> {
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))
    }

    /// Why a reader with this schema cannot read data written with `writer`.
    pub fn can_read(&self, writer: &Self) -> Vec<String> {
        self.can_read_named(writer, "new", "old")
    }

    /// [`Self::can_read`] with the names the reasons give the reader and
    /// the writer (Confluent: "new"/"old" when checking BACKWARD,
    /// "old"/"new" when checking FORWARD).
    pub fn can_read_named(&self, writer: &Self, reader_name: &str, writer_name: &str) -> Vec<String> {
        let mut diff = Diff {
            original: &writer.inner,
            update: &self.inner,
            in_progress: HashSet::new(),
            path: Vec::new(),
            steps_left: COMPATIBILITY_STEPS_MAX,
        };
        let differences = diff.compare(Node::root(&writer.inner), Node::root(&self.inner));
        if diff.steps_left == 0 {
            return vec![too_complex()];
        }
        differences
            .iter()
            .filter(|d| !d.kind.compatible())
            .map(|d| d.confluent_string(reader_name, writer_name))
            .collect()
    }
}

/// Errors listed in a payload's refusal.
const PAYLOAD_ERRORS_MAX: usize = 3;

/// Removes the whitespace outside strings from valid JSON text.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_sorted(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A schema inside one of a parsed schema's documents (0: the schema
/// itself, then its references), owned when it was split out of a
/// schema with several types or keywords of several kinds.
#[derive(Clone)]
struct Node<'a> {
    value: Cow<'a, Value>,
    document: usize,
}

impl<'a> Node<'a> {
    fn root(inner: &'a Inner) -> Self {
        Node { value: Cow::Borrowed(&inner.documents[0]), document: 0 }
    }
}

/// Everit's schema classes, which Confluent's diff compares.
enum Shape<'a> {
    /// `true`, `{}`, or only annotations: anything is valid.
    Empty,
    False,
    Null,
    Boolean,
    String(&'a Map<String, Value>),
    Number {
        map: &'a Map<String, Value>,
        integer: bool,
    },
    Object(&'a Map<String, Value>),
    Array(&'a Map<String, Value>),
    Enum(Vec<Value>),
    Const(Value),
    Combined {
        criterion: &'static str,
        subschemas: Vec<Value>,
    },
    Not(Value),
}

impl Shape<'_> {
    fn class(&self) -> u8 {
        match self {
            Shape::Empty => 0,
            Shape::False => 1,
            Shape::Null => 2,
            Shape::Boolean => 3,
            Shape::String(_) => 4,
            Shape::Number { .. } => 5,
            Shape::Object(_) => 6,
            Shape::Array(_) => 7,
            Shape::Enum(_) => 8,
            Shape::Const(_) => 11,
            Shape::Combined { .. } => 9,
            Shape::Not(_) => 10,
        }
    }
}

const COMBINATORS: [&str; 4] = ["allOf", "anyOf", "oneOf", "not"];
const ANNOTATIONS: [&str; 13] = [
    "$schema",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "definitions",
    "$defs",
    "readOnly",
    "writeOnly",
    "deprecated",
];
const OBJECT_KEYWORDS: [&str; 10] = [
    "dependentRequired",
    "dependentSchemas",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "dependencies",
    "propertyNames",
];
const ARRAY_KEYWORDS: [&str; 7] =
    ["items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains"];
const STRING_KEYWORDS: [&str; 4] = ["minLength", "maxLength", "pattern", "format"];
const NUMBER_KEYWORDS: [&str; 5] = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];

/// Classifies a schema as Everit does: several types are an anyOf of one
/// schema per type; keywords beside a combinator are an allOf.
fn shape(value: &Value) -> Shape<'_> {
    let map = match value {
        Value::Bool(true) => return Shape::Empty,
        Value::Bool(false) => return Shape::False,
        Value::Object(map) => map,
        _ => return Shape::Empty,
    };
    let combinators: Vec<&str> = COMBINATORS.into_iter().filter(|c| map.contains_key(*c)).collect();
    if !combinators.is_empty() {
        let base: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| !COMBINATORS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let base_constrains = base.keys().any(|k| !ANNOTATIONS.contains(&k.as_str()));
        if combinators.len() == 1 && !base_constrains {
            let c = combinators[0];
            return match (c, &map[c]) {
                ("not", sub) => Shape::Not(sub.clone()),
                (_, Value::Array(subs)) => Shape::Combined { criterion: criterion(c), subschemas: subs.clone() },
                _ => Shape::Empty,
            };
        }
        let mut parts = Vec::new();
        if base_constrains {
            parts.push(Value::Object(base));
        }
        for c in combinators {
            let mut single = Map::new();
            single.insert(c.to_string(), map[c].clone());
            parts.push(Value::Object(single));
        }
        return Shape::Combined { criterion: "allOf", subschemas: parts };
    }
    if let Some(values) = map.get("enum").and_then(Value::as_array) {
        return Shape::Enum(values.clone());
    }
    if let Some(value) = map.get("const") {
        return Shape::Const(value.clone());
    }
    let ty = match map.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) if types.len() == 1 => types[0].as_str().unwrap_or(""),
        Some(Value::Array(types)) => {
            let subschemas = types
                .iter()
                .map(|t| {
                    let mut one = map.clone();
                    one.insert("type".into(), t.clone());
                    Value::Object(one)
                })
                .collect();
            return Shape::Combined { criterion: "anyOf", subschemas };
        }
        _ => {
            let has = |keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
            if has(&OBJECT_KEYWORDS) {
                "object"
            } else if has(&ARRAY_KEYWORDS) {
                "array"
            } else if has(&STRING_KEYWORDS) {
                "string"
            } else if has(&NUMBER_KEYWORDS) {
                "number"
            } else {
                ""
            }
        }
    };
    match ty {
        "string" => Shape::String(map),
        "number" => Shape::Number { map, integer: false },
        "integer" => Shape::Number { map, integer: true },
        "boolean" => Shape::Boolean,
        "null" => Shape::Null,
        "object" => Shape::Object(map),
        "array" => Shape::Array(map),
        _ => Shape::Empty,
    }
}

fn criterion(keyword: &str) -> &'static str {
    match keyword {
        "anyOf" => "anyOf",
        "oneOf" => "oneOf",
        _ => "allOf",
    }
}

/// Confluent's `Difference.Type`s this diff finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
enum Kind {
    TYPE_EXTENDED,
    TYPE_NARROWED,
    TYPE_CHANGED,
    SCHEMA_ADDED,
    SCHEMA_REMOVED,
    MAX_LENGTH_ADDED,
    MAX_LENGTH_REMOVED,
    MAX_LENGTH_INCREASED,
    MAX_LENGTH_DECREASED,
    MIN_LENGTH_ADDED,
    MIN_LENGTH_REMOVED,
    MIN_LENGTH_INCREASED,
    MIN_LENGTH_DECREASED,
    PATTERN_ADDED,
    PATTERN_REMOVED,
    PATTERN_CHANGED,
    MAXIMUM_ADDED,
    MAXIMUM_REMOVED,
    MAXIMUM_INCREASED,
    MAXIMUM_DECREASED,
    MINIMUM_ADDED,
    MINIMUM_REMOVED,
    MINIMUM_INCREASED,
    MINIMUM_DECREASED,
    EXCLUSIVE_MAXIMUM_ADDED,
    EXCLUSIVE_MAXIMUM_REMOVED,
    EXCLUSIVE_MAXIMUM_INCREASED,
    EXCLUSIVE_MAXIMUM_DECREASED,
    EXCLUSIVE_MINIMUM_ADDED,
    EXCLUSIVE_MINIMUM_REMOVED,
    EXCLUSIVE_MINIMUM_INCREASED,
    EXCLUSIVE_MINIMUM_DECREASED,
    MULTIPLE_OF_ADDED,
    MULTIPLE_OF_REMOVED,
    MULTIPLE_OF_EXPANDED,
    MULTIPLE_OF_REDUCED,
    MULTIPLE_OF_CHANGED,
    REQUIRED_ATTRIBUTE_ADDED,
    REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED,
    REQUIRED_ATTRIBUTE_REMOVED,
    MAX_PROPERTIES_ADDED,
    MAX_PROPERTIES_REMOVED,
    MAX_PROPERTIES_INCREASED,
    MAX_PROPERTIES_DECREASED,
    MIN_PROPERTIES_ADDED,
    MIN_PROPERTIES_REMOVED,
    MIN_PROPERTIES_INCREASED,
    MIN_PROPERTIES_DECREASED,
    ADDITIONAL_PROPERTIES_ADDED,
    ADDITIONAL_PROPERTIES_REMOVED,
    ADDITIONAL_PROPERTIES_EXTENDED,
    ADDITIONAL_PROPERTIES_NARROWED,
    PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
    PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
    REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL,
    OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
    PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL,
    PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    MAX_ITEMS_ADDED,
    MAX_ITEMS_REMOVED,
    MAX_ITEMS_INCREASED,
    MAX_ITEMS_DECREASED,
    MIN_ITEMS_ADDED,
    MIN_ITEMS_REMOVED,
    MIN_ITEMS_INCREASED,
    MIN_ITEMS_DECREASED,
    UNIQUE_ITEMS_ADDED,
    UNIQUE_ITEMS_REMOVED,
    ADDITIONAL_ITEMS_ADDED,
    ADDITIONAL_ITEMS_REMOVED,
    ADDITIONAL_ITEMS_EXTENDED,
    ADDITIONAL_ITEMS_NARROWED,
    ITEM_ADDED_TO_OPEN_CONTENT_MODEL,
    ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
    ITEM_ADDED_TO_CLOSED_CONTENT_MODEL,
    ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL,
    ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ENUM_ARRAY_EXTENDED,
    ENUM_ARRAY_NARROWED,
    ENUM_ARRAY_CHANGED,
    COMBINED_TYPE_EXTENDED,
    COMBINED_TYPE_CHANGED,
    PRODUCT_TYPE_EXTENDED,
    PRODUCT_TYPE_NARROWED,
    SUM_TYPE_EXTENDED,
    SUM_TYPE_NARROWED,
    COMBINED_TYPE_SUBSCHEMAS_CHANGED,
    NOT_TYPE_EXTENDED,
    NOT_TYPE_NARROWED,
    DEPENDENCY_ARRAY_ADDED,
    DEPENDENCY_ARRAY_REMOVED,
    DEPENDENCY_ARRAY_EXTENDED,
    DEPENDENCY_ARRAY_NARROWED,
    DEPENDENCY_ARRAY_CHANGED,
    DEPENDENCY_SCHEMA_ADDED,
    DEPENDENCY_SCHEMA_REMOVED,
}

use Kind::*;

impl Kind {
    /// Confluent's `SchemaDiff.COMPATIBLE_CHANGES`.
    fn compatible(self) -> bool {
        matches!(
            self,
            SCHEMA_REMOVED
                | TYPE_EXTENDED
                | MAX_LENGTH_INCREASED
                | MAX_LENGTH_REMOVED
                | MIN_LENGTH_DECREASED
                | MIN_LENGTH_REMOVED
                | PATTERN_REMOVED
                | MAXIMUM_INCREASED
                | MAXIMUM_REMOVED
                | MINIMUM_DECREASED
                | MINIMUM_REMOVED
                | EXCLUSIVE_MAXIMUM_INCREASED
                | EXCLUSIVE_MAXIMUM_REMOVED
                | EXCLUSIVE_MINIMUM_DECREASED
                | EXCLUSIVE_MINIMUM_REMOVED
                | MULTIPLE_OF_REDUCED
                | MULTIPLE_OF_REMOVED
                | REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED
                | REQUIRED_ATTRIBUTE_REMOVED
                | MAX_PROPERTIES_INCREASED
                | MAX_PROPERTIES_REMOVED
                | MIN_PROPERTIES_DECREASED
                | MIN_PROPERTIES_REMOVED
                | ADDITIONAL_PROPERTIES_ADDED
                | ADDITIONAL_PROPERTIES_EXTENDED
                | PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                | REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
                | OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
                | PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
                | PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL
                | PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | MAX_ITEMS_INCREASED
                | MAX_ITEMS_REMOVED
                | MIN_ITEMS_DECREASED
                | MIN_ITEMS_REMOVED
                | UNIQUE_ITEMS_REMOVED
                | ADDITIONAL_ITEMS_ADDED
                | ADDITIONAL_ITEMS_EXTENDED
                | ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                | ITEM_ADDED_TO_CLOSED_CONTENT_MODEL
                | ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
                | ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL
                | ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | ENUM_ARRAY_EXTENDED
                | COMBINED_TYPE_EXTENDED
                | PRODUCT_TYPE_NARROWED
                | SUM_TYPE_EXTENDED
                | NOT_TYPE_NARROWED
                | DEPENDENCY_ARRAY_NARROWED
                | DEPENDENCY_ARRAY_REMOVED
                | DEPENDENCY_SCHEMA_REMOVED
        )
    }

    /// Confluent's description of a difference at `path`, naming the
    /// reader and the writer schema by their roles in the check.
    fn description(self, path: &str, reader: &str, writer: &str) -> String {
        match self {
            MAXIMUM_ADDED
            | MINIMUM_ADDED
            | EXCLUSIVE_MAXIMUM_ADDED
            | EXCLUSIVE_MINIMUM_ADDED
            | MULTIPLE_OF_ADDED
            | MAX_LENGTH_ADDED
            | MIN_LENGTH_ADDED
            | PATTERN_ADDED
            | REQUIRED_ATTRIBUTE_ADDED
            | MAX_PROPERTIES_ADDED
            | MIN_PROPERTIES_ADDED
            | MAX_ITEMS_ADDED
            | MIN_ITEMS_ADDED
            | UNIQUE_ITEMS_ADDED
            | ADDITIONAL_ITEMS_REMOVED
            | ADDITIONAL_PROPERTIES_REMOVED
            | DEPENDENCY_ARRAY_ADDED
            | DEPENDENCY_SCHEMA_ADDED => {
                format!("The keyword at path '{path}' in the {reader} schema is not present in the {writer} schema")
            }
            MIN_LENGTH_INCREASED
            | MINIMUM_INCREASED
            | EXCLUSIVE_MINIMUM_INCREASED
            | MIN_PROPERTIES_INCREASED
            | MULTIPLE_OF_EXPANDED
            | MIN_ITEMS_INCREASED => {
                format!("The value at path '{path}' in the {reader} schema is more than its value in the {writer} schema")
            }
            MAX_LENGTH_DECREASED
            | MAXIMUM_DECREASED
            | MAX_ITEMS_DECREASED
            | EXCLUSIVE_MAXIMUM_DECREASED
            | MAX_PROPERTIES_DECREASED => {
                format!("The value at path '{path}' in the {reader} schema is less than its value in the {writer} schema")
            }
            PATTERN_CHANGED | MULTIPLE_OF_CHANGED | DEPENDENCY_ARRAY_CHANGED => {
                format!("The value at path '{path}' is different between the {reader} and {writer} schema")
            }
            ADDITIONAL_ITEMS_NARROWED | ENUM_ARRAY_NARROWED | SUM_TYPE_NARROWED | ADDITIONAL_PROPERTIES_NARROWED => {
                format!(
                    "An array or combined type at path '{path}' has fewer elements in the {reader} schema than the {writer} schema"
                )
            }
            PRODUCT_TYPE_EXTENDED | SUM_TYPE_EXTENDED | NOT_TYPE_EXTENDED | DEPENDENCY_ARRAY_EXTENDED => format!(
                "An array or combined type at path '{path}' has more elements in the {reader} schema than the {writer} schema"
            ),
            TYPE_CHANGED
            | TYPE_NARROWED
            | COMBINED_TYPE_CHANGED
            | COMBINED_TYPE_SUBSCHEMAS_CHANGED
            | ENUM_ARRAY_CHANGED => {
                format!("A type at path '{path}' is different between the {reader} schema and the {writer} schema")
            }
            PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL | ITEM_ADDED_TO_OPEN_CONTENT_MODEL => format!(
                "The {reader} schema has an open content model and has a property or item at path '{path}' which is \
                 missing in the {writer} schema"
            ),
            REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL => format!(
                "The {reader} schema has an unopen content model and has a required property at path '{path}' which is \
                 missing in the {writer} schema"
            ),
            PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL | ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL => format!(
                "The {reader} schema has a closed content model and is missing a property or item present at path \
                 '{path}' in the {writer} schema"
            ),
            PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
            | ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL => format!(
                "A property or item is missing in the {reader} schema but present at path '{path}' in the {writer} schema and \
                 is not covered by its partially open content model"
            ),
            PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
            | ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL => format!(
                "The {reader} schema has a property or item at path '{path}' which is missing in the {writer} schema and is \
                 not covered by its partially open content model"
            ),
            SCHEMA_ADDED => format!("A schema at path '{path}' is in the {reader} schema and not in the {writer} schema"),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Difference {
    kind: Kind,
    path: String,
}

impl Difference {
    fn confluent_string(&self, reader: &str, writer: &str) -> String {
        format!(
            "{{errorType:\"{:?}\", description:\"{}\"}}",
            self.kind,
            self.kind.description(&self.path, reader, writer)
        )
    }
}

fn compatible(differences: &[Difference]) -> bool {
    differences.iter().all(|d| d.kind.compatible())
}

/// Confluent's `SchemaDiff`: `original` is the old (writer) schema,
/// `update` the new (reader) one.
struct Diff<'a> {
    original: &'a Inner,
    update: &'a Inner,
    /// `$ref` targets being compared (recursive schemas: a pair met again
    /// is compatible, its answer comes from the outer visit).
    in_progress: HashSet<(usize, usize)>,
    path: Vec<String>,
    /// Comparisons left (combined types compare every branch pair).
    steps_left: usize,
}

/// Nesting of `$ref`s followed at once (a `$ref` to a `$ref` ...).
const REF_CHAIN_MAX: usize = 32;

impl<'a> Diff<'a> {
    fn here(&self) -> String {
        format!("#/{}", self.path.join("/"))
    }

    fn add(&self, out: &mut Vec<Difference>, kind: Kind) {
        out.push(Difference { kind, path: self.here() });
    }

    fn add_at(&mut self, out: &mut Vec<Difference>, keyword: &str, kind: Kind) {
        self.path.push(keyword.to_string());
        self.add(out, kind);
        self.path.pop();
    }

    fn in_path<T>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment.into());
        let result = f(self);
        self.path.pop();
        result
    }

    /// Follows `$ref`s to the schema they name (in the same document, or
    /// a reference's document by its name); unknown targets read as `{}`.
    fn deref<'n>(&self, inner: &'n Inner, mut node: Node<'n>) -> Node<'n> {
        for _ in 0..REF_CHAIN_MAX {
            let Some(reference) = node.value.get("$ref").and_then(Value::as_str) else { return node };
            let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
            let document = if base.is_empty() {
                Some(node.document)
            } else {
                inner.names.iter().position(|n| !n.is_empty() && same_document(n, base))
            };
            let target = document.and_then(|d| {
                let fragment = percent_decode(fragment);
                inner.documents[d].pointer(&fragment).map(|v| Node { value: Cow::Borrowed(v), document: d })
            });
            node = target.unwrap_or(Node { value: Cow::Owned(Value::Bool(true)), document: node.document });
        }
        node
    }

    fn compare(&mut self, original: Node<'a>, update: Node<'a>) -> Vec<Difference> {
        if self.steps_left == 0 {
            return Vec::new();
        }
        self.steps_left -= 1;
        let followed = original.value.get("$ref").is_some() || update.value.get("$ref").is_some();
        let original = self.deref(self.original, original);
        let update = self.deref(self.update, update);
        let key = (&*original.value as *const Value as usize, &*update.value as *const Value as usize);
        if followed && !self.in_progress.insert(key) {
            return Vec::new();
        }
        let out = self.compare_resolved(original, update);
        if followed {
            self.in_progress.remove(&key);
        }
        out
    }

    fn compare_resolved(&mut self, original: Node<'a>, update: Node<'a>) -> Vec<Difference> {
        let mut out = Vec::new();
        let o_shape = shape(&original.value);
        let u_shape = shape(&update.value);
        let child = |node: &Node<'a>, v: Value| Node { value: Cow::Owned(v), document: node.document };

        // A schema becoming one branch of a sum type (or a singleton).
        match (&o_shape, &u_shape) {
            (o, Shape::Combined { criterion, subschemas }) if !matches!(o, Shape::Combined { .. }) => {
                if subschemas.len() == 1 {
                    let sub = self.compare(original.clone(), child(&update, subschemas[0].clone()));
                    if compatible(&sub) {
                        return sub;
                    }
                } else if *criterion != "allOf" {
                    for s in subschemas {
                        let sub = self.compare(original.clone(), child(&update, s.clone()));
                        if compatible(&sub) {
                            out.extend(sub);
                            self.add(&mut out, SUM_TYPE_EXTENDED);
                            return out;
                        }
                    }
                }
            }
            (Shape::Combined { subschemas, .. }, u)
                if !matches!(u, Shape::Combined { .. }) && subschemas.len() == 1 =>
            {
                let sub = self.compare(child(&original, subschemas[0].clone()), update.clone());
                if compatible(&sub) {
                    return sub;
                }
            }
            _ => {}
        }

        if o_shape.class() != u_shape.class() {
            // Anything reads what `false` allowed (nothing); `{}` reads anything.
            if !matches!(o_shape, Shape::False) && !matches!(u_shape, Shape::Empty) {
                self.add(&mut out, TYPE_CHANGED);
            }
            return out;
        }
        match (o_shape, u_shape) {
            (Shape::String(o), Shape::String(u)) => self.string(&mut out, o, u),
            (Shape::Number { map: o, integer: oi }, Shape::Number { map: u, integer: ui }) => {
                self.number(&mut out, o, u);
                if oi && !ui {
                    self.add(&mut out, TYPE_EXTENDED);
                } else if !oi && ui {
                    self.add(&mut out, TYPE_NARROWED);
                }
            }
            (Shape::Enum(o), Shape::Enum(u)) if o != u => {
                let kind = if o.iter().all(|v| u.contains(v)) {
                    ENUM_ARRAY_EXTENDED
                } else if u.iter().all(|v| o.contains(v)) {
                    ENUM_ARRAY_NARROWED
                } else {
                    ENUM_ARRAY_CHANGED
                };
                self.add_at(&mut out, "enum", kind);
            }
            (Shape::Object(o), Shape::Object(u)) => self.object(&mut out, &original, o, &update, u),
            (Shape::Array(o), Shape::Array(u)) => self.array(&mut out, &original, o, &update, u),
            (Shape::Combined { criterion: oc, subschemas: os }, Shape::Combined { criterion: uc, subschemas: us }) => {
                self.combined(&mut out, (&original, oc, os), (&update, uc, us))
            }
            (Shape::Not(o), Shape::Not(u)) => self.in_path("not", |d| {
                // `not` reverses the roles: the new schema may exclude less.
                let sub = d.compare(child(&update, u), child(&original, o));
                d.add(&mut out, if compatible(&sub) { NOT_TYPE_NARROWED } else { NOT_TYPE_EXTENDED });
            }),
            (Shape::Const(o), Shape::Const(u)) if o != u => self.add_at(&mut out, "const", ENUM_ARRAY_CHANGED),
            _ => {}
        }
        out
    }

    fn limit(
        &mut self,
        out: &mut Vec<Difference>,
        keyword: &str,
        original: Option<f64>,
        update: Option<f64>,
        [added, removed, increased, decreased]: [Kind; 4],
    ) {
        let kind = match (original, update) {
            (None, Some(_)) => added,
            (Some(_), None) => removed,
            (Some(o), Some(u)) if o < u => increased,
            (Some(o), Some(u)) if o > u => decreased,
            _ => return,
        };
        self.add_at(out, keyword, kind);
    }

    fn string(&mut self, out: &mut Vec<Difference>, o: &Map<String, Value>, u: &Map<String, Value>) {
        for (keyword, kinds) in STRING_LIMITS {
            self.keyword_limit(out, keyword, o, u, kinds);
        }
        match (o.get("pattern"), u.get("pattern")) {
            (None, Some(_)) => self.add_at(out, "pattern", PATTERN_ADDED),
            (Some(_), None) => self.add_at(out, "pattern", PATTERN_REMOVED),
            (Some(a), Some(b)) if a != b => self.add_at(out, "pattern", PATTERN_CHANGED),
            _ => {}
        }
    }

    fn number(&mut self, out: &mut Vec<Difference>, o: &Map<String, Value>, u: &Map<String, Value>) {
        // Draft 4 writes an exclusive limit as `maximum` + `exclusiveMaximum: true`.
        let limits = |m: &Map<String, Value>, inclusive: &str, exclusive: &str| {
            let value = m.get(inclusive).and_then(Value::as_f64);
            match m.get(exclusive) {
                Some(Value::Bool(true)) => (None, value),
                Some(v) => (value, v.as_f64()),
                None => (value, None),
            }
        };
        let (o_max, o_xmax) = limits(o, "maximum", "exclusiveMaximum");
        let (u_max, u_xmax) = limits(u, "maximum", "exclusiveMaximum");
        let (o_min, o_xmin) = limits(o, "minimum", "exclusiveMinimum");
        let (u_min, u_xmin) = limits(u, "minimum", "exclusiveMinimum");
        self.limit(
            out,
            "maximum",
            o_max,
            u_max,
            [MAXIMUM_ADDED, MAXIMUM_REMOVED, MAXIMUM_INCREASED, MAXIMUM_DECREASED],
        );
        self.limit(
            out,
            "minimum",
            o_min,
            u_min,
            [MINIMUM_ADDED, MINIMUM_REMOVED, MINIMUM_INCREASED, MINIMUM_DECREASED],
        );
        self.limit(
            out,
            "exclusiveMaximum",
            o_xmax,
            u_xmax,
            [
                EXCLUSIVE_MAXIMUM_ADDED,
                EXCLUSIVE_MAXIMUM_REMOVED,
                EXCLUSIVE_MAXIMUM_INCREASED,
                EXCLUSIVE_MAXIMUM_DECREASED,
            ],
        );
        self.limit(
            out,
            "exclusiveMinimum",
            o_xmin,
            u_xmin,
            [
                EXCLUSIVE_MINIMUM_ADDED,
                EXCLUSIVE_MINIMUM_REMOVED,
                EXCLUSIVE_MINIMUM_INCREASED,
                EXCLUSIVE_MINIMUM_DECREASED,
            ],
        );
        let o_mul = o.get("multipleOf").and_then(Value::as_f64);
        let u_mul = u.get("multipleOf").and_then(Value::as_f64);
        let kind = match (o_mul, u_mul) {
            (None, Some(_)) => Some(MULTIPLE_OF_ADDED),
            (Some(_), None) => Some(MULTIPLE_OF_REMOVED),
            (Some(a), Some(b)) if a != b => Some(if is_multiple(b, a) {
                MULTIPLE_OF_EXPANDED
            } else if is_multiple(a, b) {
                MULTIPLE_OF_REDUCED
            } else {
                MULTIPLE_OF_CHANGED
            }),
            _ => None,
        };
        if let Some(kind) = kind {
            self.add_at(out, "multipleOf", kind);
        }
    }

    /// `limit` of the numeric keyword in both schemas.
    fn keyword_limit(
        &mut self,
        out: &mut Vec<Difference>,
        keyword: &str,
        o: &Map<String, Value>,
        u: &Map<String, Value>,
        kinds: [Kind; 4],
    ) {
        let num = |m: &Map<String, Value>| m.get(keyword).and_then(Value::as_f64);
        self.limit(out, keyword, num(o), num(u), kinds);
    }

    /// A member (property or tuple item) absent in one schema is read
    /// through the other's partially open content model: compatible when
    /// the member's schema and the model's schema are.
    fn covered(
        &mut self,
        out: &mut Vec<Difference>,
        original: Node<'a>,
        update: Node<'a>,
        [is_covered, not_covered]: [Kind; 2],
    ) {
        let sub = self.compare(original, update);
        let ok = compatible(&sub);
        out.extend(sub);
        self.add(out, if ok { is_covered } else { not_covered });
    }

    /// A member of the old schema missing in the new one.
    fn member_removed(
        &mut self,
        out: &mut Vec<Difference>,
        kinds: &MemberKinds,
        (original, removed): (&Node<'a>, &Value),
        (update, content): (&Node<'a>, Content<'_>),
    ) {
        match content {
            Content::Open => self.add(out, kinds.removed_from_open),
            Content::Partial(schema) => {
                self.covered(out, at(original, removed), at(update, schema), kinds.removed_covered);
            }
            Content::Closed if *removed == Value::Bool(false) => self.add(out, kinds.false_removed_from_closed),
            Content::Closed => self.add(out, kinds.removed_from_closed),
        }
    }

    /// A member of the new schema missing in the old one; the old
    /// schema's content model says what it read there.
    fn member_added(
        &mut self,
        out: &mut Vec<Difference>,
        kinds: &MemberKinds,
        (original, content): (&Node<'a>, Content<'_>),
        (update, added): (&Node<'a>, &Value),
    ) {
        match content {
            Content::Open if matches!(shape(added), Shape::Empty) => self.add(out, kinds.empty_added_to_open),
            Content::Open => self.add(out, kinds.added_to_open),
            Content::Partial(schema) => {
                self.covered(out, at(original, schema), at(update, added), kinds.added_covered);
            }
            Content::Closed => {}
        }
    }

    /// `additionalProperties` / `additionalItems`.
    fn additional_content(
        &mut self,
        out: &mut Vec<Difference>,
        keyword: &str,
        (original, o_value): (&Node<'a>, Option<&Value>),
        (update, u_value): (&Node<'a>, Option<&Value>),
        [added, removed, narrowed, extended]: [Kind; 4],
    ) {
        self.in_path(keyword, |d| {
            let (o_permits, o_schema) = additional(o_value);
            let (u_permits, u_schema) = additional(u_value);
            if o_permits != u_permits {
                d.add(out, if u_permits { added } else { removed });
                return;
            }
            match (o_schema, u_schema) {
                (None, Some(_)) => d.add(out, narrowed),
                (Some(_), None) => d.add(out, extended),
                (Some(os), Some(us)) => {
                    let sub = d.compare(at(original, os), at(update, us));
                    out.extend(sub);
                }
                (None, None) => {}
            }
        });
    }

    fn object(
        &mut self,
        out: &mut Vec<Difference>,
        original: &Node<'a>,
        o: &Map<String, Value>,
        update: &Node<'a>,
        u: &Map<String, Value>,
    ) {
        let empty = Map::new();
        let o_props = o.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let u_props = u.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let o_required = required(o);
        let u_required = required(u);
        let has_default = |v: &Value| v.get("default").is_some();

        self.in_path("required", |d| {
            for key in o_props.keys().filter(|k| u_props.contains_key(*k)) {
                let kind = match (o_required.contains(key.as_str()), u_required.contains(key.as_str())) {
                    (true, false) => REQUIRED_ATTRIBUTE_REMOVED,
                    (false, true) if has_default(&u_props[key]) => REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED,
                    (false, true) => REQUIRED_ATTRIBUTE_ADDED,
                    _ => continue,
                };
                d.add_at(out, key, kind);
            }
        });

        let keys: BTreeSet<&String> = o_props.keys().chain(u_props.keys()).collect();
        self.path.push("properties".into());
        for key in keys {
            self.path.push(key.clone());
            match (o_props.get(key), u_props.get(key)) {
                (Some(o_prop), None) => {
                    self.member_removed(out, &PROPERTY, (original, o_prop), (update, object_content(u, key)))
                }
                (None, Some(u_prop)) => {
                    let content = object_content(o, key);
                    let unopen = !matches!(content, Content::Open);
                    self.member_added(out, &PROPERTY, (original, content), (update, u_prop));
                    // Closed and partially open models.
                    if unopen {
                        let kind = match (u_required.contains(key.as_str()), has_default(u_prop)) {
                            (true, true) => REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL,
                            (true, false) => REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
                            (false, _) => OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
                        };
                        self.add(out, kind);
                    }
                }
                (Some(o_prop), Some(u_prop)) => {
                    let sub = self.compare(at(original, o_prop), at(update, u_prop));
                    out.extend(sub);
                }
                (None, None) => {}
            }
            self.path.pop();
        }
        self.path.pop();

        self.dependencies(out, original, o, update, u);
        self.additional_content(
            out,
            "additionalProperties",
            (original, o.get("additionalProperties")),
            (update, u.get("additionalProperties")),
            PROPERTY.additional,
        );
        for (keyword, kinds) in OBJECT_LIMITS {
            self.keyword_limit(out, keyword, o, u, kinds);
        }
    }

    /// `dependencies` (draft 7: arrays of property names or schemas) and
    /// its 2019-09 split `dependentRequired` / `dependentSchemas`.
    fn dependencies(
        &mut self,
        out: &mut Vec<Difference>,
        original: &Node<'a>,
        o: &Map<String, Value>,
        update: &Node<'a>,
        u: &Map<String, Value>,
    ) {
        let (o_arrays, o_schemas) = dependencies_of(o);
        let (u_arrays, u_schemas) = dependencies_of(u);
        self.path.push("dependencies".into());
        for key in o_arrays.keys().chain(u_arrays.keys()).collect::<BTreeSet<_>>() {
            let kind = match (o_arrays.get(key), u_arrays.get(key)) {
                (Some(_), None) => DEPENDENCY_ARRAY_REMOVED,
                (None, Some(_)) => DEPENDENCY_ARRAY_ADDED,
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) if a.is_subset(b) => DEPENDENCY_ARRAY_EXTENDED,
                (Some(a), Some(b)) if b.is_subset(a) => DEPENDENCY_ARRAY_NARROWED,
                _ => DEPENDENCY_ARRAY_CHANGED,
            };
            self.add_at(out, key, kind);
        }
        for key in o_schemas.keys().chain(u_schemas.keys()).collect::<BTreeSet<_>>() {
            match (o_schemas.get(key), u_schemas.get(key)) {
                (Some(_), None) => self.add_at(out, key, DEPENDENCY_SCHEMA_REMOVED),
                (None, Some(_)) => self.add_at(out, key, DEPENDENCY_SCHEMA_ADDED),
                (Some(os), Some(us)) => {
                    let sub = self.in_path(key.as_str(), |d| d.compare(at(original, os), at(update, us)));
                    out.extend(sub);
                }
                (None, None) => {}
            }
        }
        self.path.pop();
    }

    fn array(
        &mut self,
        out: &mut Vec<Difference>,
        original: &Node<'a>,
        o: &Map<String, Value>,
        update: &Node<'a>,
        u: &Map<String, Value>,
    ) {
        let (o_all, o_tuple, o_additional) = array_items(o);
        let (u_all, u_tuple, u_additional) = array_items(u);

        match (o_all, u_all) {
            (Some(os), Some(us)) => {
                let sub = self.in_path("items", |d| d.compare(at(original, os), at(update, us)));
                out.extend(sub);
            }
            (None, Some(_)) => self.add_at(out, "items", SCHEMA_ADDED),
            (Some(_), None) => self.add_at(out, "items", SCHEMA_REMOVED),
            (None, None) => {}
        }

        for i in 0..o_tuple.len().max(u_tuple.len()) {
            self.path.push(format!("items/{i}"));
            match (o_tuple.get(i), u_tuple.get(i)) {
                (Some(os), Some(us)) => {
                    let sub = self.compare(at(original, os), at(update, us));
                    out.extend(sub);
                }
                (Some(os), None) => self.member_removed(out, &ITEM, (original, os), (update, content(u_additional))),
                (None, Some(us)) => {
                    let content = content(o_additional);
                    let closed = matches!(content, Content::Closed);
                    self.member_added(out, &ITEM, (original, content), (update, us));
                    if closed {
                        self.add(out, ITEM_ADDED_TO_CLOSED_CONTENT_MODEL);
                    }
                }
                (None, None) => {}
            }
            self.path.pop();
        }
        if !o_tuple.is_empty() || !u_tuple.is_empty() {
            self.additional_content(
                out,
                "additionalItems",
                (original, o_additional),
                (update, u_additional),
                ITEM.additional,
            );
        }

        for (keyword, kinds) in ARRAY_LIMITS {
            self.keyword_limit(out, keyword, o, u, kinds);
        }
        let unique = |m: &Map<String, Value>| m.get("uniqueItems") == Some(&Value::Bool(true));
        match (unique(o), unique(u)) {
            (true, false) => self.add_at(out, "uniqueItems", UNIQUE_ITEMS_REMOVED),
            (false, true) => self.add_at(out, "uniqueItems", UNIQUE_ITEMS_ADDED),
            _ => {}
        }
    }

    fn combined(
        &mut self,
        out: &mut Vec<Difference>,
        (original, o_criterion, o_subs): (&Node<'a>, &'static str, Vec<Value>),
        (update, u_criterion, u_subs): (&Node<'a>, &'static str, Vec<Value>),
    ) {
        if o_criterion != u_criterion {
            let extended = u_criterion == "anyOf"
                || (u_criterion == "oneOf" && o_subs.len() == 1)
                || (u_criterion == "allOf" && o_subs.len() == 1 && u_subs.len() == 1);
            if !extended {
                self.add(out, COMBINED_TYPE_CHANGED);
                return;
            }
            self.add(out, COMBINED_TYPE_EXTENDED);
        }
        let dedup = |subs: Vec<Value>| {
            let mut seen = Vec::new();
            for s in subs {
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
            seen
        };
        let o_subs = dedup(o_subs);
        let u_subs = dedup(u_subs);
        let product = u_criterion == "allOf";
        if o_subs.len() < u_subs.len() {
            self.add(out, if product { PRODUCT_TYPE_EXTENDED } else { SUM_TYPE_EXTENDED });
        } else if o_subs.len() > u_subs.len() {
            self.add(out, if product { PRODUCT_TYPE_NARROWED } else { SUM_TYPE_NARROWED });
        }
        // Compatible pairs (old branch, new branch), then a matching that
        // pairs as many branches as the smaller side has.
        let mut edges: Vec<Vec<Option<Vec<Difference>>>> = Vec::new();
        for (i, os) in o_subs.iter().enumerate() {
            let row = self.in_path(format!("{o_criterion}/{i}"), |d| {
                u_subs
                    .iter()
                    .map(|us| {
                        let sub = d.compare(
                            Node { value: Cow::Owned(os.clone()), document: original.document },
                            Node { value: Cow::Owned(us.clone()), document: update.document },
                        );
                        compatible(&sub).then_some(sub)
                    })
                    .collect()
            });
            edges.push(row);
        }
        let matching = maximum_matching(&edges, u_subs.len());
        for (o_index, u_index) in matching.iter().enumerate().filter_map(|(u, o)| o.map(|o| (o, u))) {
            if let Some(Some(sub)) = edges.get(o_index).and_then(|row| row.get(u_index)) {
                out.extend(sub.iter().cloned());
            }
        }
        let matched = matching.iter().filter(|m| m.is_some()).count();
        if matched < o_subs.len().min(u_subs.len()) {
            self.add(out, COMBINED_TYPE_SUBSCHEMAS_CHANGED);
        }
    }
}

/// Numeric keywords of a kind of schema, with their differences (added,
/// removed, increased, decreased).
const STRING_LIMITS: [(&str, [Kind; 4]); 2] = [
    ("maxLength", [MAX_LENGTH_ADDED, MAX_LENGTH_REMOVED, MAX_LENGTH_INCREASED, MAX_LENGTH_DECREASED]),
    ("minLength", [MIN_LENGTH_ADDED, MIN_LENGTH_REMOVED, MIN_LENGTH_INCREASED, MIN_LENGTH_DECREASED]),
];
const OBJECT_LIMITS: [(&str, [Kind; 4]); 2] = [
    (
        "maxProperties",
        [MAX_PROPERTIES_ADDED, MAX_PROPERTIES_REMOVED, MAX_PROPERTIES_INCREASED, MAX_PROPERTIES_DECREASED],
    ),
    (
        "minProperties",
        [MIN_PROPERTIES_ADDED, MIN_PROPERTIES_REMOVED, MIN_PROPERTIES_INCREASED, MIN_PROPERTIES_DECREASED],
    ),
];
const ARRAY_LIMITS: [(&str, [Kind; 4]); 2] = [
    ("maxItems", [MAX_ITEMS_ADDED, MAX_ITEMS_REMOVED, MAX_ITEMS_INCREASED, MAX_ITEMS_DECREASED]),
    ("minItems", [MIN_ITEMS_ADDED, MIN_ITEMS_REMOVED, MIN_ITEMS_INCREASED, MIN_ITEMS_DECREASED]),
];

/// A copy of `value` inside the document of `node`.
fn at<'a>(node: &Node<'a>, value: &Value) -> Node<'a> {
    Node { value: Cow::Owned(value.clone()), document: node.document }
}

/// What an object or tuple says of members it does not list.
#[derive(Clone, Copy)]
enum Content<'v> {
    /// Anything (no `additionalProperties`/`additionalItems`, or `true`).
    Open,
    /// What this schema allows.
    Partial(&'v Value),
    /// Nothing (`false`).
    Closed,
}

fn content(additional_keyword: Option<&Value>) -> Content<'_> {
    match additional(additional_keyword) {
        (true, None) => Content::Open,
        (true, Some(schema)) => Content::Partial(schema),
        (false, _) => Content::Closed,
    }
}

/// An object's content model for the property `key` it does not list: a
/// matching `patternProperties` entry makes it partially open too.
fn object_content<'m>(map: &'m Map<String, Value>, key: &str) -> Content<'m> {
    if open_content_model(map) {
        return Content::Open;
    }
    partially_open_schema(map, key).map_or(Content::Closed, Content::Partial)
}

/// The difference kinds of members (properties or tuple items) added or removed.
struct MemberKinds {
    removed_from_open: Kind,
    removed_covered: [Kind; 2],
    false_removed_from_closed: Kind,
    removed_from_closed: Kind,
    empty_added_to_open: Kind,
    added_to_open: Kind,
    added_covered: [Kind; 2],
    /// `additionalProperties`/`additionalItems` added, removed, narrowed, extended.
    additional: [Kind; 4],
}

const PROPERTY: MemberKinds = MemberKinds {
    removed_from_open: PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL,
    removed_covered: [
        PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ],
    false_removed_from_closed: PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    removed_from_closed: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    empty_added_to_open: PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
    added_to_open: PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
    added_covered: [
        PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ],
    additional: [
        ADDITIONAL_PROPERTIES_ADDED,
        ADDITIONAL_PROPERTIES_REMOVED,
        ADDITIONAL_PROPERTIES_NARROWED,
        ADDITIONAL_PROPERTIES_EXTENDED,
    ],
};

const ITEM: MemberKinds = MemberKinds {
    removed_from_open: ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL,
    removed_covered: [
        ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ],
    false_removed_from_closed: ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    removed_from_closed: ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    empty_added_to_open: ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
    added_to_open: ITEM_ADDED_TO_OPEN_CONTENT_MODEL,
    added_covered: [
        ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ],
    additional: [
        ADDITIONAL_ITEMS_ADDED,
        ADDITIONAL_ITEMS_REMOVED,
        ADDITIONAL_ITEMS_NARROWED,
        ADDITIONAL_ITEMS_EXTENDED,
    ],
};

/// Maximum bipartite matching (augmenting paths): for each right vertex,
/// the left vertex matched to it.
fn maximum_matching<T>(edges: &[Vec<Option<T>>], right: usize) -> Vec<Option<usize>> {
    fn augment<T>(left: usize, edges: &[Vec<Option<T>>], seen: &mut [bool], matched: &mut [Option<usize>]) -> bool {
        for (r, edge) in edges[left].iter().enumerate() {
            if edge.is_some() && !seen[r] {
                seen[r] = true;
                if matched[r].is_none_or(|other| augment(other, edges, seen, matched)) {
                    matched[r] = Some(left);
                    return true;
                }
            }
        }
        false
    }
    let mut matched = vec![None; right];
    for left in 0..edges.len() {
        let mut seen = vec![false; right];
        augment(left, edges, &mut seen, &mut matched);
    }
    matched
}

/// Property dependencies: (required-property lists, schemas) by property.
#[allow(clippy::type_complexity)]
fn dependencies_of(map: &Map<String, Value>) -> (HashMap<&String, BTreeSet<&str>>, HashMap<&String, &Value>) {
    let (mut arrays, mut schemas) = (HashMap::new(), HashMap::new());
    for keyword in ["dependencies", "dependentRequired", "dependentSchemas"] {
        for (key, value) in map.get(keyword).and_then(Value::as_object).into_iter().flatten() {
            match value {
                Value::Array(names) => {
                    arrays.insert(key, names.iter().filter_map(Value::as_str).collect());
                }
                schema => {
                    schemas.insert(key, schema);
                }
            }
        }
    }
    (arrays, schemas)
}

fn required(map: &Map<String, Value>) -> HashSet<&str> {
    map.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

/// (additional content permitted, its schema when it is constrained).
fn additional(value: Option<&Value>) -> (bool, Option<&Value>) {
    match value {
        None | Some(Value::Bool(true)) => (true, None),
        Some(Value::Bool(false)) => (false, None),
        Some(schema) => (true, Some(schema)),
    }
}

fn open_content_model(map: &Map<String, Value>) -> bool {
    let no_patterns = map.get("patternProperties").and_then(Value::as_object).is_none_or(Map::is_empty);
    no_patterns && additional(map.get("additionalProperties")) == (true, None)
}

/// The schema a property not listed falls under: a matching
/// `patternProperties` entry, else `additionalProperties` when a schema.
fn partially_open_schema<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    let patterns = map.get("patternProperties").and_then(Value::as_object);
    for (pattern, schema) in patterns.into_iter().flatten() {
        if fancy_regex_find(pattern, key) {
            return Some(schema);
        }
    }
    additional(map.get("additionalProperties")).1
}

/// Whether the ECMA-262 `pattern` finds a match in `text`, as far as the
/// validator's regex engine goes.
fn fancy_regex_find(pattern: &str, text: &str) -> bool {
    let schema = serde_json::json!({"type": "string", "pattern": pattern});
    jsonschema::validator_for(&schema).is_ok_and(|v| v.is_valid(&Value::String(text.to_string())))
}

/// (`items` as one schema for all, tuple schemas, what follows the tuple)
/// in the draft's spelling (2020-12: `prefixItems` + `items`).
fn array_items(map: &Map<String, Value>) -> (Option<&Value>, &[Value], Option<&Value>) {
    if let Some(Value::Array(prefix)) = map.get("prefixItems") {
        return (None, prefix, map.get("items"));
    }
    match map.get("items") {
        Some(Value::Array(tuple)) => (None, tuple, map.get("additionalItems")),
        Some(all) => (Some(all), &[], None),
        None => (None, &[], None),
    }
}

/// Whether a reference named `name` is the document `base` names (one may
/// be relative to the other's base URI).
fn same_document(name: &str, base: &str) -> bool {
    name == base || base.ends_with(&format!("/{name}")) || name.ends_with(&format!("/{base}"))
}

fn is_multiple(of: f64, base: f64) -> bool {
    base != 0.0 && (of / base).fract() == 0.0
}

fn percent_decode(fragment: &str) -> String {
    let bytes = fragment.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
