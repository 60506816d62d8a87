//! The device file: simulated devices declared in TOML, and [`DeviceSet::spawn`]
//! to start them as actors.
//!
//! ```toml
//! [[motor]]                 # a SynAxis
//! name = "motor"
//! position = 0.0            # start position (default 0)
//! velocity = 10.0           # units/s; absent: moves are instantaneous
//! settle_time = 0.01        # s after arriving before the move completes (default 0)
//! timeout = 5.0             # s; a longer move fails (default: none)
//! limits = [-10.0, 10.0]    # soft limits (default: none)
//! units = "mm"              # default "mm"
//!
//! [[detector]]              # a SynGauss: imax * exp(-(x - center)^2 / (2 sigma^2)) of a motor position x
//! name = "det"
//! motor = "motor"           # required: the motor it reads the position of
//! center = 0.0              # default 0
//! imax = 1.0                # default 1
//! sigma = 1.0               # > 0, default 1
//! noise = "poisson"         # "none" (default) | "poisson" | "uniform"
//! noise_multiplier = 0.1    # only with noise = "uniform" (default 1)
//! exposure_time = 0.01      # s per trigger (default 0)
//!
//! [[signal]]                # a SynSignal
//! name = "temperature"
//! value = 21.5              # number, string or boolean (default 0)
//! units = "degC"
//!
//! [[flyer]]                 # a SynFlyer
//! name = "flyer"
//! num_points = 100          # required
//! duration = 0.5            # s (default 0)
//! start = -1.0              # default -1
//! stop = 1.0                # default 1
//!
//! [[motor_family]]          # motors m0 .. m99, each with the keys of [[motor]] but name
//! prefix = "m"
//! count = 100
//! first = 0                 # first index (default 0)
//! velocity = 100.0
//!
//! [[detector_family]]       # detectors d0 .. d99, each with the keys of [[detector]] but name and motor
//! prefix = "d"
//! count = 100
//! motor_family = "m"        # d0 reads m0, d1 reads m1, ... (or: motor = "motor", for all of them)
//! ```
//!
//! Names must be unique across all kinds and made of letters, digits, `_`
//! and `-`. A device file holds at most [`MAX_DEVICES`] devices.

mod parse;
mod raw;

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;
use skyrun_actors::sim::{Noise, PositionProbe, SynAxis, SynFlyer, SynGauss, SynSignal};
use skyrun_actors::{DeviceHandle, SpanTracer};

use super::error::{known_list, ConfigError};
use super::read_file;

/// The most devices a device file may declare (families included).
pub const MAX_DEVICES: u64 = 1_000_000;

/// What kind of simulated device a name declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A `SynAxis`: readable and movable.
    Motor,
    /// A `SynGauss`: readable and triggerable.
    Detector,
    /// A `SynSignal`: readable, movable and triggerable.
    Signal,
    /// A `SynFlyer`: flyable.
    Flyer,
}

impl DeviceKind {
    /// `motor`, `detector`, `signal` or `flyer`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Motor => "motor",
            DeviceKind::Detector => "detector",
            DeviceKind::Signal => "signal",
            DeviceKind::Flyer => "flyer",
        }
    }

    /// Whether it can be read (used as a detector).
    pub fn readable(self) -> bool {
        self != DeviceKind::Flyer
    }

    /// Whether it can be set (used as a motor).
    pub fn movable(self) -> bool {
        matches!(self, DeviceKind::Motor | DeviceKind::Signal)
    }

    /// Whether it can be triggered.
    pub fn triggerable(self) -> bool {
        matches!(self, DeviceKind::Detector | DeviceKind::Signal)
    }
}

/// A motor's settings (see [`SynAxis`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MotorConfig {
    /// Start position.
    pub position: f64,
    /// Units per second; `None`: instantaneous.
    pub velocity: Option<f64>,
    /// Seconds after arriving before a move completes.
    pub settle_time: f64,
    /// A move longer than this many seconds fails.
    pub timeout: Option<f64>,
    /// Soft limits `(low, high)`.
    pub limits: Option<(f64, f64)>,
    /// Engineering units.
    pub units: Option<String>,
}

/// A detector's settings (see [`SynGauss`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// The motor whose position it reads.
    pub motor: String,
    /// Peak position.
    pub center: f64,
    /// Peak height.
    pub imax: f64,
    /// Peak width.
    pub sigma: f64,
    /// Noise on readings.
    pub noise: Noise,
    /// Seconds per trigger.
    pub exposure_time: f64,
}

/// A signal's settings (see [`SynSignal`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    /// Initial value.
    pub value: Value,
    /// Engineering units.
    pub units: Option<String>,
}

/// A flyer's settings (see [`SynFlyer`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FlyerConfig {
    /// Points acquired per flight.
    pub num_points: usize,
    /// Seconds per flight.
    pub duration: f64,
    /// Sweep start.
    pub start: f64,
    /// Sweep end.
    pub stop: f64,
}

/// The settings of one declared device.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceConfig {
    /// A motor.
    Motor(MotorConfig),
    /// A detector.
    Detector(DetectorConfig),
    /// A signal.
    Signal(SignalConfig),
    /// A flyer.
    Flyer(FlyerConfig),
}

impl DeviceConfig {
    /// Its kind.
    pub fn kind(&self) -> DeviceKind {
        match self {
            DeviceConfig::Motor(_) => DeviceKind::Motor,
            DeviceConfig::Detector(_) => DeviceKind::Detector,
            DeviceConfig::Signal(_) => DeviceKind::Signal,
            DeviceConfig::Flyer(_) => DeviceKind::Flyer,
        }
    }
}

/// One declared device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: DeviceConfig,
    /// The line of the table that declares it.
    pub line: usize,
    /// The prefix of the `[[..._family]]` that declares it, if one does.
    pub family: Option<String>,
}

/// The devices a device file declares, in declaration order (motors, then
/// detectors, signals and flyers; families after single devices).
///
/// ```
/// use skyrun::config::{DeviceSet, DeviceKind};
/// let set = DeviceSet::parse(r#"
/// [[motor]]
/// name = "x"
/// [[motor_family]]
/// prefix = "m"
/// count = 3
/// [[detector]]
/// name = "det"
/// motor = "m2"
/// "#, "devices.toml").unwrap();
/// assert_eq!(set.names().collect::<Vec<_>>(), ["x", "m0", "m1", "m2", "det"]);
/// assert_eq!(set.kind("det"), Some(DeviceKind::Detector));
///
/// let err = DeviceSet::parse("[[detector]]\nname = 'd'\nmotor = 'mtr'\n", "devices.toml").unwrap_err();
/// assert_eq!(err.to_string(), "devices.toml:3:9: unknown device 'mtr' (no devices are declared)");
/// ```
#[derive(Debug, Clone)]
pub struct DeviceSet {
    file: String,
    devices: IndexMap<String, DeviceSpec>,
}

impl DeviceSet {
    /// Reads and parses the device file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (file, text) = read_file(path)?;
        Self::parse(&text, &file)
    }

    /// Parses the text of a device file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Ok(DeviceSet {
            file: file.to_owned(),
            devices: parse::parse(text, file)?,
        })
    }

    /// The file the devices were read from, as named.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the file declares no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The device called `name`.
    pub fn get(&self, name: &str) -> Option<&DeviceSpec> {
        self.devices.get(name)
    }

    /// The kind of the device called `name`.
    pub fn kind(&self, name: &str) -> Option<DeviceKind> {
        self.get(name).map(|d| d.config.kind())
    }

    /// All device names, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(String::as_str)
    }

    /// All devices, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &DeviceSpec> {
        self.devices.values()
    }

    /// How many devices of each kind, as `(kind, count)` for the kinds present.
    pub fn counts(&self) -> Vec<(DeviceKind, usize)> {
        let mut out: Vec<(DeviceKind, usize)> = Vec::new();
        for d in self.iter() {
            let k = d.config.kind();
            match out.iter_mut().find(|(kind, _)| *kind == k) {
                Some((_, n)) => *n += 1,
                None => out.push((k, 1)),
            }
        }
        out
    }

    /// "did you mean ...? known: ..." for an unknown `name`.
    pub fn known_names(&self, name: &str) -> String {
        known_list(name, self.names())
    }

    /// Starts every device as an actor recording its spans with `tracer`,
    /// motors first so detectors can be bound to their positions. Must be
    /// called inside a running actix system.
    ///
    /// ```
    /// use skyrun::config::DeviceSet;
    /// use skyrun_actors::SpanTracer;
    /// let set = DeviceSet::parse("[[motor]]\nname = 'x'\n[[detector]]\nname = 'd'\nmotor = 'x'\n", "d.toml").unwrap();
    /// actix::System::new().block_on(async {
    ///     let devices = set.spawn(SpanTracer::disabled());
    ///     assert_eq!(devices.get("d").unwrap().type_name(), "SynGauss");
    /// });
    /// ```
    pub fn spawn(&self, tracer: SpanTracer) -> Devices {
        let mut axes: HashMap<&str, SynAxis> = HashMap::new();
        let mut probes: HashMap<&str, PositionProbe> = HashMap::new();
        for d in self.iter() {
            if let DeviceConfig::Motor(m) = &d.config {
                let axis = build_axis(&d.name, m);
                probes.insert(&d.name, axis.probe());
                axes.insert(&d.name, axis);
            }
        }
        let mut handles = IndexMap::with_capacity(self.len());
        for d in self.iter() {
            let t = tracer.clone();
            let handle = match &d.config {
                DeviceConfig::Motor(_) => match axes.remove(d.name.as_str()) {
                    Some(axis) => DeviceHandle::builder(axis).tracer(t).spawn(),
                    None => continue,
                },
                DeviceConfig::Detector(c) => {
                    // Bindings were checked at parse time; a detector left
                    // unbound reads a motor of its own that never moves.
                    let probe = probes
                        .get(c.motor.as_str())
                        .cloned()
                        .unwrap_or_else(|| SynAxis::new(c.motor.clone()).probe());
                    let det = SynGauss::new(d.name.clone(), probe, c.center, c.imax, c.sigma)
                        .with_noise(c.noise)
                        .with_exposure_time(c.exposure_time);
                    DeviceHandle::builder(det).tracer(t).spawn()
                }
                DeviceConfig::Signal(c) => {
                    let mut s = SynSignal::new(d.name.clone(), c.value.clone());
                    if let Some(u) = &c.units {
                        s = s.with_units(u.clone());
                    }
                    DeviceHandle::builder(s).tracer(t).spawn()
                }
                DeviceConfig::Flyer(c) => {
                    let f = SynFlyer::new(d.name.clone(), c.num_points)
                        .with_duration(c.duration)
                        .with_range(c.start, c.stop);
                    DeviceHandle::builder(f).tracer(t).spawn()
                }
            };
            handles.insert(d.name.clone(), handle);
        }
        Devices { handles }
    }
}

fn build_axis(name: &str, m: &MotorConfig) -> SynAxis {
    let mut axis = SynAxis::new(name)
        .with_position(m.position)
        .with_settle_time(m.settle_time);
    if let Some(v) = m.velocity {
        axis = axis.with_velocity(v);
    }
    if let Some(t) = m.timeout {
        axis = axis.with_timeout(t);
    }
    if let Some((lo, hi)) = m.limits {
        axis = axis.with_limits(lo, hi);
    }
    if let Some(u) = &m.units {
        axis = axis.with_units(u.clone());
    }
    axis
}

/// Running devices, by name (see [`DeviceSet::spawn`]).
#[derive(Debug, Clone, Default)]
pub struct Devices {
    handles: IndexMap<String, DeviceHandle>,
}

impl Devices {
    /// The device called `name`.
    pub fn get(&self, name: &str) -> Option<&DeviceHandle> {
        self.handles.get(name)
    }

    /// The number of devices.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// All devices, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DeviceHandle)> {
        self.handles.iter().map(|(k, v)| (k.as_str(), v))
    }
}
