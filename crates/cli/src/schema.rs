//! `vltava schema register|get|list|delete|check`: a client of a schema
//! registry's REST API (Confluent Schema Registry API v1, which `vltava
//! server` serves on `schema.registry.listeners`), so it works against
//! Confluent's registry too. Blocking HTTP with `ureq` (rustls).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::Engine;
use serde_json::{json, Value};

use crate::client::{self, ClientArgs};

/// Confluent's content type for requests and responses.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// The longest one request may take (connect, send, answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Subcommand)]
pub enum SchemaCommand {
    /// Register a schema (a file, or - for stdin) under a subject; prints its id.
    ///
    /// Examples:
    ///   vltava schema register --subject orders-value --type AVRO order.avsc
    ///   vltava schema register --subject orders-value --type PROTOBUF order.proto --reference other.proto=other:1
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Register(RegisterArgs),
    /// Print a schema: by id, or a subject's version (default latest).
    ///
    /// Examples:
    ///   vltava schema get --id 1
    ///   vltava schema get --subject orders-value --version 2 --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Get(GetArgs),
    /// List subjects, or a subject's versions.
    ///
    /// Examples:
    ///   vltava schema list
    ///   vltava schema list --subject orders-value --deleted
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    List(ListArgs),
    /// Delete a subject or one version: soft (its ids stay readable), or
    /// with --permanent for good (soft first when needed).
    ///
    /// Examples:
    ///   vltava schema delete --subject orders-value
    ///   vltava schema delete --subject orders-value --version 1 --permanent
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(DeleteArgs),
    /// Check whether a schema is compatible with a subject's version
    /// (default latest) under the subject's compatibility level; exit 1
    /// with the reasons when it is not.
    ///
    /// Examples:
    ///   vltava schema check --subject orders-value --type AVRO order-v2.avsc
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Check(CheckArgs),
}

/// Where the registry is and how to log in.
#[derive(clap::Args)]
pub struct RegistryArgs {
    /// The registry's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081", value_name = "URL")]
    registry: String,
    /// HTTP basic authentication.
    #[arg(long, value_name = "USER:PASSWORD")]
    basic_auth: Option<String>,
    /// Print the registry's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

/// The schema a command sends.
#[derive(clap::Args)]
pub struct SchemaFileArgs {
    #[arg(long)]
    subject: String,
    /// AVRO, JSON or PROTOBUF.
    #[arg(long = "type", default_value = "AVRO", value_parser = ["AVRO", "JSON", "PROTOBUF"], ignore_case = true)]
    schema_type: String,
    /// A schema this one references, as NAME=SUBJECT:VERSION. Repeatable.
    #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION")]
    references: Vec<String>,
    /// The schema file (- for stdin).
    file: PathBuf,
}

#[derive(clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    schema: SchemaFileArgs,
    /// Register the normalized form (normalize=true).
    #[arg(long)]
    normalize: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct GetArgs {
    /// The schema id.
    #[arg(long, conflicts_with_all = ["subject", "version"], required_unless_present = "subject")]
    id: Option<i32>,
    #[arg(long)]
    subject: Option<String>,
    /// A version number or "latest".
    #[arg(long, requires = "subject", default_value = "latest")]
    version: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// List this subject's versions instead of the subjects.
    #[arg(long)]
    subject: Option<String>,
    /// Include soft-deleted subjects or versions.
    #[arg(long)]
    deleted: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    #[arg(long)]
    subject: String,
    /// Only this version (a number or "latest").
    #[arg(long)]
    version: Option<String>,
    /// Delete for good (a soft delete first, when not done yet).
    #[arg(long)]
    permanent: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    schema: SchemaFileArgs,
    /// The version to check against (a number or "latest").
    #[arg(long, default_value = "latest")]
    version: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(_args: &ClientArgs, cmd: &SchemaCommand) -> anyhow::Result<()> {
    match cmd {
        SchemaCommand::Register(a) => register(a),
        SchemaCommand::Get(a) => get(a),
        SchemaCommand::List(a) => list(a),
        SchemaCommand::Delete(a) => delete(a),
        SchemaCommand::Check(a) => check(a),
    }
}

/// One registry, over HTTP.
struct Registry {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl Registry {
    fn new(a: &RegistryArgs) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        let authorization = a
            .basic_auth
            .as_ref()
            .map(|up| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(up.as_bytes())));
        Self { base: a.registry.trim_end_matches('/').to_string(), agent, authorization }
    }

    /// Sends a request (`body` as JSON when given) to `path` and returns
    /// the JSON answer; an error status becomes an error with Confluent's
    /// `error_code` and `message` (40401/40402/40403: not found, exit 3).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let auth = self.authorization.as_deref();
        let sent = match (method, body) {
            ("POST", body) => {
                let body = body.map(Value::to_string).unwrap_or_default();
                let request = self.agent.post(&url).header("Accept", CONTENT_TYPE).header("Content-Type", CONTENT_TYPE);
                match auth {
                    Some(a) => request.header("Authorization", a).send(body),
                    None => request.send(body),
                }
            }
            (method, _) => {
                let request = match method {
                    "DELETE" => self.agent.delete(&url),
                    _ => self.agent.get(&url),
                }
                .header("Accept", CONTENT_TYPE);
                match auth {
                    Some(a) => request.header("Authorization", a).call(),
                    None => request.call(),
                }
            }
        };
        let mut response = sent.with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let text =
            response.body_mut().read_to_string().with_context(|| format!("{method} {url}: reading the answer"))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = value.get("error_code").and_then(Value::as_i64).unwrap_or(status as i64);
        let message =
            value.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| value.to_string());
        let error = format!("{method} {url}: HTTP {status}, error {code}: {message}");
        if status == 404 {
            return Err(client::NotFound(error).into());
        }
        Err(anyhow!(error))
    }
}

/// A path segment, percent-encoded (subjects may hold '/', ':' and spaces).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A reference flag NAME=SUBJECT:VERSION as the API's JSON.
fn reference(spec: &str) -> anyhow::Result<Value> {
    let parsed = spec.split_once('=').and_then(|(name, rest)| {
        let (subject, version) = rest.rsplit_once(':')?;
        Some((name, subject, version.parse::<i32>().ok()?))
    });
    let (name, subject, version) =
        parsed.ok_or_else(|| anyhow!("--reference {spec}: expected NAME=SUBJECT:VERSION (a version number)"))?;
    Ok(json!({"name": name, "subject": subject, "version": version}))
}

/// The request body of register and check: the schema, its type, references.
fn schema_body(a: &SchemaFileArgs) -> anyhow::Result<Value> {
    let text = if a.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the schema from stdin")?
    } else {
        std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?
    };
    let references = a.references.iter().map(|r| reference(r)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut body = json!({"schema": text, "schemaType": a.schema_type.to_ascii_uppercase()});
    if !references.is_empty() {
        body["references"] = Value::Array(references);
    }
    Ok(body)
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

fn register(a: &RegisterArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&a.registry);
    let body = schema_body(&a.schema)?;
    let query = if a.normalize { "?normalize=true" } else { "" };
    let answer =
        registry.call("POST", &format!("/subjects/{}/versions{query}", segment(&a.schema.subject)), Some(&body))?;
    if a.registry.json {
        print_json(&answer);
    } else {
        let id = answer.get("id").ok_or_else(|| anyhow!("the registry answered without an id: {answer}"))?;
        println!("{id}");
    }
    Ok(())
}

fn get(a: &GetArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&a.registry);
    let answer = match (&a.id, &a.subject) {
        (Some(id), _) => registry.call("GET", &format!("/schemas/ids/{id}"), None)?,
        (None, Some(subject)) => {
            registry.call("GET", &format!("/subjects/{}/versions/{}", segment(subject), segment(&a.version)), None)?
        }
        (None, None) => return Err(anyhow!("give --id, or --subject (and --version)")),
    };
    if a.registry.json {
        print_json(&answer);
        return Ok(());
    }
    let text = answer.get("schema").and_then(Value::as_str).ok_or_else(|| anyhow!("no schema in {answer}"))?;
    // JSON schemas (Avro, JSON Schema) pretty-printed; Protobuf as stored
    match serde_json::from_str::<Value>(text) {
        Ok(parsed) => print_json(&parsed),
        Err(_) => println!("{text}"),
    }
    Ok(())
}

fn list(a: &ListArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&a.registry);
    let deleted = if a.deleted { "?deleted=true" } else { "" };
    let answer = match &a.subject {
        Some(s) => registry.call("GET", &format!("/subjects/{}/versions{deleted}", segment(s)), None)?,
        None => registry.call("GET", &format!("/subjects{deleted}"), None)?,
    };
    if a.registry.json {
        print_json(&answer);
        return Ok(());
    }
    for item in answer.as_array().ok_or_else(|| anyhow!("expected a list, got {answer}"))? {
        match item {
            Value::String(s) => println!("{s}"),
            other => println!("{other}"),
        }
    }
    Ok(())
}

fn delete(a: &DeleteArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&a.registry);
    let path = match &a.version {
        Some(v) => format!("/subjects/{}/versions/{}", segment(&a.subject), segment(v)),
        None => format!("/subjects/{}", segment(&a.subject)),
    };
    let soft = registry.call("DELETE", &path, None);
    let answer = if a.permanent {
        // Confluent's registry wants a soft delete before the permanent
        // one; an already soft-deleted subject or version answers 404 here
        if let Err(e) = soft {
            if client::exit_code(&e) != client::EXIT_NOT_FOUND {
                return Err(e);
            }
        }
        registry.call("DELETE", &format!("{path}?permanent=true"), None)?
    } else {
        soft?
    };
    if a.registry.json {
        print_json(&answer);
    } else {
        let kind = if a.permanent { "permanently" } else { "soft" };
        let what: Vec<String> = match &answer {
            Value::Array(vs) => vs.iter().map(Value::to_string).collect(),
            v => vec![v.to_string()],
        };
        println!("{}: {kind} deleted version(s) {}", a.subject, what.join(", "));
    }
    Ok(())
}

fn check(a: &CheckArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&a.registry);
    let body = schema_body(&a.schema)?;
    let path =
        format!("/compatibility/subjects/{}/versions/{}?verbose=true", segment(&a.schema.subject), segment(&a.version));
    let answer = registry.call("POST", &path, Some(&body))?;
    let compatible = answer
        .get("is_compatible")
        .and_then(Value::as_bool)
        .ok_or_else(|| anyhow!("the registry answered without is_compatible: {answer}"))?;
    if a.registry.json {
        print_json(&answer);
    }
    if compatible {
        if !a.registry.json {
            println!("compatible with {} version {}", a.schema.subject, a.version);
        }
        return Ok(());
    }
    let reasons: Vec<String> = answer
        .get("messages")
        .and_then(Value::as_array)
        .map(|m| m.iter().map(|r| r.as_str().map_or_else(|| r.to_string(), str::to_string)).collect())
        .unwrap_or_default();
    Err(anyhow!("incompatible with {} version {}:\n  {}", a.schema.subject, a.version, reasons.join("\n  ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_percent_encoded_in_paths() {
        assert_eq!(segment("orders-value"), "orders-value");
        assert_eq!(segment(":.ctx:orders value/x"), "%3A.ctx%3Aorders%20value%2Fx");
    }

    #[test]
    fn references_parse() {
        assert_eq!(
            reference("other.proto=other-value:2").unwrap(),
            json!({"name": "other.proto", "subject": "other-value", "version": 2})
        );
        assert_eq!(reference("a=b:c:3").unwrap()["subject"], "b:c");
        for bad in ["x", "x=y", "x=y:latest"] {
            assert!(reference(bad).is_err(), "{bad}");
        }
    }
}
