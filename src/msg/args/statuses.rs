//! Arguments of the commands that give or wait for a Status (`set`, `trigger`, `kickoff`, `complete`, `wait`).

use serde_json::Value;
use skyrun_actors::DeviceHandle;

use super::{group_of, ill_formed, no_args, obj, FromMsg, Kwargs};
use crate::error::PlanError;
use crate::msg::Msg;

/// `set(obj, value, group=None)`.
pub(crate) struct SetArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
    pub(crate) value: &'m Value,
    pub(crate) group: Option<&'m str>,
}

impl<'m> FromMsg<'m> for SetArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        let obj = obj(msg)?;
        let value = match msg.args.as_slice() {
            [v] => v,
            [] => {
                return Err(ill_formed(
                    msg,
                    "it needs the value to set as its one argument",
                ))
            }
            more => {
                return Err(ill_formed(
                    msg,
                    format!("it takes one value, got {}", more.len()),
                ))
            }
        };
        Kwargs::only(msg, &["group"])?;
        Ok(SetArgs {
            obj,
            value,
            group: group_of(msg)?,
        })
    }
}

/// `trigger(obj, group=None)`, `kickoff(obj, group=None)`.
pub(crate) struct StatusArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
    pub(crate) group: Option<&'m str>,
}

impl<'m> FromMsg<'m> for StatusArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &["group"])?;
        Ok(StatusArgs {
            obj: obj(msg)?,
            group: group_of(msg)?,
        })
    }
}

/// `complete(obj, group=None, wait=False)`.
pub(crate) struct CompleteArgs<'m> {
    pub(crate) target: StatusArgs<'m>,
    pub(crate) wait: bool,
}

impl<'m> FromMsg<'m> for CompleteArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["group", "wait"])?;
        Ok(CompleteArgs {
            target: StatusArgs {
                obj: obj(msg)?,
                group: group_of(msg)?,
            },
            wait: kw.bool("wait", false)?,
        })
    }
}

/// `wait(group=None, timeout=None, error_on_timeout=True, watch=())`; the
/// group may also be the one positional argument, as in Bluesky.
pub(crate) struct WaitArgs<'m> {
    pub(crate) group: Option<&'m str>,
    pub(crate) timeout: Option<f64>,
    pub(crate) error_on_timeout: bool,
    /// The watched groups' names (checked to be strings).
    pub(crate) watch: &'m [Value],
}

impl<'m> FromMsg<'m> for WaitArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        let kw = Kwargs::only(msg, &["group", "timeout", "error_on_timeout", "watch"])?;
        let group = match msg.args.as_slice() {
            [] => group_of(msg)?,
            [Value::String(g)] if msg.group.is_none() && !msg.kwargs.contains_key("group") => {
                Some(g.as_str())
            }
            [Value::Null] if msg.group.is_none() => None,
            [v, ..] => {
                return Err(ill_formed(
                    msg,
                    format!("argument 'group': expected one group name, got {v}"),
                ))
            }
        };
        let watch = match kw.get("watch") {
            None => &[][..],
            Some(Value::Array(w)) => {
                if let Some(g) = w.iter().find(|g| !g.is_string()) {
                    return Err(ill_formed(
                        msg,
                        format!("argument 'watch' must be a list of group names, got {g} in it"),
                    ));
                }
                w.as_slice()
            }
            Some(v) => {
                return Err(ill_formed(
                    msg,
                    format!("argument 'watch' must be a list of group names, got {v}"),
                ))
            }
        };
        Ok(WaitArgs {
            group,
            timeout: kw.seconds("timeout")?,
            error_on_timeout: kw.bool("error_on_timeout", true)?,
            watch,
        })
    }
}
