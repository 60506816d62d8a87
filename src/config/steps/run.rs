//! Running the steps of a plan file: each step on its running devices, in
//! order, as one plan.

use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

use super::messages::BuiltMessage;
use super::{Step, StepEntry};
use crate::config::devices::Devices;
use crate::config::error::ConfigError;
use crate::plan::Plan;
use crate::plan_stubs as bps;

/// A step on running devices.
enum Built {
    Null,
    Checkpoint,
    Sleep(f64),
    Wait(Option<String>, Option<f64>),
    OpenRun(Map<String, Value>),
    CloseRun(Option<String>, Option<String>),
    Move(Vec<(DeviceHandle, f64)>, bool),
    AbsSet(DeviceHandle, Value, Option<String>, bool),
    Trigger(DeviceHandle, Option<String>, bool),
    TriggerAndRead(Vec<DeviceHandle>, String),
    Kickoff(DeviceHandle, Option<String>, bool),
    Complete(DeviceHandle, Option<String>, bool),
    Collect(DeviceHandle),
    Plan(Plan),
    Message(BuiltMessage),
}

/// The steps as one plan named `name`, on `devices`, with file metadata `md`.
pub(crate) fn build(
    name: &str,
    steps: &[StepEntry],
    devices: &Devices,
    md: &Map<String, Value>,
) -> Result<Plan, ConfigError> {
    let mut built = Vec::with_capacity(steps.len());
    for s in steps {
        built.push(match &s.step {
            Step::Null => Built::Null,
            Step::Checkpoint => Built::Checkpoint,
            Step::Sleep { seconds } => Built::Sleep(*seconds),
            Step::Wait { group, timeout } => Built::Wait(group.clone(), *timeout),
            Step::OpenRun { md: own } => {
                let mut all = md.clone();
                all.extend(own.clone());
                Built::OpenRun(all)
            }
            Step::CloseRun {
                exit_status,
                reason,
            } => Built::CloseRun(exit_status.clone(), reason.clone()),
            Step::Move {
                moves, relative, ..
            } => Built::Move(
                moves
                    .iter()
                    .map(|(d, x)| Ok((d.resolve(devices)?, *x)))
                    .collect::<Result<_, ConfigError>>()?,
                *relative,
            ),
            Step::AbsSet {
                device,
                value,
                group,
                wait,
                ..
            } => Built::AbsSet(
                device.resolve(devices)?,
                value.clone(),
                group.clone(),
                *wait,
            ),
            Step::Trigger {
                device,
                group,
                wait,
            } => Built::Trigger(device.resolve(devices)?, group.clone(), *wait),
            Step::TriggerAndRead { detectors, stream } => Built::TriggerAndRead(
                detectors
                    .iter()
                    .map(|d| d.resolve(devices))
                    .collect::<Result<_, _>>()?,
                stream.clone(),
            ),
            Step::Kickoff { flyer, group, wait } => {
                Built::Kickoff(flyer.resolve(devices)?, group.clone(), *wait)
            }
            Step::Complete { flyer, group, wait } => {
                Built::Complete(flyer.resolve(devices)?, group.clone(), *wait)
            }
            Step::Collect { flyer } => Built::Collect(flyer.resolve(devices)?),
            Step::Plan(p) => Built::Plan(p.build(devices, md)?),
            Step::Message(m) => Built::Message(m.build(devices)?),
        });
    }
    Ok(Plan::new(name, move |ctx| async move {
        for step in built {
            match step {
                Built::Null => bps::null(&ctx).await?,
                Built::Checkpoint => bps::checkpoint(&ctx).await?,
                Built::Sleep(s) => bps::sleep(&ctx, s).await?,
                Built::Wait(g, t) => bps::wait(&ctx, g.as_deref(), t).await?,
                Built::OpenRun(md) => {
                    bps::open_run(&ctx, md).await?;
                }
                Built::CloseRun(e, r) => {
                    bps::close_run(&ctx, e.as_deref(), r.as_deref()).await?;
                }
                Built::Move(moves, relative) => {
                    let moves: Vec<(&DeviceHandle, f64)> =
                        moves.iter().map(|(d, x)| (d, *x)).collect();
                    if relative {
                        bps::mvr(&ctx, &moves).await?
                    } else {
                        bps::mv(&ctx, &moves).await?
                    }
                }
                Built::AbsSet(d, v, g, w) => {
                    bps::abs_set(&ctx, &d, v, g.as_deref(), w).await?;
                }
                Built::Trigger(d, g, w) => {
                    bps::trigger(&ctx, &d, g.as_deref(), w).await?;
                }
                Built::TriggerAndRead(dets, stream) => {
                    bps::trigger_and_read(&ctx, &dets, &stream).await?;
                }
                Built::Kickoff(f, g, w) => {
                    let g = g.or_else(|| w.then(|| bps::new_group("kickoff")));
                    bps::kickoff(&ctx, &f, g.as_deref(), w).await?;
                }
                Built::Complete(f, g, w) => {
                    let g = g.or_else(|| w.then(|| bps::new_group("complete")));
                    bps::complete(&ctx, &f, g.as_deref(), w).await?;
                }
                Built::Collect(f) => {
                    bps::collect(&ctx, &f).await?;
                }
                Built::Plan(p) => p.run(&ctx).await?,
                Built::Message(m) => m.run(&ctx).await?,
            }
        }
        Ok(())
    }))
}
