//! Commands that return a Status and put it in a group (`set`, `trigger`,
//! `kickoff`, `complete`), and `wait`, which waits for a group.

use std::time::Duration;

use futures::future::Either;
use serde_json::Value;
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply, Status};

use super::{illegal, request, with_run, Core, Done};
use crate::error::PlanError;
use crate::msg::args::statuses::{CompleteArgs, SetArgs, StatusArgs, WaitArgs};
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::groups::{Group, Origin};
use crate::run_engine::request_context::RequestContext;

fn track(core: &Core, group: Option<&str>, command: &'static str, dev: &DeviceHandle, st: &Status) {
    core.st().groups.add(
        group,
        st,
        Origin {
            command,
            device: dev.clone(),
        },
    );
}

pub(crate) async fn set(
    core: &Core,
    msg: &Msg,
    a: SetArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    let status = status_op(core, msg, dev, a.group, cx, DeviceOp::Set(a.value.clone())).await?;
    let mut st = core.st();
    if !st.touched.contains(dev) {
        st.touched.insert(dev.clone());
    }
    drop(st);
    Ok(Reply::Status(status).into())
}

/// Bluesky's `_prepare`: `obj.prepare(value)`, its status in the group.
pub(crate) async fn prepare(
    core: &Core,
    msg: &Msg,
    a: SetArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    if !dev.capabilities().preparable {
        return Err(illegal(
            msg,
            format!("{} cannot be prepared (it has no prepare)", dev.name()),
        ));
    }
    let op = DeviceOp::Prepare(a.value.clone());
    let status = status_op(core, msg, dev, a.group, cx, op).await?;
    Ok(Reply::Status(status).into())
}

/// Asks `dev` for `op`, whose answer must be a status, and puts that status
/// in `group` (set, prepare, trigger, kickoff, complete).
async fn status_op(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    group: Option<&str>,
    cx: &RequestContext<'_>,
    op: DeviceOp,
) -> Result<Status, PlanError> {
    let name = op.name();
    let DeviceReply::Status(status) = request(core, msg, dev, op, cx).await? else {
        return Err(illegal(
            msg,
            format!("{} answered {name} without a status", dev.name()),
        ));
    };
    track(core, group, name, dev, &status);
    Ok(status)
}

pub(crate) async fn trigger(
    core: &Core,
    msg: &Msg,
    a: StatusArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let status = status_op(core, msg, a.obj, a.group, cx, DeviceOp::Trigger).await?;
    Ok(Reply::Status(status).into())
}

pub(crate) async fn kickoff(
    core: &Core,
    msg: &Msg,
    a: StatusArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    // Flying belongs to a run (Bluesky's IllegalMessageSequence otherwise);
    // a flyer kicked off and never collected is collected when the plan ends.
    with_run(core, msg, |run| {
        run.kicked_off(a.obj);
        Ok(())
    })
    .map_err(|_| illegal(msg, "A 'kickoff' message was sent but no run is open."))?;
    let status = status_op(core, msg, a.obj, a.group, cx, DeviceOp::Kickoff).await?;
    Ok(Reply::Status(status).into())
}

pub(crate) async fn complete(
    core: &Core,
    msg: &Msg,
    a: CompleteArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let status = status_op(
        core,
        msg,
        a.target.obj,
        a.target.group,
        cx,
        DeviceOp::Complete,
    )
    .await?;
    if a.wait {
        status.wait().await.map_err(|e| {
            // The plan is told here: the failure is not thrown again.
            core.st().groups.failures().clear();
            PlanError::Status {
                command: "complete".into(),
                device: a.target.obj.name().to_owned(),
                source: e,
            }
        })?;
    }
    Ok(Reply::Status(status).into())
}

/// Bluesky's `_wait`: waits for the group's statuses, failing at the first
/// that fails, or at the first failure in a `watch`ed group; replies whether
/// they are all done. Past `timeout`, it fails (`error_on_timeout`) or
/// replies `false` with the statuses put back in the group, so that the
/// next wait waits for them again (`collect_while_completing`'s loop).
pub(crate) async fn wait(
    core: &Core,
    _msg: &Msg,
    a: WaitArgs<'_>,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let group = core.st().groups.take(a.group);
    // A failure the wait reports is the plan's to handle: it is not thrown again.
    let told = |r: Result<(), PlanError>| {
        if r.is_err() {
            core.st().groups.failures().clear();
        }
        r
    };
    if a.timeout.is_none() && a.watch.is_empty() {
        told(group.await)?;
        return Ok(Reply::Done(true).into());
    }
    // On the heap: the common wait above keeps a small future.
    Box::pin(wait_within(core, a, group, told)).await
}

/// A wait with a timeout or watched groups.
async fn wait_within(
    core: &Core,
    a: WaitArgs<'_>,
    mut group: Group,
    told: impl Fn(Result<(), PlanError>) -> Result<(), PlanError>,
) -> Result<Done, PlanError> {
    let watched = core
        .st()
        .groups
        .watched(a.watch.iter().filter_map(Value::as_str));
    let done = {
        let all = async {
            if watched.is_empty() {
                return (&mut group).await;
            }
            let failed = futures::future::select_all(watched.iter().map(|g| Box::pin(g.failed())));
            match futures::future::select(&mut group, failed).await {
                Either::Left((r, _)) => r,
                Either::Right(((e, ..), _)) => Err(e),
            }
        };
        match a.timeout {
            None => Some(all.await),
            Some(t) => tokio::time::timeout(Duration::from_secs_f64(t), all)
                .await
                .ok(),
        }
    };
    match done {
        Some(r) => told(r).map(|()| Reply::Done(true).into()),
        None => {
            core.st().groups.put_back(a.group, group);
            if a.error_on_timeout {
                return Err(PlanError::WaitTimeout {
                    group: a.group.unwrap_or("None").to_owned(),
                    timeout: a.timeout.unwrap_or_default(),
                });
            }
            Ok(Reply::Done(false).into())
        }
    }
}
