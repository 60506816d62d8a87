//! `skyrun._skyrun`: the native module of the `skyrun` Python package.
//!
//! It runs Bluesky's plans (Python generators of `bluesky.utils.Msg`) on
//! skyrun's RunEngine: [`engine::Engine`] owns a RunEngine actor on the
//! process-wide runtime ([`runtime`]), [`plan`] steps the generator with
//! Bluesky's protocol, [`msg`] converts Bluesky's messages, [`device`] holds
//! skyrun's simulated devices, [`epics`] connects EPICS devices, [`pydevice`] runs ophyd-protocol Python objects
//! as actors, and [`otel`] carries OpenTelemetry context and spans both ways.
//! [`service`] serves blueapi's REST API over Python plans and devices
//! (`python -m skyrun service`).
//! The Python API (`skyrun.RunEngine`, `skyrun.sim`) is in `skyrun/*.py`.

use pyo3::prelude::*;

mod async_device;
mod convert;
mod device;
mod engine;
mod epics;
mod event_loop;
mod local;
mod msg;
mod otel;
mod plan;
mod pydevice;
mod runtime;
mod service;
mod status;

/// Makes skyrun's spans go to the Python SDK TracerProvider `provider`.
#[pyfunction]
fn bridge_spans_to(py: Python<'_>, provider: &Bound<'_, PyAny>) {
    runtime::get(py);
    otel::bridge_to(py, provider);
}

/// Delivers every finished skyrun span to the bridged Python provider.
#[pyfunction]
fn flush_spans(py: Python<'_>) {
    otel::flush(py);
}

/// Flushes and stops the span bridge (called at exit).
#[pyfunction]
fn shutdown_spans(py: Python<'_>) {
    otel::shutdown(py);
}

/// Starts skyrun's own span pipeline from the `OTEL_*` variables (OTLP), for
/// when no Python TracerProvider is set; a no-op without an endpoint.
#[pyfunction]
#[pyo3(signature = (target=None, profile=false))]
fn init_telemetry(py: Python<'_>, target: Option<&str>, profile: bool) -> PyResult<bool> {
    runtime::get(py);
    otel::init_target(py, target, profile)
}

/// The span profile (`--profile`): `(span count, table)`, or None when not profiling.
#[pyfunction]
fn profile_report() -> Option<(usize, String)> {
    otel::profile_report()
}

/// Flushes skyrun's own span pipeline and stops it; its export report, if one ran.
#[pyfunction]
fn shutdown_telemetry(py: Python<'_>) -> Option<String> {
    otel::flush_own(py);
    otel::shutdown_own(py)
}

#[pymodule]
fn _skyrun(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<device::DeviceCore>()?;
    m.add_class::<status::PyStatus>()?;
    m.add_class::<event_loop::LoopDriver>()?;
    m.add_class::<service::ServiceHandle>()?;
    m.add_function(wrap_pyfunction!(service::start_service, m)?)?;
    m.add_function(wrap_pyfunction!(event_loop::drive_loop, m)?)?;
    m.add_function(wrap_pyfunction!(device::spawn_axis, m)?)?;
    m.add_function(wrap_pyfunction!(device::spawn_gauss, m)?)?;
    m.add_function(wrap_pyfunction!(device::spawn_signal, m)?)?;
    m.add_function(wrap_pyfunction!(device::spawn_flyer, m)?)?;
    m.add_function(wrap_pyfunction!(device::parse_device_file, m)?)?;
    m.add_function(wrap_pyfunction!(epics::connect_epics, m)?)?;
    m.add_function(wrap_pyfunction!(bridge_spans_to, m)?)?;
    m.add_function(wrap_pyfunction!(flush_spans, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_spans, m)?)?;
    m.add_function(wrap_pyfunction!(init_telemetry, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_telemetry, m)?)?;
    m.add_function(wrap_pyfunction!(profile_report, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
