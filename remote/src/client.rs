//! The client side: one NATS connection per URL, on an I/O thread of its own,
//! through which proxy devices send requests and receive answers.
//!
//! Every request has a deadline. A request whose answer has not come within
//! [`RemoteOptions::request_timeout`], or whose server has sent no heartbeat
//! for [`RemoteOptions::heartbeat_timeout`] (it died, or the connection to
//! NATS is down), fails with a reason naming the device and the server; a
//! status waiting for its completion fails the same way when its server
//! goes silent or restarts. The connection itself reconnects on its own
//! (to another server of a cluster when given several URLs), so a run that
//! had nothing in flight while NATS was away never notices.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, HeaderMap};
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use skyrun_actors::{DeviceError, Status, StatusError};
use tokio::sync::mpsc;

use crate::error::RemoteError;
use crate::wire::{self, DeviceInfo, DiscoverRequest, Discovery, Heartbeat, ServerMsg, WireReply};

/// Timeouts of a client.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// How long a request may wait for its answer (default 5 s).
    pub request_timeout: Duration,
    /// How long a server may go without a heartbeat while requests or
    /// statuses are pending on it (default 2 s).
    pub heartbeat_timeout: Duration,
    /// How long connecting may take (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            request_timeout: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Who waits for the answer of a request.
pub(crate) enum Waiter {
    /// A status, completed by `Done` (or failed).
    Status(Status),
    /// A blocked caller.
    Call(std::sync::mpsc::SyncSender<Result<WireReply, DeviceError>>),
}

pub(crate) struct Pending {
    pub server: Arc<str>,
    pub device: Arc<str>,
    pub operation: &'static str,
    pub sent: Instant,
    /// The server has answered (a status is pending there).
    pub acked: bool,
    pub waiter: Waiter,
}

struct ServerLive {
    last_seen: Instant,
    instance: String,
}

pub(crate) struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

pub(crate) struct Inner {
    pub url: String,
    pub opts: RemoteOptions,
    pub handle: tokio::runtime::Handle,
    pub nats: Client,
    pub inbox: String,
    pub out: mpsc::UnboundedSender<Outgoing>,
    pub pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    servers: Mutex<HashMap<String, ServerLive>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A connection to NATS for proxy devices (cheap to clone).
#[derive(Clone)]
pub struct RemoteClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteClient({})", self.inner.url)
    }
}

/// The servers of a comma-separated URL list (`nats://a:4222,nats://b:4222`).
pub fn parse_urls(url: &str) -> Result<Vec<async_nats::ServerAddr>, RemoteError> {
    let mut out = Vec::new();
    for u in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        out.push(
            u.parse()
                .map_err(|e: std::io::Error| RemoteError::InvalidUrl {
                    url: u.to_owned(),
                    reason: e.to_string(),
                })?,
        );
    }
    if out.is_empty() {
        return Err(RemoteError::InvalidUrl {
            url: url.to_owned(),
            reason: "no server given".into(),
        });
    }
    Ok(out)
}

/// Connects to NATS at `url` (comma-separated for a cluster), reconnecting
/// forever once connected; the first connection must succeed within `timeout`.
pub async fn connect_nats(url: &str, name: &str, timeout: Duration) -> Result<Client, RemoteError> {
    connect_nats_with(url, name, timeout, ConnectOptions::new()).await
}

async fn connect_nats_with(
    url: &str,
    name: &str,
    timeout: Duration,
    opts: ConnectOptions,
) -> Result<Client, RemoteError> {
    let addrs = parse_urls(url)?;
    let opts = opts
        .name(name)
        .connection_timeout(timeout)
        .max_reconnects(None)
        .reconnect_delay_callback(|n| Duration::from_millis((50 * n as u64).min(500)));
    match tokio::time::timeout(timeout + Duration::from_secs(1), opts.connect(addrs)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(RemoteError::Connect {
            url: url.to_owned(),
            reason: e.to_string(),
        }),
        Err(_) => Err(RemoteError::Connect {
            url: url.to_owned(),
            reason: format!("no connection within {} s", timeout.as_secs_f64()),
        }),
    }
}

impl RemoteClient {
    /// Connects to NATS at `url` on an I/O thread of its own. Works from any
    /// thread, inside an async runtime or not.
    pub fn connect(url: &str, opts: RemoteOptions) -> Result<Self, RemoteError> {
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("skyrun-nats".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = htx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = htx.send(Ok(rt.handle().clone()));
                rt.block_on(async move {
                    let _ = stop_rx.await;
                });
            })
            .map_err(|e| RemoteError::Runtime(e.to_string()))?;
        let handle = hrx
            .recv()
            .map_err(|e| RemoteError::Runtime(e.to_string()))?
            .map_err(RemoteError::Runtime)?;
        let (url_s, timeout) = (url.to_owned(), opts.connect_timeout);
        // Answers lost with the connection never come: whatever is in flight
        // when it drops fails at once (requests sent later go out on reconnect).
        let slot: Arc<Mutex<std::sync::Weak<Inner>>> = Arc::new(Mutex::new(std::sync::Weak::new()));
        let on_event = {
            let slot = slot.clone();
            ConnectOptions::new().event_callback(move |ev| {
                let slot = slot.clone();
                async move {
                    if matches!(ev, async_nats::Event::Disconnected) {
                        if let Some(inner) = slot.lock().upgrade() {
                            inner.fail_where(
                                |_| true,
                                |p| format!(
                                    "the connection to NATS was lost while device '{}' (device server '{}') was in {}; its outcome is unknown",
                                    p.device, p.server, p.operation
                                ),
                            );
                        }
                    }
                }
            })
        };
        let nats = run_on(&handle, timeout + Duration::from_secs(2), async move {
            connect_nats_with(&url_s, "skyrun", timeout, on_event).await
        })
        .unwrap_or_else(|| {
            Err(RemoteError::Connect {
                url: url.to_owned(),
                reason: "timed out".into(),
            })
        })?;
        let inbox = nats.new_inbox();
        let (out, out_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            opts,
            handle: handle.clone(),
            nats: nats.clone(),
            inbox: inbox.clone(),
            out,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            servers: Mutex::new(HashMap::new()),
            _stop: stop_tx,
        });
        let weak = Arc::downgrade(&inner);
        *slot.lock() = weak.clone();
        let subs = run_on(&handle, Duration::from_secs(5), async move {
            let replies = nats.subscribe(inbox).await?;
            let alive = nats
                .subscribe(format!("{}.srv.*.alive", wire::SUBJECT_ROOT))
                .await?;
            Ok::<_, async_nats::SubscribeError>((replies, alive))
        });
        let (mut replies, mut alive) = match subs {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(RemoteError::nats("subscribe", e)),
            None => return Err(RemoteError::nats("subscribe", "timed out")),
        };
        // Writer: requests go out in the order the proxies sent them.
        let nats = inner.nats.clone();
        let reply_to = inner.inbox.clone();
        handle.spawn(async move {
            let mut rx = out_rx;
            while let Some(o) = rx.recv().await {
                let _ = nats
                    .publish_with_reply_and_headers(
                        o.subject,
                        reply_to.clone(),
                        o.headers,
                        o.payload,
                    )
                    .await;
            }
        });
        // Reader: answers complete their waiters.
        let w = weak.clone();
        handle.spawn(async move {
            while let Some(msg) = replies.next().await {
                let Some(inner) = w.upgrade() else { break };
                if let Ok(m) = serde_json::from_slice::<ServerMsg>(&msg.payload) {
                    inner.on_message(m);
                }
            }
        });
        // Heartbeats.
        let w = weak.clone();
        handle.spawn(async move {
            while let Some(msg) = alive.next().await {
                let Some(inner) = w.upgrade() else { break };
                if let Ok(hb) = serde_json::from_slice::<Heartbeat>(&msg.payload) {
                    inner.on_heartbeat(hb);
                }
            }
        });
        // Watchdog: deadlines and silent servers.
        handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                inner.check_deadlines();
            }
        });
        Ok(RemoteClient { inner })
    }

    /// The URL connected to.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The client's options.
    pub fn options(&self) -> &RemoteOptions {
        &self.inner.opts
    }

    /// How many requests and statuses are waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.inner.pending.lock().len()
    }

    /// The devices server `server` offers (every page of them).
    pub fn discover(&self, server: &str) -> Result<Vec<DeviceInfo>, RemoteError> {
        if !wire::valid_server_name(server) {
            return Err(RemoteError::InvalidServerName(server.to_owned()));
        }
        let mut devices = Vec::new();
        let instance;
        loop {
            let page = self.discover_page(server, devices.len())?;
            let page_instance = page.instance;
            let got = page.devices.len();
            devices.extend(page.devices);
            if devices.len() >= page.total || got == 0 {
                instance = page_instance;
                break;
            }
        }
        self.inner.servers.lock().insert(
            server.to_owned(),
            ServerLive {
                last_seen: Instant::now(),
                instance,
            },
        );
        Ok(devices)
    }

    fn discover_page(&self, server: &str, offset: usize) -> Result<Discovery, RemoteError> {
        let body = serde_json::to_vec(&DiscoverRequest {
            offset,
            limit: wire::DISCOVERY_PAGE,
        })
        .expect("serializable");
        let nats = self.inner.nats.clone();
        let subject = wire::discover_subject(server);
        let limit = self.inner.opts.request_timeout;
        let not_answering = |reason: String| RemoteError::ServerNotAnswering {
            server: server.to_owned(),
            url: self.inner.url.clone(),
            reason,
        };
        let answer = run_on(
            &self.inner.handle,
            limit + Duration::from_secs(1),
            async move { tokio::time::timeout(limit, nats.request(subject, body.into())).await },
        );
        let msg = match answer {
            Some(Ok(Ok(m))) => m,
            Some(Ok(Err(e))) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(not_answering(
                    "no device server of that name is running (no responders)".into(),
                ))
            }
            Some(Ok(Err(e))) => return Err(not_answering(e.to_string())),
            Some(Err(_)) | None => {
                return Err(not_answering(format!(
                    "no answer within {} s",
                    limit.as_secs_f64()
                )))
            }
        };
        serde_json::from_slice(&msg.payload).map_err(|e| RemoteError::BadDiscovery {
            server: server.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// A current-thread tokio runtime on a thread of its own named `name`: its
/// handle, and the sender whose drop ends it.
pub(crate) fn io_runtime(
    name: &str,
) -> Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>), RemoteError> {
    let (htx, hrx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = htx.send(Ok(rt.handle().clone()));
                    rt.block_on(async move {
                        let _ = stop_rx.await;
                    });
                }
                Err(e) => {
                    let _ = htx.send(Err(e.to_string()));
                }
            }
        })
        .map_err(|e| RemoteError::Runtime(e.to_string()))?;
    let handle = hrx
        .recv()
        .map_err(|e| RemoteError::Runtime(e.to_string()))?
        .map_err(RemoteError::Runtime)?;
    Ok((handle, stop_tx))
}

/// Runs `fut` on `handle` and waits for it from this thread (at most `limit`).
pub(crate) fn run_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    limit: Duration,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv_timeout(limit).ok()
}

impl Inner {
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn on_heartbeat(&self, hb: Heartbeat) {
        let restarted = {
            let mut servers = self.servers.lock();
            match servers.get_mut(&hb.server) {
                Some(s) => {
                    s.last_seen = Instant::now();
                    if s.instance != hb.instance {
                        s.instance = hb.instance;
                        true
                    } else {
                        false
                    }
                }
                None => false,
            }
        };
        if restarted {
            self.fail_where(
                |p| p.server.as_ref() == hb.server,
                |p| {
                    format!(
                        "device server '{}' restarted while device '{}' was in {}; its outcome is unknown",
                        p.server, p.device, p.operation
                    )
                },
            );
        }
    }

    fn on_message(&self, m: ServerMsg) {
        match m {
            ServerMsg::Reply {
                id,
                reply: WireReply::Status { .. },
            } => {
                if let Some(p) = self.pending.lock().get_mut(&id) {
                    p.acked = true;
                }
            }
            ServerMsg::Reply { id, reply } => {
                let p = self.pending.lock().remove(&id);
                match p.map(|p| p.waiter) {
                    Some(Waiter::Call(tx)) => {
                        let _ = tx.send(Ok(reply));
                    }
                    Some(Waiter::Status(st)) => {
                        st.set_finished();
                    }
                    None => {}
                }
            }
            ServerMsg::Error { id, error } => {
                let Some(p) = self.pending.lock().remove(&id) else {
                    return;
                };
                let reason = format!("{} (on device server '{}')", error.message, p.server);
                match p.waiter {
                    Waiter::Call(tx) => {
                        let e = if error.kind == "panicked" {
                            DeviceError::Panicked {
                                device: p.device.to_string(),
                                operation: p.operation,
                                reason: format!(
                                    "{} (on device server '{}')",
                                    error.reason, p.server
                                ),
                            }
                        } else {
                            DeviceError::Failed {
                                device: p.device.to_string(),
                                operation: p.operation,
                                reason,
                            }
                        };
                        let _ = tx.send(Err(e));
                    }
                    Waiter::Status(st) => {
                        st.set_exception(StatusError::Failed(reason));
                    }
                }
            }
            ServerMsg::Done { id, error } => {
                let Some(p) = self.pending.lock().remove(&id) else {
                    return;
                };
                if let Waiter::Status(st) = p.waiter {
                    match error {
                        None => st.set_finished(),
                        Some(e) => st.set_exception(StatusError::Failed(format!(
                            "{e} (device '{}' on device server '{}')",
                            p.device, p.server
                        ))),
                    };
                }
            }
        }
    }

    fn check_deadlines(&self) {
        let now = Instant::now();
        let (limit, silent) = (self.opts.request_timeout, self.opts.heartbeat_timeout);
        let last_seen: HashMap<String, Instant> = self
            .servers
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.last_seen))
            .collect();
        let expired: Vec<(u64, String)> = {
            let pending = self.pending.lock();
            pending
                .iter()
                .filter_map(|(id, p)| {
                    let seen = last_seen
                        .get(p.server.as_ref())
                        .copied()
                        .map_or(p.sent, |s| s.max(p.sent));
                    if now.duration_since(seen) > silent {
                        Some((*id, format!(
                            "device server '{}' stopped answering (no heartbeat for {} s) while device '{}' was in {}",
                            p.server, silent.as_secs_f64(), p.device, p.operation
                        )))
                    } else if !p.acked && now.duration_since(p.sent) > limit {
                        Some((*id, format!(
                            "device '{}' on device server '{}' did not answer {} within {} s",
                            p.device, p.server, p.operation, limit.as_secs_f64()
                        )))
                    } else {
                        None
                    }
                })
                .collect()
        };
        for (id, reason) in expired {
            if let Some(p) = self.pending.lock().remove(&id) {
                fail(p, reason);
            }
        }
    }

    fn fail_where(&self, pred: impl Fn(&Pending) -> bool, reason: impl Fn(&Pending) -> String) {
        let ids: Vec<u64> = self
            .pending
            .lock()
            .iter()
            .filter(|(_, p)| pred(p))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(p) = self.pending.lock().remove(&id) {
                let r = reason(&p);
                fail(p, r);
            }
        }
    }
}

fn fail(p: Pending, reason: String) {
    match p.waiter {
        Waiter::Call(tx) => {
            let _ = tx.send(Err(DeviceError::Failed {
                device: p.device.to_string(),
                operation: p.operation,
                reason,
            }));
        }
        Waiter::Status(st) => {
            st.set_exception(StatusError::Failed(reason));
        }
    }
}
