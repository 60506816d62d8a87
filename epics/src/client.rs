//! skyrun's own process-variable client trait: what a device needs of a
//! control-system client (connect, metadata, put, monitor), so the Channel
//! Access implementation ([`CaClient`](crate::CaClient)) can be swapped for
//! another (PVAccess, a gateway, a test double) without touching the devices.
//!
//! Values cross the trait as JSON ([`serde_json::Value`]), the form readings
//! take in documents anyway.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::error::ClientError;

/// One value of a PV as its server sent it: the value, the IOC's timestamp
/// (seconds since the UNIX epoch) and the alarm severity (0: no alarm).
///
/// ```
/// let u = skyrun_epics::PvUpdate { value: 1.5.into(), timestamp: 1.7e9, severity: 0 };
/// assert_eq!(u.value, serde_json::json!(1.5));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PvUpdate {
    /// The value.
    pub value: Value,
    /// When the IOC took it, seconds since the UNIX epoch.
    pub timestamp: f64,
    /// The alarm severity (0 none, 1 minor, 2 major, 3 invalid).
    pub severity: u16,
}

/// What a PV is, read once when it connects (a CA `DBR_CTRL` read): the
/// event-model dtype and shape, units, precision and control limits.
///
/// ```
/// let m = skyrun_epics::PvMeta { dtype: "number", ..Default::default() };
/// assert!(m.units.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PvMeta {
    /// `number`, `integer`, `string` or `array` (event-model's dtypes).
    pub dtype: &'static str,
    /// Empty for a scalar, `[n]` for an array of n elements.
    pub shape: Vec<usize>,
    /// Engineering units, if the record has any.
    pub units: Option<String>,
    /// Display precision, if the record has one.
    pub precision: Option<u32>,
    /// Control limits `(low, high)`, if the record has them.
    pub limits: Option<(f64, f64)>,
    /// The state labels of an enum PV.
    pub enum_strs: Vec<String>,
    /// Whether the client may write to the PV.
    pub writable: bool,
    /// The server's address (`host:port`).
    pub server: String,
}

/// What a monitor delivers: an update, or a change of connection.
#[derive(Debug, Clone, PartialEq)]
pub enum PvEvent {
    /// A new value.
    Update(PvUpdate),
    /// The connection to the PV's server was lost.
    Disconnected,
    /// The PV connected again after a disconnect.
    Connected,
}

/// A process-variable client: connects channels by name.
///
/// Every future a client returns runs on its own runtime
/// ([`runtime`](Self::runtime)), so it can be awaited from any executor
/// (an actix arbiter, a test's runtime) and keeps running while the caller
/// is busy.
#[async_trait]
pub trait PvClient: Send + Sync + 'static {
    /// The protocol, as a PV name prefix would say it (`ca`, `pva`).
    fn protocol(&self) -> &'static str;
    /// The runtime the client's work runs on; devices spawn their watchers there.
    fn runtime(&self) -> tokio::runtime::Handle;
    /// Connects `name`, failing after `timeout`.
    async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn PvChannel>, ClientError>;
}

/// One connected channel.
#[async_trait]
pub trait PvChannel: Send + Sync + 'static {
    /// The PV name.
    fn name(&self) -> &str;
    /// The server's address now (`host:port`; empty while disconnected).
    fn server(&self) -> String;
    /// Reads what the PV is (dtype, units, precision, limits, access).
    async fn metadata(&self) -> Result<PvMeta, ClientError>;
    /// Writes `value`. With `completion`, waits (at most that long) for the
    /// server to report the put complete (CA put-callback); without, returns
    /// once the write is sent.
    async fn put(&self, value: &Value, completion: Option<Duration>) -> Result<(), ClientError>;
    /// Delivers every update and connection change to `sink`, starting with
    /// the current value, until `sink` is closed.
    async fn monitor(&self, sink: UnboundedSender<PvEvent>) -> Result<(), ClientError>;
}
