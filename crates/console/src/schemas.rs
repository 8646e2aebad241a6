//! The schemas section (read-only): `/schemas` lists the subjects of the
//! built-in schema registry with their latest version, id, type and
//! compatibility level; `/schemas/{subject}` shows every version with its
//! schema pretty-printed and its references. JSON twins:
//! `/api/v1/schemas`, `/api/v1/schemas/{subject}`.
//!
//! Read from the registry state this node follows (`_schemas`), in process:
//! the registry itself lets any authenticated user read everything.

use axum::extract::Path;
use axum::routing::get;
use axum::Json;
use maud::{html, Markup};
use serde::Serialize;
use vltava_broker::schema_registry::{RegistryState, DEFAULT_COMPATIBILITY};

use crate::error::{ApiResult, ConsoleError, PageResult};
use crate::layout::{self, url_encode};
use crate::{Ctx, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .route("/schemas", get(list_page))
        .route("/schemas/{subject}", get(subject_page))
        .route("/api/v1/schemas", get(list_api))
        .route("/api/v1/schemas/{subject}", get(subject_api))
}

/// `GET /api/v1/schemas`.
#[derive(Serialize)]
pub struct SchemaList {
    /// Whether this node serves the registry's REST API
    /// (`schema.registry.listeners`).
    pub enabled: bool,
    /// Its address (`http://host:port`) when enabled.
    pub url: Option<String>,
    /// The global compatibility level.
    pub compatibility: String,
    /// The global mode (`READWRITE`, `READONLY`, `IMPORT`).
    pub mode: String,
    pub subjects: Vec<SubjectSummary>,
}

#[derive(Serialize)]
pub struct SubjectSummary {
    pub subject: String,
    /// Versions not deleted.
    pub versions: usize,
    pub latest_version: i32,
    pub latest_id: i32,
    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub schema_type: String,
    pub compatibility: String,
}

/// `GET /api/v1/schemas/{subject}`.
#[derive(Serialize)]
pub struct Subject {
    pub subject: String,
    pub compatibility: String,
    pub mode: String,
    /// Oldest first; soft-deleted ones included (`deleted: true`).
    pub versions: Vec<SubjectVersion>,
}

#[derive(Serialize)]
pub struct SubjectVersion {
    pub version: i32,
    pub id: i32,
    pub schema_type: String,
    pub deleted: bool,
    /// As registered (canonical text).
    pub schema: String,
    /// Indented JSON for Avro and JSON Schema; the text for Protobuf.
    pub pretty: String,
    pub references: Vec<Reference>,
    /// Ids of schemas that refer to this version.
    pub referenced_by: Vec<i32>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn pretty_keeps_key_order_and_strings() {
        let text =
            r#"{"type":"record","name":"P","fields":[{"name":"a, b","type":"string"}],"doc":"x\"{}","e":[],"o":{}}"#;
        let p = super::pretty(text);
        assert!(p.starts_with("{\n  \"type\": \"record\",\n  \"name\": \"P\""), "{p}");
        assert!(p.contains("\"a, b\"") && p.contains(r#""x\"{}""#) && p.contains("\"e\": []"), "{p}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&p).unwrap(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        assert_eq!(super::pretty("syntax = \"proto3\";"), "syntax = \"proto3\";");
    }
}

#[derive(Serialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// `text` re-indented when it is JSON (keys keep their order, as a person
/// wrote them); anything else as it is.
fn pretty(text: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    out.push(chars.next().unwrap_or(' '));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

fn list_model(ctx: &Ctx) -> SchemaList {
    let registry = &ctx.broker.schema_registry;
    let addr = ctx.broker.config.schema_registry_listen;
    registry.read(|s: &RegistryState| SchemaList {
        enabled: addr.is_some(),
        url: addr.map(|a| format!("http://{a}")),
        compatibility: s.global_compatibility.unwrap_or(DEFAULT_COMPATIBILITY).to_string(),
        mode: s.mode(None).as_str().to_string(),
        subjects: s
            .subject_names(false)
            .into_iter()
            .filter_map(|subject| {
                let versions = s.versions(&subject, false);
                let (latest_version, entry) = *versions.last()?;
                let schema_type = s.schema(entry.id).map(|x| x.schema_type.to_string()).unwrap_or_default();
                Some(SubjectSummary {
                    compatibility: s.compatibility(&subject).to_string(),
                    versions: versions.len(),
                    latest_version,
                    latest_id: entry.id,
                    schema_type,
                    subject,
                })
            })
            .collect(),
    })
}

fn subject_model(ctx: &Ctx, subject: &str) -> Result<Subject, ConsoleError> {
    ctx.broker.schema_registry.read(|s: &RegistryState| {
        let versions = s.versions(subject, true);
        if versions.is_empty() {
            return Err(ConsoleError::not_found(format!("no subject {subject} in the schema registry")));
        }
        Ok(Subject {
            subject: subject.to_string(),
            compatibility: s.compatibility(subject).to_string(),
            mode: s.mode(Some(subject)).as_str().to_string(),
            versions: versions
                .into_iter()
                .filter_map(|(version, e)| {
                    let schema = s.schema(e.id)?;
                    Some(SubjectVersion {
                        version,
                        id: e.id,
                        schema_type: schema.schema_type.to_string(),
                        deleted: e.deleted,
                        pretty: pretty(&schema.text),
                        schema: schema.text.clone(),
                        references: schema
                            .references
                            .iter()
                            .map(|r| Reference { name: r.name.clone(), subject: r.subject.clone(), version: r.version })
                            .collect(),
                        referenced_by: s.referenced_by(subject, version),
                    })
                })
                .collect(),
        })
    })
}

async fn list_api(ctx: Ctx) -> ApiResult<SchemaList> {
    Ok(Json(list_model(&ctx)))
}

async fn subject_api(ctx: Ctx, Path(subject): Path<String>) -> ApiResult<Subject> {
    Ok(Json(subject_model(&ctx, &subject)?))
}

fn registry_note(m: &SchemaList) -> Markup {
    html! {
        @if let Some(url) = &m.url {
            p { "The schema registry's REST API (Confluent's) is at " a href=(url) { (url) } "." }
        } @else {
            p.notice role="status" {
                "The schema registry is off on this node: " code { "schema.registry.listeners" }
                " is empty. Set it (e.g. " code { "http://127.0.0.1:8081" } ") to register schemas."
            }
        }
    }
}

async fn list_page(ctx: Ctx) -> PageResult {
    let m = list_model(&ctx);
    let body = html! {
        (registry_note(&m))
        p { "Global compatibility " strong { (m.compatibility) } ", mode " strong { (m.mode) } "." }
        @if m.subjects.is_empty() {
            p { "No subjects registered." }
        } @else {
            label for="subject-filter" { "Filter subjects" }
            " "
            input #subject-filter type="search" data-filter-table="subjects";
            div.table-wrap { table.sortable #subjects {
                thead { tr {
                    th scope="col" { "Subject" } th scope="col" { "Type" } th.num scope="col" { "Versions" }
                    th.num scope="col" { "Latest version" } th.num scope="col" { "Latest id" } th scope="col" { "Compatibility" }
                } }
                tbody { @for s in &m.subjects { tr {
                    td { a href={ "/schemas/" (url_encode(&s.subject)) } { (s.subject) } }
                    td { (s.schema_type) }
                    td.num { (s.versions) }
                    td.num { (s.latest_version) }
                    td.num { (s.latest_id) }
                    td { (s.compatibility) }
                } } }
            } }
        }
    };
    Ok(layout::page(&ctx, "/schemas", "Schemas", body))
}

async fn subject_page(ctx: Ctx, Path(subject): Path<String>) -> PageResult {
    let m = subject_model(&ctx, &subject)?;
    let body = html! {
        p { a href="/schemas" { "All subjects" } }
        p { "Compatibility " strong { (m.compatibility) } ", mode " strong { (m.mode) } ", "
            (m.versions.len()) @if m.versions.len() == 1 { " version." } @else { " versions (newest first)." } }
        @for v in m.versions.iter().rev() {
            section.schema-version aria-labelledby={ "v" (v.version) } {
                h2 #{ "v" (v.version) } {
                    "Version " (v.version) " · id " (v.id) " · " (v.schema_type)
                    @if v.deleted { " " span.bad { "(deleted)" } }
                }
                @if !v.references.is_empty() {
                    p { "References: "
                        @for (i, r) in v.references.iter().enumerate() {
                            @if i > 0 { ", " }
                            code { (r.name) } " → "
                            a href={ "/schemas/" (url_encode(&r.subject)) "#v" (r.version) } { (r.subject) " v" (r.version) }
                        }
                    }
                }
                @if !v.referenced_by.is_empty() {
                    p { "Referenced by schema ids " (v.referenced_by.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")) }
                }
                pre tabindex="0" aria-label={ "Schema of version " (v.version) } { code { (v.pretty) } }
            }
        }
    };
    Ok(layout::page(&ctx, "/schemas", &format!("Schema {}", m.subject), body))
}
