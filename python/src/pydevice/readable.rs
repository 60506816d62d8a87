//! Reading a Python device: `read`, `describe`, its configuration, its
//! `hints`, and subscriptions to its readings (`monitor`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use skyrun_actors::{
    DataKeys, DeviceError, Hints, Readable, Readings, Subscribable, Subscribers, Subscription,
};

use super::raised::py_err;
use super::PyDevice;
use crate::convert::{dict_to_map, from_py};

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
