//! `SynAxis`: a simulated motor, after ophyd.sim's `SynAxis`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::context::DeviceContext;
use crate::device::{Configurable, Device, Movable, Readable, Stageable, Stoppable};
use crate::error::{DeviceError, StatusError};
use crate::reading::{now, DataKey, DataKeys, Reading, Readings};
use crate::status::{record_move_finish, Status};

/// The default units, shared by every motor.
static MM: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("mm"));

/// Where a motor is, readable from other actors (a detector bound to it).
///
/// The position is interpolated along the current move, so it is exact at any
/// moment without the motor actor having to tick.
///
/// ```
/// use skyrun_actors::sim::SynAxis;
/// let m = SynAxis::new("m").with_position(2.5);
/// assert_eq!(m.probe().position(), 2.5);
/// ```
#[derive(Clone, Debug)]
pub struct PositionProbe(Arc<Mutex<Trajectory>>);

#[derive(Debug, Clone, Copy)]
struct Trajectory {
    from: f64,
    to: f64,
    start: Instant,
    duration: f64,
}

impl Trajectory {
    fn at(&self, t: Instant) -> f64 {
        if self.duration <= 0.0 {
            return self.to;
        }
        let frac = (t.duration_since(self.start).as_secs_f64() / self.duration).min(1.0);
        self.from + (self.to - self.from) * frac
    }
}

impl PositionProbe {
    fn new(pos: f64) -> Self {
        PositionProbe(Arc::new(Mutex::new(Trajectory {
            from: pos,
            to: pos,
            start: Instant::now(),
            duration: 0.0,
        })))
    }

    /// The position now.
    pub fn position(&self) -> f64 {
        self.0.lock().at(Instant::now())
    }
}

/// A simulated motor: setpoint and readback, a velocity (moves take
/// distance / velocity; none means instantaneous), a settle time, optional
/// soft limits (a move outside them fails its status), and engineering units.
///
/// Readings: `NAME` (readback) and `NAME_setpoint`; configuration:
/// `NAME_velocity`, `NAME_acceleration`.
///
/// ```
/// use skyrun_actors::sim::SynAxis;
/// let m = SynAxis::new("motor").with_velocity(10.0).with_limits(-5.0, 5.0).with_settle_time(0.01);
/// assert_eq!(m.velocity(), Some(10.0));
/// ```
#[derive(Debug)]
pub struct SynAxis {
    name: Arc<str>,
    probe: PositionProbe,
    setpoint: f64,
    setpoint_ts: f64,
    velocity: Option<f64>,
    acceleration: f64,
    settle_time: f64,
    timeout: Option<f64>,
    // Boxed: rarely set, and it keeps the motor in a 128-byte allocation.
    limits: Option<Box<(f64, f64)>>,
    units: Arc<str>,
    staged: bool,
    moving: Option<Status>,
}

impl SynAxis {
    /// A motor at 0, instantaneous, in `mm`, without limits.
    pub fn new(name: impl Into<String>) -> Self {
        SynAxis {
            name: Arc::from(name.into()),
            probe: PositionProbe::new(0.0),
            setpoint: 0.0,
            setpoint_ts: now(),
            velocity: None,
            acceleration: 1.0,
            settle_time: 0.0,
            timeout: None,
            limits: None,
            units: MM.clone(),
            staged: false,
            moving: None,
        }
    }

    /// Starts at `pos`.
    pub fn with_position(self, pos: f64) -> Self {
        *self.probe.0.lock() = Trajectory {
            from: pos,
            to: pos,
            start: Instant::now(),
            duration: 0.0,
        };
        SynAxis {
            setpoint: pos,
            ..self
        }
    }

    /// Moves at `velocity` units per second (non-positive: instantaneous).
    pub fn with_velocity(mut self, velocity: f64) -> Self {
        self.velocity = (velocity.is_finite() && velocity > 0.0).then_some(velocity);
        self
    }

    /// Waits `secs` after arriving before the move's status completes.
    pub fn with_settle_time(mut self, secs: f64) -> Self {
        self.settle_time = secs.max(0.0);
        self
    }

    /// Fails a move's status if it takes longer than `secs`.
    pub fn with_timeout(mut self, secs: f64) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// Soft limits: a move outside `[low, high]` fails its status.
    pub fn with_limits(mut self, low: f64, high: f64) -> Self {
        self.limits = Some(Box::new((low.min(high), low.max(high))));
        self
    }

    /// Engineering units (default `mm`).
    pub fn with_units(mut self, units: impl Into<String>) -> Self {
        self.units = Arc::from(units.into());
        self
    }

    /// The velocity, if moves take time.
    pub fn velocity(&self) -> Option<f64> {
        self.velocity
    }

    /// A probe of this motor's position, for detectors bound to it.
    pub fn probe(&self) -> PositionProbe {
        self.probe.clone()
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.name)
    }
}

impl Device for SynAxis {
    fn name(&self) -> &str {
        &self.name
    }
    fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }
    fn type_name(&self) -> &'static str {
        "SynAxis"
    }
    fn repr(&self) -> String {
        format!(
            "SynAxis(prefix='', name='{}', read_attrs=['readback', 'setpoint'], configuration_attrs=['velocity', 'acceleration'])",
            self.name
        )
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
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
}

impl Readable for SynAxis {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(Readings::from([
            (self.name.to_string(), Reading::new(self.probe.position())),
            (
                self.key("_setpoint"),
                Reading {
                    value: self.setpoint.into(),
                    timestamp: self.setpoint_ts,
                },
            ),
        ]))
    }

    fn describe(&self) -> DataKeys {
        let key = |_: ()| {
            DataKey::number(format!("SIM:{}", self.name))
                .with_units(self.units.as_ref())
                .with_precision(3)
        };
        DataKeys::from([
            (self.name.to_string(), key(())),
            (self.key("_setpoint"), key(())),
        ])
    }

    fn read_configuration(&self) -> Readings {
        Readings::from([
            (
                self.key("_velocity"),
                Reading::new(self.velocity.unwrap_or(0.0)),
            ),
            (self.key("_acceleration"), Reading::new(self.acceleration)),
        ])
    }

    fn describe_configuration(&self) -> DataKeys {
        DataKeys::from([
            (
                self.key("_velocity"),
                DataKey::number(format!("SIM:{}_velocity", self.name)),
            ),
            (
                self.key("_acceleration"),
                DataKey::number(format!("SIM:{}_acceleration", self.name)),
            ),
        ])
    }

    fn hints(&self) -> Vec<String> {
        vec![self.name.to_string()]
    }
}

impl Movable for SynAxis {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        let target = super::finite_number(&self.name, value)?;
        let start = self.probe.position();
        let status = ctx
            .move_status(target, start, &self.units)
            .settle_time(self.settle_time)
            .timeout(self.timeout)
            .build();
        if let Some(&(low, high)) = self.limits.as_deref() {
            if !(low..=high).contains(&target) {
                status.set_exception(StatusError::Failed(format!(
                    "{}: position {target} is outside the limits [{low}, {high}]",
                    self.name
                )));
                return Ok(status);
            }
        }
        let duration = self
            .velocity
            .map(|v| (target - start).abs() / v)
            .unwrap_or(0.0);
        *self.probe.0.lock() = Trajectory {
            from: start,
            to: target,
            start: Instant::now(),
            duration,
        };
        self.setpoint = target;
        self.setpoint_ts = now();
        let done = status.clone();
        ctx.after(Duration::from_secs_f64(duration), move || {
            record_move_finish(&done, target);
            done.set_finished();
        });
        if !status.done() {
            self.moving = Some(status.clone());
        }
        Ok(status)
    }

    fn position(&self) -> Value {
        self.probe.position().into()
    }
}

impl Stoppable for SynAxis {
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        let here = self.probe.position();
        *self.probe.0.lock() = Trajectory {
            from: here,
            to: here,
            start: Instant::now(),
            duration: 0.0,
        };
        if let Some(st) = self.moving.take() {
            if success {
                record_move_finish(&st, here);
                st.set_finished();
            } else {
                st.set_exception(StatusError::Stopped {
                    device: self.name.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl Stageable for SynAxis {
    fn stage(&mut self) -> Result<(), DeviceError> {
        self.staged = true;
        Ok(())
    }
    fn unstage(&mut self) -> Result<(), DeviceError> {
        self.staged = false;
        Ok(())
    }
}

impl Configurable for SynAxis {
    fn configure(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<(Readings, Readings), DeviceError> {
        let old = self.read_configuration();
        for (k, v) in settings {
            let bad = |reason: String| DeviceError::InvalidArgument {
                device: self.name.to_string(),
                operation: "configure",
                reason,
            };
            let x = v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(format!("'{k}' must be a finite number, got {v}")))?;
            match k.as_str() {
                "velocity" => self.velocity = (x > 0.0).then_some(x),
                "acceleration" => self.acceleration = x,
                "settle_time" => self.settle_time = x.max(0.0),
                _ => {
                    return Err(bad(format!(
                        "unknown setting '{k}' (known: velocity, acceleration, settle_time)"
                    )))
                }
            }
        }
        Ok((old, self.read_configuration()))
    }
}
