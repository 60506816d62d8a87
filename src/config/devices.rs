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
//! acceleration = 50.0       # units/s²: trapezoid moves (default: top speed at once)
//! latency.set = 0.01        # and faults: see "Modelling a real beamline" below
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
//! readout_time = 0.0        # s of readout after the exposure (default 0)
//! dead_time = 0.0           # s after an acquisition before the next starts (default 0)
//! timeout = 5.0             # s; a longer trigger fails (default: none)
//!
//! [[signal]]                # a SynSignal
//! name = "temperature"
//! value = 21.5              # number, string or boolean (default 0)
//! units = "degC"
//! timeout = 1.0             # s; a longer set or trigger fails (default: none)
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
//! Suspenders: `[[suspender]]` tables suspend a plan while a device of the
//! file is out of bounds (Bluesky's `bluesky.suspenders`; see
//! [`super::suspenders`]); `skyrun run` installs them before the plan.
//!
//! Real hardware: `[[epics_motor]]`, `[[epics_signal]]` and their families
//! declare EPICS devices (see [`epics`]), which the `skyrun` binary
//! connects when a run starts.
//!
//! Names must be unique across all kinds and made of letters, digits, `_`
//! and `-`. A device file holds at most [`MAX_DEVICES`] devices.
//!
//! # Modelling a real beamline: timing and faults
//!
//! A simulated device is ideal unless told otherwise. Motors, detectors and
//! signals (single or families, where every member gets the same model)
//! take a `latency` table, giving how long each `read`, `trigger`, `set` and
//! `stage` (also `unstage`) takes, and a `faults` table, giving how often
//! something goes wrong. Every random draw comes from the file's `seed`
//! (each device has its own stream, seeded from the seed and its name), so
//! a run replays exactly: the same latencies, the same faults at the same
//! requests, the same detector noise. Without `seed`, draws differ from run
//! to run.
//!
//! ```toml
//! seed = 42                     # top level: the seed of every draw
//!
//! [[motor]]
//! name = "th"
//! velocity = 2.0                # top speed, units/s
//! acceleration = 8.0            # units/s²: a trapezoid move (ramp up, cruise, ramp down)
//! timeout = 10.0                # a status timeout, needed by never_completes
//! latency.set = { dist = "lognormal", mu = -4.6, sigma = 0.5 }  # before the move starts
//! latency.read = { dist = "uniform", low = 0.001, high = 0.003 } # before the reply
//! latency.stage = 0.2           # a number: fixed seconds
//! faults.set_fails = 0.01       # a set's status fails (per set)
//! faults.never_completes = 0.001  # a set's status never completes: the timeout fires
//!
//! [[detector]]
//! name = "det"
//! motor = "th"
//! exposure_time = 0.1           # s per trigger
//! readout_time = 0.02           # s after the exposure before the status completes
//! dead_time = 0.05              # s after an acquisition before the next can start
//! latency.trigger = { dist = "normal", mean = 0.005, std = 0.001 }  # on top of exposure + readout
//! faults.trigger_fails = 0.02   # a trigger's status fails
//! faults.stops_answering = 0.0001 # per read/trigger/set/stage: the device hangs for good
//! ```
//!
//! | distribution | parameters | draws |
//! |---|---|---|
//! | `fixed` (or a plain number) | `value` | always `value` s |
//! | `uniform` | `low`, `high` | uniform in [low, high] s |
//! | `normal` | `mean`, `std` | normal, negative draws count as 0 |
//! | `lognormal` | `mu`, `sigma` | `exp(N(mu, sigma))` s: median `exp(mu)`, a long tail |
//!
//! | fault | rate per | what happens |
//! |---|---|---|
//! | `set_fails` | set | the status fails after the set latency (`th: the move to 1 failed (simulated fault)`); the motor does not move |
//! | `trigger_fails` | trigger | the status fails (`det: trigger failed (simulated fault)`) |
//! | `never_completes` | set or trigger (a motor's: set only) | the status never completes; its `timeout` fails it (`status timed out after T s`), so a `timeout` is required |
//! | `stops_answering` | read, trigger, set or stage | no reply to this request or any later one; the engine's request timeout (`EngineOptions::request_timeout`, 30 s) fails the message (`device 'det' did not answer read within 30 s`) |
//!
//! ```
//! use skyrun::config::{DeviceSet, DeviceConfig};
//! use skyrun_actors::sim::{Latency, TimedOp};
//! let set = DeviceSet::parse(r#"
//! seed = 42
//! [[motor]]
//! name = "th"
//! velocity = 2.0
//! acceleration = 8.0
//! timeout = 10.0
//! latency.set = { dist = "lognormal", mu = -4.6, sigma = 0.5 }
//! latency.read = { dist = "uniform", low = 0.001, high = 0.003 }
//! latency.stage = 0.2
//! faults = { set_fails = 0.01, never_completes = 0.001 }
//! [[detector]]
//! name = "det"
//! motor = "th"
//! readout_time = 0.02
//! dead_time = 0.05
//! latency.trigger = { dist = "normal", mean = 0.005, std = 0.001 }
//! faults.trigger_fails = 0.02
//! "#, "realistic.toml").unwrap();
//! assert_eq!(set.seed(), Some(42));
//! let DeviceConfig::Motor(th) = &set.get("th").unwrap().config else { panic!() };
//! assert_eq!(th.acceleration, Some(8.0));
//! assert_eq!(th.model.latency, [
//!     (TimedOp::Read, Latency::uniform(0.001, 0.003).unwrap()),
//!     (TimedOp::Set, Latency::lognormal(-4.6, 0.5).unwrap()),
//!     (TimedOp::Stage, Latency::fixed(0.2).unwrap()),
//! ]);
//!
//! // Mistakes name the key and what is wrong.
//! let err = |t: &str| DeviceSet::parse(t, "d.toml").unwrap_err().to_string();
//! assert_eq!(err("[[motor]]\nname = 'm'\nlatency.set = { dist = 'gauss', mean = 1 }\n"),
//!     "d.toml:3:15: latency 'set' of [[motor]]: unknown distribution 'gauss' (known: fixed, uniform, normal, lognormal)");
//! assert_eq!(err("[[motor]]\nname = 'm'\nfaults.never_completes = 0.1\n"),
//!     "d.toml:3:26: 'never_completes' needs a 'timeout' in [[motor]]: without one a status that never completes hangs the plan");
//! assert_eq!(err("[[signal]]\nname = 's'\nfaults.set_fails = 2.0\n"),
//!     "d.toml:3:20: [[signal]] faults: the rate of 'set_fails' must be a probability in [0, 1], got 2");
//! ```

pub mod epics;
mod model;
mod parse;
mod raw;

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;
use skyrun_actors::sim::{
    Faults, Latency, Noise, PositionProbe, SynAxis, SynFlyer, SynGauss, SynSignal, TimedOp, Timing,
};
use skyrun_actors::{DeviceHandle, SpanTracer};

use super::error::{known_list, ConfigError};
use super::read_file;
pub use epics::{EpicsConfig, EpicsDevice, PvTemplate};

/// The most devices a device file may declare (families included).
pub const MAX_DEVICES: u64 = 1_000_000;

/// What kind of simulated device a name declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A `SynAxis`: readable, movable and triggerable (a finished status, as ophyd's).
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
        self != DeviceKind::Flyer
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
    /// Units/s²: trapezoid moves; `None`: top speed at once.
    pub acceleration: Option<f64>,
    /// Latencies and faults.
    pub model: ModelConfig,
}

/// The timing model of a device: latencies per operation and fault rates
/// (the `latency` and `faults` tables; see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelConfig {
    /// Latency per operation, in the order read, trigger, set, stage.
    pub latency: Vec<(TimedOp, Latency)>,
    /// Fault rates.
    pub faults: Faults,
}

impl ModelConfig {
    /// Whether the device is ideal (no latency, no fault).
    pub fn is_ideal(&self) -> bool {
        self.latency.is_empty() && self.faults.is_none()
    }

    /// The device's [`Timing`], drawing from `seed` (`None`: not replayable).
    pub fn timing(&self, seed: Option<u64>) -> Timing {
        let t = seed.map_or_else(Timing::unseeded, Timing::seeded);
        self.latency
            .iter()
            .fold(t, |t, (op, l)| t.with_latency(*op, *l))
            .with_faults(self.faults)
    }
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
    /// Seconds of readout after each exposure.
    pub readout_time: f64,
    /// Seconds after an acquisition before the next can start.
    pub dead_time: f64,
    /// A trigger's status fails after this many seconds.
    pub timeout: Option<f64>,
    /// Latencies and faults.
    pub model: ModelConfig,
}

/// A signal's settings (see [`SynSignal`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    /// Initial value.
    pub value: Value,
    /// Engineering units.
    pub units: Option<String>,
    /// A set's or trigger's status fails after this many seconds.
    pub timeout: Option<f64>,
    /// Latencies and faults.
    pub model: ModelConfig,
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
    /// A device of a device server (added after discovery, see [`super::remote`]).
    Remote(super::remote::RemoteConfig),
    /// An EPICS motor or signal (see [`epics`]).
    Epics(EpicsConfig),
}

impl DeviceConfig {
    /// Its kind.
    pub fn kind(&self) -> DeviceKind {
        match self {
            DeviceConfig::Motor(_) => DeviceKind::Motor,
            DeviceConfig::Detector(_) => DeviceKind::Detector,
            DeviceConfig::Signal(_) => DeviceKind::Signal,
            DeviceConfig::Flyer(_) => DeviceKind::Flyer,
            DeviceConfig::Remote(r) => r.kind,
            DeviceConfig::Epics(e) => e.kind(),
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
    pub(super) file: String,
    pub(super) devices: IndexMap<String, DeviceSpec>,
    pub(super) remotes: Vec<super::remote::RemoteSpec>,
    suspenders: Vec<super::suspenders::SuspenderSpec>,
    seed: Option<u64>,
}

impl DeviceSet {
    /// Reads and parses the device file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (file, text) = read_file(path)?;
        Self::parse(&text, &file)
    }

    /// Parses the text of a device file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let (devices, seed) = parse::parse(text, file)?;
        let mut set = DeviceSet {
            file: file.to_owned(),
            devices,
            remotes: super::remote::parse(text, file)?,
            suspenders: Vec::new(),
            seed,
        };
        set.suspenders = super::suspenders::parse(text, file, |name| match set.kind(name) {
            Some(kind) => Ok(kind.readable()),
            None => Err(set.known_names(name)),
        })?;
        Ok(set)
    }

    /// The file's `[[suspender]]` tables (see [`super::suspenders`]).
    pub fn suspenders(&self) -> &[super::suspenders::SuspenderSpec] {
        &self.suspenders
    }

    /// The file's `seed`, if it gives one.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Replaces the seed (`None`: draws differ from run to run).
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
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

    /// The EPICS device called `name`.
    pub fn epics(&self, name: &str) -> Option<&EpicsConfig> {
        match &self.get(name)?.config {
            DeviceConfig::Epics(e) => Some(e),
            _ => None,
        }
    }

    /// The EPICS devices, in declaration order: what a run must connect.
    pub fn epics_devices(&self) -> impl Iterator<Item = (&str, &EpicsConfig)> {
        self.iter().filter_map(|d| match &d.config {
            DeviceConfig::Epics(e) => Some((d.name.as_str(), e)),
            _ => None,
        })
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
                let axis = build_axis(&d.name, m, self.seed);
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
                    let mut det = SynGauss::new(d.name.clone(), probe, c.center, c.imax, c.sigma)
                        .with_noise(c.noise)
                        .with_exposure_time(c.exposure_time)
                        .with_readout_time(c.readout_time)
                        .with_dead_time(c.dead_time);
                    if let Some(s) = self.seed {
                        det = det.with_seed(s);
                    }
                    if let Some(to) = c.timeout {
                        det = det.with_timeout(to);
                    }
                    if !c.model.is_ideal() {
                        det = det.with_timing(c.model.timing(self.seed));
                    }
                    DeviceHandle::builder(det).tracer(t).spawn()
                }
                DeviceConfig::Signal(c) => {
                    let mut s = SynSignal::new(d.name.clone(), c.value.clone());
                    if let Some(u) = &c.units {
                        s = s.with_units(u.clone());
                    }
                    if let Some(to) = c.timeout {
                        s = s.with_timeout(to);
                    }
                    if !c.model.is_ideal() {
                        s = s.with_timing(c.model.timing(self.seed));
                    }
                    DeviceHandle::builder(s).tracer(t).spawn()
                }
                DeviceConfig::Flyer(c) => {
                    let f = SynFlyer::new(d.name.clone(), c.num_points)
                        .with_duration(c.duration)
                        .with_range(c.start, c.stop);
                    DeviceHandle::builder(f).tracer(t).spawn()
                }
                // Started by whoever discovered or connected it (see `Devices::insert`).
                DeviceConfig::Remote(_) | DeviceConfig::Epics(_) => continue,
            };
            handles.insert(d.name.clone(), handle);
        }
        Devices { handles }
    }
}

fn build_axis(name: &str, m: &MotorConfig, seed: Option<u64>) -> SynAxis {
    let mut axis = SynAxis::new(name)
        .with_position(m.position)
        .with_settle_time(m.settle_time);
    if let Some(a) = m.acceleration {
        axis = axis.with_acceleration(a);
    }
    if !m.model.is_ideal() {
        axis = axis.with_timing(m.model.timing(seed));
    }
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

    /// Adds a device started elsewhere (a proxy of a remote device),
    /// replacing any of the same name.
    pub fn insert(&mut self, handle: DeviceHandle) {
        self.handles.insert(handle.name().to_owned(), handle);
    }
}
