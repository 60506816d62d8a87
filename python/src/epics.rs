//! EPICS devices for Python (`skyrun.epics`): `EpicsMotor`, `EpicsSignal`
//! and `EpicsSignalRO` of skyrun-epics, connected over Channel Access (or
//! PVAccess for `pva://` names, experimental) and run as device actors on the package's runtime, returned as
//! [`DeviceCore`]s that `skyrun/epics.py` wraps with ophyd's signatures.
//!
//! One Channel Access client serves the whole process (started on first
//! use, configured from `EPICS_CA_*` then; the PVAccess one with the first
//! `pva://` name, from `EPICS_PVA_*`). [`connect_epics`] connects any
//! number of devices at once (one `connect_all` round, one timeout), and a
//! PV that does not connect raises `TimeoutError` naming every missing PV
//! and its device, as ophyd's `wait_for_connection` raises `TimeoutError`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use skyrun_actors::{SpanTracer, STATUS_TRACER_SCOPE};
use skyrun_epics::{connect_devices, EpicsSpec, PvClient, PvClients, SetOptions};

use crate::device::DeviceCore;
use crate::runtime;

static CLIENT: Mutex<Option<Arc<PvClients>>> = Mutex::new(None);

/// The process's PV clients, started on first use.
fn client() -> PyResult<Arc<PvClients>> {
    let mut c = CLIENT.lock();
    if let Some(c) = c.as_ref() {
        return Ok(c.clone());
    }
    let started = PvClients::start().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    *c = Some(started.clone());
    Ok(started)
}

fn item<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => v.extract::<T>().map(Some).map_err(|e| {
            let e: PyErr = e.into();
            PyValueError::new_err(format!("'{key}' of an EPICS device: {e}"))
        }),
        _ => Ok(None),
    }
}

fn required<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    item(d, key)?.ok_or_else(|| PyValueError::new_err(format!("an EPICS device needs '{key}'")))
}

/// An EPICS device from a dict as `parse_device_file` gives it (`kind`
/// `epics_motor` or `epics_signal`, `name`, the PVs, `timeout`, ...).
fn spec(d: &Bound<'_, PyDict>) -> PyResult<EpicsSpec> {
    let kind: String = required(d, "kind")?;
    let name: String = required(d, "name")?;
    let timeout: Option<f64> = item(d, "timeout")?;
    if let Some(t) = timeout.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(PyValueError::new_err(format!(
            "{name}: timeout must be a positive number of seconds, got {t}"
        )));
    }
    match kind.as_str() {
        "epics_motor" => Ok(EpicsSpec::Motor {
            name,
            prefix: required(d, "prefix")?,
            timeout,
        }),
        "epics_signal" => {
            let tolerance: Option<f64> = item(d, "tolerance")?;
            if let Some(t) = tolerance.filter(|t| !(t.is_finite() && *t >= 0.0)) {
                return Err(PyValueError::new_err(format!(
                    "{name}: tolerance must be a non-negative number, got {t}"
                )));
            }
            Ok(EpicsSpec::Signal {
                name,
                read_pv: required(d, "read_pv")?,
                write_pv: item(d, "write_pv")?,
                read_only: item(d, "read_only")?.unwrap_or(false),
                options: SetOptions {
                    put_complete: item(d, "put_complete")?.unwrap_or(false),
                    tolerance,
                    timeout,
                },
            })
        }
        other => Err(PyValueError::new_err(format!(
            "{name}: '{other}' is not an EPICS device kind (epics_motor, epics_signal)"
        ))),
    }
}

/// Connects the EPICS devices `specs` (dicts, see [`spec`]) at once, within
/// `connect_timeout` seconds, and starts each as a device actor.
#[pyfunction]
#[pyo3(signature = (specs, connect_timeout=2.0))]
pub fn connect_epics(
    py: Python<'_>,
    specs: Vec<Bound<'_, PyDict>>,
    connect_timeout: f64,
) -> PyResult<Vec<DeviceCore>> {
    if !(connect_timeout.is_finite() && connect_timeout > 0.0 && connect_timeout <= 3600.0) {
        return Err(PyValueError::new_err(format!(
            "connection_timeout must be between 0 and 3600 seconds, got {connect_timeout}"
        )));
    }
    let specs: Vec<EpicsSpec> = specs.iter().map(spec).collect::<PyResult<_>>()?;
    let rt = runtime::get(py);
    if rt.is_current() {
        return Err(PyRuntimeError::new_err(
            "EPICS devices cannot be connected from inside a running plan: connect them before",
        ));
    }
    let ca = client()?;
    let timeout = Duration::from_secs_f64(connect_timeout);
    let (devices, _) = py
        .detach(|| {
            ca.runtime()
                .block_on(connect_devices(ca.as_ref(), &specs, timeout))
        })
        .map_err(|e| PyTimeoutError::new_err(e.to_string()))?;
    let what = format!("connecting {} EPICS devices", devices.len());
    let handles = rt.block_on(py, &what, move || async move {
        devices
            .into_iter()
            .map(|d| d.spawn(SpanTracer::global(STATUS_TRACER_SCOPE)))
            .collect::<Vec<_>>()
    })?;
    Ok(handles
        .into_iter()
        .map(|h| DeviceCore::new(h, None))
        .collect())
}
