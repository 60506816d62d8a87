//! Arguments of the commands that bundle readings into events (`declare_stream`, `create`, `read`, ...).

use serde_json::Value;
use skyrun_actors::DeviceHandle;

use super::{ill_formed, no_args, obj, FromMsg, Kwargs};
use crate::error::{BlueskyException, PlanError};
use crate::msg::Msg;

/// No arguments at all (`save`, `drop`, `checkpoint`, `null`, ...).
pub(crate) struct NoArgs;

impl<'m> FromMsg<'m> for NoArgs {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &[])?;
        Ok(NoArgs)
    }
}

/// `declare_stream(*objs, name=, collect=False)`: the devices are the target
/// and the positional device arguments.
pub(crate) struct DeclareStreamArgs<'m> {
    pub(crate) name: &'m str,
    pub(crate) devices: Vec<DeviceHandle>,
    /// The descriptor from `describe_collect` (a stream `collect` fills).
    pub(crate) collect: bool,
}

impl<'m> FromMsg<'m> for DeclareStreamArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["name", "collect"])?;
        let collect = kw.bool("collect", false)?;
        // Bluesky's bundler asserts the name (`bps.declare_stream` requires it).
        let name = kw.str("name")?.ok_or_else(|| PlanError::Bundle {
            command: msg.command.as_str().to_owned(),
            reason: "A stream name that is not None is required for pre-declare".into(),
            raises: BlueskyException::AssertionError,
        })?;
        let devices = msg.obj.iter().chain(&msg.objs).cloned().collect();
        Ok(DeclareStreamArgs {
            name,
            devices,
            collect,
        })
    }
}

/// `create(name="primary")` (the name may also be the one positional argument).
pub(crate) struct CreateArgs<'m> {
    pub(crate) name: &'m str,
}

impl<'m> FromMsg<'m> for CreateArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        let kw = Kwargs::only(msg, &["name"])?;
        let name = match (kw.str("name")?, msg.args.as_slice()) {
            (Some(n), []) => n,
            (None, []) => "primary",
            (None, [Value::String(n)]) => n,
            (_, [v, ..]) => {
                return Err(ill_formed(
                    msg,
                    format!("argument 'name': expected one stream name, got {v}"),
                ))
            }
        };
        Ok(CreateArgs { name })
    }
}

/// `read(obj)`.
pub(crate) struct ReadArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
}

impl<'m> FromMsg<'m> for ReadArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &[])?;
        Ok(ReadArgs { obj: obj(msg)? })
    }
}
