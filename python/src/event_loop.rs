//! The RunEngine's asyncio event loop, driven on skyrun's engine thread
//! (see `skyrun/_loop.py` for the model). A local task on the runtime waits
//! for what the loop waits for — its selector's file descriptor (an epoll
//! instance, itself watched by tokio's reactor), its next timer, or a kick
//! from the engine thread after Python code there scheduled a callback —
//! and then runs the loop without blocking (`DrivenLoop.iterate`: while it
//! has work ready, up to a budget of about a millisecond, or until a status
//! the engine waits for completed). Plans and device calls run with the
//! loop as the running loop ([`Entered`]).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use crate::runtime;

/// The loop's selector fd, watched (not owned: asyncio closes it).
struct SelectorFd(RawFd);

impl AsRawFd for SelectorFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A loop driven on the engine thread: the loop, and how to wake its driver.
#[pyclass(name = "LoopDriver", module = "skyrun._skyrun", frozen)]
pub struct LoopDriver {
    pub loop_: Py<PyAny>,
    wake: Arc<Notify>,
}

/// The loops being driven, by the identity of the asyncio loop object (so a
/// device layer finds the driver of Bluesky's global event loop).
static DRIVEN: Mutex<Option<HashMap<usize, Py<LoopDriver>>>> = Mutex::new(None);

/// The driver of `loop_`, if skyrun drives that loop.
pub fn driver_of(loop_: &Bound<'_, PyAny>) -> Option<Py<LoopDriver>> {
    let key = loop_.as_ptr() as usize;
    let py = loop_.py();
    DRIVEN
        .lock()
        .as_ref()
        .and_then(|m| m.get(&key).map(|d| d.clone_ref(py)))
}

/// The driver of Bluesky's event loop (`bluesky.run_engine.get_bluesky_event_loop()`),
/// if skyrun drives it: the loop ophyd-async devices run on.
pub fn bluesky_driver(py: Python<'_>) -> Option<Py<LoopDriver>> {
    let loop_ = py
        .import(intern!(py, "bluesky.run_engine"))
        .and_then(|m| m.call_method0(intern!(py, "get_bluesky_event_loop")))
        .ok()?;
    if loop_.is_none() {
        return None;
    }
    driver_of(&loop_)
}

impl LoopDriver {
    /// Wakes the driver so it runs an iteration and looks again at what the
    /// loop waits for (after the loop was run from elsewhere on this thread).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// How many timers the loop has (`call_later`), to see new ones.
    fn timers(&self, py: Python<'_>) -> usize {
        self.loop_
            .bind(py)
            .getattr(intern!(py, "_scheduled"))
            .and_then(|r| r.len())
            .unwrap_or(0)
    }

    /// Wakes the driver when callbacks wait in the loop (scheduled by Python
    /// code that just ran on the engine thread, where nobody else would), or
    /// when its timers changed since `timers` were counted (a `call_later`
    /// from the engine thread: the driver's sleep must be computed again).
    fn kick_if_changed(&self, py: Python<'_>, timers: usize) {
        let ready = self
            .loop_
            .bind(py)
            .getattr(intern!(py, "_ready"))
            .and_then(|r| r.len())
            .unwrap_or(0);
        if ready > 0 || timers != self.timers(py) {
            self.wake.notify_one();
        }
    }

    /// Makes the loop the running loop of this (the engine) thread until the
    /// guard is dropped; then wakes the driver if anything was scheduled.
    pub fn enter<'a, 'py>(&'a self, py: Python<'py>) -> Entered<'a, 'py> {
        let set = set_running_loop(py);
        if let Some(set) = &set {
            let _ = set.call1((self.loop_.bind(py),));
        }
        Entered {
            driver: self,
            py,
            set,
            timers: self.timers(py),
        }
    }
}

/// The loop is the running loop while this lives.
pub struct Entered<'a, 'py> {
    driver: &'a LoopDriver,
    py: Python<'py>,
    set: Option<Bound<'py, PyAny>>,
    /// The loop's timer count on entering.
    timers: usize,
}

impl Drop for Entered<'_, '_> {
    fn drop(&mut self) {
        if let Some(set) = &self.set {
            let _ = set.call1((self.py.None(),));
        }
        self.driver.kick_if_changed(self.py, self.timers);
    }
}

fn set_running_loop(py: Python<'_>) -> Option<Bound<'_, PyAny>> {
    py.import(intern!(py, "asyncio"))
        .and_then(|m| m.getattr(intern!(py, "_set_running_loop")))
        .ok()
}

#[pymethods]
impl LoopDriver {
    /// The asyncio loop.
    #[getter(r#loop)]
    fn get_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.loop_.clone_ref(py)
    }
}

/// Starts driving `driven` (a `skyrun._loop.DrivenLoop`) on the engine thread.
#[pyfunction]
pub fn drive_loop(py: Python<'_>, driven: Py<PyAny>) -> PyResult<LoopDriver> {
    let rt = runtime::get(py);
    let loop_ = driven.bind(py).getattr("loop")?.unbind();
    let wake = Arc::new(Notify::new());
    let w = wake.clone();
    // Attached on the engine thread: the loop's thread is that one.
    let fd: i32 = rt.block_on(py, "RunEngine(): start the event loop", {
        let driven = Python::attach(|py| driven.clone_ref(py));
        move || async move { Python::attach(|py| driven.call_method0(py, "attach")?.extract(py)) }
    })??;
    let key = loop_.bind(py).as_ptr() as usize;
    let driver = Py::new(
        py,
        LoopDriver {
            loop_: loop_.clone_ref(py),
            wake: wake.clone(),
        },
    )?;
    DRIVEN
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(key, driver.clone_ref(py));
    rt.spawn(move || async move {
        // SAFETY: the fd stays open while registered: asyncio refuses to close
        // a running loop, and the loop runs until this task ends (and drops
        // the registration) — `detach` below is what stops it running.
        let afd = match unsafe {
            AsyncFd::register_with_interest(SelectorFd(fd), tokio::io::Interest::READABLE)
        } {
            Ok(a) => a,
            Err(e) => {
                eprintln!("skyrun: cannot watch the event loop's selector: {e}");
                Python::attach(|py| {
                    let _ = driven.call_method0(py, "detach");
                });
                return;
            }
        };
        loop {
            let next: Result<Option<f64>, PyErr> =
                Python::attach(|py| driven.call_method0(py, "iterate")?.extract(py));
            let next = match next {
                Ok(n) => n,
                Err(e) => {
                    Python::attach(|py| e.print(py));
                    break;
                }
            };
            match next {
                Some(d) if d < 0.0 => break,
                Some(0.0) => tokio::task::yield_now().await,
                _ => {
                    let sleep = async {
                        match next {
                            Some(d) => tokio::time::sleep(Duration::from_secs_f64(d)).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        r = afd.readable() => if let Ok(mut g) = r { g.clear_ready() },
                        _ = sleep => {},
                        _ = w.notified() => {},
                    }
                }
            }
        }
        drop(afd);
        if let Some(m) = DRIVEN.lock().as_mut() {
            m.remove(&key);
        }
        Python::attach(|py| {
            if let Err(e) = driven.call_method0(py, "detach") {
                e.print(py);
            }
        });
    });
    Ok(LoopDriver { loop_, wake })
}
