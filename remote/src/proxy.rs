//! The proxy device: a device of a device server, used by the engine through
//! an ordinary [`DeviceHandle`], so every plan and plan stub works unchanged.
//!
//! Operations that return a status (`set`, `trigger`, `kickoff`,
//! `complete`) send the request with the caller's span context in the NATS
//! headers and return at once with a local status that the server's `Done`
//! message completes: many sets are in flight at a time. The local status
//! records no span; the server's device records the "Ophyd Status" span, as
//! the child of the engine's span. Other operations wait for the answer (at
//! most the request timeout). `describe`, `hints` and the configuration come
//! from discovery (the configuration is refreshed by `configure`).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value};
use skyrun_actors::{
    AssetDocument, CollectDescription, CollectedEvent, Configurable, DataKeys, Device,
    DeviceContext, DeviceError, DeviceHandle, DeviceOp, ExternalAssets, Flyable, Hints, Movable,
    Pausable, Preparable, Readable, Readings, Replay, Stageable, Status, Stoppable, Triggerable,
};

use crate::client::{Outgoing, Pending, RemoteClient, Waiter};
use crate::wire::{self, DeviceInfo, Request, WireOp, WireReply};

static TYPE_NAMES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);

/// `name` as a `&'static str`, leaked once per distinct type name.
fn intern_type(name: &str) -> &'static str {
    let mut set = TYPE_NAMES.lock();
    if let Some(n) = set.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// A device of a remote device server.
pub struct ProxyDevice {
    client: RemoteClient,
    server: Arc<str>,
    subject: String,
    name: Arc<str>,
    type_name: &'static str,
    repr: String,
    info: DeviceInfo,
}

impl RemoteClient {
    /// A proxy for device `info` of server `server`.
    pub fn proxy(&self, server: &str, info: DeviceInfo) -> ProxyDevice {
        ProxyDevice {
            client: self.clone(),
            server: server.into(),
            subject: wire::request_subject(server),
            name: info.name.as_str().into(),
            type_name: intern_type(&info.type_name),
            repr: info.repr.clone(),
            info,
        }
    }

    /// Starts a proxy for device `info` of server `server` as a device actor.
    /// Must be called inside a running actix system.
    pub fn spawn_proxy(&self, server: &str, info: DeviceInfo) -> DeviceHandle {
        DeviceHandle::spawn(self.proxy(server, info))
    }
}

impl ProxyDevice {
    /// The server the device lives on.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn send(&self, op: DeviceOp, cx: Option<&DeviceContext>, waiter: Waiter) -> u64 {
        let inner = &self.client.inner;
        let id = inner.next_id();
        let operation = op.name();
        let headers = match cx {
            Some(cx) => wire::inject_headers(&cx.parent()),
            None => async_nats::HeaderMap::new(),
        };
        let body = serde_json::to_vec(&Request {
            id,
            device: self.name.to_string(),
            op: WireOp::from(op),
        })
        .expect("serializable");
        inner.pending.lock().insert(
            id,
            Pending {
                server: self.server.clone(),
                device: self.name.clone(),
                operation,
                sent: Instant::now(),
                acked: false,
                waiter,
            },
        );
        let _ = inner.out.send(Outgoing {
            subject: self.subject.clone(),
            headers,
            payload: body.into(),
        });
        id
    }

    /// Sends `op` and returns a status the server's `Done` completes.
    fn status_op(&self, op: DeviceOp, cx: &DeviceContext, status_type: &'static str) -> Status {
        let status = Status::builder()
            .status_type(status_type)
            .device(self.name.clone(), self.type_name)
            .build();
        self.send(op, Some(cx), Waiter::Status(status.clone()));
        status
    }

    /// Sends `op` and waits for the answer (at most the request timeout).
    fn call(&self, op: DeviceOp) -> Result<WireReply, DeviceError> {
        let operation = op.name();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let id = self.send(op, None, Waiter::Call(tx));
        let limit = self.client.inner.opts.request_timeout;
        match rx.recv_timeout(limit + Duration::from_millis(500)) {
            Ok(r) => r,
            Err(_) => {
                self.client.inner.pending.lock().remove(&id);
                Err(DeviceError::Failed {
                    device: self.name.to_string(),
                    operation,
                    reason: format!(
                        "no answer from device server '{}' within {} s",
                        self.server,
                        limit.as_secs_f64()
                    ),
                })
            }
        }
    }

    fn unexpected(&self, operation: &'static str, got: &WireReply) -> DeviceError {
        DeviceError::Failed {
            device: self.name.to_string(),
            operation,
            reason: format!(
                "device server '{}' answered with an unexpected reply: {got:?}",
                self.server
            ),
        }
    }
}

impl Device for ProxyDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }
    fn type_name(&self) -> &'static str {
        self.type_name
    }
    fn repr(&self) -> String {
        self.repr.clone()
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        self.info.caps.readable.then_some(self as _)
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        self.info.caps.movable.then_some(self as _)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        self.info.caps.triggerable.then_some(self as _)
    }
    fn flyable(&mut self) -> Option<&mut dyn Flyable> {
        self.info.caps.flyable.then_some(self as _)
    }
    fn external_assets(&mut self) -> Option<&mut dyn ExternalAssets> {
        self.info.caps.external_assets.then_some(self as _)
    }
    fn preparable(&mut self) -> Option<&mut dyn Preparable> {
        self.info.caps.preparable.then_some(self as _)
    }
    fn stageable(&mut self) -> Option<&mut dyn Stageable> {
        self.info.caps.stageable.then_some(self as _)
    }
    fn configurable(&mut self) -> Option<&mut dyn Configurable> {
        self.info.caps.configurable.then_some(self as _)
    }
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        self.info.caps.stoppable.then_some(self as _)
    }
    fn pausable(&mut self) -> Option<&mut dyn Pausable> {
        self.info.caps.pausable.then_some(self as _)
    }
}

impl Readable for ProxyDevice {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        match self.call(DeviceOp::Read)? {
            WireReply::Readings { readings } => Ok(readings),
            other => Err(self.unexpected("read", &other)),
        }
    }
    fn describe(&self) -> DataKeys {
        self.info.describe.clone()
    }
    fn read_configuration(&self) -> Readings {
        self.info.read_configuration.clone()
    }
    fn describe_configuration(&self) -> DataKeys {
        self.info.describe_configuration.clone()
    }
    fn hints(&self) -> Option<Hints> {
        self.info.device_hints()
    }
}

impl Movable for ProxyDevice {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        Ok(self.status_op(DeviceOp::Set(value.clone()), ctx, "MoveStatus"))
    }
    fn position(&self) -> Value {
        match self.call(DeviceOp::Position) {
            Ok(WireReply::Position { value }) => value,
            Ok(other) => {
                eprintln!("skyrun: {}", self.unexpected("position", &other));
                Value::Null
            }
            Err(e) => {
                // The trait has no error path: the caller sees a position that is not a number.
                eprintln!("skyrun: {e}");
                Value::Null
            }
        }
    }
    fn locate(&self) -> (Value, Value) {
        match self.call(DeviceOp::Locate { gathered: false }) {
            Ok(WireReply::Located { setpoint, readback }) => (setpoint, readback),
            Ok(other) => {
                eprintln!("skyrun: {}", self.unexpected("locate", &other));
                (Value::Null, Value::Null)
            }
            Err(e) => {
                eprintln!("skyrun: {e}");
                (Value::Null, Value::Null)
            }
        }
    }
}

impl Triggerable for ProxyDevice {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        Ok(self.status_op(DeviceOp::Trigger, ctx, "DeviceStatus"))
    }
}

impl Flyable for ProxyDevice {
    fn kickoff(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        Ok(self.status_op(DeviceOp::Kickoff, ctx, "DeviceStatus"))
    }
    fn complete(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        Ok(self.status_op(DeviceOp::Complete, ctx, "DeviceStatus"))
    }
    fn collect(&mut self) -> Result<Vec<CollectedEvent>, DeviceError> {
        match self.call(DeviceOp::Collect)? {
            WireReply::Collected { events } => Ok(events),
            other => Err(self.unexpected("collect", &other)),
        }
    }
    fn describe_collect(&self) -> CollectDescription {
        self.info.describe_collect.clone()
    }
}

impl Preparable for ProxyDevice {
    fn prepare(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        Ok(self.status_op(DeviceOp::Prepare(value.clone()), ctx, "DeviceStatus"))
    }
}

impl ExternalAssets for ProxyDevice {
    fn collect_asset_docs(
        &mut self,
        index: Option<u64>,
    ) -> Result<Vec<AssetDocument>, DeviceError> {
        match self.call(DeviceOp::CollectAssetDocs(index))? {
            WireReply::Assets { docs } => Ok(docs),
            other => Err(self.unexpected("collect_asset_docs", &other)),
        }
    }
    fn get_index(&mut self) -> Result<Option<u64>, DeviceError> {
        match self.call(DeviceOp::GetIndex)? {
            WireReply::Index { index } => Ok(index),
            other => Err(self.unexpected("get_index", &other)),
        }
    }
}

impl Stageable for ProxyDevice {
    fn stage(&mut self) -> Result<(), DeviceError> {
        match self.call(DeviceOp::Stage)? {
            WireReply::Done => Ok(()),
            other => Err(self.unexpected("stage", &other)),
        }
    }
    fn unstage(&mut self) -> Result<(), DeviceError> {
        match self.call(DeviceOp::Unstage)? {
            WireReply::Done => Ok(()),
            other => Err(self.unexpected("unstage", &other)),
        }
    }
}

impl Configurable for ProxyDevice {
    fn configure(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<(Readings, Readings), DeviceError> {
        match self.call(DeviceOp::Configure(settings.clone()))? {
            WireReply::Configured { old, new } => {
                self.info.read_configuration = new.clone();
                Ok((old, new))
            }
            other => Err(self.unexpected("configure", &other)),
        }
    }
}

impl Pausable for ProxyDevice {
    fn pause(&mut self) -> Result<Replay, DeviceError> {
        match self.call(DeviceOp::Pause)? {
            WireReply::Paused { replay: true } => Ok(Replay::Allowed),
            WireReply::Paused { replay: false } => Ok(Replay::NotAllowed),
            other => Err(self.unexpected("pause", &other)),
        }
    }
    fn resume(&mut self) -> Result<(), DeviceError> {
        match self.call(DeviceOp::Resume)? {
            WireReply::Done => Ok(()),
            other => Err(self.unexpected("resume", &other)),
        }
    }
}

impl Stoppable for ProxyDevice {
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        match self.call(DeviceOp::Stop { success })? {
            WireReply::Done => Ok(()),
            other => Err(self.unexpected("stop", &other)),
        }
    }
}
