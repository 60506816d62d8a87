//! Plan stubs: the building blocks of plans, after `bluesky.plan_stubs`. Each
//! sends one or a few messages through a [`PlanCtx`] and returns the result.
//!
//! ```
//! use skyrun::{plan_stubs as bps, Plan, RunEngine};
//! use skyrun_actors::{sim::SynAxis, DeviceHandle};
//! actix::System::new().block_on(async {
//!     let re = RunEngine::new();
//!     let motor = DeviceHandle::spawn(SynAxis::new("motor"));
//!     let m = motor.clone();
//!     re.run(Plan::new("move", move |ctx| async move {
//!         bps::mv(&ctx, &[(&m, 2.0)]).await?;
//!         bps::mvr(&ctx, &[(&m, 0.5)]).await?;
//!         let r = bps::read(&ctx, &m).await?;
//!         assert_eq!(r["motor"].value, 2.5);
//!         Ok(())
//!     })).await.unwrap();
//! });
//! ```

use serde_json::{Map, Value};
use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply, Readings, Status};

use crate::error::PlanError;
use crate::msg::Msg;
use crate::plan::PlanCtx;
use crate::run_engine::Reply;

/// A fresh group name with `prefix`, as Bluesky's `set-1a2b3c` (unique in the process).
///
/// ```
/// let (a, b) = (skyrun::plan_stubs::new_group("set"), skyrun::plan_stubs::new_group("set"));
/// assert!(a.starts_with("set-") && a != b);
/// ```
pub fn new_group(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{:06x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn expect_status(reply: Reply) -> Status {
    match reply {
        Reply::Status(s) => s,
        _ => Status::finished(),
    }
}

/// Does nothing (a message round trip).
pub async fn null(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::new("null")).await.map(|_| ())
}

/// Opens a run with metadata `md`; returns its uid.
pub async fn open_run(ctx: &PlanCtx, md: Map<String, Value>) -> Result<String, PlanError> {
    match ctx.send(Msg::new("open_run").kwargs(md)).await? {
        Reply::RunUid(uid) => Ok(uid),
        _ => Ok(String::new()),
    }
}

/// Closes the run with `exit_status` (`success`, `fail`, `abort`) and `reason`.
pub async fn close_run(
    ctx: &PlanCtx,
    exit_status: Option<&str>,
    reason: Option<&str>,
) -> Result<String, PlanError> {
    let mut m = Msg::new("close_run");
    if let Some(e) = exit_status {
        m = m.kwarg("exit_status", e);
    }
    if let Some(r) = reason {
        m = m.kwarg("reason", r);
    }
    match ctx.send(m).await? {
        Reply::RunUid(uid) => Ok(uid),
        _ => Ok(String::new()),
    }
}

/// Starts bundling readings into an event of stream `name`.
pub async fn create(ctx: &PlanCtx, name: &str) -> Result<(), PlanError> {
    ctx.send(Msg::new("create").kwarg("name", name))
        .await
        .map(|_| ())
}

/// Emits the bundled readings as an event.
pub async fn save(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::new("save")).await.map(|_| ())
}

/// Discards the bundled readings.
pub async fn drop(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::new("drop")).await.map(|_| ())
}

/// Emits the descriptor of stream `name` for `devices` before any event.
pub async fn declare_stream(
    ctx: &PlanCtx,
    name: &str,
    devices: &[&DeviceHandle],
) -> Result<(), PlanError> {
    for d in devices {
        ctx.send(Msg::new("declare_stream").obj(d).kwarg("name", name))
            .await?;
    }
    Ok(())
}

/// Reads `device` (into the open bundle, if any).
pub async fn read(ctx: &PlanCtx, device: &DeviceHandle) -> Result<Readings, PlanError> {
    match ctx.send(Msg::new("read").obj(device)).await? {
        Reply::Readings(r) => Ok(r),
        _ => Ok(Readings::new()),
    }
}

/// Sets `device` to `value` in `group`; waits for it when `wait`. Returns the status.
pub async fn abs_set(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    value: impl Into<Value>,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let group = match (group, wait) {
        (Some(g), _) => Some(g.to_owned()),
        (None, true) => Some(new_group("set")),
        (None, false) => None,
    };
    let status = expect_status(
        ctx.send(
            Msg::new("set")
                .obj(device)
                .arg(value)
                .maybe_group(group.clone()),
        )
        .await?,
    );
    if wait {
        wait_group(ctx, group.as_deref()).await?;
    }
    Ok(status)
}

/// The current position of a movable device.
pub async fn position(ctx: &PlanCtx, device: &DeviceHandle) -> Result<f64, PlanError> {
    let err = |reason: String| PlanError::Device {
        command: "rel_set".into(),
        device: device.name().to_owned(),
        source: skyrun_actors::DeviceError::Failed {
            device: device.name().to_owned(),
            operation: "position",
            reason,
        },
    };
    match device.request(DeviceOp::Position, ctx.context()).await {
        Ok(DeviceReply::Position(v)) => v
            .as_f64()
            .ok_or_else(|| err(format!("position {v} is not a number"))),
        Ok(_) => Err(err("no position returned".into())),
        Err(source) => Err(PlanError::Device {
            command: "rel_set".into(),
            device: device.name().to_owned(),
            source,
        }),
    }
}

/// Sets `device` to its current position plus `delta`.
pub async fn rel_set(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    delta: f64,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let here = position(ctx, device).await?;
    abs_set(ctx, device, here + delta, group, wait).await
}

/// Moves each device to its target, all at once, and waits for all.
pub async fn mv(ctx: &PlanCtx, moves: &[(&DeviceHandle, f64)]) -> Result<(), PlanError> {
    let group = new_group("set");
    for (dev, target) in moves {
        ctx.send(Msg::new("set").obj(dev).arg(*target).group(group.clone()))
            .await?;
    }
    wait_group(ctx, Some(&group)).await
}

/// Moves each device by its delta, all at once, and waits for all.
pub async fn mvr(ctx: &PlanCtx, moves: &[(&DeviceHandle, f64)]) -> Result<(), PlanError> {
    let mut abs = Vec::with_capacity(moves.len());
    for (dev, delta) in moves {
        abs.push((*dev, position(ctx, dev).await? + delta));
    }
    mv(ctx, &abs).await
}

/// Triggers `device` in `group`; waits for it when `wait`.
pub async fn trigger(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let group = match (group, wait) {
        (Some(g), _) => Some(g.to_owned()),
        (None, true) => Some(new_group("trigger")),
        (None, false) => None,
    };
    let status = expect_status(
        ctx.send(Msg::new("trigger").obj(device).maybe_group(group.clone()))
            .await?,
    );
    if wait {
        wait_group(ctx, group.as_deref()).await?;
    }
    Ok(status)
}

/// Waits for the statuses of `group` (`None`: the ungrouped ones).
pub async fn wait_group(ctx: &PlanCtx, group: Option<&str>) -> Result<(), PlanError> {
    ctx.send(Msg::new("wait").maybe_group(group.map(str::to_owned)))
        .await
        .map(|_| ())
}

/// Waits for `group` as `bps.wait` does, with a timeout (in seconds) after which the plan fails.
pub async fn wait(
    ctx: &PlanCtx,
    group: Option<&str>,
    timeout: Option<f64>,
) -> Result<(), PlanError> {
    ctx.send(
        Msg::new("wait")
            .maybe_group(group.map(str::to_owned))
            .kwarg("error_on_timeout", true)
            .kwarg("timeout", timeout.map(Value::from).unwrap_or(Value::Null))
            .kwarg("watch", Value::Array(vec![])),
    )
    .await
    .map(|_| ())
}

/// Sleeps for `secs` seconds (interruptible by pause and abort).
pub async fn sleep(ctx: &PlanCtx, secs: f64) -> Result<(), PlanError> {
    ctx.send(Msg::new("sleep").arg(secs)).await.map(|_| ())
}

/// Marks a point the plan can rewind to; a deferred pause happens here.
pub async fn checkpoint(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::new("checkpoint")).await.map(|_| ())
}

/// Marks the plan not rewindable until the next checkpoint.
pub async fn clear_checkpoint(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::new("clear_checkpoint")).await.map(|_| ())
}

/// Pauses the engine from inside the plan (at the next checkpoint when `defer`).
pub async fn pause(ctx: &PlanCtx, defer: bool) -> Result<(), PlanError> {
    ctx.send(Msg::new("pause").kwarg("defer", defer))
        .await
        .map(|_| ())
}

/// Stages `device`.
pub async fn stage(ctx: &PlanCtx, device: &DeviceHandle) -> Result<(), PlanError> {
    ctx.send(Msg::new("stage").obj(device)).await.map(|_| ())
}

/// Unstages `device`.
pub async fn unstage(ctx: &PlanCtx, device: &DeviceHandle) -> Result<(), PlanError> {
    ctx.send(Msg::new("unstage").obj(device)).await.map(|_| ())
}

/// Kicks off a flyer; waits for the kickoff when `wait`.
pub async fn kickoff(
    ctx: &PlanCtx,
    flyer: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    flyer_status(ctx, "kickoff", flyer, group, wait).await
}

/// Asks a flyer to complete; waits for completion when `wait`.
pub async fn complete(
    ctx: &PlanCtx,
    flyer: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    flyer_status(ctx, "complete", flyer, group, wait).await
}

async fn flyer_status(
    ctx: &PlanCtx,
    command: &str,
    flyer: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let msg = Msg::new(command)
        .obj(flyer)
        .maybe_group(group.map(str::to_owned));
    let status = expect_status(ctx.send(msg).await?);
    if wait {
        wait_group(ctx, group).await?;
    }
    Ok(status)
}

/// Collects a flyer's events into the run; returns how many.
pub async fn collect(ctx: &PlanCtx, flyer: &DeviceHandle) -> Result<usize, PlanError> {
    let msg = Msg::new("collect")
        .obj(flyer)
        .kwarg("stream", false)
        .kwarg("return_payload", true)
        .kwarg("name", Value::Null);
    match ctx.send(msg).await? {
        Reply::Collected(n) => Ok(n),
        _ => Ok(0),
    }
}

/// Configures `device`; returns its configuration before and after.
pub async fn configure(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    settings: Map<String, Value>,
) -> Result<(Readings, Readings), PlanError> {
    match ctx
        .send(Msg::new("configure").obj(device).kwargs(settings))
        .await?
    {
        Reply::Configured { old, new } => Ok((old, new)),
        _ => Ok(Default::default()),
    }
}

/// Triggers every triggerable device, waits, and reads them all into one
/// event of stream `name` (Bluesky's `trigger_and_read`). Returns the readings.
pub async fn trigger_and_read(
    ctx: &PlanCtx,
    devices: &[DeviceHandle],
    name: &str,
) -> Result<Readings, PlanError> {
    let group = new_group("trigger");
    let mut any = false;
    for d in devices.iter().filter(|d| d.capabilities().triggerable) {
        ctx.send(Msg::new("trigger").obj(d).group(group.clone()))
            .await?;
        any = true;
    }
    if any {
        wait_group(ctx, Some(&group)).await?;
    }
    create(ctx, name).await?;
    let mut all = Readings::new();
    for d in devices {
        match read(ctx, d).await {
            Ok(r) => all.extend(r),
            Err(e) => {
                let _ = drop(ctx).await;
                return Err(e);
            }
        }
    }
    save(ctx).await?;
    Ok(all)
}

/// One step of an N-dimensional scan: checkpoint, move the motors whose
/// target changed, trigger and read detectors and motors.
pub async fn one_nd_step(
    ctx: &PlanCtx,
    detectors: &[DeviceHandle],
    step: &[(&DeviceHandle, f64)],
    last: &mut Vec<Option<f64>>,
) -> Result<Readings, PlanError> {
    checkpoint(ctx).await?;
    last.resize(step.len(), None);
    let moves: Vec<(&DeviceHandle, f64)> = step
        .iter()
        .zip(last.iter())
        .filter(|((_, to), prev)| **prev != Some(*to))
        .map(|((d, to), _)| (*d, *to))
        .collect();
    if !moves.is_empty() {
        mv(ctx, &moves).await?;
    }
    for (slot, (_, to)) in last.iter_mut().zip(step) {
        *slot = Some(*to);
    }
    let mut devices: Vec<DeviceHandle> = detectors.to_vec();
    for (m, _) in step {
        if !devices.iter().any(|d| d == *m) {
            devices.push((*m).clone());
        }
    }
    trigger_and_read(ctx, &devices, "primary").await
}
