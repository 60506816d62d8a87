//! `Engine`: a skyrun RunEngine actor owned by a Python `skyrun.RunEngine`.
//! Plans are submitted with [`Engine::start`] and waited for with
//! [`Engine::wait`] in short slices, so the Python side can notice a pause
//! and handle Ctrl-C between them, as Bluesky's RunEngine does.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use skyrun::{plans, Document, RunEngine, RunError, RunSummary};
use skyrun_actors::DeviceHandle;

use crate::convert::ser_to_py;
use crate::device::DeviceCore;
use crate::event_loop::LoopDriver;
use crate::plan::{python_plan, ErrorSlot};
use crate::runtime;

type Outcome = Result<RunSummary, String>;

/// A RunEngine actor on the skyrun runtime.
#[pyclass(name = "Engine", module = "skyrun._skyrun", frozen)]
pub struct Engine {
    re: RunEngine,
    done: Mutex<Option<Receiver<Outcome>>>,
    errors: ErrorSlot,
    /// The RunEngine's asyncio loop, driven on the engine thread.
    driver: Option<Py<LoopDriver>>,
}

fn outcome(r: Result<RunSummary, RunError>) -> Outcome {
    match r {
        Ok(s) => Ok(s),
        Err(RunError::Failed { summary, .. }) | Err(RunError::Aborted { summary }) => Ok(summary),
        Err(e) => Err(e.to_string()),
    }
}

fn control_err(e: skyrun::ControlError) -> PyErr {
    // Bluesky raises its TransitionError (a RuntimeError) here.
    Python::attach(|py| {
        match py
            .import("skyrun.errors")
            .and_then(|m| m.getattr("TransitionError"))
            .and_then(|c| c.call1((e.to_string(),)))
        {
            Ok(exc) => PyErr::from_value(exc),
            Err(_) => PyRuntimeError::new_err(e.to_string()),
        }
    })
}

fn handles(devices: Vec<PyRef<'_, DeviceCore>>) -> Vec<DeviceHandle> {
    devices.iter().map(|d| d.handle.clone()).collect()
}

/// How often a wait for the plan runs Python's signal handlers.
const SIGNAL_CHECK: Duration = Duration::from_millis(5);

#[pymethods]
impl Engine {
    /// A new engine; `run_trace` makes each run one trace.
    #[new]
    #[pyo3(signature = (run_trace=false, trace_all_messages=false, driver=None))]
    fn new(
        py: Python<'_>,
        run_trace: bool,
        trace_all_messages: bool,
        driver: Option<Py<LoopDriver>>,
    ) -> PyResult<Self> {
        let re = runtime::get(py).block_on(py, "RunEngine()", move || async move {
            RunEngine::builder()
                .run_trace(run_trace)
                .trace_all_messages(trace_all_messages)
                .build()
        })?;
        Ok(Engine {
            re,
            done: Mutex::new(None),
            errors: Arc::default(),
            driver,
        })
    }

    /// Has the engine carry out the Python RunEngine's command `name` when
    /// its handler answers an awaitable (see `crate::local`).
    fn register_local(&self, name: &str) {
        crate::local::register(&self.re, name);
    }

    /// Forgets the command `name` of [`Self::register_local`].
    fn unregister_local(&self, name: &str) {
        self.re.unregister_command(name);
    }

    /// Starts running the Python generator `gen`; `hooks` is the Python RunEngine.
    fn start(&self, py: Python<'_>, gen: Py<PyAny>, hooks: Py<PyAny>) -> PyResult<()> {
        let mut done = self.done.lock();
        if done.is_some() {
            return Err(PyRuntimeError::new_err(format!(
                "the RunEngine is busy: a plan is already {}",
                self.re.state().as_str()
            )));
        }
        *self.errors.error.lock() = None;
        *self.errors.value.lock() = None;
        let driver = self.driver.as_ref().map(|d| d.clone_ref(py));
        // Bluesky's msg_hook also sees the messages a rewind replays (set
        // for the plan when a hook is set as it starts).
        let hooked = hooks
            .bind(py)
            .getattr("msg_hook")
            .is_ok_and(|h| !h.is_none());
        self.re.set_replay_hook(if hooked {
            Some(crate::plan::replay_hook(py, &hooks)?)
        } else {
            None
        });
        let plan = python_plan(gen, hooks, self.errors.clone(), driver);
        let (tx, rx) = crossbeam::channel::bounded(1);
        let re = self.re.clone();
        runtime::get(py).spawn(move || async move {
            let _ = tx.send(outcome(re.run(plan).await));
        });
        *done = Some(rx);
        Ok(())
    }

    /// Runs skyrun's native `count` (a Rust plan) on skyrun devices, to the end.
    #[pyo3(signature = (detectors, num=1, delay=0.0))]
    fn run_count<'py>(
        &self,
        py: Python<'py>,
        detectors: Vec<PyRef<'py, DeviceCore>>,
        num: usize,
        delay: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dets = handles(detectors);
        self.run_native(py, move || plans::count(dets, num, delay))
    }

    /// Runs skyrun's native `scan` (a Rust plan) on skyrun devices, to the end.
    fn run_scan<'py>(
        &self,
        py: Python<'py>,
        detectors: Vec<PyRef<'py, DeviceCore>>,
        motor: PyRef<'py, DeviceCore>,
        start: f64,
        stop: f64,
        num: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dets = handles(detectors);
        let motor = motor.handle.clone();
        self.run_native(py, move || plans::scan(dets, &motor, start, stop, num))
    }

    /// Waits up to `timeout` seconds for the plan; None while it runs (or is paused).
    fn wait<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Option<Bound<'py, PyDict>>> {
        let rx = match self.done.lock().as_ref() {
            Some(rx) => rx.clone(),
            None => return Err(PyRuntimeError::new_err("no plan is running")),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
        // Python runs signal handlers (Ctrl-C, Bluesky's SigintHandler) only
        // between bytecodes: they are run every few ms while waiting, as
        // Bluesky's wait on a threading.Event runs them at once (its
        // SigintHandler ignores a second Ctrl-C it sees within 100 ms of the
        // first, so seeing them late can merge two).
        let got = loop {
            let now = std::time::Instant::now();
            let step = deadline.saturating_duration_since(now).min(SIGNAL_CHECK);
            match py.detach(|| rx.recv_timeout(step)) {
                Err(RecvTimeoutError::Timeout) if std::time::Instant::now() < deadline => {
                    py.check_signals()?;
                }
                other => break other,
            }
        };
        match got {
            Ok(r) => {
                *self.done.lock() = None;
                crate::otel::flush(py);
                summary_to_py(py, r).map(Some)
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                *self.done.lock() = None;
                Err(PyRuntimeError::new_err(
                    "the skyrun runtime dropped the plan",
                ))
            }
        }
    }

    /// The plan's uncaught exception, once (None if it raised none).
    fn take_error(&self) -> Option<PyErr> {
        self.errors.error.lock().take()
    }

    /// The value the plan returned, once (None if it returned none).
    fn take_result(&self) -> Option<Py<PyAny>> {
        self.errors.value.lock().take()
    }

    /// Whether a plan has been started and has not been waited to its end.
    #[getter]
    fn busy(&self) -> bool {
        self.done.lock().is_some()
    }

    /// `idle`, `running` or `paused`.
    #[getter]
    fn state(&self) -> &'static str {
        self.re.state().as_str()
    }

    /// Sets whether a resumed plan rewinds to its last checkpoint (`None`
    /// only asks); the setting (Bluesky's `RE.rewindable`).
    #[pyo3(signature = (flag=None))]
    fn rewindable(&self, py: Python<'_>, flag: Option<bool>) -> PyResult<bool> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "rewindable", move || async move {
                match flag {
                    None => re.rewindable().await,
                    Some(f) => re.set_rewindable(f).await.map(|()| f),
                }
            })?
            .map_err(control_err)
    }

    /// Sets whether each run records pauses, resumes and suspensions as
    /// events of its `interruptions` stream (`None` only asks); the setting
    /// (Bluesky's `RE.record_interruptions`).
    #[pyo3(signature = (flag=None))]
    fn record_interruptions(&self, py: Python<'_>, flag: Option<bool>) -> PyResult<bool> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "record_interruptions", move || async move {
                match flag {
                    None => re.record_interruptions().await,
                    Some(f) => re.set_record_interruptions(f).await.map(|()| f),
                }
            })?
            .map_err(control_err)
    }

    /// Suspends the running plan (Bluesky's `request_suspend`) until `fut`
    /// (an awaitable, or a function making one; None: at once) is done on
    /// the RunEngine's loop; `pre_plan`/`post_plan` are generators run around
    /// the wait. Does not wait for the engine (a suspender calls it from the loop).
    #[pyo3(signature = (fut, hooks, pre_plan=None, post_plan=None, justification=String::new()))]
    fn suspend(
        &self,
        py: Python<'_>,
        fut: Option<Py<PyAny>>,
        hooks: Py<PyAny>,
        pre_plan: Option<Py<PyAny>>,
        post_plan: Option<Py<PyAny>>,
        justification: String,
    ) {
        let driver = self.driver.as_ref().map(|d| d.clone_ref(py));
        let until_driver = driver.as_ref().map(|d| d.clone_ref(py));
        let mut s = skyrun::Suspension::until_with(move || async move {
            let Some(fut) = fut else { return };
            let aw = Python::attach(|py| {
                let f = fut.bind(py);
                if f.is_callable() {
                    f.call0().map(Bound::unbind)
                } else {
                    Ok(fut.clone_ref(py))
                }
            });
            match aw {
                Ok(aw) => {
                    if let crate::plan::Incoming::Throw(e) =
                        crate::plan::await_on_loop(aw, until_driver.as_ref()).await
                    {
                        Python::attach(|py| e.print(py));
                    }
                }
                Err(e) => Python::attach(|py| e.print(py)),
            }
        })
        .justification(justification);
        let aside = |gen: Py<PyAny>| {
            python_plan(
                gen,
                hooks.clone_ref(py),
                Arc::default(),
                driver.as_ref().map(|d| d.clone_ref(py)),
            )
        };
        if let Some(p) = pre_plan {
            s = s.pre_plan(aside(p));
        }
        if let Some(p) = post_plan {
            s = s.post_plan(aside(p));
        }
        let re = self.re.clone();
        runtime::get(py).spawn(move || async move {
            if let Err(e) = re.request_suspend(s).await {
                eprintln!("skyrun: the suspension was not carried out: {e}");
            }
        });
    }

    /// Pauses now, or at the next checkpoint when `defer`.
    #[pyo3(signature = (defer=false))]
    fn pause(&self, py: Python<'_>, defer: bool) -> PyResult<()> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "pause", move || async move { re.pause(defer).await })?
            .map_err(control_err)
    }

    /// Resumes a paused plan (rewinding to its last checkpoint).
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "resume", move || async move { re.resume().await })?
            .map_err(control_err)
    }

    /// Aborts: the plan cleans up, its runs end `abort` with `reason`.
    #[pyo3(signature = (reason=String::new()))]
    fn abort(&self, py: Python<'_>, reason: String) -> PyResult<()> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "abort", move || async move { re.abort(reason).await })?
            .map_err(control_err)
    }

    /// Stops: the plan cleans up, its runs end `success`.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "stop", move || async move { re.stop().await })?
            .map_err(control_err)
    }

    /// Halts: no cleanup by the plan, runs end `abort`.
    fn halt(&self, py: Python<'_>) -> PyResult<()> {
        let re = self.re.clone();
        runtime::get(py)
            .block_on(py, "halt", move || async move { re.halt().await })?
            .map_err(control_err)
    }

    /// Calls `dispatch(name, doc)` (doc a plain dict) for every document, in
    /// order, on the engine's document thread.
    fn subscribe(&self, dispatch: Py<PyAny>) {
        self.re.subscribe(move |name, doc: &Document| {
            Python::attach(|py| {
                let r = ser_to_py(py, doc).and_then(|d| dispatch.call1(py, (name, d)));
                if let Err(e) = r {
                    e.print(py);
                }
            })
        });
    }
}

impl Engine {
    /// The RunEngine actor (`python -m skyrun service` runs its tasks on it).
    pub(crate) fn run_engine(&self) -> &RunEngine {
        &self.re
    }

    /// The driver of the RunEngine's asyncio loop.
    pub(crate) fn loop_driver(&self) -> Option<&Py<LoopDriver>> {
        self.driver.as_ref()
    }

    fn run_native<'py, F>(&self, py: Python<'py>, make: F) -> PyResult<Bound<'py, PyDict>>
    where
        F: FnOnce() -> skyrun::Plan + Send + 'static,
    {
        if self.done.lock().is_some() {
            return Err(PyRuntimeError::new_err("the RunEngine is busy"));
        }
        let re = self.re.clone();
        let r =
            runtime::get(py).block_on(
                py,
                "run",
                move || async move { outcome(re.run(make()).await) },
            );
        crate::otel::flush(py);
        summary_to_py(py, r?)
    }
}

fn summary_to_py(py: Python<'_>, r: Outcome) -> PyResult<Bound<'_, PyDict>> {
    let s = r.map_err(PyRuntimeError::new_err)?;
    let d = PyDict::new(py);
    d.set_item("exit_status", s.exit_status.as_str())?;
    d.set_item("reason", &s.reason)?;
    d.set_item("run_uids", &s.run_uids)?;
    d.set_item(
        "interrupted",
        match &s.interrupted {
            None => None,
            Some(skyrun::Interrupt::Abort(_)) => Some("abort"),
            Some(skyrun::Interrupt::Stop) => Some("stop"),
            Some(skyrun::Interrupt::Halt) => Some("halt"),
        },
    )?;
    Ok(d)
}
