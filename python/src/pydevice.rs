//! Python objects that follow ophyd's protocol (ophyd.sim's own devices, a
//! user's class) run as skyrun device actors: each request calls the object's
//! method with the GIL, inside the OpenTelemetry context the request carried
//! (so ophyd's own "Ophyd Status" span is a child of skyrun's set span), and
//! an ophyd Status completes the skyrun Status it is paired with.

use std::collections::HashMap;

use indexmap::IndexMap;
use opentelemetry::Context;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::{Map, Value};
use skyrun_actors::{
    CollectedEvent, Configurable, DataKeys, Device, DeviceContext, DeviceError, DeviceHandle,
    Flyable, Movable, Readable, Readings, Stageable, Status, StatusError, Stoppable, Triggerable,
};

use crate::convert::{from_py, map_to_py, to_py, to_value};
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
}

/// An ophyd-protocol Python object hosted by a skyrun device actor.
pub struct PyDevice {
    obj: Py<PyAny>,
    name: String,
    type_name: &'static str,
    repr: String,
    caps: Caps,
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

fn py_err(device: &str, operation: &'static str, py: Python<'_>, e: PyErr) -> DeviceError {
    DeviceError::Failed {
        device: device.to_owned(),
        operation,
        reason: e
            .value(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| e.to_string()),
    }
}

impl PyDevice {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let has = |a: &str| obj.hasattr(a).unwrap_or(false);
        let name: String = obj.getattr("name")?.extract()?;
        Ok(PyDevice {
            obj: obj.clone().unbind(),
            type_name: leak_type_name(obj.get_type().name()?.to_string()),
            repr: obj.repr()?.to_string(),
            caps: Caps {
                read: has("read") && has("describe"),
                set: has("set"),
                trigger: has("trigger"),
                fly: has("kickoff") && has("complete"),
                stage: has("stage") && has("unstage"),
                configure: has("configure"),
                stop: has("stop"),
            },
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

    fn readings(&self, method: &'static str) -> Result<Readings, DeviceError> {
        Python::attach(|py| {
            let r = self.call(py, method, vec![], None)?;
            from_py::<Readings>(&r, method).map_err(|e| py_err(&self.name, method, py, e))
        })
    }

    fn data_keys(&self, method: &'static str) -> DataKeys {
        Python::attach(|py| {
            self.call(py, method, vec![], None)
                .and_then(|r| {
                    from_py::<DataKeys>(&r, method).map_err(|e| py_err(&self.name, method, py, e))
                })
                .unwrap_or_else(|e| {
                    eprintln!("skyrun: {e}");
                    DataKeys::new()
                })
        })
    }

    /// Calls a Status-returning method and pairs the ophyd Status with a skyrun one.
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
            let st = self.call(py, method, pyargs, Some(&parent))?;
            let status = Status::builder()
                .status_type(if method == "set" {
                    "MoveStatus"
                } else {
                    "Status"
                })
                .device(self.name.clone(), self.type_name)
                .build();
            pair(py, &st, status.clone()).map_err(|e| py_err(&self.name, method, py, e))?;
            Ok(status)
        })
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
}

impl Readable for PyDevice {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        self.readings("read")
    }
    fn describe(&self) -> DataKeys {
        self.data_keys("describe")
    }
    fn read_configuration(&self) -> Readings {
        let has = Python::attach(|py| {
            self.obj
                .bind(py)
                .hasattr("read_configuration")
                .unwrap_or(false)
        });
        if has {
            self.readings("read_configuration").unwrap_or_default()
        } else {
            Readings::new()
        }
    }
    fn describe_configuration(&self) -> DataKeys {
        if Python::attach(|py| {
            self.obj
                .bind(py)
                .hasattr("describe_configuration")
                .unwrap_or(false)
        }) {
            self.data_keys("describe_configuration")
        } else {
            DataKeys::new()
        }
    }
    fn hints(&self) -> Vec<String> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            obj.getattr("hints")
                .and_then(|h| h.get_item("fields"))
                .and_then(|f| f.extract::<Vec<String>>())
                .unwrap_or_default()
        })
    }
}

impl Movable for PyDevice {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("set", vec![value.clone()], ctx)
    }
    fn position(&self) -> Value {
        Python::attach(|py| {
            self.obj
                .bind(py)
                .getattr("position")
                .and_then(|p| to_value(&p))
                .unwrap_or(Value::Null)
        })
    }
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
        let stream = self
            .describe_collect()
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| self.name.clone());
        Python::attach(|py| {
            let it = self.call(py, "collect", vec![], None)?;
            let mut out = Vec::new();
            let iter = it
                .try_iter()
                .map_err(|e| py_err(&self.name, "collect", py, e))?;
            for ev in iter {
                let ev = ev.map_err(|e| py_err(&self.name, "collect", py, e))?;
                let v = to_value(&ev).map_err(|e| py_err(&self.name, "collect", py, e))?;
                let mut m: Map<String, Value> = match v {
                    Value::Object(m) => m,
                    other => {
                        return Err(DeviceError::Failed {
                            device: self.name.clone(),
                            operation: "collect",
                            reason: format!("an event must be a dict, got {other}"),
                        })
                    }
                };
                m.entry("stream")
                    .or_insert_with(|| Value::String(stream.clone()));
                let ev: CollectedEvent =
                    serde_json::from_value(Value::Object(m)).map_err(|e| DeviceError::Failed {
                        device: self.name.clone(),
                        operation: "collect",
                        reason: e.to_string(),
                    })?;
                out.push(ev);
            }
            Ok(out)
        })
    }
    fn describe_collect(&self) -> IndexMap<String, DataKeys> {
        Python::attach(|py| {
            self.call(py, "describe_collect", vec![], None)
                .ok()
                .and_then(|r| from_py::<IndexMap<String, DataKeys>>(&r, "describe_collect").ok())
                .unwrap_or_default()
        })
    }
}

impl Stageable for PyDevice {
    fn stage(&mut self) -> Result<(), DeviceError> {
        Python::attach(|py| self.call(py, "stage", vec![], None).map(|_| ()))
    }
    fn unstage(&mut self) -> Result<(), DeviceError> {
        Python::attach(|py| self.call(py, "unstage", vec![], None).map(|_| ()))
    }
}

impl Configurable for PyDevice {
    fn configure(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<(Readings, Readings), DeviceError> {
        Python::attach(|py| {
            let d = map_to_py(py, settings).map_err(|e| py_err(&self.name, "configure", py, e))?;
            let r = self.call(py, "configure", vec![d.into_any()], None)?;
            from_py::<(Readings, Readings)>(&r, "configure")
                .map_err(|e| py_err(&self.name, "configure", py, e))
        })
    }
}

impl Stoppable for PyDevice {
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            let kw = PyDict::new(py);
            kw.set_item("success", success).ok();
            obj.call_method("stop", (), Some(&kw))
                .map(|_| ())
                .map_err(|e| py_err(&self.name, "stop", py, e))
        })
    }
}
