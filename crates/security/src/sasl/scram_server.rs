//! A SCRAM server exchange (RFC 5802) that keeps the client's first
//! message as sent, extensions included. Kafka's delegation-token logins
//! send `tokenauth=true` after the nonce, and the client's proof covers
//! those bytes; rsasl's server rebuilds the message without them, so token
//! logins run here. Credentials come from [`SaslCallbacks`] like any
//! SCRAM user's.

use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};

use super::{Authenticated, SaslCallbacks, SaslStep, ScramExtensions, ScramIdentity, ScramMechanism};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Bytes of the server's part of the nonce.
const SERVER_NONCE_BYTES: usize = 24;

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
    match mechanism {
        ScramMechanism::Sha256 => run::<Hmac<Sha256>>(key, data),
        ScramMechanism::Sha512 => run::<Hmac<Sha512>>(key, data),
    }
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

enum Stage {
    ClientFirst,
    ClientFinal { gs2_header: String, auth_prefix: String, nonce: String, identity: Box<ScramIdentity> },
    Done,
}

/// One SCRAM exchange.
pub struct ScramServerExchange {
    mechanism: ScramMechanism,
    callbacks: Arc<dyn SaslCallbacks>,
    stage: Stage,
}

const INVALID: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism";

impl ScramServerExchange {
    pub fn new(mechanism: ScramMechanism, callbacks: Arc<dyn SaslCallbacks>) -> Self {
        Self { mechanism, callbacks, stage: Stage::ClientFirst }
    }

    fn invalid(&self) -> String {
        format!("{INVALID} {}", self.mechanism.name())
    }

    /// Takes the client's next message; `Err` carries the message for the
    /// client.
    pub fn step(&mut self, message: &[u8]) -> Result<SaslStep, String> {
        let text = std::str::from_utf8(message)
            .map_err(|_| format!("Authentication failed: malformed {} message", self.mechanism.name()))?;
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::ClientFirst => self.client_first(text, message),
            Stage::ClientFinal { gs2_header, auth_prefix, nonce, identity } => {
                self.client_final(text, &gs2_header, &auth_prefix, &nonce, *identity)
            }
            Stage::Done => Err("Authentication failed: the SCRAM exchange is over".into()),
        }
    }

    fn client_first(&mut self, text: &str, message: &[u8]) -> Result<SaslStep, String> {
        let malformed = || format!("Authentication failed: malformed {} message", self.mechanism.name());
        let mut parts = text.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        if cbind != "n" && cbind != "y" {
            return Err(malformed());
        }
        let user = super::scram::client_first_username(message).ok_or_else(malformed)?;
        if !authzid.is_empty() && authzid.strip_prefix("a=") != Some(user.as_str()) {
            return Err(
                "Authentication failed: Client requested an authorization id that is different from username".into()
            );
        }
        let client_nonce = bare.split(',').nth(1).and_then(|a| a.strip_prefix("r=")).ok_or_else(malformed)?;
        if client_nonce.is_empty() {
            return Err(malformed());
        }
        let extensions = ScramExtensions::of_client_first(message);
        let identity =
            self.callbacks.scram_credential(self.mechanism, &user, &extensions).ok_or_else(|| self.invalid())?;
        let mut server_nonce = [0u8; SERVER_NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut server_nonce);
        let nonce = format!("{client_nonce}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(server_nonce));
        let server_first =
            format!("r={nonce},s={},i={}", B64.encode(&identity.credential.salt), identity.credential.iterations);
        self.stage = Stage::ClientFinal {
            gs2_header: format!("{cbind},{authzid},"),
            auth_prefix: format!("{bare},{server_first}"),
            nonce,
            identity: Box::new(identity),
        };
        Ok(SaslStep::Challenge(server_first.into_bytes()))
    }

    fn client_final(
        &mut self,
        text: &str,
        gs2_header: &str,
        auth_prefix: &str,
        nonce: &str,
        identity: ScramIdentity,
    ) -> Result<SaslStep, String> {
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| self.invalid())?;
        let mut attrs = without_proof.split(',');
        let channel = attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or_else(|| self.invalid())?;
        let final_nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or_else(|| self.invalid())?;
        if B64.decode(channel).ok().as_deref() != Some(gs2_header.as_bytes()) || final_nonce != nonce {
            return Err(self.invalid());
        }
        let proof = B64.decode(proof).map_err(|_| self.invalid())?;
        let auth_message = format!("{auth_prefix},{without_proof}");
        let credential = &identity.credential;
        let client_signature = hmac(self.mechanism, &credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(self.invalid());
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        let stored = hash(self.mechanism, &client_key);
        let matches = stored.len() == credential.stored_key.len()
            && stored.iter().zip(&credential.stored_key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !matches {
            return Err(self.invalid());
        }
        let server_signature = hmac(self.mechanism, &credential.server_key, auth_message.as_bytes());
        Ok(SaslStep::Done(Authenticated {
            principal: identity.principal,
            response: format!("v={}", B64.encode(server_signature)).into_bytes(),
            credential_expiry_ms: identity.expiry_ms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::ScramCredential;
    use crate::KafkaPrincipal;

    /// A token store: user "tok" with password "hmac-b64", owned by alice.
    struct Tokens;
    impl SaslCallbacks for Tokens {
        fn scram_credential(&self, m: ScramMechanism, user: &str, ext: &ScramExtensions) -> Option<ScramIdentity> {
            (user == "tok" && ext.token_auth()).then(|| ScramIdentity {
                credential: ScramCredential::generate(m, "hmac-b64", None, 4096),
                principal: KafkaPrincipal::user("alice"),
                expiry_ms: Some(42),
            })
        }
    }

    /// The client side of RFC 5802, with `tokenauth=true` after the nonce.
    fn login(mechanism: ScramMechanism, password: &str, tamper: bool) -> Result<Authenticated, String> {
        let mut server = ScramServerExchange::new(mechanism, Arc::new(Tokens));
        let bare = "n=tok,r=clientnonce,tokenauth=true";
        let SaslStep::Challenge(first) = server.step(format!("n,,{bare}").as_bytes())? else { panic!("no challenge") };
        let first = String::from_utf8(first).unwrap();
        let attr = |k: &str| first.split(',').find_map(|a| a.strip_prefix(k)).unwrap().to_string();
        let (nonce, salt, iterations) = (attr("r="), B64.decode(attr("s=")).unwrap(), attr("i=").parse().unwrap());
        assert!(nonce.starts_with("clientnonce") && nonce.len() > "clientnonce".len());
        let salted = ScramCredential::salted_password(mechanism, password.as_bytes(), &salt, iterations);
        let client_key = hmac(mechanism, &salted, b"Client Key");
        let stored_key = hash(mechanism, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let signed = if tamper { bare.replace(",tokenauth=true", "") } else { bare.to_string() };
        let auth_message = format!("{signed},{first},{without_proof}");
        let signature = hmac(mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        match server.step(format!("{without_proof},p={}", B64.encode(proof)).as_bytes())? {
            SaslStep::Done(done) => {
                let server_key = hmac(mechanism, &salted, b"Server Key");
                let expected = format!("v={}", B64.encode(hmac(mechanism, &server_key, auth_message.as_bytes())));
                assert_eq!(done.response, expected.into_bytes());
                Ok(done)
            }
            SaslStep::Challenge(_) => panic!("a third step"),
        }
    }

    #[test]
    fn token_logins_sign_the_message_as_sent() {
        for m in ScramMechanism::ALL {
            let done = login(m, "hmac-b64", false).unwrap();
            assert_eq!((done.principal, done.credential_expiry_ms), (KafkaPrincipal::user("alice"), Some(42)));
            assert!(login(m, "wrong", false).is_err());
            assert!(login(m, "hmac-b64", true).is_err(), "a proof over another message");
        }
        let mut server = ScramServerExchange::new(ScramMechanism::Sha512, Arc::new(Tokens));
        assert!(server.step(b"n,,n=tok,r=x").is_err(), "no tokenauth: no token");
        for junk in [&b""[..], b"\xff", b"n,,", b"x,,n=tok,r=a,tokenauth=true", b"n,,r=a"] {
            assert!(ScramServerExchange::new(ScramMechanism::Sha256, Arc::new(Tokens)).step(junk).is_err());
        }
        let mut server = ScramServerExchange::new(ScramMechanism::Sha256, Arc::new(Tokens));
        server.step(b"n,,n=tok,r=abc,tokenauth=true").unwrap();
        for junk in [&b"c=biws,r=abc,p=AAAA"[..], b"garbage", b"c=biws,p=!!"] {
            assert!(server.step(junk).is_err());
        }
    }
}
