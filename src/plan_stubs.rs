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
use skyrun_actors::{DeviceHandle, Readings, Status};

use crate::error::PlanError;
use crate::msg::{Command, Msg};
use crate::plan::PlanCtx;
use crate::reply::Location;

/// A fresh group name with `prefix`, as Bluesky's `short_uid("set")`:
/// `set-1a2b3c`, six hex digits of a random uuid4, so groups of different
/// processes exporting to one backend do not collide.
///
/// ```
/// let (a, b) = (skyrun::plan_stubs::new_group("set"), skyrun::plan_stubs::new_group("set"));
/// assert!(a.starts_with("set-") && a.len() == 10 && a != b);
/// ```
pub fn new_group(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..6])
}

/// A fresh group name as Bluesky's `mv` and `abs_set(wait=True)` make them: a whole uuid4.
///
/// ```
/// assert_eq!(skyrun::plan_stubs::new_uuid_group().len(), 36);
/// ```
pub fn new_uuid_group() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Does nothing (a message round trip).
pub async fn null(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::null()).await?.none(&Command::Null)
}

/// Opens a run with metadata `md`; returns its uid.
pub async fn open_run(ctx: &PlanCtx, md: Map<String, Value>) -> Result<String, PlanError> {
    ctx.send(Msg::open_run(md))
        .await?
        .run_uid(&Command::OpenRun)
}

/// Closes the run with `exit_status` (`success`, `fail`, `abort`) and `reason`.
pub async fn close_run(
    ctx: &PlanCtx,
    exit_status: Option<&str>,
    reason: Option<&str>,
) -> Result<String, PlanError> {
    ctx.send(Msg::close_run(exit_status, reason))
        .await?
        .run_uid(&Command::CloseRun)
}

/// Starts bundling readings into an event of stream `name`.
pub async fn create(ctx: &PlanCtx, name: &str) -> Result<(), PlanError> {
    ctx.send(Msg::create(name)).await?.none(&Command::Create)
}

/// Emits the bundled readings as an event.
pub async fn save(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::save()).await?.none(&Command::Save)
}

/// Discards the bundled readings.
pub async fn drop(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::drop_bundle()).await?.none(&Command::Drop)
}

/// Emits the descriptor of stream `name` for `devices` before any event.
pub async fn declare_stream<D: AsRef<DeviceHandle>>(
    ctx: &PlanCtx,
    name: &str,
    devices: &[D],
) -> Result<(), PlanError> {
    ctx.send(Msg::declare_stream(devices, name))
        .await?
        .none(&Command::DeclareStream)
}

/// Reads `device` (into the open bundle, if any).
pub async fn read(ctx: &PlanCtx, device: &DeviceHandle) -> Result<Readings, PlanError> {
    ctx.send(Msg::read(device)).await?.readings(&Command::Read)
}

/// Where `device` is (Bluesky's `locate`): its setpoint and readback.
pub async fn locate(ctx: &PlanCtx, device: &DeviceHandle) -> Result<Location, PlanError> {
    let mut all = ctx
        .send(Msg::locate(device))
        .await?
        .locations(&Command::Locate)?;
    all.pop().ok_or_else(|| PlanError::WrongReply {
        command: "locate".into(),
        expected: "one location",
        got: "none",
    })
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
        (None, true) => Some(new_uuid_group()),
        (None, false) => None,
    };
    let status = ctx
        .send(Msg::set(device, value, group.clone()))
        .await?
        .status(&Command::Set)?;
    if wait {
        wait_group(ctx, group.as_deref()).await?;
    }
    Ok(status)
}

/// The current position of a movable device (its readback, through `locate`).
pub async fn position(ctx: &PlanCtx, device: &DeviceHandle) -> Result<f64, PlanError> {
    let at = locate(ctx, device).await?;
    at.readback.as_f64().ok_or_else(|| PlanError::Illegal {
        command: "locate".into(),
        reason: format!(
            "{} is at {}, which is not a number",
            device.name(),
            at.readback
        ),
    })
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
pub async fn mv<D: AsRef<DeviceHandle>>(
    ctx: &PlanCtx,
    moves: &[(D, f64)],
) -> Result<(), PlanError> {
    let group = new_uuid_group();
    for (dev, target) in moves {
        ctx.send(Msg::set(dev.as_ref(), *target, Some(group.clone())))
            .await?
            .status(&Command::Set)?;
    }
    // Bluesky's mv waits with `timeout=None` spelled out.
    ctx.send(Msg::wait(Some(&group), None).kwarg("timeout", Value::Null))
        .await?
        .done(&Command::Wait)
        .map(|_| ())
}

/// Moves each device by its delta, all at once, and waits for all.
pub async fn mvr<D: AsRef<DeviceHandle>>(
    ctx: &PlanCtx,
    moves: &[(D, f64)],
) -> Result<(), PlanError> {
    let mut abs = Vec::with_capacity(moves.len());
    for (dev, delta) in moves {
        abs.push((dev.as_ref(), position(ctx, dev.as_ref()).await? + delta));
    }
    mv(ctx, &abs).await
}

/// Triggers `device` in `group`; waits for that group when `wait` (as
/// Bluesky, the ungrouped statuses when no group is given).
pub async fn trigger(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let status = ctx
        .send(Msg::trigger(device, group.map(str::to_owned)))
        .await?
        .status(&Command::Trigger)?;
    if wait {
        wait_group(ctx, group).await?;
    }
    Ok(status)
}

/// Waits for the statuses of `group` (`None`: the ungrouped ones), as the
/// `Msg("wait", None, group=group)` of Bluesky's `abs_set` and `trigger`.
pub async fn wait_group(ctx: &PlanCtx, group: Option<&str>) -> Result<(), PlanError> {
    ctx.send(Msg::wait(group, None))
        .await?
        .done(&Command::Wait)
        .map(|_| ())
}

/// Waits for `group` as `bps.wait` does, with a timeout (in seconds) after which the plan fails.
pub async fn wait(
    ctx: &PlanCtx,
    group: Option<&str>,
    timeout: Option<f64>,
) -> Result<(), PlanError> {
    ctx.send(
        Msg::wait(group, None)
            .kwarg("error_on_timeout", true)
            .kwarg("timeout", timeout.map(Value::from).unwrap_or(Value::Null))
            .kwarg("watch", Value::Array(vec![])),
    )
    .await?
    .done(&Command::Wait)
    .map(|_| ())
}

/// Waits up to `timeout` seconds for `group`, failing early if a status of
/// a `watch`ed group fails, as `bps.wait(group, timeout,
/// error_on_timeout=False, watch)`: whether the group is done. Statuses
/// not done by then stay in the group, for the next wait.
///
/// ```
/// use skyrun::{plan_stubs as bps, Plan, RunEngine};
/// use skyrun_actors::{sim::SynAxis, DeviceHandle};
/// actix::System::new().block_on(async {
///     let m = DeviceHandle::spawn(SynAxis::new("m").with_velocity(10.0));
///     let plan = Plan::new("poll", move |ctx| async move {
///         bps::abs_set(&ctx, &m, 1.0, Some("move"), false).await?;
///         // A 0.1 s move, polled 0.02 s at a time.
///         while !bps::wait_done(&ctx, Some("move"), 0.02, &[]).await? {}
///         Ok(())
///     });
///     RunEngine::new().run(plan).await.unwrap();
/// });
/// ```
pub async fn wait_done(
    ctx: &PlanCtx,
    group: Option<&str>,
    timeout: f64,
    watch: &[&str],
) -> Result<bool, PlanError> {
    ctx.send(
        Msg::wait(group, None)
            .kwarg("error_on_timeout", false)
            .kwarg("timeout", timeout)
            .kwarg("watch", watch.to_vec()),
    )
    .await?
    .done(&Command::Wait)
}

/// Sleeps for `secs` seconds (interruptible by pause and abort).
pub async fn sleep(ctx: &PlanCtx, secs: f64) -> Result<(), PlanError> {
    ctx.send(Msg::sleep(secs)).await?.none(&Command::Sleep)
}

/// Marks a point the plan can rewind to; a deferred pause happens here.
pub async fn checkpoint(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::checkpoint())
        .await?
        .none(&Command::Checkpoint)
}

/// Marks the plan not rewindable until the next checkpoint.
pub async fn clear_checkpoint(ctx: &PlanCtx) -> Result<(), PlanError> {
    ctx.send(Msg::clear_checkpoint())
        .await?
        .none(&Command::ClearCheckpoint)
}

/// Monitors `device` (Bluesky's `bps.monitor`): an event in the stream
/// `name` (default `<device>_monitor`) for its current reading and each new
/// one, until [`unmonitor`] or the end of the run.
///
/// ```
/// use skyrun::{plan_stubs as bps, Plan, RunEngine};
/// use skyrun_actors::{sim::SynSignal, DeviceHandle};
/// use std::sync::{Arc, Mutex};
/// actix::System::new().block_on(async {
///     let re = RunEngine::new();
///     let sig = DeviceHandle::spawn(SynSignal::new("current", 400.0));
///     let names = Arc::new(Mutex::new(Vec::new()));
///     let n = names.clone();
///     re.subscribe(move |name, _| n.lock().unwrap().push(name.to_owned()));
///     re.run(Plan::new("watch", move |ctx| async move {
///         bps::open_run(&ctx, Default::default()).await?;
///         bps::monitor(&ctx, &sig, None).await?;
///         bps::mv(&ctx, &[(&sig, 390.0)]).await?;
///         bps::sleep(&ctx, 0.01).await?; // the monitor records it meanwhile
///         bps::unmonitor(&ctx, &sig).await?;
///         bps::close_run(&ctx, None, None).await.map(|_| ())
///     })).await.unwrap();
///     // The descriptor, the current reading, the new one.
///     assert_eq!(*names.lock().unwrap(), ["start", "descriptor", "event", "event", "stop"]);
/// });
/// ```
pub async fn monitor(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    name: Option<&str>,
) -> Result<(), PlanError> {
    ctx.send(Msg::monitor(device, name))
        .await?
        .none(&Command::Monitor)
}

/// Stops monitoring `device` (Bluesky's `bps.unmonitor`).
pub async fn unmonitor(ctx: &PlanCtx, device: &DeviceHandle) -> Result<(), PlanError> {
    ctx.send(Msg::unmonitor(device))
        .await?
        .none(&Command::Unmonitor)
}

/// Pauses the engine from inside the plan (at the next checkpoint when `defer`).
pub async fn pause(ctx: &PlanCtx, defer: bool) -> Result<(), PlanError> {
    ctx.send(Msg::pause(defer)).await?.none(&Command::Pause)
}

/// Sets whether a rewind may replay the messages that follow (`None`
/// only asks), as `Msg('rewindable', None, flag)`; the setting in force.
pub async fn rewindable(ctx: &PlanCtx, flag: Option<bool>) -> Result<bool, PlanError> {
    let v = ctx
        .send(Msg::rewindable(flag))
        .await?
        .value(&Command::Rewindable)?;
    v.as_bool().ok_or_else(|| PlanError::WrongReply {
        command: "rewindable".into(),
        expected: "true or false",
        got: "another value",
    })
}

/// Stages `device`.
pub async fn stage(ctx: &PlanCtx, device: &DeviceHandle) -> Result<(), PlanError> {
    ctx.send(Msg::stage(device)).await?.none(&Command::Stage)
}

/// Unstages `device`.
pub async fn unstage(ctx: &PlanCtx, device: &DeviceHandle) -> Result<(), PlanError> {
    ctx.send(Msg::unstage(device))
        .await?
        .none(&Command::Unstage)
}

/// Stops a device, as `bps.stop`: a move in progress ends where it is and
/// its status fails (ophyd's `stop(success=False)`); a device that cannot
/// be stopped fails the plan.
///
/// ```
/// use skyrun::{plan_stubs as bps, Plan, RunEngine};
/// use skyrun_actors::{sim::SynAxis, DeviceHandle};
/// actix::System::new().block_on(async {
///     let m = DeviceHandle::spawn(SynAxis::new("m"));
///     let plan = Plan::new("stop", move |ctx| async move { bps::stop(&ctx, &m).await });
///     RunEngine::new().run(plan).await.unwrap();
/// });
/// ```
pub async fn stop(ctx: &PlanCtx, device: &DeviceHandle) -> Result<(), PlanError> {
    ctx.send(Msg::stop(device)).await?.none(&Command::Stop)
}

/// Kicks off a flyer; when `wait`, waits for `group` as `bps.wait` does
/// (Bluesky's `kickoff(wait=True)`, on `group=None` when none is given).
pub async fn kickoff(
    ctx: &PlanCtx,
    flyer: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let msg = Msg::kickoff(flyer, group.map(str::to_owned));
    let status = ctx.send(msg).await?.status(&Command::Kickoff)?;
    if wait {
        self::wait(ctx, group, None).await?;
    }
    Ok(status)
}

/// Asks a flyer to complete; when `wait`, waits for `group` as `bps.wait` does.
pub async fn complete(
    ctx: &PlanCtx,
    flyer: &DeviceHandle,
    group: Option<&str>,
    wait: bool,
) -> Result<Status, PlanError> {
    let msg = Msg::complete(flyer, group.map(str::to_owned));
    let status = ctx.send(msg).await?.status(&Command::Complete)?;
    if wait {
        self::wait(ctx, group, None).await?;
    }
    Ok(status)
}

/// Collects a flyer's events into the run; returns how many.
pub async fn collect(ctx: &PlanCtx, flyer: &DeviceHandle) -> Result<usize, PlanError> {
    ctx.send(Msg::collect(flyer))
        .await?
        .collected(&Command::Collect)
}

/// Configures `device`; returns its configuration before and after.
pub async fn configure(
    ctx: &PlanCtx,
    device: &DeviceHandle,
    settings: Map<String, Value>,
) -> Result<(Readings, Readings), PlanError> {
    ctx.send(Msg::configure(device, settings))
        .await?
        .configured(&Command::Configure)
}

/// Triggers every triggerable device, waits, and reads them all into one
/// event of stream `name` (Bluesky's `trigger_and_read`). Returns the readings.
pub async fn trigger_and_read<D: AsRef<DeviceHandle>>(
    ctx: &PlanCtx,
    devices: &[D],
    name: &str,
) -> Result<Readings, PlanError> {
    let group = new_group("trigger");
    let mut any = false;
    for d in devices
        .iter()
        .map(AsRef::as_ref)
        .filter(|d| d.capabilities().triggerable)
    {
        ctx.send(Msg::trigger(d, Some(group.clone())))
            .await?
            .status(&Command::Trigger)?;
        any = true;
    }
    if any {
        wait(ctx, Some(&group), None).await?;
    }
    create(ctx, name).await?;
    let mut all = Readings::new();
    for d in devices {
        match read(ctx, d.as_ref()).await {
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
    // Bluesky's move_per_step: one short-uid "set" group, and its wait even
    // when no motor moves.
    let group = new_group("set");
    for (dev, to) in &moves {
        ctx.send(Msg::set(dev, *to, Some(group.clone())))
            .await?
            .status(&Command::Set)?;
    }
    wait_group(ctx, Some(&group)).await?;
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
