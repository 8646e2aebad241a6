//! This node's SASL login to another node's SASL listener (inter-broker
//! and controller connections): PLAIN or SCRAM with the `username` and
//! `password` of the listener's JAAS config, as Kafka's login modules use.

use rsasl::prelude::{Mechname, SASLClient, SASLConfig, Session, State};

use crate::SecurityError;

/// The client side of one exchange.
pub struct SaslLogin {
    session: Session,
    done: bool,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin").field("done", &self.done).finish_non_exhaustive()
    }
}

impl SaslLogin {
    pub fn start(mechanism: &str, user: &str, password: &str) -> Result<Self, SecurityError> {
        let config = SASLConfig::with_credentials(None, user.to_string(), password.to_string())
            .map_err(|e| SecurityError::new(format!("SASL login: {e}")))?;
        let name = Mechname::parse(mechanism.as_bytes())
            .map_err(|e| SecurityError::new(format!("SASL mechanism {mechanism}: {e}")))?;
        let session = SASLClient::new(config)
            .start_suggested(&[name])
            .map_err(|e| SecurityError::new(format!("SASL mechanism {mechanism}: {e}")))?;
        Ok(Self { session, done: false })
    }

    /// The client's first token.
    pub fn first_token(&mut self) -> Result<Vec<u8>, SecurityError> {
        self.step_inner(None).map(Option::unwrap_or_default)
    }

    /// Takes the server's token; the next token to send, if any.
    pub fn step(&mut self, server_token: &[u8]) -> Result<Option<Vec<u8>>, SecurityError> {
        self.step_inner(Some(server_token))
    }

    fn step_inner(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, SecurityError> {
        let mut out = Vec::new();
        let state = self
            .session
            .step(input, &mut std::io::Cursor::new(&mut out))
            .map_err(|e| SecurityError::new(format!("SASL authentication failed: {e}")))?;
        match state {
            State::Running => Ok(Some(out)),
            State::Finished(sent) => {
                self.done = true;
                Ok(matches!(sent, rsasl::prelude::MessageSent::Yes).then_some(out))
            }
        }
    }

    /// Whether the client has verified the server (SCRAM) or sent all it
    /// has to (PLAIN).
    pub fn is_done(&self) -> bool {
        self.done
    }
}
