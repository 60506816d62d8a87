//! Commands addressed to one device (or a few) that are not about statuses:
//! `stage`, `unstage`, `stop`, `locate` and `configure` (`collect` has its own file).

use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};

use super::bundling::describe_all;
use super::{illegal, request, with_run, Core, Done};
use crate::error::PlanError;
use crate::msg::args::devices::{ConfigureArgs, LocateArgs, StageArgs, StopArgs};
use crate::msg::Msg;
use crate::reply::{Location, Reply};
use crate::run_engine::groups::Origin;
use crate::run_engine::request_context::RequestContext;

pub(crate) async fn stage(
    core: &Core,
    msg: &Msg,
    a: StageArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    // Devices that have nothing to stage are skipped, as ophyd devices without stage() are.
    if !dev.capabilities().stageable || core.st().staged.contains(dev) {
        return Ok(Reply::None.into());
    }
    let reply = request(core, msg, dev, DeviceOp::Stage, cx).await?;
    core.st().staged.insert(dev.clone());
    Ok(status_in_group(core, a.group, "stage", dev, reply).into())
}

pub(crate) async fn unstage(
    core: &Core,
    msg: &Msg,
    a: StageArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    if !dev.capabilities().stageable {
        return Ok(Reply::None.into());
    }
    let reply = request(core, msg, dev, DeviceOp::Unstage, cx).await?;
    core.st().staged.shift_remove(dev);
    Ok(status_in_group(core, a.group, "unstage", dev, reply).into())
}

/// A status a device's stage or unstage answered joins the message's group
/// (Bluesky's `_add_status_to_group`) and is the reply; none answers none.
fn status_in_group(
    core: &Core,
    group: Option<&str>,
    command: &'static str,
    dev: &DeviceHandle,
    reply: DeviceReply,
) -> Reply {
    match reply {
        DeviceReply::Status(s) => {
            core.st().groups.add(
                group,
                &s,
                Origin {
                    command,
                    device: dev.clone(),
                },
            );
            Reply::Status(s)
        }
        _ => Reply::None,
    }
}

/// Bluesky's `_stop`: `obj.stop()` (ophyd's `success=False`), for a device
/// that can be stopped; one that cannot fails the message, as
/// `check_supports(obj, Stoppable)` does.
pub(crate) async fn stop(
    core: &Core,
    msg: &Msg,
    a: StopArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    if !dev.capabilities().stoppable {
        return Err(illegal(
            msg,
            format!("{} cannot be stopped (it is not Stoppable)", dev.name()),
        ));
    }
    request(core, msg, dev, DeviceOp::Stop { success: false }, cx).await?;
    Ok(Reply::None.into())
}

/// Bluesky's `_locate`: several devices are located at once (it gathers
/// their `locate()`s), the locations in the order of the devices.
pub(crate) async fn locate(
    core: &Core,
    msg: &Msg,
    a: LocateArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let out = match a.devices.as_slice() {
        [dev] => vec![locate_one(core, msg, dev, false, cx).await?],
        devices => {
            futures::future::try_join_all(
                devices
                    .iter()
                    .map(|dev| locate_one(core, msg, dev, true, cx)),
            )
            .await?
        }
    };
    Ok(Reply::Locations(out).into())
}

async fn locate_one(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    gathered: bool,
    cx: &RequestContext<'_>,
) -> Result<Location, PlanError> {
    match request(core, msg, dev, DeviceOp::Locate { gathered }, cx).await? {
        DeviceReply::Located { setpoint, readback } => Ok(Location { setpoint, readback }),
        _ => Err(illegal(
            msg,
            format!("{} answered locate without a location", dev.name()),
        )),
    }
}

pub(crate) async fn configure(
    core: &Core,
    msg: &Msg,
    a: ConfigureArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    // Bluesky's bundler: an event's configuration cannot change under it.
    let here = core.run_index(msg.run.as_deref());
    if here.is_some_and(|i| core.st().runs[i].is_bundling()) {
        return Err(illegal(
            msg,
            "cannot configure after 'create' and before 'save'".to_owned(),
        ));
    }
    let DeviceReply::Configured { old, new } =
        request(core, msg, dev, DeviceOp::Configure(a.settings), cx).await?
    else {
        return Err(illegal(
            msg,
            format!("{} answered configure with something else", dev.name()),
        ));
    };
    // The run the message addresses re-describes the device and emits new
    // descriptors for its streams at once (Bluesky's bundler); other runs
    // describe it again when they next need it.
    for (i, run) in core.st().runs.iter_mut().enumerate() {
        if Some(i) != here {
            run.invalidate(dev.name());
        }
    }
    if let Some(i) = here {
        if core.st().runs[i].is_described(dev.name()) {
            describe_all(core, msg, vec![dev.clone()], cx).await?;
            let docs = with_run(core, msg, |run| run.redescribe(dev.name()))?;
            docs.into_iter().for_each(|d| core.emit(d));
        }
    }
    Ok(Reply::Configured { old, new }.into())
}
