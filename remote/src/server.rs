//! The device server: hosts devices (each in its own actor, as in the engine's
//! process) and answers the wire protocol of [`crate::wire`] over NATS.
//!
//! Each request runs as its own task, so a slow device never holds the
//! others up; a status is answered at once (`Reply`) and its completion sent
//! later (`Done`), both through one ordered outbound queue. The span context
//! of each request is extracted from its headers with the global propagator
//! and handed to the device, so the "Ophyd Status" span recorded here is the
//! child of the engine's set span in the client's process.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, HeaderMap, Subject};
use bytes::Bytes;
use futures::StreamExt;
use indexmap::IndexMap;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply};
use tokio::sync::mpsc;

use crate::error::RemoteError;
use crate::wire::{
    self, DeviceInfo, DiscoverRequest, Discovery, Heartbeat, Request, ServerMsg, WireError,
    WireReply,
};

/// How often a server says it is alive, by default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(250);

/// One device a server offers.
#[derive(Debug, Clone)]
pub struct ServedDevice {
    /// The running device.
    pub handle: DeviceHandle,
    /// `motor`, `detector`, `signal` or `flyer`, when known (for plan checks on the client).
    pub kind: Option<String>,
}

/// A device server: a name and the devices it offers.
///
/// ```no_run
/// use skyrun_remote::{DeviceServer, ServedDevice};
/// use skyrun_actors::{sim::SynAxis, DeviceHandle};
/// actix::System::new().block_on(async {
///     let m = DeviceHandle::spawn(SynAxis::new("m1"));
///     let server = DeviceServer::new("ioc1", vec![ServedDevice { handle: m, kind: Some("motor".into()) }]).unwrap();
///     let nats = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
///     server.serve(nats).await.unwrap(); // until the connection closes
/// });
/// ```
pub struct DeviceServer {
    name: String,
    instance: String,
    devices: Arc<IndexMap<String, ServedDevice>>,
    heartbeat: Duration,
    request_timeout: Duration,
}

/// What the request tasks share.
struct Shared {
    devices: Arc<IndexMap<String, ServedDevice>>,
    out: mpsc::UnboundedSender<(Subject, Bytes)>,
    request_timeout: Duration,
}

impl DeviceServer {
    /// A server called `name` offering `devices` (names must be unique).
    pub fn new(name: &str, devices: Vec<ServedDevice>) -> Result<Self, RemoteError> {
        if !wire::valid_server_name(name) {
            return Err(RemoteError::InvalidServerName(name.to_owned()));
        }
        let mut map = IndexMap::with_capacity(devices.len());
        for d in devices {
            let n = d.handle.name().to_owned();
            if map.insert(n.clone(), d).is_some() {
                return Err(RemoteError::DuplicateDevice {
                    device: n,
                    first: name.to_owned(),
                    second: name.to_owned(),
                });
            }
        }
        Ok(DeviceServer {
            name: name.to_owned(),
            instance: uuid::Uuid::new_v4().to_string(),
            devices: Arc::new(map),
            heartbeat: DEFAULT_HEARTBEAT,
            request_timeout: Duration::from_secs(10),
        })
    }

    /// Says it is alive every `every` (default [`DEFAULT_HEARTBEAT`]).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// Fails a device request the device does not answer within `limit` (default 10 s).
    pub fn request_timeout(mut self, limit: Duration) -> Self {
        self.request_timeout = limit;
        self
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Serves on `nats` until the connection is closed. Must run inside the
    /// actix system the devices run in. Refuses to start when another
    /// server of the same name answers.
    pub async fn serve(self, nats: Client) -> Result<(), RemoteError> {
        let probe = serde_json::to_vec(&DiscoverRequest {
            offset: 0,
            limit: 0,
        })
        .expect("serializable");
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            nats.request(wire::discover_subject(&self.name), probe.into()),
        )
        .await;
        if let Ok(Ok(_)) = asked {
            return Err(RemoteError::ServerNameTaken(self.name));
        }
        let infos = Arc::new(self.infos().await);
        let mut requests = nats
            .subscribe(wire::request_subject(&self.name))
            .await
            .map_err(|e| RemoteError::nats("subscribe", e))?;
        let mut discover = nats
            .subscribe(wire::discover_subject(&self.name))
            .await
            .map_err(|e| RemoteError::nats("subscribe", e))?;
        nats.flush()
            .await
            .map_err(|e| RemoteError::nats("flush", e))?;

        let (tx, mut rx) = mpsc::unbounded_channel::<(Subject, Bytes)>();
        let writer = {
            let nats = nats.clone();
            actix::spawn(async move {
                while let Some((subject, payload)) = rx.recv().await {
                    if nats.publish(subject, payload).await.is_err() {
                        break;
                    }
                }
            })
        };
        let beat = {
            let (nats, every) = (nats.clone(), self.heartbeat);
            let subject = wire::alive_subject(&self.name);
            let hb = serde_json::to_vec(&Heartbeat {
                server: self.name.clone(),
                instance: self.instance.clone(),
            })
            .expect("serializable");
            let hb = Bytes::from(hb);
            actix::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let _ = nats.publish(subject.clone(), hb.clone()).await;
                }
            })
        };
        let discovery = {
            let (nats, name, instance) = (nats.clone(), self.name.clone(), self.instance.clone());
            actix::spawn(async move {
                while let Some(msg) = discover.next().await {
                    let Some(reply) = msg.reply else { continue };
                    let page = serde_json::from_slice::<DiscoverRequest>(&msg.payload).unwrap_or(
                        DiscoverRequest {
                            offset: 0,
                            limit: wire::DISCOVERY_PAGE,
                        },
                    );
                    let end = page
                        .offset
                        .saturating_add(page.limit.min(wire::DISCOVERY_PAGE))
                        .min(infos.len());
                    let start = page.offset.min(end);
                    let d = Discovery {
                        server: name.clone(),
                        instance: instance.clone(),
                        total: infos.len(),
                        devices: infos[start..end].to_vec(),
                    };
                    let body = serde_json::to_vec(&d).expect("serializable");
                    let _ = nats.publish(reply, body.into()).await;
                }
            })
        };
        let shared = Arc::new(Shared {
            devices: self.devices.clone(),
            out: tx,
            request_timeout: self.request_timeout,
        });
        while let Some(msg) = requests.next().await {
            let Some(reply) = msg.reply else { continue };
            let shared = shared.clone();
            actix::spawn(async move {
                handle_request(&shared, reply, &msg.payload, msg.headers.as_ref()).await;
            });
        }
        writer.abort();
        beat.abort();
        discovery.abort();
        Ok(())
    }

    /// What discovery tells about each device.
    async fn infos(&self) -> Vec<DeviceInfo> {
        let cx = opentelemetry::Context::new();
        let mut out = Vec::with_capacity(self.devices.len());
        for d in self.devices.values() {
            let h = &d.handle;
            let caps = h.capabilities();
            let mut info = DeviceInfo {
                name: h.name().to_owned(),
                type_name: h.type_name().to_owned(),
                repr: h.repr().to_string(),
                caps,
                kind: d.kind.clone(),
                describe: Default::default(),
                describe_configuration: Default::default(),
                read_configuration: Default::default(),
                hints: Vec::new(),
                hint_object: None,
                describe_collect: Default::default(),
            };
            if caps.readable {
                if let Ok(DeviceReply::DataKeys(k)) = h.request(DeviceOp::Describe, &cx).await {
                    info.describe = k;
                }
                if let Ok(DeviceReply::DataKeys(k)) =
                    h.request(DeviceOp::DescribeConfiguration, &cx).await
                {
                    info.describe_configuration = k;
                }
                if let Ok(DeviceReply::Readings(r)) =
                    h.request(DeviceOp::ReadConfiguration, &cx).await
                {
                    info.read_configuration = r;
                }
                if let Ok(DeviceReply::Hints(hints)) = h.request(DeviceOp::Hints, &cx).await {
                    info.set_hints(hints);
                }
            }
            if caps.flyable {
                if let Ok(DeviceReply::CollectKeys(k)) =
                    h.request(DeviceOp::DescribeCollect, &cx).await
                {
                    info.describe_collect = k;
                }
            }
            out.push(info);
        }
        out
    }
}

fn send(shared: &Shared, to: &Subject, msg: &ServerMsg) {
    let body = serde_json::to_vec(msg).expect("serializable");
    let _ = shared.out.send((to.clone(), body.into()));
}

async fn handle_request(
    shared: &Shared,
    reply: Subject,
    payload: &[u8],
    headers: Option<&HeaderMap>,
) {
    let req: Request = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            // No id to answer to: the client's request timeout reports it.
            eprintln!("skyrun serve: ignoring an invalid request: {e}");
            return;
        }
    };
    let id = req.id;
    let Some(dev) = shared.devices.get(&req.device) else {
        let op: DeviceOp = req.op.into();
        send(
            shared,
            &reply,
            &ServerMsg::Error {
                id,
                error: WireError {
                    kind: "unknown_device".into(),
                    operation: op.name().into(),
                    message: format!("no device '{}' on this server", req.device),
                    reason: format!("no device '{}' on this server", req.device),
                },
            },
        );
        return;
    };
    let cx = wire::extract_headers(headers);
    let op: DeviceOp = req.op.into();
    let operation = op.name();
    let answer =
        match tokio::time::timeout(shared.request_timeout, dev.handle.request(op, &cx)).await {
            Ok(r) => r,
            Err(_) => Err(DeviceError::NoReply {
                device: req.device.clone(),
                operation,
                after: shared.request_timeout.as_secs_f64(),
            }),
        };
    let msg = match answer {
        Ok(DeviceReply::Status(status)) => {
            // A status that is already complete (an instantaneous move) is
            // answered by its `Done` alone: one message back instead of two.
            if !status.done() {
                send(
                    shared,
                    &reply,
                    &ServerMsg::Reply {
                        id,
                        reply: WireReply::Status {
                            status_type: status.status_type().to_owned(),
                        },
                    },
                );
            }
            let out = shared.out.clone();
            status.add_callback(move |r| {
                let done = ServerMsg::Done {
                    id,
                    error: r.as_ref().err().map(|e| e.to_string()),
                };
                let body = serde_json::to_vec(&done).expect("serializable");
                let _ = out.send((reply, body.into()));
            });
            return;
        }
        Ok(r) => ServerMsg::Reply {
            id,
            reply: to_wire(r),
        },
        Err(e) => ServerMsg::Error {
            id,
            error: WireError::from_device_error(&e),
        },
    };
    send(shared, &reply, &msg);
}

fn to_wire(r: DeviceReply) -> WireReply {
    match r {
        DeviceReply::Status(s) => WireReply::Status {
            status_type: s.status_type().to_owned(),
        },
        DeviceReply::Readings(readings) => WireReply::Readings { readings },
        DeviceReply::DataKeys(keys) => WireReply::DataKeys { keys },
        DeviceReply::Hints(hints) => WireReply::Hints {
            fields: hints
                .as_ref()
                .map(|h| h.field_names().to_vec())
                .unwrap_or_default(),
            hints,
        },
        DeviceReply::Position(value) => WireReply::Position { value },
        DeviceReply::Collected(events) => WireReply::Collected { events },
        DeviceReply::CollectKeys(streams) => WireReply::CollectKeys { streams },
        DeviceReply::Assets(docs) => WireReply::Assets { docs },
        DeviceReply::Index(index) => WireReply::Index { index },
        DeviceReply::Configured { old, new } => WireReply::Configured {
            old: *old,
            new: *new,
        },
        DeviceReply::Done => WireReply::Done,
        DeviceReply::Located { setpoint, readback } => WireReply::Located { setpoint, readback },
        DeviceReply::Paused(r) => WireReply::Paused {
            replay: r == skyrun_actors::Replay::Allowed,
        },
    }
}
