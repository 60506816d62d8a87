//! `monitor` and `unmonitor`: a device's readings as events of their own
//! stream, as they come, while the plan goes on (Bluesky's
//! `RunBundler.monitor`).
//!
//! `monitor` describes the device, emits the stream's descriptor (the
//! stream is `name`, default `<device>_monitor`), subscribes to the device
//! and emits an event for its current reading at once, then one for each
//! new reading, from a task on the engine's thread. `unmonitor`, the run's
//! `close_run`, or the end of the plan ends the subscription. Monitoring
//! outside a run, or a device already monitored in the run, is an illegal
//! message sequence, as in Bluesky. At a pause the monitors stop listening
//! and on resume they subscribe again, emitting the current reading, as
//! Bluesky's `suspend_monitors` / `restore_monitors` do.

use std::rc::{Rc, Weak};

use skyrun_actors::{DeviceError, DeviceHandle, Readings, Subscription};

use super::bundling::describe_all;
use super::{device_error, illegal, run_of, with_run, Core, Done};
use crate::error::PlanError;
use crate::msg::args::monitors::{MonitorArgs, UnmonitorArgs};
use crate::msg::Msg;
use crate::reply::Reply;
use crate::run_engine::bundler::Monitor;
use crate::run_engine::core::EngineCore;
use crate::run_engine::request_context::RequestContext;
use crate::run_engine::EngineState;

pub(crate) async fn monitor(
    core: &Core,
    msg: &Msg,
    a: MonitorArgs<'_>,
    cx: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    let dev = a.obj;
    let i = run_of(core, msg)?;
    if core.st().runs[i].is_monitored(dev.name()) {
        return Err(illegal(
            msg,
            format!("{} is already monitored in this run", dev.name()),
        ));
    }
    if !dev.capabilities().subscribable {
        return Err(illegal(
            msg,
            format!(
                "{} cannot be monitored (it is not Subscribable)",
                dev.name()
            ),
        ));
    }
    let stream = a
        .name
        .map_or_else(|| format!("{}_monitor", dev.name()), str::to_owned);
    let todo = with_run(core, msg, |run| Ok(run.undescribed([dev])))?;
    describe_all(core, msg, todo, cx).await?;
    let sub = subscribe(core, msg, dev).await?;
    let (docs, run_uid) = with_run(core, msg, |run| {
        Ok((
            run.declare_stream(&stream, std::slice::from_ref(dev))?,
            run.uid.clone(),
        ))
    })?;
    docs.into_iter().for_each(|d| core.emit(d));
    let (task, first) = listen(core, run_uid, &stream, sub);
    with_run(core, msg, |run| {
        run.add_monitor(
            dev.name(),
            Monitor {
                device: dev.clone(),
                stream: stream.clone(),
                task,
            },
        );
        // As Bluesky's `_reset_checkpoint_state`.
        run.checkpoint();
        Ok(())
    })?;
    if let Some(first) = first {
        record(core, msg.run.as_deref(), &stream, first);
    }
    Ok(Reply::None.into())
}

/// Starts emitting the events of `sub` in `stream` of the run `run_uid`;
/// the task, and the reading the subscription already holds (the current
/// one, when the device calls back at once as ophyd's `subscribe` does),
/// for the caller to record once the monitor is in place.
fn listen(
    core: &Core,
    run_uid: String,
    stream: &str,
    mut sub: Subscription,
) -> (tokio::task::AbortHandle, Option<Readings>) {
    let first = sub.try_next();
    let task = tokio::task::spawn_local(emit_events(
        Rc::downgrade(core),
        run_uid,
        stream.to_owned(),
        sub,
    ));
    (task.abort_handle(), first)
}

pub(crate) async fn unmonitor(
    core: &Core,
    msg: &Msg,
    a: UnmonitorArgs<'_>,
    _: &RequestContext<'_>,
) -> Result<Done, PlanError> {
    settle(core, msg).await;
    let dev = a.obj;
    with_run(core, msg, |run| {
        if !run.remove_monitor(dev.name()) {
            return Err(illegal(
                msg,
                format!("cannot unmonitor {}: it is not monitored", dev.name()),
            ));
        }
        run.checkpoint();
        Ok(())
    })?;
    Ok(Reply::None.into())
}

/// Lets the monitors of `msg`'s run record the readings already published
/// (Bluesky emits a monitor's event inside the device's callback, so a
/// reading published before `close_run` or `unmonitor` is in the run): the
/// emitting tasks, woken by the publication, run before this one resumes.
pub(crate) async fn settle(core: &Core, msg: &Msg) {
    let monitored = core
        .run_index(msg.run.as_deref())
        .is_some_and(|i| !core.st().runs[i].monitors().is_empty());
    if monitored {
        tokio::task::yield_now().await;
    }
}

async fn subscribe(core: &Core, msg: &Msg, dev: &DeviceHandle) -> Result<Subscription, PlanError> {
    subscribe_within(core, dev)
        .await
        .map_err(|e| device_error(msg, dev, e))
}

async fn subscribe_within(core: &Core, dev: &DeviceHandle) -> Result<Subscription, DeviceError> {
    let sub = dev.subscribe();
    match core.opts().request_timeout {
        None => sub.await,
        Some(limit) => match tokio::time::timeout(limit, sub).await {
            Ok(r) => r,
            Err(_) => Err(DeviceError::NoReply {
                device: dev.name().to_owned(),
                operation: "subscribe",
                after: limit.as_secs_f64(),
            }),
        },
    }
}

/// Bluesky's `suspend_monitors`: at a pause every monitor stops listening
/// (readings meanwhile are not recorded).
pub(crate) fn suspend_monitors(core: &EngineCore) {
    core.st()
        .runs
        .iter_mut()
        .for_each(|run| run.suspend_monitors());
}

/// Bluesky's `restore_monitors`: on resume each monitor subscribes again,
/// and its first reading (ophyd calls back at once with the current value)
/// is an event.
pub(crate) async fn restore_monitors(core: &Core) -> Result<(), PlanError> {
    let monitored: Vec<(String, Option<String>, DeviceHandle, String)> = core
        .st()
        .runs
        .iter()
        .flat_map(|run| {
            run.monitors()
                .into_iter()
                .map(|(d, s)| (run.uid.clone(), run.key.clone(), d, s))
        })
        .collect();
    for (run_uid, key, dev, stream) in monitored {
        let sub = subscribe_within(core, &dev)
            .await
            .map_err(|e| PlanError::Device {
                command: "resume".into(),
                device: dev.name().to_owned(),
                source: e,
            })?;
        let (task, first) = listen(core, run_uid, &stream, sub);
        if let Some(i) = core.run_index(key.as_deref()) {
            core.st().runs[i].restore_monitor(dev.name(), task);
        }
        if let Some(first) = first {
            record(core, key.as_deref(), &stream, first);
        }
    }
    Ok(())
}

/// Emits the event of `readings` in the monitored `stream` of the run with key `run`.
fn record(core: &EngineCore, run: Option<&str>, stream: &str, readings: Readings) {
    let doc = core.run_index(run).and_then(|i| {
        let mut st = core.st();
        st.runs[i].monitor_event(stream, readings)
    });
    if let Some(doc) = doc {
        core.emit(doc);
    }
}

/// Emits an event for each reading of `sub` while the run `run_uid` monitors `stream`.
async fn emit_events(
    core: Weak<EngineCore>,
    run_uid: String,
    stream: String,
    mut sub: Subscription,
) {
    while let Some(readings) = sub.next().await {
        let Some(core) = core.upgrade() else { return };
        if core.engine_state() == EngineState::Paused {
            continue;
        }
        let doc = {
            let mut st = core.st();
            let Some(run) = st.runs.iter_mut().find(|r| r.uid == run_uid) else {
                return;
            };
            run.monitor_event(&stream, readings)
        };
        match doc {
            Some(doc) => core.emit(doc),
            None => return,
        }
    }
}
