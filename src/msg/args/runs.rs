//! Arguments of the commands that open and close runs.

use serde_json::{Map, Value};

use super::{ill_formed, no_args, FromMsg, Kwargs};
use crate::documents::ExitStatus;
use crate::error::PlanError;
use crate::msg::Msg;

/// `open_run(**md)`: every keyword is metadata for the start document.
pub(crate) struct OpenRunArgs<'m> {
    pub(crate) metadata: &'m Map<String, Value>,
}

impl<'m> FromMsg<'m> for OpenRunArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Ok(OpenRunArgs {
            metadata: &msg.kwargs,
        })
    }
}

/// `close_run(exit_status=None, reason=None)`.
pub(crate) struct CloseRunArgs<'m> {
    pub(crate) exit: ExitStatus,
    pub(crate) reason: &'m str,
}

impl<'m> FromMsg<'m> for CloseRunArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["exit_status", "reason"])?;
        let exit = match kw.get("exit_status").and_then(Value::as_str) {
            None | Some("success") => ExitStatus::Success,
            Some("fail") => ExitStatus::Fail,
            Some("abort") => ExitStatus::Abort,
            Some(other) => {
                return Err(ill_formed(
                    msg,
                    format!("exit_status must be 'success', 'fail' or 'abort', not '{other}'"),
                ))
            }
        };
        let reason = kw.str("reason")?.unwrap_or("");
        Ok(CloseRunArgs { exit, reason })
    }
}
