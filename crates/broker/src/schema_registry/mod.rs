//! The schema registry (Confluent Schema Registry REST API v1), served by
//! `vltava server` on `schema.registry.listeners`, stored in the `_schemas`
//! topic. Interface stub: the state every node keeps, which the produce
//! path's schema validation reads (see `lookup`).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use vltava_schema::{ParsedSchema, Reference, SchemaType};

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

/// What this node knows of the registry (it follows `_schemas`).
#[derive(Default)]
pub struct SchemaRegistry {
    state: RwLock<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    by_id: HashMap<i32, Arc<RegisteredSchema>>,
    /// subject -> (version, schema id) of its versions that are not deleted.
    live: HashMap<String, Vec<(i32, i32)>>,
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
}

/// Filling the state in-process, for unit tests of its readers (the
/// produce path's schema validation).
#[cfg(test)]
impl SchemaRegistry {
    /// Registers `text` as the next version of `subject` with schema `id`.
    pub fn insert(&self, subject: &str, id: i32, schema_type: SchemaType, text: &str) {
        let parsed = Arc::new(vltava_schema::parse(schema_type, text, &[]).expect("a valid test schema"));
        let schema = RegisteredSchema { id, schema_type, text: text.to_string(), references: Vec::new(), parsed };
        let mut state = self.state.write();
        state.by_id.entry(id).or_insert_with(|| Arc::new(schema));
        let versions = state.live.entry(subject.to_string()).or_default();
        let version = versions.last().map_or(1, |(v, _)| v + 1);
        versions.push((version, id));
    }

    /// Deletes a version of `subject` (its id keeps its schema).
    pub fn remove_version(&self, subject: &str, version: i32) {
        if let Some(versions) = self.state.write().live.get_mut(subject) {
            versions.retain(|(v, _)| *v != version);
        }
    }
}
