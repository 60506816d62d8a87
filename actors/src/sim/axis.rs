//! `SynAxis`: a simulated motor, after ophyd.sim's `SynAxis`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::timing::{move_duration, move_fraction, Fault, Faults, Latency, TimedOp, Timing};
use crate::context::DeviceContext;
use crate::device::{
    Answer, Configurable, Device, Movable, Readable, Stageable, Stoppable, Triggerable,
};
use crate::error::{DeviceError, StatusError};
use crate::hints::Hints;
use crate::reading::{now, DataKey, DataKeys, Reading, Readings};
use crate::request::DeviceOp;
use crate::status::{record_move_finish, Status};
use crate::subscription::{Subscribable, Subscribers, Subscription};

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

/// A move from `from` to `to` starting at `start` (possibly after a command
/// latency, so in the future), at top speed `velocity` (0: instantaneous)
/// with `acceleration` (none: top speed at once).
#[derive(Debug, Clone, Copy)]
struct Trajectory {
    from: f64,
    to: f64,
    start: Instant,
    velocity: f64,
    acceleration: Option<f64>,
}

impl Trajectory {
    fn at_rest(pos: f64) -> Self {
        Trajectory {
            from: pos,
            to: pos,
            start: Instant::now(),
            velocity: 0.0,
            acceleration: None,
        }
    }

    fn at(&self, t: Instant) -> f64 {
        let Some(elapsed) = t.checked_duration_since(self.start) else {
            return self.from;
        };
        if self.velocity <= 0.0 {
            return self.to;
        }
        let frac = move_fraction(
            elapsed.as_secs_f64(),
            self.to - self.from,
            self.velocity,
            self.acceleration,
        );
        self.from + (self.to - self.from) * frac
    }
}

impl PositionProbe {
    fn new(pos: f64) -> Self {
        PositionProbe(Arc::new(Mutex::new(Trajectory::at_rest(pos))))
    }

    /// The position now.
    pub fn position(&self) -> f64 {
        self.0.lock().at(Instant::now())
    }
}

/// A simulated motor: setpoint and readback, a velocity (moves take
/// distance / velocity; none means instantaneous), optionally an
/// acceleration (a trapezoid move: ramp up, cruise, ramp down), a settle
/// time, optional soft limits (a move outside them fails its status),
/// engineering units, and a [`Timing`] model (set, read, trigger and stage
/// latencies, faults).
///
/// Readings: `NAME` (readback) and `NAME_setpoint`; configuration:
/// `NAME_velocity`, `NAME_acceleration` (ophyd.sim's default 1 when no
/// acceleration is modelled). `trigger()` returns a finished status, as
/// every ophyd `Device`'s does.
///
/// ```
/// use skyrun_actors::sim::{Faults, Latency, SynAxis, TimedOp};
/// let m = SynAxis::new("motor")
///     .with_velocity(10.0)
///     .with_acceleration(50.0)
///     .with_limits(-5.0, 5.0)
///     .with_settle_time(0.01)
///     .with_seed(42)
///     .with_latency(TimedOp::Set, Latency::lognormal(-4.0, 0.3).unwrap())
///     .with_faults(Faults::none().set_fails(0.001).unwrap());
/// assert_eq!(m.velocity(), Some(10.0));
/// // 0.2 s to reach 10 mm/s, 1 mm each ramp, 1 mm cruising: 0.5 s for 3 mm.
/// assert!((m.move_time(3.0) - 0.5).abs() < 1e-12);
/// ```
#[derive(Debug)]
pub struct SynAxis {
    name: Arc<str>,
    probe: PositionProbe,
    setpoint: f64,
    setpoint_ts: f64,
    velocity: Option<f64>,
    acceleration: Option<f64>,
    settle_time: f64,
    timeout: Option<f64>,
    // Boxed: rarely set, and it keeps the motor in a 128-byte allocation.
    limits: Option<Box<(f64, f64)>>,
    units: Arc<str>,
    staged: bool,
    moving: Option<Status>,
    // Boxed: most motors are ideal, and it keeps the motor small.
    timing: Option<Box<Timing>>,
    subs: Subscribers,
}

/// ophyd.sim's `SynAxis` reports an acceleration of 1 (it models none).
const OPHYD_DEFAULT_ACCELERATION: f64 = 1.0;

impl SynAxis {
    /// A motor at 0, instantaneous, in `mm`, without limits.
    pub fn new(name: impl Into<String>) -> Self {
        SynAxis {
            name: Arc::from(name.into()),
            probe: PositionProbe::new(0.0),
            setpoint: 0.0,
            setpoint_ts: now(),
            velocity: None,
            acceleration: None,
            settle_time: 0.0,
            timeout: None,
            limits: None,
            units: MM.clone(),
            staged: false,
            moving: None,
            timing: None,
            subs: Subscribers::new(),
        }
    }

    /// Starts at `pos`.
    pub fn with_position(self, pos: f64) -> Self {
        *self.probe.0.lock() = Trajectory::at_rest(pos);
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

    /// Accelerates and decelerates at `accel` units/s² (a trapezoid move
    /// profile; non-positive: top speed at once). Only matters with a velocity.
    pub fn with_acceleration(mut self, accel: f64) -> Self {
        self.acceleration = (accel.is_finite() && accel > 0.0).then_some(accel);
        self
    }

    /// Draws latencies and faults as `timing` says (bound to this motor's name).
    pub fn with_timing(mut self, mut timing: Timing) -> Self {
        timing.bind(&self.name);
        self.timing = Some(Box::new(timing));
        self
    }

    /// Draws from a stream seeded from `seed` and this motor's name (replayable).
    pub fn with_seed(self, seed: u64) -> Self {
        let t = super::signal::reseeded(self.timing.as_deref(), seed);
        self.with_timing(t)
    }

    /// `op` takes a duration drawn from `latency` (a set: before the move starts).
    pub fn with_latency(self, op: TimedOp, latency: Latency) -> Self {
        let t = self.timing_or_default().with_latency(op, latency);
        self.with_timing(t)
    }

    /// Faults strike at `faults`' rates.
    pub fn with_faults(self, faults: Faults) -> Self {
        let t = self.timing_or_default().with_faults(faults);
        self.with_timing(t)
    }

    fn timing_or_default(&self) -> Timing {
        self.timing.as_deref().cloned().unwrap_or_default()
    }

    /// The timing model, if any.
    pub fn timing(&self) -> Option<&Timing> {
        self.timing.as_deref()
    }

    /// How long a move of `distance` takes (velocity and acceleration; no latency, no settling).
    pub fn move_time(&self, distance: f64) -> f64 {
        self.velocity
            .map_or(0.0, |v| move_duration(distance, v, self.acceleration))
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

/// The readings of a motor whose readback is at `position`.
fn axis_readings(name: &str, position: f64, setpoint: f64, setpoint_ts: f64) -> Readings {
    Readings::from([
        (name.to_owned(), Reading::new(position)),
        (
            format!("{name}_setpoint"),
            Reading {
                value: setpoint.into(),
                timestamp: setpoint_ts,
            },
        ),
    ])
}

/// The readback is delivered when a move arrives (or is stopped), as
/// ophyd.sim's `SynAxis` updates its readback once the move is done.
impl Subscribable for SynAxis {
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        let now = self.read()?;
        Ok(self.subs.subscribe(now))
    }
}

impl Readable for SynAxis {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(axis_readings(
            &self.name,
            self.probe.position(),
            self.setpoint,
            self.setpoint_ts,
        ))
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
            (
                self.key("_acceleration"),
                Reading::new(self.acceleration.unwrap_or(OPHYD_DEFAULT_ACCELERATION)),
            ),
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

    fn hints(&self) -> Option<Hints> {
        Some(Hints::fields([&*self.name]))
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
        let (latency, fault) = match self.timing.as_deref_mut() {
            Some(t) => (t.latency(TimedOp::Set), t.fault(TimedOp::Set)),
            None => (0.0, None),
        };
        self.setpoint = target;
        self.setpoint_ts = now();
        match fault {
            Some(Fault::Fails) => {
                let (done, name) = (status.clone(), self.name.clone());
                ctx.after(Duration::from_secs_f64(latency), move || {
                    done.set_exception(StatusError::Failed(format!(
                        "{name}: the move to {target} failed (simulated fault)"
                    )));
                });
                return Ok(status);
            }
            // Stuck: it never moves and its status never completes (its
            // timeout, if any, fails it; a stop completes it).
            Some(Fault::NeverCompletes) => {
                self.moving = Some(status.clone());
                return Ok(status);
            }
            _ => {}
        }
        let duration = latency + self.move_time(target - start);
        *self.probe.0.lock() = Trajectory {
            from: start,
            to: target,
            start: Instant::now() + Duration::from_secs_f64(latency),
            velocity: self.velocity.unwrap_or(0.0),
            acceleration: self.acceleration,
        };
        let done = status.clone();
        let (subs, name, ts) = (self.subs.clone(), self.name.clone(), self.setpoint_ts);
        ctx.after(Duration::from_secs_f64(duration), move || {
            subs.publish_with(|| axis_readings(&name, target, target, ts));
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

    /// Where it was last sent, and where it is (mid-move they differ).
    fn locate(&self) -> (Value, Value) {
        (self.setpoint.into(), self.probe.position().into())
    }
}

/// As every ophyd `Device`: `trigger()` returns a finished `DeviceStatus`
/// (so `trigger_and_read` triggers motors too, as Bluesky does).
impl Triggerable for SynAxis {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        let status = ctx.status().timeout(self.timeout).build();
        match self.timing.as_deref_mut() {
            None => {
                status.set_finished();
            }
            Some(t) => {
                let (latency, fault) = (t.latency(TimedOp::Trigger), t.fault(TimedOp::Trigger));
                // A motor's trigger does nothing: it can fail (trigger_fails),
                // but "never completes" is about its moves.
                let fault = fault.filter(|f| *f != Fault::NeverCompletes);
                super::complete_after(ctx, &status, &self.name, "trigger", latency, fault);
            }
        }
        Ok(status)
    }
}

impl Stoppable for SynAxis {
    fn stop(&mut self, success: bool) -> Result<(), DeviceError> {
        let here = self.probe.position();
        *self.probe.0.lock() = Trajectory::at_rest(here);
        if self.moving.is_some() {
            let (setpoint, ts) = (self.setpoint, self.setpoint_ts);
            self.subs
                .publish_with(|| axis_readings(&self.name, here, setpoint, ts));
        }
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
                "acceleration" => self.acceleration = (x > 0.0).then_some(x),
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
