//! Arguments of the commands that steer the plan (`sleep`, `rewindable`, `pause`).

use serde_json::Value;

use super::{ill_formed, FromMsg, Kwargs};
use crate::error::PlanError;
use crate::msg::Msg;

/// `sleep(None, seconds)`.
pub(crate) struct SleepArgs {
    pub(crate) secs: f64,
}

impl<'m> FromMsg<'m> for SleepArgs {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        Kwargs::only(msg, &[])?;
        match msg.args.as_slice() {
            [v] => v
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|secs| SleepArgs { secs }),
            _ => None,
        }
        .ok_or_else(|| {
            ill_formed(
                msg,
                "it needs a non-negative number of seconds as its argument",
            )
        })
    }
}

/// `rewindable(flag)`: `None` (null) only asks.
pub(crate) struct RewindableArgs {
    pub(crate) flag: Option<bool>,
}

impl<'m> FromMsg<'m> for RewindableArgs {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        Kwargs::only(msg, &[])?;
        let flag = match msg.args.as_slice() {
            [Value::Null] => None,
            [Value::Bool(b)] => Some(*b),
            [v] => {
                return Err(ill_formed(
                    msg,
                    format!("its argument must be true, false or null, got {v}"),
                ))
            }
            args => {
                return Err(ill_formed(
                    msg,
                    format!(
                        "it takes one argument (true, false or null), got {}",
                        args.len()
                    ),
                ))
            }
        };
        Ok(RewindableArgs { flag })
    }
}

/// `pause(None, defer=False)`.
pub(crate) struct PauseArgs {
    pub(crate) defer: bool,
}

impl<'m> FromMsg<'m> for PauseArgs {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        match msg.args.as_slice() {
            [] | [Value::Null] => {}
            [v, ..] => {
                return Err(ill_formed(
                    msg,
                    format!("it takes no positional arguments, got {v}"),
                ))
            }
        }
        let kw = Kwargs::only(msg, &["defer"])?;
        Ok(PauseArgs {
            defer: kw.bool("defer", false)?,
        })
    }
}
