//! [`CaClient`]: the Channel Access implementation of [`PvClient`], on the
//! pure-Rust `epics-ca-rs` client (pinned `=0.31.0`), running on a runtime
//! of its own.
//!
//! The client reads the usual environment when it starts
//! (`EPICS_CA_ADDR_LIST`, `EPICS_CA_AUTO_ADDR_LIST`, `EPICS_CA_SERVER_PORT`,
//! `EPICS_CA_REPEATER_PORT`); [`CaClient::with_addresses`] replaces the
//! search list with explicit `host:port`s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use epics_base_rs::error::CaError;
use epics_base_rs::server::snapshot::{DbrClass, Snapshot};
use epics_base_rs::types::{DbFieldType, EpicsValue};
use epics_ca_rs::client::{CaChannel, ConnectionEvent};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::client::{PvChannel, PvClient, PvEvent, PvMeta, PvUpdate};
use crate::error::ClientError;
use crate::runtime::ClientRuntime;

/// A Channel Access client on its own two-thread runtime.
///
/// ```no_run
/// use skyrun_epics::{CaClient, PvClient};
/// let ca = CaClient::start().expect("the CA client starts");
/// let pv = ca.runtime().block_on(ca.connect("BL:AO", std::time::Duration::from_secs(2)));
/// ```
pub struct CaClient {
    // Declared first, dropped first: the runtime goes before the client.
    rt: ClientRuntime,
    inner: epics_ca_rs::client::CaClient,
}

impl std::fmt::Debug for CaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaClient")
    }
}

impl CaClient {
    /// Starts a client configured from the environment.
    pub fn start() -> Result<Arc<Self>, ClientError> {
        let (rt, inner) = ClientRuntime::start("ca", |runtime| {
            runtime
                .block_on(epics_ca_rs::client::CaClient::new())
                .map_err(|e| e.to_string())
        })?;
        Ok(Arc::new(CaClient { rt, inner }))
    }

    /// Starts a client that searches exactly `addrs` (each an IOC's
    /// `host:port`), whatever the environment says.
    pub fn with_addresses(addrs: Vec<SocketAddr>) -> Result<Arc<Self>, ClientError> {
        let client = Self::start()?;
        client.inner.set_address_list(addrs);
        Ok(client)
    }
}

#[async_trait]
impl PvClient for CaClient {
    fn protocol(&self) -> &'static str {
        "ca"
    }

    fn runtime(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn PvChannel>, ClientError> {
        let channel = self.inner.create_channel(name);
        let pv = name.to_owned();
        let connected = self
            .rt
            .handle()
            .spawn(async move {
                channel.wait_connected(timeout).await?;
                let info = channel.info().await?;
                Ok::<_, CaError>((channel, info.server_addr))
            })
            .await;
        match connected {
            Ok(Ok((channel, server))) => Ok(Arc::new(CaPv {
                name: pv,
                channel,
                server: Mutex::new(server.to_string()),
                handle: self.rt.handle().clone(),
            })),
            Ok(Err(CaError::ChannelNotFound(_))) => Err(ClientError::NotFound {
                pv,
                after: timeout.as_secs_f64(),
            }),
            Ok(Err(e)) => Err(ClientError::Failed {
                pv,
                operation: "connect",
                server: String::new(),
                reason: e.to_string(),
            }),
            Err(e) => Err(ClientError::Failed {
                pv,
                operation: "connect",
                server: String::new(),
                reason: e.to_string(),
            }),
        }
    }
}

/// One connected Channel Access channel.
struct CaPv {
    name: String,
    channel: CaChannel,
    server: Mutex<String>,
    handle: tokio::runtime::Handle,
}

impl CaPv {
    fn error(&self, operation: &'static str, e: CaError, after: Option<Duration>) -> ClientError {
        let (pv, server) = (self.name.clone(), self.server());
        match e {
            CaError::Timeout => ClientError::Timeout {
                pv,
                operation,
                after: after.map_or(0.0, |d| d.as_secs_f64()),
                server,
            },
            CaError::Disconnected | CaError::Shutdown => ClientError::Disconnected { pv, server },
            CaError::ReadOnlyField(_) => ClientError::ReadOnly { pv, server },
            e => ClientError::Failed {
                pv,
                operation,
                server,
                reason: e.to_string(),
            },
        }
    }

    /// Runs `fut` on the client's runtime and awaits it from wherever we are.
    async fn on_runtime<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, CaError>> + Send + 'static,
    ) -> Result<T, CaError> {
        self.handle
            .spawn(fut)
            .await
            .unwrap_or(Err(CaError::Shutdown))
    }
}

#[async_trait]
impl PvChannel for CaPv {
    fn name(&self) -> &str {
        &self.name
    }

    fn server(&self) -> String {
        self.server.lock().clone()
    }

    async fn metadata(&self) -> Result<PvMeta, ClientError> {
        let ch = self.channel.clone();
        let (info, snap) = self
            .on_runtime(async move {
                let info = ch.info().await?;
                let snap = ch.get_with_metadata(DbrClass::Ctrl).await?;
                Ok((info, snap))
            })
            .await
            .map_err(|e| self.error("read", e, None))?;
        *self.server.lock() = info.server_addr.to_string();
        Ok(meta_of(
            &snap,
            info.native_type,
            info.element_count,
            info.access_rights.write,
            info.server_addr.to_string(),
        ))
    }

    async fn put(&self, value: &Value, completion: Option<Duration>) -> Result<(), ClientError> {
        let ch = self.channel.clone();
        let info = ch
            .info()
            .await
            .map_err(|e| self.error("put", e, completion))?;
        if !info.access_rights.write {
            return Err(ClientError::ReadOnly {
                pv: self.name.clone(),
                server: self.server(),
            });
        }
        let put = to_epics(value, info.native_type).map_err(|reason| ClientError::BadValue {
            pv: self.name.clone(),
            value: value.to_string(),
            reason,
        })?;
        let result = self
            .on_runtime(async move {
                match (put, completion) {
                    (Put::Value(v), Some(t)) => ch.put_with_timeout(&v, t).await,
                    (Put::Value(v), None) => ch.put_nowait(&v).await,
                    // A string to an enum or string PV: the server resolves labels.
                    (Put::Text(s), Some(t)) => {
                        let v = EpicsValue::String(s.as_str().into());
                        ch.put_with_timeout(&v, t).await
                    }
                    (Put::Text(s), None) => ch.put_string_nowait(&s).await,
                }
            })
            .await;
        result.map_err(|e| self.error("put", e, completion))
    }

    async fn monitor(&self, sink: UnboundedSender<PvEvent>) -> Result<(), ClientError> {
        let ch = self.channel.clone();
        let mut conn = ch.connection_events();
        let mut handle = self
            .on_runtime(async move { ch.subscribe().await })
            .await
            .map_err(|e| self.error("monitor", e, None))?;
        self.handle.spawn(async move {
            loop {
                tokio::select! {
                    m = handle.recv() => match m {
                        Some(Ok(snap)) => {
                            if sink.send(PvEvent::Update(update_of(&snap))).is_err() {
                                break;
                            }
                        }
                        // Disconnects also arrive as connection events.
                        Some(Err(_)) => {}
                        None => break,
                    },
                    ev = conn.recv() => match ev {
                        Ok(ConnectionEvent::Disconnected) => {
                            if sink.send(PvEvent::Disconnected).is_err() { break; }
                        }
                        Ok(ConnectionEvent::Connected) => {
                            if sink.send(PvEvent::Connected).is_err() { break; }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = sink.closed() => break,
                }
            }
        });
        Ok(())
    }
}

/// What to write: a value in the PV's terms, or text for the server to parse.
enum Put {
    Value(EpicsValue),
    Text(String),
}

fn is_numeric(t: DbFieldType) -> bool {
    !matches!(t, DbFieldType::String | DbFieldType::Enum)
}

fn to_epics(value: &Value, native: DbFieldType) -> Result<Put, String> {
    Ok(match value {
        Value::Bool(b) => Put::Value(EpicsValue::Long(i32::from(*b))),
        Value::Number(n) if native == DbFieldType::String => Put::Text(n.to_string()),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Put::Value(EpicsValue::Long(i)),
            None => Put::Value(EpicsValue::Double(n.as_f64().ok_or("not a number")?)),
        },
        Value::String(s) if is_numeric(native) => {
            let x: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("the PV holds numbers ({native:?}), not text"))?;
            Put::Value(EpicsValue::Double(x))
        }
        Value::String(s) => Put::Text(s.clone()),
        Value::Array(items) => {
            let xs: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
            let xs = xs.ok_or("an array must hold numbers only")?;
            Put::Value(EpicsValue::DoubleArray(xs.into()))
        }
        Value::Null | Value::Object(_) => return Err("not a number, text or array".into()),
    })
}

fn update_of(snap: &Snapshot) -> PvUpdate {
    PvUpdate {
        value: to_json(&snap.value),
        timestamp: snap.timestamp.since_unix_epoch().as_secs_f64(),
        severity: snap.alarm.severity,
    }
}

fn meta_of(
    snap: &Snapshot,
    native: DbFieldType,
    count: u32,
    writable: bool,
    server: String,
) -> PvMeta {
    let array = count > 1;
    let dtype = if array {
        "array"
    } else {
        match native {
            DbFieldType::String => "string",
            DbFieldType::Float | DbFieldType::Double => "number",
            _ => "integer",
        }
    };
    let display = snap
        .display
        .as_ref()
        .filter(|_| native != DbFieldType::String);
    PvMeta {
        dtype,
        shape: if array { vec![count as usize] } else { vec![] },
        units: display.map(|d| d.units.to_string()),
        precision: display
            .filter(|_| matches!(native, DbFieldType::Float | DbFieldType::Double))
            .map(|d| d.precision.max(0) as u32),
        limits: snap
            .control
            .as_ref()
            .filter(|_| is_numeric(native))
            .map(|c| (c.lower_ctrl_limit, c.upper_ctrl_limit)),
        enum_strs: snap
            .enums
            .as_ref()
            .map(|e| e.strings.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        writable,
        server,
    }
}

fn num<T: Copy + Into<f64>>(xs: &[T]) -> Value {
    Value::Array(xs.iter().map(|x| Value::from((*x).into())).collect())
}

fn ints<T: Copy + Into<i64>>(xs: &[T]) -> Value {
    Value::Array(xs.iter().map(|x| Value::from((*x).into())).collect())
}

/// A CA value as JSON: numbers as numbers (non-finite as null), enums as
/// their index, arrays as arrays.
fn to_json(v: &EpicsValue) -> Value {
    use EpicsValue as E;
    match v {
        E::String(s) => Value::String(s.to_string()),
        E::Short(x) => (*x).into(),
        E::Float(x) => f64::from(*x).into(),
        E::Enum(x) => (*x).into(),
        E::EnumWithChoices { index, .. } => (*index).into(),
        E::Char(x) => (*x as i8).into(),
        E::Long(x) => (*x).into(),
        E::Double(x) => (*x).into(),
        E::Int64(x) => (*x).into(),
        E::UInt64(x) => (*x).into(),
        E::UShort(x) => (*x).into(),
        E::ULong(x) => (*x).into(),
        E::UChar(x) => (*x).into(),
        E::ShortArray(a) => ints(a),
        E::FloatArray(a) => num(a),
        E::EnumArray(a) => ints(a),
        E::DoubleArray(a) => num(a),
        E::LongArray(a) => ints(a),
        E::CharArray(a) => Value::Array(a.iter().map(|x| Value::from(*x as i8)).collect()),
        E::Int64Array(a) => ints(a),
        E::UInt64Array(a) => Value::Array(a.iter().map(|x| Value::from(*x)).collect()),
        E::UShortArray(a) => ints(a),
        E::ULongArray(a) => ints(a),
        E::UCharArray(a) => ints(a),
        E::StringArray(a) => Value::Array(a.iter().map(|s| Value::String(s.to_string())).collect()),
    }
}
