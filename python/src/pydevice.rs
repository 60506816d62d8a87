//! Python objects that follow ophyd's protocol (ophyd.sim's own devices, a
//! user's class) run as skyrun device actors: each request calls the object's
//! method with the GIL, inside the OpenTelemetry context the request carried
//! (so ophyd's own "Ophyd Status" span is a child of skyrun's set span), and
//! an ophyd Status completes the skyrun Status it is paired with.
//!
//! ophyd-async devices run here too: every call runs with Bluesky's event
//! loop as the running loop, an awaitable answer is awaited on it, and an
//! awaitable status is traced by skyrun (see [`crate::async_device`]).

use std::collections::HashMap;

use futures::FutureExt;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::{Map, Value};
use skyrun_actors::{
    AssetDocument, Cause, CollectDescription, CollectedEvent, Configurable, DataKeys, Device,
    DeviceContext, DeviceError, DeviceHandle, ExternalAssets, Flyable, Hints, Later, Movable,
    Pausable, Preparable, Readable, Readings, Replay, Stageable, Status, StatusError, Stoppable,
    Subscribable, Subscribers, Subscription, Triggerable,
};

use crate::async_device::{self, resolve, with_loop};
use crate::convert::{dict_to_map, from_py, map_to_py, to_py, to_value};
use crate::event_loop::LoopDriver;
use crate::otel;

/// Python objects already running as actors, by identity (kept alive here so
/// an identity is never reused).
type Registry = HashMap<usize, (Py<PyAny>, DeviceHandle)>;
static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// The actor of Python object `obj`, spawned on first use. Must run on the runtime thread.
pub fn handle_for(obj: &Bound<'_, PyAny>) -> PyResult<DeviceHandle> {
    let key = obj.as_ptr() as usize;
    if let Some((_, h)) = REGISTRY.lock().get_or_insert_with(HashMap::new).get(&key) {
        return Ok(h.clone());
    }
    let dev = PyDevice::new(obj)?;
    let handle = DeviceHandle::spawn(dev);
    REGISTRY
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(key, (obj.clone().unbind(), handle.clone()));
    Ok(handle)
}

struct Caps {
    read: bool,
    set: bool,
    trigger: bool,
    fly: bool,
    stage: bool,
    configure: bool,
    stop: bool,
    /// ophyd's `subscribe(callback, run=...)` (readable objects only).
    subscribe: bool,
    /// `collect_asset_docs` (Bluesky's WritesExternalAssets).
    assets: bool,
    /// `get_index` (with `collect_asset_docs`, WritesStreamAssets).
    index: bool,
    /// `collect_pages` (EventPageCollectable).
    pages: bool,
    /// `prepare` (Preparable: ophyd-async's detectors and motors).
    prepare: bool,
    /// Bluesky's Pausable: `pause()` and `resume()`.
    pause: bool,
}

/// An ophyd-protocol Python object hosted by a skyrun device actor.
pub struct PyDevice {
    obj: Py<PyAny>,
    name: String,
    type_name: &'static str,
    repr: String,
    caps: Caps,
    /// Where the object's subscription publishes (made at the first subscribe).
    subscribers: Option<Subscribers>,
    /// The callback given to the object's `subscribe`, while subscribed.
    callback: Option<Py<PyAny>>,
}

fn leak_type_name(name: String) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock();
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.into_boxed_str());
    names.push(n);
    n
}

/// A Python exception as raised, shown as its `repr` (`OSError('cable
/// unplugged')`), which names its type.
#[derive(Debug)]
pub struct Raised {
    /// The exception.
    pub err: PyErr,
    repr: String,
}

impl Raised {
    fn new(py: Python<'_>, err: PyErr) -> Self {
        let repr = err
            .value(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| err.to_string());
        Raised { err, repr }
    }
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr)
    }
}

impl std::error::Error for Raised {}

/// `method` of `device` answered what skyrun cannot take (a `read()`
/// returning None, ...): skyrun's error (a RuntimeError in Python, as
/// Bluesky's for a `read()` returning None), not an exception of the device's.
fn ill_answer(
    device: &str,
    py: Python<'_>,
    method: &'static str,
    answer: &Bound<'_, PyAny>,
    e: PyErr,
) -> DeviceError {
    DeviceError::Failed {
        device: device.to_owned(),
        operation: method,
        reason: format!(
            "{method}() returned {}: {}",
            answer.repr().map(|r| r.to_string()).unwrap_or_default(),
            e.value(py)
        ),
    }
}

/// The exception a device method raised, kept as raised: the plan and
/// `RE()` get it back unchanged, as Bluesky gives it.
fn py_err(device: &str, operation: &'static str, py: Python<'_>, e: PyErr) -> DeviceError {
    DeviceError::Raised {
        device: device.to_owned(),
        operation,
        cause: Cause::new(Raised::new(py, e)),
    }
}

impl PyDevice {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let has = |a: &str| obj.hasattr(a).unwrap_or(false);
        // Bluesky asks a name only of what it reads: an object without one
        // (stage-only helpers, say) is named after its type and identity.
        let name: String = match obj.getattr("name") {
            Ok(n) => n.extract()?,
            Err(_) => format!("{}@{:x}", obj.get_type().name()?, obj.as_ptr() as usize),
        };
        Ok(PyDevice {
            obj: obj.clone().unbind(),
            type_name: leak_type_name(obj.get_type().name()?.to_string()),
            repr: obj.repr()?.to_string(),
            caps: Caps {
                // A flyer with configuration only is read for its configuration.
                read: (has("read") && has("describe"))
                    || (has("read_configuration") && has("describe_configuration")),
                set: has("set"),
                trigger: has("trigger"),
                // Bluesky's Flyable, and its collectables (EventCollectable,
                // EventPageCollectable, describe_collect of WritesStreamAssets).
                fly: (has("kickoff") && has("complete"))
                    || has("collect")
                    || has("collect_pages")
                    || has("describe_collect"),
                stage: has("stage") && has("unstage"),
                configure: has("configure"),
                stop: has("stop"),
                subscribe: has("subscribe") && has("read") && has("describe"),
                assets: has("collect_asset_docs"),
                index: has("get_index"),
                pages: has("collect_pages"),
                prepare: has("prepare"),
                pause: has("pause") && has("resume"),
            },
            subscribers: None,
            callback: None,
            name,
        })
    }

    /// Calls `method(*args)` on the object inside the span context `parent`.
    fn call<'py>(
        &self,
        py: Python<'py>,
        method: &'static str,
        args: Vec<Bound<'py, PyAny>>,
        parent: Option<&Context>,
    ) -> Result<Bound<'py, PyAny>, DeviceError> {
        let obj = self.obj.bind(py);
        let f = obj
            .getattr(method)
            .map_err(|e| py_err(&self.name, method, py, e))?;
        let args = PyTuple::new(py, args).map_err(|e| py_err(&self.name, method, py, e))?;
        let r = match parent {
            Some(cx) => otel::call_in_context(py, cx, &f, &args),
            None => f.call1(args),
        };
        r.map_err(|e| py_err(&self.name, method, py, e))
    }

    /// Calls `method(*args)` with Bluesky's event loop running; an awaitable
    /// answer is awaited on it.
    fn call_await<'py>(
        &self,
        py: Python<'py>,
        method: &'static str,
        args: Vec<Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyAny>, DeviceError> {
        with_loop(py, |driver| {
            let r = self.call(py, method, args, None)?;
            self.resolve(py, driver, r, method)
        })
    }

    /// The items `method(*args)` gives: a list, an iterator, a generator or
    /// an async generator (iterated on Bluesky's loop), or a coroutine of one.
    fn items<'py>(
        &self,
        py: Python<'py>,
        method: &'static str,
        args: Vec<Bound<'py, PyAny>>,
    ) -> Result<Vec<Bound<'py, PyAny>>, DeviceError> {
        let err = |e| py_err(&self.name, method, py, e);
        with_loop(py, |driver| {
            let mut r = self.call(py, method, args, None)?;
            if r.hasattr("__aiter__").unwrap_or(false) {
                r = py
                    .import("skyrun._async_device")
                    .and_then(|m| m.getattr("drain"))
                    .and_then(|f| f.call1((r,)))
                    .map_err(err)?;
            }
            let r = self.resolve(py, driver, r, method)?;
            r.try_iter().map_err(err)?.map(|x| x.map_err(err)).collect()
        })
    }

    fn resolve<'py>(
        &self,
        py: Python<'py>,
        driver: Option<&LoopDriver>,
        r: Bound<'py, PyAny>,
        method: &'static str,
    ) -> Result<Bound<'py, PyAny>, DeviceError> {
        resolve(py, driver, r, &format!("{}.{method}()", self.name))
            .map_err(|e| py_err(&self.name, method, py, e))
    }

    fn readings(&self, method: &'static str) -> Result<Readings, DeviceError> {
        Python::attach(|py| {
            let r = self.call_await(py, method, vec![])?;
            from_py::<Readings>(&r, method).map_err(|e| self.ill_answer(py, method, &r, e))
        })
    }

    fn data_keys(&self, method: &'static str) -> Result<DataKeys, DeviceError> {
        Python::attach(|py| {
            let r = self.call_await(py, method, vec![])?;
            from_py::<DataKeys>(&r, method).map_err(|e| self.ill_answer(py, method, &r, e))
        })
    }

    fn ill_answer(
        &self,
        py: Python<'_>,
        method: &'static str,
        answer: &Bound<'_, PyAny>,
        e: PyErr,
    ) -> DeviceError {
        ill_answer(&self.name, py, method, answer, e)
    }

    /// Whether the object has `method` (an optional one of ophyd's protocol).
    fn has(&self, method: &str) -> bool {
        Python::attach(|py| self.obj.bind(py).hasattr(method).unwrap_or(false))
    }

    /// Calls a Status-returning method and pairs what it answers with a
    /// skyrun Status: an ophyd Status (which records its own span) completes
    /// it; an awaitable status (ophyd-async's) completes a traced one.
    fn status_call(
        &self,
        method: &'static str,
        args: Vec<Value>,
        ctx: &DeviceContext,
    ) -> Result<Status, DeviceError> {
        let parent = ctx.parent();
        Python::attach(|py| {
            let mut pyargs = Vec::with_capacity(args.len());
            for a in &args {
                pyargs.push(to_py(py, a).map_err(|e| py_err(&self.name, method, py, e))?);
            }
            // A move's start position and unit (a locate and a describe, each
            // a turn of the event loop) only for a span that will be recorded:
            // the engine's span asking for it is sampled.
            let traced = ctx.is_traced() && parent.span().span_context().is_sampled();
            with_loop(py, |driver| {
                let t0 = std::time::SystemTime::now();
                let start = match (method, args.first()) {
                    ("set", Some(target)) if traced => self.start_of_move(py, driver, target),
                    _ => None,
                };
                let st = self.call(py, method, pyargs, Some(&parent))?;
                if async_device::is_awaitable(py, &st) {
                    let status = self.follow_awaitable(py, &st, start, ctx, t0, traced)?;
                    crate::status::register_origin(&status, st.clone().unbind());
                    return Ok(status);
                }
                let status = Status::builder()
                    .status_type(if method == "set" {
                        "MoveStatus"
                    } else {
                        "Status"
                    })
                    .device(self.name.clone(), self.type_name)
                    .build();
                pair(py, &st, status.clone()).map_err(|e| py_err(&self.name, method, py, e))?;
                if !st.is_none() {
                    crate::status::register_origin(&status, st.clone().unbind());
                }
                Ok(status)
            })
        })
    }

    /// The traced skyrun Status an awaitable status `st` completes, started
    /// at `t0`; a move's (target, start position, unit) when known. `traced`:
    /// its span will be recorded (its `watch` updates are then span events).
    fn follow_awaitable(
        &self,
        py: Python<'_>,
        st: &Bound<'_, PyAny>,
        start: Option<(f64, f64, std::sync::Arc<str>)>,
        ctx: &DeviceContext,
        t0: std::time::SystemTime,
        traced: bool,
    ) -> Result<Status, DeviceError> {
        let kind = st
            .get_type()
            .name()
            .map(|n| leak_type_name(n.to_string()))
            .unwrap_or("AsyncStatus");
        let (builder, finish) = match &start {
            Some((target, pos, unit)) => (
                ctx.move_status(*target, *pos, unit),
                self.obj.bind(py).getattr("locate").ok(),
            ),
            None => (ctx.status(), None),
        };
        let status = builder.status_type(kind).start_at(t0).build();
        async_device::follow(py, st, status.clone(), finish, traced)
            .map_err(|e| py_err(&self.name, "status", py, e))?;
        Ok(status)
    }

    /// Where a move to `target` starts, for its span: the target, the
    /// readback of an ophyd-async `locate()`, and the `units` signal's value.
    /// None for devices without a coroutine `locate` or a non-numeric target.
    fn start_of_move(
        &self,
        py: Python<'_>,
        driver: Option<&LoopDriver>,
        target: &Value,
    ) -> Option<(f64, f64, std::sync::Arc<str>)> {
        let target = target.as_f64()?;
        let obj = self.obj.bind(py);
        let locate = obj.getattr("locate").ok()?;
        let is_async = py
            .import("inspect")
            .and_then(|m| m.call_method1("iscoroutinefunction", (&locate,)))
            .and_then(|r| r.extract::<bool>())
            .unwrap_or(false);
        if !is_async {
            return None;
        }
        let at = resolve(py, driver, locate.call0().ok()?, "locate").ok()?;
        let pos = async_device::position_of(&at).ok()?;
        // The unit of the readback: its data key's `units` (the first hinted field).
        let unit = resolve(py, driver, obj.call_method0("describe").ok()?, "describe")
            .ok()
            .and_then(|keys| {
                let field = self
                    .hints()
                    .and_then(|h| h.field_names().first().cloned())
                    .unwrap_or(self.name.clone());
                keys.get_item(field)
                    .ok()?
                    .get_item("units")
                    .ok()?
                    .extract::<String>()
                    .ok()
            })
            .unwrap_or_default();
        Some((target, pos, unit.into()))
    }
}

/// Completes `status` when the ophyd status `st` does.
fn pair(py: Python<'_>, st: &Bound<'_, PyAny>, status: Status) -> PyResult<()> {
    if st.is_none() {
        status.set_finished();
        return Ok(());
    }
    let cb = pyo3::types::PyCFunction::new_closure(
        py,
        None,
        None,
        move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let st = args.get_item(0)?;
            let success: bool = st
                .getattr("success")
                .and_then(|s| s.extract())
                .unwrap_or(false);
            if success {
                status.set_finished();
            } else {
                let why = match st.call_method0("exception") {
                    Ok(e) if !e.is_none() => e.repr().map(|r| r.to_string()).unwrap_or_default(),
                    _ => "the ophyd status failed".to_owned(),
                };
                status.set_exception(StatusError::Failed(why));
            }
            Ok(())
        },
    )?;
    py.import("skyrun._pydevice")?
        .call_method1("add_callback", (st, cb))?;
    Ok(())
}

impl Device for PyDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        self.type_name
    }
    fn repr(&self) -> String {
        self.repr.clone()
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        self.caps.read.then_some(self as _)
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        self.caps.set.then_some(self as _)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        self.caps.trigger.then_some(self as _)
    }
    fn flyable(&mut self) -> Option<&mut dyn Flyable> {
        self.caps.fly.then_some(self as _)
    }
    fn stageable(&mut self) -> Option<&mut dyn Stageable> {
        self.caps.stage.then_some(self as _)
    }
    fn configurable(&mut self) -> Option<&mut dyn Configurable> {
        self.caps.configure.then_some(self as _)
    }
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        self.caps.stop.then_some(self as _)
    }
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        self.caps.subscribe.then_some(self as _)
    }
    fn external_assets(&mut self) -> Option<&mut dyn ExternalAssets> {
        self.caps.assets.then_some(self as _)
    }
    fn preparable(&mut self) -> Option<&mut dyn Preparable> {
        self.caps.prepare.then_some(self as _)
    }
    fn pausable(&mut self) -> Option<&mut dyn Pausable> {
        self.caps.pause.then_some(self as _)
    }
}

impl Subscribable for PyDevice {
    /// As Bluesky's `monitor` and `restore_monitors`: when nobody listens
    /// yet, subscribes to the object (again: the old callback is cleared),
    /// and the object decides whether to call back at once with the current
    /// reading (ophyd does when its signal has a value). A callback given a
    /// dict of readings (ophyd-async's, Bluesky's protocol) publishes it;
    /// one given ophyd's keyword arguments reads the object. While another
    /// subscription listens, a new one starts from the current reading.
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        let subs = self
            .subscribers
            .get_or_insert_with(Subscribers::new)
            .clone();
        if self.callback.is_some() && !subs.is_empty() {
            let current = self.readings("read")?;
            return Ok(subs.subscribe(current));
        }
        let sub = subs.subscribe_pending();
        let name = self.name.clone();
        Python::attach(|py| -> PyResult<()> {
            let obj = self.obj.bind(py);
            if let Some(old) = self.callback.take() {
                if obj.hasattr("clear_sub")? {
                    obj.call_method1("clear_sub", (old,))?;
                }
            }
            let target = self.obj.clone_ref(py);
            let publish = subs.clone();
            let cb = pyo3::types::PyCFunction::new_closure(
                py,
                None,
                None,
                move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| {
                    let py = args.py();
                    let given = args
                        .get_item(0)
                        .ok()
                        .filter(|a| a.is_instance_of::<PyDict>());
                    let readings = match given {
                        Some(r) => from_py::<Readings>(&r, "subscribe"),
                        None => target
                            .bind(py)
                            .call_method0("read")
                            .and_then(|r| from_py::<Readings>(&r, "read")),
                    };
                    match readings {
                        Ok(r) => publish.publish(r),
                        Err(e) => {
                            eprintln!("skyrun: {name}: a subscription's reading failed: {e}")
                        }
                    }
                },
            )?;
            self.callback = Some(cb.clone().into_any().unbind());
            obj.call_method1("subscribe", (cb,))?;
            Ok(())
        })
        .map_err(|e| Python::attach(|py| py_err(&self.name, "subscribe", py, e)))?;
        Ok(sub)
    }
}

impl Readable for PyDevice {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        self.readings("read")
    }
    fn describe(&self) -> DataKeys {
        self.try_describe().unwrap_or_default()
    }
    fn read_configuration(&self) -> Readings {
        self.try_read_configuration().unwrap_or_default()
    }
    fn describe_configuration(&self) -> DataKeys {
        self.try_describe_configuration().unwrap_or_default()
    }
    fn try_describe(&self) -> Result<DataKeys, DeviceError> {
        self.data_keys("describe")
    }
    fn try_read_configuration(&self) -> Result<Readings, DeviceError> {
        if self.has("read_configuration") {
            self.readings("read_configuration")
        } else {
            Ok(Readings::new())
        }
    }
    fn try_describe_configuration(&self) -> Result<DataKeys, DeviceError> {
        if self.has("describe_configuration") {
            self.data_keys("describe_configuration")
        } else {
            Ok(DataKeys::new())
        }
    }
    /// The object's `hints`, whatever its dict holds (Bluesky's
    /// `maybe_update_hints` writes `obj.hints` as it is); `None` when it has
    /// no `hints` attribute, or hints that are not a mapping.
    fn hints(&self) -> Option<Hints> {
        Python::attach(|py| {
            let h = self.obj.bind(py).getattr("hints").ok()?;
            let dict = match h.cast::<PyDict>() {
                Ok(d) => d.clone(),
                // Another mapping: as a dict.
                Err(_) => py
                    .import("builtins")
                    .and_then(|b| b.getattr("dict")?.call1((&h,)))
                    .ok()?
                    .cast_into::<PyDict>()
                    .ok()?,
            };
            dict_to_map(&dict).ok().map(Hints::from_object)
        })
    }
}

impl Preparable for PyDevice {
    fn prepare(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("prepare", vec![value.clone()], ctx)
    }
}

impl Movable for PyDevice {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("set", vec![value.clone()], ctx)
    }
    fn position(&self) -> Value {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            if !obj.hasattr("position").unwrap_or(false) && obj.hasattr("locate").unwrap_or(false) {
                // ophyd-async: `locate()` (a coroutine) answers setpoint and readback.
                return self
                    .call_await(py, "locate", vec![])
                    .ok()
                    .and_then(|l| l.get_item("readback").ok())
                    .and_then(|p| to_value(&p).ok())
                    .unwrap_or(Value::Null);
            }
            obj.getattr("position")
                .and_then(|p| to_value(&p))
                .unwrap_or(Value::Null)
        })
    }
    /// Bluesky's `locate()` (setpoint and readback) when the object has one
    /// (without, `locate` answers its position for both). Located with
    /// others (`gathered`), a coroutine `locate()` runs as a task on
    /// Bluesky's event loop and the device answers when it is done, so the
    /// coroutines of several objects run together, as Bluesky gathers them;
    /// alone, it is awaited at once (the loop run here until it is done,
    /// which is quicker). What it raises fails the locate.
    fn locate_later(&self, gathered: bool) -> Option<Later<(Value, Value)>> {
        Python::attach(|py| {
            if !self.obj.bind(py).hasattr("locate").unwrap_or(false) {
                return None;
            }
            let now = |r| Some(std::future::ready(r).boxed_local());
            with_loop(py, |driver| {
                let l = match self.call(py, "locate", vec![], None) {
                    Ok(l) => l,
                    Err(e) => return now(Err(e)),
                };
                let Some(d) = driver.filter(|_| gathered && async_device::is_awaitable(py, &l))
                else {
                    // An answer now, awaited now, or an awaitable with no loop
                    // to run it (the error says so).
                    let l = self.resolve(py, driver, l, "locate");
                    return now(l.and_then(|l| location(&self.name, py, &l)));
                };
                let name = self.name.clone();
                let what = format!("{name}.locate()");
                let answer = move |py: Python<'_>, l: PyResult<Bound<'_, PyAny>>| match l {
                    Ok(l) => location(&name, py, &l),
                    Err(e) => Err(py_err(&name, "locate", py, e)),
                };
                match async_device::start(py, d, &l, what, answer) {
                    Ok(located) => Some(located.boxed_local()),
                    Err(e) => now(Err(py_err(&self.name, "locate", py, e))),
                }
            })
        })
    }
}

/// What a `locate()` answered, as `(setpoint, readback)`.
fn location(
    device: &str,
    py: Python<'_>,
    l: &Bound<'_, PyAny>,
) -> Result<(Value, Value), DeviceError> {
    let get = |k: &str| l.get_item(k).and_then(|v| to_value(&v));
    get("setpoint")
        .and_then(|s| Ok((s, get("readback")?)))
        .map_err(|e| ill_answer(device, py, "locate", l, e))
}

impl Triggerable for PyDevice {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("trigger", vec![], ctx)
    }
}

impl Flyable for PyDevice {
    fn kickoff(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("kickoff", vec![], ctx)
    }
    fn complete(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("complete", vec![], ctx)
    }
    fn collect(&mut self) -> Result<Vec<CollectedEvent>, DeviceError> {
        // The engine places each event in its stream by its data keys.
        let stream = String::new();
        let fail = |reason: String| DeviceError::Failed {
            device: self.name.clone(),
            operation: "collect",
            reason,
        };
        let method = if self.caps.pages {
            "collect_pages"
        } else {
            "collect"
        };
        Python::attach(|py| {
            let mut out = Vec::new();
            for item in self.items(py, method, vec![])? {
                let v = to_value(&item).map_err(|e| py_err(&self.name, method, py, e))?;
                let Value::Object(m) = v else {
                    return Err(fail(format!("{method} must give dicts, got {v}")));
                };
                let rows = if self.caps.pages {
                    unpack_page(m).map_err(fail)?
                } else {
                    vec![m]
                };
                for mut m in rows {
                    m.entry("stream")
                        .or_insert_with(|| Value::String(stream.clone()));
                    m.entry("time")
                        .or_insert_with(|| skyrun_actors::now().into());
                    let ev: CollectedEvent = serde_json::from_value(Value::Object(m))
                        .map_err(|e| fail(e.to_string()))?;
                    out.push(ev);
                }
            }
            Ok(out)
        })
    }
    fn describe_collect(&self) -> CollectDescription {
        Python::attach(|py| {
            self.call_await(py, "describe_collect", vec![])
                .ok()
                .and_then(|r| to_value(&r).ok())
                .map(collect_description)
                .unwrap_or_default()
        })
    }
}

impl ExternalAssets for PyDevice {
    fn collect_asset_docs(
        &mut self,
        index: Option<u64>,
    ) -> Result<Vec<AssetDocument>, DeviceError> {
        Python::attach(|py| {
            // Bluesky's maybe_collect_asset_docs: an index only for WritesStreamAssets.
            let args = if self.caps.index {
                vec![match index {
                    Some(i) => i
                        .into_pyobject(py)
                        .map(|i| i.into_any())
                        .unwrap_or_else(|e| match e {}),
                    None => py.None().into_bound(py),
                }]
            } else {
                vec![]
            };
            self.items(py, "collect_asset_docs", args)?
                .into_iter()
                .map(|item| {
                    let (name, doc): (String, Bound<'_, PyAny>) = item
                        .extract()
                        .map_err(|e| py_err(&self.name, "collect_asset_docs", py, e))?;
                    let doc = to_value(&doc)
                        .map_err(|e| py_err(&self.name, "collect_asset_docs", py, e))?;
                    AssetDocument::from_named(&name, doc).map_err(|reason| DeviceError::Failed {
                        device: self.name.clone(),
                        operation: "collect_asset_docs",
                        reason,
                    })
                })
                .collect()
        })
    }
    fn get_index(&mut self) -> Result<Option<u64>, DeviceError> {
        if !self.caps.index {
            return Ok(None);
        }
        Python::attach(|py| {
            let r = self.call_await(py, "get_index", vec![])?;
            r.extract::<u64>()
                .map(Some)
                .map_err(|e| py_err(&self.name, "get_index", py, e))
        })
    }
}

/// `describe_collect`'s answer: flat `{key: DataKey}` when every value looks
/// like a data key (Bluesky's `_describe_collect_dict_is_valid`), else `{stream: {key: DataKey}}`.
fn collect_description(v: Value) -> CollectDescription {
    let is_key = |k: &Value| {
        k.as_object().is_some_and(|o| {
            ["dtype", "shape", "source"]
                .iter()
                .all(|f| o.contains_key(*f))
        })
    };
    let flat = v
        .as_object()
        .is_some_and(|o| !o.is_empty() && o.values().all(is_key));
    let parsed = if flat {
        serde_json::from_value(v).map(CollectDescription::Flat)
    } else {
        serde_json::from_value(v).map(CollectDescription::Streams)
    };
    parsed.unwrap_or_default()
}

/// The events of an event page (`data`/`timestamps` column-wise, `time` optional).
fn unpack_page(page: Map<String, Value>) -> Result<Vec<Map<String, Value>>, String> {
    let cols = |k: &str| -> Result<Map<String, Value>, String> {
        match page.get(k) {
            Some(Value::Object(m)) => Ok(m.clone()),
            None => Ok(Map::new()),
            Some(other) => Err(format!("an event page's '{k}' must be a dict, got {other}")),
        }
    };
    let (data, ts) = (cols("data")?, cols("timestamps")?);
    let n = data
        .values()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    let at = |m: &Map<String, Value>, i: usize| -> Map<String, Value> {
        m.iter()
            .filter_map(|(k, v)| {
                v.as_array()
                    .and_then(|a| a.get(i))
                    .map(|x| (k.clone(), x.clone()))
            })
            .collect()
    };
    Ok((0..n)
        .map(|i| {
            let mut ev = Map::new();
            ev.insert("data".into(), Value::Object(at(&data, i)));
            ev.insert("timestamps".into(), Value::Object(at(&ts, i)));
            if let Some(t) = page
                .get("time")
                .and_then(Value::as_array)
                .and_then(|a| a.get(i))
            {
                ev.insert("time".into(), t.clone());
            }
            ev
        })
        .collect())
}

impl Stageable for PyDevice {
    fn stage(&mut self) -> Result<(), DeviceError> {
        Python::attach(|py| self.call_await(py, "stage", vec![]).map(|_| ()))
    }
    fn unstage(&mut self) -> Result<(), DeviceError> {
        Python::attach(|py| self.call_await(py, "unstage", vec![]).map(|_| ()))
    }
    fn stage_status(&mut self) -> Result<Option<Status>, DeviceError> {
        self.staging_call("stage")
    }
    fn unstage_status(&mut self) -> Result<Option<Status>, DeviceError> {
        self.staging_call("unstage")
    }
}

impl PyDevice {
    /// `stage()`/`unstage()` as Bluesky calls them: what they answer is a
    /// status when it is one (an ophyd Status, ophyd-async's AsyncStatus),
    /// which a skyrun Status follows; anything else (a list of staged
    /// components, None) means done.
    fn staging_call(&self, method: &'static str) -> Result<Option<Status>, DeviceError> {
        Python::attach(|py| {
            with_loop(py, |_| {
                let st = self.call(py, method, vec![], None)?;
                let is_status = st.hasattr("add_callback").unwrap_or(false)
                    && st.hasattr("done").unwrap_or(false);
                if !is_status {
                    return Ok(None);
                }
                let status = Status::builder()
                    .status_type("Status")
                    .device(self.name.clone(), self.type_name)
                    .build();
                if async_device::is_awaitable(py, &st) {
                    async_device::follow(py, &st, status.clone(), None, false)
                        .map_err(|e| py_err(&self.name, method, py, e))?;
                } else {
                    pair(py, &st, status.clone()).map_err(|e| py_err(&self.name, method, py, e))?;
                }
                crate::status::register_origin(&status, st.clone().unbind());
                Ok(Some(status))
            })
        })
    }
}

impl Configurable for PyDevice {
    fn configure(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<(Readings, Readings), DeviceError> {
        Python::attach(|py| {
            let d = map_to_py(py, settings).map_err(|e| py_err(&self.name, "configure", py, e))?;
            let r = self.call_await(py, "configure", vec![d.into_any()])?;
            from_py::<(Readings, Readings)>(&r, "configure")
                .map_err(|e| py_err(&self.name, "configure", py, e))
        })
    }
}

impl Pausable for PyDevice {
    /// `pause()`; Bluesky's `NoReplayAllowed` raised by it says the plan
    /// must not be replayed from its checkpoint.
    fn pause(&mut self) -> Result<Replay, DeviceError> {
        Python::attach(|py| match self.call_await(py, "pause", vec![]) {
            Ok(_) => Ok(Replay::Allowed),
            Err(e) => {
                let no_replay = py
                    .import("bluesky.utils")
                    .and_then(|m| m.getattr("NoReplayAllowed"))
                    .ok()
                    .zip(raised(&e))
                    .is_some_and(|(cls, err)| err.is_instance(py, &cls));
                if no_replay {
                    Ok(Replay::NotAllowed)
                } else {
                    Err(e)
                }
            }
        })
    }
    fn resume(&mut self) -> Result<(), DeviceError> {
        Python::attach(|py| self.call_await(py, "resume", vec![]).map(|_| ()))
    }
}

/// The Python exception a device error keeps, if it is one.
pub(crate) fn raised(e: &DeviceError) -> Option<&PyErr> {
    match e {
        DeviceError::Raised { cause, .. } => cause.downcast_ref::<Raised>().map(|r| &r.err),
        _ => None,
    }
}

impl Stoppable for PyDevice {
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            let kw = PyDict::new(py);
            kw.set_item("success", success).ok();
            with_loop(py, |driver| {
                let r = obj
                    .call_method("stop", (), Some(&kw))
                    .map_err(|e| py_err(&self.name, "stop", py, e))?;
                self.resolve(py, driver, r, "stop").map(|_| ())
            })
        })
    }
}
