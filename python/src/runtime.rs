//! The process-wide actix system the Python package runs on: one background
//! thread ("skyrun-runtime") hosting every RunEngine and device actor, with a
//! Python thread state of its own kept for its whole life (so the plans it
//! steps keep their `contextvars`, and attaching to Python is cheap).

use std::future::Future;
use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::Duration;

use actix::ArbiterHandle;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;

/// The running system: its arbiter and the thread it runs on.
pub struct Runtime {
    arbiter: ArbiterHandle,
    thread: ThreadId,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// How long a blocking call from Python waits for the runtime before failing.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The runtime, started on first use.
pub fn get(py: Python<'_>) -> &'static Runtime {
    if let Some(rt) = RUNTIME.get() {
        return rt;
    }
    py.detach(|| {
        RUNTIME.get_or_init(|| {
            let (tx, rx) = crossbeam::channel::bounded(1);
            std::thread::Builder::new()
                .name("skyrun-runtime".into())
                .spawn(move || {
                    // Attach once and stay registered with Python; the system runs
                    // detached and re-attaches (cheaply, same thread state) to step plans.
                    Python::attach(|py| {
                        // Python sees it by the name of the thread Bluesky runs
                        // its RunEngine's loop on (device code may check it).
                        let _ = py
                            .import("threading")
                            .and_then(|t| t.call_method0("current_thread"))
                            .and_then(|t| t.setattr("name", "bluesky-run-engine"));
                        py.detach(move || {
                            let sys = actix::System::new();
                            let arbiter = actix::System::current().arbiter().clone();
                            let _ = tx.send((arbiter, std::thread::current().id()));
                            sys.run()
                        })
                    })
                    .ok();
                })
                .expect("spawn the skyrun runtime thread");
            let (arbiter, thread) = rx.recv().expect("the skyrun runtime starts");
            // Spans go through the propagator chosen by OTEL_PROPAGATORS (W3C by default).
            let _ = skyrun_actors::propagation::install_propagator_from_env();
            Runtime { arbiter, thread }
        })
    })
}

impl Runtime {
    /// Whether the caller is on the runtime thread (where blocking would deadlock).
    pub fn is_current(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    /// Runs the future `make()` builds on the runtime thread, without waiting.
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.arbiter.spawn_fn(move || {
            actix::spawn(make());
        });
    }

    /// Runs the future `make()` builds on the runtime thread and waits for its
    /// result, detached from Python; `what` names it in errors. Refused on the
    /// runtime thread itself (a plan calling a device method directly), which
    /// would deadlock.
    pub fn block_on<F, Fut, T>(&self, py: Python<'_>, what: &str, make: F) -> PyResult<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if self.is_current() {
            return Err(PyRuntimeError::new_err(format!(
                "{what}: cannot be called from inside a running plan (the plan runs on the \
                 engine's thread); yield a message instead, e.g. `yield from bps.rd(device)` \
                 or `yield Msg('read', device)`"
            )));
        }
        let (tx, rx) = crossbeam::channel::bounded(1);
        self.spawn(move || async move {
            let _ = tx.send(make().await);
        });
        py.detach(|| rx.recv_timeout(CALL_TIMEOUT)).map_err(|_| {
            PyTimeoutError::new_err(format!(
                "{what}: no answer from the skyrun runtime within {} s",
                CALL_TIMEOUT.as_secs()
            ))
        })
    }
}
