//! The `.proto` text of a compiled file, laid out as Confluent's
//! `ProtobufSchemaUtils` prints a schema: syntax, package, imports, file
//! options, messages then enums, extends, services; in a message: reserved,
//! options, fields, oneofs, groups, extension ranges, extends, nested
//! messages then enums; two-space indents; no comments.
//!
//! Canonical (`normalize = false`) keeps declaration order and names types
//! relative to the package where that resolves the same. Normalized sorts
//! fields, oneofs and enum values by number, options by name, imports by
//! path, splits `reserved`/`extensions` into one statement per value, names
//! types fully qualified with a leading dot, and prints `syntax` only for
//! proto3.

use std::collections::{HashMap, HashSet};

use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, FileDescriptor, Kind,
    MessageDescriptor, ServiceDescriptor, Value,
};

/// The largest field number (`max` in ranges).
const FIELD_NUMBER_MAX: u32 = 536_870_911;

/// What a schema's text said that its compiled descriptor does not keep,
/// and Confluent prints back as written.
#[derive(Debug, Clone, Default)]
pub(super) struct SourceFacts {
    /// `syntax = "proto2";` was declared.
    pub(super) proto2_declared: bool,
    /// The fields (`message.full.name.field`) that set `json_name`; None
    /// for a descriptor, whose `json_name` is printed when not the default.
    pub(super) explicit_json_names: Option<HashSet<String>>,
    /// Message and enum type names as written, by field full name (a map's
    /// value type under its entry's `value` field), `extend:{extension full
    /// name}` and `rpc:{method full name}:in`/`:out`; canonical prints them.
    pub(super) written_type_names: HashMap<String, String>,
}

pub(super) fn print(file: &FileDescriptor, normalize: bool, source: &SourceFacts) -> String {
    let p = Printer { pool: file.parent_pool().clone(), package: file.package_name().to_string(), normalize, source };
    p.file(file)
}

struct Printer<'a> {
    pool: DescriptorPool,
    package: String,
    normalize: bool,
    source: &'a SourceFacts,
}

/// Prefixes every line of `text` (which ends with a newline) with two spaces.
fn push_indented(out: &mut String, text: &str) {
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

/// A string literal with the escapes Confluent writes.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for &byte in b {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out.push('"');
    out
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        }
    } else {
        v.to_string()
    }
}

/// protoc's default `json_name`: underscores dropped, the next letter upper-cased.
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn scalar_name(kind: &Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}

/// Statements of a `reserved` or `extensions` list: numbers as `(start, end
/// inclusive)`, then names.
fn range_statements(
    keyword: &str,
    ranges: &[(i64, i64)],
    names: &[&str],
    max: i64,
    normalize: bool,
    options: &str,
) -> Vec<String> {
    let range_text = |&(start, end): &(i64, i64)| {
        if start == end {
            start.to_string()
        } else if end >= max {
            format!("{start} to max")
        } else {
            format!("{start} to {end}")
        }
    };
    if normalize {
        let mut sorted: Vec<(i64, i64)> = ranges.to_vec();
        sorted.sort();
        let mut names: Vec<&str> = names.to_vec();
        names.sort_unstable();
        let mut out: Vec<String> = sorted.iter().map(|r| format!("{keyword} {}{options};\n", range_text(r))).collect();
        out.extend(names.iter().map(|n| format!("{keyword} {};\n", quote(n))));
        out
    } else {
        let mut out = Vec::new();
        if !ranges.is_empty() {
            let list: Vec<String> = ranges.iter().map(range_text).collect();
            out.push(format!("{keyword} {}{options};\n", list.join(", ")));
        }
        if !names.is_empty() {
            let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
            out.push(format!("{keyword} {};\n", list.join(", ")));
        }
        out
    }
}

impl Printer<'_> {
    fn file(&self, file: &FileDescriptor) -> String {
        let fdp = file.file_descriptor_proto();
        let mut out = String::new();
        let syntax = match fdp.syntax() {
            "" | "proto2" if self.source.proto2_declared => "proto2",
            s => s,
        };
        if !syntax.is_empty() && (!self.normalize || syntax == "proto3") {
            out.push_str(&format!("syntax = \"{syntax}\";\n"));
        }
        if !self.package.is_empty() {
            out.push_str(&format!("package {};\n", self.package));
        }
        if !fdp.dependency.is_empty() {
            out.push('\n');
            let is_public = |i: usize| fdp.public_dependency.iter().any(|&p| p as usize == i);
            let mut imports: Vec<&str> =
                fdp.dependency.iter().enumerate().filter(|(i, _)| !is_public(*i)).map(|(_, d)| d.as_str()).collect();
            let mut public: Vec<&str> =
                fdp.dependency.iter().enumerate().filter(|(i, _)| is_public(*i)).map(|(_, d)| d.as_str()).collect();
            if self.normalize {
                imports.sort_unstable();
                imports.dedup();
                public.sort_unstable();
                public.dedup();
            }
            for i in imports {
                out.push_str(&format!("import {};\n", quote(i)));
            }
            for i in public {
                out.push_str(&format!("import public {};\n", quote(i)));
            }
        }
        let options = self.options(&file.options());
        if !options.is_empty() {
            out.push('\n');
            for o in options {
                out.push_str(&format!("option {o};\n"));
            }
        }
        let messages: Vec<MessageDescriptor> = file.messages().collect();
        let enums: Vec<EnumDescriptor> = file.enums().collect();
        if !messages.is_empty() || !enums.is_empty() {
            out.push('\n');
            for m in &messages {
                out.push_str(&self.message(m));
            }
            for e in &enums {
                out.push_str(&self.enumeration(e));
            }
        }
        let extensions: Vec<ExtensionDescriptor> = file.extensions().collect();
        if !extensions.is_empty() {
            out.push('\n');
            for block in self.extends(&extensions, "") {
                out.push_str(&block);
            }
        }
        let services: Vec<ServiceDescriptor> = file.services().collect();
        if !services.is_empty() {
            out.push('\n');
            for s in &services {
                out.push_str(&self.service(s));
            }
        }
        out
    }

    /// Whether `name` is a type, service or package of the pool.
    fn name_exists(&self, name: &str) -> bool {
        self.pool.get_message_by_name(name).is_some()
            || self.pool.get_enum_by_name(name).is_some()
            || self.pool.get_service_by_name(name).is_some()
            || self.pool.files().any(|f| {
                let p = f.package_name();
                p == name || p.strip_prefix(name).is_some_and(|rest| rest.starts_with('.'))
            })
    }

    /// How the file refers to type `target` from inside `scope` (a message's
    /// full name, or the package): fully qualified when normalizing,
    /// otherwise relative to the package when that resolves to `target`.
    fn type_ref(&self, target: &str, scope: &str) -> String {
        let qualified = format!(".{target}");
        if self.normalize {
            return qualified;
        }
        let candidate = if self.package.is_empty() {
            target
        } else {
            target.strip_prefix(&self.package).and_then(|r| r.strip_prefix('.')).unwrap_or(target)
        };
        // The shortest trailing part of the name that resolves to `target`.
        let parts: Vec<&str> = candidate.split('.').collect();
        (0..parts.len())
            .rev()
            .map(|i| parts[i..].join("."))
            .find(|name| self.resolve(name, scope).as_deref() == Some(target))
            .unwrap_or(qualified)
    }

    /// What a relative type name means inside `scope`: protobuf looks its
    /// first component up from the innermost scope outwards.
    fn resolve(&self, name: &str, scope: &str) -> Option<String> {
        let first = name.split('.').next().unwrap_or(name);
        let mut s = scope;
        loop {
            let prefix = if s.is_empty() { String::new() } else { format!("{s}.") };
            if self.name_exists(&format!("{prefix}{first}")) {
                return Some(format!("{prefix}{name}"));
            }
            if s.is_empty() {
                return None;
            }
            s = s.rfind('.').map_or("", |i| &s[..i]);
        }
    }

    /// `name = value` of each option set in `options` (custom ones by their
    /// full name in parentheses); sorted by name when normalizing.
    fn options(&self, options: &DynamicMessage) -> Vec<String> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for (field, value) in options.fields() {
            if field.name() == "uninterpreted_option" {
                continue;
            }
            self.push_option(&mut entries, field.name().to_string(), field.name().to_string(), &field.kind(), value);
        }
        for (ext, value) in options.extensions() {
            let name = ext.full_name().to_string();
            self.push_option(&mut entries, name.clone(), format!("({name})"), &ext.kind(), value);
        }
        if self.normalize {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        entries.into_iter().map(|(_, text)| text).collect()
    }

    fn push_option(&self, entries: &mut Vec<(String, String)>, key: String, name: String, kind: &Kind, value: &Value) {
        if let Value::List(items) = value {
            for item in items {
                entries.push((key.clone(), format!("{name} = {}", self.value(kind, item))));
            }
        } else {
            entries.push((key, format!("{name} = {}", self.value(kind, value))));
        }
    }

    fn value(&self, kind: &Kind, value: &Value) -> String {
        match value {
            Value::Bool(b) => b.to_string(),
            Value::I32(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::F32(v) => float_text(f64::from(*v)),
            Value::F64(v) => float_text(*v),
            Value::String(s) => quote(s),
            Value::Bytes(b) => quote_bytes(b),
            Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
                Some(v) => v.name().to_string(),
                None => n.to_string(),
            },
            Value::Message(m) => self.message_value(m),
            Value::List(items) => self.list(items.iter().map(|i| self.value(kind, i)).collect()),
            Value::Map(map) => {
                // A map is its entries, as the text format writes them.
                let Some(entry) = kind.as_message() else { return String::new() };
                let (key_kind, value_kind) = (entry.map_entry_key_field().kind(), entry.map_entry_value_field().kind());
                let mut entries: Vec<(String, String)> = map
                    .iter()
                    .map(|(k, v)| (self.value(&key_kind, &k.clone().into()), self.value(&value_kind, v)))
                    .collect();
                entries.sort();
                let texts: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| {
                        let mut out = String::from("{\n");
                        push_indented(&mut out, &format!("key: {k},\n"));
                        push_indented(&mut out, &format!("value: {v}\n"));
                        out.push('}');
                        out
                    })
                    .collect();
                self.list(texts)
            }
        }
    }

    /// `[\n  a,\n  b\n]` (normalized: a single value alone).
    fn list(&self, texts: Vec<String>) -> String {
        if self.normalize && texts.len() == 1 {
            return texts.into_iter().next().unwrap_or_default();
        }
        let mut out = String::from("[\n");
        let n = texts.len();
        for (i, t) in texts.into_iter().enumerate() {
            push_indented(&mut out, &format!("{t}{}\n", if i + 1 < n { "," } else { "" }));
        }
        out.push(']');
        out
    }

    /// A message-valued option in Confluent's `{ key: value, ... }` layout.
    fn message_value(&self, m: &DynamicMessage) -> String {
        let mut entries: Vec<(String, String)> = Vec::new();
        for (field, value) in m.fields() {
            entries.push((field.name().to_string(), self.value(&field.kind(), value)));
        }
        for (ext, value) in m.extensions() {
            entries.push((format!("[{}]", ext.full_name()), self.value(&ext.kind(), value)));
        }
        if self.normalize {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut out = String::from("{\n");
        let n = entries.len();
        for (i, (k, v)) in entries.into_iter().enumerate() {
            push_indented(&mut out, &format!("{k}: {v}{}\n", if i + 1 < n { "," } else { "" }));
        }
        out.push('}');
        out
    }

    /// `[a = 1]`, or one option a line when there are several.
    fn bracket_options(options: &[String]) -> String {
        match options {
            [] => String::new(),
            [one] => format!(" [{one}]"),
            many => {
                let mut out = String::from(" [\n");
                for (i, o) in many.iter().enumerate() {
                    push_indented(&mut out, &format!("{o}{}\n", if i + 1 < many.len() { "," } else { "" }));
                }
                out.push(']');
                out
            }
        }
    }

    /// A type name as the text wrote it, for the canonical form.
    fn written(&self, key: &str) -> Option<String> {
        if self.normalize {
            None
        } else {
            self.source.written_type_names.get(key).cloned()
        }
    }

    /// The type of field `field` (a full name) of kind `kind`: as written
    /// in canonical form when the text is known.
    fn field_type(&self, field: &str, kind: &Kind, scope: &str) -> String {
        match kind {
            Kind::Message(_) | Kind::Enum(_) => self.written(field).unwrap_or_else(|| self.named_kind(kind, scope)),
            _ => self.named_kind(kind, scope),
        }
    }

    fn named_kind(&self, kind: &Kind, scope: &str) -> String {
        match kind {
            Kind::Message(m) => self.type_ref(m.full_name(), scope),
            Kind::Enum(e) => self.type_ref(e.full_name(), scope),
            scalar => scalar_name(scalar).unwrap_or("bytes").to_string(),
        }
    }

    fn field_options(&self, field: &FieldDescriptor, options: DynamicMessage) -> Vec<String> {
        let fdp = field.field_descriptor_proto();
        let mut extra: Vec<(String, String)> = Vec::new();
        if let Some(default) = &fdp.default_value {
            let text = match field.kind() {
                // A string's default is stored raw, a bytes' C-escaped.
                Kind::String => quote(default),
                Kind::Bytes => format!("\"{default}\""),
                _ => default.clone(),
            };
            extra.push(("default".to_string(), format!("default = {text}")));
        }
        if let Some(json) = &fdp.json_name {
            let explicit = match &self.source.explicit_json_names {
                Some(names) => names.contains(field.full_name()),
                None => *json != default_json_name(field.name()),
            };
            if explicit {
                extra.push(("json_name".to_string(), format!("json_name = {}", quote(json))));
            }
        }
        let mut all: Vec<(String, String)> = Vec::new();
        for o in self.options(&options) {
            let key = o.split(" = ").next().unwrap_or("").trim_matches(|c| c == '(' || c == ')').to_string();
            all.push((key, o));
        }
        all.extend(extra);
        if self.normalize {
            all.sort_by(|a, b| a.0.cmp(&b.0));
        }
        all.into_iter().map(|(_, o)| o).collect()
    }

    fn field(&self, field: &FieldDescriptor, scope: &str) -> String {
        let ty = if field.is_map() {
            let entry = field.kind();
            let entry = entry.as_message().expect("a map field's kind is its entry message");
            let key = self.named_kind(&entry.map_entry_key_field().kind(), scope);
            let value_field = entry.map_entry_value_field();
            let value = self.field_type(value_field.full_name(), &value_field.kind(), scope);
            format!("map<{key}, {value}>")
        } else {
            self.field_type(field.full_name(), &field.kind(), scope)
        };
        let label = super::compat::label(field).map(|l| format!("{} ", l.as_str())).unwrap_or_default();
        let options = self.field_options(field, field.options());
        format!("{label}{ty} {} = {}{};\n", field.name(), field.number(), Self::bracket_options(&options))
    }

    fn group(&self, field: &FieldDescriptor) -> String {
        let label = super::compat::label(field).map(|l| format!("{} ", l.as_str())).unwrap_or_default();
        let kind = field.kind();
        let Some(group) = kind.as_message() else { return String::new() };
        let mut out = format!("{label}group {} = {} {{", group.name(), field.number());
        let mut fields: Vec<FieldDescriptor> = group.fields().collect();
        if self.normalize {
            fields.sort_by_key(|f| f.number());
        }
        if !fields.is_empty() {
            out.push('\n');
            for f in &fields {
                push_indented(&mut out, &self.field(f, group.full_name()));
            }
        }
        out.push_str("}\n");
        out
    }

    fn message(&self, message: &MessageDescriptor) -> String {
        let scope = message.full_name();
        let mut out = format!("message {} {{", message.name());
        let ranges: Vec<(i64, i64)> =
            message.reserved_ranges().map(|r| (i64::from(r.start), i64::from(r.end) - 1)).collect();
        let names: Vec<&str> = message.reserved_names().collect();
        let reserved = range_statements("reserved", &ranges, &names, i64::from(FIELD_NUMBER_MAX), self.normalize, "");
        if !reserved.is_empty() {
            out.push('\n');
            for r in reserved {
                push_indented(&mut out, &r);
            }
        }
        let options = self.options(&message.options());
        if !options.is_empty() {
            out.push('\n');
            for o in options {
                push_indented(&mut out, &format!("option {o};\n"));
            }
        }
        let in_real_oneof = |f: &FieldDescriptor| f.containing_oneof().is_some_and(|o| !o.is_synthetic());
        // A map's entry and a group's message are nested types where their
        // field is declared. When this layout (maps with the fields, then
        // groups, then nested messages) would reorder the nested types that
        // message indexes count, the canonical text prints maps and groups
        // at their nested type's place instead.
        let children: Vec<MessageDescriptor> = message.child_messages().collect();
        let field_of = |m: &MessageDescriptor| {
            message.fields().find(|f| (f.is_map() || f.is_group()) && f.kind().as_message() == Some(m))
        };
        let laid_out: Vec<MessageDescriptor> = message
            .fields()
            .filter(|f| f.is_map())
            .chain(message.fields().filter(|f| f.is_group()))
            .filter_map(|f| f.kind().as_message().cloned())
            .chain(super::wire::declared_messages(children.iter().cloned(), Some(message)))
            .collect();
        let in_place = !self.normalize && laid_out != children;
        let mut fields: Vec<FieldDescriptor> =
            message.fields().filter(|f| !(in_real_oneof(f) || f.is_group() || (in_place && f.is_map()))).collect();
        if self.normalize {
            fields.sort_by_key(|f| f.number());
        }
        if !fields.is_empty() {
            out.push('\n');
            for f in &fields {
                push_indented(&mut out, &self.field(f, scope));
            }
        }
        let mut oneofs: Vec<(String, Vec<FieldDescriptor>)> = message
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .map(|o| (o.name().to_string(), o.fields().filter(|f| !f.is_group()).collect()))
            .collect();
        if self.normalize {
            oneofs.retain(|(_, fields)| !fields.is_empty());
            for (_, fields) in oneofs.iter_mut() {
                fields.sort_by_key(|f| f.number());
            }
            oneofs.sort_by_key(|(_, fields)| fields[0].number());
        }
        if !oneofs.is_empty() {
            out.push('\n');
            for (name, fields) in &oneofs {
                let mut block = format!("oneof {name} {{");
                if let Some(oneof) = message.oneofs().find(|o| o.name() == name) {
                    let options = self.options(&oneof.options());
                    if !options.is_empty() {
                        block.push('\n');
                        for o in options {
                            push_indented(&mut block, &format!("option {o};\n"));
                        }
                    }
                }
                if !fields.is_empty() {
                    block.push('\n');
                    for f in fields {
                        push_indented(&mut block, &self.field(f, scope));
                    }
                }
                block.push_str("}\n");
                push_indented(&mut out, &block);
            }
        }
        let mut groups: Vec<FieldDescriptor> = message.fields().filter(|f| f.is_group() && !in_place).collect();
        if self.normalize {
            groups.sort_by_key(|f| f.number());
        }
        if !groups.is_empty() {
            out.push('\n');
            for g in &groups {
                push_indented(&mut out, &self.group(g));
            }
        }
        let ext_ranges: Vec<(i64, i64)> =
            message.extension_ranges().map(|r| (i64::from(r.start), i64::from(r.end) - 1)).collect();
        let ext_statements =
            range_statements("extensions", &ext_ranges, &[], i64::from(FIELD_NUMBER_MAX), self.normalize, "");
        if !ext_statements.is_empty() {
            out.push('\n');
            for e in ext_statements {
                push_indented(&mut out, &e);
            }
        }
        let extensions: Vec<ExtensionDescriptor> = message.child_extensions().collect();
        if !extensions.is_empty() {
            out.push('\n');
            for block in self.extends(&extensions, scope) {
                push_indented(&mut out, &block);
            }
        }
        let nested =
            if in_place { children } else { super::wire::declared_messages(message.child_messages(), Some(message)) };
        let enums: Vec<EnumDescriptor> = message.child_enums().collect();
        if !nested.is_empty() || !enums.is_empty() {
            out.push('\n');
            for m in &nested {
                match field_of(m) {
                    Some(f) if f.is_group() => push_indented(&mut out, &self.group(&f)),
                    Some(f) => push_indented(&mut out, &self.field(&f, scope)),
                    None => push_indented(&mut out, &self.message(m)),
                }
            }
            for e in &enums {
                push_indented(&mut out, &self.enumeration(e));
            }
        }
        out.push_str("}\n");
        out
    }

    fn enumeration(&self, e: &EnumDescriptor) -> String {
        let mut out = format!("enum {} {{", e.name());
        let ranges: Vec<(i64, i64)> =
            e.reserved_ranges().map(|r| (i64::from(*r.start()), i64::from(*r.end()))).collect();
        let names: Vec<&str> = e.reserved_names().collect();
        let reserved = range_statements("reserved", &ranges, &names, i64::from(i32::MAX), self.normalize, "");
        let options = self.options(&e.options());
        let declared = &e.enum_descriptor_proto().value;
        let mut values: Vec<_> = e.values().collect();
        values.sort_by_key(|v| declared.iter().position(|d| d.name() == v.name()));
        if self.normalize {
            values.sort_by(|a, b| a.number().cmp(&b.number()).then_with(|| a.name().cmp(b.name())));
        }
        if !reserved.is_empty() {
            out.push('\n');
            for r in reserved {
                push_indented(&mut out, &r);
            }
        } else if !options.is_empty() || !values.is_empty() {
            out.push('\n');
        }
        for o in options {
            push_indented(&mut out, &format!("option {o};\n"));
        }
        for v in values {
            let options = self.options(&v.options());
            push_indented(&mut out, &format!("{} = {}{};\n", v.name(), v.number(), Self::bracket_options(&options)));
        }
        out.push_str("}\n");
        out
    }

    /// `extend` blocks: consecutive extensions of one message share a block
    /// (normalized: one block per message, fields by number).
    fn extends(&self, extensions: &[ExtensionDescriptor], scope: &str) -> Vec<String> {
        let mut blocks: Vec<(String, Vec<&ExtensionDescriptor>)> = Vec::new();
        for ext in extensions {
            let extendee = ext.containing_message().full_name().to_string();
            let existing = if self.normalize {
                blocks.iter_mut().find(|(name, _)| *name == extendee)
            } else {
                blocks.last_mut().filter(|(name, _)| *name == extendee)
            };
            match existing {
                Some((_, fields)) => fields.push(ext),
                None => blocks.push((extendee, vec![ext])),
            }
        }
        let scope = if scope.is_empty() { self.package.as_str() } else { scope };
        blocks
            .into_iter()
            .map(|(extendee, mut fields)| {
                if self.normalize {
                    fields.sort_by_key(|f| f.number());
                }
                let written = fields.first().and_then(|f| self.written(&format!("extend:{}", f.full_name())));
                let name = written.unwrap_or_else(|| self.type_ref(&extendee, scope));
                let mut out = format!("extend {name} {{\n");
                for f in fields {
                    push_indented(&mut out, &self.extension_field(f, scope));
                }
                out.push_str("}\n");
                out
            })
            .collect()
    }

    fn extension_field(&self, ext: &ExtensionDescriptor, scope: &str) -> String {
        use prost_reflect::prost_types::field_descriptor_proto::Label;
        let fdp = ext.field_descriptor_proto();
        let label = match fdp.label() {
            Label::Repeated => "repeated ",
            Label::Required => "required ",
            Label::Optional if ext.parent_file().file_descriptor_proto().syntax() == "proto3" => "",
            Label::Optional => "optional ",
        };
        let options = self.options(&ext.options());
        format!(
            "{label}{} {} = {}{};\n",
            self.field_type(ext.full_name(), &ext.kind(), scope),
            ext.name(),
            ext.number(),
            Self::bracket_options(&options)
        )
    }

    fn service(&self, service: &ServiceDescriptor) -> String {
        let mut out = format!("service {} {{", service.name());
        let options = self.options(&service.options());
        if !options.is_empty() {
            out.push('\n');
            for o in options {
                push_indented(&mut out, &format!("option {o};\n"));
            }
        }
        let methods: Vec<_> = service.methods().collect();
        if !methods.is_empty() {
            out.push('\n');
            for m in methods {
                let stream = |yes: bool| if yes { "stream " } else { "" };
                let mut rpc = format!(
                    "rpc {} ({}{}) returns ({}{})",
                    m.name(),
                    stream(m.is_client_streaming()),
                    self.written(&format!("rpc:{}:in", m.full_name()))
                        .unwrap_or_else(|| self.type_ref(m.input().full_name(), &self.package)),
                    stream(m.is_server_streaming()),
                    self.written(&format!("rpc:{}:out", m.full_name()))
                        .unwrap_or_else(|| self.type_ref(m.output().full_name(), &self.package))
                );
                let options = self.options(&m.options());
                if !options.is_empty() {
                    rpc.push_str(" {\n");
                    for o in options {
                        push_indented(&mut rpc, &format!("option {o};\n"));
                    }
                    rpc.push('}');
                }
                rpc.push_str(";\n");
                push_indented(&mut out, &rpc);
            }
        }
        out.push_str("}\n");
        out
    }
}
