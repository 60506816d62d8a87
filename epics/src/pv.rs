//! [`Pv`]: a connected, monitored process variable. `read` answers from the
//! latest monitor update (no round trip); [`Pv::listen`] hands every later
//! event, in order, to a watcher (a motor move waiting for DMOV); and
//! [`connect_all`] connects many PVs at once with a bounded number of
//! requests in flight.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use crate::client::{PvChannel, PvClient, PvEvent, PvMeta, PvUpdate};
use crate::error::{ClientError, ConnectError};

/// How many connects (each a search, a metadata read and a subscription)
/// [`connect_all`] keeps in flight: well under the client's queue of 4,096
/// requests, past which it fails requests as "Disconnected".
pub const MAX_IN_FLIGHT: usize = 512;

/// The connection state and latest value of a [`Pv`].
#[derive(Debug, Clone, PartialEq)]
pub struct PvState {
    /// Whether the PV is connected now.
    pub connected: bool,
    /// The latest update (kept through a disconnect).
    pub latest: Option<PvUpdate>,
}

struct Shared {
    channel: Arc<dyn PvChannel>,
    meta: PvMeta,
    state: watch::Sender<PvState>,
    listeners: Mutex<Vec<UnboundedSender<PvEvent>>>,
}

/// A connected PV with a monitor: clone it freely (clones share one channel).
#[derive(Clone)]
pub struct Pv {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Pv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pv({})", self.name())
    }
}

impl Pv {
    /// Connects `name`, reads its metadata and starts its monitor; returns
    /// once the first value has arrived (or fails after `timeout`).
    pub async fn connect(
        client: &dyn PvClient,
        name: &str,
        timeout: Duration,
    ) -> Result<Pv, ClientError> {
        let channel = client.connect(name, timeout).await?;
        let meta = channel.metadata().await?;
        let (tx, mut rx) = unbounded_channel();
        channel.monitor(tx).await?;
        // The first value (a client may say "connected" before it: PVA does).
        let first_update = async {
            loop {
                match rx.recv().await {
                    Some(PvEvent::Update(u)) => return Some(u),
                    Some(PvEvent::Connected) => {}
                    Some(PvEvent::Disconnected) | None => return None,
                }
            }
        };
        let first = match tokio::time::timeout(timeout, first_update).await {
            Ok(first) => first,
            Err(_) => {
                return Err(ClientError::Timeout {
                    pv: name.to_owned(),
                    operation: "monitor",
                    after: timeout.as_secs_f64(),
                    server: channel.server(),
                })
            }
        };
        let (state, _) = watch::channel(PvState {
            connected: true,
            latest: first,
        });
        let shared = Arc::new(Shared {
            channel,
            meta,
            state,
            listeners: Mutex::new(Vec::new()),
        });
        let runtime = client.runtime();
        // Weak: the pump ends when the last `Pv` clone is dropped (its
        // receiver then closes the monitor).
        let weak = Arc::downgrade(&shared);
        runtime.spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(shared) = weak.upgrade() else { break };
                shared.state.send_modify(|s| match &ev {
                    PvEvent::Update(u) => {
                        s.connected = true;
                        s.latest = Some(u.clone());
                    }
                    PvEvent::Disconnected => s.connected = false,
                    PvEvent::Connected => s.connected = true,
                });
                shared
                    .listeners
                    .lock()
                    .retain(|l| l.send(ev.clone()).is_ok());
            }
        });
        Ok(Pv { shared, runtime })
    }

    /// The PV name.
    pub fn name(&self) -> &str {
        self.shared.channel.name()
    }

    /// What the PV is (read when it connected).
    pub fn meta(&self) -> &PvMeta {
        &self.shared.meta
    }

    /// The server's address (`host:port`).
    pub fn server(&self) -> String {
        let s = self.shared.channel.server();
        if s.is_empty() {
            self.shared.meta.server.clone()
        } else {
            s
        }
    }

    /// The runtime the PV's client runs on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Whether the PV is connected now.
    pub fn connected(&self) -> bool {
        self.shared.state.borrow().connected
    }

    /// The latest value, if connected.
    pub fn get(&self) -> Result<PvUpdate, ClientError> {
        let s = self.shared.state.borrow();
        match (&s.latest, s.connected) {
            (Some(u), true) => Ok(u.clone()),
            _ => Err(self.disconnected()),
        }
    }

    /// The latest value as a number, if it is one.
    pub fn get_f64(&self) -> Result<f64, ClientError> {
        let u = self.get()?;
        u.value.as_f64().ok_or_else(|| ClientError::BadValue {
            pv: self.name().to_owned(),
            value: u.value.to_string(),
            reason: "expected a number".into(),
        })
    }

    /// The error a read of this PV gives while it is disconnected.
    pub fn disconnected(&self) -> ClientError {
        ClientError::Disconnected {
            pv: self.name().to_owned(),
            server: self.server(),
        }
    }

    /// The state as it changes (merged: a slow watcher sees the latest).
    pub fn watch(&self) -> watch::Receiver<PvState> {
        self.shared.state.subscribe()
    }

    /// Every event from now on, in order, until the receiver is dropped.
    pub fn listen(&self) -> UnboundedReceiver<PvEvent> {
        let (tx, rx) = unbounded_channel();
        self.shared.listeners.lock().push(tx);
        rx
    }

    /// Writes `value`; with `completion`, waits for the put callback.
    pub async fn put(
        &self,
        value: &Value,
        completion: Option<Duration>,
    ) -> Result<(), ClientError> {
        self.shared.channel.put(value, completion).await
    }

    /// Writes `value` without waiting, from synchronous code (a failure is
    /// dropped: used for STOP, whose effect the monitors show).
    pub fn put_detached(&self, value: Value) {
        let pv = self.clone();
        self.runtime.spawn(async move {
            let _ = pv.put(&value, None).await;
        });
    }
}

/// Connects every `(device, pv)` at once, at most [`MAX_IN_FLIGHT`] at a
/// time; fails with every PV that did not connect, naming its device.
///
/// The PVs come back in request order.
pub async fn connect_all(
    client: &dyn PvClient,
    pvs: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<Pv>, ConnectError> {
    let results: Vec<(usize, Result<Pv, ClientError>)> =
        futures::stream::iter(pvs.iter().enumerate())
            .map(|(i, (_, pv))| async move { (i, Pv::connect(client, pv, timeout).await) })
            .buffer_unordered(MAX_IN_FLIGHT)
            .collect()
            .await;
    let mut slots: Vec<Option<Pv>> = vec![None; pvs.len()];
    let mut err = ConnectError {
        missing: Vec::new(),
        timeout: timeout.as_secs_f64(),
        other: Vec::new(),
    };
    let mut failed: Vec<(usize, ClientError)> = Vec::new();
    for (i, r) in results {
        match r {
            Ok(pv) => slots[i] = Some(pv),
            Err(e) => failed.push((i, e)),
        }
    }
    failed.sort_by_key(|(i, _)| *i);
    for (i, e) in failed {
        let (device, pv) = &pvs[i];
        match e {
            ClientError::NotFound { .. } => err.missing.push((device.clone(), pv.clone())),
            e => err.other.push((device.clone(), e)),
        }
    }
    if err.missing.is_empty() && err.other.is_empty() {
        Ok(slots
            .into_iter()
            .map(|p| p.expect("every PV connected"))
            .collect())
    } else {
        Err(err)
    }
}
