//! The handlers of the command table (see `commands.rs`), grouped by what
//! they touch, and what they share: typed argument parsing from a message's
//! Bluesky form ([`FromMsg`], [`Kwargs`]), device requests with the request
//! timeout, and the [`After`] effect a handler returns.

pub(crate) mod bundling;
pub(crate) mod devices;
pub(crate) mod flow;
pub(crate) mod runs;
pub(crate) mod statuses;

use std::future::Future;
use std::rc::Rc;

use futures::FutureExt;
use serde_json::Value;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply};

use super::bundler::OpenRun;
use super::core::EngineCore;
use super::registry::request_within;
use super::request_context::RequestContext;
use crate::error::PlanError;
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

/// A command's typed arguments, parsed once from a message.
pub(crate) trait FromMsg<'m>: Sized {
    /// Parses `msg`, or says which argument is wrong.
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError>;
}

pub(crate) fn ill_formed(msg: &Msg, reason: impl Into<String>) -> PlanError {
    PlanError::IllFormed {
        command: msg.command.as_str().to_owned(),
        reason: reason.into(),
    }
}

pub(crate) fn illegal(msg: &Msg, reason: impl Into<String>) -> PlanError {
    PlanError::Illegal {
        command: msg.command.as_str().to_owned(),
        reason: reason.into(),
    }
}

/// The message's target device.
pub(crate) fn obj(msg: &Msg) -> Result<&DeviceHandle, PlanError> {
    msg.obj
        .as_ref()
        .ok_or_else(|| ill_formed(msg, "it needs a target device (obj)"))
}

/// No positional arguments.
#[inline]
pub(crate) fn no_args(msg: &Msg) -> Result<(), PlanError> {
    match msg.args.first() {
        None => Ok(()),
        Some(v) => Err(ill_formed(
            msg,
            format!("it takes no positional arguments, got {v}"),
        )),
    }
}

/// The keyword arguments of a message, checked against the ones its command takes.
pub(crate) struct Kwargs<'m> {
    msg: &'m Msg,
}

impl<'m> Kwargs<'m> {
    /// Checks that every keyword of `msg` is one of `known` (commands that
    /// take a status group list `group`: Bluesky's messages carry it as a keyword).
    #[inline]
    pub fn only(msg: &'m Msg, known: &[&str]) -> Result<Self, PlanError> {
        if msg.kwargs.is_empty() {
            return Ok(Kwargs { msg });
        }
        if let Some(k) = msg.kwargs.keys().find(|k| !known.contains(&k.as_str())) {
            let takes = if known.is_empty() {
                "no keyword arguments".to_owned()
            } else {
                known.join(", ")
            };
            return Err(ill_formed(
                msg,
                format!("unknown keyword argument '{k}' (it takes {takes})"),
            ));
        }
        Ok(Kwargs { msg })
    }

    /// The keyword `key`, if present and not null.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&'m Value> {
        if self.msg.kwargs.is_empty() {
            return None;
        }
        self.msg.kw(key)
    }

    /// A boolean keyword (`default` when absent or null).
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, PlanError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(ill_formed(
                self.msg,
                format!("argument '{key}' must be true or false, got {v}"),
            )),
        }
    }

    /// A string keyword.
    pub fn str(&self, key: &str) -> Result<Option<&'m str>, PlanError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(ill_formed(
                self.msg,
                format!("argument '{key}' must be a string, got {v}"),
            )),
        }
    }

    /// A keyword that is a non-negative number of seconds.
    pub fn seconds(&self, key: &str) -> Result<Option<f64>, PlanError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(t)),
                _ => Err(ill_formed(
                    self.msg,
                    format!("{key} must be a non-negative number of seconds, got {v}"),
                )),
            },
        }
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

/// The message's status group: the `group` it carries, or Bluesky's `group=` keyword.
#[inline]
pub(crate) fn group_of(msg: &Msg) -> Result<Option<&str>, PlanError> {
    if let Some(g) = &msg.group {
        return Ok(Some(g));
    }
    if msg.kwargs.is_empty() {
        return Ok(None);
    }
    match msg.kwargs.get("group") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(g)) => Ok(Some(g)),
        Some(v) => Err(ill_formed(
            msg,
            format!("argument 'group' must be a string, got {v}"),
        )),
    }
}
