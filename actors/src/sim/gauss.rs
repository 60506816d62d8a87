//! `SynGauss`: a simulated detector whose reading is a Gaussian of a motor's position.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{Map, Value};

use super::axis::PositionProbe;
use super::timing::{device_rng, Acquisition, Faults, Latency, TimedOp, Timing};
use crate::context::DeviceContext;
use crate::device::{Answer, Configurable, Device, Readable, Stageable, Stoppable, Triggerable};
use crate::error::DeviceError;
use crate::hints::Hints;
use crate::reading::{now, DataKey, DataKeys, Reading, Readings};
use crate::request::DeviceOp;
use crate::status::Status;
use crate::subscription::{Subscribable, Subscribers, Subscription};

/// Noise added to a [`SynGauss`] reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// No noise: readings are exact.
    None,
    /// Poisson noise around the value (ophyd.sim's `noise="poisson"`).
    Poisson,
    /// Uniform noise in `[-m, m]` (ophyd.sim's `noise="uniform"`, `noise_multiplier=m`).
    Uniform(f64),
}

impl Noise {
    /// `none`, `poisson` or `uniform` (ophyd.sim's `noise` configuration value).
    pub fn name(self) -> &'static str {
        match self {
            Noise::None => "none",
            Noise::Poisson => "poisson",
            Noise::Uniform(_) => "uniform",
        }
    }
}

/// A detector reading `Imax * exp(-(x - center)^2 / (2 sigma^2))` of a motor
/// position `x`, updated on `trigger`.
///
/// A trigger's status completes after the exposure, the readout and the
/// drawn trigger latency; a trigger within the dead time after the last
/// acquisition waits for it to pass first. Noise (and the [`Timing`] draws)
/// come from a stream seeded with [`with_seed`](Self::with_seed), so a run
/// replays exactly.
///
/// Configurable as ophyd.sim's `SynGauss`: `Imax`, `center`, `sigma`,
/// `noise` (`"none"`, `"poisson"`, `"uniform"`) and `noise_multiplier`, read
/// back as `NAME_Imax`, ... by `read_configuration`.
///
/// ```
/// use skyrun_actors::sim::{SynAxis, SynGauss, Noise};
/// use skyrun_actors::{Configurable, Readable};
/// let motor = SynAxis::new("motor");
/// let mut det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0).with_noise(Noise::None);
/// assert_eq!(det.compute(), 1.0);
/// assert!(det.describe().contains_key("det"));
/// let settings = serde_json::json!({"Imax": 5.0}).as_object().unwrap().clone();
/// let (old, new) = det.configure(&settings).unwrap();
/// assert_eq!((old["det_Imax"].value.clone(), new["det_Imax"].value.clone()), (1.0.into(), 5.0.into()));
/// assert_eq!(det.compute(), 5.0);
/// ```
#[derive(Debug)]
pub struct SynGauss {
    name: String,
    motor: PositionProbe,
    center: f64,
    imax: f64,
    sigma: f64,
    noise: Noise,
    /// ophyd.sim's `noise_multiplier`: kept when noise is not uniform.
    noise_multiplier: f64,
    acquisition: Acquisition,
    timeout: Option<f64>,
    value: f64,
    timestamp: f64,
    staged: bool,
    /// When the dead time after the last acquisition ends.
    ready_at: Option<Instant>,
    rng: StdRng,
    timing: Option<Box<Timing>>,
    subs: Subscribers,
}

impl SynGauss {
    /// A noiseless detector on `motor`, peaking at `center` with height `imax` and width `sigma`.
    pub fn new(
        name: impl Into<String>,
        motor: PositionProbe,
        center: f64,
        imax: f64,
        sigma: f64,
    ) -> Self {
        SynGauss {
            name: name.into(),
            motor,
            center,
            imax,
            sigma: if sigma == 0.0 { 1.0 } else { sigma },
            noise: Noise::None,
            noise_multiplier: 1.0,
            acquisition: Acquisition::default(),
            timeout: None,
            value: 0.0,
            timestamp: now(),
            staged: false,
            ready_at: None,
            rng: device_rng(None, "", 1),
            timing: None,
            subs: Subscribers::new(),
        }
    }

    /// Seconds to read the data out after each exposure.
    pub fn with_readout_time(mut self, secs: f64) -> Self {
        self.acquisition.readout = non_negative(secs);
        self
    }

    /// Seconds after an acquisition before the next can start.
    pub fn with_dead_time(mut self, secs: f64) -> Self {
        self.acquisition.dead_time = non_negative(secs);
        self
    }

    /// Fails a trigger's status if it has not completed after `secs`.
    pub fn with_timeout(mut self, secs: f64) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// Draws noise, latencies and faults from streams seeded from `seed`
    /// and this detector's name (replayable).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = device_rng(Some(seed), &self.name, 1);
        let t = super::signal::reseeded(self.timing.as_deref(), seed);
        self.with_timing(t)
    }

    /// Draws latencies and faults as `timing` says (bound to this detector's name).
    pub fn with_timing(mut self, mut timing: Timing) -> Self {
        timing.bind(&self.name);
        self.timing = Some(Box::new(timing));
        self
    }

    /// `op` takes a duration drawn from `latency` (a trigger: on top of exposure and readout).
    pub fn with_latency(self, op: TimedOp, latency: Latency) -> Self {
        let t = self.timing.as_deref().cloned().unwrap_or_default();
        self.with_timing(t.with_latency(op, latency))
    }

    /// Faults strike at `faults`' rates.
    pub fn with_faults(self, faults: Faults) -> Self {
        let t = self.timing.as_deref().cloned().unwrap_or_default();
        self.with_timing(t.with_faults(faults))
    }

    /// Exposure, readout and dead time.
    pub fn acquisition(&self) -> Acquisition {
        self.acquisition
    }

    /// Adds noise to readings.
    pub fn with_noise(mut self, noise: Noise) -> Self {
        self.noise = noise;
        if let Noise::Uniform(m) = noise {
            self.noise_multiplier = m;
        }
        self
    }

    /// Each trigger takes `secs` to complete.
    pub fn with_exposure_time(mut self, secs: f64) -> Self {
        self.acquisition.exposure = non_negative(secs);
        self
    }

    /// The value a trigger would record now (drawing its noise).
    pub fn compute(&mut self) -> f64 {
        let x = self.motor.position();
        let v = self.imax * (-(x - self.center).powi(2) / (2.0 * self.sigma * self.sigma)).exp();
        match self.noise {
            Noise::None => v,
            Noise::Uniform(m) => v + self.rng.random_range(-1.0..=1.0) * m,
            Noise::Poisson => poisson(&mut self.rng, v),
        }
    }
}

fn non_negative(secs: f64) -> f64 {
    if secs.is_finite() {
        secs.max(0.0)
    } else {
        0.0
    }
}

fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    if mean > 50.0 {
        // Normal approximation for large means.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0);
    }
    let l = (-mean).exp();
    let (mut k, mut p) = (0.0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1.0;
    }
}

impl Device for SynGauss {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        "SynGauss"
    }
    fn repr(&self) -> String {
        format!("SynGauss(prefix='', name='{}', read_attrs=['val'], configuration_attrs=['Imax', 'center', 'sigma', 'noise', 'noise_multiplier'])", self.name)
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        Some(self)
    }
    fn stageable(&mut self) -> Option<&mut dyn Stageable> {
        Some(self)
    }
    fn configurable(&mut self) -> Option<&mut dyn Configurable> {
        Some(self)
    }
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        Some(self)
    }
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        Some(self)
    }
    fn answer(&mut self, op: &DeviceOp) -> Answer {
        super::answer(self.timing.as_deref_mut(), op)
    }
}

/// As an ophyd `Device`'s `stop()`, which every ophyd.sim detector has:
/// nothing is in motion, so nothing happens (`bps.stop(det)` succeeds).
impl Stoppable for SynGauss {
    fn stop(&mut self, _success: bool) -> Result<(), DeviceError> {
        Ok(())
    }
}

impl SynGauss {
    fn reading(&self) -> Readings {
        Readings::from([(
            self.name.clone(),
            Reading {
                value: self.value.into(),
                timestamp: self.timestamp,
            },
        )])
    }
}

/// Each trigger delivers the value it acquired (ophyd.sim's `SynGauss`
/// puts its new value on `trigger`, running its subscriptions).
impl Subscribable for SynGauss {
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        Ok(self.subs.subscribe(self.reading()))
    }
}

impl Readable for SynGauss {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(self.reading())
    }

    fn describe(&self) -> DataKeys {
        DataKeys::from([(
            self.name.clone(),
            DataKey::number(format!("SIM:{}", self.name)).with_precision(3),
        )])
    }

    fn read_configuration(&self) -> Readings {
        let multiplier = self.noise_multiplier;
        Readings::from([
            (format!("{}_Imax", self.name), Reading::new(self.imax)),
            (format!("{}_center", self.name), Reading::new(self.center)),
            (format!("{}_sigma", self.name), Reading::new(self.sigma)),
            (
                format!("{}_noise", self.name),
                Reading::new(self.noise.name()),
            ),
            (
                format!("{}_noise_multiplier", self.name),
                Reading::new(multiplier),
            ),
        ])
    }

    fn describe_configuration(&self) -> DataKeys {
        CONFIG_ATTRS
            .iter()
            .map(|k| {
                let source = format!("SIM:{}_{k}", self.name);
                let key = if *k == "noise" {
                    DataKey::for_value(source, &Value::from("none"))
                } else {
                    DataKey::number(source)
                };
                (format!("{}_{k}", self.name), key)
            })
            .collect()
    }

    fn hints(&self) -> Option<Hints> {
        Some(Hints::fields([&self.name]))
    }
}

/// ophyd.sim's `SynGauss.configuration_attrs`, in its order.
const CONFIG_ATTRS: [&str; 5] = ["Imax", "center", "sigma", "noise", "noise_multiplier"];

impl Triggerable for SynGauss {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.value = self.compute();
        self.timestamp = now();
        self.subs.publish_with(|| self.reading());
        let status = ctx.status().timeout(self.timeout).build();
        let (latency, fault) = match self.timing.as_deref_mut() {
            Some(t) => (t.latency(TimedOp::Trigger), t.fault(TimedOp::Trigger)),
            None => (0.0, None),
        };
        let a = self.acquisition;
        let t0 = Instant::now();
        // A trigger inside the dead time of the last acquisition waits for it.
        let wait = self
            .ready_at
            .and_then(|r| r.checked_duration_since(t0))
            .map_or(0.0, |d| d.as_secs_f64());
        let busy = wait + a.exposure + a.readout + latency;
        if a.dead_time > 0.0 {
            self.ready_at = Some(t0 + Duration::from_secs_f64(busy + a.dead_time));
        }
        super::complete_after(ctx, &status, &self.name, "trigger", busy, fault);
        Ok(status)
    }
}

impl Configurable for SynGauss {
    /// Sets `Imax`, `center`, `sigma`, `noise` or `noise_multiplier`, as
    /// ophyd's `Device.configure`; any other key is refused, naming it.
    fn configure(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<(Readings, Readings), DeviceError> {
        let bad = |reason: String| DeviceError::InvalidArgument {
            device: self.name.clone(),
            operation: "configure",
            reason,
        };
        // Check everything first, so a refused configure changes nothing.
        let mut next = (self.imax, self.center, self.sigma, self.noise);
        let mut multiplier = self.noise_multiplier;
        for (k, v) in settings {
            let number = || {
                v.as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(format!("'{k}' must be a finite number, got {v}")))
            };
            match k.as_str() {
                "Imax" => next.0 = number()?,
                "center" => next.1 = number()?,
                "sigma" => {
                    next.2 = number()?;
                    if next.2 <= 0.0 {
                        return Err(bad(format!("'sigma' must be positive, got {v}")));
                    }
                }
                "noise" => {
                    next.3 = match v.as_str() {
                        Some("none") => Noise::None,
                        Some("poisson") => Noise::Poisson,
                        Some("uniform") => Noise::Uniform(multiplier),
                        _ => {
                            return Err(bad(format!(
                                "'noise' must be \"none\", \"poisson\" or \"uniform\", got {v}"
                            )))
                        }
                    }
                }
                "noise_multiplier" => {
                    multiplier = number()?;
                    if let Noise::Uniform(_) = next.3 {
                        next.3 = Noise::Uniform(multiplier);
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "there is no configuration attribute '{k}' (known: {})",
                        CONFIG_ATTRS.join(", ")
                    )))
                }
            }
        }
        if let Noise::Uniform(_) = next.3 {
            next.3 = Noise::Uniform(multiplier);
        }
        let old = self.read_configuration();
        (self.imax, self.center, self.sigma, self.noise) = next;
        self.noise_multiplier = multiplier;
        Ok((old, self.read_configuration()))
    }
}

impl Stageable for SynGauss {
    fn stage(&mut self) -> Result<(), DeviceError> {
        self.staged = true;
        Ok(())
    }
    fn unstage(&mut self) -> Result<(), DeviceError> {
        self.staged = false;
        Ok(())
    }
}
