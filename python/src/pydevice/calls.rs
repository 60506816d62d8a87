//! Calling the Python object's methods: inside a span context, with
//! Bluesky's event loop running, an awaitable answer awaited on it, and
//! readings or data keys taken from what they answer.

use opentelemetry::Context;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use skyrun_actors::{DataKeys, DeviceError, Readings};

use super::raised::{ill_answer, py_err};
use super::PyDevice;
use crate::async_device::{resolve, with_loop};
use crate::convert::from_py;
use crate::event_loop::LoopDriver;
use crate::otel;

impl PyDevice {
    /// Calls `method(*args)` on the object inside the span context `parent`.
    pub(super) fn call<'py>(
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
    pub(super) fn call_await<'py>(
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
    pub(super) fn items<'py>(
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

    pub(super) fn resolve<'py>(
        &self,
        py: Python<'py>,
        driver: Option<&LoopDriver>,
        r: Bound<'py, PyAny>,
        method: &'static str,
    ) -> Result<Bound<'py, PyAny>, DeviceError> {
        resolve(py, driver, r, &format!("{}.{method}()", self.name))
            .map_err(|e| py_err(&self.name, method, py, e))
    }

    pub(super) fn readings(&self, method: &'static str) -> Result<Readings, DeviceError> {
        Python::attach(|py| {
            let r = self.call_await(py, method, vec![])?;
            from_py::<Readings>(&r, method).map_err(|e| self.ill_answer(py, method, &r, e))
        })
    }

    pub(super) fn data_keys(&self, method: &'static str) -> Result<DataKeys, DeviceError> {
        Python::attach(|py| {
            let r = self.call_await(py, method, vec![])?;
            from_py::<DataKeys>(&r, method).map_err(|e| self.ill_answer(py, method, &r, e))
        })
    }

    pub(super) fn ill_answer(
        &self,
        py: Python<'_>,
        method: &'static str,
        answer: &Bound<'_, PyAny>,
        e: PyErr,
    ) -> DeviceError {
        ill_answer(&self.name, py, method, answer, e)
    }

    /// Whether the object has `method` (an optional one of ophyd's protocol).
    pub(super) fn has(&self, method: &str) -> bool {
        Python::attach(|py| self.obj.bind(py).hasattr(method).unwrap_or(false))
    }
}
