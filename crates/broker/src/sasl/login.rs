//! This broker's SASL login to the other brokers' inter-broker listener
//! (replication fetches, WriteTxnMarkers, AddPartitionsToTxn, forwarded
//! quorum requests), as Kafka's: `sasl.mechanism.inter.broker.protocol`
//! (default GSSAPI, which vltava refuses) with the `username` and
//! `password` of the inter-broker listener's JAAS config for that
//! mechanism (`listener.name.<l>.<mechanism>.sasl.jaas.config`, a
//! ScramLoginModule or PlainLoginModule).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use vltava_protocol::StrBytes;
use vltava_security::sasl::client::SaslLogin;

use crate::config::{BrokerConfig, ConfigError};
use crate::replication::KafkaConn;
use crate::Broker;

/// Bound on one SASL request of the login.
const LOGIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the tokens of one login.
const LOGIN_STEPS_MAX: usize = 8;

/// How this broker logs in to the inter-broker listener.
#[derive(Clone)]
pub struct InterBrokerLogin {
    pub mechanism: String,
    pub user: String,
    password: String,
}

impl std::fmt::Debug for InterBrokerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterBrokerLogin").field("mechanism", &self.mechanism).field("user", &self.user).finish()
    }
}

/// The login for the inter-broker listener, when it is SASL.
pub fn inter_broker_login(config: &BrokerConfig) -> Result<Option<Arc<InterBrokerLogin>>, ConfigError> {
    let Some(listener) = config.inter_broker().filter(|l| l.protocol.uses_sasl()) else { return Ok(None) };
    let settings = &config.static_settings;
    let key = "sasl.mechanism.inter.broker.protocol";
    let mechanism = settings.get(key).map_or("GSSAPI".to_string(), |m| m.trim().to_ascii_uppercase());
    let enabled = super::listener_settings(settings, &listener.name)?;
    if !enabled.mechanisms.contains(&mechanism) {
        return Err(ConfigError {
            key: key.into(),
            value: mechanism.clone(),
            reason: format!(
                "the inter-broker listener {} does not enable {mechanism} (it enables {}); Kafka's default is GSSAPI",
                listener.name,
                enabled.mechanisms.join(", ")
            ),
        });
    }
    let module = super::jaas_config(settings, &listener.name, &mechanism)?;
    let Some((user, password)) = module.and_then(|m| m.login()) else {
        return Err(ConfigError {
            key: format!(
                "listener.name.{}.{}.sasl.jaas.config",
                listener.name.to_ascii_lowercase(),
                mechanism.to_ascii_lowercase()
            ),
            value: String::new(),
            reason: "brokers log in to each other with this JAAS config's username and password options".into(),
        });
    };
    Ok(Some(Arc::new(InterBrokerLogin { mechanism, user, password })))
}

/// SASL on a SASL_SSL controller listener `name`: PLAIN only (Kafka keeps
/// SCRAM off controller listeners: its users live in the metadata log the
/// quorum carries), users and this node's login from
/// `listener.name.<name>.plain.sasl.jaas.config`, the login's mechanism
/// from `sasl.mechanism.controller.protocol`.
pub fn controller_sasl(config: &BrokerConfig, name: &str) -> Result<vltava_quorum::ControllerSasl, ConfigError> {
    struct NoScram;
    impl vltava_security::sasl::SaslCallbacks for NoScram {
        fn scram_credential(
            &self,
            _: vltava_security::sasl::ScramMechanism,
            _: &str,
            _: &vltava_security::sasl::ScramExtensions,
        ) -> Option<vltava_security::sasl::ScramIdentity> {
            None
        }
    }
    let settings = &config.static_settings;
    let server = super::listener_settings(settings, name)?;
    if server.mechanisms != [vltava_security::sasl::PLAIN] {
        return Err(ConfigError {
            key: format!("listener.name.{}.sasl.enabled.mechanisms", name.to_ascii_lowercase()),
            value: server.mechanisms.join(","),
            reason: "the controller listener takes PLAIN only (SCRAM users live in the metadata log)".into(),
        });
    }
    let key = "sasl.mechanism.controller.protocol";
    let mechanism = settings.get(key).map_or("GSSAPI".to_string(), |m| m.trim().to_ascii_uppercase());
    if mechanism != vltava_security::sasl::PLAIN {
        return Err(ConfigError { key: key.into(), value: mechanism, reason: "set it to PLAIN".into() });
    }
    let login = super::jaas_config(settings, name, &mechanism)?.and_then(|m| m.login()).ok_or_else(|| ConfigError {
        key: format!("listener.name.{}.plain.sasl.jaas.config", name.to_ascii_lowercase()),
        value: String::new(),
        reason: "controllers log in to each other with its username and password options".into(),
    })?;
    let authenticator = vltava_security::sasl::SaslAuthenticator::new(server, Arc::new(NoScram));
    Ok(vltava_quorum::ControllerSasl { authenticator, login: Some((mechanism, login.0, login.1)) })
}

impl KafkaConn {
    /// Connects to another broker's inter-broker listener: TLS when it is
    /// SSL, then a SASL login when it is SASL.
    pub async fn connect_to_broker(broker: &Broker, addr: &str, client_id: String) -> std::io::Result<Self> {
        let mut conn = KafkaConn::connect(addr, broker.inter_broker_tls.as_deref(), client_id).await?;
        if let Some(login) = &broker.inter_broker_sasl {
            conn.login(login).await?;
        }
        Ok(conn)
    }

    async fn login(&mut self, login: &InterBrokerLogin) -> std::io::Result<()> {
        self.sasl_login(&login.mechanism, &login.user, &login.password).await
    }

    /// SaslHandshake v1, then SaslAuthenticate v1 until the exchange ends
    /// (PLAIN or SCRAM as a client; also used by `vltava connect`'s worker group).
    pub async fn sasl_login(&mut self, mechanism: &str, user: &str, password: &str) -> std::io::Result<()> {
        let login = (mechanism, user, password);
        let fail = |what: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, what);
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(login.0.to_string()));
        let answer: SaslHandshakeResponse =
            self.call(ApiKey::SaslHandshake, 1, &handshake, LOGIN_REQUEST_TIMEOUT).await?;
        if answer.error_code != 0 {
            return Err(fail(format!("SASL handshake for {}: error {}", login.0, answer.error_code)));
        }
        let mut client = SaslLogin::start(login.0, login.1, login.2).map_err(|e| fail(e.to_string()))?;
        let mut token = client.first_token().map_err(|e| fail(e.to_string()))?;
        for _ in 0..LOGIN_STEPS_MAX {
            let last = client.is_done();
            let request = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
            let answer: SaslAuthenticateResponse =
                self.call(ApiKey::SaslAuthenticate, 1, &request, LOGIN_REQUEST_TIMEOUT).await?;
            if answer.error_code != 0 {
                return Err(fail(format!(
                    "SASL login as {} ({}): {}",
                    login.1,
                    login.0,
                    answer.error_message.map(|m| m.to_string()).unwrap_or_default()
                )));
            }
            if last {
                return Ok(());
            }
            match client.step(&answer.auth_bytes).map_err(|e| fail(e.to_string()))? {
                Some(next) => token = next,
                None if client.is_done() => return Ok(()),
                None => return Err(fail("the SASL exchange ended early".into())),
            }
        }
        Err(fail("the SASL exchange did not end".into()))
    }
}
