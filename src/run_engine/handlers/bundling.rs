//! The event bundle: `declare_stream`, `create`, `read`, `save`, `drop`, and
//! the descriptions a descriptor needs (describe, configuration, hints).

use serde_json::Value;
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};

use super::{ill_formed, illegal, no_args, obj, request, with_run, Core, Done, FromMsg, Kwargs};
use crate::documents::ObjectConfiguration;
use crate::error::PlanError;
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::bundler::ObjectDescription;
use crate::run_engine::request_context::RequestContext;

/// No arguments at all (`save`, `drop`, `checkpoint`, `null`, ...).
pub(crate) struct NoArgs;

impl<'m> FromMsg<'m> for NoArgs {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &[])?;
        Ok(NoArgs)
    }
}

/// Describes `devices` for the run's descriptors (describe, configuration, hints).
pub(crate) async fn describe_all(
    core: &Core,
    msg: &Msg,
    devices: Vec<DeviceHandle>,
    cx: &RequestContext<'_>,
) -> Result<(), PlanError> {
    for dev in devices {
        let DeviceReply::DataKeys(data_keys) =
            request(core, msg, &dev, DeviceOp::Describe, cx).await?
        else {
            return Err(illegal(
                msg,
                format!("{} answered describe with something else", dev.name()),
            ));
        };
        let config = match request(core, msg, &dev, DeviceOp::ReadConfiguration, cx).await? {
            DeviceReply::Readings(r) => r,
            _ => Default::default(),
        };
        let config_keys =
            match request(core, msg, &dev, DeviceOp::DescribeConfiguration, cx).await? {
                DeviceReply::DataKeys(k) => k,
                _ => Default::default(),
            };
        let hints = match request(core, msg, &dev, DeviceOp::Hints, cx).await? {
            DeviceReply::Hints(h) => h,
            _ => Vec::new(),
        };
        let desc = ObjectDescription {
            data_keys,
            configuration: ObjectConfiguration::new(config, config_keys),
            hints,
        };
        with_run(core, msg, |run| {
            run.add_description(dev.name(), desc);
            Ok(())
        })?;
    }
    Ok(())
}

/// `declare_stream(*objs, name=, collect=False)`: the devices are the target
/// and the positional device arguments.
pub(crate) struct DeclareStreamArgs<'m> {
    name: &'m str,
    devices: Vec<DeviceHandle>,
}

impl<'m> FromMsg<'m> for DeclareStreamArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        let kw = Kwargs::only(msg, &["name", "collect"])?;
        if kw.bool("collect", false)? {
            return Err(ill_formed(
                msg,
                "argument 'collect': streams of collected data are declared by 'collect' itself",
            ));
        }
        let name = kw.str("name")?.unwrap_or("primary");
        let devices = msg.obj.iter().chain(&msg.objs).cloned().collect();
        Ok(DeclareStreamArgs { name, devices })
    }
}

pub(crate) async fn declare_stream(
    core: &Core,
    msg: &Msg,
    a: DeclareStreamArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let todo = with_run(core, msg, |run| Ok(run.undescribed(&a.devices)))?;
    describe_all(core, msg, todo, cx).await?;
    let names: Vec<String> = a.devices.iter().map(|d| d.name().to_owned()).collect();
    let docs = with_run(core, msg, |run| run.declare_stream(a.name, &names))?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::None.into())
}

/// `create(name="primary")` (the name may also be the one positional argument).
pub(crate) struct CreateArgs<'m> {
    name: &'m str,
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

pub(crate) async fn create(
    core: &Core,
    msg: &Msg,
    a: CreateArgs<'_>,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    with_run(core, msg, |run| run.create(a.name.to_owned()))?;
    Ok(Reply::None.into())
}

pub(crate) async fn save(
    core: &Core,
    msg: &Msg,
    _: NoArgs,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let todo = with_run(core, msg, |run| run.bundle_undescribed())?;
    describe_all(core, msg, todo, cx).await?;
    let docs = with_run(core, msg, |run| run.save())?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::None.into())
}

pub(crate) async fn drop_bundle(
    core: &Core,
    msg: &Msg,
    _: NoArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    with_run(core, msg, |run| run.drop_bundle())?;
    Ok(Reply::None.into())
}

/// `read(obj)`.
pub(crate) struct ReadArgs<'m> {
    obj: &'m DeviceHandle,
}

impl<'m> FromMsg<'m> for ReadArgs<'m> {
    fn from_msg(msg: &'m Msg) -> Result<Self, PlanError> {
        no_args(msg)?;
        Kwargs::only(msg, &[])?;
        Ok(ReadArgs { obj: obj(msg)? })
    }
}

pub(crate) async fn read(
    core: &Core,
    msg: &Msg,
    a: ReadArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    let DeviceReply::Readings(readings) = request(core, msg, dev, DeviceOp::Read, cx).await? else {
        return Err(illegal(
            msg,
            format!("{} answered read with something else", dev.name()),
        ));
    };
    if let Some(i) = core.run_index(msg.run.as_deref()) {
        core.st().runs[i].record_read(dev, &readings);
    }
    Ok(Reply::Readings(readings).into())
}
