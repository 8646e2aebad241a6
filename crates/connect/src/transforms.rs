//! Single Message Transforms and predicates, by Kafka's class names:
//! `transforms=a,b`, `transforms.a.type=...`, `transforms.a.predicate=p`,
//! `transforms.a.negate=true`, `predicates=p`, `predicates.p.type=...`.
//!
//! The transforms are in [`fields`] (InsertField, ReplaceField, MaskField,
//! ValueToKey, ExtractField, HoistField, Cast; each with `$Key`/`$Value`)
//! and [`routing`] (TimestampRouter, RegexRouter, Filter, the predicates).

pub mod fields;
pub mod routing;

use crate::config::{ConfigErrors, Props, PropsExt};
use crate::data::Record;
use crate::error::Result;

/// One transform: a record in, a record (or none: dropped) out.
pub trait Transform: Send + Sync {
    fn apply(&self, record: Record) -> Result<Option<Record>>;
}

/// A predicate a transform is applied under.
pub trait Predicate: Send + Sync {
    fn test(&self, record: &Record) -> bool;
}

const T: &str = "org.apache.kafka.connect.transforms.";

/// Every transform and predicate class this worker knows.
pub const CLASSES: &[&str] = &[
    "org.apache.kafka.connect.transforms.InsertField$Key",
    "org.apache.kafka.connect.transforms.InsertField$Value",
    "org.apache.kafka.connect.transforms.ReplaceField$Key",
    "org.apache.kafka.connect.transforms.ReplaceField$Value",
    "org.apache.kafka.connect.transforms.MaskField$Key",
    "org.apache.kafka.connect.transforms.MaskField$Value",
    "org.apache.kafka.connect.transforms.ValueToKey",
    "org.apache.kafka.connect.transforms.ExtractField$Key",
    "org.apache.kafka.connect.transforms.ExtractField$Value",
    "org.apache.kafka.connect.transforms.HoistField$Key",
    "org.apache.kafka.connect.transforms.HoistField$Value",
    "org.apache.kafka.connect.transforms.Cast$Key",
    "org.apache.kafka.connect.transforms.Cast$Value",
    "org.apache.kafka.connect.transforms.TimestampRouter",
    "org.apache.kafka.connect.transforms.RegexRouter",
    "org.apache.kafka.connect.transforms.Filter",
    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
    "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
    "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
];

/// A transform's or predicate's configuration: its keys (prefix removed),
/// and the errors found, keyed by the full key (`transforms.a.regex`).
pub struct Cfg<'a> {
    pub props: Props,
    pub prefix: String,
    pub errors: &'a mut ConfigErrors,
}

impl Cfg<'_> {
    /// The full key of `key`.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let k = self.key(key);
        self.errors.add(&k, message);
    }

    /// `key`, or an error that it is missing.
    pub fn required(&mut self, key: &str) -> Option<String> {
        match self.props.get(key) {
            Some(v) => Some(v.clone()),
            None => {
                let k = self.key(key);
                self.errors.add(&k, format!("Missing required configuration \"{k}\" which has no default value."));
                None
            }
        }
    }

    pub fn optional(&self, key: &str) -> Option<String> {
        self.props.get(key).cloned()
    }

    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.props.str_or(key, default).to_string()
    }

    pub fn list(&self, key: &str) -> Vec<String> {
        self.props.list(key)
    }

    pub fn bool_or(&mut self, key: &str, default: bool) -> bool {
        match self.props.bool_or(key, default) {
            Ok(b) => b,
            Err(e) => {
                self.error(
                    key,
                    e.to_string()
                        .replace(&format!("configuration {key}:"), &format!("configuration {}:", self.key(key))),
                );
                default
            }
        }
    }

    /// A regular expression that must match a whole string (Java's `matches()`).
    pub fn full_regex(&mut self, key: &str, pattern: &str) -> Option<regex::Regex> {
        match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                let k = self.key(key);
                self.errors.add(&k, format!("Invalid value {pattern} for configuration {k}: Invalid regex: {e}"));
                None
            }
        }
    }
}

/// A class name as given, or its short form (`InsertField$Value`,
/// `predicates.TopicNameMatches` and `TopicNameMatches` name Kafka's).
fn full_class(class: &str) -> String {
    let class = class.trim();
    if CLASSES.contains(&class) {
        return class.to_string();
    }
    CLASSES
        .iter()
        .find(|c| c.rsplit('.').next() == Some(class) || c.strip_prefix(T) == Some(class))
        .map_or_else(|| class.to_string(), |c| c.to_string())
}

/// A connector's transform chain.
#[derive(Default)]
pub struct Transforms {
    chain: Vec<Step>,
}

struct Step {
    transform: Box<dyn Transform>,
    predicate: Option<(Box<dyn Predicate>, bool)>,
}

impl Transforms {
    /// The chain a connector configuration names (errors keyed by the
    /// configuration key at fault, for validation).
    pub fn from_config(props: &Props) -> std::result::Result<Transforms, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let aliases = props.list("transforms");
        let predicate_aliases = props.list("predicates");
        for (key, list) in [("transforms", &aliases), ("predicates", &predicate_aliases)] {
            let mut seen = std::collections::HashSet::new();
            for a in list.iter() {
                if !seen.insert(a) {
                    errors.add(
                        key,
                        format!("Invalid value {} for configuration {key}: Duplicate alias provided.", props[key]),
                    );
                }
            }
        }
        let mut chain = Vec::new();
        for alias in &aliases {
            let prefix = format!("transforms.{alias}.");
            let type_key = format!("{prefix}type");
            let Some(class) = props.get(&type_key) else {
                errors.add(
                    &type_key,
                    format!("Missing required configuration \"{type_key}\" which has no default value."),
                );
                continue;
            };
            let class = full_class(class);
            let mut cfg = Cfg { props: props.with_prefix(&prefix), prefix: prefix.clone(), errors: &mut errors };
            let before = cfg.errors.count();
            let transform = create_transform(&class, &mut cfg);
            let transform = match transform {
                None => {
                    let message = if create_predicate(
                        &class,
                        &mut Cfg { props: Props::new(), prefix: String::new(), errors: &mut ConfigErrors::default() },
                    )
                    .is_some()
                    {
                        format!("Invalid value {class} for configuration {type_key}: Not a Transformation")
                    } else {
                        format!("Invalid value {class} for configuration {type_key}: Class {class} could not be found.")
                    };
                    errors.add(&type_key, message);
                    continue;
                }
                Some(_) if cfg.errors.count() > before => continue,
                Some(t) => t,
            };
            let negate_key = format!("{prefix}negate");
            let pred_key = format!("{prefix}predicate");
            let negate = match props.get(&negate_key).map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(v) if v == "true" => true,
                Some(v) if v == "false" => false,
                Some(v) => {
                    errors.add(&negate_key, format!("Invalid value {v} for configuration {negate_key}: Expected value to be either true or false"));
                    false
                }
            };
            let predicate = match props.get(&pred_key) {
                None => {
                    if props.contains_key(&negate_key) {
                        errors.add(
                            &negate_key,
                            format!("Config '{negate_key}' was provided but there is no config '{pred_key}' defining a predicate to be negated."),
                        );
                    }
                    None
                }
                Some(p) if !predicate_aliases.contains(p) => {
                    errors.add(
                        &pred_key,
                        format!(
                            "Invalid value {p} for configuration {pred_key}: Predicate alias {p} is not in predicates"
                        ),
                    );
                    None
                }
                Some(p) => {
                    let pprefix = format!("predicates.{p}.");
                    let ptype_key = format!("{pprefix}type");
                    match props.get(&ptype_key) {
                        None => {
                            errors.add(
                                &ptype_key,
                                format!("Missing required configuration \"{ptype_key}\" which has no default value."),
                            );
                            None
                        }
                        Some(pclass) => {
                            let pclass = full_class(pclass);
                            let mut pcfg = Cfg {
                                props: props.with_prefix(&pprefix),
                                prefix: pprefix.clone(),
                                errors: &mut errors,
                            };
                            match create_predicate(&pclass, &mut pcfg) {
                                Some(pred) => Some((pred, negate)),
                                None => {
                                    errors.add(
                                        &ptype_key,
                                        format!("Invalid value {pclass} for configuration {ptype_key}: Class {pclass} could not be found."),
                                    );
                                    None
                                }
                            }
                        }
                    }
                }
            };
            chain.push(Step { transform, predicate });
        }
        // predicates declared but unused are still validated
        for p in &predicate_aliases {
            let ptype_key = format!("predicates.{p}.type");
            let used = aliases.iter().any(|a| props.get(&format!("transforms.{a}.predicate")) == Some(p));
            if used {
                continue;
            }
            match props.get(&ptype_key) {
                None => errors.add(
                    &ptype_key,
                    format!("Missing required configuration \"{ptype_key}\" which has no default value."),
                ),
                Some(pclass) => {
                    let pclass = full_class(pclass);
                    let pprefix = format!("predicates.{p}.");
                    let mut pcfg = Cfg { props: props.with_prefix(&pprefix), prefix: pprefix, errors: &mut errors };
                    if create_predicate(&pclass, &mut pcfg).is_none() {
                        errors.add(&ptype_key, format!("Invalid value {pclass} for configuration {ptype_key}: Class {pclass} could not be found."));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Transforms { chain })
        } else {
            Err(errors)
        }
    }

    /// Applies the chain; `None` when a transform dropped the record.
    pub fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        for step in &self.chain {
            if let Some((predicate, negate)) = &step.predicate {
                if predicate.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record)? {
                Some(next) => record = next,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }

    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }
}

/// The transform `class` (full name), configured from `cfg` (errors added
/// there); `None` when no transform has that name.
fn create_transform(class: &str, cfg: &mut Cfg) -> Option<Box<dyn Transform>> {
    let short = class.strip_prefix(T)?;
    let (name, part) = match short.split_once('$') {
        Some((n, "Key")) => (n, Some(fields::Part::Key)),
        Some((n, "Value")) => (n, Some(fields::Part::Value)),
        Some(_) => return None,
        None => (short, None),
    };
    Some(match (name, part) {
        ("InsertField", Some(p)) => Box::new(fields::InsertField::new(p, cfg)),
        ("ReplaceField", Some(p)) => Box::new(fields::ReplaceField::new(p, cfg)),
        ("MaskField", Some(p)) => Box::new(fields::MaskField::new(p, cfg)),
        ("ExtractField", Some(p)) => Box::new(fields::ExtractField::new(p, cfg)),
        ("HoistField", Some(p)) => Box::new(fields::HoistField::new(p, cfg)),
        ("Cast", Some(p)) => Box::new(fields::Cast::new(p, cfg)),
        ("ValueToKey", None) => Box::new(fields::ValueToKey::new(cfg)),
        ("TimestampRouter", None) => Box::new(routing::TimestampRouter::new(cfg)),
        ("RegexRouter", None) => Box::new(routing::RegexRouter::new(cfg)),
        ("Filter", None) => Box::new(routing::Filter),
        _ => return None,
    })
}

/// The predicate `class` (full name); `None` when no predicate has that name.
fn create_predicate(class: &str, cfg: &mut Cfg) -> Option<Box<dyn Predicate>> {
    Some(match class.strip_prefix(T)?.strip_prefix("predicates.")? {
        "TopicNameMatches" => Box::new(routing::TopicNameMatches::new(cfg)),
        "HasHeaderKey" => Box::new(routing::HasHeaderKey::new(cfg)),
        "RecordIsTombstone" => Box::new(routing::RecordIsTombstone),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Header, JsonMap, Schema, SchemaType, Value};

    pub(crate) fn props(pairs: &[(&str, &str)]) -> Props {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn record(topic: &str, value: Value) -> Record {
        Record::source(topic, JsonMap::new(), JsonMap::new(), Some(Schema::of(SchemaType::String)), value)
    }

    #[test]
    fn a_chain_with_a_predicate_and_negation() {
        let t = Transforms::from_config(&props(&[
            ("transforms", "hoist,add,route,drop"),
            ("transforms.hoist.type", "org.apache.kafka.connect.transforms.HoistField$Value"),
            ("transforms.hoist.field", "line"),
            ("transforms.add.type", "org.apache.kafka.connect.transforms.InsertField$Value"),
            ("transforms.add.static.field", "src"),
            ("transforms.add.static.value", "file"),
            ("transforms.route.type", "RegexRouter"),
            ("transforms.route.regex", "raw-(.*)"),
            ("transforms.route.replacement", "clean-$1"),
            ("transforms.drop.type", "org.apache.kafka.connect.transforms.Filter"),
            ("transforms.drop.predicate", "isSkip"),
            ("predicates", "isSkip"),
            ("predicates.isSkip.type", "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"),
            ("predicates.isSkip.pattern", ".*skip.*"),
        ]))
        .unwrap();
        let out = t.apply(record("raw-a", Value::String("hello".into()))).unwrap().unwrap();
        assert_eq!(out.topic, "clean-a");
        assert_eq!(
            out.value,
            Value::Struct(vec![
                ("line".into(), Value::String("hello".into())),
                ("src".into(), Value::String("file".into()))
            ])
        );
        assert_eq!(out.value_schema.as_ref().unwrap().fields.len(), 2);
        assert!(t.apply(record("raw-skip", Value::String("x".into()))).unwrap().is_none());

        let negated = Transforms::from_config(&props(&[
            ("transforms", "drop"),
            ("transforms.drop.type", "Filter"),
            ("transforms.drop.predicate", "h"),
            ("transforms.drop.negate", "true"),
            ("predicates", "h"),
            ("predicates.h.type", "HasHeaderKey"),
            ("predicates.h.name", "keep"),
        ]))
        .unwrap();
        let mut keep = record("t", Value::String("x".into()));
        keep.headers.push(Header { key: "keep".into(), schema: None, value: Value::Null });
        assert!(negated.apply(keep).unwrap().is_some());
        assert!(negated.apply(record("t", Value::String("x".into()))).unwrap().is_none());

        let tomb = Transforms::from_config(&props(&[
            ("transforms", "drop"),
            ("transforms.drop.type", "Filter"),
            ("transforms.drop.predicate", "t"),
            ("predicates", "t"),
            ("predicates.t.type", "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone"),
        ]))
        .unwrap();
        assert!(tomb.apply(record("t", Value::Null)).unwrap().is_none());
        assert!(tomb.apply(record("t", Value::String("x".into()))).unwrap().is_some());
    }

    #[test]
    fn config_errors_are_keyed_by_the_offending_key() {
        let errors = Transforms::from_config(&props(&[
            ("transforms", "a,b,c,d"),
            ("transforms.a.type", "x"),
            ("transforms.c.type", "org.apache.kafka.connect.transforms.RegexRouter"),
            ("transforms.d.type", "Filter"),
            ("transforms.d.predicate", "nope"),
        ]))
        .err()
        .unwrap();
        assert_eq!(
            errors.errors["transforms.a.type"],
            vec!["Invalid value x for configuration transforms.a.type: Class x could not be found."]
        );
        assert_eq!(
            errors.errors["transforms.b.type"],
            vec!["Missing required configuration \"transforms.b.type\" which has no default value."]
        );
        assert_eq!(
            errors.errors["transforms.c.regex"],
            vec!["Missing required configuration \"transforms.c.regex\" which has no default value."]
        );
        assert!(errors.errors.contains_key("transforms.c.replacement"));
        assert!(errors.errors.contains_key("transforms.d.predicate"));
        let errors = Transforms::from_config(&props(&[
            ("transforms", "a"),
            ("transforms.a.type", "RegexRouter"),
            ("transforms.a.regex", "(unclosed"),
            ("transforms.a.replacement", "x"),
            ("predicates", "p"),
            ("predicates.p.type", "TopicNameMatches"),
        ]))
        .err()
        .unwrap();
        assert!(errors.errors.contains_key("transforms.a.regex"), "{errors:?}");
        assert!(errors.errors.contains_key("predicates.p.pattern"), "{errors:?}");
        assert!(Transforms::from_config(&Props::new()).unwrap().is_empty());
    }
}
