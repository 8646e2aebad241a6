//! Protobuf unit tests: parsing, references, printing, payloads and the
//! compatibility rules, with cases from Confluent's rule definitions.

use base64::Engine;
use prost::Message;
use prost_reflect::{DynamicMessage, Value};

use super::*;
use crate::{check_compatibility, parse as parse_any, Compatibility, ParsedSchema, SchemaType};

fn proto(text: &str) -> ProtobufSchema {
    ProtobufSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn parsed(text: &str) -> ParsedSchema {
    parse_any(SchemaType::Protobuf, text, &[]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Reasons for registering `new` after `old` at `level`.
fn check(level: Compatibility, old: &str, new: &str) -> Vec<String> {
    check_compatibility(level, &parsed(new), &[parsed(old)])
}

/// `new` after `old`: BACKWARD fails with `kind` (the reader is new), and
/// so do FULL and the transitive levels.
fn assert_backward_fails(old: &str, new: &str, kind: &str) {
    for level in [Compatibility::Backward, Compatibility::BackwardTransitive, Compatibility::Full] {
        let reasons = check(level, old, new);
        assert!(reasons.iter().any(|r| r.contains(kind)), "{level} {kind}: {reasons:?}");
    }
    assert!(check(Compatibility::None, old, new).is_empty());
}

fn assert_all_pass(old: &str, new: &str) {
    for level in [
        Compatibility::Backward,
        Compatibility::BackwardTransitive,
        Compatibility::Forward,
        Compatibility::ForwardTransitive,
        Compatibility::Full,
        Compatibility::FullTransitive,
    ] {
        let reasons = check(level, old, new);
        assert!(reasons.is_empty(), "{level}: {reasons:?}");
    }
}

const ORDER_V1: &str = r#"
syntax = "proto3";
package shop;

// An order.
message Order {
  int32 id = 1;
  string customer = 2;
  repeated Item items = 3;
}

message Item {
  string sku = 1;
  int64 quantity = 2;
}
"#;

// ---- parsing ----

#[test]
fn parses_proto3_and_names_the_first_message() {
    let s = proto(ORDER_V1);
    assert_eq!(s.record_name().as_deref(), Some("shop.Order"));
    let no_package = proto("syntax = \"proto3\"; message A { int32 x = 1; }");
    assert_eq!(no_package.record_name().as_deref(), Some("A"));
    let only_enum = proto("syntax = \"proto3\"; enum E { E0 = 0; }");
    assert_eq!(only_enum.record_name(), None);
}

#[test]
fn parses_proto2_with_required_groups_defaults_and_extensions() {
    let s = proto(
        r#"syntax = "proto2";
        package p2;
        message M {
          required int32 id = 1;
          optional string name = 2 [default = "x\"y"];
          optional Color color = 3 [default = GREEN];
          optional group Result = 4 { optional string url = 5; }
          extensions 100 to max;
        }
        enum Color { RED = 0; GREEN = 1; }
        extend M { optional int32 extra = 100; }"#,
    );
    assert_eq!(s.record_name().as_deref(), Some("p2.M"));
    let c = s.canonical();
    assert!(c.contains("required int32 id = 1;"), "{c}");
    assert!(c.contains("optional string name = 2 [default = \"x\\\"y\"];"), "{c}");
    assert!(c.contains("optional Color color = 3 [default = GREEN];"), "{c}");
    assert!(c.contains("optional group Result = 4 {"), "{c}");
    assert!(c.contains("extensions 100 to max;"), "{c}");
    assert!(c.contains("extend M {\n  optional int32 extra = 100;\n}"), "{c}");
    // The canonical text compiles to the same canonical text.
    assert_eq!(proto(&c).canonical(), c);
}

#[test]
fn invalid_schemas_carry_the_compilers_message() {
    for (text, needle) in [
        ("syntax = \"proto3\"; message A { int32 x = 1 }", "line 1"),
        ("syntax = \"proto3\"; message A { Unknown x = 1; }", "Unknown"),
        ("syntax = \"proto3\"; message A { int32 x = 1; int32 y = 1; }", "1"),
        ("syntax = \"proto3\"; import \"missing.proto\"; message A {}", "missing.proto"),
        ("", "empty"),
    ] {
        match ProtobufSchema::parse(text, &[]) {
            Err(SchemaError::Invalid(reason)) => assert!(reason.contains(needle), "{text}: {reason}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn imports_resolve_through_references_transitively() {
    let common = Resolved {
        name: "common/money.proto".to_string(),
        text: "syntax = \"proto3\"; package common; message Money { string currency = 1; int64 units = 2; }"
            .to_string(),
    };
    let customer = Resolved {
        name: "customer.proto".to_string(),
        text: "syntax = \"proto3\"; package crm; import \"common/money.proto\"; \
               message Customer { string name = 1; common.Money balance = 2; }"
            .to_string(),
    };
    let text = r#"syntax = "proto3";
        package shop;
        import "customer.proto";
        import "common/money.proto";
        message Order { crm.Customer customer = 1; common.Money total = 2; }"#;
    let s = ProtobufSchema::parse(text, &[common.clone(), customer.clone()]).expect("parses");
    assert_eq!(s.record_name().as_deref(), Some("shop.Order"));
    let c = s.canonical();
    assert!(c.contains("import \"customer.proto\";\nimport \"common/money.proto\";"), "{c}");
    assert!(c.contains("crm.Customer customer = 1;"), "{c}");
    // Without the transitive reference the import inside customer.proto fails.
    let err = ProtobufSchema::parse(text, &[customer]).unwrap_err();
    assert!(err.to_string().contains("common/money.proto"), "{err}");
    // A reference to a file that is not imported is harmless.
    let plain = "syntax = \"proto3\"; message A { int32 x = 1; }";
    assert!(ProtobufSchema::parse(plain, &[common]).is_ok());
}

#[test]
fn well_known_types_need_no_reference() {
    let s = proto(
        r#"syntax = "proto3";
        package ev;
        import "google/protobuf/timestamp.proto";
        import "google/protobuf/wrappers.proto";
        import "google/protobuf/any.proto";
        message Event {
          google.protobuf.Timestamp at = 1;
          google.protobuf.StringValue note = 2;
          google.protobuf.Any payload = 3;
        }"#,
    );
    let c = s.canonical();
    assert!(c.contains("google.protobuf.Timestamp at = 1;"), "{c}");
    let n = s.normalized();
    assert!(n.contains(".google.protobuf.Timestamp at = 1;"), "{n}");
}

#[test]
fn google_type_and_confluent_files_need_no_reference() {
    let s = proto(
        r#"syntax = "proto3";
        package pay;
        import "google/type/money.proto";
        import "google/type/datetime.proto";
        import "confluent/type/decimal.proto";
        import "confluent/meta.proto";
        message Payment {
          google.type.Money amount = 1 [(confluent.field_meta).doc = "in the account's currency"];
          google.type.DateTime at = 2;
          confluent.type.Decimal rate = 3;
        }"#,
    );
    let c = s.canonical();
    assert!(c.contains("google.type.Money amount = 1"), "{c}");
    assert!(c.contains("[(confluent.field_meta) = {\n    doc: \"in the account\\'s currency\"\n  }];"), "{c}");
}

#[test]
fn the_legacy_confluent_decimal_path_reexports_the_type() {
    let s = proto(
        "syntax = \"proto3\"; import \"confluent/types/decimal.proto\"; import \"google/type/localized_text.proto\"; \
         message M { confluent.type.Decimal d = 1; google.type.LocalizedText t = 2; }",
    );
    assert_eq!(s.record_name().as_deref(), Some("M"));
}

#[test]
fn base64_file_descriptor_is_accepted_and_prints_as_the_text_does() {
    let text = proto(ORDER_V1);
    let serialized = text.serialized();
    let from_descriptor = proto(&serialized);
    assert_eq!(from_descriptor.canonical(), text.canonical());
    assert_eq!(from_descriptor.normalized(), text.normalized());
    assert_eq!(from_descriptor.record_name().as_deref(), Some("shop.Order"));

    // A descriptor importing a referenced file given as a descriptor too,
    // as confluent-kafka's Python serializer registers them.
    let dep = proto("syntax = \"proto3\"; package common; message Money { int64 units = 1; }");
    let dep_ref = Resolved { name: "money.proto".to_string(), text: dep.serialized() };
    let main_text = "syntax = \"proto3\"; package shop; import \"money.proto\"; message Price { common.Money m = 1; }";
    let dep_text_ref = Resolved { name: "money.proto".to_string(), text: dep.canonical() };
    let main = ProtobufSchema::parse(main_text, &[dep_text_ref]).expect("parses");
    let again = ProtobufSchema::parse(&main.serialized(), &[dep_ref]).expect("parses from descriptors");
    assert_eq!(again.canonical(), main.canonical());

    // Garbage that happens to be base64 but no descriptor is a parse error.
    assert!(ProtobufSchema::parse("aGVsbG8=", &[]).is_err());
}

// ---- printing ----

#[test]
fn canonical_drops_comments_and_keeps_declaration_order() {
    let s = proto(ORDER_V1);
    assert_eq!(
        s.canonical(),
        "syntax = \"proto3\";\npackage shop;\n\nmessage Order {\n  int32 id = 1;\n  string customer = 2;\n  \
         repeated Item items = 3;\n}\nmessage Item {\n  string sku = 1;\n  int64 quantity = 2;\n}\n"
    );
}

#[test]
fn layout_of_oneofs_maps_enums_options_and_services() {
    let s = proto(
        r#"syntax = "proto3";
        package a.b;
        option java_package = "com.example.ab";
        message M {
          reserved 8, 10 to 12;
          reserved "old";
          oneof choice { string s = 4; int32 i = 5; }
          map<string, N> by_name = 2 [deprecated = true];
          optional int32 maybe = 3;
          int32 packed_list = 6 [json_name = "pl"];
          message N { E e = 1; }
          enum E { option allow_alias = true; E0 = 0; E1 = 1; ALIAS = 1; }
        }
        service S { rpc Get (M) returns (stream M.N); }"#,
    );
    let expected = "syntax = \"proto3\";
package a.b;

option java_package = \"com.example.ab\";

message M {
  reserved 8, 10 to 12;
  reserved \"old\";

  map<string, N> by_name = 2 [deprecated = true];
  optional int32 maybe = 3;
  int32 packed_list = 6 [json_name = \"pl\"];

  oneof choice {
    string s = 4;
    int32 i = 5;
  }

  message N {
    E e = 1;
  }
  enum E {
    option allow_alias = true;
    E0 = 0;
    E1 = 1;
    ALIAS = 1;
  }
}

service S {
  rpc Get (M) returns (stream M.N);
}
";
    assert_eq!(s.canonical(), expected);
    assert_eq!(proto(expected).canonical(), expected);
}

#[test]
fn normalization_is_stable_across_formattings() {
    let a = r#"syntax = "proto3";
        package shop;
        import "google/protobuf/timestamp.proto";
        import "google/protobuf/duration.proto";
        option java_package = "x"; option java_multiple_files = true;
        // first
        message Order {
          string customer = 2;
          int32 id = 1 [deprecated = true, json_name = "ident"];
          oneof pay { string card = 5; string iban = 4; }
          reserved 9, 7;
          google.protobuf.Timestamp at = 3;
          map<string, Item> items = 6;
          enum Status { A = 0; C = 2; B = 1; }
        }
        message Item { string sku = 1; google.protobuf.Duration ttl = 2; }"#;
    let b = r#"
        syntax="proto3"; package shop;
        import "google/protobuf/duration.proto";
        import "google/protobuf/timestamp.proto";
        option java_multiple_files=true;
        option java_package="x";
        /* second */ message Order {
          reserved 7; reserved 9;
          int32 id = 1 [json_name = "ident", deprecated = true];
          string customer = 2;
          .google.protobuf.Timestamp at = 3;
          oneof pay { string iban = 4; string card = 5; }
          map<string, .shop.Item> items = 6;
          enum Status { A = 0; B = 1; C = 2; }
        }
        message Item { google.protobuf.Duration ttl = 2; string sku = 1; }"#;
    let (na, nb) = (proto(a).normalized(), proto(b).normalized());
    assert_eq!(na, nb);
    assert_ne!(proto(a).canonical(), proto(b).canonical());
    // Normalizing the normalized text changes nothing, and keeps the message order.
    assert_eq!(proto(&na).normalized(), na);
    assert!(na.find("message Order").unwrap() < na.find("message Item").unwrap(), "{na}");
    assert!(na.contains("map<string, .shop.Item> items = 6;"), "{na}");
    assert!(na.contains("option java_multiple_files = true;\noption java_package = \"x\";"), "{na}");
    assert!(na.contains("reserved 7;\n  reserved 9;"), "{na}");
    assert!(na.contains("A = 0;\n    B = 1;"), "{na}");
    assert!(na.contains("int32 id = 1 [\n    deprecated = true,\n    json_name = \"ident\"\n  ];"), "{na}");
}

#[test]
fn proto2_syntax_is_printed_when_declared_and_dropped_by_normalization() {
    let s = proto("// c\n/* d */ syntax = \"proto2\"; message A { optional int32 x = 1; }");
    assert!(s.canonical().starts_with("syntax = \"proto2\";"), "{}", s.canonical());
    assert!(!s.normalized().contains("syntax"), "{}", s.normalized());
    let undeclared = proto("message A { optional int32 x = 1; }");
    assert_eq!(undeclared.canonical(), "\nmessage A {\n  optional int32 x = 1;\n}\n");
}

#[test]
fn enum_reserved_ranges_normalize_one_a_statement() {
    // Confluent's ProtobufSchemaTest.testEnumReserved, with 5 to 7 for its
    // 1 to 3 (protoc and protox refuse a range over the values 1 and 2).
    let text =
        "\nimport \"google/protobuf/descriptor.proto\";\n\nmessage FooOptions {\n  optional string name = 1;\n  \
                optional FooParameterType type = 2;\n}\nenum FooParameterType {\n  reserved 20, 100 to max;\n  \
                reserved 10;\n  reserved 5 to 7;\n  reserved \"BAD\", \"OLD\";\n  NUMBER = 1;\n  STRING = 2;\n}\n";
    let normalized = "\nimport \"google/protobuf/descriptor.proto\";\n\nmessage FooOptions {\n  optional string name = 1;\n  \
                      optional .FooParameterType type = 2;\n}\nenum FooParameterType {\n  reserved 5 to 7;\n  \
                      reserved 10;\n  reserved 20;\n  reserved 100 to max;\n  reserved \"BAD\";\n  reserved \"OLD\";\n  \
                      NUMBER = 1;\n  STRING = 2;\n}\n";
    let s = proto(text);
    assert_eq!(s.normalized(), normalized);
    // Canonical keeps the ranges in one statement (the descriptor does not
    // keep the original grouping).
    assert!(s.canonical().contains("reserved 20, 100 to max, 10, 5 to 7;"), "{}", s.canonical());
}

// ---- payloads ----

fn encode(schema: &ProtobufSchema, indexes: &[i32], fill: impl FnOnce(&mut DynamicMessage)) -> Vec<u8> {
    encode_counted(schema, indexes, Counting::Declared, fill)
}

fn encode_counted(
    schema: &ProtobufSchema,
    indexes: &[i32],
    counting: Counting,
    fill: impl FnOnce(&mut DynamicMessage),
) -> Vec<u8> {
    let desc = schema.message_by_indexes(indexes, counting).expect("message");
    let mut msg = DynamicMessage::new(desc);
    fill(&mut msg);
    let mut out = encode_message_indexes(indexes);
    out.extend(msg.encode_to_vec());
    out
}

const NESTED: &str = r#"syntax = "proto3";
package n;
message First { string a = 1; }
message Second {
  map<string, int32> counts = 1;
  message Inner { int64 big = 1; }
  message Other { bool flag = 1; Inner inner = 2; }
}"#;

#[test]
fn payloads_with_message_indexes_validate() {
    let s = proto(NESTED);
    let first = encode(&s, &[0], |m| m.set_field_by_name("a", Value::String("x".into())));
    assert_eq!(first[0], 0, "[0] is written as a single 0");
    assert_eq!(s.validate_payload(&first), Ok(()));
    // Second.Other is [1, 1]: the map entry is not counted.
    assert_eq!(s.message_by_indexes(&[1, 1], Counting::Declared).unwrap().full_name(), "n.Second.Other");
    assert_eq!(s.message_by_indexes(&[1, 0], Counting::Declared).unwrap().full_name(), "n.Second.Inner");
    // Counted on the descriptor (as confluent-kafka's Python serializer
    // does), the map entry comes first.
    assert_eq!(s.message_by_indexes(&[1, 0], Counting::Descriptor).unwrap().full_name(), "n.Second.CountsEntry");
    assert_eq!(s.message_by_indexes(&[1, 2], Counting::Descriptor).unwrap().full_name(), "n.Second.Other");
    let other = encode(&s, &[1, 1], |m| m.set_field_by_name("flag", Value::Bool(true)));
    assert_eq!(&other[..3], &[4, 2, 2], "count 2, indexes 1 and 1, zigzag");
    assert_eq!(s.validate_payload(&other), Ok(()));
    // An empty message is valid.
    assert_eq!(s.validate_payload(&[0]), Ok(()));
    // The record name of a payload is its message's, not the first one's.
    assert_eq!(s.payload_message_name(&other).as_deref(), Ok("n.Second.Other"));
    assert_eq!(s.payload_message_name(&first).as_deref(), Ok("n.First"));
    assert!(s.payload_message_name(&[2, 8]).is_err());
}

#[test]
fn payloads_indexed_on_the_descriptor_validate() {
    // Registered as a descriptor (as confluent-kafka's Python client does),
    // map entries count; written against a text schema by that client, the
    // indexes are recognised too.
    let text = proto(NESTED);
    let descriptor = proto(&text.serialized());
    for schema in [&descriptor, &text] {
        let other = encode_counted(&descriptor, &[1, 2], Counting::Descriptor, |m| {
            m.set_field_by_name("flag", Value::Bool(true))
        });
        assert_eq!(schema.validate_payload(&other), Ok(()));
    }
    // [1, 0] is the map entry on the descriptor: Inner's bytes do not fit it
    // (field 1 of an entry is a string), but the declared counting's Inner does.
    let inner = encode(&text, &[1, 0], |m| m.set_field_by_name("big", Value::I64(7)));
    assert_eq!(descriptor.validate_payload(&inner), Ok(()));
    assert_eq!(text.validate_payload(&inner), Ok(()));
}

#[test]
fn payloads_written_by_confluent_kafka_python_validate() {
    // NESTED's serialized descriptor loaded into Python's protobuf, the
    // messages written with confluent-kafka's `_create_index_array` and its
    // zigzag index encoding: Second.Other is [1, 2] there (the map entry
    // counts), Second is [1].
    let other = hex("0402040801120308ac02");
    let second = hex("02020a050a01611005");
    let text = proto(NESTED);
    let descriptor = proto(&text.serialized());
    for schema in [&text, &descriptor] {
        assert_eq!(schema.validate_payload(&other), Ok(()));
        assert_eq!(schema.validate_payload(&second), Ok(()));
    }
    assert_eq!(descriptor.message_by_indexes(&[1, 2], descriptor.counting).unwrap().full_name(), "n.Second.Other");
    // The serialized descriptor carries no source info.
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.serialized()).unwrap();
    let fdp = prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
    assert!(fdp.source_code_info.is_none());
    assert_eq!(fdp.message_type.len(), 2);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn canonical_text_keeps_the_descriptors_nested_type_order() {
    // The map's entry follows Inner among the nested types: printing the map
    // with the fields would put it first, and the descriptor indexes a
    // Python consumer computes from the re-served schema would shift.
    let text = "syntax = \"proto3\"; message A { message Inner { int32 x = 1; } map<string, Inner> m = 1; \
                message Other { bool b = 1; } int32 plain = 2; }";
    let s = proto(text);
    let c = s.canonical();
    assert!(c.contains("int32 plain = 2;\n\n  message Inner {"), "{c}");
    assert!(c.contains("}\n  map<string, Inner> m = 1;\n  message Other {"), "{c}");
    let again = proto(&c);
    for i in 0..3 {
        assert_eq!(
            again.message_by_indexes(&[0, i], Counting::Descriptor).map(|m| m.full_name().to_string()),
            s.message_by_indexes(&[0, i], Counting::Descriptor).map(|m| m.full_name().to_string()),
        );
    }
    assert_eq!(again.canonical(), c);
    // Normalized keeps Confluent's layout.
    assert!(s.normalized().contains("map<string, .A.Inner> m = 1;\n  int32 plain = 2;"), "{}", s.normalized());
}

#[test]
fn bad_payloads_are_refused_with_a_reason() {
    let s = proto(NESTED);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "end"),
        (vec![2, 4], "select no message"),          // [2]: only two top-level messages
        (vec![4, 2, 10], "select no message"),      // [1, 5]
        (vec![1], "invalid message index count"),   // count -1
        (vec![2, 1], "select no message"),          // [-1]
        (vec![4, 2], "end"),                        // count 2, one index
        (vec![0, 0x0a, 0x05, b'a'], "not a valid"), // field 1, length 5, 1 byte
        (vec![0, 0x0f], "not a valid"),             // wire type 7
        (vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "varint"),
    ];
    for (payload, needle) in cases {
        match s.validate_payload(&payload) {
            Err(reason) => assert!(reason.contains(needle), "{payload:?}: {reason}"),
            Ok(()) => panic!("{payload:?} accepted"),
        }
    }
    // A string field given a varint is refused too.
    assert!(s.validate_payload(&[0, 0x08, 0x01]).is_err());
}

// ---- compatibility ----

#[test]
fn adding_and_removing_optional_fields_and_messages_is_compatible() {
    let v1 = "syntax = \"proto3\"; package p; message A { int32 x = 1; string y = 2; }";
    let v2 = "syntax = \"proto3\"; package p; message A { int32 x = 1; string z = 3; } message B { int32 b = 1; }";
    // Adding a message passes BACKWARD; FORWARD sees the old schema missing it.
    for level in [Compatibility::Backward, Compatibility::BackwardTransitive] {
        assert!(check(level, v1, v2).is_empty());
    }
    assert!(check(Compatibility::Forward, v1, v2)[0].contains("MESSAGE_REMOVED"));
    let v2_fields_only = "syntax = \"proto3\"; package p; message A { int32 x = 1; string z = 3; }";
    assert_all_pass(v1, v2_fields_only);
    // Renaming a field and reordering messages is compatible too.
    let v3 =
        "syntax = \"proto3\"; package p; message B { int32 b = 1; } message A { int32 renamed = 1; string z = 3; }";
    assert_all_pass(v2, v3);
}

#[test]
fn message_removed() {
    let old = "syntax = \"proto3\"; message A { int32 x = 1; } message B { int32 y = 1; }";
    let new = "syntax = \"proto3\"; message A { int32 x = 1; }";
    assert_backward_fails(old, new, "MESSAGE_REMOVED");
    let reasons = check(Compatibility::Backward, old, new);
    assert_eq!(
        reasons,
        vec![
            "{errorType:\"MESSAGE_REMOVED\", description:\"The new schema is missing a MESSAGE type at path '#/B' \
             in the old schema\"}"
        ]
    );
    // FORWARD: the old reader reads what the new writer writes: fine.
    assert!(check(Compatibility::Forward, old, new).is_empty());
    // Adding the message is the mirror image.
    let reasons = check(Compatibility::Forward, new, old);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("The old schema is missing a MESSAGE type at path '#/B' in the new schema"));
}

#[test]
fn nested_message_removed_has_a_nested_path() {
    let old = "syntax = \"proto3\"; message A { message In { int32 x = 1; } }";
    let new = "syntax = \"proto3\"; message A { }";
    let reasons = check(Compatibility::Backward, old, new);
    assert!(reasons[0].contains("'#/A/In'"), "{reasons:?}");
}

#[test]
fn field_kind_changed() {
    let old = "syntax = \"proto3\"; message A { int32 x = 1; message B { int32 y = 1; } }";
    let to_message = "syntax = \"proto3\"; message A { B x = 1; message B { int32 y = 1; } }";
    let to_map = "syntax = \"proto3\"; message A { map<string, int32> x = 1; message B { int32 y = 1; } }";
    for new in [to_message, to_map] {
        assert_backward_fails(old, new, "FIELD_KIND_CHANGED");
        let forward = check(Compatibility::Forward, old, new);
        assert!(forward.iter().any(|r| r.contains("FIELD_KIND_CHANGED")), "{forward:?}");
        let reasons = check(Compatibility::Backward, old, new);
        assert!(
            reasons[0].contains("The type of a field at path '#/A/1' in the new schema does not match the old schema")
        );
    }
    // An enum is a scalar (of the int32 group): int32 <-> enum is compatible.
    let to_enum = "syntax = \"proto3\"; message A { E x = 1; message B { int32 y = 1; } } enum E { Z = 0; }";
    assert_all_pass(old, to_enum);
}

#[test]
fn field_scalar_kind_changed_follows_the_wire_compatible_groups() {
    let groups: [&[&str]; 7] = [
        &["int32", "uint32", "int64", "uint64", "bool"],
        &["sint32", "sint64"],
        &["fixed32", "sfixed32"],
        &["fixed64", "sfixed64"],
        &["string", "bytes"],
        &["float"],
        &["double"],
    ];
    let schema = |t: &str| format!("syntax = \"proto3\"; message A {{ {t} x = 1; }}");
    for (gi, group) in groups.iter().enumerate() {
        for a in group.iter() {
            for b in group.iter() {
                assert_all_pass(&schema(a), &schema(b));
            }
            for (gj, other) in groups.iter().enumerate() {
                if gi != gj {
                    assert_backward_fails(&schema(a), &schema(other[0]), "FIELD_SCALAR_KIND_CHANGED");
                }
            }
        }
    }
}

#[test]
fn field_named_type_changed() {
    let old = "syntax = \"proto3\"; message A { B x = 1; } message B { int32 y = 1; } message C { int32 y = 1; }";
    let new = "syntax = \"proto3\"; message A { C x = 1; } message B { int32 y = 1; } message C { int32 y = 1; }";
    assert_backward_fails(old, new, "FIELD_NAMED_TYPE_CHANGED");
    let reasons = check(Compatibility::Backward, old, new);
    assert!(
        reasons[0].contains("The type of a MESSAGE field at path '#/A/1' in the new schema does not match its type")
    );
}

#[test]
fn imported_message_types_are_compared_through_the_reference() {
    let dep = |body: &str| Resolved {
        name: "dep.proto".to_string(),
        text: format!("syntax = \"proto3\"; package d; message D {{ {body} }}"),
    };
    let main = "syntax = \"proto3\"; package m; import \"dep.proto\"; message M { d.D d = 1; }";
    let p = |body: &str| ParsedSchema::Protobuf(ProtobufSchema::parse(main, &[dep(body)]).expect("parses"));
    let v1 = p("int32 a = 1;");
    let compatible = p("int64 a = 1; string b = 2;");
    let incompatible = p("string a = 1;");
    assert!(check_compatibility(Compatibility::Full, &compatible, std::slice::from_ref(&v1)).is_empty());
    let reasons = check_compatibility(Compatibility::Backward, &incompatible, &[v1]);
    assert!(reasons.iter().any(|r| r.contains("FIELD_SCALAR_KIND_CHANGED") && r.contains("'#/D/1'")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("FIELD_NAMED_TYPE_CHANGED") && r.contains("'#/M/1'")), "{reasons:?}");
}

#[test]
fn numeric_label_changes_matter_only_with_labels_on_both_sides() {
    let p2 = |label: &str, ty: &str| format!("syntax = \"proto2\"; message A {{ {label} {ty} x = 1; }}");
    assert_backward_fails(&p2("optional", "int32"), &p2("repeated", "int32"), "FIELD_NUMERIC_LABEL_CHANGED");
    assert_backward_fails(&p2("repeated", "double"), &p2("optional", "double"), "FIELD_NUMERIC_LABEL_CHANGED");
    // string/bytes label changes are compatible (FIELD_STRING_OR_BYTES_LABEL_CHANGED).
    assert_all_pass(&p2("optional", "string"), &p2("repeated", "string"));
    // proto3 singular fields carry no label.
    let p3 = |label: &str| format!("syntax = \"proto3\"; message A {{ {label} int32 x = 1; }}");
    assert_all_pass(&p3(""), &p3("repeated"));
    assert_backward_fails(&p3("optional"), &p3("repeated"), "FIELD_NUMERIC_LABEL_CHANGED");
}

#[test]
fn required_field_added_or_removed() {
    let without = "syntax = \"proto2\"; message A { optional int32 x = 1; }";
    let with = "syntax = \"proto2\"; message A { optional int32 x = 1; required string r = 2; }";
    // The new reader requires a field the old writer never wrote.
    assert_backward_fails(without, with, "REQUIRED_FIELD_ADDED");
    let reasons = check(Compatibility::Backward, without, with);
    assert!(reasons[0].contains("A required field  at path '#/A/2' in the new schema is missing in the old schema"));
    assert!(check(Compatibility::Forward, without, with).iter().any(|r| r.contains("REQUIRED_FIELD_REMOVED")));
    // The new writer drops a field the old reader requires.
    assert_backward_fails(with, without, "REQUIRED_FIELD_REMOVED");
    let reasons = check(Compatibility::Backward, with, without);
    assert!(reasons[0].contains("The new schema is missing a required field at path: '#/A/2' in the old schema"));
    // Optional fields come and go freely.
    let optional = "syntax = \"proto2\"; message A { optional int32 x = 1; optional string r = 2; }";
    assert_all_pass(without, optional);
}

#[test]
fn oneof_rules() {
    let old = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; string b = 2; } int32 c = 3; int32 d = 4; }";
    // A member removed while the oneof stays.
    let removed = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; } int32 c = 3; int32 d = 4; }";
    assert_backward_fails(old, removed, "ONEOF_FIELD_REMOVED");
    let reasons = check(Compatibility::Backward, old, removed);
    assert!(reasons[0].contains("The new schema is missing a oneof field at path '#/A/o/2' in the old schema"));
    // The whole oneof removed is compatible, and so is adding a member.
    let deleted = "syntax = \"proto3\"; message A { int32 c = 3; int32 d = 4; }";
    assert_all_pass(old, deleted);
    let added = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; string b = 2; int32 e = 5; } int32 c = 3; int32 d = 4; }";
    assert!(check(Compatibility::Backward, old, added).is_empty());
    // ... though FORWARD then sees a oneof member missing from the old schema.
    assert!(check(Compatibility::Forward, old, added)[0].contains("ONEOF_FIELD_REMOVED"));
    // Two independent fields moved into a new oneof.
    let moved = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; string b = 2; } oneof n { int32 c = 3; int32 d = 4; } }";
    assert_backward_fails(old, moved, "MULTIPLE_FIELDS_MOVED_TO_ONEOF");
    let reasons = check(Compatibility::Backward, old, moved);
    assert!(reasons[0].contains("'#/A/n'"), "{reasons:?}");
    // One field moved into the existing oneof.
    let joined = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; string b = 2; int32 c = 3; } int32 d = 4; }";
    assert_backward_fails(old, joined, "FIELD_MOVED_TO_EXISTING_ONEOF");
    // One field alone moved into a new oneof keeps its independence.
    let single = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; string b = 2; } oneof n { int32 c = 3; } int32 d = 4; }";
    assert_all_pass(old, single);
    // A member moved out of its oneof to the top level is compatible.
    let out = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; } string b = 2; int32 c = 3; int32 d = 4; }";
    assert!(check(Compatibility::Backward, old, out).is_empty());
    // A type change inside a oneof is reported at the oneof path.
    let retyped = "syntax = \"proto3\"; message A { oneof o { int32 a = 1; double b = 2; } int32 c = 3; int32 d = 4; }";
    let reasons = check(Compatibility::Backward, old, retyped);
    assert!(reasons[0].contains("FIELD_SCALAR_KIND_CHANGED") && reasons[0].contains("'#/A/o/2'"), "{reasons:?}");
}

#[test]
fn package_changed() {
    let old = "syntax = \"proto3\"; package a; message M { int32 x = 1; }";
    let new = "syntax = \"proto3\"; package b; message M { int32 x = 1; }";
    assert_backward_fails(old, new, "PACKAGE_CHANGED");
    let reasons = check(Compatibility::Forward, old, new);
    assert_eq!(
        reasons,
        vec![
            "{errorType:\"PACKAGE_CHANGED\", description:\"The package at '#/' in the old schema does not match the \
             package in the new schema\"}"
        ]
    );
}

#[test]
fn enum_changes_and_syntax_changes_are_compatible() {
    let old = "syntax = \"proto3\"; message M { E e = 1; } enum E { A = 0; B = 1; }";
    let new = "syntax = \"proto3\"; message M { E e = 1; } enum E { A = 0; C = 2; }";
    assert_all_pass(old, new);
    // Confluent has no syntax rule: proto2 -> proto3 with the same fields passes.
    let p2 = "syntax = \"proto2\"; message M { optional int32 x = 1; }";
    let p3 = "syntax = \"proto3\"; message M { optional int32 x = 1; }";
    assert_all_pass(p2, p3);
}

#[test]
fn map_value_types_are_compared() {
    let old = "syntax = \"proto3\"; message M { map<string, int32> m = 1; }";
    let ok = "syntax = \"proto3\"; message M { map<string, int64> m = 1; }";
    let bad = "syntax = \"proto3\"; message M { map<string, string> m = 1; }";
    assert_all_pass(old, ok);
    assert_backward_fails(old, bad, "FIELD_SCALAR_KIND_CHANGED");
}

#[test]
fn recursive_messages_terminate() {
    let old = "syntax = \"proto3\"; message Node { int32 v = 1; repeated Node kids = 2; }";
    let new = "syntax = \"proto3\"; message Node { int64 v = 1; repeated Node kids = 2; string name = 3; }";
    assert_all_pass(old, new);
}

#[test]
fn transitive_levels_check_every_version() {
    // v1 -> v2 removes an optional field, v2 -> v3 re-adds number 2 as a string.
    let v1 = parsed("syntax = \"proto3\"; message M { int32 a = 1; int32 b = 2; }");
    let v2 = parsed("syntax = \"proto3\"; message M { int32 a = 1; }");
    let v3 = parsed("syntax = \"proto3\"; message M { int32 a = 1; string b = 2; }");
    let history = [v1, v2];
    for level in [Compatibility::Backward, Compatibility::Forward, Compatibility::Full] {
        assert!(check_compatibility(level, &v3, &history).is_empty(), "{level}");
    }
    for level in [Compatibility::BackwardTransitive, Compatibility::ForwardTransitive, Compatibility::FullTransitive] {
        let reasons = check_compatibility(level, &v3, &history);
        assert!(reasons.iter().any(|r| r.contains("FIELD_SCALAR_KIND_CHANGED")), "{level}: {reasons:?}");
    }
}

#[test]
fn other_schema_types_are_incompatible() {
    let avro = parse_any(SchemaType::Avro, "\"string\"", &[]).expect("a valid Avro schema");
    let reasons = check_compatibility(Compatibility::Backward, &parsed(ORDER_V1), &[avro]);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(check_compatibility(Compatibility::Full, &parsed(ORDER_V1), &[parsed(ORDER_V1)]).is_empty());
}

/// google/protobuf/struct.proto as protoc compiled it (the Python
/// package's `struct_pb2.DESCRIPTOR.serialized_pb`, base64).
const STRUCT_PROTO_DESCRIPTOR: &str = "Chxnb29nbGUvcHJvdG9idWYvc3RydWN0LnByb3RvEg9nb29nbGUucHJvdG9idWYimAEKBlN0cnVjdBI7CgZmaWVsZHMYASADKAsyIy5nb29nbGUucHJvdG9idWYuU3RydWN0LkZpZWxkc0VudHJ5UgZmaWVsZHMaUQoLRmllbGRzRW50cnkSEAoDa2V5GAEgASgJUgNrZXkSLAoFdmFsdWUYAiABKAsyFi5nb29nbGUucHJvdG9idWYuVmFsdWVSBXZhbHVlOgI4ASKyAgoFVmFsdWUSOwoKbnVsbF92YWx1ZRgBIAEoDjIaLmdvb2dsZS5wcm90b2J1Zi5OdWxsVmFsdWVIAFIJbnVsbFZhbHVlEiMKDG51bWJlcl92YWx1ZRgCIAEoAUgAUgtudW1iZXJWYWx1ZRIjCgxzdHJpbmdfdmFsdWUYAyABKAlIAFILc3RyaW5nVmFsdWUSHwoKYm9vbF92YWx1ZRgEIAEoCEgAUglib29sVmFsdWUSPAoMc3RydWN0X3ZhbHVlGAUgASgLMhcuZ29vZ2xlLnByb3RvYnVmLlN0cnVjdEgAUgtzdHJ1Y3RWYWx1ZRI7CgpsaXN0X3ZhbHVlGAYgASgLMhouZ29vZ2xlLnByb3RvYnVmLkxpc3RWYWx1ZUgAUglsaXN0VmFsdWVCBgoEa2luZCI7CglMaXN0VmFsdWUSLgoGdmFsdWVzGAEgAygLMhYuZ29vZ2xlLnByb3RvYnVmLlZhbHVlUgZ2YWx1ZXMqGwoJTnVsbFZhbHVlEg4KCk5VTExfVkFMVUUQAEJ/ChNjb20uZ29vZ2xlLnByb3RvYnVmQgtTdHJ1Y3RQcm90b1ABWi9nb29nbGUuZ29sYW5nLm9yZy9wcm90b2J1Zi90eXBlcy9rbm93bi9zdHJ1Y3RwYvgBAaICA0dQQqoCHkdvb2dsZS5Qcm90b2J1Zi5XZWxsS25vd25UeXBlc2IGcHJvdG8z";

#[test]
fn a_protoc_descriptor_prints_and_recompiles() {
    let s = proto(STRUCT_PROTO_DESCRIPTOR);
    let c = s.canonical();
    assert_eq!(proto(&c).canonical(), c);
    assert!(c.contains("message Struct {\n  map<string, Value> fields = 1;\n}"), "{c}");
    assert!(c.contains("  oneof kind {\n    NullValue null_value = 1;"), "{c}");
    let n = s.normalized();
    assert!(n.contains("option cc_enable_arenas = true;\noption csharp_namespace"), "{n}");
    assert_eq!(proto(&n).normalized(), n);
}

#[test]
fn custom_options_print_by_full_name() {
    let options = Resolved {
        name: "opts.proto".to_string(),
        text: r#"syntax = "proto3";
            package o;
            import "google/protobuf/descriptor.proto";
            message Rule { string expr = 1; int32 level = 2; }
            extend google.protobuf.FieldOptions { string tag = 50001; Rule rule = 50002; }
            extend google.protobuf.MessageOptions { repeated string labels = 50003; }"#
            .to_string(),
    };
    let text = r#"syntax = "proto3";
        package m;
        import "opts.proto";
        message M {
          option (o.labels) = "b";
          option (o.labels) = "a";
          string x = 1 [(o.tag) = "pii", (o.rule) = { expr: "len > 0", level: 2 }, deprecated = true];
        }"#;
    let s = ProtobufSchema::parse(text, std::slice::from_ref(&options)).expect("parses");
    let c = s.canonical();
    assert!(c.contains("option (o.labels) = \"b\";\n  option (o.labels) = \"a\";"), "{c}");
    assert!(c.contains("(o.tag) = \"pii\""), "{c}");
    assert!(c.contains("(o.rule) = {\n      expr: \"len > 0\",\n      level: 2\n    }"), "{c}");
    let again = ProtobufSchema::parse(&c, std::slice::from_ref(&options)).expect("canonical recompiles");
    assert_eq!(again.canonical(), c);
    let n = s.normalized();
    let again = ProtobufSchema::parse(&n, &[options]).expect("normalized recompiles");
    assert_eq!(again.normalized(), n);
    assert!(n.find("deprecated = true").unwrap() < n.find("(o.rule)").unwrap(), "{n}");
}

#[test]
fn garbage_payloads_never_panic() {
    let schemas = [proto(NESTED), proto(ORDER_V1), proto(STRUCT_PROTO_DESCRIPTOR)];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Often a plausible index header, so the message decoder sees the rest.
        if next() % 2 == 0 && !payload.is_empty() {
            payload[0] = 0;
        }
        for s in &schemas {
            let _ = s.validate_payload(&payload);
        }
    }
}

#[test]
fn ranges_normalize_one_a_statement() {
    // Confluent's ProtobufSchemaTest.testRanges.
    let text = "\nmessage Money {\n  reserved 5000 to 6000;\n  reserved 10000 to 10001;\n  reserved 20000 to 20000;\n\n  \
                optional int64 cents = 1;\n\n  extensions 100 to 200;\n  extensions 1000 to 1001;\n  extensions 2000 to 2000;\n\n  \
                enum MoneyEnum {\n    reserved 100 to 200;\n    reserved 1000 to 1001;\n    reserved 2000 to 2000;\n    NONE = 0;\n    \
                CENTS = 1;\n    DOLLARS = 2;\n  }\n}\n";
    let normalized = "\nmessage Money {\n  reserved 5000 to 6000;\n  reserved 10000 to 10001;\n  reserved 20000;\n\n  \
                      optional int64 cents = 1;\n\n  extensions 100 to 200;\n  extensions 1000 to 1001;\n  extensions 2000;\n\n  \
                      enum MoneyEnum {\n    reserved 100 to 200;\n    reserved 1000 to 1001;\n    reserved 2000;\n    NONE = 0;\n    \
                      CENTS = 1;\n    DOLLARS = 2;\n  }\n}\n";
    let s = proto(text);
    assert_eq!(s.normalized(), normalized);
    assert_eq!(proto(normalized).normalized(), normalized);
}

#[test]
fn map_valued_options_print_as_entry_lists() {
    // The field of Confluent's ProtobufSchemaTest.testNormalization with a
    // `confluent.field_meta` holding a map.
    let text = r#"syntax = "proto3";
        import "confluent/meta.proto";
        message M {
          string d = 1 [(confluent.field_meta) = {
            params: [ { value: "8", key: "precision" }, { value: "3", key: "scale" } ],
            doc: "test decimal"
          }];
        }"#;
    let expected = "  string d = 1 [(confluent.field_meta) = {
    doc: \"test decimal\",
    params: [
      {
        key: \"precision\",
        value: \"8\"
      },
      {
        key: \"scale\",
        value: \"3\"
      }
    ]
  }];
";
    let n = proto(text).normalized();
    assert!(n.contains(expected), "{n}");
    assert_eq!(proto(&n).normalized(), n);
}

#[test]
fn json_name_is_printed_when_written_even_if_it_is_the_default() {
    let text = "syntax = \"proto3\"; message M { string user_id = 1 [json_name = \"userId\"]; string other_id = 2; \
                string third = 3 [json_name = \"x\"]; }";
    let c = proto(text).canonical();
    assert!(c.contains("string user_id = 1 [json_name = \"userId\"];"), "{c}");
    assert!(c.contains("string other_id = 2;\n"), "{c}");
    assert!(c.contains("string third = 3 [json_name = \"x\"];"), "{c}");
    // From a descriptor (where every field has one) only a non-default one shows.
    let d = proto(&proto(text).serialized()).canonical();
    assert!(d.contains("string user_id = 1;\n"), "{d}");
    assert!(d.contains("string third = 3 [json_name = \"x\"];"), "{d}");
}

#[test]
fn canonical_keeps_type_names_as_written() {
    let text = "syntax = \"proto3\"; package foo; message T { Inner a = 1; .foo.T.Inner b = 2; T.Inner c = 3; \
                map<string, foo.T.Inner> d = 4; message Inner { int32 x = 1; } }";
    let s = proto(text);
    let c = s.canonical();
    for line in ["  Inner a = 1;", "  .foo.T.Inner b = 2;", "  T.Inner c = 3;", "  map<string, foo.T.Inner> d = 4;"] {
        assert!(c.contains(line), "{line}: {c}");
    }
    let with_rpc = proto(
        "syntax = \"proto2\"; package foo; message T { extensions 10 to 20; } \
         extend .foo.T { optional int32 e = 10; } service S { rpc Get (.foo.T) returns (foo.T); }",
    )
    .canonical();
    assert!(with_rpc.contains("extend .foo.T {"), "{with_rpc}");
    assert!(with_rpc.contains("rpc Get (.foo.T) returns (foo.T);"), "{with_rpc}");
    // Normalized names them all alike; the descriptor's canonical uses the shortest name.
    assert_eq!(s.normalized().matches(".foo.T.Inner").count(), 4, "{}", s.normalized());
    let from_descriptor = proto(&s.serialized()).canonical();
    for line in ["  Inner a = 1;", "  Inner b = 2;", "  Inner c = 3;", "  map<string, Inner> d = 4;"] {
        assert!(from_descriptor.contains(line), "{line}: {from_descriptor}");
    }
}

#[test]
fn a_descriptor_and_its_text_are_compatible_both_ways() {
    let text = parsed(NESTED);
    let ParsedSchema::Protobuf(p) = &text else { unreachable!() };
    let descriptor = parsed(&p.serialized());
    for level in [Compatibility::FullTransitive, Compatibility::Full] {
        assert!(check_compatibility(level, &descriptor, std::slice::from_ref(&text)).is_empty());
        assert!(check_compatibility(level, &text, std::slice::from_ref(&descriptor)).is_empty());
    }
    assert_eq!(descriptor.canonical(), text.canonical());
}
