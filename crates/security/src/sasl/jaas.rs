//! Kafka's JAAS configuration syntax, as `sasl.jaas.config` values carry it:
//!
//! ```text
//! <LoginModule class> <required|requisite|sufficient|optional> [<key>=<value> ...];
//! ```
//!
//! Values are bare words (letters, digits and `-_.$/:@+*`) or double-quoted
//! strings in which `\"` and `\\` (and any `\x`) stand for the character
//! after the backslash. Several login modules may follow one another, each
//! ended by `;`. Comments (`//`, `/* */`) are allowed, as Java's
//! `StreamTokenizer`-based parser allows them.

use std::collections::BTreeMap;

use crate::SecurityError;

/// JAAS control flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFlag {
    Required,
    Requisite,
    Sufficient,
    Optional,
}

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub flag: ControlFlag,
    /// Options in the order given (a repeated key keeps its last value).
    pub options: BTreeMap<String, String>,
}

/// The login module of PLAIN (`user_<name>="<password>"` options list a
/// broker's users; `username`/`password` its own login).
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// The login module of SCRAM (`username`/`password`).
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

impl LoginModule {
    /// The `user_<name>` options: PLAIN's users and their passwords.
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .filter(|(name, _)| !name.is_empty())
            .collect()
    }

    /// The `username` and `password` options: how this node logs in to others.
    pub fn login(&self) -> Option<(String, String)> {
        Some((self.options.get("username")?.clone(), self.options.get("password")?.clone()))
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || "-_.$/:@+*#%&!?~^,<>[]{}|'`".contains(c)
}

fn tokenize(text: &str) -> Result<Vec<Token>, SecurityError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '=' {
            chars.next();
            tokens.push(Token::Equals);
        } else if c == ';' {
            chars.next();
            tokens.push(Token::Semicolon);
        } else if c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err(SecurityError::new("JAAS config: unterminated quoted value")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        None => return Err(SecurityError::new("JAAS config: unterminated quoted value")),
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some(other) => value.push(other),
                    },
                    Some(other) => value.push(other),
                }
            }
            tokens.push(Token::Quoted(value));
        } else if c == '/' && text_starts(&chars, "//") {
            while chars.next().is_some_and(|c| c != '\n') {}
        } else if c == '/' && text_starts(&chars, "/*") {
            chars.next();
            chars.next();
            let mut prev = ' ';
            loop {
                match chars.next() {
                    None => return Err(SecurityError::new("JAAS config: unterminated comment")),
                    Some('/') if prev == '*' => break,
                    Some(c) => prev = c,
                }
            }
        } else if is_word_char(c) {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if !is_word_char(c) {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        } else {
            return Err(SecurityError::new(format!("JAAS config: unexpected character {c:?}")));
        }
    }
    Ok(tokens)
}

fn text_starts(chars: &std::iter::Peekable<std::str::Chars<'_>>, prefix: &str) -> bool {
    chars.clone().take(prefix.len()).eq(prefix.chars())
}

/// Parses a `sasl.jaas.config` value into its login modules (at least one).
pub fn parse(text: &str) -> Result<Vec<LoginModule>, SecurityError> {
    let mut tokens = tokenize(text)?.into_iter().peekable();
    let mut modules = Vec::new();
    while let Some(token) = tokens.next() {
        let Token::Word(class) = token else {
            return Err(SecurityError::new("JAAS config: expected a login module class name"));
        };
        let flag = match tokens.next() {
            Some(Token::Word(flag)) => match flag.to_ascii_lowercase().as_str() {
                "required" => ControlFlag::Required,
                "requisite" => ControlFlag::Requisite,
                "sufficient" => ControlFlag::Sufficient,
                "optional" => ControlFlag::Optional,
                other => {
                    return Err(SecurityError::new(format!(
                        "JAAS config: invalid control flag {other:?} after {class} (required, requisite, sufficient or optional)"
                    )))
                }
            },
            _ => return Err(SecurityError::new(format!("JAAS config: expected a control flag after {class}"))),
        };
        let mut options = BTreeMap::new();
        loop {
            match tokens.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    if tokens.next() != Some(Token::Equals) {
                        return Err(SecurityError::new(format!("JAAS config: expected = after option {key}")));
                    }
                    let value = match tokens.next() {
                        Some(Token::Word(v) | Token::Quoted(v)) => v,
                        _ => return Err(SecurityError::new(format!("JAAS config: expected a value for option {key}"))),
                    };
                    options.insert(key, value);
                }
                None => {
                    return Err(SecurityError::new(format!("JAAS config: the entry of {class} does not end with ;")))
                }
                Some(_) => return Err(SecurityError::new(format!("JAAS config: expected an option name in {class}"))),
            }
        }
        modules.push(LoginModule { class, flag, options });
    }
    if modules.is_empty() {
        return Err(SecurityError::new("JAAS config: no login module"));
    }
    Ok(modules)
}

/// Parses a value that must hold exactly one login module, as Kafka
/// requires of `sasl.jaas.config`.
pub fn parse_one(text: &str) -> Result<LoginModule, SecurityError> {
    let mut modules = parse(text)?;
    if modules.len() != 1 {
        return Err(SecurityError::new(format!(
            "JAAS config: must contain exactly one login module, found {}",
            modules.len()
        )));
    }
    Ok(modules.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_plain_users() {
        let m = parse_one(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(m.class, PLAIN_LOGIN_MODULE);
        assert_eq!(m.flag, ControlFlag::Required);
        assert_eq!(m.login(), Some(("admin".into(), "admin-secret".into())));
        let users = m.plain_users();
        assert_eq!(users.len(), 2);
        assert_eq!(users["alice"], "alice-secret");
    }

    #[test]
    fn quotes_escapes_bare_words_and_comments() {
        let m = parse_one(
            "x.Y optional /* c */ a=bare-value_1.2 b=\"with \\\"quote\\\" and \\\\ ; = spaces\" // end\n c=\"\";",
        )
        .unwrap();
        assert_eq!(m.flag, ControlFlag::Optional);
        assert_eq!(m.options["a"], "bare-value_1.2");
        assert_eq!(m.options["b"], "with \"quote\" and \\ ; = spaces");
        assert_eq!(m.options["c"], "");
    }

    #[test]
    fn several_modules_and_errors() {
        let all = parse("a.B required; c.D sufficient k=v;").unwrap();
        assert_eq!(all.len(), 2);
        assert!(parse_one("a.B required; c.D sufficient;").is_err());
        for bad in [
            "",
            "a.B",
            "a.B required",
            "a.B sometimes;",
            "a.B required k;",
            "a.B required k=;",
            "a.B required k=\"open;",
            "a.B required k=v",
            "= required;",
            "a.B required k=v /* open",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
