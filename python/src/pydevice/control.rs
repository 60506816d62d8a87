//! The capabilities of a Python device that are one call each: `trigger`,
//! `prepare`, `stage`/`unstage`, `configure`, `pause`/`resume` and `stop`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};
use skyrun_actors::{
    Configurable, DeviceContext, DeviceError, Pausable, Preparable, Readings, Replay, Stageable,
    Status, Stoppable, Triggerable,
};

use super::raised::{py_err, raised};
use super::PyDevice;
use crate::async_device::with_loop;
use crate::convert::{from_py, map_to_py};

impl Preparable for PyDevice {
    fn prepare(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("prepare", vec![value.clone()], ctx)
    }
}

impl Triggerable for PyDevice {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("trigger", vec![], ctx)
    }
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
