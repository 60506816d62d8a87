//! Simulated devices with ophyd.sim's behaviour: [`SynAxis`] (a motor),
//! [`SynGauss`] (a detector whose reading peaks at a motor position),
//! [`SynSignal`] (a settable, readable value) and [`SynFlyer`] (a flyer whose
//! kickoff/complete/collect yields a batch of events).

mod axis;
mod flyer;
mod gauss;
mod signal;

pub use axis::{PositionProbe, SynAxis};
pub use flyer::SynFlyer;
pub use gauss::{Noise, SynGauss};
pub use signal::SynSignal;

use crate::error::DeviceError;
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
