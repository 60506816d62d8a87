//! Bluesky's messages as skyrun's: the one place where a Python
//! `bluesky.utils.Msg` (or anything with `command`, `obj`, `args`, `kwargs`,
//! `run`) becomes a [`skyrun::Msg`].
//!
//! The engine's command table parses Bluesky's form directly (a status
//! `group` given as a keyword argument, devices among the positional
//! arguments as in `Msg('locate', obj1, obj2)`), so the conversion is field by
//! field: Python values become JSON values, devices become device handles
//! (`obj`, and `objs` for devices among `args`).

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use skyrun::Msg;
use skyrun_actors::DeviceHandle;

use crate::convert::{dict_to_map, dict_to_msg_map, to_msg_value};
use crate::device::DeviceCore;
use crate::pydevice;

/// The five fields of a Bluesky message.
pub struct Fields<'py> {
    pub command: Bound<'py, PyString>,
    pub obj: Bound<'py, PyAny>,
    pub args: Bound<'py, PyAny>,
    pub kwargs: Bound<'py, PyAny>,
    pub run: Bound<'py, PyAny>,
}

/// Reads the fields of `m`: by position for a `bluesky.utils.Msg` (a
/// 5-tuple), by attribute otherwise.
pub fn fields<'py>(m: &Bound<'py, PyAny>) -> PyResult<Fields<'py>> {
    let py = m.py();
    let (command, obj, args, kwargs, run) = match m.cast::<PyTuple>() {
        Ok(t) if t.len() == 5 => (
            t.get_item(0)?,
            t.get_item(1)?,
            t.get_item(2)?,
            t.get_item(3)?,
            t.get_item(4)?,
        ),
        _ => {
            if m.is_none() {
                return Err(PyTypeError::new_err("the plan yielded None, not a Msg"));
            }
            let get = |name: &Bound<'py, PyString>| -> PyResult<Bound<'py, PyAny>> {
                m.getattr(name).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "the plan yielded {}, not a Msg (it has no '{}')",
                        m.repr().map(|r| r.to_string()).unwrap_or_default(),
                        name
                    ))
                })
            };
            (
                get(intern!(py, "command"))?,
                get(intern!(py, "obj"))?,
                get(intern!(py, "args"))?,
                get(intern!(py, "kwargs"))?,
                m.getattr(intern!(py, "run"))
                    .unwrap_or_else(|_| py.None().into_bound(py)),
            )
        }
    };
    let command = command.cast_into::<PyString>().map_err(|e| {
        PyTypeError::new_err(format!(
            "a message command must be a str, got {}",
            e.into_inner()
        ))
    })?;
    Ok(Fields {
        command,
        obj,
        args,
        kwargs,
        run,
    })
}

/// The device actor of a message's `obj`: a skyrun device's own, or one
/// hosting the Python object (ophyd's protocol). Runs on the runtime thread.
pub fn device_of(obj: &Bound<'_, PyAny>) -> PyResult<Option<DeviceHandle>> {
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(core) = obj.getattr(intern!(obj.py(), "_skyrun_core")) {
        if let Ok(core) = core.cast::<DeviceCore>() {
            return Ok(Some(core.get().handle.clone()));
        }
    }
    pydevice::handle_for(obj).map(Some)
}

/// The skyrun message for Bluesky message `f`, with `kwargs` in place of its own when given.
pub fn to_msg(f: &Fields<'_>, kwargs: Option<&Bound<'_, PyAny>>) -> PyResult<Msg> {
    let command = f.command.to_str()?;
    let mut msg = Msg::new(command);
    msg.obj = device_of(&f.obj)?;
    let args = f
        .args
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("Msg.args must be a tuple"))?;
    for a in args.iter() {
        // `Msg('locate', one, two)`: every object that can be located is
        // one of the message's objects, named or not (Bluesky's Locatable).
        let locatable =
            command == "locate" && a.hasattr(intern!(a.py(), "locate")).unwrap_or(false);
        if locatable || is_device(&a) {
            msg.objs.extend(device_of(&a)?);
        } else {
            msg.args
                .push(to_msg_value(&a).map_err(|e| arg_error(command, e))?);
        }
    }
    let kwargs = kwargs.unwrap_or(&f.kwargs);
    if let Ok(d) = kwargs.cast::<PyDict>() {
        if !d.is_empty() {
            // open_run's keywords are the start document's metadata: they must
            // be JSON (a clear error otherwise), never a placeholder.
            msg.kwargs = if command == "open_run" {
                dict_to_map(d)
            } else {
                dict_to_msg_map(d)
            }
            .map_err(|e| arg_error(command, e))?;
        }
    }
    if !f.run.is_none() {
        msg.run = Some(f.run.str()?.to_str()?.to_owned());
    }
    Ok(msg)
}

/// Whether a positional argument is a device rather than a value: a skyrun
/// device, or an object with a `name` and a device method.
fn is_device(a: &Bound<'_, PyAny>) -> bool {
    use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
    if a.is_none()
        || a.is_instance_of::<PyInt>()
        || a.is_instance_of::<PyFloat>()
        || a.is_instance_of::<PyString>()
        || a.is_instance_of::<PyBool>()
        || a.is_instance_of::<PyList>()
        || a.is_instance_of::<PyTuple>()
        || a.is_instance_of::<PyDict>()
    {
        return false;
    }
    let py = a.py();
    a.hasattr(intern!(py, "_skyrun_core")).unwrap_or(false)
        || (a.hasattr(intern!(py, "name")).unwrap_or(false)
            && [
                "read",
                "set",
                "locate",
                "kickoff",
                "trigger",
                "collect",
                "collect_pages",
                "describe_collect",
                "collect_asset_docs",
                "stage",
            ]
            .iter()
            .any(|m| a.hasattr(*m).unwrap_or(false)))
}

fn arg_error(command: &str, e: PyErr) -> PyErr {
    Python::attach(|py| PyTypeError::new_err(format!("'{command}' message: {}", e.value(py))))
}
