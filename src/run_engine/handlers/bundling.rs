//! The event bundle: `declare_stream`, `create`, `read`, `save`, `drop`, and
//! the descriptions a descriptor needs (describe, configuration, hints).

use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};

use super::{illegal, request, with_run, Core, Done};
use crate::documents::ObjectConfiguration;
use crate::error::PlanError;
use crate::msg::args::bundling::{CreateArgs, DeclareStreamArgs, NoArgs, ReadArgs};
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::bundler::ObjectDescription;
use crate::run_engine::request_context::RequestContext;

/// The configuration of `dev` for a descriptor (none if it cannot be read).
pub(crate) async fn configuration(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    cx: &RequestContext<'_>,
) -> Result<ObjectConfiguration, PlanError> {
    if !dev.capabilities().readable {
        return Ok(ObjectConfiguration::default());
    }
    let config = match request(core, msg, dev, DeviceOp::ReadConfiguration, cx).await? {
        DeviceReply::Readings(r) => r,
        _ => Default::default(),
    };
    let keys = match request(core, msg, dev, DeviceOp::DescribeConfiguration, cx).await? {
        DeviceReply::DataKeys(k) => k,
        _ => Default::default(),
    };
    Ok(ObjectConfiguration::new(config, keys))
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
        let configuration = configuration(core, msg, &dev, cx).await?;
        let hints = match request(core, msg, &dev, DeviceOp::Hints, cx).await? {
            DeviceReply::Hints(h) => h,
            _ => None,
        };
        let desc = ObjectDescription {
            data_keys,
            configuration,
            hints,
        };
        with_run(core, msg, |run| {
            run.add_description(dev.name(), desc);
            Ok(())
        })?;
    }
    Ok(())
}

pub(crate) async fn declare_stream(
    core: &Core,
    msg: &Msg,
    a: DeclareStreamArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    if a.collect {
        super::collect::declare_collected(core, msg, a.name, &a.devices, cx).await?;
        return Ok(Reply::None.into());
    }
    // A declared stream has a new descriptor: its objects described now.
    describe_all(core, msg, a.devices.clone(), cx).await?;
    let docs = with_run(core, msg, |run| run.declare_stream(a.name, &a.devices))?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::None.into())
}

pub(crate) fn create(
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
    if let Err(e) = describe_all(core, msg, todo, cx).await {
        // The bundle is closed all the same, as Bluesky's `save` closes it
        // first: the plan's cleanup may record events of its own.
        let _ = with_run(core, msg, |run| run.drop_bundle());
        return Err(e);
    }
    let docs = with_run(core, msg, |run| run.save())?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::None.into())
}

pub(crate) fn drop_bundle(
    core: &Core,
    msg: &Msg,
    _: NoArgs,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    with_run(core, msg, |run| run.drop_bundle())?;
    Ok(Reply::None.into())
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
        core.st().runs[i].record_read(dev, &readings)?;
        super::collect::read_assets(core, msg, dev, cx).await?;
    }
    Ok(Reply::Readings(readings).into())
}
