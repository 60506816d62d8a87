//! [`PvaClient`]: the PVAccess implementation of [`PvClient`] (the `pva`
//! feature, experimental), on the pure-Rust `epics-pva-rs` client (pinned
//! `=0.31.0`), on a runtime of its own, as [`CaClient`](crate::CaClient).
//!
//! Scalars of normative types (NTScalar, NTEnum; NTScalarArray as arrays):
//! the value and `timeStamp` of each GET and monitor update, `alarm.severity`,
//! `display.units` / `display.precision` / `control.limitLow..limitHigh` for
//! `describe`. A put with completion asks the server to process the record
//! and answer once it has (`record[block=true]`, as `pvput -w`); without, it
//! answers once written. PVAccess has no access-rights bit: a read-only PV
//! is found by its put failing. Names may carry ophyd-async's `pva://`
//! prefix, dropped on the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use epics_pva_rs::client::PvaClient as Native;
use epics_pva_rs::error::PvaError;
use epics_pva_rs::pv_request::PvRequestExpr;
use epics_pva_rs::pvdata::{PvField, PvStructure, ScalarValue};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::client::{PvChannel, PvClient, PvEvent, PvMeta, PvUpdate};
use crate::error::ClientError;
use crate::runtime::ClientRuntime;

/// A PVAccess client on its own two-thread runtime.
///
/// ```no_run
/// use skyrun_epics::{PvClient, PvaClient};
/// let pva = PvaClient::start(&[]).expect("the PVA client starts");
/// let pv = pva.runtime().block_on(pva.connect("pva://BL:AO", std::time::Duration::from_secs(2)));
/// ```
pub struct PvaClient {
    // Declared first, dropped first: the runtime goes before the client.
    rt: ClientRuntime,
    native: Native,
}

impl std::fmt::Debug for PvaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PvaClient")
    }
}

impl PvaClient {
    /// Starts a client configured from the environment (`EPICS_PVA_ADDR_LIST`,
    /// ...), or, given `servers` (`host:port` of their TCP ports), one
    /// that asks those servers directly, without searching.
    pub fn start(servers: &[SocketAddr]) -> Result<Arc<Self>, ClientError> {
        let servers = servers.to_vec();
        let (rt, native) = ClientRuntime::start("pva", move |runtime| {
            Ok(runtime.block_on(async {
                let b = Native::builder();
                if servers.is_empty() {
                    b.build()
                } else {
                    b.name_servers(servers).auto_addr_list(false).build()
                }
            }))
        })?;
        Ok(Arc::new(PvaClient { rt, native }))
    }
}

impl Drop for PvaClient {
    fn drop(&mut self) {
        self.native.close();
    }
}

/// The name on the wire: ophyd-async's `pva://` dropped.
fn wire(name: &str) -> &str {
    name.strip_prefix("pva://").unwrap_or(name)
}

#[async_trait]
impl PvClient for PvaClient {
    fn protocol(&self) -> &'static str {
        "pva"
    }

    fn runtime(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn PvChannel>, ClientError> {
        let (native, pv) = (self.native.clone(), wire(name).to_owned());
        let connected = self
            .rt
            .handle()
            .spawn(async move { tokio::time::timeout(timeout, native.pvconnect(&pv)).await })
            .await;
        match connected {
            Ok(Ok(Ok(server))) => Ok(Arc::new(PvaPv {
                name: name.to_owned(),
                native: self.native.clone(),
                server: server.to_string(),
                handle: self.rt.handle().clone(),
            })),
            Ok(Err(_)) | Ok(Ok(Err(PvaError::Timeout | PvaError::ChannelNotFound(_)))) => {
                Err(ClientError::NotFound {
                    pv: name.to_owned(),
                    after: timeout.as_secs_f64(),
                })
            }
            Ok(Ok(Err(e))) => Err(ClientError::Failed {
                pv: name.to_owned(),
                operation: "connect",
                server: String::new(),
                reason: e.to_string(),
            }),
            Err(e) => Err(ClientError::Failed {
                pv: name.to_owned(),
                operation: "connect",
                server: String::new(),
                reason: e.to_string(),
            }),
        }
    }
}

/// One PVAccess channel (the client pools the connections).
struct PvaPv {
    name: String,
    native: Native,
    server: String,
    handle: tokio::runtime::Handle,
}

impl PvaPv {
    fn error(&self, operation: &'static str, e: PvaError) -> ClientError {
        let (pv, server) = (self.name.clone(), self.server.clone());
        match e {
            PvaError::Timeout => ClientError::Timeout {
                pv,
                operation,
                after: 0.0,
                server,
            },
            e => ClientError::Failed {
                pv,
                operation,
                server,
                reason: e.to_string(),
            },
        }
    }
}

#[async_trait]
impl PvChannel for PvaPv {
    fn name(&self) -> &str {
        &self.name
    }

    fn server(&self) -> String {
        self.server.clone()
    }

    async fn metadata(&self) -> Result<PvMeta, ClientError> {
        let (native, pv) = (self.native.clone(), wire(&self.name).to_owned());
        let got = self
            .handle
            .spawn(async move { native.pvget_full(&pv).await })
            .await
            .unwrap_or(Err(PvaError::Timeout))
            .map_err(|e| self.error("read", e))?;
        Ok(meta_of(&got.value, self.server.clone()))
    }

    async fn put(&self, value: &Value, completion: Option<Duration>) -> Result<(), ClientError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => u8::from(*b).to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) => value.to_string(),
            Value::Null | Value::Object(_) => {
                return Err(ClientError::BadValue {
                    pv: self.name.clone(),
                    value: value.to_string(),
                    reason: "not a number, text or array".into(),
                })
            }
        };
        let (native, pv) = (self.native.clone(), wire(&self.name).to_owned());
        let put = async move {
            match completion {
                Some(_) => {
                    let req = PvRequestExpr::parse("record[block=true]field(value)")
                        .map_err(|e| PvaError::Protocol(e.to_string()))?;
                    native.pvput_with_request(&pv, &req, &text).await
                }
                None => native.pvput(&pv, &text).await,
            }
        };
        let limit = completion.unwrap_or(Duration::from_secs(3600));
        match self.handle.spawn(tokio::time::timeout(limit, put)).await {
            Ok(Ok(r)) => r.map_err(|e| self.error("put", e)),
            Ok(Err(_)) => Err(ClientError::Timeout {
                pv: self.name.clone(),
                operation: "put",
                after: limit.as_secs_f64(),
                server: self.server.clone(),
            }),
            Err(e) => Err(self.error("put", PvaError::Protocol(e.to_string()))),
        }
    }

    async fn monitor(&self, sink: UnboundedSender<PvEvent>) -> Result<(), ClientError> {
        let (native, pv) = (self.native.clone(), wire(&self.name).to_owned());
        let (data, conn) = (sink.clone(), sink.clone());
        let sub = self
            .handle
            .spawn(async move {
                native
                    .pvmonitor_handle(
                        &pv,
                        move |_desc, value| {
                            if let Some(u) = update_of(value) {
                                let _ = data.send(PvEvent::Update(u));
                            }
                        },
                        move |ev| {
                            use epics_pva_rs::client_native::ops_v2::MonitorConnEvent as C;
                            let _ = match ev {
                                C::Connected { .. } => conn.send(PvEvent::Connected),
                                C::Disconnected => conn.send(PvEvent::Disconnected),
                                _ => Ok(()),
                            };
                        },
                    )
                    .await
            })
            .await
            .unwrap_or(Err(PvaError::Timeout))
            .map_err(|e| self.error("monitor", e))?;
        // The subscription lives until the sink's receiver goes.
        self.handle.spawn(async move {
            sink.closed().await;
            sub.stop();
        });
        Ok(())
    }
}

fn scalar(v: &ScalarValue) -> Value {
    use ScalarValue as S;
    match v {
        S::Boolean(b) => Value::Bool(*b),
        S::Byte(x) => (*x).into(),
        S::Short(x) => (*x).into(),
        S::Int(x) => (*x).into(),
        S::Long(x) => (*x).into(),
        S::UByte(x) => (*x).into(),
        S::UShort(x) => (*x).into(),
        S::UInt(x) => (*x).into(),
        S::ULong(x) => (*x).into(),
        S::Float(x) => f64::from(*x).into(),
        S::Double(x) => (*x).into(),
        S::String(s) => Value::String(s.to_string()),
    }
}

fn structure(f: &PvField) -> Option<&PvStructure> {
    match f {
        PvField::Structure(s) => Some(s),
        _ => None,
    }
}

fn field<'a>(s: &'a PvStructure, path: &[&str]) -> Option<&'a PvField> {
    let (last, parents) = path.split_last()?;
    let mut at = s;
    for p in parents {
        at = structure(at.get_field(p)?)?;
    }
    at.get_field(last)
}

fn number(s: &PvStructure, path: &[&str]) -> Option<f64> {
    match field(s, path)? {
        PvField::Scalar(v) => scalar(v).as_f64(),
        _ => None,
    }
}

/// The `value` of a normative type as JSON: a scalar, an array, or an
/// enum's index.
fn value_of(s: &PvStructure) -> Option<Value> {
    Some(match s.get_field("value")? {
        PvField::Scalar(v) => scalar(v),
        PvField::ScalarArray(xs) => Value::Array(xs.iter().map(scalar).collect()),
        PvField::ScalarArrayTyped(a) => Value::Array(
            (0..a.len())
                .filter_map(|i| a.get(i))
                .map(|v| scalar(&v))
                .collect(),
        ),
        PvField::Structure(e) => match e.get_field("index")? {
            PvField::Scalar(v) => scalar(v),
            _ => return None,
        },
        _ => return None,
    })
}

fn update_of(f: &PvField) -> Option<PvUpdate> {
    let s = structure(f)?;
    let secs = number(s, &["timeStamp", "secondsPastEpoch"]).unwrap_or(0.0);
    let nanos = number(s, &["timeStamp", "nanoseconds"]).unwrap_or(0.0);
    Some(PvUpdate {
        value: value_of(s)?,
        timestamp: secs + nanos * 1e-9,
        severity: number(s, &["alarm", "severity"]).unwrap_or(0.0) as u16,
    })
}

fn meta_of(f: &PvField, server: String) -> PvMeta {
    let s = structure(f);
    let value = s.and_then(|s| s.get_field("value"));
    let (dtype, shape) = match value {
        Some(PvField::Scalar(ScalarValue::String(_))) => ("string", vec![]),
        Some(PvField::Scalar(ScalarValue::Float(_) | ScalarValue::Double(_))) => ("number", vec![]),
        Some(PvField::ScalarArray(xs)) => ("array", vec![xs.len()]),
        Some(PvField::ScalarArrayTyped(a)) => ("array", vec![a.len()]),
        _ => ("integer", vec![]),
    };
    let text = |path: &[&str]| match s.and_then(|s| field(s, path)) {
        Some(PvField::Scalar(ScalarValue::String(u))) => Some(u.to_string()),
        _ => None,
    };
    let enum_strs = match value {
        Some(PvField::Structure(e)) => match e.get_field("choices") {
            Some(PvField::ScalarArray(xs)) => xs.iter().map(|v| v.to_string()).collect(),
            Some(PvField::ScalarArrayTyped(a)) => (0..a.len())
                .filter_map(|i| a.get(i))
                .map(|v| v.to_string())
                .collect(),
            _ => vec![],
        },
        _ => vec![],
    };
    let limits = s.and_then(|s| {
        let lo = number(s, &["control", "limitLow"])?;
        let hi = number(s, &["control", "limitHigh"])?;
        Some((lo, hi))
    });
    PvMeta {
        dtype,
        shape,
        units: text(&["display", "units"]),
        precision: s
            .and_then(|s| number(s, &["display", "precision"]))
            .filter(|_| dtype == "number")
            .map(|p| p.max(0.0) as u32),
        limits: limits.filter(|_| dtype != "string"),
        enum_strs,
        writable: true,
        server,
    }
}
