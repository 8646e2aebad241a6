//! Avro: parsing, canonical/normalized texts, payload validation and the
//! compatibility rules at every level. Cases from the Avro specification
//! ("Schema Resolution") and Confluent's "Schema Evolution and
//! Compatibility" page.

use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use vltava_schema::{check_compatibility, parse, Compatibility, ParsedSchema, Resolved, SchemaError, SchemaType};

mod common;
use common::*;
use Compatibility::*;

fn avro(text: &str) -> ParsedSchema {
    parse(SchemaType::Avro, text, &[]).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn record(fields: &str) -> ParsedSchema {
    avro(&format!(r#"{{"type":"record","name":"myrecord","namespace":"test","fields":[{fields}]}}"#))
}

const F1: &str = r#"{"name":"f1","type":"string"}"#;

#[test]
fn adding_a_field_with_a_default_is_fully_compatible() {
    let old = record(F1);
    let new = record(&format!(r#"{F1},{{"name":"f2","type":"string","default":"foo"}}"#));
    assert_eq!(passing_levels(&new, &old), ALL_LEVELS);
}

#[test]
fn adding_a_field_without_a_default_is_forward_only() {
    let old = record(F1);
    let new = record(&format!(r#"{F1},{{"name":"f2","type":"string"}}"#));
    assert_eq!(passing_levels(&new, &old), FORWARD_ONLY);
    assert_eq!(
        reasons(Backward, &new, &old),
        ["{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'f2' at path '/fields/1' in \
          the new schema has no default value and is missing in the old schema', additionalInfo:'f2'}"]
    );
}

#[test]
fn deleting_a_field_without_a_default_is_backward_only() {
    let old = record(&format!(r#"{F1},{{"name":"f2","type":"string"}}"#));
    let new = record(F1);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    let why = reasons(Forward, &new, &old);
    assert_eq!(why.len(), 1);
    assert!(why[0].starts_with("{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'"), "{why:?}");
}

#[test]
fn deleting_a_field_with_a_default_is_fully_compatible() {
    let old = record(&format!(r#"{F1},{{"name":"f2","type":"string","default":"foo"}}"#));
    let new = record(F1);
    assert_eq!(passing_levels(&new, &old), ALL_LEVELS);
}

#[test]
fn numeric_promotions_are_read_by_the_wider_type_only() {
    let order = ["int", "long", "float", "double"];
    for (i, narrow) in order.iter().enumerate() {
        for wide in &order[i + 1..] {
            let old = record(&format!(r#"{{"name":"n","type":"{narrow}"}}"#));
            let new = record(&format!(r#"{{"name":"n","type":"{wide}"}}"#));
            assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY, "{narrow} -> {wide}");
            assert_eq!(passing_levels(&old, &new), FORWARD_ONLY, "{wide} -> {narrow}");
        }
    }
    let old = record(r#"{"name":"n","type":"long"}"#);
    let new = record(r#"{"name":"n","type":"int"}"#);
    assert_eq!(
        reasons(Backward, &new, &old),
        ["{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type') of a field in the new schema \
          does not match with the old schema', additionalInfo:'reader type: INT not compatible with writer type: LONG'}"]
    );
}

#[test]
fn string_and_bytes_read_each_other() {
    let s = record(r#"{"name":"b","type":"string"}"#);
    let b = record(r#"{"name":"b","type":"bytes"}"#);
    assert_eq!(passing_levels(&s, &b), ALL_LEVELS);
    assert_eq!(passing_levels(&b, &s), ALL_LEVELS);
}

#[test]
fn unrelated_types_mismatch_both_ways() {
    let s = record(r#"{"name":"x","type":"string"}"#);
    let i = record(r#"{"name":"x","type":"int"}"#);
    assert_eq!(passing_levels(&s, &i), [None]);
    let b = record(r#"{"name":"x","type":"boolean"}"#);
    assert_eq!(passing_levels(&b, &i), [None]);
    let arr = record(r#"{"name":"x","type":{"type":"array","items":"int"}}"#);
    let map = record(r#"{"name":"x","type":{"type":"map","values":"int"}}"#);
    assert_eq!(passing_levels(&arr, &map), [None]);
}

#[test]
fn array_items_and_map_values_follow_the_rules() {
    let old = avro(r#"{"type":"array","items":"int"}"#);
    let new = avro(r#"{"type":"array","items":"long"}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    assert!(reasons(Forward, &new, &old)[0].contains("path '/items'"));
    let old = avro(r#"{"type":"map","values":"float"}"#);
    let new = avro(r#"{"type":"map","values":"double"}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    assert!(reasons(Forward, &new, &old)[0].contains("path '/values'"));
}

#[test]
fn enum_symbols_added_are_backward_only_unless_the_reader_has_a_default() {
    let old = avro(r#"{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS"]}"#);
    let new = avro(r#"{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS","CLUBS"]}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    assert_eq!(
        reasons(Forward, &new, &old),
        // A FORWARD check: the old schema reads, as Confluent words it.
        ["{errorType:'MISSING_ENUM_SYMBOLS', description:'The old schema is missing enum symbols '[CLUBS]' at \
          path '/symbols' in the new schema', additionalInfo:'[CLUBS]'}"]
    );
    // A reader with a default symbol reads unknown symbols as the default.
    let old = avro(r#"{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS"],"default":"SPADES"}"#);
    let new = avro(r#"{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS","CLUBS"],"default":"SPADES"}"#);
    assert_eq!(passing_levels(&new, &old), ALL_LEVELS);
}

#[test]
fn renamed_types_mismatch_unless_aliased() {
    let old = avro(r#"{"type":"record","name":"A","namespace":"n","fields":[]}"#);
    let renamed = avro(r#"{"type":"record","name":"B","namespace":"n","fields":[]}"#);
    assert_eq!(passing_levels(&renamed, &old), [None]);
    assert_eq!(
        reasons(Backward, &renamed, &old),
        ["{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path '/name')', \
          additionalInfo:'expected: n.A'}"]
    );
    let aliased = avro(r#"{"type":"record","name":"B","namespace":"n","aliases":["A"],"fields":[]}"#);
    assert_eq!(passing_levels(&aliased, &old), BACKWARD_ONLY);
    // Only the unqualified name counts (Avro's rule): a moved namespace reads.
    let moved = avro(r#"{"type":"record","name":"A","namespace":"m","fields":[]}"#);
    assert_eq!(passing_levels(&moved, &old), ALL_LEVELS);
}

#[test]
fn renamed_fields_read_through_aliases() {
    let old = record(r#"{"name":"old_name","type":"string"}"#);
    let new = record(r#"{"name":"new_name","type":"string","aliases":["old_name"]}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
}

#[test]
fn fixed_sizes_must_match() {
    let old = avro(r#"{"type":"fixed","name":"md5","size":16}"#);
    let new = avro(r#"{"type":"fixed","name":"md5","size":8}"#);
    assert_eq!(passing_levels(&new, &old), [None]);
    assert_eq!(
        reasons(Backward, &new, &old),
        ["{errorType:'FIXED_SIZE_MISMATCH', description:'The size of FIXED type field at path '/size' in the new \
          schema does not match with the old schema', additionalInfo:'expected: 16, found: 8'}"]
    );
}

#[test]
fn making_a_field_nullable_is_backward_only() {
    let old = record(r#"{"name":"f","type":"int"}"#);
    let new = record(r#"{"name":"f","type":["null","int"],"default":null}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    // The old reader (int) cannot read the null branch the new writer may write.
    assert_eq!(
        reasons(Forward, &new, &old),
        ["{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type/0') of a field in the old \
          schema does not match with the new schema', additionalInfo:'reader type: INT not compatible with writer \
          type: NULL'}"]
    );
}

#[test]
fn removing_a_union_branch_is_backward_incompatible() {
    let old = record(r#"{"name":"f","type":["null","int","string"]}"#);
    let new = record(r#"{"name":"f","type":["null","int"]}"#);
    assert_eq!(passing_levels(&new, &old), FORWARD_ONLY);
    assert_eq!(
        reasons(Backward, &new, &old),
        ["{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type inside a union field at \
          path '/fields/0/type/2' in the old schema', additionalInfo:'reader union lacking writer type: STRING'}"]
    );
    // A promotable branch is enough: a long in the reader's union reads an int.
    let old = record(r#"{"name":"f","type":["null","int"]}"#);
    let new = record(r#"{"name":"f","type":["null","long"]}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
}

#[test]
fn nested_records_report_the_nested_path() {
    let inner_old = r#"{"type":"record","name":"Inner","fields":[{"name":"a","type":"int"}]}"#;
    let inner_new =
        r#"{"type":"record","name":"Inner","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#;
    let old = record(&format!(r#"{{"name":"inner","type":{inner_old}}}"#));
    let new = record(&format!(r#"{{"name":"inner","type":{inner_new}}}"#));
    let why = reasons(Backward, &new, &old);
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("at path '/fields/0/type/fields/1'"), "{why:?}");
}

#[test]
fn logical_types_resolve_as_their_underlying_type() {
    let old = record(r#"{"name":"t","type":"long"}"#);
    let new = record(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}"#);
    assert_eq!(passing_levels(&new, &old), ALL_LEVELS);
    let date = record(r#"{"name":"t","type":{"type":"int","logicalType":"date"}}"#);
    assert_eq!(passing_levels(&new, &date), BACKWARD_ONLY);
}

#[test]
fn recursive_types_terminate() {
    let list = |extra: &str| {
        avro(&format!(
            r#"{{"type":"record","name":"Node","fields":[{{"name":"v","type":"int"}},{{"name":"next","type":["null","Node"]}}{extra}]}}"#
        ))
    };
    let old = list("");
    let new = list(r#",{"name":"w","type":"int","default":0}"#);
    assert_eq!(passing_levels(&new, &old), ALL_LEVELS);
    let strict = list(r#",{"name":"w","type":"int"}"#);
    assert_eq!(passing_levels(&strict, &old), FORWARD_ONLY);
}

/// Confluent's example: BACKWARD checks only the latest version.
#[test]
fn transitive_backward_checks_every_version() {
    let v1 = record(F1);
    let v2 = record(&format!(r#"{F1},{{"name":"f2","type":"string","default":"foo"}}"#));
    let v3 = record(&format!(r#"{F1},{{"name":"f2","type":"string"}}"#));
    let history = [v1, v2];
    assert!(check_compatibility(Backward, &v3, &history).is_empty());
    let why = check_compatibility(BackwardTransitive, &v3, &history);
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE"), "{why:?}");
    assert!(!check_compatibility(FullTransitive, &v3, &history).is_empty());
}

/// Confluent stops at the newest version `new` is incompatible with, and
/// lists FULL's forward reasons before its backward ones.
#[test]
fn reasons_come_from_the_newest_incompatible_version_forward_first() {
    let v1 = record(r#"{"name":"a","type":"int"}"#);
    let v2 = record(r#"{"name":"b","type":"int"}"#);
    let v3 = record(r#"{"name":"c","type":"int"}"#);
    let why = check_compatibility(FullTransitive, &v3, &[v1, v2]);
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why[0].contains("The field 'b' at path '/fields/0' in the old schema"), "{why:?}");
    assert!(why[1].contains("The field 'c' at path '/fields/0' in the new schema"), "{why:?}");
}

#[test]
fn transitive_forward_checks_every_version() {
    let v1 = record(&format!(r#"{F1},{{"name":"f2","type":"string"}}"#));
    let v2 = record(&format!(r#"{F1},{{"name":"f2","type":"string","default":"foo"}}"#));
    let v3 = record(F1);
    let history = [v1, v2];
    assert!(check_compatibility(Forward, &v3, &history).is_empty());
    assert!(check_compatibility(Full, &v3, &history).is_empty());
    assert_eq!(check_compatibility(ForwardTransitive, &v3, &history).len(), 1);
    assert_eq!(check_compatibility(FullTransitive, &v3, &history).len(), 1);
    assert!(check_compatibility(None, &v3, &history).is_empty());
}

#[test]
fn another_schema_type_is_incompatible() {
    let a = record(F1);
    let j = parse(SchemaType::Json, r#"{"type":"object"}"#, &[]).unwrap();
    assert_eq!(check_compatibility(Backward, &a, &[j]).len(), 1);
}

#[test]
fn invalid_schemas_are_refused_with_a_reason() {
    for bad in [
        "{",
        r#"{"type":"record","name":"U","fields":[{"name":"a","type":"Nope"}]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","A"]}"#,
        r#"{"type":"record","name":"U","fields":[{"name":"a","type":"int","default":"x"}]}"#,
        r#"{"type":"fixed","name":"F"}"#,
        r#"{"type":"nope"}"#,
    ] {
        match parse(SchemaType::Avro, bad, &[]) {
            Err(SchemaError::Invalid(reason)) => assert!(reason.starts_with("Invalid schema"), "{reason}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn canonical_ignores_layout_and_normalized_ignores_namespace_spelling() {
    let a = avro(
        r#"{"type": "record", "name": "User", "namespace": "com.example", "fields": [ {"name": "name", "type": "string"} ]}"#,
    );
    let b =
        avro(r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"}]}"#);
    assert_eq!(a.canonical(), b.canonical());
    assert!(!a.canonical().contains(' '));
    let c = avro(r#"{"fields":[{"type":{"type":"string"},"name":"name"}],"type":"record","name":"com.example.User"}"#);
    // Avro writes a parsed schema back the same whatever its key order or
    // the spelling of its names.
    assert_eq!(a.canonical(), c.canonical());
    assert_eq!(a.normalized(), c.normalized());
    // A doc is part of the schema's identity.
    let documented = avro(
        r#"{"type":"record","name":"com.example.User","doc":"people","fields":[{"name":"name","type":"string"}]}"#,
    );
    assert_ne!(a.normalized(), documented.normalized());
    assert_eq!(
        a.normalized(),
        r#"{"name":"com.example.User","type":"record","fields":[{"name":"name","type":"string"}]}"#
    );
    // A default is part of the schema's identity.
    let d =
        avro(r#"{"type":"record","name":"com.example.User","fields":[{"name":"name","type":"string","default":""}]}"#);
    assert_ne!(a.normalized(), d.normalized());
    // Both texts parse back to the same schema.
    for text in [a.canonical(), a.normalized()] {
        assert_eq!(avro(&text).normalized(), a.normalized());
    }
}

#[test]
fn canonical_is_written_as_avro_writes_schemas() {
    let text = r#"{"namespace":"a.b","type":"record","doc":"d","name":"R","aliases":["Old"],"fields":[
        {"type":"int","name":"f","default":1,"doc":"x","aliases":["g"],"order":"descending"},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["A"],"default":"A"}},
        {"name":"x","type":{"type":"fixed","name":"X","namespace":"other","size":2}},
        {"name":"arr","type":{"type":"array","items":"E"}},
        {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}]}"#;
    assert_eq!(
        avro(text).canonical(),
        r#"{"type":"record","name":"R","namespace":"a.b","doc":"d","fields":[{"name":"f","type":"int","doc":"x","default":1,"order":"descending","aliases":["g"]},{"name":"e","type":{"type":"enum","name":"E","symbols":["A"],"default":"A"}},{"name":"x","type":{"type":"fixed","name":"X","namespace":"other","size":2}},{"name":"arr","type":{"type":"array","items":"E"}},{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}],"aliases":["Old"]}"#
    );
    assert_eq!(avro(r#"{"type":"string"}"#).canonical(), r#""string""#);
    assert_eq!(avro(r#"["null",{"type":"long"}]"#).canonical(), r#"["null","long"]"#);
}

#[test]
fn record_name_is_the_full_name() {
    assert_eq!(record(F1).record_name().as_deref(), Some("test.myrecord"));
    assert_eq!(avro(r#""string""#).record_name(), Option::None);
    assert_eq!(avro(r#"{"type":"enum","name":"E","symbols":["A"]}"#).record_name(), Option::None);
}

const ADDRESS: &str =
    r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"city","type":"string"}]}"#;
const CUSTOMER: &str = r#"{"type":"record","name":"Customer","namespace":"com.acme","fields":[{"name":"name","type":"string"},{"name":"address","type":"com.acme.Address"}]}"#;

#[test]
fn references_define_named_types() {
    let resolved = [Resolved { name: "com.acme.Address".into(), text: ADDRESS.into() }];
    let customer = parse(SchemaType::Avro, CUSTOMER, &resolved).unwrap();
    assert_eq!(customer.record_name().as_deref(), Some("com.acme.Customer"));
    // Stored by name (relative to the namespace), as Avro writes it.
    assert_eq!(
        customer.canonical(),
        r#"{"type":"record","name":"Customer","namespace":"com.acme","fields":[{"name":"name","type":"string"},{"name":"address","type":"Address"}]}"#
    );
    let again = parse(SchemaType::Avro, &customer.canonical(), &resolved).unwrap();
    assert_eq!(again.canonical(), customer.canonical());
    assert!(matches!(parse(SchemaType::Avro, CUSTOMER, &[]), Err(SchemaError::Invalid(_))));
    // city: "Prague"
    let mut payload = vec![8];
    payload.extend_from_slice(b"Jana");
    payload.push(12);
    payload.extend_from_slice(b"Prague");
    assert_eq!(customer.validate_payload(&payload), Ok(()));
    assert!(customer.validate_payload(&payload[..payload.len() - 1]).is_err());
    // The referenced type's changes are checked through the reference.
    let address_v2 = r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string"}]}"#;
    let customer_v2 =
        parse(SchemaType::Avro, CUSTOMER, &[Resolved { name: "com.acme.Address".into(), text: address_v2.into() }])
            .unwrap();
    let why = check_compatibility(Backward, &customer_v2, &[customer]);
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("'/fields/1/type/fields/1'"), "{why:?}");
}

#[test]
fn references_may_refer_to_each_other() {
    let country = r#"{"type":"record","name":"Country","namespace":"geo","fields":[{"name":"code","type":"string"}]}"#;
    let city = r#"{"type":"record","name":"City","namespace":"geo","fields":[{"name":"name","type":"string"},{"name":"country","type":"Country"}]}"#;
    let person = r#"{"type":"record","name":"Person","fields":[{"name":"home","type":"geo.City"}]}"#;
    let resolved = [
        Resolved { name: "geo.Country".into(), text: country.into() },
        Resolved { name: "geo.City".into(), text: city.into() },
    ];
    let parsed = parse(SchemaType::Avro, person, &resolved).unwrap();
    // home.name "Brno", home.country.code "CZ"
    assert_eq!(parsed.validate_payload(&[8, b'B', b'r', b'n', b'o', 4, b'C', b'Z']), Ok(()));
}

const EVERYTHING: &str = r#"{"type":"record","name":"Everything","fields":[
    {"name":"n","type":"null"},
    {"name":"b","type":"boolean"},
    {"name":"i","type":"int"},
    {"name":"l","type":"long"},
    {"name":"f","type":"float"},
    {"name":"d","type":"double"},
    {"name":"by","type":"bytes"},
    {"name":"s","type":"string"},
    {"name":"a","type":{"type":"array","items":"int"}},
    {"name":"m","type":{"type":"map","values":"string"}},
    {"name":"u","type":["null","string"]},
    {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
    {"name":"x","type":{"type":"fixed","name":"Four","size":4}},
    {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}
]}"#;

fn everything_value() -> Value {
    Value::Record(vec![
        ("n".into(), Value::Null),
        ("b".into(), Value::Boolean(true)),
        ("i".into(), Value::Int(-7)),
        ("l".into(), Value::Long(1 << 40)),
        ("f".into(), Value::Float(1.5)),
        ("d".into(), Value::Double(-2.25)),
        ("by".into(), Value::Bytes(vec![0, 1, 2])),
        ("s".into(), Value::String("žluťoučký".into())),
        ("a".into(), Value::Array((0..300).map(Value::Int).collect())),
        ("m".into(), Value::Map([("k".to_string(), Value::String("v".into()))].into_iter().collect())),
        ("u".into(), Value::Union(1, Box::new(Value::String("some".into())))),
        ("e".into(), Value::Enum(1, "GREEN".into())),
        ("x".into(), Value::Fixed(4, vec![9, 9, 9, 9])),
        ("t".into(), Value::TimestampMillis(1_700_000_000_000)),
    ])
}

fn encode(schema: &str, value: Value) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    GenericDatumWriter::builder(&schema).build().unwrap().write_value_to_vec(value).unwrap()
}

#[test]
fn payloads_written_by_apache_avro_validate() {
    let schema = avro(EVERYTHING);
    let payload = encode(EVERYTHING, everything_value());
    assert_eq!(schema.validate_payload(&payload), Ok(()));
    // Every strict prefix is refused, and so is a trailing byte.
    for len in 0..payload.len() {
        assert!(schema.validate_payload(&payload[..len]).is_err(), "prefix of {len} bytes");
    }
    let mut longer = payload.clone();
    longer.push(0);
    let why = schema.validate_payload(&longer).unwrap_err();
    assert!(why.contains("1 bytes left"), "{why}");
    // Primitive top-level schemas.
    assert_eq!(avro(r#""string""#).validate_payload(&encode(r#""string""#, Value::String("hi".into()))), Ok(()));
    assert_eq!(avro(r#""long""#).validate_payload(&encode(r#""long""#, Value::Long(i64::MIN))), Ok(()));
    assert!(avro(r#""int""#).validate_payload(&encode(r#""long""#, Value::Long(i64::MAX))).is_err());
}

#[test]
fn malformed_payloads_are_refused_with_a_reason() {
    let union = avro(r#"["null","string"]"#);
    assert!(union.validate_payload(&[4]).unwrap_err().contains("no branch 2"));
    let color = avro(r#"{"type":"enum","name":"Color","symbols":["RED","GREEN"]}"#);
    assert!(color.validate_payload(&[4]).unwrap_err().contains("no symbol 2"));
    assert!(avro(r#""string""#).validate_payload(&[4, 0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    assert!(avro(r#""boolean""#).validate_payload(&[2]).is_err());
    assert!(avro(r#""bytes""#).validate_payload(&[1]).unwrap_err().contains("negative length"));
    // A length far beyond the payload allocates nothing.
    let mut huge = vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    huge.push(0);
    assert!(avro(r#""bytes""#).validate_payload(&huge).is_err());
    // An array of a billion nulls in five bytes is refused, not walked.
    let nulls = avro(r#"{"type":"array","items":"null"}"#);
    let why = nulls.validate_payload(&[0x80, 0xa8, 0xd6, 0xb9, 0x07, 0]).unwrap_err();
    assert!(why.contains("too many values"), "{why}");
    // Deep recursion is bounded.
    let list = avro(r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#);
    let mut deep = vec![2u8; 10_000];
    deep.push(0);
    assert!(list.validate_payload(&deep).unwrap_err().contains("nested deeper"));
    let mut shallow = vec![2u8; 50];
    shallow.push(0);
    assert_eq!(list.validate_payload(&shallow), Ok(()));
}

/// Unions of records whose fields are unions of records: a writer branch
/// is probed against the reader's branches in turn, each probe walking the
/// levels below, so the check is bounded and says so instead of running
/// for hours.
#[test]
fn compatibility_checks_are_bounded() {
    const LEVELS: usize = 24;
    // Level i defines A{i} (which defines the next level) and B{i} (which
    // refers to it by name).
    let mut union =
        r#"[{"type":"record","name":"A24","fields":[]},{"type":"record","name":"B24","fields":[]}]"#.to_string();
    for i in (0..LEVELS).rev() {
        let n = i + 1;
        union = format!(
            r#"[{{"type":"record","name":"A{i}","fields":[{{"name":"f","type":{union}}}]}},{{"type":"record","name":"B{i}","fields":[{{"name":"f","type":["A{n}","B{n}"]}}]}}]"#
        );
    }
    assert_too_complex(&avro(&union));
}

#[test]
fn parsing_garbage_never_panics() {
    for text in [
        "",
        "null",
        "[]",
        "[[]]",
        r#"{"type":["int","int"]}"#,
        r#"{"type":"record"}"#,
        r#"{"type":"record","name":"","fields":[]}"#,
        r#"{"type":"map"}"#,
        r#"{"type":"array","items":{"type":"array"}}"#,
        &"[".repeat(10_000),
    ] {
        let _ = parse(SchemaType::Avro, text, &[]);
        let _ = parse(
            SchemaType::Avro,
            r#"{"type":"record","name":"A","fields":[]}"#,
            &[Resolved { name: "x".into(), text: text.into() }],
        );
    }
}
