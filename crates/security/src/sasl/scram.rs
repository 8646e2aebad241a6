//! SCRAM (RFC 5802) credentials as Kafka stores them: per user and
//! mechanism a salt, a stored key, a server key and an iteration count,
//! never the password. Also the pieces of a client's first message that
//! the exchange itself does not interpret (Kafka's `tokenauth=true`
//! extension).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};

use crate::SecurityError;

/// Kafka's bounds on a SCRAM credential's iterations (UNACCEPTABLE_CREDENTIAL
/// outside them).
pub const ITERATIONS_MIN: i32 = 4096;
pub const ITERATIONS_MAX: i32 = 16384;
/// Salt length of generated credentials (Kafka uses 32-byte random salts
/// for the "salt" of `kafka-storage --add-scram`... and the admin client).
pub const SALT_BYTES: usize = 32;

/// The SCRAM mechanisms, with Kafka's `ScramMechanism` type codes (as
/// Describe/AlterUserScramCredentials carry them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Kafka's type code: 1 for SHA-256, 2 for SHA-512 (0 is UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }
}

/// A stored SCRAM credential (Kafka's ScramCredential).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl ScramCredential {
    /// Derives the credential of `password` (RFC 5802: SaltedPassword =
    /// Hi(password, salt, i); StoredKey = H(HMAC(SaltedPassword, "Client
    /// Key")); ServerKey = HMAC(SaltedPassword, "Server Key")).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: i32,
    ) -> Self {
        let (client_key, server_key, stored_key) = match mechanism {
            ScramMechanism::Sha256 => {
                let client_key = hmac::<Hmac<Sha256>>(salted_password, b"Client Key");
                let server_key = hmac::<Hmac<Sha256>>(salted_password, b"Server Key");
                let stored = Sha256::digest(&client_key).to_vec();
                (client_key, server_key, stored)
            }
            ScramMechanism::Sha512 => {
                let client_key = hmac::<Hmac<Sha512>>(salted_password, b"Client Key");
                let server_key = hmac::<Hmac<Sha512>>(salted_password, b"Server Key");
                let stored = Sha512::digest(&client_key).to_vec();
                (client_key, server_key, stored)
            }
        };
        drop(client_key);
        ScramCredential { salt: salt.to_vec(), stored_key, server_key, iterations }
    }

    /// SaltedPassword = Hi(password, salt, iterations) (PBKDF2 with the
    /// mechanism's HMAC).
    pub fn salted_password(mechanism: ScramMechanism, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let rounds = iterations.max(1) as u32;
        match mechanism {
            ScramMechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out);
                out
            }
        }
    }

    /// The credential of `password` with `salt` (a random one if `None`).
    pub fn generate(mechanism: ScramMechanism, password: &str, salt: Option<&[u8]>, iterations: i32) -> Self {
        let salt = match salt {
            Some(s) => s.to_vec(),
            None => random_salt(),
        };
        let salted = Self::salted_password(mechanism, password.as_bytes(), &salt, iterations);
        Self::from_salted_password(mechanism, &salted, &salt, iterations)
    }
}

pub fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; SALT_BYTES];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// Checks Kafka's rules for a new credential (AlterUserScramCredentials'
/// UNACCEPTABLE_CREDENTIAL): a name, iterations within bounds.
pub fn check_acceptable(user: &str, iterations: i32) -> Result<(), String> {
    if user.is_empty() {
        return Err("Username must not be empty".into());
    }
    if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
        return Err(format!("Iterations {iterations} must be between {ITERATIONS_MIN} and {ITERATIONS_MAX}"));
    }
    Ok(())
}

/// The attributes of a SCRAM client-first message after the nonce:
/// extensions such as Kafka's `tokenauth=true` (delegation tokens).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScramExtensions(pub Vec<(String, String)>);

impl ScramExtensions {
    /// The extensions of a client-first message
    /// (`gs2-header n=user,r=nonce[,ext=value...]`); none if it is not one.
    pub fn of_client_first(message: &[u8]) -> Self {
        let Ok(text) = std::str::from_utf8(message) else { return Self::default() };
        // gs2 header: cbind flag, authzid, then the bare message
        let mut parts = text.splitn(3, ',');
        let (Some(_), Some(_), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return Self::default();
        };
        Self(
            bare.split(',')
                .skip(2)
                .filter_map(|attr| attr.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Kafka's delegation-token authentication (`tokenauth=true`).
    pub fn token_auth(&self) -> bool {
        self.get("tokenauth").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The user name of a client-first message (`n=`, with `=2C` and `=3D`
/// decoded as RFC 5802 says).
pub fn client_first_username(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    let bare = text.splitn(3, ',').nth(2)?;
    let name = bare.split(',').next()?.strip_prefix("n=")?;
    Some(name.replace("=2C", ",").replace("=3D", "="))
}

/// `kafka-storage format --add-scram` syntax:
/// `SCRAM-SHA-512=[name=alice,password=alice-secret]`, also with
/// `salt=<base64>`, `iterations=<n>` (or `saltedpassword=<base64>` with a salt).
#[derive(Clone, PartialEq, Eq)]
pub struct AddScram {
    pub mechanism: ScramMechanism,
    pub user: String,
    pub credential: ScramCredential,
}

impl std::fmt::Debug for AddScram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AddScram({} {})", self.mechanism.name(), self.user)
    }
}

/// Default iterations of `--add-scram` (Kafka's: 4096).
pub const ADD_SCRAM_DEFAULT_ITERATIONS: i32 = 4096;

impl AddScram {
    pub fn parse(text: &str) -> Result<Self, SecurityError> {
        use base64::Engine;
        let bad = |why: &str| SecurityError::new(format!("--add-scram {text:?}: {why}"));
        let (mechanism, rest) =
            text.split_once('=').ok_or_else(|| bad("expected MECHANISM=[name=...,password=...]"))?;
        let mechanism = ScramMechanism::parse(mechanism.trim())
            .ok_or_else(|| bad("the mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512"))?;
        let inner = rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| bad("the attributes must be inside [...]"))?;
        let (mut name, mut password, mut salt, mut iterations, mut salted) = (None, None, None, None, None);
        for attr in inner.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let (key, value) = attr.split_once('=').ok_or_else(|| bad("attributes are key=value"))?;
            let value = value.trim().trim_matches('"').to_string();
            let b64 = |v: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v))
                    .map_err(|_| bad("salt and saltedpassword are base64"))
            };
            match key.trim() {
                "name" => name = Some(value),
                "password" => password = Some(value),
                "salt" => salt = Some(b64(&value)?),
                "saltedpassword" => salted = Some(b64(&value)?),
                "iterations" => iterations = Some(value.parse::<i32>().map_err(|_| bad("iterations is a number"))?),
                other => return Err(bad(&format!("unknown attribute {other}"))),
            }
        }
        let user = name.ok_or_else(|| bad("name= is missing"))?;
        let iterations = iterations.unwrap_or(ADD_SCRAM_DEFAULT_ITERATIONS);
        check_acceptable(&user, iterations).map_err(|e| bad(&e))?;
        let credential = match (password, salted) {
            (Some(p), None) => ScramCredential::generate(mechanism, &p, salt.as_deref(), iterations),
            (None, Some(salted)) => {
                let salt = salt.ok_or_else(|| bad("saltedpassword needs salt="))?;
                ScramCredential::from_salted_password(mechanism, &salted, &salt, iterations)
            }
            _ => return Err(bad("give either password= or saltedpassword=")),
        };
        Ok(AddScram { mechanism, user, credential })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_sha256_example() {
        // RFC 7677: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let c = ScramCredential::generate(ScramMechanism::Sha256, "pencil", Some(&salt), 4096);
        // ServerSignature of the RFC's exchange checks server_key; here
        // compare against the known StoredKey/ServerKey derivation shape
        assert_eq!(c.stored_key.len(), 32);
        assert_eq!(c.server_key.len(), 32);
        assert_eq!(c, ScramCredential::generate(ScramMechanism::Sha256, "pencil", Some(&salt), 4096));
        assert_ne!(c, ScramCredential::generate(ScramMechanism::Sha256, "pencil2", Some(&salt), 4096));
        let c512 = ScramCredential::generate(ScramMechanism::Sha512, "pencil", None, 4096);
        assert_eq!(c512.salt.len(), SALT_BYTES);
        assert_eq!(c512.stored_key.len(), 64);
    }

    #[test]
    fn client_first_parts() {
        let m = b"n,,n=al=2Cice,r=abc,tokenauth=true";
        assert_eq!(client_first_username(m).as_deref(), Some("al,ice"));
        assert!(ScramExtensions::of_client_first(m).token_auth());
        assert!(!ScramExtensions::of_client_first(b"n,,n=a,r=b").token_auth());
        assert_eq!(ScramExtensions::of_client_first(b"\xff\xfe"), ScramExtensions::default());
        assert_eq!(client_first_username(b"garbage"), None);
    }

    #[test]
    fn add_scram_syntax() {
        let a = AddScram::parse("SCRAM-SHA-512=[name=admin,password=admin-secret]").unwrap();
        assert_eq!((a.mechanism, a.user.as_str(), a.credential.iterations), (ScramMechanism::Sha512, "admin", 4096));
        let a =
            AddScram::parse("SCRAM-SHA-256=[name=\"bob\",password=\"x\",salt=\"c2FsdA==\",iterations=8192]").unwrap();
        assert_eq!(a.credential.salt, b"salt");
        assert_eq!(a.credential.iterations, 8192);
        assert_eq!(a.credential, ScramCredential::generate(ScramMechanism::Sha256, "x", Some(b"salt"), 8192));
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=,password=b]",
            "SCRAM-SHA-256=[name=a,password=b,color=red]",
        ] {
            assert!(AddScram::parse(bad).is_err(), "{bad}");
        }
    }
}
