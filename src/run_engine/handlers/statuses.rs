//! Commands that return a Status and put it in a group (`set`, `trigger`,
//! `kickoff`, `complete`), and `wait`, which waits for a group.

use std::time::Duration;

use futures::future::Either;
use serde_json::Value;
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply, Status};

use super::{group_of, ill_formed, illegal, no_args, obj, request, Core, Done, FromMsg, Kwargs};
use crate::error::PlanError;
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

/// `set(obj, value, group=None)`.
pub(crate) struct SetArgs<'m> {
    obj: &'m DeviceHandle,
    value: &'m Value,
    group: Option<&'m str>,
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

pub(crate) async fn set(
    core: &Core,
    msg: &Msg,
    a: SetArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    let DeviceReply::Status(status) =
        request(core, msg, dev, DeviceOp::Set(a.value.clone()), cx).await?
    else {
        return Err(illegal(
            msg,
            format!("{} answered set without a status", dev.name()),
        ));
    };
    track(core, a.group, "set", dev, &status);
    let mut st = core.st();
    if !st.touched.contains(dev) {
        st.touched.insert(dev.clone());
    }
    drop(st);
    Ok(Reply::Status(status).into())
}

/// `trigger(obj, group=None)`, `kickoff(obj, group=None)`.
pub(crate) struct StatusArgs<'m> {
    obj: &'m DeviceHandle,
    group: Option<&'m str>,
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

async fn status_op(
    core: &Core,
    msg: &Msg,
    a: &StatusArgs<'_>,
    cx: &RequestContext<'_>,
    op: DeviceOp,
) -> Result<Status, PlanError> {
    let dev = a.obj;
    let name = op.name();
    let DeviceReply::Status(status) = request(core, msg, dev, op, cx).await? else {
        return Err(illegal(
            msg,
            format!("{} answered {name} without a status", dev.name()),
        ));
    };
    track(core, a.group, name, dev, &status);
    Ok(status)
}

pub(crate) async fn trigger(
    core: &Core,
    msg: &Msg,
    a: StatusArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let status = status_op(core, msg, &a, cx, DeviceOp::Trigger).await?;
    Ok(Reply::Status(status).into())
}

pub(crate) async fn kickoff(
    core: &Core,
    msg: &Msg,
    a: StatusArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let status = status_op(core, msg, &a, cx, DeviceOp::Kickoff).await?;
    Ok(Reply::Status(status).into())
}

/// `complete(obj, group=None, wait=False)`.
pub(crate) struct CompleteArgs<'m> {
    target: StatusArgs<'m>,
    wait: bool,
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

pub(crate) async fn complete(
    core: &Core,
    msg: &Msg,
    a: CompleteArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let status = status_op(core, msg, &a.target, cx, DeviceOp::Complete).await?;
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

/// `wait(group=None, timeout=None, error_on_timeout=True, watch=())`; the
/// group may also be the one positional argument, as in Bluesky.
pub(crate) struct WaitArgs<'m> {
    group: Option<&'m str>,
    timeout: Option<f64>,
    error_on_timeout: bool,
    /// The watched groups' names (checked to be strings).
    watch: &'m [Value],
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
