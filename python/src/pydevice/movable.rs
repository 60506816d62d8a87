//! Moving and locating a Python device: `set`, its position, and
//! `locate()` (a coroutine one run alone, or with others at once).

use futures::FutureExt;
use pyo3::prelude::*;
use serde_json::Value;
use skyrun_actors::{DeviceContext, DeviceError, Later, Movable, Status};

use super::raised::{ill_answer, py_err};
use super::PyDevice;
use crate::async_device::{self, with_loop};
use crate::convert::to_value;

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
