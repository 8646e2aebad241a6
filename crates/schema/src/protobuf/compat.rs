//! Confluent's Protobuf compatibility rules (its `protobuf.diff` package),
//! on compiled descriptors: the differences between the file a writer used
//! (the "original") and the file a reader uses (the "update") that break
//! the reader. Changes Confluent counts as compatible are not collected:
//! adding or removing messages, enums, enum values, optional fields and
//! whole oneofs; renaming a field; moving a message; a field leaving its
//! oneof; a string/bytes field's label changing.
//!
//! Messages are matched by name level by level, fields by number across the
//! whole message (oneof members included). Paths are `#/Message/Nested/tag`
//! (`#/Message/oneof/tag` inside a oneof), as Confluent reports them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost_reflect::{FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};

use super::wire::declared_messages;

/// The incompatible kinds of `Difference.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DifferenceType {
    PackageChanged,
    MessageRemoved,
    FieldKindChanged,
    FieldScalarKindChanged,
    FieldNamedTypeChanged,
    FieldNumericLabelChanged,
    RequiredFieldAdded,
    RequiredFieldRemoved,
    OneofFieldRemoved,
    MultipleFieldsMovedToOneof,
    FieldMovedToExistingOneof,
}

impl DifferenceType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DifferenceType::PackageChanged => "PACKAGE_CHANGED",
            DifferenceType::MessageRemoved => "MESSAGE_REMOVED",
            DifferenceType::FieldKindChanged => "FIELD_KIND_CHANGED",
            DifferenceType::FieldScalarKindChanged => "FIELD_SCALAR_KIND_CHANGED",
            DifferenceType::FieldNamedTypeChanged => "FIELD_NAMED_TYPE_CHANGED",
            DifferenceType::FieldNumericLabelChanged => "FIELD_NUMERIC_LABEL_CHANGED",
            DifferenceType::RequiredFieldAdded => "REQUIRED_FIELD_ADDED",
            DifferenceType::RequiredFieldRemoved => "REQUIRED_FIELD_REMOVED",
            DifferenceType::OneofFieldRemoved => "ONEOF_FIELD_REMOVED",
            DifferenceType::MultipleFieldsMovedToOneof => "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
            DifferenceType::FieldMovedToExistingOneof => "FIELD_MOVED_TO_EXISTING_ONEOF",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Difference {
    pub(super) kind: DifferenceType,
    pub(super) path: String,
}

impl Difference {
    /// Confluent's reason string; `reader` and `writer` name the two schemas
    /// ("new"/"old").
    pub(super) fn describe(&self, reader: &str, writer: &str) -> String {
        let p = &self.path;
        let description = match self.kind {
            DifferenceType::PackageChanged => {
                format!("The package at '{p}' in the {reader} schema does not match the package in the {writer} schema")
            }
            DifferenceType::MessageRemoved => {
                format!("The {reader} schema is missing a MESSAGE type at path '{p}' in the {writer} schema")
            }
            DifferenceType::FieldKindChanged => {
                format!("The type of a field at path '{p}' in the {reader} schema does not match the {writer} schema")
            }
            DifferenceType::FieldScalarKindChanged => format!(
                "The kind of a SCALAR field at path '{p}' in the {reader} schema does not match its kind in the {writer} schema"
            ),
            DifferenceType::FieldNamedTypeChanged => format!(
                "The type of a MESSAGE field at path '{p}' in the {reader} schema does not match its type in the {writer} schema"
            ),
            DifferenceType::FieldNumericLabelChanged => format!(
                "The label for a NUMERIC field at path '{p}' in the {reader} schema does not match its label in the {writer} schema"
            ),
            DifferenceType::RequiredFieldAdded => {
                format!("A required field  at path '{p}' in the {reader} schema is missing in the {writer} schema")
            }
            DifferenceType::RequiredFieldRemoved => {
                format!("The {reader} schema is missing a required field at path: '{p}' in the {writer} schema")
            }
            DifferenceType::OneofFieldRemoved => {
                format!("The {reader} schema is missing a oneof field at path '{p}' in the {writer} schema")
            }
            DifferenceType::MultipleFieldsMovedToOneof => format!(
                "Multiple fields in the oneof at path '{p}' in the {reader} schema are outside a oneof in the {writer} schema"
            ),
            DifferenceType::FieldMovedToExistingOneof => format!(
                "A field in the oneof at path '{p}' in the {reader} schema is outside an existing oneof in the {writer} schema"
            ),
        };
        format!("{{errorType:\"{}\", description:\"{description}\"}}", self.kind.as_str())
    }
}

/// The incompatible differences from `original` (the writer's file) to
/// `update` (the reader's file), in Confluent's order.
pub(super) fn differences(original: &FileDescriptor, update: &FileDescriptor) -> Vec<Difference> {
    let mut ctx = Context {
        original_root: original.name().to_string(),
        update_root: update.name().to_string(),
        path: Vec::new(),
        visiting: Vec::new(),
        diffs: Vec::new(),
    };
    if original.package_name() != update.package_name() {
        ctx.add(DifferenceType::PackageChanged);
    }
    ctx.compare_types(declared_messages(original.messages(), None), declared_messages(update.messages(), None));
    ctx.diffs
}

struct Context {
    original_root: String,
    update_root: String,
    /// Path components under `#/`.
    path: Vec<String>,
    /// Original messages being compared (a message type refers to itself).
    visiting: Vec<String>,
    diffs: Vec<Difference>,
}

/// A field's label as Confluent's parsed `.proto` has it (and prints it):
/// none in a oneof, on a map, or on a proto3 field without `optional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Optional,
    Required,
    Repeated,
}

impl Label {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Label::Optional => "optional",
            Label::Required => "required",
            Label::Repeated => "repeated",
        }
    }
}

pub(super) fn label(field: &FieldDescriptor) -> Option<Label> {
    use prost_reflect::prost_types::field_descriptor_proto::Label as ProtoLabel;
    if field.is_map() || field.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
        return None;
    }
    let fdp = field.field_descriptor_proto();
    match fdp.label() {
        ProtoLabel::Repeated => Some(Label::Repeated),
        ProtoLabel::Required => Some(Label::Required),
        ProtoLabel::Optional if fdp.proto3_optional() => Some(Label::Optional),
        ProtoLabel::Optional if field.parent_file().file_descriptor_proto().syntax() == "proto3" => None,
        ProtoLabel::Optional => Some(Label::Optional),
    }
}

/// The type of a field, with a map's key and value types.
#[derive(Debug, Clone)]
enum FieldType {
    Scalar(Kind),
    Enum,
    Message(MessageDescriptor),
    Map(Box<FieldType>, Box<FieldType>),
}

impl FieldType {
    fn of_kind(kind: Kind) -> FieldType {
        match kind {
            Kind::Message(m) => FieldType::Message(m),
            Kind::Enum(_) => FieldType::Enum,
            scalar => FieldType::Scalar(scalar),
        }
    }

    fn of(field: &FieldDescriptor) -> FieldType {
        match field.kind() {
            Kind::Message(entry) if field.is_map() => FieldType::Map(
                Box::new(FieldType::of_kind(entry.map_entry_key_field().kind())),
                Box::new(FieldType::of_kind(entry.map_entry_value_field().kind())),
            ),
            kind => FieldType::of_kind(kind),
        }
    }

    /// SCALAR (enums too), MAP or MESSAGE.
    fn kind(&self) -> u8 {
        match self {
            FieldType::Scalar(_) | FieldType::Enum => 0,
            FieldType::Map(..) => 1,
            FieldType::Message(_) => 2,
        }
    }
}

/// The groups of scalar types that read each other's encoding
/// (protobuf's "updating a message type" rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalarKind {
    GeneralNumber,
    SignedNumber,
    StringOrBytes,
    Fixed32,
    Fixed64,
    Float,
    Double,
}

fn scalar_kind(ty: &FieldType) -> Option<ScalarKind> {
    Some(match ty {
        FieldType::Enum => ScalarKind::GeneralNumber,
        FieldType::Scalar(kind) => match kind {
            Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool => ScalarKind::GeneralNumber,
            Kind::Sint32 | Kind::Sint64 => ScalarKind::SignedNumber,
            Kind::String | Kind::Bytes => ScalarKind::StringOrBytes,
            Kind::Fixed32 | Kind::Sfixed32 => ScalarKind::Fixed32,
            Kind::Fixed64 | Kind::Sfixed64 => ScalarKind::Fixed64,
            Kind::Float => ScalarKind::Float,
            Kind::Double => ScalarKind::Double,
            Kind::Message(_) | Kind::Enum(_) => return None,
        },
        _ => return None,
    })
}

/// A message's fields by number (groups aside, as Confluent's parser keeps
/// them apart), each field's real oneof, and the oneofs' member numbers.
struct Fields {
    by_tag: BTreeMap<u32, FieldDescriptor>,
    oneof_of: HashMap<u32, String>,
    oneofs: Vec<(String, Vec<u32>)>,
}

impl Fields {
    fn of(message: &MessageDescriptor) -> Fields {
        let mut by_tag = BTreeMap::new();
        let mut oneof_of = HashMap::new();
        for f in message.fields().filter(|f| !f.is_group()) {
            if let Some(o) = f.containing_oneof().filter(|o| !o.is_synthetic()) {
                oneof_of.insert(f.number(), o.name().to_string());
            }
            by_tag.insert(f.number(), f);
        }
        let oneofs = message
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .map(|o| (o.name().to_string(), o.fields().filter(|f| !f.is_group()).map(|f| f.number()).collect()))
            .collect();
        Fields { by_tag, oneof_of, oneofs }
    }
}

impl Context {
    fn add(&mut self, kind: DifferenceType) {
        let path = format!("#/{}", self.path.join("/"));
        self.diffs.push(Difference { kind, path });
    }

    fn add_at(&mut self, parts: &[&str], kind: DifferenceType) {
        let n = self.path.len();
        self.path.extend(parts.iter().map(|p| p.to_string()));
        self.add(kind);
        self.path.truncate(n);
    }

    /// Messages of one level, matched by name.
    fn compare_types(&mut self, original: Vec<MessageDescriptor>, update: Vec<MessageDescriptor>) {
        let names: BTreeSet<String> = original.iter().chain(update.iter()).map(|m| m.name().to_string()).collect();
        for name in names {
            let o = original.iter().find(|m| m.name() == name);
            let u = update.iter().find(|m| m.name() == name);
            self.path.push(name);
            match (o, u) {
                (Some(_), None) => self.add(DifferenceType::MessageRemoved),
                (Some(o), Some(u)) => self.compare_message(o, u),
                // A message added, and every enum change, is compatible.
                _ => {}
            }
            self.path.pop();
        }
    }

    fn compare_message(&mut self, original: &MessageDescriptor, update: &MessageDescriptor) {
        if !self.visiting.iter().any(|v| v == original.full_name()) {
            self.visiting.push(original.full_name().to_string());
            self.compare_fields(original, update);
            self.visiting.pop();
        }
        self.compare_types(
            declared_messages(original.child_messages(), Some(original)),
            declared_messages(update.child_messages(), Some(update)),
        );
    }

    fn compare_fields(&mut self, original: &MessageDescriptor, update: &MessageDescriptor) {
        let o = Fields::of(original);
        let u = Fields::of(update);

        // A oneof removed with none of its members left anywhere is a
        // compatible deletion; members left elsewhere make the others removals.
        let deleted_oneofs: Vec<&str> = o
            .oneofs
            .iter()
            .filter(|(name, members)| {
                !u.oneofs.iter().any(|(n, _)| n == name) && !members.iter().any(|t| u.by_tag.contains_key(t))
            })
            .map(|(name, _)| name.as_str())
            .collect();

        // Fields that were independent and are now in one oneof.
        for (name, members) in &u.oneofs {
            let mut origins = BTreeSet::new();
            let mut moved_in = 0;
            for tag in members {
                if let Some(oneof) = o.oneof_of.get(tag) {
                    origins.insert(format!("oneof:{oneof}"));
                } else if o.by_tag.contains_key(tag) {
                    origins.insert(format!("field:{tag}"));
                    moved_in += 1;
                }
            }
            if origins.len() > 1 {
                let kind = if moved_in > 1 {
                    DifferenceType::MultipleFieldsMovedToOneof
                } else {
                    DifferenceType::FieldMovedToExistingOneof
                };
                self.add_at(&[name], kind);
            }
        }

        let tags: BTreeSet<u32> = o.by_tag.keys().chain(u.by_tag.keys()).copied().collect();
        for tag in tags {
            let tag_text = tag.to_string();
            match (o.by_tag.get(&tag), u.by_tag.get(&tag)) {
                (Some(of), None) => match o.oneof_of.get(&tag) {
                    Some(oneof) if !deleted_oneofs.contains(&oneof.as_str()) => {
                        self.add_at(&[oneof, &tag_text], DifferenceType::OneofFieldRemoved)
                    }
                    Some(_) => {}
                    None if label(of) == Some(Label::Required) => {
                        self.add_at(&[&tag_text], DifferenceType::RequiredFieldRemoved)
                    }
                    None => {}
                },
                (None, Some(uf)) => {
                    if !u.oneof_of.contains_key(&tag) && label(uf) == Some(Label::Required) {
                        self.add_at(&[&tag_text], DifferenceType::RequiredFieldAdded);
                    }
                }
                (Some(of), Some(uf)) => {
                    let n = self.path.len();
                    if let Some(oneof) = u.oneof_of.get(&tag) {
                        self.path.push(oneof.clone());
                    }
                    self.path.push(tag_text);
                    self.compare_labels_and_types(label(of), label(uf), FieldType::of(of), FieldType::of(uf));
                    self.path.truncate(n);
                }
                (None, None) => {}
            }
        }
    }

    fn compare_labels_and_types(
        &mut self,
        original_label: Option<Label>,
        update_label: Option<Label>,
        original: FieldType,
        update: FieldType,
    ) {
        if original.kind() != update.kind() {
            self.add(DifferenceType::FieldKindChanged);
            return;
        }
        match (original, update) {
            (FieldType::Map(ok, ov), FieldType::Map(uk, uv)) => {
                self.compare_labels_and_types(None, None, *ok, *uk);
                self.compare_labels_and_types(None, None, *ov, *uv);
            }
            (FieldType::Message(o), FieldType::Message(u)) => self.compare_message_types(&o, &u),
            (o, u) => {
                let (ok, uk) = (scalar_kind(&o), scalar_kind(&u));
                if ok != uk {
                    self.add(DifferenceType::FieldScalarKindChanged);
                } else if let (Some(ol), Some(ul)) = (original_label, update_label) {
                    if ol != ul && ok != Some(ScalarKind::StringOrBytes) {
                        self.add(DifferenceType::FieldNumericLabelChanged);
                    }
                }
            }
        }
    }

    /// Message-typed fields: the same name (within its package), and when
    /// the type comes from an import, a compatible definition.
    fn compare_message_types(&mut self, original: &MessageDescriptor, update: &MessageDescriptor) {
        let local = |m: &MessageDescriptor| {
            let package = m.package_name();
            let full = m.full_name();
            if package.is_empty() {
                full.to_string()
            } else {
                full.strip_prefix(package).and_then(|r| r.strip_prefix('.')).unwrap_or(full).to_string()
            }
        };
        let (original_local, update_local) = (local(original), local(update));
        if original_local != update_local {
            self.add(DifferenceType::FieldNamedTypeChanged);
            return;
        }
        // Types of the two schemas themselves are compared where they are
        // declared; an imported type is compared unless it is the same file.
        let original_file = original.parent_file();
        let update_file = update.parent_file();
        let both_local = original_file.name() == self.original_root && update_file.name() == self.update_root;
        let same_import = original_file.name() != self.original_root
            && original_file.file_descriptor_proto() == update_file.file_descriptor_proto();
        if both_local || same_import {
            return;
        }
        let mut sub = Context {
            original_root: self.original_root.clone(),
            update_root: self.update_root.clone(),
            path: original_local.split('.').map(str::to_string).collect(),
            visiting: self.visiting.clone(),
            diffs: Vec::new(),
        };
        sub.compare_message(original, update);
        let incompatible = !sub.diffs.is_empty();
        self.diffs.append(&mut sub.diffs);
        if incompatible {
            self.add(DifferenceType::FieldNamedTypeChanged);
        }
    }
}
