//! Errors at the boundary of skyrun-remote: connecting, discovering, serving, publishing.

use thiserror::Error;

/// What can go wrong setting up remote devices or publishing documents.
///
/// ```
/// use skyrun_remote::RemoteError;
/// let e = RemoteError::DuplicateDevice { device: "m1".into(), first: "ioc1".into(), second: "ioc2".into() };
/// assert_eq!(e.to_string(), "device 'm1' is offered by two device servers, 'ioc1' and 'ioc2'");
/// ```
#[derive(Debug, Error)]
pub enum RemoteError {
    /// The NATS URL could not be understood.
    #[error("invalid NATS URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection to NATS could be made.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A server name that cannot be a subject token.
    #[error("invalid device server name '{0}': use letters, digits, '_' and '-'")]
    InvalidServerName(String),
    /// A device server did not answer discovery.
    #[error("device server '{server}' did not answer on NATS at {url}: {reason}")]
    ServerNotAnswering {
        /// The server asked.
        server: String,
        /// The NATS URL.
        url: String,
        /// Why (no responders, timeout).
        reason: String,
    },
    /// A device server answered something that is not the protocol.
    #[error("device server '{server}' answered discovery with an invalid message: {reason}")]
    BadDiscovery {
        /// The server.
        server: String,
        /// What is wrong.
        reason: String,
    },
    /// A `devices = [...]` entry names a device the server does not have.
    #[error("device server '{server}' has no device '{device}'{known}")]
    UnknownDevice {
        /// The server.
        server: String,
        /// The name asked for.
        device: String,
        /// ` (known: ...)`.
        known: String,
    },
    /// Two servers offer the same device name.
    #[error("device '{device}' is offered by two device servers, '{first}' and '{second}'")]
    DuplicateDevice {
        /// The device name.
        device: String,
        /// One server.
        first: String,
        /// The other.
        second: String,
    },
    /// A server of that name is already answering.
    #[error("a device server named '{0}' is already running on this NATS")]
    ServerNameTaken(String),
    /// Subscribing or publishing failed.
    #[error("NATS {what} failed: {reason}")]
    Nats {
        /// What was being done.
        what: String,
        /// Why.
        reason: String,
    },
    /// JetStream refused a stream or a publish.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The runtime for NATS I/O could not start.
    #[error("cannot start the NATS I/O thread: {0}")]
    Runtime(String),
}

impl RemoteError {
    pub(crate) fn nats(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        RemoteError::Nats {
            what: what.into(),
            reason: e.to_string(),
        }
    }
}
