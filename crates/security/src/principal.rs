//! Who a connection belongs to, as Kafka names it: `User:ANONYMOUS` until
//! something authenticates it; with mutual TLS, the client certificate's
//! subject in RFC 2253 form (`CN=alice,OU=eng,O=acme`, as Java's
//! `X500Principal.getName()` writes it), mapped by
//! `ssl.principal.mapping.rules`.
//!
//! Mapping rules are Kafka's: a comma-separated list of `DEFAULT` (the
//! distinguished name as it is) and `RULE:pattern/replacement/[LU]`; the
//! first rule whose pattern matches the whole name gives the principal
//! (`$1` refers to a group; `L`/`U` lower- or upper-case the result); a
//! name no rule matches is refused.

use std::fmt;

use regex::Regex;

use crate::SecurityError;

/// Kafka's `KafkaPrincipal`: a type (always `User` here) and a name.
#[derive(Debug, Clone)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
    /// Authenticated with a delegation token (Kafka's
    /// `tokenAuthenticated`); not part of its identity, as in Kafka.
    pub token_authenticated: bool,
}

impl PartialEq for KafkaPrincipal {
    fn eq(&self, other: &Self) -> bool {
        self.principal_type == other.principal_type && self.name == other.name
    }
}

impl Eq for KafkaPrincipal {}

impl std::hash::Hash for KafkaPrincipal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.principal_type.hash(state);
        self.name.hash(state);
    }
}

impl KafkaPrincipal {
    pub const USER_TYPE: &'static str = "User";

    pub fn user(name: impl Into<String>) -> Self {
        Self { principal_type: Self::USER_TYPE.to_string(), name: name.into(), token_authenticated: false }
    }

    /// `Type:name` as Kafka's `SecurityUtils.parseKafkaPrincipal` reads it.
    pub fn parse(text: &str) -> Option<Self> {
        let (principal_type, name) = text.split_once(':')?;
        Some(Self { principal_type: principal_type.to_string(), name: name.to_string(), token_authenticated: false })
    }

    /// `User:ANONYMOUS`: no certificate and no SASL.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace { full: Regex, pattern: Regex, replacement: String, lower: bool, upper: bool },
}

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<Self, SecurityError> {
        let invalid = |why: &str| SecurityError::new(format!("ssl.principal.mapping.rules={rules}: {why}"));
        let mut parsed = Vec::new();
        let mut rest = rules.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) =
                    until_slash(after).ok_or_else(|| invalid("a RULE needs pattern/replacement/"))?;
                let (replacement, after) =
                    until_slash(after).ok_or_else(|| invalid("a RULE needs pattern/replacement/"))?;
                let (lower, upper, after) = match after.chars().next() {
                    Some('L') => (true, false, &after[1..]),
                    Some('U') => (false, true, &after[1..]),
                    _ => (false, false, after),
                };
                let pattern = pattern.replace("\\/", "/");
                let full = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| invalid(&e.to_string()))?;
                let pattern = Regex::new(&pattern).map_err(|e| invalid(&e.to_string()))?;
                parsed.push(Rule::Replace { full, pattern, replacement: java_replacement(replacement), lower, upper });
                rest = after;
            } else {
                return Err(invalid("expected DEFAULT or RULE:pattern/replacement/[LU]"));
            }
            rest = rest.trim_start_matches([' ', '\t']);
            match rest.chars().next() {
                None => {}
                Some(',' | '\n') => rest = rest[1..].trim_start(),
                Some(_) => return Err(invalid(&format!("unexpected `{rest}`"))),
            }
        }
        if parsed.is_empty() {
            return Err(invalid("no rules"));
        }
        Ok(Self { rules: parsed })
    }

    /// The principal name for a distinguished name, or an error when no
    /// rule applies (the connection is refused, as in Kafka).
    pub fn map(&self, dn: &str) -> Result<String, SecurityError> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace { full, pattern, replacement, lower, upper } => {
                    if !full.is_match(dn) {
                        continue;
                    }
                    let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                    return Ok(if *lower {
                        name.to_lowercase()
                    } else if *upper {
                        name.to_uppercase()
                    } else {
                        name
                    });
                }
            }
        }
        Err(SecurityError::new(format!("no ssl.principal.mapping.rules rule applies to {dn}")))
    }
}

/// The text up to the first unescaped `/`, and what follows it.
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// A Java `replaceAll` replacement (`$1` a group, `\x` a literal x) in the
/// regex crate's syntax (`${1}`, `$$`).
pub fn java_replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 4);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// The subject of a DER certificate in RFC 2253 form, as Java's
/// `X500Principal.getName()` gives it (Kafka's input to the mapping rules):
/// the most specific RDN first, known attribute keywords, other attributes
/// as `OID=#hex` of their DER value.
pub fn subject_dn(certificate_der: &[u8]) -> Result<String, SecurityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate_der)
        .map_err(|e| SecurityError::new(format!("unreadable client certificate: {e}")))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    match (keyword(&oid), attr.as_str()) {
                        (Some(key), Ok(value)) => format!("{key}={}", escape_rfc2253(value)),
                        _ => format!("{oid}=#{}", hex_der(attr.attr_value())),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253's attribute keywords (those Java's RFC 2253 output uses).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Hex of an attribute value's DER encoding (tag, length, content).
fn hex_der(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> String {
    let mut der = vec![value.header.tag().0.min(30) as u8 | if value.header.is_constructed() { 0x20 } else { 0 }];
    let len = value.data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(value.data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rules: &str, dn: &str) -> Result<String, SecurityError> {
        PrincipalMapper::parse(rules)?.map(dn)
    }

    #[test]
    fn default_keeps_the_distinguished_name() {
        assert_eq!(map("DEFAULT", "CN=alice,OU=eng,O=acme").unwrap(), "CN=alice,OU=eng,O=acme");
    }

    // The cases of Kafka's SslPrincipalMapperTest.
    #[test]
    fn rules_as_kafka_applies_them() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT";
        assert_eq!(map(rules, "CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(), "Duke");
        assert_eq!(map(rules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(), "duke@sme");
        assert_eq!(map(rules, "cn=duke,ou=JavaSoft,o=Sun Microsystems").unwrap(), "duke");
        assert_eq!(map(rules, "OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(), "OU=JavaSoft,O=Sun Microsystems,C=US");
        assert_eq!(map("RULE:^CN=(.*),OU=.*$/$1/U", "CN=duke,OU=x").unwrap(), "DUKE");
        // a slash escaped in the pattern and the replacement
        assert_eq!(map(r"RULE:^CN=(.*)\/(.*)$/$1\/$2/", "CN=a/b").unwrap(), "a/b");
        // whitespace and newlines between rules
        assert_eq!(map("RULE:^CN=(.*)$/$1/ ,\n  DEFAULT", "CN=x").unwrap(), "x");
    }

    #[test]
    fn no_matching_rule_refuses() {
        let e = map("RULE:^CN=(.*),OU=Users$/$1/", "CN=x,OU=Admins").unwrap_err();
        assert!(e.0.contains("no ssl.principal.mapping.rules rule"), "{e}");
    }

    #[test]
    fn bad_rules_are_refused() {
        for rules in ["", "RULE:abc", "RULE:^(.*$/x/", "DEFAULT RULE:a/b/", "NOPE", "DEFAULT,,"] {
            assert!(PrincipalMapper::parse(rules).is_err(), "{rules:?} parsed");
        }
    }

    #[test]
    fn rfc2253_escapes() {
        assert_eq!(escape_rfc2253("a,b+c"), r"a\,b\+c");
        assert_eq!(escape_rfc2253(" #x "), r"\ #x\ ");
        assert_eq!(KafkaPrincipal::anonymous().to_string(), "User:ANONYMOUS");
    }
}
