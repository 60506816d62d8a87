//! `SynFlyer`: a simulated flyer; between kickoff and complete it acquires a
//! batch of events that `collect` returns.

use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::assets::CollectDescription;
use crate::context::DeviceContext;
use crate::device::{CollectedEvent, Device, Flyable, Stoppable};
use crate::error::DeviceError;
use crate::reading::{now, DataKey, DataKeys};
use crate::status::Status;

/// A flyer that, once kicked off, sweeps `x` from `start` to `stop` in
/// `num_points` steps over `duration` seconds, measuring a Gaussian `y` of `x`.
/// Its events go to the stream named after the flyer, with data keys
/// `NAME_x` and `NAME_y`.
///
/// ```
/// use skyrun_actors::sim::SynFlyer;
/// use skyrun_actors::Flyable;
/// let f = SynFlyer::new("flyer", 5).with_range(-1.0, 1.0);
/// let skyrun_actors::CollectDescription::Streams(streams) = f.describe_collect() else { panic!() };
/// assert_eq!(streams["flyer"].len(), 2);
/// ```
#[derive(Debug)]
pub struct SynFlyer {
    name: String,
    num_points: usize,
    duration: f64,
    start: f64,
    stop: f64,
    started: Option<(Instant, f64)>,
    completion: Option<Status>,
}

impl SynFlyer {
    /// A flyer acquiring `num_points` points, instantly, over `[-1, 1]`.
    pub fn new(name: impl Into<String>, num_points: usize) -> Self {
        SynFlyer {
            name: name.into(),
            num_points,
            duration: 0.0,
            start: -1.0,
            stop: 1.0,
            started: None,
            completion: None,
        }
    }

    /// The acquisition takes `secs`.
    pub fn with_duration(mut self, secs: f64) -> Self {
        self.duration = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
        self
    }

    /// Sweeps from `start` to `stop`.
    pub fn with_range(mut self, start: f64, stop: f64) -> Self {
        self.start = start;
        self.stop = stop;
        self
    }

    fn not_kicked_off(&self, op: &'static str) -> DeviceError {
        DeviceError::Failed {
            device: self.name.clone(),
            operation: op,
            reason: "the flyer was not kicked off".into(),
        }
    }
}

impl Device for SynFlyer {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        "SynFlyer"
    }
    fn flyable(&mut self) -> Option<&mut dyn Flyable> {
        Some(self)
    }
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        Some(self)
    }
}

impl Flyable for SynFlyer {
    fn kickoff(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.started = Some((Instant::now(), now()));
        let status = ctx.status().build();
        status.set_finished();
        Ok(status)
    }

    fn complete(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        let (t0, _) = self
            .started
            .ok_or_else(|| self.not_kicked_off("complete"))?;
        let status = ctx.status().build();
        let remaining = (self.duration - t0.elapsed().as_secs_f64()).max(0.0);
        let done = status.clone();
        ctx.after(Duration::from_secs_f64(remaining), move || {
            done.set_finished();
        });
        self.completion = Some(status.clone());
        Ok(status)
    }

    fn collect(&mut self) -> Result<Vec<CollectedEvent>, DeviceError> {
        let (_, epoch0) = self
            .started
            .take()
            .ok_or_else(|| self.not_kicked_off("collect"))?;
        let n = self.num_points;
        let (kx, ky) = (format!("{}_x", self.name), format!("{}_y", self.name));
        Ok((0..n)
            .map(|i| {
                let frac = if n > 1 {
                    i as f64 / (n - 1) as f64
                } else {
                    0.0
                };
                let x = self.start + (self.stop - self.start) * frac;
                let t = epoch0 + self.duration * frac;
                CollectedEvent {
                    stream: self.name.clone(),
                    time: t,
                    data: IndexMap::from([
                        (kx.clone(), x.into()),
                        (ky.clone(), (-x * x / 2.0).exp().into()),
                    ]),
                    timestamps: IndexMap::from([(kx.clone(), t), (ky.clone(), t)]),
                }
            })
            .collect())
    }

    fn describe_collect(&self) -> CollectDescription {
        CollectDescription::Streams(IndexMap::from([(
            self.name.clone(),
            DataKeys::from([
                (
                    format!("{}_x", self.name),
                    DataKey::number(format!("SIM:{}_x", self.name)),
                ),
                (
                    format!("{}_y", self.name),
                    DataKey::number(format!("SIM:{}_y", self.name)),
                ),
            ]),
        )]))
    }
}

impl Stoppable for SynFlyer {
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        if let Some(st) = self.completion.take() {
            if success {
                st.set_finished();
            } else {
                st.set_exception(crate::StatusError::Stopped {
                    device: self.name.clone(),
                });
            }
        }
        Ok(())
    }
}
