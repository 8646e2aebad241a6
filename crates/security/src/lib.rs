//! Connection security shared by the broker's listeners, its clients of
//! other brokers and the controller transport.
//!
//! - [`protocol`]: Kafka's security protocols (`PLAINTEXT`, `SSL`, ...);
//! - [`ssl_settings`]: one listener's `ssl.*` keys as Kafka names them;
//! - [`tls`]: rustls server and client configurations built from them,
//!   rebuilt when the keystore or truststore files change;
//! - [`oauth`]: OAUTHBEARER tokens (signed JWTs against a JWKS, or unsecured);
//! - [`principal`]: who is on the other end (`User:ANONYMOUS`, or the TLS
//!   certificate's subject mapped by `ssl.principal.mapping.rules`);
//! - [`sasl`]: SASL mechanisms (PLAIN, SCRAM-SHA-256/512) on rsasl, Kafka's
//!   JAAS config syntax, SCRAM credentials.
//!
//! Knows nothing of Kafka requests, topics or files other than key stores.

pub mod oauth;
pub mod principal;
pub mod protocol;
pub mod sasl;
pub mod ssl_settings;
pub mod tls;

pub use principal::{KafkaPrincipal, PrincipalMapper};
pub use protocol::SecurityProtocol;
pub use ssl_settings::{ClientAuth, SslSettings, StoreType};
pub use tls::{TlsAcceptorSource, TlsConnectorSource};

/// A configuration that cannot be used: the message names the key and
/// says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecurityError(pub String);

impl SecurityError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
