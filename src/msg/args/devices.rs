//! Arguments of the commands that act on a device (`stage`, `stop`, `locate`, `collect`, `configure`).

use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

use super::{ill_formed, no_args, obj, FromMsg, Kwargs};
use crate::error::{BlueskyException, PlanError};
use crate::msg::Msg;

/// `stage(obj, group=None)`, `unstage(obj, group=None)`.
pub(crate) struct StageArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
    /// The group of the status a device's stage answers, if it answers one.
    pub(crate) group: Option<&'m str>,
}

impl<'m> FromMsg<'m> for StageArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["group"])?;
        Ok(StageArgs {
            obj: obj(msg)?,
            group: kw.str("group")?,
        })
    }
}

/// `stop(obj)`.
pub(crate) struct StopArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
}

impl<'m> FromMsg<'m> for StopArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &[])?;
        Ok(StopArgs { obj: obj(msg)? })
    }
}

/// `locate(obj1, ..., objn, squeeze=True)`: the target and the positional device arguments.
pub(crate) struct LocateArgs<'m> {
    pub(crate) devices: Vec<&'m DeviceHandle>,
}

impl<'m> FromMsg<'m> for LocateArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["squeeze"])?;
        kw.bool("squeeze", true)?;
        let devices: Vec<&DeviceHandle> = msg.obj.iter().chain(&msg.objs).collect();
        if devices.is_empty() {
            return Err(ill_formed(msg, "it needs at least one device to locate"));
        }
        Ok(LocateArgs { devices })
    }
}

/// `collect(obj, *objs, stream=False, return_payload=True, name=None)`:
/// several objects collect into one declared stream.
pub(crate) struct CollectArgs<'m> {
    pub(crate) devices: Vec<&'m DeviceHandle>,
    pub(crate) name: Option<&'m str>,
}

impl<'m> FromMsg<'m> for CollectArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["stream", "return_payload", "name"])?;
        if kw.bool("stream", false)? {
            return Err(PlanError::Bundle {
                command: msg.command.as_str().to_owned(),
                reason: "Collect now emits EventPages (stream=False), so emitting Events (stream=True) is no longer supported".into(),
                raises: BlueskyException::RuntimeError,
            });
        }
        kw.bool("return_payload", true)?;
        let name = kw.str("name")?;
        let devices = std::iter::once(obj(msg)?).chain(&msg.objs).collect();
        Ok(CollectArgs { devices, name })
    }
}

/// `configure(obj, {settings}, **settings)`.
pub(crate) struct ConfigureArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
    pub(crate) settings: Map<String, Value>,
}

impl<'m> FromMsg<'m> for ConfigureArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        let mut settings = match msg.args.as_slice() {
            [] => Map::new(),
            [Value::Object(d)] => d.clone(),
            [v, ..] => {
                return Err(ill_formed(
                    msg,
                    format!("argument 'd': expected one dictionary of settings, got {v}"),
                ))
            }
        };
        settings.extend(msg.kwargs.clone());
        Ok(ConfigureArgs {
            obj: obj(msg)?,
            settings,
        })
    }
}
