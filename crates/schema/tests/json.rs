//! JSON Schema: parsing per draft, canonical/normalized texts, payload
//! validation and Confluent's compatibility rules at every level (cases
//! from Confluent's "Schema Evolution and Compatibility" page and its
//! JSON Schema difference types).

use vltava_schema::{check_compatibility, parse, Compatibility, ParsedSchema, Resolved, SchemaError, SchemaType};

mod common;
use common::*;
use Compatibility::*;

fn json(text: &str) -> ParsedSchema {
    parse(SchemaType::Json, text, &[]).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn backward(new: &ParsedSchema, old: &ParsedSchema) -> Vec<String> {
    check_compatibility(Backward, new, std::slice::from_ref(old))
}

fn object(properties: &str, rest: &str) -> ParsedSchema {
    json(&format!(r#"{{"type":"object","properties":{{{properties}}}{rest}}}"#))
}

const NAME: &str = r#""name":{"type":"string"}"#;
const AGE: &str = r#""age":{"type":"integer"}"#;
const CLOSED: &str = r#","additionalProperties":false"#;

#[test]
fn open_content_model_allows_removing_properties_not_adding_them() {
    let old = object(NAME, "");
    let new = object(&format!("{NAME},{AGE}"), "");
    assert_eq!(passing_levels(&new, &old), FORWARD_ONLY);
    assert_eq!(
        backward(&new, &old),
        ["{errorType:\"PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new schema has an open content model \
          and has a property or item at path '#/properties/age' which is missing in the old schema\"}"]
    );
    assert_eq!(passing_levels(&old, &new), BACKWARD_ONLY);
    // A property any value satisfies may be added to an open model.
    let anything = object(&format!(r#"{NAME},"extra":{{}}"#), "");
    assert_eq!(passing_levels(&anything, &old), ALL_LEVELS);
}

#[test]
fn closed_content_model_allows_adding_optional_properties_not_removing_them() {
    let old = object(NAME, CLOSED);
    let new = object(&format!("{NAME},{AGE}"), CLOSED);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    let why = check_compatibility(Forward, &new, std::slice::from_ref(&old));
    assert_eq!(why.len(), 1);
    assert!(why[0].starts_with("{errorType:\"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL\""), "{why:?}");
}

#[test]
fn required_properties_added_need_a_default() {
    let old = object(NAME, CLOSED);
    let new = object(&format!("{NAME},{AGE}"), &format!(r#"{CLOSED},"required":["age"]"#));
    assert_eq!(passing_levels(&new, &old), [None]);
    assert!(backward(&new, &old)[0].contains("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"));
    let with_default = object(
        &format!(r#"{NAME},"age":{{"type":"integer","default":0}}"#),
        &format!(r#"{CLOSED},"required":["age"]"#),
    );
    assert_eq!(passing_levels(&with_default, &old), BACKWARD_ONLY);
    // An existing property made required.
    let old = object(&format!("{NAME},{AGE}"), "");
    let new = object(&format!("{NAME},{AGE}"), r#","required":["age"]"#);
    assert_eq!(passing_levels(&new, &old), FORWARD_ONLY);
    assert_eq!(
        backward(&new, &old),
        ["{errorType:\"REQUIRED_ATTRIBUTE_ADDED\", description:\"The keyword at path '#/required/age' in the new \
          schema is not present in the old schema\"}"]
    );
}

#[test]
fn additional_properties_opened_is_backward_compatible() {
    let closed = object(NAME, CLOSED);
    let open = object(NAME, "");
    assert_eq!(passing_levels(&open, &closed), BACKWARD_ONLY);
    assert!(check_compatibility(Forward, &open, &[closed])[0].contains("ADDITIONAL_PROPERTIES_REMOVED"));
}

#[test]
fn partially_open_content_model_covers_matching_properties() {
    let partial = r#","additionalProperties":{"type":"string"}"#;
    let old = object(&format!(r#"{NAME},"nick":{{"type":"string"}}"#), partial);
    let new = object(NAME, partial);
    // A removed string property is still covered by additionalProperties.
    assert_eq!(passing_levels(&new, &old), ALL_LEVELS);
    let old = object(&format!("{NAME},{AGE}"), partial);
    let why = backward(&new, &old);
    assert!(why.iter().any(|w| w.contains("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")), "{why:?}");
}

#[test]
fn types_change_narrow_and_extend() {
    let string = json(r#"{"type":"string"}"#);
    let integer = json(r#"{"type":"integer"}"#);
    let number = json(r#"{"type":"number"}"#);
    assert_eq!(passing_levels(&integer, &string), [None]);
    assert_eq!(
        backward(&integer, &string),
        ["{errorType:\"TYPE_CHANGED\", description:\"A type at path '#/' is different between the new schema and \
          the old schema\"}"]
    );
    assert_eq!(passing_levels(&number, &integer), BACKWARD_ONLY);
    assert!(check_compatibility(Forward, &number, std::slice::from_ref(&integer))[0].contains("TYPE_NARROWED"));
    // Anything reads from `{}` nothing but `{}`; `{}` reads everything.
    let anything = json("{}");
    assert_eq!(passing_levels(&anything, &string), BACKWARD_ONLY);
}

#[test]
fn nullable_types_are_sum_types() {
    let string = object(r#""s":{"type":"string"}"#, "");
    let nullable = object(r#""s":{"type":["string","null"]}"#, "");
    assert_eq!(passing_levels(&nullable, &string), BACKWARD_ONLY);
    assert!(check_compatibility(Forward, &nullable, std::slice::from_ref(&string))[0].contains("'#/properties/s'"));
}

#[test]
fn string_limits() {
    let cases = [
        (r#"{"type":"string"}"#, r#"{"type":"string","maxLength":5}"#, "MAX_LENGTH_ADDED"),
        (r#"{"type":"string","maxLength":10}"#, r#"{"type":"string","maxLength":5}"#, "MAX_LENGTH_DECREASED"),
        (r#"{"type":"string","minLength":1}"#, r#"{"type":"string","minLength":2}"#, "MIN_LENGTH_INCREASED"),
        (r#"{"type":"string"}"#, r#"{"type":"string","pattern":"^a"}"#, "PATTERN_ADDED"),
        (r#"{"type":"string","pattern":"^a"}"#, r#"{"type":"string","pattern":"^b"}"#, "PATTERN_CHANGED"),
    ];
    for (old, new, kind) in cases {
        let (old, new) = (json(old), json(new));
        let why = backward(&new, &old);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains(kind), "{why:?}");
        // Loosening is backward compatible (except a changed pattern).
        if kind != "PATTERN_CHANGED" {
            assert_eq!(passing_levels(&old, &new), BACKWARD_ONLY, "{kind} reversed");
        }
    }
    assert_eq!(
        backward(&json(r#"{"type":"string","maxLength":5}"#), &json(r#"{"type":"string","maxLength":10}"#)),
        ["{errorType:\"MAX_LENGTH_DECREASED\", description:\"The value at path '#/maxLength' in the new schema is \
          less than its value in the old schema\"}"]
    );
}

#[test]
fn number_limits() {
    let cases = [
        (r#"{"type":"number","maximum":10}"#, r#"{"type":"number","maximum":5}"#, "MAXIMUM_DECREASED"),
        (r#"{"type":"number","minimum":0}"#, r#"{"type":"number","minimum":1}"#, "MINIMUM_INCREASED"),
        (r#"{"type":"number"}"#, r#"{"type":"number","exclusiveMinimum":0}"#, "EXCLUSIVE_MINIMUM_ADDED"),
        (r#"{"type":"number","multipleOf":2}"#, r#"{"type":"number","multipleOf":4}"#, "MULTIPLE_OF_EXPANDED"),
        (r#"{"type":"number","multipleOf":2}"#, r#"{"type":"number","multipleOf":3}"#, "MULTIPLE_OF_CHANGED"),
    ];
    for (old, new, kind) in cases {
        let (old, new) = (json(old), json(new));
        let why = backward(&new, &old);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains(kind), "{why:?}");
    }
    let old = json(r#"{"type":"number","multipleOf":4}"#);
    let new = json(r#"{"type":"number","multipleOf":2}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
}

#[test]
fn enums_extend_backward_and_narrow_forward() {
    let old = json(r#"{"enum":["red","green"]}"#);
    let new = json(r#"{"enum":["red","green","blue"]}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    assert!(check_compatibility(Forward, &new, std::slice::from_ref(&old))[0].contains("ENUM_ARRAY_NARROWED"));
    let changed = json(r#"{"enum":["red","blue"]}"#);
    assert_eq!(passing_levels(&changed, &old), [None]);
}

#[test]
fn combined_types() {
    let one = json(r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#);
    let more = json(r#"{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}"#);
    assert_eq!(passing_levels(&more, &one), BACKWARD_ONLY);
    assert!(check_compatibility(Forward, &more, std::slice::from_ref(&one))[0].contains("SUM_TYPE_NARROWED"));
    // oneOf -> anyOf is an extension; anyOf -> oneOf a change.
    let any = json(r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#);
    assert_eq!(passing_levels(&any, &one), BACKWARD_ONLY);
    assert!(backward(&one, &any)[0].contains("COMBINED_TYPE_CHANGED"));
    // A branch changed beyond reading.
    let changed = json(r#"{"oneOf":[{"type":"string"},{"type":"boolean"}]}"#);
    let why = backward(&changed, &one);
    assert!(why.iter().any(|w| w.contains("COMBINED_TYPE_SUBSCHEMAS_CHANGED")), "{why:?}");
    // allOf with fewer parts constrains less.
    let all = json(r#"{"allOf":[{"type":"string"},{"maxLength":5}]}"#);
    let fewer = json(r#"{"allOf":[{"type":"string"}]}"#);
    assert_eq!(passing_levels(&fewer, &all), BACKWARD_ONLY);
    // A type becoming a branch of a union.
    let string = json(r#"{"type":"string"}"#);
    assert_eq!(passing_levels(&one, &string), BACKWARD_ONLY);
}

#[test]
fn dependencies_added_constrain_removed_relax() {
    let props = format!("{NAME},{AGE}");
    let free = object(&props, "");
    let dependent = object(&props, r#","dependencies":{"age":["name"]}"#);
    assert_eq!(passing_levels(&free, &dependent), BACKWARD_ONLY);
    assert_eq!(
        backward(&dependent, &free),
        ["{errorType:\"DEPENDENCY_ARRAY_ADDED\", description:\"The keyword at path '#/dependencies/age' in the new \
          schema is not present in the old schema\"}"]
    );
    // 2019-09's spelling reads the same.
    let split = json(&format!(
        r#"{{"$schema":"https://json-schema.org/draft/2019-09/schema","type":"object","properties":{{{props}}},"dependentRequired":{{"age":["name"]}}}}"#
    ));
    assert_eq!(passing_levels(&free, &split), BACKWARD_ONLY);
    let schema_dependency = object(&props, r#","dependencies":{"age":{"required":["name"]}}"#);
    assert!(backward(&schema_dependency, &free)[0].contains("DEPENDENCY_SCHEMA_ADDED"));
}

#[test]
fn const_and_not() {
    let a = json(r#"{"const":"a"}"#);
    let b = json(r#"{"const":"b"}"#);
    assert_eq!(passing_levels(&b, &a), [None]);
    assert!(backward(&b, &a)[0].contains("'#/const'"));
    // Excluding less is reading more.
    let not_short = json(r#"{"not":{"type":"string","maxLength":3}}"#);
    let not_shorter = json(r#"{"not":{"type":"string","maxLength":2}}"#);
    assert_eq!(passing_levels(&not_shorter, &not_short), BACKWARD_ONLY);
    assert!(backward(&not_short, &not_shorter)[0].contains("NOT_TYPE_EXTENDED"));
}

#[test]
fn arrays() {
    let old = json(r#"{"type":"array","items":{"type":"integer"}}"#);
    let new = json(r#"{"type":"array","items":{"type":"number"}}"#);
    assert_eq!(passing_levels(&new, &old), BACKWARD_ONLY);
    let limited = json(r#"{"type":"array","items":{"type":"integer"},"maxItems":3,"uniqueItems":true}"#);
    let why = backward(&limited, &old);
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why[0].contains("MAX_ITEMS_ADDED") && why[1].contains("UNIQUE_ITEMS_ADDED"), "{why:?}");
    // Tuples: an item added to a closed tuple is compatible, to an open one not.
    let closed = json(r#"{"type":"array","items":[{"type":"string"}],"additionalItems":false}"#);
    let closed_more =
        json(r#"{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}"#);
    assert_eq!(passing_levels(&closed_more, &closed), BACKWARD_ONLY);
    let open = json(r#"{"type":"array","items":[{"type":"string"}]}"#);
    let open_more = json(r#"{"type":"array","items":[{"type":"string"},{"type":"integer"}]}"#);
    assert!(backward(&open_more, &open)[0].contains("ITEM_ADDED_TO_OPEN_CONTENT_MODEL"));
}

#[test]
fn refs_are_compared_through() {
    let old = json(
        r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":"string","maxLength":10}}}"##,
    );
    let new = json(
        r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":"string","maxLength":5}}}"##,
    );
    let why = backward(&new, &old);
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("'#/properties/a/maxLength'"), "{why:?}");
    // Recursive schemas terminate.
    let tree = r##"{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}}}"##;
    assert_eq!(passing_levels(&json(tree), &json(tree)), ALL_LEVELS);
}

#[test]
fn references_resolve_by_name() {
    let address = r#"{"type":"object","properties":{"city":{"type":"string"}}}"#;
    let customer = r#"{"type":"object","title":"Customer","properties":{"address":{"$ref":"address.json"}},"required":["address"]}"#;
    let resolved = [Resolved { name: "address.json".into(), text: address.into() }];
    let parsed = parse(SchemaType::Json, customer, &resolved).unwrap();
    assert_eq!(parsed.record_name().as_deref(), Some("Customer"));
    assert_eq!(parsed.validate_payload(br#"{"address":{"city":"Brno"}}"#), Ok(()));
    let why = parsed.validate_payload(br#"{"address":{"city":7}}"#).unwrap_err();
    assert!(why.contains("city"), "{why}");
    // Without the reference the schema cannot be compiled.
    assert!(matches!(parse(SchemaType::Json, customer, &[]), Err(SchemaError::Invalid(_))));
    // Changes in the referenced schema are compared.
    let address_v2 = r#"{"type":"object","properties":{"city":{"type":"integer"}}}"#;
    let v2 = parse(SchemaType::Json, customer, &[Resolved { name: "address.json".into(), text: address_v2.into() }])
        .unwrap();
    let why = check_compatibility(Backward, &v2, &[parsed]);
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("TYPE_CHANGED") && why[0].contains("'#/properties/address/properties/city'"), "{why:?}");
}

#[test]
fn references_by_url_resolve_against_the_schema_id() {
    let address =
        r#"{"$id":"https://example.com/schemas/address.json","type":"object","properties":{"city":{"type":"string"}}}"#;
    let customer = r#"{"$id":"https://example.com/schemas/customer.json","type":"object","properties":{"address":{"$ref":"address.json"}}}"#;
    for name in ["address.json", "https://example.com/schemas/address.json"] {
        let resolved = [Resolved { name: name.into(), text: address.into() }];
        let parsed = parse(SchemaType::Json, customer, &resolved).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(parsed.validate_payload(br#"{"address":{"city":1}}"#).is_err(), "{name}");
        let v2 = address.replace(r#""string""#, r#""integer""#);
        let changed = parse(SchemaType::Json, customer, &[Resolved { name: name.into(), text: v2 }]).unwrap();
        assert_eq!(check_compatibility(Backward, &changed, &[parsed]).len(), 1, "{name}");
    }
}

#[test]
fn parsed_schemas_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<ParsedSchema>();
}

#[test]
fn transitive_levels_check_every_version() {
    // v1 open {name}; v2 drops name (compatible backward); v3 adds name as integer.
    let v1 = object(NAME, "");
    let v2 = object("", "");
    let v3 = object(r#""name":{"type":"integer"}"#, "");
    let history = [v1, v2];
    // Against v2 alone, v3 adds a property to an open model: backward incompatible.
    assert!(!check_compatibility(Backward, &v3, &history).is_empty());
    // Forward: v2 reads v3 (open model ignores `name`), v1 does not (string vs integer).
    assert!(check_compatibility(Forward, &v3, &history).is_empty());
    let why = check_compatibility(ForwardTransitive, &v3, &history);
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("TYPE_CHANGED"), "{why:?}");
    assert!(check_compatibility(None, &v3, &history).is_empty());
    // BACKWARD_TRANSITIVE: v1 {name optional}, v2 + age with default required, v3 requires name.
    let b1 = object(NAME, CLOSED);
    let b2 = object(&format!("{NAME},{AGE}"), CLOSED);
    let b3 = object(&format!("{NAME},{AGE}"), &format!(r#"{CLOSED},"required":["age"]"#));
    let history = [b1, b2];
    assert!(!check_compatibility(Backward, &b3, &history).is_empty());
    let b3_default = object(
        &format!(r#"{NAME},"age":{{"type":"integer","default":1}}"#),
        &format!(r#"{CLOSED},"required":["age"]"#),
    );
    assert!(check_compatibility(Backward, &b3_default, &history).is_empty());
    assert!(check_compatibility(BackwardTransitive, &b3_default, &history).is_empty());
    assert!(!check_compatibility(FullTransitive, &b3_default, &history).is_empty());
}

#[test]
fn every_draft_parses_and_validates_payloads() {
    for (uri, schema) in [
        ("http://json-schema.org/draft-04/schema#", r#""exclusiveMinimum":true,"minimum":0"#),
        ("http://json-schema.org/draft-06/schema#", r#""exclusiveMinimum":0"#),
        ("http://json-schema.org/draft-07/schema#", r#""exclusiveMinimum":0"#),
        ("https://json-schema.org/draft/2019-09/schema", r#""exclusiveMinimum":0"#),
        ("https://json-schema.org/draft/2020-12/schema", r#""exclusiveMinimum":0"#),
    ] {
        let text = format!(
            r#"{{"$schema":"{uri}","type":"object","properties":{{"n":{{"type":"number",{schema}}}}},"required":["n"]}}"#
        );
        let parsed = json(&text);
        assert_eq!(parsed.validate_payload(br#"{"n":1}"#), Ok(()), "{uri}");
        assert!(parsed.validate_payload(br#"{"n":0}"#).is_err(), "{uri}");
        assert!(parsed.validate_payload(br#"{}"#).is_err(), "{uri}");
    }
}

#[test]
fn payloads_are_json_that_follows_the_schema() {
    let schema = object(&format!("{NAME},{AGE}"), r#","required":["name"]"#);
    assert_eq!(schema.validate_payload(br#"{"name":"Ada","age":36}"#), Ok(()));
    let why = schema.validate_payload(br#"{"age":"old"}"#).unwrap_err();
    assert!(why.contains("name") && why.contains("age"), "{why}");
    assert!(schema.validate_payload(b"\x00\x01").unwrap_err().starts_with("payload is not JSON"));
    assert!(schema.validate_payload(br#"{"name":"x"} trailing"#).is_err());
    // Deep nesting is refused by the parser's depth limit, not a crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(schema.validate_payload(deep.as_bytes()).is_err());
}

#[test]
fn invalid_schemas_are_refused_with_a_reason() {
    for bad in [
        "{",
        r#"{"type":"invalid"}"#,
        r#"{"type":"string","minLength":-1}"#,
        r#"{"$schema":"http://example.com/my-meta","type":"string"}"#,
        r#"{"properties":{"a":{"type":7}}}"#,
        "42",
    ] {
        match parse(SchemaType::Json, bad, &[]) {
            Err(SchemaError::Invalid(reason)) => assert!(reason.starts_with("Invalid schema"), "{reason}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn canonical_is_compact_and_normalized_sorts_keys() {
    let a = json(r#"{ "type": "object", "properties": { "b": {"type": "string"}, "a": {"type": "integer"} } }"#);
    assert_eq!(a.canonical(), r#"{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"integer"}}}"#);
    assert_eq!(a.normalized(), r#"{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}"#);
    let b = json(r#"{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}"#);
    assert_ne!(a.canonical(), b.canonical());
    assert_eq!(a.normalized(), b.normalized());
    // Whitespace inside strings stays.
    let c = json(r#"{"title": "A title", "type": "string"}"#);
    assert_eq!(c.canonical(), r#"{"title":"A title","type":"string"}"#);
    assert_eq!(c.record_name().as_deref(), Some("A title"));
    assert_eq!(json(r#"{"type":"string"}"#).record_name(), Option::None);
}

/// Combined types compare every branch pair: a chain of definitions with
/// two branches each is bounded and says so.
#[test]
fn compatibility_checks_are_bounded() {
    let mut definitions = Vec::new();
    for i in 0..30 {
        definitions.push(format!(
            r##""d{i}":{{"oneOf":[{{"$ref":"#/definitions/d{n}"}},{{"$ref":"#/definitions/d{n}","description":"x"}}]}}"##,
            n = i + 1
        ));
    }
    definitions.push(r#""d30":{"type":"string"}"#.to_string());
    let text = format!(r##"{{"$ref":"#/definitions/d0","definitions":{{{}}}}}"##, definitions.join(","));
    assert_too_complex(&json(&text));
}

#[test]
fn parsing_garbage_never_panics() {
    for text in [
        "",
        "null",
        "[]",
        "true",
        r##"{"$ref":"#/nope"}"##,
        r#"{"$ref":"other.json"}"#,
        r#"{"properties":[]}"#,
        &"[".repeat(10_000),
    ] {
        let _ = parse(SchemaType::Json, text, &[]);
    }
}
