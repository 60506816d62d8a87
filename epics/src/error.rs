//! Errors of the PV client and of connecting devices, each naming the PV
//! (and, where known, its server).

use thiserror::Error;

/// An error of a [`PvClient`](crate::PvClient) or [`PvChannel`](crate::PvChannel).
///
/// ```
/// let e = skyrun_epics::ClientError::NotFound { pv: "BL:X".into(), after: 2.0 };
/// assert_eq!(e.to_string(), "PV 'BL:X' did not connect within 2 s");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClientError {
    /// No server answered for the PV within the connect timeout.
    #[error("PV '{pv}' did not connect within {after} s")]
    NotFound {
        /// The PV.
        pv: String,
        /// The timeout, in seconds.
        after: f64,
    },
    /// The connection to the PV's server is lost.
    #[error("PV '{pv}' is disconnected{}", at(server))]
    Disconnected {
        /// The PV.
        pv: String,
        /// The server it was connected to, if known.
        server: String,
    },
    /// The PV refuses writes (access rights).
    #[error("PV '{pv}' is read-only{}", at(server))]
    ReadOnly {
        /// The PV.
        pv: String,
        /// The server.
        server: String,
    },
    /// A value cannot be written to the PV (wrong type or shape).
    #[error("cannot write {value} to PV '{pv}': {reason}")]
    BadValue {
        /// The PV.
        pv: String,
        /// The value, as JSON.
        value: String,
        /// Why.
        reason: String,
    },
    /// The operation did not finish in time.
    #[error(
        "{operation} of PV '{pv}' did not finish within {after} s{}",
        at(server)
    )]
    Timeout {
        /// The PV.
        pv: String,
        /// The operation (`put`, `read`, ...).
        operation: &'static str,
        /// The timeout, in seconds.
        after: f64,
        /// The server.
        server: String,
    },
    /// The server or the client reported an error.
    #[error("{operation} of PV '{pv}' failed{}: {reason}", at(server))]
    Failed {
        /// The PV.
        pv: String,
        /// The operation.
        operation: &'static str,
        /// The server.
        server: String,
        /// What the client said.
        reason: String,
    },
    /// The client could not start.
    #[error("the {protocol} client could not start: {reason}")]
    Start {
        /// The protocol.
        protocol: &'static str,
        /// Why.
        reason: String,
    },
}

fn at(server: &str) -> String {
    if server.is_empty() {
        String::new()
    } else {
        format!(" (IOC {server})")
    }
}

/// Connecting devices failed: every PV that did not connect, with its device.
///
/// ```
/// let e = skyrun_epics::ConnectError {
///     missing: vec![("m1".into(), "BL:M1.RBV".into()), ("s".into(), "BL:S".into())],
///     timeout: 2.0,
///     other: vec![],
/// };
/// assert_eq!(
///     e.to_string(),
///     "2 PVs did not connect within 2 s: BL:M1.RBV (m1), BL:S (s)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{}", describe(self))]
pub struct ConnectError {
    /// `(device, pv)` of each PV that did not connect, in request order.
    pub missing: Vec<(String, String)>,
    /// The connect timeout, in seconds.
    pub timeout: f64,
    /// Other failures while connecting: `(device, error)`.
    pub other: Vec<(String, ClientError)>,
}

fn describe(e: &ConnectError) -> String {
    let mut parts = Vec::new();
    if !e.missing.is_empty() {
        let n = e.missing.len();
        let list: Vec<String> = e
            .missing
            .iter()
            .map(|(dev, pv)| format!("{pv} ({dev})"))
            .collect();
        parts.push(format!(
            "{n} PV{} did not connect within {} s: {}",
            if n == 1 { "" } else { "s" },
            e.timeout,
            list.join(", ")
        ));
    }
    for (dev, err) in &e.other {
        parts.push(format!("{dev}: {err}"));
    }
    parts.join("; ")
}
