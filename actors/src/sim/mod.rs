//! Simulated devices with ophyd.sim's behaviour: [`SynAxis`] (a motor),
//! [`SynGauss`] (a detector whose reading peaks at a motor position),
//! [`SynSignal`] (a settable, readable value) and [`SynFlyer`] (a flyer whose
//! kickoff/complete/collect yields a batch of events).
//!
//! Motors, detectors and signals can be given a [`Timing`] model: how long
//! each read, trigger, set and stage takes (a [`Latency`] drawn from a
//! distribution), and [`Faults`] striking at a rate, from a seeded random
//! stream so a run replays exactly (see [`timing`](self::Timing)).

mod axis;
mod flyer;
mod gauss;
mod signal;
mod timing;

pub use axis::{PositionProbe, SynAxis};
pub use flyer::SynFlyer;
pub use gauss::{Noise, SynGauss};
pub use signal::SynSignal;
pub use timing::{
    move_duration, Acquisition, Fault, Faults, Latency, TimedOp, Timing, TimingError,
};

use std::time::Duration;

use crate::context::DeviceContext;
use crate::device::Answer;
use crate::error::{DeviceError, StatusError};
use crate::request::DeviceOp;
use crate::status::Status;
use serde_json::Value;

/// The value of a `set` as a finite number, or an error naming the device.
pub(crate) fn finite_number(device: &str, value: &Value) -> Result<f64, DeviceError> {
    match value.as_f64() {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(DeviceError::InvalidArgument {
            device: device.to_owned(),
            operation: "set",
            reason: format!("expected a finite number, got {value}"),
        }),
    }
}

/// Completes `status` after `secs`, or as `fault` says: failed after
/// `secs`, or never.
pub(crate) fn complete_after(
    ctx: &DeviceContext,
    status: &Status,
    device: &str,
    op: &str,
    secs: f64,
    fault: Option<Fault>,
) {
    let done = status.clone();
    match fault {
        Some(Fault::NeverCompletes) => {}
        Some(Fault::Fails) => {
            let reason = format!("{device}: {op} failed (simulated fault)");
            ctx.after(Duration::from_secs_f64(secs), move || {
                done.set_exception(StatusError::Failed(reason));
            });
        }
        _ => ctx.after(Duration::from_secs_f64(secs), move || {
            done.set_finished();
        }),
    }
}

/// When a device with `timing` answers `op`: reads and stages after their
/// drawn latency, never once the device has stopped answering.
pub(crate) fn answer(timing: Option<&mut Timing>, op: &DeviceOp) -> Answer {
    let Some(t) = timing else {
        return Answer::Now;
    };
    let timed = match op {
        DeviceOp::Read => Some(TimedOp::Read),
        DeviceOp::Trigger => Some(TimedOp::Trigger),
        DeviceOp::Set(_) => Some(TimedOp::Set),
        DeviceOp::Stage | DeviceOp::Unstage => Some(TimedOp::Stage),
        _ => None,
    };
    match timed {
        None if t.is_mute() => Answer::Never,
        None => Answer::Now,
        Some(op) => {
            if !t.answers(op) {
                return Answer::Never;
            }
            match op {
                TimedOp::Read | TimedOp::Stage => match t.delay(op) {
                    d if d.is_zero() => Answer::Now,
                    d => Answer::After(d),
                },
                _ => Answer::Now,
            }
        }
    }
}
