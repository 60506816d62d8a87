//! The plan driver: a skyrun [`Plan`] that steps a Python generator of
//! Bluesky messages with Bluesky's protocol. Each message goes to the engine
//! (in the span context Python had when it was yielded); its result is sent
//! back into the generator, a failure is thrown into it (so
//! `finalize_wrapper` cleanup and the plan's own `except` run), and on halt
//! the generator is closed. Commands the engine does not process (callbacks,
//! `RE.register_command`'s) are handed to the Python RunEngine.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use skyrun::{Interrupt, Plan, PlanError, Reply};

use crate::convert::ser_to_py;
use crate::device::readings_to_py;
use crate::event_loop::LoopDriver;
use crate::msg;
use crate::otel::PlanContext;
use crate::status::PyStatus;

/// What the plan left for `RE()`: its uncaught Python exception (to raise)
/// and the value it returned (`RunEngineResult.plan_result`).
#[derive(Default)]
pub struct Slots {
    pub error: Mutex<Option<PyErr>>,
    pub value: Mutex<Option<Py<PyAny>>>,
}

/// Shared between the plan and the engine that reports it.
pub type ErrorSlot = Arc<Slots>;

pub(crate) enum Incoming {
    Value(Py<PyAny>),
    /// The engine's reply; `squeeze` for a locate of one device with `squeeze=True`.
    Reply(Result<Reply, PlanError>, bool),
    Throw(PyErr),
}

enum Step {
    Engine(skyrun::Msg, opentelemetry::Context),
    Local(Incoming),
    /// An `open_run` whose metadata is an awaitable (an async `scan_id_source`):
    /// awaited on the loop, then the message (kept here) goes to the engine.
    AwaitMetadata(Py<PyAny>, Py<PyAny>),
    Done(Result<(), PlanError>),
}

/// Closes the generator if the plan is dropped before it finished (halt).
struct Generator {
    gen: Option<Py<PyAny>>,
}

impl Drop for Generator {
    fn drop(&mut self) {
        if let Some(gen) = self.gen.take() {
            Python::try_attach(|py| {
                if let Err(e) = gen.call_method0(py, intern!(py, "close")) {
                    e.print(py);
                }
            });
        }
    }
}

fn reply_to_py(py: Python<'_>, r: Reply, squeeze: bool) -> PyResult<Py<PyAny>> {
    Ok(match r {
        Reply::None => py.None(),
        // A Python device's own status object, as Bluesky answers it; a
        // skyrun Status otherwise (a Rust device's, or one already done).
        Reply::Status(s) => match crate::status::origin_of(py, &s) {
            Some(origin) => origin,
            None => Py::new(py, PyStatus { inner: s })?.into_any(),
        },
        Reply::Readings(r) => readings_to_py(py, &r)?.unbind(),
        Reply::RunUid(u) => u.into_pyobject(py)?.into_any().unbind(),
        Reply::Collected(n) => n.into_pyobject(py)?.into_any().unbind(),
        Reply::Done(d) => pyo3::types::PyBool::new(py, d)
            .to_owned()
            .into_any()
            .unbind(),
        Reply::Configured { old, new } => (ser_to_py(py, &old)?, ser_to_py(py, &new)?)
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        // Bluesky's `locate` answers one location for one device (squeeze), else a list.
        Reply::Locations(l) if l.len() == 1 && squeeze => {
            location_to_py(py, &l[0])?.into_any().unbind()
        }
        Reply::Locations(l) => {
            let out = pyo3::types::PyList::empty(py);
            for x in &l {
                out.append(location_to_py(py, x)?)?;
            }
            out.into_any().unbind()
        }
        Reply::Value(v) => crate::convert::to_py(py, &v)?.unbind(),
        // A local command's answer (crate::local), as its handler gave it.
        Reply::Foreign(f) => match f.downcast_ref::<Py<PyAny>>() {
            Some(v) => v.clone_ref(py),
            None => py.None(),
        },
    })
}

fn location_to_py<'py>(
    py: Python<'py>,
    l: &skyrun::Location,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("setpoint", crate::convert::to_py(py, &l.setpoint)?)?;
    d.set_item("readback", crate::convert::to_py(py, &l.readback)?)?;
    Ok(d)
}

/// The Python exception for an engine failure (Bluesky's classes when
/// installed). An exception a device method raised is given back as raised
/// (as Bluesky does), with a note saying which message it failed.
pub fn error_to_py(py: Python<'_>, e: &PlanError) -> PyErr {
    if let Some(raised) = crate::local::exception(e) {
        return raised.clone_ref(py);
    }
    if let PlanError::Device {
        command,
        device,
        source,
    } = e
    {
        if let Some(raised) = crate::pydevice::raised(source) {
            let err = raised.clone_ref(py);
            let note = format!("{RAISED_NOTE}raised by {device} during '{command}'");
            let v = err.value(py);
            let noted = v
                .getattr(intern!(py, "__notes__"))
                .and_then(|n| n.contains(&note))
                .unwrap_or(false);
            if !noted {
                let _ = v.call_method1(intern!(py, "add_note"), (note,));
            }
            return err;
        }
    }
    let kind = match e {
        PlanError::Interrupted(Interrupt::Abort(_)) => "abort",
        PlanError::Interrupted(Interrupt::Stop) => "stop",
        PlanError::Interrupted(Interrupt::Halt) => "halt",
        PlanError::Status { .. } => "status",
        PlanError::WaitTimeout { .. } => "timeout",
        PlanError::UnknownCommand(_) => "unknown",
        PlanError::IllFormed { .. } => "ill_formed",
        PlanError::Illegal { .. } => "illegal",
        PlanError::Bundle { raises, .. } => raises.name(),
        PlanError::Device { .. } => "device",
        PlanError::WrongReply { .. } => "failed",
        PlanError::Failed(_) | PlanError::Raised { .. } => "failed",
    };
    match py
        .import("skyrun.errors")
        .and_then(|m| m.call_method1("from_engine", (kind, e.to_string())))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// The run's `reason` for a plan that raised `e`: `str(e)`, as Bluesky
/// writes it (the exception's type name when that is empty), and, for an
/// exception a device raised, which device and message (the note
/// [`error_to_py`] added).
pub(crate) fn describe(py: Python<'_>, e: &PyErr) -> String {
    let v = e.value(py);
    let mut text = v.str().map(|s| s.to_string()).unwrap_or_default();
    if text.is_empty() {
        text = v
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
    }
    let note = v
        .getattr(intern!(py, "__notes__"))
        .ok()
        .and_then(|notes| notes.try_iter().ok())
        .into_iter()
        .flatten()
        .filter_map(|n| n.ok()?.extract::<String>().ok())
        .find_map(|n| n.strip_prefix(RAISED_NOTE).map(str::to_owned));
    match note {
        Some(by) => format!("{text} ({by})"),
        None => text,
    }
}

/// The plan failed with `e`: kept for `RE()` to raise, and the error that
/// ends the plan (which gives `e` back as raised to a plan it is thrown
/// into). A `GeneratorExit` fails it as Bluesky's loop does: `RE()` raises
/// `ValueError` from it; a `KeyboardInterrupt` halts it.
fn fail(py: Python<'_>, e: PyErr, errors: &ErrorSlot) -> PlanError {
    if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
        // Bluesky's loop halts on a KeyboardInterrupt no handler turned into
        // a pause; RE() raises RunEngineInterrupted.
        say(
            py,
            "An unknown external library has improperly raised KeyboardInterrupt. \
             Intercepting and triggering a HALT.",
        );
        return PlanError::Interrupted(Interrupt::Halt);
    }
    let error = crate::local::raised(e.clone_ref(py));
    let e = if e.is_instance_of::<pyo3::exceptions::PyGeneratorExit>(py) {
        let v = pyo3::exceptions::PyValueError::new_err(());
        v.set_cause(py, Some(e));
        v
    } else {
        e
    };
    *errors.error.lock() = Some(e);
    error
}

/// Closes a plan that an exception which is not an `Exception` went
/// through; one that yields instead is named, as Bluesky names it.
fn close_plan(py: Python<'_>, gen: &Bound<'_, PyAny>) {
    if let Err(e) = gen.call_method0(intern!(py, "close")) {
        if e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) {
            let plan = gen.repr().map(|r| r.to_string()).unwrap_or_default();
            say(
                py,
                &format!("The plan {plan} tried to yield a value on close.  Please fix your plan."),
            );
        } else {
            e.print(py);
        }
    }
}

/// Prints `text` with Python's `print` (to `sys.stdout`, where Bluesky's
/// messages go and pytest's capsys reads them).
fn say(py: Python<'_>, text: &str) {
    let printed = py
        .import(intern!(py, "builtins"))
        .and_then(|b| b.call_method1(intern!(py, "print"), (text,)));
    if let Err(e) = printed {
        e.print(py);
    }
}

/// How the note on an exception a device raised begins.
const RAISED_NOTE: &str = "skyrun: ";

/// One step: send or throw `incoming` into the generator; classify what it yields.
/// What a step needs besides the generator: the Python RunEngine, and the
/// set of commands it handles (read once; `register_command` adds to it).
struct Hooks<'py> {
    re: Bound<'py, PyAny>,
    local: Option<Bound<'py, PyAny>>,
    driver: Option<&'py Py<LoopDriver>>,
}

fn step(
    py: Python<'_>,
    gen: &Bound<'_, PyAny>,
    hooks: &Hooks<'_>,
    incoming: Incoming,
    pcx: &mut PlanContext,
    errors: &ErrorSlot,
) -> Step {
    let local_set = hooks.local.as_ref();
    let driver = hooks.driver;
    let hooks = &hooks.re;
    let thrown = match incoming {
        Incoming::Value(v) => Ok(v),
        Incoming::Reply(Ok(r), squeeze) => reply_to_py(py, r, squeeze),
        Incoming::Reply(Err(e), _) => Err(error_to_py(py, &e)),
        Incoming::Throw(e) => Err(e),
    };
    let yielded = match thrown {
        Ok(v) => gen.call_method1(intern!(py, "send"), (v,)),
        // Not an Exception (a GeneratorExit raised by a suspension's
        // pre-plan): Bluesky's loop lets it through every plan, and closes them.
        Err(e) if !e.is_instance_of::<pyo3::exceptions::PyException>(py) => {
            close_plan(py, gen);
            return Step::Done(Err(fail(py, e, errors)));
        }
        Err(e) => gen.call_method1(intern!(py, "throw"), (e.into_value(py),)),
    };
    let m = match yielded {
        Ok(m) => m,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
            *errors.value.lock() = e
                .value(py)
                .getattr(intern!(py, "value"))
                .ok()
                .map(Bound::unbind);
            return Step::Done(Ok(()));
        }
        Err(e) => return Step::Done(Err(fail(py, e, errors))),
    };
    let f = match msg::fields(&m) {
        Ok(f) => f,
        Err(e) => return Step::Local(Incoming::Throw(e)),
    };
    // Bluesky's RE.msg_hook: called with every message before it is processed
    // (and, through the message's origin, with those a rewind replays).
    let mut hooked = false;
    if let Ok(hook) = hooks.getattr(intern!(py, "msg_hook")) {
        if !hook.is_none() {
            hooked = true;
            if let Err(e) = hook.call1((&m,)) {
                return Step::Local(Incoming::Throw(e));
            }
        }
    }
    // Commands the Python RunEngine handles itself (subscribe, registered commands, ...).
    let local = local_set
        .map(|s| s.contains(&f.command).unwrap_or(false))
        .unwrap_or(false);
    if local {
        return match hooks.call_method1(intern!(py, "_handle_local"), (&m,)) {
            // Awaited by the engine (interruptible, replayed by a rewind).
            Ok(v) if is_awaitable(py, &v) => Step::Engine(
                crate::local::message(
                    &f.command.to_string_lossy(),
                    m.unbind(),
                    hooks.clone().unbind(),
                    driver.map(|d| d.clone_ref(py)),
                    v.unbind(),
                ),
                pcx.current(py),
            ),
            Ok(v) => Step::Local(Incoming::Value(v.unbind())),
            Err(e) => Step::Local(Incoming::Throw(e)),
        };
    }
    // Runs take their metadata (RE.md, scan_id) and an abort's reason from the Python RunEngine.
    let amend = match f.command.to_str() {
        Ok("open_run") => Some(intern!(py, "_open_run_kwargs")),
        Ok("close_run") => Some(intern!(py, "_close_run_kwargs")),
        _ => None,
    };
    let kwargs = if let Some(amend) = amend {
        match hooks.call_method1(amend, (&f.kwargs,)) {
            Ok(k) if is_awaitable(py, &k) => return Step::AwaitMetadata(k.unbind(), m.unbind()),
            Ok(k) => Some(k),
            Err(e) => return Step::Local(Incoming::Throw(e)),
        }
    } else {
        None
    };
    match msg::to_msg(&f, kwargs.as_ref()) {
        Ok(mut msg) => {
            if hooked {
                msg.origin = Some(Arc::new(m.unbind()));
            }
            Step::Engine(msg, pcx.current(py))
        }
        Err(e) => Step::Local(Incoming::Throw(e)),
    }
}

/// The engine's replay hook for the Python RunEngine `hooks`: its
/// `msg_hook` is called with the `Msg` object the plan yielded, for each
/// message a rewind replays (held weakly: the RunEngine owns the engine).
pub fn replay_hook(py: Python<'_>, hooks: &Py<PyAny>) -> PyResult<skyrun::ReplayHook> {
    let weak: Py<PyAny> = py
        .import(intern!(py, "weakref"))?
        .call_method1(intern!(py, "ref"), (hooks.bind(py),))?
        .unbind();
    Ok(Arc::new(move |m: &skyrun::Msg| {
        let Some(origin) = m.origin.as_ref().and_then(|o| {
            o.downcast_ref::<Py<PyAny>>()
                .or_else(|| o.downcast_ref::<crate::local::LocalCall>().map(|c| &c.msg))
        }) else {
            return;
        };
        Python::attach(|py| {
            let Ok(re) = weak.bind(py).call0() else {
                return;
            };
            if let Ok(hook) = re.getattr(intern!(py, "msg_hook")) {
                if !hook.is_none() {
                    if let Err(e) = hook.call1((origin.bind(py),)) {
                        e.print(py);
                    }
                }
            }
        })
    }))
}

fn is_awaitable(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    if v.is_none() {
        return false;
    }
    py.import(intern!(py, "inspect"))
        .and_then(|m| m.call_method1(intern!(py, "isawaitable"), (v,)))
        .and_then(|r| r.extract::<bool>())
        .unwrap_or(false)
}

/// A task on the RunEngine's loop, cancelled if what awaits it is dropped
/// before it is done (a pause or a halt broke in), as Bluesky's loop cancels
/// what it was awaiting. Dropped on the engine thread, which drives the loop.
struct CancelOnDrop(Option<Py<PyAny>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            Python::try_attach(|py| {
                // Through call_soon_threadsafe, which wakes the loop's
                // selector: the driver then gives the loop the turn in which
                // the task sees its CancelledError.
                let task = task.bind(py);
                let cancelled = task.call_method0(intern!(py, "get_loop")).and_then(|l| {
                    let cancel = task.getattr(intern!(py, "cancel"))?;
                    l.call_method1(intern!(py, "call_soon_threadsafe"), (cancel,))
                });
                if let Err(e) = cancelled {
                    e.print(py);
                }
            });
        }
    }
}

/// Awaits `aw` on the RunEngine's loop (as a task there); its result or exception.
pub(crate) async fn await_on_loop(aw: Py<PyAny>, driver: Option<&Py<LoopDriver>>) -> Incoming {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let fut = Python::attach(|py| -> PyResult<Py<PyAny>> {
        let Some(driver) = driver else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the RunEngine has no event loop to await this on",
            ));
        };
        let d = driver.get();
        let _entered = d.enter(py);
        let asyncio = py.import(intern!(py, "asyncio"))?;
        let fut = asyncio.call_method1(intern!(py, "ensure_future"), (aw.bind(py),))?;
        let tx = parking_lot::Mutex::new(Some(tx));
        let cb = pyo3::types::PyCFunction::new_closure(py, None, None, move |_args, _kw| {
            if let Some(tx) = tx.lock().take() {
                let _ = tx.send(());
            }
        })?;
        fut.call_method1(intern!(py, "add_done_callback"), (cb,))?;
        Ok(fut.unbind())
    });
    let mut task = match fut {
        Ok(f) => CancelOnDrop(Some(f)),
        Err(e) => return Incoming::Throw(e),
    };
    let done = rx.await;
    let fut = task.0.take().expect("the task is kept until it is done");
    if done.is_err() {
        return Incoming::Throw(pyo3::exceptions::PyRuntimeError::new_err(
            "the RunEngine's event loop stopped before the awaitable finished",
        ));
    }
    Python::attach(|py| match fut.call_method0(py, intern!(py, "result")) {
        Ok(v) => Incoming::Value(v),
        Err(e) => Incoming::Throw(e),
    })
}

/// Bluesky's `RE.waiting_hook`: the statuses of each group (kept while a
/// hook is set), handed to the hook when a `wait` waits on them, and `None`
/// when the wait is over (ProgressBarManager shows them meanwhile).
#[derive(Default)]
struct Waiting {
    groups: std::collections::HashMap<Option<String>, Vec<skyrun::Status>>,
}

impl Waiting {
    fn hook(py: Python<'_>, re: &Py<PyAny>) -> Option<Py<PyAny>> {
        re.bind(py)
            .getattr(intern!(py, "waiting_hook"))
            .ok()
            .filter(|h| !h.is_none())
            .map(Bound::unbind)
    }

    /// Keeps a status a message of `group` answered with, while a hook is set.
    fn keep(
        &mut self,
        py: Python<'_>,
        re: &Py<PyAny>,
        group: Option<String>,
        r: &Result<Reply, PlanError>,
    ) {
        if let Ok(Reply::Status(s)) = r {
            if Self::hook(py, re).is_some() {
                self.groups.entry(group).or_default().push(s.clone());
            }
        }
    }

    /// A `wait` of `group` starts: calls the hook with its statuses; the hook
    /// to call with `None` when it is over.
    fn start(
        &mut self,
        py: Python<'_>,
        re: &Py<PyAny>,
        group: &Option<String>,
    ) -> Option<Py<PyAny>> {
        let statuses = self.groups.remove(group).unwrap_or_default();
        let hook = Self::hook(py, re)?;
        let set = pyo3::types::PySet::empty(py).ok()?;
        for s in statuses {
            if let Ok(st) = Py::new(py, PyStatus { inner: s }) {
                let _ = set.add(st);
            }
        }
        if let Err(e) = hook.call1(py, (set,)) {
            e.print(py);
        }
        Some(hook)
    }
}

/// The skyrun plan stepping `gen` (a started-or-not Python generator); its
/// steps run with the RunEngine's loop (`driver`) as the running loop.
pub fn python_plan(
    gen: Py<PyAny>,
    hooks: Py<PyAny>,
    errors: ErrorSlot,
    driver: Option<Py<LoopDriver>>,
) -> Plan {
    Plan::new("python plan", move |ctx| async move {
        let mut guard = Generator { gen: Some(gen) };
        let mut pcx = Python::attach(PlanContext::new);
        let mut incoming = Incoming::Value(Python::attach(|py| py.None()));
        let mut waiting = Waiting::default();
        let local = Python::attach(|py| {
            hooks
                .bind(py)
                .getattr(intern!(py, "_local_commands"))
                .ok()
                .map(Bound::unbind)
        });
        loop {
            let next = Python::attach(|py| {
                let gen = guard
                    .gen
                    .as_ref()
                    .expect("the generator is held until the plan ends")
                    .bind(py);
                let h = Hooks {
                    re: hooks.bind(py).clone(),
                    local: local.as_ref().map(|l| l.bind(py).clone()),
                    driver: driver.as_ref(),
                };
                let _entered = driver.as_ref().map(|d| d.get().enter(py));
                step(py, gen, &h, incoming, &mut pcx, &errors)
            });
            incoming = match next {
                Step::Engine(msg, cx) => {
                    let squeeze = msg.command.as_str() == "locate"
                        && msg.kw("squeeze").and_then(|v| v.as_bool()).unwrap_or(true);
                    let group = msg.kw("group").and_then(|v| v.as_str()).map(str::to_owned);
                    let is_rewindable = msg.command.as_str() == "rewindable";
                    let hook = (msg.command.as_str() == "wait")
                        .then(|| Python::attach(|py| waiting.start(py, &hooks, &group)))
                        .flatten();
                    let r = ctx.with_context(cx).send(msg).await;
                    match hook {
                        Some(hook) => Python::attach(|py| {
                            if let Err(e) = hook.call1(py, (py.None(),)) {
                                e.print(py);
                            }
                        }),
                        None => Python::attach(|py| waiting.keep(py, &hooks, group, &r)),
                    }
                    // The engine's rewindable setting, as the plan last saw it
                    // (RE.rewindable read from inside the plan answers it).
                    if let (true, Ok(Reply::Value(serde_json::Value::Bool(b)))) =
                        (is_rewindable, &r)
                    {
                        Python::attach(|py| {
                            let _ = hooks.bind(py).setattr(intern!(py, "_rewindable_seen"), *b);
                        });
                    }
                    Incoming::Reply(r, squeeze)
                }
                Step::Local(i) => i,
                Step::AwaitMetadata(aw, m) => match await_on_loop(aw, driver.as_ref()).await {
                    Incoming::Value(kwargs) => {
                        let built = Python::attach(|py| {
                            let m = m.bind(py);
                            let f = msg::fields(m)?;
                            let msg = msg::to_msg(&f, Some(kwargs.bind(py)))?;
                            Ok::<_, PyErr>((msg, pcx.current(py)))
                        });
                        match built {
                            Ok((msg, cx)) => {
                                Incoming::Reply(ctx.with_context(cx).send(msg).await, false)
                            }
                            Err(e) => Incoming::Throw(e),
                        }
                    }
                    other => other,
                },
                Step::Done(r) => {
                    // Finished (or raised): nothing to close.
                    guard.gen = None;
                    return r;
                }
            };
        }
    })
}
