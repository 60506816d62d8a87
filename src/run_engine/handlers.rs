//! One small handler per message command, dispatched from [`dispatch`]: adding
//! a command means adding a variant to [`Command`] and a line here.

use std::rc::Rc;
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use serde_json::Value;
use skyrun_actors::{DeviceError, DeviceHandle, DeviceOp, DeviceReply, Status};

use super::bundler::{ObjectDescription, OpenRun};
use super::core::EngineCore;
use super::groups::Origin;
use super::scope::Scope;
use super::Reply;
use crate::documents::{new_uid, Document, ObjectConfiguration, RunStart};
use crate::error::PlanError;
use crate::msg::{Command, Msg};
use crate::telemetry::spans::{msg_attributes, RUN_SPAN};

type Core = Rc<EngineCore>;

/// Processes `msg`; `cx` is the span context to propagate to devices.
pub(crate) async fn dispatch(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    match &msg.command {
        Command::OpenRun => open_run(core, msg),
        Command::CloseRun => close_run(core, msg),
        Command::DeclareStream => declare_stream(core, msg, cx).await,
        Command::Create => create(core, msg),
        Command::Save => save(core, msg, cx).await,
        Command::Drop => drop_bundle(core, msg),
        Command::Read => read(core, msg, cx).await,
        Command::Set => set(core, msg, cx).await,
        Command::Trigger => status_op(core, msg, cx, DeviceOp::Trigger).await,
        Command::Wait => wait(core, msg).await,
        Command::Sleep => sleep(msg).await,
        Command::Checkpoint => checkpoint(core, msg),
        Command::ClearCheckpoint => clear_checkpoint(core),
        Command::Pause => pause(core, msg),
        Command::Stage => stage(core, msg, cx).await,
        Command::Unstage => unstage(core, msg, cx).await,
        Command::Kickoff => status_op(core, msg, cx, DeviceOp::Kickoff).await,
        Command::Complete => complete(core, msg, cx).await,
        Command::Collect => collect(core, msg, cx).await,
        Command::Configure => configure(core, msg, cx).await,
        Command::Null => Ok(Reply::None),
        Command::Other(name) => Err(PlanError::UnknownCommand(name.clone())),
    }
}

fn ill_formed(msg: &Msg, reason: impl Into<String>) -> PlanError {
    PlanError::IllFormed {
        command: msg.command.as_str().to_owned(),
        reason: reason.into(),
    }
}

fn illegal(msg: &Msg, reason: impl Into<String>) -> PlanError {
    PlanError::Illegal {
        command: msg.command.as_str().to_owned(),
        reason: reason.into(),
    }
}

fn obj(msg: &Msg) -> Result<&DeviceHandle, PlanError> {
    msg.obj
        .as_ref()
        .ok_or_else(|| ill_formed(msg, "it needs a target device (obj)"))
}

fn device_error(msg: &Msg, dev: &DeviceHandle, e: DeviceError) -> PlanError {
    PlanError::Device {
        command: msg.command.as_str().to_owned(),
        device: dev.name().to_owned(),
        source: e,
    }
}

async fn request(
    core: &Core,
    msg: &Msg,
    dev: &DeviceHandle,
    op: DeviceOp,
    cx: &Scope<'_>,
) -> Result<DeviceReply, PlanError> {
    let reply = match core.opts.request_timeout {
        None => dev.request(op, cx.context()).await,
        Some(limit) => {
            let operation = op.name();
            tokio::time::timeout(limit, dev.request(op, cx.context()))
                .await
                .unwrap_or_else(|_| {
                    Err(DeviceError::NoReply {
                        device: dev.name().to_owned(),
                        operation,
                        after: limit.as_secs_f64(),
                    })
                })
        }
    };
    reply.map_err(|e| device_error(msg, dev, e))
}

fn run_of(core: &Core, msg: &Msg) -> Result<usize, PlanError> {
    core.run_index(msg.run.as_deref())
        .ok_or_else(|| match &msg.run {
            Some(k) => illegal(msg, format!("no run with key '{k}' is open")),
            None => illegal(msg, "no run is open (send 'open_run' first)"),
        })
}

fn with_run<T>(
    core: &Core,
    msg: &Msg,
    f: impl FnOnce(&mut OpenRun) -> Result<T, PlanError>,
) -> Result<T, PlanError> {
    let i = run_of(core, msg)?;
    f(&mut core.st.borrow_mut().runs[i])
}

fn open_run(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    if core.run_index(msg.run.as_deref()).is_some() {
        return Err(illegal(
            msg,
            match &msg.run {
                Some(k) => format!("a run with key '{k}' is already open"),
                None => {
                    "a run is already open; close it first, or give each nested run its own run key"
                        .to_owned()
                }
            },
        ));
    }
    let uid = new_uid();
    let scan_id = {
        let mut st = core.st.borrow_mut();
        st.scan_id += 1;
        st.scan_id
    };
    let parent = core.span_parent(&msg.context, None);
    let span_cx = core
        .tracer
        .start(RUN_SPAN, &parent, msg_attributes(msg))
        .map(|span| Context::new().with_span(span));
    let mut metadata = core.opts.metadata.clone();
    metadata.extend(msg.kwargs.clone());
    core.emit(Document::Start(RunStart {
        uid: uid.clone(),
        time: skyrun_actors::now(),
        scan_id,
        metadata,
    }));
    let mut st = core.st.borrow_mut();
    st.run_uids.push(uid.clone());
    st.runs
        .push(OpenRun::new(msg.run.clone(), uid.clone(), span_cx));
    Ok(Reply::RunUid(uid))
}

fn close_run(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    let i = run_of(core, msg)?;
    let run = core.st.borrow_mut().runs.remove(i);
    let exit = match msg.kw("exit_status").and_then(Value::as_str) {
        None | Some("success") => crate::ExitStatus::Success,
        Some("fail") => crate::ExitStatus::Fail,
        Some("abort") => crate::ExitStatus::Abort,
        Some(other) => {
            core.st.borrow_mut().runs.insert(i, run);
            return Err(ill_formed(
                msg,
                format!("exit_status must be 'success', 'fail' or 'abort', not '{other}'"),
            ));
        }
    };
    let reason = msg.kw("reason").and_then(Value::as_str).unwrap_or("");
    let uid = run.uid.clone();
    core.finish_run(run, exit, reason);
    Ok(Reply::RunUid(uid))
}

/// Describes `devices` for the run's descriptors (describe, configuration, hints).
async fn describe_all(
    core: &Core,
    msg: &Msg,
    devices: Vec<DeviceHandle>,
    cx: &Scope<'_>,
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

async fn declare_stream(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let name = msg
        .kw("name")
        .and_then(Value::as_str)
        .unwrap_or("primary")
        .to_owned();
    let devices: Vec<DeviceHandle> = msg.obj.iter().cloned().collect();
    let todo = with_run(core, msg, |run| Ok(run.undescribed(&devices)))?;
    describe_all(core, msg, todo, cx).await?;
    let names: Vec<String> = devices.iter().map(|d| d.name().to_owned()).collect();
    let docs = with_run(core, msg, |run| run.declare_stream(&name, &names))?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::None)
}

fn create(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    let name = msg
        .kw("name")
        .or_else(|| msg.args.first())
        .and_then(Value::as_str)
        .unwrap_or("primary")
        .to_owned();
    with_run(core, msg, |run| run.create(name))?;
    Ok(Reply::None)
}

async fn save(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let todo = with_run(core, msg, |run| run.bundle_undescribed())?;
    describe_all(core, msg, todo, cx).await?;
    let docs = with_run(core, msg, |run| run.save())?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::None)
}

fn drop_bundle(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    with_run(core, msg, |run| run.drop_bundle())?;
    Ok(Reply::None)
}

async fn read(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    let DeviceReply::Readings(readings) = request(core, msg, dev, DeviceOp::Read, cx).await? else {
        return Err(illegal(
            msg,
            format!("{} answered read with something else", dev.name()),
        ));
    };
    if let Some(i) = core.run_index(msg.run.as_deref()) {
        core.st.borrow_mut().runs[i].record_read(dev, &readings);
    }
    Ok(Reply::Readings(readings))
}

fn track(core: &Core, msg: &Msg, command: &'static str, dev: &DeviceHandle, status: &Status) {
    core.st.borrow_mut().groups.add(
        msg.group.as_deref(),
        status,
        Origin {
            command,
            device: dev.name().to_owned(),
        },
    );
}

async fn set(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    let value = match msg.args.as_slice() {
        [v] => v.clone(),
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
    let DeviceReply::Status(status) = request(core, msg, dev, DeviceOp::Set(value), cx).await?
    else {
        return Err(illegal(
            msg,
            format!("{} answered set without a status", dev.name()),
        ));
    };
    track(core, msg, "set", dev, &status);
    core.st.borrow_mut().touched.insert(dev.clone());
    Ok(Reply::Status(status))
}

async fn status_op(
    core: &Core,
    msg: &Msg,
    cx: &Scope<'_>,
    op: DeviceOp,
) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    let name = op.name();
    let DeviceReply::Status(status) = request(core, msg, dev, op, cx).await? else {
        return Err(illegal(
            msg,
            format!("{} answered {name} without a status", dev.name()),
        ));
    };
    track(core, msg, name, dev, &status);
    Ok(Reply::Status(status))
}

async fn complete(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let reply = status_op(core, msg, cx, DeviceOp::Complete).await?;
    if msg.kw("wait").and_then(Value::as_bool).unwrap_or(false) {
        if let Reply::Status(s) = &reply {
            let device = obj(msg)?.name().to_owned();
            s.wait().await.map_err(|e| PlanError::Status {
                command: "complete".into(),
                device,
                source: e,
            })?;
        }
    }
    Ok(reply)
}

async fn wait(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    let group = core.st.borrow_mut().groups.take(msg.group.as_deref());
    let timeout = match msg.kw("timeout") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Some(t),
            _ => {
                return Err(ill_formed(
                    msg,
                    format!("timeout must be a non-negative number of seconds, got {v}"),
                ))
            }
        },
    };
    match timeout {
        None => group.await?,
        Some(t) => match tokio::time::timeout(Duration::from_secs_f64(t), group).await {
            Ok(r) => r?,
            Err(_)
                if msg
                    .kw("error_on_timeout")
                    .and_then(Value::as_bool)
                    .unwrap_or(true) =>
            {
                return Err(PlanError::WaitTimeout {
                    group: msg.group.clone().unwrap_or_else(|| "None".into()),
                    timeout: t,
                })
            }
            Err(_) => {}
        },
    }
    Ok(Reply::None)
}

async fn sleep(msg: &Msg) -> Result<Reply, PlanError> {
    let secs = msg
        .args
        .first()
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            ill_formed(
                msg,
                "it needs a non-negative number of seconds as its argument",
            )
        })?;
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    Ok(Reply::None)
}

fn checkpoint(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    let mut st = core.st.borrow_mut();
    if st.runs.iter().any(|r| r.is_bundling()) {
        return Err(illegal(
            msg,
            "not allowed in the middle of an event bundle (between 'create' and 'save')",
        ));
    }
    st.msg_cache = Some(Vec::new());
    st.touched.clear();
    for run in st.runs.iter_mut() {
        run.checkpoint();
    }
    Ok(Reply::None)
}

fn clear_checkpoint(core: &Core) -> Result<Reply, PlanError> {
    core.st.borrow_mut().msg_cache = None;
    Ok(Reply::None)
}

fn pause(core: &Core, msg: &Msg) -> Result<Reply, PlanError> {
    let defer = msg.kw("defer").and_then(Value::as_bool).unwrap_or(false);
    if defer {
        core.control
            .request_pause(core.state.get(), true)
            .map_err(|e| illegal(msg, e.to_string()))?;
    }
    Ok(Reply::None)
}

async fn stage(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    // Devices that have nothing to stage are skipped, as ophyd devices without stage() are.
    if !dev.capabilities().stageable || core.st.borrow().staged.contains(dev) {
        return Ok(Reply::None);
    }
    request(core, msg, dev, DeviceOp::Stage, cx).await?;
    core.st.borrow_mut().staged.insert(dev.clone());
    Ok(Reply::None)
}

async fn unstage(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    if !dev.capabilities().stageable {
        return Ok(Reply::None);
    }
    request(core, msg, dev, DeviceOp::Unstage, cx).await?;
    core.st.borrow_mut().staged.shift_remove(dev);
    Ok(Reply::None)
}

async fn collect(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    run_of(core, msg)?;
    let DeviceReply::CollectKeys(keys) =
        request(core, msg, dev, DeviceOp::DescribeCollect, cx).await?
    else {
        return Err(illegal(
            msg,
            format!(
                "{} answered describe_collect with something else",
                dev.name()
            ),
        ));
    };
    let DeviceReply::Collected(events) = request(core, msg, dev, DeviceOp::Collect, cx).await?
    else {
        return Err(illegal(
            msg,
            format!("{} answered collect with something else", dev.name()),
        ));
    };
    let n = events.len();
    let docs = with_run(core, msg, |run| run.collected(dev.name(), keys, events))?;
    docs.into_iter().for_each(|d| core.emit(d));
    Ok(Reply::Collected(n))
}

async fn configure(core: &Core, msg: &Msg, cx: &Scope<'_>) -> Result<Reply, PlanError> {
    let dev = obj(msg)?;
    let DeviceReply::Configured { old, new } =
        request(core, msg, dev, DeviceOp::Configure(msg.kwargs.clone()), cx).await?
    else {
        return Err(illegal(
            msg,
            format!("{} answered configure with something else", dev.name()),
        ));
    };
    for run in core.st.borrow_mut().runs.iter_mut() {
        run.invalidate(dev.name());
    }
    Ok(Reply::Configured { old, new })
}
