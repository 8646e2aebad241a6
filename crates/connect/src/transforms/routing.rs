//! Routing transforms and the predicates: TimestampRouter (`topic.format`
//! with `${topic}`/`${timestamp}`, `timestamp.format` in Java's
//! SimpleDateFormat letters, UTC), RegexRouter (`regex` matching the whole
//! topic, `replacement` with `$1`), Filter (drops the record; used under a
//! predicate), TopicNameMatches (`pattern`), HasHeaderKey (`name`),
//! RecordIsTombstone.

use super::{Cfg, Predicate, Transform};
use crate::data::calendar::{civil_from_days, days_from_civil, MONTHS};
use crate::data::Record;
use crate::error::{ConnectError, Result};

/// `Filter`: drops every record it is applied to.
pub struct Filter;

impl Transform for Filter {
    fn apply(&self, _record: Record) -> Result<Option<Record>> {
        Ok(None)
    }
}

/// `RegexRouter`.
pub struct RegexRouter {
    regex: Option<regex::Regex>,
    replacement: String,
}

impl RegexRouter {
    pub fn new(cfg: &mut Cfg) -> RegexRouter {
        let regex = cfg.required("regex").and_then(|r| cfg.full_regex("regex", &r));
        let replacement =
            vltava_security::principal::java_replacement(&cfg.required("replacement").unwrap_or_default());
        RegexRouter { regex, replacement }
    }
}

impl Transform for RegexRouter {
    fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        if let Some(caps) = self.regex.as_ref().and_then(|r| r.captures(&record.topic)) {
            let mut topic = String::new();
            caps.expand(&self.replacement, &mut topic);
            record.topic = topic;
        }
        Ok(Some(record))
    }
}

/// `TimestampRouter`.
pub struct TimestampRouter {
    topic_format: String,
    timestamp_format: Vec<Token>,
}

/// A SimpleDateFormat pattern's parts.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Literal(String),
    Field(char, usize),
}

/// Parses a SimpleDateFormat pattern (the letters y M d H h k K a m s S E D; quoted text).
fn parse_date_format(pattern: &str) -> std::result::Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push(Token::Literal("'".into()));
                i += 2;
                continue;
            }
            let mut lit = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("Unterminated quote".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        lit.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Literal(lit));
        } else if c.is_ascii_alphabetic() {
            if !"yMdHhkKamsSED".contains(c) {
                return Err(format!("Illegal pattern character '{c}'"));
            }
            let mut n = 0;
            while chars.get(i) == Some(&c) {
                n += 1;
                i += 1;
            }
            out.push(Token::Field(c, n));
        } else {
            out.push(Token::Literal(c.to_string()));
            i += 1;
        }
    }
    Ok(out)
}

/// Formats epoch milliseconds (UTC) with a parsed SimpleDateFormat pattern.
fn format_date(tokens: &[Token], millis: i64) -> String {
    const DAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, ms) =
        (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let num = |v: i64, n: usize| format!("{v:0n$}");
    let mut out = String::new();
    for t in tokens {
        match t {
            Token::Literal(s) => out.push_str(s),
            Token::Field(c, n) => out.push_str(&match c {
                'y' if *n == 2 => num(year.rem_euclid(100), 2),
                'y' => num(year, *n),
                'M' if *n >= 4 => MONTHS[month as usize - 1].to_string(),
                'M' if *n == 3 => MONTHS[month as usize - 1][..3].to_string(),
                'M' => num(month.into(), *n),
                'd' => num(day.into(), *n),
                'D' => num(day_of_year, *n),
                'H' => num(hour, *n),
                'k' => num(if hour == 0 { 24 } else { hour }, *n),
                'K' => num(hour % 12, *n),
                'h' => num(if hour % 12 == 0 { 12 } else { hour % 12 }, *n),
                'a' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
                'm' => num(minute, *n),
                's' => num(second, *n),
                'S' => num(ms, *n),
                'E' => {
                    let name = DAYS[days.rem_euclid(7) as usize];
                    if *n >= 4 {
                        name.to_string()
                    } else {
                        name[..3].to_string()
                    }
                }
                _ => String::new(),
            }),
        }
    }
    out
}

impl TimestampRouter {
    pub fn new(cfg: &mut Cfg) -> TimestampRouter {
        let topic_format = cfg.string_or("topic.format", "${topic}-${timestamp}");
        let pattern = cfg.string_or("timestamp.format", "yyyyMMdd");
        let timestamp_format = match parse_date_format(&pattern) {
            Ok(t) => t,
            Err(e) => {
                let k = cfg.key("timestamp.format");
                cfg.error("timestamp.format", format!("Invalid value {pattern} for configuration {k}: {e}"));
                Vec::new()
            }
        };
        TimestampRouter { topic_format, timestamp_format }
    }
}

impl Transform for TimestampRouter {
    fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        let Some(ts) = record.timestamp else {
            return Err(ConnectError::data(format!(
                "Timestamp missing on record: topic {} partition {:?}",
                record.topic, record.partition
            )));
        };
        let formatted = format_date(&self.timestamp_format, ts);
        record.topic = self.topic_format.replace("${topic}", &record.topic).replace("${timestamp}", &formatted);
        Ok(Some(record))
    }
}

/// `TopicNameMatches`: the whole topic name matches `pattern`.
pub struct TopicNameMatches {
    pattern: Option<regex::Regex>,
}

impl TopicNameMatches {
    pub fn new(cfg: &mut Cfg) -> TopicNameMatches {
        let pattern = cfg.required("pattern").and_then(|p| {
            regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| {
                    let k = cfg.key("pattern");
                    cfg.error(
                        "pattern",
                        format!("Invalid value {p} for configuration {k}: entry must be a Java-compatible regular expression: {e}"),
                    );
                })
                .ok()
        });
        TopicNameMatches { pattern }
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &Record) -> bool {
        self.pattern.as_ref().is_some_and(|p| p.is_match(&record.topic))
    }
}

/// `HasHeaderKey`: a header named `name` exists.
pub struct HasHeaderKey {
    name: String,
}

impl HasHeaderKey {
    pub fn new(cfg: &mut Cfg) -> HasHeaderKey {
        HasHeaderKey { name: cfg.required("name").unwrap_or_default() }
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &Record) -> bool {
        record.headers.iter().any(|h| h.key == self.name)
    }
}

/// `RecordIsTombstone`: the value is null.
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &Record) -> bool {
        record.value.is_null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigErrors, Props};
    use crate::data::{JsonMap, Value};

    fn cfg_of<T>(pairs: &[(&str, &str)], f: impl FnOnce(&mut Cfg) -> T) -> (T, ConfigErrors) {
        let mut errors = ConfigErrors::default();
        let props: Props = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let t = f(&mut Cfg { props, prefix: "transforms.r.".into(), errors: &mut errors });
        (t, errors)
    }

    fn rec(topic: &str, ts: Option<i64>) -> Record {
        let mut r = Record::source(topic, JsonMap::new(), JsonMap::new(), None, Value::Null);
        r.timestamp = ts;
        r
    }

    #[test]
    fn regex_router_replaces_whole_matches_only() {
        let (r, e) = cfg_of(&[("regex", "(.*)-raw"), ("replacement", "$1abc-clean")], RegexRouter::new);
        assert!(e.is_empty());
        assert_eq!(r.apply(rec("orders-raw", None)).unwrap().unwrap().topic, "ordersabc-clean");
        assert_eq!(r.apply(rec("orders-raw-x", None)).unwrap().unwrap().topic, "orders-raw-x");
        let (r, _) = cfg_of(&[("regex", "a"), ("replacement", "cost\\$")], RegexRouter::new);
        assert_eq!(r.apply(rec("a", None)).unwrap().unwrap().topic, "cost$");
    }

    #[test]
    fn timestamp_router_formats_like_simple_date_format() {
        let (r, e) = cfg_of(&[], TimestampRouter::new);
        assert!(e.is_empty());
        // 2024-02-29T13:05:09.007Z
        let ts = 1_709_211_909_007;
        assert_eq!(r.apply(rec("t", Some(ts))).unwrap().unwrap().topic, "t-20240229");
        let (r, _) = cfg_of(
            &[("topic.format", "${timestamp}_${topic}"), ("timestamp.format", "yyyy-MM-dd'T'HH:mm:ss.SSS yy MMM D E")],
            TimestampRouter::new,
        );
        assert_eq!(r.apply(rec("t", Some(ts))).unwrap().unwrap().topic, "2024-02-29T13:05:09.007 24 Feb 60 Thu_t");
        assert_eq!(format_date(&parse_date_format("yyyyMMdd HH").unwrap(), 0), "19700101 00");
        assert_eq!(format_date(&parse_date_format("yyyyMMdd").unwrap(), -1), "19691231");
        assert!(r.apply(rec("t", None)).is_err());
        let (_, e) = cfg_of(&[("timestamp.format", "yyyyQQ")], TimestampRouter::new);
        assert_eq!(
            e.errors["transforms.r.timestamp.format"],
            vec!["Invalid value yyyyQQ for configuration transforms.r.timestamp.format: Illegal pattern character 'Q'"]
        );
    }
}
