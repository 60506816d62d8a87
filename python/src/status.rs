//! `skyrun.Status`: a skyrun device Status as Python sees it, with the parts
//! of ophyd's StatusBase that plans and callbacks use (`done`, `success`,
//! `add_callback`, `wait`, `exception`), and `watch` when the device's own
//! status reports progress (ophyd-async's `WatchableAsyncStatus`).

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use skyrun_actors::Status as RustStatus;

/// The Python status object each pending skyrun Status of a Python device
/// stands for (the ophyd Status or ophyd-async AsyncStatus its method
/// returned), so a plan gets that object back, as Bluesky gives it; an entry
/// leaves when its status completes (the oldest past [`ORIGINS_HELD`]).
static ORIGINS: Mutex<Vec<(RustStatus, Py<PyAny>)>> = Mutex::new(Vec::new());
const ORIGINS_HELD: usize = 10_000;

/// Records that `status` stands for Python status `origin`.
pub fn register_origin(status: &RustStatus, origin: Py<PyAny>) {
    {
        let mut o = ORIGINS.lock();
        if o.len() >= ORIGINS_HELD {
            o.remove(0);
        }
        o.push((status.clone(), origin));
    }
    let me = status.clone();
    status.add_callback(move |_| ORIGINS.lock().retain(|(s, _)| !s.same_as(&me)));
}

/// The Python status `status` stands for, while it is pending.
pub fn origin_of(py: Python<'_>, status: &RustStatus) -> Option<Py<PyAny>> {
    ORIGINS
        .lock()
        .iter()
        .find(|(s, _)| s.same_as(status))
        .map(|(_, o)| o.clone_ref(py))
}

/// A skyrun Status: completes when the device operation does.
#[pyclass(name = "Status", module = "skyrun")]
pub struct PyStatus {
    pub inner: RustStatus,
}

#[pymethods]
impl PyStatus {
    /// Whether the operation has finished (successfully or not).
    #[getter]
    fn done(&self) -> bool {
        self.inner.done()
    }

    /// Whether it finished successfully.
    #[getter]
    fn success(&self) -> bool {
        self.inner.success()
    }

    /// ophyd's status type name (`MoveStatus`, `Status`, ...).
    #[getter]
    fn status_type(&self) -> &'static str {
        self.inner.status_type()
    }

    /// The failure, as an exception, or None.
    fn exception(&self) -> Option<PyErr> {
        match self.inner.result() {
            Some(Err(e)) => Some(PyRuntimeError::new_err(e.to_string())),
            _ => None,
        }
    }

    /// Calls `callback(status)` when the status completes (at once if it has).
    fn add_callback(slf: Py<Self>, py: Python<'_>, callback: Py<PyAny>) {
        let me = slf.clone_ref(py);
        slf.borrow(py).inner.add_callback(move |_| {
            Python::attach(|py| {
                if let Err(e) = callback.call1(py, (me,)) {
                    e.print(py);
                }
            })
        });
    }

    /// Calls `callback(current=, initial=, target=, name=, unit=, precision=,
    /// fraction=, time_elapsed=, time_remaining=)` on each progress update
    /// (Bluesky's `watch`, as its ProgressBar uses it), when the device's own
    /// status reports progress; otherwise never.
    fn watch(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        // The device's own awaitable status (ophyd-async's
        // WatchableAsyncStatus) reports progress; an ophyd Status never here.
        if let Some(d) = origin_of(py, &self.inner) {
            let d = d.bind(py);
            if crate::async_device::is_awaitable(py, d) && d.hasattr("watch")? {
                d.call_method1("watch", (callback,))?;
            }
        }
        Ok(())
    }

    /// Blocks until done (at most `timeout` seconds); raises if it failed or timed out.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let (tx, rx) = crossbeam::channel::bounded(1);
        self.inner.add_callback(move |r| {
            let _ = tx.send(r.clone());
        });
        let limit = timeout
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(86_400));
        match py.detach(|| rx.recv_timeout(limit)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PyRuntimeError::new_err(e.to_string())),
            Err(_) => Err(PyTimeoutError::new_err(format!(
                "status did not complete within {} s",
                limit.as_secs_f64()
            ))),
        }
    }

    fn __repr__(&self) -> String {
        self.inner.repr()
    }
}
