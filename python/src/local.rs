//! Commands the Python RunEngine carries out itself (`wait_for`, what
//! `RE.register_command` registers) whose handler answers an awaitable: they
//! go to the engine as messages of a command registered there, so the engine
//! processes them as Bluesky's does. A pause or a suspension breaks in while
//! one waits (an endless `wait_for` can be paused), a rewind replays it
//! (calling the Python handler again, as Bluesky replays the message), and
//! `msg_hook` sees it replayed. The awaitable runs on the RunEngine's asyncio
//! loop; what it answers (any Python object) or raises goes back to the plan
//! as it is.
//!
//! A handler answering at once (`subscribe`, `input`, ...) is still called by
//! the plan driver when the plan yields its message.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use skyrun::{CommandContext, Msg, PlanError, Reply};
use skyrun_actors::Cause;

use crate::event_loop::LoopDriver;
use crate::plan::{await_on_loop, Incoming};
use crate::pydevice::Raised;

/// The origin of a local command's message: what the engine's handler needs
/// to (re)do it.
pub(crate) struct LocalCall {
    /// The Bluesky `Msg` the plan yielded (what `msg_hook` is given).
    pub msg: Py<PyAny>,
    /// The Python RunEngine, whose `_handle_local` carries it out.
    re: Py<PyAny>,
    driver: Option<Py<LoopDriver>>,
    /// The awaitable the plan driver's call answered: awaited the first
    /// time, the RunEngine is asked again on a replay.
    first: Mutex<Option<Py<PyAny>>>,
}

/// The engine message for the local command `msg` (of `command`) whose
/// handler answered the awaitable `first`.
pub(crate) fn message(
    command: &str,
    msg: Py<PyAny>,
    re: Py<PyAny>,
    driver: Option<Py<LoopDriver>>,
    first: Py<PyAny>,
) -> Msg {
    let mut m = Msg::new(command);
    m.origin = Some(Arc::new(LocalCall {
        msg,
        re,
        driver,
        first: Mutex::new(Some(first)),
    }));
    m
}

/// Registers the engine's handler for the local command `name` on `re`.
pub(crate) fn register(re: &skyrun::RunEngine, name: &str) {
    re.register_command(name, handle);
}

/// The engine's handler: awaits the command's awaitable on the loop.
async fn handle(msg: Msg, _cx: CommandContext) -> Result<Reply, PlanError> {
    let command = msg.command.as_str().to_owned();
    let Some(call) = msg
        .origin
        .as_ref()
        .and_then(|o| o.downcast_ref::<LocalCall>())
    else {
        return Err(PlanError::IllFormed {
            command,
            reason: "the Python RunEngine's command was sent without its Python message".into(),
        });
    };
    let first = call.first.lock().take();
    let aw = match first {
        Some(aw) => Ok(aw),
        None => Python::attach(|py| {
            call.re
                .bind(py)
                .call_method1(intern!(py, "_handle_local"), (call.msg.bind(py),))
                .map(Bound::unbind)
        }),
    };
    let done = match aw {
        Ok(aw) => await_on_loop(aw, call.driver.as_ref()).await,
        Err(e) => Incoming::Throw(e),
    };
    match done {
        Incoming::Value(v) => Ok(Reply::Foreign(Arc::new(v))),
        Incoming::Throw(e) => Err(raised(e)),
        Incoming::Reply(r, _) => r,
    }
}

/// A Python exception as a [`PlanError`] that gives it back as raised.
pub(crate) fn raised(e: PyErr) -> PlanError {
    Python::attach(|py| PlanError::Raised {
        text: crate::plan::describe(py, &e),
        cause: Cause::new(Raised::new(py, e)),
    })
}

/// The Python exception a [`PlanError::Raised`] keeps.
pub(crate) fn exception(e: &PlanError) -> Option<&PyErr> {
    match e {
        PlanError::Raised { cause, .. } => cause.downcast_ref::<Raised>().map(|r| &r.err),
        _ => None,
    }
}
