//! `DeviceCore`: the handle of a device actor (a skyrun simulated device, or
//! a Python object run as an actor), and the constructors of skyrun's
//! simulated devices that `skyrun.sim` wraps with ophyd.sim's signatures.
//!
//! Calling a device method from Python sends the device actor a request and
//! waits for its answer (detached from Python). Inside a plan, devices are
//! reached through messages instead; see `runtime::Runtime::block_on`.

use opentelemetry::Context;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use skyrun_actors::sim::{Noise, PositionProbe, SynAxis, SynFlyer, SynGauss, SynSignal};
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};

use crate::convert::{dict_to_map, ser_to_py, to_value};
use crate::runtime;
use crate::status::PyStatus;

/// A device actor, as the Python device objects of `skyrun.sim` hold it.
#[pyclass(name = "DeviceCore", module = "skyrun._skyrun", frozen)]
pub struct DeviceCore {
    pub handle: DeviceHandle,
    probe: Option<PositionProbe>,
}

impl DeviceCore {
    pub fn new(handle: DeviceHandle, probe: Option<PositionProbe>) -> Self {
        DeviceCore { handle, probe }
    }

    fn request<'py>(&self, py: Python<'py>, op: DeviceOp) -> PyResult<DeviceReply> {
        let handle = self.handle.clone();
        let what = format!("{}.{}()", self.handle.name(), op.name());
        runtime::get(py)
            .block_on(py, &what, move || async move {
                handle.request(op, &Context::new()).await
            })?
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

fn unexpected(op: &str) -> PyErr {
    PyRuntimeError::new_err(format!("the device answered {op} with something else"))
}

#[pymethods]
impl DeviceCore {
    /// The device name.
    #[getter]
    fn name(&self) -> &str {
        self.handle.name()
    }

    /// ophyd's class name of the device.
    #[getter]
    fn type_name(&self) -> &'static str {
        self.handle.type_name()
    }

    fn __repr__(&self) -> &str {
        self.handle.repr()
    }

    /// `read()`: `{key: {"value": v, "timestamp": t}}`.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::Read)? {
            DeviceReply::Readings(r) => ser_to_py(py, &r),
            _ => Err(unexpected("read")),
        }
    }

    /// `describe()`: the data keys of `read()`.
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::Describe)? {
            DeviceReply::DataKeys(k) => ser_to_py(py, &k),
            _ => Err(unexpected("describe")),
        }
    }

    /// `read_configuration()`.
    fn read_configuration<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::ReadConfiguration)? {
            DeviceReply::Readings(r) => ser_to_py(py, &r),
            _ => Err(unexpected("read_configuration")),
        }
    }

    /// `describe_configuration()`.
    fn describe_configuration<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::DescribeConfiguration)? {
            DeviceReply::DataKeys(k) => ser_to_py(py, &k),
            _ => Err(unexpected("describe_configuration")),
        }
    }

    /// The device's hints (`{"fields": [...]}` for skyrun's devices), or
    /// None when it has none.
    #[getter]
    fn hints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::Hints)? {
            DeviceReply::Hints(h) => ser_to_py(py, &h),
            _ => Err(unexpected("hints")),
        }
    }

    /// `set(value)`: a Status that completes on arrival.
    fn set(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<PyStatus> {
        match self.request(py, DeviceOp::Set(to_value(value)?))? {
            DeviceReply::Status(s) => Ok(PyStatus { inner: s }),
            _ => Err(unexpected("set")),
        }
    }

    /// `trigger()`: a Status that completes when the reading is ready.
    fn trigger(&self, py: Python<'_>) -> PyResult<PyStatus> {
        match self.request(py, DeviceOp::Trigger)? {
            DeviceReply::Status(s) => Ok(PyStatus { inner: s }),
            _ => Err(unexpected("trigger")),
        }
    }

    /// `kickoff()` of a flyer.
    fn kickoff(&self, py: Python<'_>) -> PyResult<PyStatus> {
        match self.request(py, DeviceOp::Kickoff)? {
            DeviceReply::Status(s) => Ok(PyStatus { inner: s }),
            _ => Err(unexpected("kickoff")),
        }
    }

    /// `complete()` of a flyer.
    fn complete(&self, py: Python<'_>) -> PyResult<PyStatus> {
        match self.request(py, DeviceOp::Complete)? {
            DeviceReply::Status(s) => Ok(PyStatus { inner: s }),
            _ => Err(unexpected("complete")),
        }
    }

    /// `describe_collect()` of a flyer.
    fn describe_collect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::DescribeCollect)? {
            DeviceReply::CollectKeys(k) => ser_to_py(py, &k),
            _ => Err(unexpected("describe_collect")),
        }
    }

    /// `collect()` of a flyer: the events, as dicts.
    fn collect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.request(py, DeviceOp::Collect)? {
            DeviceReply::Collected(ev) => ser_to_py(py, &ev),
            _ => Err(unexpected("collect")),
        }
    }

    /// `stage()`.
    fn stage(&self, py: Python<'_>) -> PyResult<()> {
        self.request(py, DeviceOp::Stage).map(|_| ())
    }

    /// `unstage()`.
    fn unstage(&self, py: Python<'_>) -> PyResult<()> {
        self.request(py, DeviceOp::Unstage).map(|_| ())
    }

    /// `stop(success)`.
    #[pyo3(signature = (success=false))]
    fn stop(&self, py: Python<'_>, success: bool) -> PyResult<()> {
        self.request(py, DeviceOp::Stop { success }).map(|_| ())
    }

    /// `configure(settings)`: `(old, new)` configuration readings.
    fn configure<'py>(
        &self,
        py: Python<'py>,
        settings: &Bound<'py, PyDict>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        match self.request(py, DeviceOp::Configure(dict_to_map(settings)?))? {
            DeviceReply::Configured { old, new } => {
                Ok((ser_to_py(py, &old)?, ser_to_py(py, &new)?))
            }
            _ => Err(unexpected("configure")),
        }
    }

    /// The position of a motor (its readback), read without a round trip when
    /// the device is a skyrun SynAxis.
    #[getter]
    fn position<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(p) = &self.probe {
            return Ok(pyo3::types::PyFloat::new(py, p.position()).into_any());
        }
        match self.request(py, DeviceOp::Position)? {
            DeviceReply::Position(v) => crate::convert::to_py(py, &v),
            _ => Err(unexpected("position")),
        }
    }

    /// Whether the device has a position probe (it is a skyrun motor).
    #[getter]
    fn has_probe(&self) -> bool {
        self.probe.is_some()
    }
}

fn spawn_on_runtime<D, F>(py: Python<'_>, what: &str, make: F) -> PyResult<DeviceCore>
where
    D: skyrun_actors::Device,
    F: FnOnce() -> (D, Option<PositionProbe>) + Send + 'static,
{
    let rt = runtime::get(py);
    if rt.is_current() {
        let (d, p) = make();
        return Ok(DeviceCore::new(DeviceHandle::spawn(d), p));
    }
    let (handle, probe) = rt.block_on(py, what, move || async move {
        let (d, p) = make();
        (DeviceHandle::spawn(d), p)
    })?;
    Ok(DeviceCore::new(handle, probe))
}

fn finite(name: &str, what: &str, x: f64) -> PyResult<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(PyValueError::new_err(format!(
            "{name}: {what} must be a finite number, got {x}"
        )))
    }
}

/// Spawns a skyrun `SynAxis` actor.
#[pyfunction]
#[pyo3(signature = (name, value=0.0, velocity=None, settle_time=0.0, limits=None, units=None, timeout=None))]
#[allow(clippy::too_many_arguments)]
pub fn spawn_axis(
    py: Python<'_>,
    name: String,
    value: f64,
    velocity: Option<f64>,
    settle_time: f64,
    limits: Option<(f64, f64)>,
    units: Option<String>,
    timeout: Option<f64>,
) -> PyResult<DeviceCore> {
    finite(&name, "value", value)?;
    finite(&name, "settle_time", settle_time)?;
    if settle_time < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name}: settle_time must not be negative, got {settle_time}"
        )));
    }
    let what = format!("SynAxis(name={name:?})");
    spawn_on_runtime(py, &what, move || {
        let mut m = SynAxis::new(name)
            .with_position(value)
            .with_settle_time(settle_time);
        if let Some(v) = velocity {
            m = m.with_velocity(v);
        }
        if let Some((lo, hi)) = limits {
            m = m.with_limits(lo, hi);
        }
        if let Some(u) = units {
            m = m.with_units(u);
        }
        if let Some(t) = timeout {
            m = m.with_timeout(t);
        }
        let p = m.probe();
        (m, Some(p))
    })
}

/// Spawns a skyrun `SynGauss` detector bound to the motor `motor`.
#[pyfunction]
#[pyo3(signature = (name, motor, center, imax, sigma=1.0, noise="none", noise_multiplier=1.0, exposure_time=0.0))]
#[allow(clippy::too_many_arguments)]
pub fn spawn_gauss(
    py: Python<'_>,
    name: String,
    motor: &DeviceCore,
    center: f64,
    imax: f64,
    sigma: f64,
    noise: &str,
    noise_multiplier: f64,
    exposure_time: f64,
) -> PyResult<DeviceCore> {
    let probe = motor.probe.clone().ok_or_else(|| {
        PyValueError::new_err(format!(
            "{name}: the motor must be a skyrun.sim.SynAxis, not {}",
            motor.handle.type_name()
        ))
    })?;
    let noise = match noise {
        "none" => Noise::None,
        "poisson" => Noise::Poisson,
        "uniform" => Noise::Uniform(noise_multiplier),
        other => {
            return Err(PyValueError::new_err(format!(
                "{name}: noise must be 'none', 'poisson' or 'uniform', not {other:?}"
            )))
        }
    };
    for (what, x) in [
        ("center", center),
        ("Imax", imax),
        ("sigma", sigma),
        ("exposure_time", exposure_time),
    ] {
        finite(&name, what, x)?;
    }
    let what = format!("SynGauss(name={name:?})");
    spawn_on_runtime(py, &what, move || {
        let d = SynGauss::new(name, probe, center, imax, sigma)
            .with_noise(noise)
            .with_exposure_time(exposure_time);
        (d, None)
    })
}

/// Spawns a skyrun `SynSignal` holding `value`.
#[pyfunction]
#[pyo3(signature = (name, value=None, units=None))]
pub fn spawn_signal(
    py: Python<'_>,
    name: String,
    value: Option<&Bound<'_, PyAny>>,
    units: Option<String>,
) -> PyResult<DeviceCore> {
    let v = match value {
        Some(v) => to_value(v)?,
        None => serde_json::Value::from(0.0),
    };
    let what = format!("SynSignal(name={name:?})");
    spawn_on_runtime(py, &what, move || {
        let mut s = SynSignal::new(name, v);
        if let Some(u) = units {
            s = s.with_units(u);
        }
        (s, None)
    })
}

/// Spawns a skyrun `SynFlyer` of `num_points` points over `[start, stop]`.
#[pyfunction]
#[pyo3(signature = (name, num_points, start=-1.0, stop=1.0, duration=0.0))]
pub fn spawn_flyer(
    py: Python<'_>,
    name: String,
    num_points: usize,
    start: f64,
    stop: f64,
    duration: f64,
) -> PyResult<DeviceCore> {
    let what = format!("SynFlyer(name={name:?})");
    spawn_on_runtime(py, &what, move || {
        (
            SynFlyer::new(name, num_points)
                .with_range(start, stop)
                .with_duration(duration),
            None,
        )
    })
}

/// Readings as a Python dict (used by the plan driver for `read` replies).
pub fn readings_to_py<'py>(
    py: Python<'py>,
    r: &skyrun_actors::Readings,
) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    for (k, reading) in r {
        let inner = PyDict::new(py);
        inner.set_item("value", crate::convert::to_py(py, &reading.value)?)?;
        inner.set_item("timestamp", reading.timestamp)?;
        d.set_item(k, inner)?;
    }
    Ok(d.into_any())
}

/// The devices a skyrun device file (TOML) declares, checked, as dicts
/// (`name`, `kind` and the settings) in declaration order, motors first.
#[pyfunction]
pub fn parse_device_file<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    use skyrun::config::{DeviceConfig, DeviceSet};
    let set = DeviceSet::load(&path).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut out = Vec::with_capacity(set.len());
    for spec in set.iter() {
        let d = PyDict::new(py);
        d.set_item("name", &spec.name)?;
        match &spec.config {
            DeviceConfig::Motor(m) => {
                d.set_item("kind", "motor")?;
                d.set_item("position", m.position)?;
                d.set_item("velocity", m.velocity)?;
                d.set_item("settle_time", m.settle_time)?;
                d.set_item("timeout", m.timeout)?;
                d.set_item("limits", m.limits)?;
                d.set_item("units", &m.units)?;
            }
            DeviceConfig::Detector(c) => {
                d.set_item("kind", "detector")?;
                d.set_item("motor", &c.motor)?;
                d.set_item("center", c.center)?;
                d.set_item("imax", c.imax)?;
                d.set_item("sigma", c.sigma)?;
                let (noise, mult) = match c.noise {
                    Noise::None => ("none", 1.0),
                    Noise::Poisson => ("poisson", 1.0),
                    Noise::Uniform(m) => ("uniform", m),
                };
                d.set_item("noise", noise)?;
                d.set_item("noise_multiplier", mult)?;
                d.set_item("exposure_time", c.exposure_time)?;
            }
            DeviceConfig::Signal(c) => {
                d.set_item("kind", "signal")?;
                d.set_item("value", crate::convert::to_py(py, &c.value)?)?;
                d.set_item("units", &c.units)?;
            }
            DeviceConfig::Flyer(c) => {
                d.set_item("kind", "flyer")?;
                d.set_item("num_points", c.num_points)?;
                d.set_item("duration", c.duration)?;
                d.set_item("start", c.start)?;
                d.set_item("stop", c.stop)?;
            }
            DeviceConfig::Epics(e) => {
                use skyrun::config::EpicsDevice;
                match &e.device {
                    EpicsDevice::Motor { prefix } => {
                        d.set_item("kind", "epics_motor")?;
                        d.set_item("prefix", prefix)?;
                    }
                    EpicsDevice::Signal {
                        read_pv,
                        write_pv,
                        read_only,
                        put_complete,
                        tolerance,
                    } => {
                        d.set_item("kind", "epics_signal")?;
                        d.set_item("read_pv", read_pv)?;
                        d.set_item("write_pv", write_pv)?;
                        d.set_item("read_only", read_only)?;
                        d.set_item("put_complete", put_complete)?;
                        d.set_item("tolerance", tolerance)?;
                    }
                }
                d.set_item("timeout", e.timeout)?;
            }
            DeviceConfig::Remote(r) => {
                return Err(PyValueError::new_err(format!(
                    "{}: device '{}' is on device server '{}': remote devices are not supported from Python yet",
                    path.display(),
                    spec.name,
                    r.server
                )))
            }
        }
        out.push(d);
    }
    Ok(out)
}
