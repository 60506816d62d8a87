//! The methods that answer a status (`set`, `trigger`, `kickoff`, `stage`,
//! ...): what the object answers (an ophyd Status, an awaitable status of
//! ophyd-async's) completes a skyrun Status, which records the span.

use opentelemetry::trace::TraceContextExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;
use skyrun_actors::{DeviceContext, DeviceError, Readable, Status, StatusError};

use super::raised::py_err;
use super::{leak_type_name, PyDevice};
use crate::async_device::{self, resolve, with_loop};
use crate::convert::to_py;
use crate::event_loop::LoopDriver;

impl PyDevice {
    /// Calls a Status-returning method and pairs what it answers with a
    /// skyrun Status: an ophyd Status (which records its own span) completes
    /// it; an awaitable status (ophyd-async's) completes a traced one.
    pub(super) fn status_call(
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
    pub(super) fn follow_awaitable(
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
    pub(super) fn start_of_move(
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
pub(super) fn pair(py: Python<'_>, st: &Bound<'_, PyAny>, status: Status) -> PyResult<()> {
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

impl PyDevice {
    /// `stage()`/`unstage()` as Bluesky calls them: what they answer is a
    /// status when it is one (an ophyd Status, ophyd-async's AsyncStatus),
    /// which a skyrun Status follows; anything else (a list of staged
    /// components, None) means done.
    pub(super) fn staging_call(&self, method: &'static str) -> Result<Option<Status>, DeviceError> {
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
