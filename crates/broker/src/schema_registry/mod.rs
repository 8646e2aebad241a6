//! The schema registry (Confluent Schema Registry REST API v1), served by
//! `vltava server` on `schema.registry.listeners`, stored in the `_schemas`
//! topic.
//!
//! - [`records`]: `_schemas` keys and values in Confluent's JSON format;
//! - this module: [`SchemaRegistry`], the state every node builds by
//!   applying `_schemas` (the produce path's schema validation reads it
//!   through [`SchemaRegistry::schema_by_id`] and
//!   [`SchemaRegistry::is_registered_under`]);
//! - [`store`]: following `_schemas` and the single writer (the leader of
//!   `_schemas` partition 0);
//! - [`api`]: the REST API (axum), [`forward`]: writes sent to the writer.

pub mod api;
pub mod auth;
pub mod forward;
pub mod records;
pub mod server;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use vltava_schema::{Compatibility, ParsedSchema, Reference, Resolved, SchemaType};

use records::{ConfigValue, DeleteSubjectValue, Key, ModeValue, ReferenceJson, SchemaValue};

/// The topic the registry keeps its state in (Confluent's default name).
pub const SCHEMAS_TOPIC: &str = "_schemas";
/// The compatibility level when none is configured (Confluent's default).
pub const DEFAULT_COMPATIBILITY: Compatibility = Compatibility::Backward;

/// A schema as registered: the id is unique in the cluster (default context).
#[derive(Debug)]
pub struct RegisteredSchema {
    pub id: i32,
    pub schema_type: SchemaType,
    /// As stored in `_schemas` (the canonical text).
    pub text: String,
    pub references: Vec<Reference>,
    pub parsed: Arc<ParsedSchema>,
}

/// `/mode`: READWRITE, READONLY (writes refused) or IMPORT (schemas
/// registered with the ids and versions given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    Import,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Some(Mode::ReadWrite),
            "READONLY" | "READONLY_OVERRIDE" => Some(Mode::ReadOnly),
            "IMPORT" => Some(Mode::Import),
            _ => None,
        }
    }
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: i32,
    pub deleted: bool,
}

/// What identifies a schema's content: the same content gets the same id.
type ContentKey = (SchemaType, String, Vec<Reference>);

/// What this node knows of the registry (it follows `_schemas`).
#[derive(Default)]
pub struct SchemaRegistry {
    state: RwLock<RegistryState>,
    /// The `_schemas` reader and the single writer.
    pub store: store::Store,
}

#[derive(Default)]
pub struct RegistryState {
    by_id: HashMap<i32, Arc<RegisteredSchema>>,
    /// subject -> (version, schema id) of its versions that are not deleted.
    live: HashMap<String, Vec<(i32, i32)>>,
    /// Every subject's versions, soft-deleted ones included.
    pub subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    /// Schemas whose every version was deleted permanently: their ids stay
    /// reserved (registering the same schema again gets the same id back).
    retired: HashMap<i32, Arc<RegisteredSchema>>,
    by_content: HashMap<ContentKey, i32>,
    pub global_compatibility: Option<Compatibility>,
    pub subject_compatibility: HashMap<String, Compatibility>,
    pub global_mode: Option<Mode>,
    pub subject_mode: HashMap<String, Mode>,
    /// The largest id ever seen.
    pub max_id: i32,
}

impl SchemaRegistry {
    /// The schema with this id (deleted versions keep their id's schema).
    pub fn schema_by_id(&self, id: i32) -> Option<Arc<RegisteredSchema>> {
        self.state.read().by_id.get(&id).cloned()
    }

    /// Whether a version of `subject` that is not deleted (soft or hard)
    /// has the schema `id`.
    pub fn is_registered_under(&self, id: i32, subject: &str) -> bool {
        self.state.read().live.get(subject).is_some_and(|vs| vs.iter().any(|(_, s)| *s == id))
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&RegistryState) -> R) -> R {
        f(&self.state.read())
    }

    /// Applies one `_schemas` record (the reader's only way in).
    pub fn apply(&self, key: &[u8], value: Option<&[u8]>) {
        let Some(key) = Key::decode(key) else {
            tracing::warn!(key = %String::from_utf8_lossy(key), "{SCHEMAS_TOPIC}: unreadable key skipped");
            return;
        };
        self.state.write().apply(key, value);
    }
}

impl RegistryState {
    fn apply(&mut self, key: Key, value: Option<&[u8]>) {
        fn decode<'a, T: serde::Deserialize<'a>>(value: &'a [u8]) -> Option<T> {
            let decoded = serde_json::from_slice(value).ok();
            if decoded.is_none() {
                tracing::warn!(value = %String::from_utf8_lossy(value), "{SCHEMAS_TOPIC}: unreadable value skipped");
            }
            decoded
        }
        match key {
            Key::Schema { subject, version } => match value.map(decode::<SchemaValue>) {
                Some(Some(v)) => self.put_schema(&subject, version, v),
                Some(None) => {}
                None => self.remove_version(&subject, version),
            },
            Key::Config { subject } => {
                let level = value.and_then(decode::<ConfigValue>).and_then(|v| v.compatibility_level.parse().ok());
                match (subject, level) {
                    (None, level) => self.global_compatibility = level,
                    (Some(s), Some(level)) => {
                        self.subject_compatibility.insert(s, level);
                    }
                    (Some(s), None) => {
                        self.subject_compatibility.remove(&s);
                    }
                }
            }
            Key::Mode { subject } => {
                let mode = value.and_then(decode::<ModeValue>).and_then(|v| Mode::parse(&v.mode));
                match (subject, mode) {
                    (None, mode) => self.global_mode = mode,
                    (Some(s), Some(mode)) => {
                        self.subject_mode.insert(s, mode);
                    }
                    (Some(s), None) => {
                        self.subject_mode.remove(&s);
                    }
                }
            }
            Key::DeleteSubject { subject } => {
                if let Some(v) = value.and_then(decode::<DeleteSubjectValue>) {
                    if let Some(versions) = self.subjects.get_mut(&subject) {
                        for (_, e) in versions.range_mut(..=v.version) {
                            e.deleted = true;
                        }
                    }
                    self.refresh_live(&subject);
                }
            }
            Key::Noop | Key::Other => {}
        }
    }

    fn put_schema(&mut self, subject: &str, version: i32, v: SchemaValue) {
        let Some(ty) = v.schema_type() else {
            tracing::warn!(subject, version, "{SCHEMAS_TOPIC}: unknown schema type {:?} skipped", v.schema_type);
            return;
        };
        self.max_id = self.max_id.max(v.id);
        if !self.by_id.contains_key(&v.id) {
            let references: Vec<Reference> = v.references.iter().map(Reference::from).collect();
            let known = self.retired.remove(&v.id).filter(|s| s.text == v.schema && s.references == references);
            let schema = match known {
                Some(s) => s,
                None => {
                    let resolved = match self.resolve(&references) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(subject, version, id = v.id, error = %e, "{SCHEMAS_TOPIC}: schema skipped");
                            return;
                        }
                    };
                    let parsed = match vltava_schema::parse(ty, &v.schema, &resolved) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(subject, version, id = v.id, error = %e, "{SCHEMAS_TOPIC}: unparsable schema skipped");
                            return;
                        }
                    };
                    Arc::new(RegisteredSchema {
                        id: v.id,
                        schema_type: ty,
                        text: v.schema.clone(),
                        references,
                        parsed: Arc::new(parsed),
                    })
                }
            };
            self.by_content.insert((ty, schema.text.clone(), schema.references.clone()), v.id);
            self.by_id.insert(v.id, schema);
        }
        let old = self
            .subjects
            .entry(subject.to_string())
            .or_default()
            .insert(version, VersionEntry { id: v.id, deleted: v.deleted });
        if let Some(old) = old.filter(|o| o.id != v.id) {
            self.retire_if_unused(old.id);
        }
        self.refresh_live(subject);
    }

    fn remove_version(&mut self, subject: &str, version: i32) {
        let Some(versions) = self.subjects.get_mut(subject) else { return };
        let Some(old) = versions.remove(&version) else { return };
        if versions.is_empty() {
            self.subjects.remove(subject);
        }
        self.retire_if_unused(old.id);
        self.refresh_live(subject);
    }

    /// An id no version uses any more stays reserved for its schema.
    fn retire_if_unused(&mut self, id: i32) {
        if self.subjects.values().any(|vs| vs.values().any(|e| e.id == id)) {
            return;
        }
        if let Some(schema) = self.by_id.remove(&id) {
            self.retired.insert(id, schema);
        }
    }

    fn refresh_live(&mut self, subject: &str) {
        let live: Vec<(i32, i32)> = self
            .subjects
            .get(subject)
            .map(|vs| vs.iter().filter(|(_, e)| !e.deleted).map(|(v, e)| (*v, e.id)).collect())
            .unwrap_or_default();
        if live.is_empty() {
            self.live.remove(subject);
        } else {
            self.live.insert(subject.to_string(), live);
        }
    }

    /// The referenced schemas' texts, transitively, each once (the order
    /// a parser needs: dependencies first).
    pub fn resolve(&self, references: &[Reference]) -> Result<Vec<Resolved>, String> {
        let mut out: Vec<Resolved> = Vec::new();
        self.resolve_into(references, &mut out, 0)?;
        Ok(out)
    }

    fn resolve_into(&self, references: &[Reference], out: &mut Vec<Resolved>, depth: usize) -> Result<(), String> {
        if depth > api::REFERENCE_DEPTH_MAX {
            return Err("schema references nest too deeply".into());
        }
        for r in references {
            let schema =
                self.version(&r.subject, r.version, true).and_then(|(_, e)| self.schema(e.id)).ok_or_else(|| {
                    format!(
                        "Invalid schema: reference {} to subject {} version {} not found",
                        r.name, r.subject, r.version
                    )
                })?;
            self.resolve_into(&schema.references, out, depth + 1)?;
            if !out.iter().any(|x| x.name == r.name) {
                out.push(Resolved { name: r.name.clone(), text: schema.text.clone() });
            }
        }
        Ok(())
    }

    /// A schema by id, a retired one included.
    pub fn schema(&self, id: i32) -> Option<Arc<RegisteredSchema>> {
        self.by_id.get(&id).or_else(|| self.retired.get(&id)).cloned()
    }

    /// The live (not retired) schema with this id.
    pub fn live_schema(&self, id: i32) -> Option<Arc<RegisteredSchema>> {
        self.by_id.get(&id).cloned()
    }

    /// The id a schema with this content has (or had), if any.
    pub fn id_of(&self, ty: SchemaType, text: &str, references: &[Reference]) -> Option<i32> {
        self.by_content.get(&(ty, text.to_string(), references.to_vec())).copied()
    }

    /// `version` of `subject` (-1: the latest), soft-deleted ones with
    /// `deleted`.
    pub fn version(&self, subject: &str, version: i32, deleted: bool) -> Option<(i32, VersionEntry)> {
        let versions = self.subjects.get(subject)?;
        if version == -1 {
            return versions.iter().rev().find(|(_, e)| deleted || !e.deleted).map(|(v, e)| (*v, *e));
        }
        versions.get(&version).filter(|e| deleted || !e.deleted).map(|e| (version, *e))
    }

    /// `(version, entry)` of a subject, oldest first.
    pub fn versions(&self, subject: &str, deleted: bool) -> Vec<(i32, VersionEntry)> {
        self.subjects
            .get(subject)
            .map(|vs| vs.iter().filter(|(_, e)| deleted || !e.deleted).map(|(v, e)| (*v, *e)).collect())
            .unwrap_or_default()
    }

    /// Subjects with a version (a soft-deleted one counts with `deleted`).
    pub fn subject_names(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, vs)| vs.values().any(|e| deleted || !e.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The level that applies to `subject`.
    pub fn compatibility(&self, subject: &str) -> Compatibility {
        self.subject_compatibility.get(subject).copied().or(self.global_compatibility).unwrap_or(DEFAULT_COMPATIBILITY)
    }

    /// The mode that applies to `subject` (None: the global one).
    pub fn mode(&self, subject: Option<&str>) -> Mode {
        subject.and_then(|s| self.subject_mode.get(s).copied()).or(self.global_mode).unwrap_or(Mode::ReadWrite)
    }

    /// The ids of live schemas referring to `subject` `version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .live
            .values()
            .flatten()
            .filter_map(|(_, id)| self.by_id.get(id))
            .filter(|s| s.references.iter().any(|r| r.subject == subject && r.version == version))
            .map(|s| s.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// `(subject, version, deleted)` of every version with schema `id`.
    pub fn versions_of_id(&self, id: i32) -> Vec<(String, i32, bool)> {
        self.subjects
            .iter()
            .flat_map(|(s, vs)| vs.iter().filter(|(_, e)| e.id == id).map(|(v, e)| (s.clone(), *v, e.deleted)))
            .collect()
    }

    /// Whether any schema was ever registered (IMPORT needs an empty registry).
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }
}

/// The value of a SCHEMA record for `schema` as `subject` `version`.
pub fn schema_value(subject: &str, version: i32, schema: &RegisteredSchema, deleted: bool) -> SchemaValue {
    SchemaValue {
        subject: subject.to_string(),
        version,
        id: schema.id,
        schema_type: SchemaValue::type_field(schema.schema_type),
        references: schema.references.iter().map(ReferenceJson::from).collect(),
        schema: schema.text.clone(),
        deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(state: &mut RegistryState, subject: &str, version: i32, id: i32, schema: &str, deleted: bool) {
        let v = SchemaValue {
            subject: subject.into(),
            version,
            id,
            schema_type: None,
            references: vec![],
            schema: schema.into(),
            deleted,
        };
        let value = serde_json::to_vec(&v).unwrap();
        state.apply(Key::Schema { subject: subject.into(), version }, Some(&value));
    }

    #[test]
    fn soft_and_hard_deletes_keep_ids_reserved() {
        let mut st = RegistryState::default();
        put(&mut st, "a", 1, 1, "\"string\"", false);
        put(&mut st, "a", 2, 2, "\"int\"", false);
        assert_eq!(st.live.get("a").unwrap(), &vec![(1, 1), (2, 2)]);
        put(&mut st, "a", 1, 1, "\"string\"", true);
        assert_eq!(st.live.get("a").unwrap(), &vec![(2, 2)]);
        assert!(st.by_id.contains_key(&1), "a soft-deleted version keeps its schema by id");
        st.apply(Key::Schema { subject: "a".into(), version: 1 }, None);
        assert!(!st.by_id.contains_key(&1));
        assert_eq!(st.id_of(SchemaType::Avro, "\"string\"", &[]), Some(1), "the id stays reserved");
        assert_eq!(st.max_id, 2);
        let del = serde_json::to_vec(&DeleteSubjectValue { subject: "a".into(), version: 2 }).unwrap();
        st.apply(Key::DeleteSubject { subject: "a".into() }, Some(&del));
        assert!(!st.live.contains_key("a"));
        assert_eq!(st.subject_names(false), Vec::<String>::new());
        assert_eq!(st.subject_names(true), vec!["a".to_string()]);
    }

    #[test]
    fn config_and_mode_records() {
        let mut st = RegistryState::default();
        assert_eq!(st.compatibility("s"), Compatibility::Backward);
        let full = serde_json::to_vec(&ConfigValue { subject: None, compatibility_level: "FULL".into() }).unwrap();
        st.apply(Key::Config { subject: None }, Some(&full));
        assert_eq!(st.compatibility("s"), Compatibility::Full);
        let none =
            serde_json::to_vec(&ConfigValue { subject: Some("s".into()), compatibility_level: "NONE".into() }).unwrap();
        st.apply(Key::Config { subject: Some("s".into()) }, Some(&none));
        assert_eq!(st.compatibility("s"), Compatibility::None);
        st.apply(Key::Config { subject: Some("s".into()) }, None);
        assert_eq!(st.compatibility("s"), Compatibility::Full);
        let ro = serde_json::to_vec(&ModeValue { subject: None, mode: "READONLY".into() }).unwrap();
        st.apply(Key::Mode { subject: None }, Some(&ro));
        assert_eq!(st.mode(Some("s")), Mode::ReadOnly);
    }
}
