//! Arguments of `monitor` and `unmonitor`.

use skyrun_actors::DeviceHandle;

use super::{no_args, obj, FromMsg, Kwargs};
use crate::error::PlanError;
use crate::msg::Msg;

/// `monitor(obj, name=None)`: the stream is `name`, or `<obj.name>_monitor`
/// (the name `monitor_during_wrapper` and `SupplementalData` give it).
pub(crate) struct MonitorArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
    pub(crate) name: Option<&'m str>,
}

impl<'m> FromMsg<'m> for MonitorArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["name"])?;
        Ok(MonitorArgs {
            obj: obj(msg)?,
            name: kw.str("name")?,
        })
    }
}

/// `unmonitor(obj)`.
pub(crate) struct UnmonitorArgs<'m> {
    pub(crate) obj: &'m DeviceHandle,
}

impl<'m> FromMsg<'m> for UnmonitorArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &[])?;
        Ok(UnmonitorArgs { obj: obj(msg)? })
    }
}
