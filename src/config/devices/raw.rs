//! The raw TOML shapes of a device file, as serde reads them (every value
//! with its span, for error messages); `parse` validates them.

use serde::Deserialize;
use toml::Spanned;

use crate::config::Table;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) motor: Vec<Spanned<Table<RawMotor>>>,
    #[serde(default)]
    pub(super) motor_family: Vec<Spanned<Table<RawMotor>>>,
    #[serde(default)]
    pub(super) detector: Vec<Spanned<Table<RawDetector>>>,
    #[serde(default)]
    pub(super) detector_family: Vec<Spanned<Table<RawDetector>>>,
    #[serde(default)]
    pub(super) signal: Vec<Spanned<Table<RawSignal>>>,
    #[serde(default)]
    pub(super) flyer: Vec<Spanned<Table<RawFlyer>>>,
    /// EPICS devices (see `epics`).
    #[serde(default)]
    pub(super) epics_motor: Vec<Spanned<Table<super::epics::RawEpicsMotor>>>,
    #[serde(default)]
    pub(super) epics_motor_family: Vec<Spanned<Table<super::epics::RawEpicsMotor>>>,
    #[serde(default)]
    pub(super) epics_signal: Vec<Spanned<Table<super::epics::RawEpicsSignal>>>,
    #[serde(default)]
    pub(super) epics_signal_family: Vec<Spanned<Table<super::epics::RawEpicsSignal>>>,
    /// `[[remote]]` tables: shape checked here, read by `config::remote`.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) remote: Vec<Spanned<Table<crate::config::remote::RawRemote>>>,
    /// `[[suspender]]` tables: shape checked here, read by `config::suspenders`.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) suspender: Vec<Spanned<Table<crate::config::suspenders::RawSuspender>>>,
    /// The seed of every random draw (timing, faults, noise).
    pub(super) seed: Option<Spanned<i64>>,
}

/// Naming keys shared by single devices (`name`) and families (`prefix`, `count`, `first`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMotor {
    pub(super) name: Option<Spanned<String>>,
    pub(super) prefix: Option<Spanned<String>>,
    pub(super) count: Option<Spanned<i64>>,
    pub(super) first: Option<Spanned<i64>>,
    pub(super) position: Option<Spanned<f64>>,
    pub(super) velocity: Option<Spanned<f64>>,
    pub(super) settle_time: Option<Spanned<f64>>,
    pub(super) timeout: Option<Spanned<f64>>,
    pub(super) limits: Option<Spanned<Vec<Spanned<f64>>>>,
    pub(super) units: Option<Spanned<String>>,
    pub(super) acceleration: Option<Spanned<f64>>,
    pub(super) latency: Option<Spanned<Table<RawLatency>>>,
    pub(super) faults: Option<Spanned<Table<RawFaults>>>,
}

/// `latency = { read = ..., set = ... }`: each a number (fixed seconds) or a
/// distribution table, checked in `model`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLatency {
    pub(super) read: Option<Spanned<toml::Value>>,
    pub(super) trigger: Option<Spanned<toml::Value>>,
    pub(super) set: Option<Spanned<toml::Value>>,
    pub(super) stage: Option<Spanned<toml::Value>>,
}

/// `faults = { set_fails = 0.01, ... }`: rates in [0, 1].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFaults {
    pub(super) set_fails: Option<Spanned<f64>>,
    pub(super) trigger_fails: Option<Spanned<f64>>,
    pub(super) never_completes: Option<Spanned<f64>>,
    pub(super) stops_answering: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDetector {
    pub(super) name: Option<Spanned<String>>,
    pub(super) prefix: Option<Spanned<String>>,
    pub(super) count: Option<Spanned<i64>>,
    pub(super) first: Option<Spanned<i64>>,
    pub(super) motor: Option<Spanned<String>>,
    pub(super) motor_family: Option<Spanned<String>>,
    pub(super) center: Option<Spanned<f64>>,
    pub(super) imax: Option<Spanned<f64>>,
    pub(super) sigma: Option<Spanned<f64>>,
    pub(super) noise: Option<Spanned<String>>,
    pub(super) noise_multiplier: Option<Spanned<f64>>,
    pub(super) exposure_time: Option<Spanned<f64>>,
    pub(super) readout_time: Option<Spanned<f64>>,
    pub(super) dead_time: Option<Spanned<f64>>,
    pub(super) timeout: Option<Spanned<f64>>,
    pub(super) latency: Option<Spanned<Table<RawLatency>>>,
    pub(super) faults: Option<Spanned<Table<RawFaults>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignal {
    pub(super) name: Option<Spanned<String>>,
    pub(super) value: Option<Spanned<toml::Value>>,
    pub(super) units: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<f64>>,
    pub(super) latency: Option<Spanned<Table<RawLatency>>>,
    pub(super) faults: Option<Spanned<Table<RawFaults>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlyer {
    pub(super) name: Option<Spanned<String>>,
    pub(super) num_points: Option<Spanned<i64>>,
    pub(super) duration: Option<Spanned<f64>>,
    pub(super) start: Option<Spanned<f64>>,
    pub(super) stop: Option<Spanned<f64>>,
}
