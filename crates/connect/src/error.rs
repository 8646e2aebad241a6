//! Errors of connectors, converters, transforms and the worker.

/// What went wrong, and whether trying again may help (Connect's
/// `RetriableException` against `ConnectException`/`DataException`).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A bad connector or worker configuration (a REST call answers 400).
    #[error("{0}")]
    Config(String),
    /// A record a converter or transform cannot handle (`errors.tolerance`
    /// decides: fail the task, or skip it / send it to the DLQ).
    #[error("{0}")]
    Data(String),
    /// A failure of the external system that may pass (a network error, a
    /// timeout): the operation is retried until `errors.retry.timeout.ms`
    /// (sink `put`) or the next poll.
    #[error("{0}")]
    Retriable(String),
    /// Anything else: the task fails (status FAILED with this as its trace).
    #[error("{0}")]
    Fatal(String),
}

impl ConnectError {
    pub fn config(message: impl Into<String>) -> ConnectError {
        ConnectError::Config(message.into())
    }
    pub fn data(message: impl Into<String>) -> ConnectError {
        ConnectError::Data(message.into())
    }
    pub fn retriable(message: impl Into<String>) -> ConnectError {
        ConnectError::Retriable(message.into())
    }
    pub fn fatal(message: impl Into<String>) -> ConnectError {
        ConnectError::Fatal(message.into())
    }
    pub fn is_retriable(&self) -> bool {
        matches!(self, ConnectError::Retriable(_))
    }
}

pub type Result<T, E = ConnectError> = std::result::Result<T, E>;
