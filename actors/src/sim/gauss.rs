//! `SynGauss`: a simulated detector whose reading is a Gaussian of a motor's position.

use std::time::Duration;

use rand::Rng;

use super::axis::PositionProbe;
use crate::context::DeviceContext;
use crate::device::{Device, Readable, Stageable, Triggerable};
use crate::error::DeviceError;
use crate::reading::{now, DataKey, DataKeys, Reading, Readings};
use crate::status::Status;

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

/// A detector reading `Imax * exp(-(x - center)^2 / (2 sigma^2))` of a motor
/// position `x`, updated on `trigger`, after an optional exposure time.
///
/// ```
/// use skyrun_actors::sim::{SynAxis, SynGauss, Noise};
/// use skyrun_actors::Readable;
/// let motor = SynAxis::new("motor");
/// let mut det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0).with_noise(Noise::None);
/// assert_eq!(det.compute(), 1.0);
/// assert!(det.describe().contains_key("det"));
/// ```
#[derive(Debug)]
pub struct SynGauss {
    name: String,
    motor: PositionProbe,
    center: f64,
    imax: f64,
    sigma: f64,
    noise: Noise,
    exposure: f64,
    value: f64,
    timestamp: f64,
    staged: bool,
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
            exposure: 0.0,
            value: 0.0,
            timestamp: now(),
            staged: false,
        }
    }

    /// Adds noise to readings.
    pub fn with_noise(mut self, noise: Noise) -> Self {
        self.noise = noise;
        self
    }

    /// Each trigger takes `secs` to complete.
    pub fn with_exposure_time(mut self, secs: f64) -> Self {
        self.exposure = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
        self
    }

    /// The value a trigger would record now.
    pub fn compute(&self) -> f64 {
        let x = self.motor.position();
        let v = self.imax * (-(x - self.center).powi(2) / (2.0 * self.sigma * self.sigma)).exp();
        match self.noise {
            Noise::None => v,
            Noise::Uniform(m) => v + rand::rng().random_range(-1.0..=1.0) * m,
            Noise::Poisson => poisson(v),
        }
    }
}

fn poisson(mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    if mean > 50.0 {
        // Normal approximation for large means.
        let mut rng = rand::rng();
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0);
    }
    let l = (-mean).exp();
    let mut rng = rand::rng();
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
}

impl Readable for SynGauss {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(Readings::from([(
            self.name.clone(),
            Reading {
                value: self.value.into(),
                timestamp: self.timestamp,
            },
        )]))
    }

    fn describe(&self) -> DataKeys {
        DataKeys::from([(
            self.name.clone(),
            DataKey::number(format!("SIM:{}", self.name)).with_precision(3),
        )])
    }

    fn read_configuration(&self) -> Readings {
        Readings::from([
            (format!("{}_Imax", self.name), Reading::new(self.imax)),
            (format!("{}_center", self.name), Reading::new(self.center)),
            (format!("{}_sigma", self.name), Reading::new(self.sigma)),
        ])
    }

    fn describe_configuration(&self) -> DataKeys {
        ["Imax", "center", "sigma"]
            .iter()
            .map(|k| {
                (
                    format!("{}_{k}", self.name),
                    DataKey::number(format!("SIM:{}_{k}", self.name)),
                )
            })
            .collect()
    }

    fn hints(&self) -> Vec<String> {
        vec![self.name.clone()]
    }
}

impl Triggerable for SynGauss {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.value = self.compute();
        self.timestamp = now();
        let status = ctx.status().build();
        let done = status.clone();
        ctx.after(Duration::from_secs_f64(self.exposure), move || {
            done.set_finished();
        });
        Ok(status)
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
