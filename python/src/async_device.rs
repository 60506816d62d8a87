//! Python devices that answer with awaitables (ophyd-async's: coroutine
//! `read`/`describe`/`locate`, `AsyncStatus`/`WatchableAsyncStatus` from
//! `set`/`trigger`/`kickoff`/`stage`...) on skyrun's engine thread.
//!
//! Their awaitables belong to Bluesky's event loop, which a skyrun RunEngine
//! drives on the engine thread ([`crate::event_loop`]). A device call runs
//! with that loop as the running loop ([`with_loop`]), so `AsyncStatus` can
//! create its task. An awaitable status completes a skyrun [`Status`] that
//! records the "Ophyd Status" span ophyd-async itself does not have
//! ([`follow`]), with its `watch` updates as span events. An awaitable
//! answer to a request that needs a value now (the device traits are
//! synchronous) is awaited by running the loop on the engine thread until it
//! is done ([`resolve`], bounded by [`NESTED_TIMEOUT`]): the loop's other
//! tasks go on meanwhile, skyrun's other actors wait. An answer that may
//! come later (a `locate`) runs as a task the loop's driver runs, and the
//! device answers when it is done ([`start`]): several devices' run at once.

use opentelemetry::KeyValue;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use skyrun_actors::{record_move_finish, Status, StatusError};

use crate::event_loop::{bluesky_driver, LoopDriver};

/// How long an awaitable answer (a read, a stage) may take, in seconds.
pub const NESTED_TIMEOUT: f64 = 60.0;

static HELPERS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `skyrun._async_device`, the Python half.
fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    HELPERS
        .get_or_try_init(py, || py.import("skyrun._async_device").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// Runs `f` with Bluesky's event loop as the running loop of this thread,
/// when a skyrun RunEngine drives it (`f` gets its driver), else as is.
pub fn with_loop<R>(py: Python<'_>, f: impl FnOnce(Option<&LoopDriver>) -> R) -> R {
    let driver = bluesky_driver(py);
    let d = driver.as_ref().map(|d| d.get());
    let _entered = d.map(|d| d.enter(py));
    f(d)
}

/// Whether `value` is awaitable (a coroutine, a task, an `AsyncStatus`).
pub fn is_awaitable(py: Python<'_>, value: &Bound<'_, PyAny>) -> bool {
    if value.is_none() {
        return false;
    }
    helpers(py)
        .and_then(|h| h.call_method1(intern!(py, "is_awaitable"), (value,)))
        .and_then(|r| r.extract())
        .unwrap_or(false)
}

/// `value`, or, when it is awaitable, what it resolves to: the loop of
/// `driver` runs on this thread until it is done (at most [`NESTED_TIMEOUT`]).
/// `what` names the call in errors.
pub fn resolve<'py>(
    py: Python<'py>,
    driver: Option<&LoopDriver>,
    value: Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if !is_awaitable(py, &value) {
        return Ok(value);
    }
    let Some(d) = driver else {
        // Not awaited: close a coroutine so Python does not warn about it.
        let _ = value.call_method0(intern!(py, "close"));
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "{what} answered an awaitable, and no skyrun RunEngine drives Bluesky's event loop \
             to await it on: create skyrun.RunEngine() first"
        )));
    };
    let r = helpers(py)?.call_method1(
        intern!(py, "run_nested"),
        (d.loop_.bind(py), value, NESTED_TIMEOUT, what),
    );
    // The loop ran here: its driver looks again at what it waits for.
    d.wake();
    r
}

/// Starts the awaitable `aw` as a task on the loop of `driver`, without
/// waiting for it (the engine thread goes on, the loop's driver runs it):
/// the future gives `answer` of what it returns or raises; after
/// [`NESTED_TIMEOUT`] the task is cancelled and `answer` gets a TimeoutError
/// naming `what`.
pub fn start<T: Send + 'static>(
    py: Python<'_>,
    driver: &LoopDriver,
    aw: &Bound<'_, PyAny>,
    what: String,
    answer: impl Fn(Python<'_>, PyResult<Bound<'_, PyAny>>) -> T + Send + Sync + 'static,
) -> PyResult<impl std::future::Future<Output = T> + 'static> {
    let answer = std::sync::Arc::new(answer);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = parking_lot::Mutex::new(Some(tx));
    let answered = answer.clone();
    let done = pyo3::types::PyCFunction::new_closure(
        py,
        None,
        None,
        move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let (result, exc) = (args.get_item(0)?, args.get_item(1)?);
            let r = if exc.is_none() {
                Ok(result)
            } else {
                Err(PyErr::from_value(exc))
            };
            if let Some(tx) = tx.lock().take() {
                // Unanswered when the future is gone (timed out, or its request dropped).
                let _ = tx.send(answered(args.py(), r));
            }
            Ok(())
        },
    )?;
    let task = helpers(py)?
        .call_method1(intern!(py, "start"), (driver.loop_.bind(py), aw, done))?
        .unbind();
    driver.wake();
    let limit = std::time::Duration::from_secs_f64(NESTED_TIMEOUT);
    Ok(async move {
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => Python::attach(|py| {
                answer(
                    py,
                    Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                        "{what} ended without an answer"
                    ))),
                )
            }),
            Err(_) => Python::attach(|py| {
                let _ = task.call_method0(py, intern!(py, "cancel"));
                answer(
                    py,
                    Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                        "{what} did not finish within {NESTED_TIMEOUT} s"
                    ))),
                )
            }),
        }
    })
}

/// Completes `status` when the awaitable status `aw` does (failing it with
/// the exception when `aw` fails). With `watch` (the status's span will be
/// recorded), its `watch` updates become span events named `watch`; without,
/// it is not watched: ophyd-async turns each update into a dict for every
/// watcher, which for a detector's `complete` is one per frame. With
/// `finish` (a coroutine function answering a location or a number), a
/// successful move records `finish_pos` first.
pub fn follow(
    py: Python<'_>,
    aw: &Bound<'_, PyAny>,
    status: Status,
    finish: Option<Bound<'_, PyAny>>,
    watch: bool,
) -> PyResult<()> {
    let watch = if watch && status.is_traced() {
        let watched = status.clone();
        Some(pyo3::types::PyCFunction::new_closure(
            py,
            None,
            None,
            move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let update = args.get_item(0)?;
                let update = update.cast::<PyDict>()?;
                watched.add_event("watch", watch_attributes(update));
                Ok(())
            },
        )?)
    } else {
        None
    };
    let done = pyo3::types::PyCFunction::new_closure(
        py,
        None,
        None,
        move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let exc = args.get_item(0)?;
            if exc.is_none() {
                if let Ok(pos) = args.get_item(1).and_then(|v| position_of(&v)) {
                    record_move_finish(&status, pos);
                }
                status.set_finished();
            } else {
                let kind = exc
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                status.set_exception(StatusError::Failed(format!("{kind}: {exc}")));
            }
            Ok(())
        },
    )?;
    helpers(py)?.call_method1(
        intern!(py, "follow"),
        (aw, done, watch, finish.map(Bound::unbind)),
    )?;
    Ok(())
}

/// A number, or the `readback` of a location (`{"setpoint": .., "readback": ..}`).
pub fn position_of(v: &Bound<'_, PyAny>) -> PyResult<f64> {
    match v.extract::<f64>() {
        Ok(f) => Ok(f),
        Err(_) => v.get_item("readback")?.extract(),
    }
}

/// The span attributes of one watch update (`None` values left out).
fn watch_attributes(update: &Bound<'_, PyDict>) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(update.len());
    for (k, v) in update.iter() {
        let Ok(key) = k.extract::<String>() else {
            continue;
        };
        if v.is_none() {
            continue;
        }
        let value: opentelemetry::Value = if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
            b.is_true().into()
        } else if let Ok(f) = v.extract::<f64>() {
            f.into()
        } else {
            v.str().map(|s| s.to_string()).unwrap_or_default().into()
        };
        out.push(KeyValue::new(key, value));
    }
    out
}
