//! The handlers of the command table (bound to the commands in
//! `commands.rs`), grouped by what they touch, and what they share: device
//! requests with the request timeout, the run a message addresses, and the
//! [`After`] effect a handler returns. Each handler takes its command's typed
//! arguments, parsed by the message model (`msg/args/`).

pub(crate) mod bundling;
pub(crate) mod collect;
pub(crate) mod devices;
pub(crate) mod flow;
pub(crate) mod monitors;
pub(crate) mod runs;
pub(crate) mod statuses;

use std::future::Future;
use std::rc::Rc;

use futures::FutureExt;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply};

use super::bundler::OpenRun;
use super::core::EngineCore;
use super::registry::request_within;
use super::request_context::RequestContext;
use crate::error::{BlueskyException, PlanError};
use crate::msg::Msg;
use crate::reply::Reply;

pub(crate) type Core = Rc<EngineCore>;

/// What the engine does once a message has its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Go on with the plan.
    Continue,
    /// Pause now (a `pause` message that is not deferred).
    PauseNow,
    /// Pause now if a deferred pause is waiting (a `checkpoint`).
    PauseIfRequested,
}

/// A handler's result: the reply, and what the engine does next.
pub(crate) struct Done {
    pub reply: Reply,
    pub after: After,
}

impl From<Reply> for Done {
    fn from(reply: Reply) -> Self {
        Done {
            reply,
            after: After::Continue,
        }
    }
}

pub(crate) fn illegal(msg: &Msg, reason: impl Into<String>) -> PlanError {
    PlanError::Illegal {
        command: msg.command.as_str().to_owned(),
        reason: reason.into(),
    }
}

/// A check of Bluesky's bundler failed on `msg`; Bluesky raises `raises` for it.
pub(crate) fn inconsistent(
    msg: &Msg,
    raises: BlueskyException,
    reason: impl Into<String>,
) -> PlanError {
    PlanError::Bundle {
        command: msg.command.as_str().to_owned(),
        reason: reason.into(),
        raises,
    }
}

pub(crate) fn device_error(msg: &Msg, dev: &DeviceHandle, e: DeviceError) -> PlanError {
    PlanError::Device {
        command: msg.command.as_str().to_owned(),
        device: dev.name().to_owned(),
        source: e,
    }
}

/// Sends `op` to `dev` with the engine's request timeout (a plain future:
/// see [`request_within`]).
pub(crate) fn request<'a>(
    core: &Core,
    msg: &'a Msg,
    dev: &'a DeviceHandle,
    op: DeviceOp,
    cx: &RequestContext<'_>,
) -> impl Future<Output = Result<DeviceReply, PlanError>> + 'a {
    request_within(dev, op, cx.context(), core.opts().request_timeout)
        .map(move |reply| reply.map_err(|e| device_error(msg, dev, e)))
}

pub(crate) fn run_of(core: &Core, msg: &Msg) -> Result<usize, PlanError> {
    core.run_index(msg.run.as_deref())
        .ok_or_else(|| match &msg.run {
            Some(k) => illegal(msg, format!("no run with key '{k}' is open")),
            None => illegal(msg, "no run is open (send 'open_run' first)"),
        })
}

pub(crate) fn with_run<T>(
    core: &Core,
    msg: &Msg,
    f: impl FnOnce(&mut OpenRun) -> Result<T, PlanError>,
) -> Result<T, PlanError> {
    let i = run_of(core, msg)?;
    f(&mut core.st().runs[i])
}
