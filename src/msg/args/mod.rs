//! A command's typed arguments, parsed once from a message's Bluesky form
//! (`obj`, `args`, `kwargs`) by [`FromMsg`], with an error naming the
//! command and the argument ([`PlanError::IllFormed`]). Each command of the
//! table ([`super::command`]) declares its arguments type; the types are
//! grouped as the engine's handlers are (runs, bundling, devices, flow,
//! monitors, statuses).

pub(crate) mod bundling;
pub(crate) mod devices;
pub(crate) mod flow;
pub(crate) mod monitors;
pub(crate) mod runs;
pub(crate) mod statuses;

use serde_json::Value;
use skyrun_actors::DeviceHandle;

use crate::error::PlanError;
use crate::msg::Msg;

/// A command's typed arguments, parsed once from a message.
pub(crate) trait FromMsg<'m>: Sized {
    /// Parses `msg`, or says which argument is wrong.
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError>;
}

/// The error of an argument that is wrong: names the command and why.
pub(crate) fn ill_formed(msg: &Msg, reason: impl Into<String>) -> PlanError {
    PlanError::IllFormed {
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
