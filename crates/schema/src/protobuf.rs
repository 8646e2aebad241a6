//! Protobuf schemas, as Confluent's Schema Registry handles them.
//!
//! A schema is a `.proto` file (proto2 or proto3), or the base64 of a
//! serialized `FileDescriptorProto` (what confluent-kafka's Python
//! serializer registers). It is compiled with `protox`; its imports are the
//! registry's references, by name (their import path), and the well-known
//! types (`google/protobuf/*.proto`), `google/type/*.proto` and Confluent's
//! `confluent/meta.proto` and `confluent/type/*.proto` resolve without one.
//!
//! - `printer`: the `.proto` text of a compiled file, as Confluent formats it
//!   (canonical: declaration order; normalized: fields by tag, options by
//!   name, type names fully qualified). Comments are dropped in both.
//! - `compat`: Confluent's compatibility rules (its protobuf `diff` package):
//!   the incompatible differences between a writer's and a reader's file.
//! - `wire`: the message indexes Confluent's serializers write before the
//!   message bytes, and payload validation.

mod compat;
mod known;
mod printer;
#[cfg(test)]
mod tests;
mod wire;

pub use wire::{encode_message_indexes, Counting};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use miette::Diagnostic;
use prost_reflect::prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use prost_reflect::{FileDescriptor, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::{Resolved, SchemaError};

/// The name the schema being parsed gets among its imports.
const ROOT_FILE_NAME: &str = "schema.proto";

#[derive(Clone)]
pub struct ProtobufSchema {
    /// The compiled file (it holds its pool, with every import).
    file: FileDescriptor,
    /// Confluent's canonical string: the file printed in declaration order.
    canonical: String,
    /// How message indexes count nested messages: registered as a
    /// descriptor, map entries and groups count.
    counting: Counting,
    /// What the text said that its descriptor does not keep.
    source: printer::SourceFacts,
}

/// The canonical text, not the descriptor pool with every import.
impl std::fmt::Debug for ProtobufSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufSchema").field("canonical", &self.canonical).field("counting", &self.counting).finish()
    }
}

impl ProtobufSchema {
    pub fn parse(text: &str, resolved: &[Resolved]) -> Result<Self, SchemaError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SchemaError::Invalid("empty Protobuf schema".to_string()));
        }
        let root_name = root_name(resolved);
        let root = Source::of(&root_name, text);
        let counting = match root {
            Source::Descriptor(_) => Counting::Descriptor,
            Source::Text(_) => Counting::Declared,
        };
        let mut files = HashMap::with_capacity(resolved.len() + 1);
        for r in resolved {
            files.insert(r.name.clone(), Source::of(&r.name, &r.text));
        }
        files.insert(root_name.clone(), root);
        let parsed_root = Arc::new(Mutex::new(None));
        let mut chain = ChainFileResolver::new();
        chain.add(MemoryFileResolver { files, root_name: root_name.clone(), parsed_root: parsed_root.clone() });
        chain.add(known::KnownFileResolver);
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.include_imports(true).include_source_info(false);
        compiler.open_file(&root_name).map_err(|e| SchemaError::Invalid(describe_error(&e, &root_name)))?;
        let pool = compiler.descriptor_pool();
        let file = pool
            .get_file_by_name(&root_name)
            .ok_or_else(|| SchemaError::Invalid("the compiled schema has no file".to_string()))?;
        let parsed_root = parsed_root.lock().map(|mut p| p.take()).unwrap_or_default();
        let mut source = printer::SourceFacts {
            proto2_declared: counting == Counting::Declared && declares_syntax(text),
            ..Default::default()
        };
        if let Some(parsed) = &parsed_root {
            written_facts(parsed, &mut source);
        }
        let canonical = printer::print(&file, false, &source);
        Ok(Self { file, canonical, counting, source })
    }

    /// Confluent's canonical string (`ProtobufSchema.canonicalString()`):
    /// the file re-printed in declaration order without comments, so two
    /// spellings of one file (and its base64 descriptor) are one schema.
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// `normalize=true`: fields by tag, options by name, imports sorted,
    /// type names fully qualified.
    pub fn normalized(&self) -> String {
        printer::print(&self.file, true, &self.source)
    }

    /// The first message's full name (`package.Message`).
    pub fn record_name(&self) -> Option<String> {
        self.file.messages().next().map(|m| m.full_name().to_string())
    }

    /// The base64 of the file's serialized `FileDescriptorProto`
    /// (`?format=serialized`, what confluent-kafka's Python client asks for).
    pub fn serialized(&self) -> String {
        let encoded = self.file.encode_to_vec();
        base64::engine::general_purpose::STANDARD.encode(without_source_info(&encoded))
    }

    /// The payload after the 5-byte header: message indexes, then the bytes
    /// of the message they select.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), String> {
        wire::validate_payload(&self.file, payload, self.counting)
    }

    /// The payload (message indexes, then the message) as JSON: the message
    /// its indexes select (either counting), fields by name, enums by name,
    /// 64-bit integers as numbers, bytes as base64 (Protobuf's JSON mapping,
    /// fields left at their default omitted).
    pub fn decode_payload(&self, payload: &[u8]) -> Result<serde_json::Value, String> {
        let (indexes, start) = wire::read_message_indexes(payload)?;
        let bytes = &payload[start..];
        let mut last = format!("message indexes {indexes:?} select no message type of the schema");
        for counting in [self.counting, self.counting.other()] {
            let Some(message) = wire::message_by_indexes(&self.file, &indexes, counting) else { continue };
            match prost_reflect::DynamicMessage::decode(message.clone(), bytes) {
                Ok(m) => return Ok(crate::decode::protobuf_message(&m, 0)),
                Err(e) => last = format!("the payload is not a valid {} message: {e}", message.full_name()),
            }
        }
        Err(last)
    }

    /// Why a reader with this schema cannot read data written with `writer`
    /// (Confluent's `isBackwardCompatible`, this schema being the new one).
    pub fn can_read(&self, writer: &Self) -> Vec<String> {
        self.can_read_as(writer, "new", "old")
    }

    /// As `can_read`, naming the reader's and the writer's schema in the
    /// reasons as Confluent does ("new"/"old" for BACKWARD, the other way
    /// round for FORWARD).
    pub fn can_read_as(&self, writer: &Self, reader_role: &str, writer_role: &str) -> Vec<String> {
        compat::differences(&writer.file, &self.file).iter().map(|d| d.describe(reader_role, writer_role)).collect()
    }

    /// The full name of the message a payload's indexes select (what
    /// RecordNameStrategy names for a Protobuf record: Confluent derives it
    /// from the indexes, not from the first message).
    pub fn payload_message_name(&self, payload: &[u8]) -> Result<String, String> {
        let (indexes, _) = wire::read_message_indexes(payload)?;
        wire::message_by_indexes(&self.file, &indexes, self.counting)
            .or_else(|| wire::message_by_indexes(&self.file, &indexes, self.counting.other()))
            .map(|m| m.full_name().to_string())
            .ok_or_else(|| format!("message indexes {indexes:?} select no message type of the schema"))
    }

    /// The message an index path selects, nested messages counted as
    /// `counting` says (see `wire`).
    pub fn message_by_indexes(&self, indexes: &[i32], counting: Counting) -> Option<MessageDescriptor> {
        wire::message_by_indexes(&self.file, indexes, counting)
    }
}

/// An encoded `FileDescriptorProto` without its `source_code_info` (field
/// 9), copied field by field so that custom options survive.
fn without_source_info(encoded: &[u8]) -> Vec<u8> {
    use prost::encoding::{decode_key, skip_field, DecodeContext};
    const SOURCE_CODE_INFO: u32 = 9;
    let mut out = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while !rest.is_empty() {
        let before = rest;
        let Ok((tag, wire_type)) = decode_key(&mut rest) else { return encoded.to_vec() };
        if skip_field(wire_type, tag, &mut rest, DecodeContext::default()).is_err() {
            return encoded.to_vec();
        }
        if tag != SOURCE_CODE_INFO {
            out.extend_from_slice(&before[..before.len() - rest.len()]);
        }
    }
    out
}

/// The root file's name, distinct from every reference's.
fn root_name(resolved: &[Resolved]) -> String {
    let mut name = ROOT_FILE_NAME.to_string();
    let mut n = 0;
    while resolved.iter().any(|r| r.name == name) {
        n += 1;
        name = format!("schema_{n}.proto");
    }
    name
}

/// Whether the first statement of a `.proto` text is `syntax = ...`
/// (it can only be first, after comments).
fn declares_syntax(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.split_once('\n').map_or("", |(_, after)| after).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after).trim_start();
        } else {
            return rest.starts_with("syntax");
        }
    }
}

/// A file's content: `.proto` text, or a serialized descriptor (renamed).
#[derive(Debug, Clone)]
enum Source {
    Text(String),
    Descriptor(Vec<u8>),
}

impl Source {
    fn of(name: &str, text: &str) -> Source {
        match decode_base64_descriptor(text) {
            Some(mut bytes) => {
                // The last value of a singular field wins: appending field 1
                // renames the file without re-encoding its options.
                prost::encoding::string::encode(1, &name.to_string(), &mut bytes);
                Source::Descriptor(bytes)
            }
            None => Source::Text(text.to_string()),
        }
    }
}

/// The bytes of a base64 `FileDescriptorProto`, if `text` is one. A
/// `.proto` text never is (its `;`, `{` and spaces are not base64).
fn decode_base64_descriptor(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    use prost::Message;
    prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()?;
    Some(bytes)
}

/// What the parsed, not yet compiled, root file wrote that compiling
/// changes: the fields that set `json_name` (compiling sets it on every
/// field) and the type names as written (compiling qualifies them).
fn written_facts(parsed: &FileDescriptorProto, facts: &mut printer::SourceFacts) {
    fn fields(scope: &str, list: &[FieldDescriptorProto], facts: &mut printer::SourceFacts) {
        for f in list {
            let name = if scope.is_empty() { f.name().to_string() } else { format!("{scope}.{}", f.name()) };
            if f.json_name.is_some() {
                facts.explicit_json_names.get_or_insert_with(HashSet::new).insert(name.clone());
            }
            if let Some(extendee) = &f.extendee {
                facts.written_type_names.insert(format!("extend:{name}"), extendee.clone());
            }
            if let Some(ty) = &f.type_name {
                facts.written_type_names.insert(name, ty.clone());
            }
        }
    }
    fn messages(scope: &str, list: &[DescriptorProto], facts: &mut printer::SourceFacts) {
        for m in list {
            let name = if scope.is_empty() { m.name().to_string() } else { format!("{scope}.{}", m.name()) };
            fields(&name, &m.field, facts);
            fields(&name, &m.extension, facts);
            messages(&name, &m.nested_type, facts);
        }
    }
    facts.explicit_json_names.get_or_insert_with(HashSet::new);
    fields(parsed.package(), &parsed.extension, facts);
    messages(parsed.package(), &parsed.message_type, facts);
    for service in &parsed.service {
        let prefix = if parsed.package().is_empty() { String::new() } else { format!("{}.", parsed.package()) };
        for m in &service.method {
            let name = format!("{prefix}{}.{}", service.name(), m.name());
            facts.written_type_names.insert(format!("rpc:{name}:in"), m.input_type().to_string());
            facts.written_type_names.insert(format!("rpc:{name}:out"), m.output_type().to_string());
        }
    }
}

struct MemoryFileResolver {
    files: HashMap<String, Source>,
    root_name: String,
    /// The root file as parsed, kept for `written_facts`.
    parsed_root: Arc<Mutex<Option<FileDescriptorProto>>>,
}

impl FileResolver for MemoryFileResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(Source::Text(text)) => {
                let file = File::from_source(name, text)?;
                if name == self.root_name {
                    if let Ok(mut parsed) = self.parsed_root.lock() {
                        *parsed = Some(file.file_descriptor_proto().clone());
                    }
                }
                Ok(file)
            }
            Some(Source::Descriptor(bytes)) => {
                File::decode_file_descriptor_proto(bytes.as_slice()).map_err(protox::Error::new)
            }
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The compiler's message, with the line and column it points at.
fn describe_error(err: &protox::Error, root_name: &str) -> String {
    let mut message = err.to_string();
    if let (Some(source), Some(label)) = (err.source_code(), err.labels().and_then(|mut l| l.next())) {
        if let Ok(span) = source.read_span(label.inner(), 0, 0) {
            message = format!("{message} (line {}, column {})", span.line() + 1, span.column() + 1);
        }
    }
    if let Some(file) = err.file() {
        if file != root_name {
            message = format!("{file}: {message}");
        }
    }
    message
}
