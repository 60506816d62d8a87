//! `SynSignal`: a simulated signal holding one value that can be set, triggered and read.

use serde_json::Value;

use super::timing::{Faults, Latency, TimedOp, Timing};
use crate::context::DeviceContext;
use crate::device::{Answer, Device, Movable, Readable, Triggerable};
use crate::error::DeviceError;
use crate::reading::{now, DataKey, DataKeys, Reading, Readings};
use crate::request::DeviceOp;
use crate::status::Status;
use crate::subscription::{Subscribable, Subscribers, Subscription};

/// A value with a timestamp: `set` replaces it at once, `trigger` completes
/// at once, unless a [`Timing`] model says otherwise (the status of a set or
/// trigger then completes after its drawn latency, or as a fault says).
///
/// ```
/// use skyrun_actors::sim::{SynSignal, Latency, TimedOp};
/// use skyrun_actors::Readable;
/// let mut s = SynSignal::new("temperature", 21.5)
///     .with_seed(42)
///     .with_latency(TimedOp::Read, Latency::uniform(0.001, 0.002).unwrap());
/// assert_eq!(s.read().unwrap()["temperature"].value, serde_json::json!(21.5));
/// ```
#[derive(Debug)]
pub struct SynSignal {
    name: String,
    value: Value,
    timestamp: f64,
    units: Option<String>,
    timeout: Option<f64>,
    timing: Option<Box<Timing>>,
    subs: Subscribers,
}

impl SynSignal {
    /// A signal named `name` holding `value`.
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        SynSignal {
            name: name.into(),
            value: value.into(),
            timestamp: now(),
            units: None,
            timeout: None,
            timing: None,
            subs: Subscribers::new(),
        }
    }

    /// Fails a set's or trigger's status if it has not completed after `secs`.
    pub fn with_timeout(mut self, secs: f64) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// Draws latencies and faults as `timing` says (bound to this signal's name).
    pub fn with_timing(mut self, mut timing: Timing) -> Self {
        timing.bind(&self.name);
        self.timing = Some(Box::new(timing));
        self
    }

    /// Draws from a stream seeded from `seed` and this signal's name.
    pub fn with_seed(self, seed: u64) -> Self {
        let t = reseeded(self.timing.as_deref(), seed);
        self.with_timing(t)
    }

    /// `op` takes a duration drawn from `latency`.
    pub fn with_latency(self, op: TimedOp, latency: Latency) -> Self {
        let t = self.timing.as_deref().cloned().unwrap_or_default();
        self.with_timing(t.with_latency(op, latency))
    }

    /// Faults strike at `faults`' rates.
    pub fn with_faults(self, faults: Faults) -> Self {
        let t = self.timing.as_deref().cloned().unwrap_or_default();
        self.with_timing(t.with_faults(faults))
    }

    fn finish(&mut self, ctx: &DeviceContext, op: TimedOp) -> Status {
        let status = ctx.status().timeout(self.timeout).build();
        match self.timing.as_deref_mut() {
            None => {
                status.set_finished();
            }
            Some(t) => {
                let (latency, fault) = (t.latency(op), t.fault(op));
                super::complete_after(ctx, &status, &self.name, op.name(), latency, fault);
            }
        }
        status
    }

    /// Engineering units.
    pub fn with_units(mut self, units: impl Into<String>) -> Self {
        self.units = Some(units.into());
        self
    }
}

impl Device for SynSignal {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        "SynSignal"
    }
    fn repr(&self) -> String {
        format!("SynSignal(name='{}')", self.name)
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
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        Some(self)
    }
    fn answer(&mut self, op: &DeviceOp) -> Answer {
        super::answer(self.timing.as_deref_mut(), op)
    }
}

impl SynSignal {
    fn reading(&self) -> Readings {
        Readings::from([(
            self.name.clone(),
            Reading {
                value: self.value.clone(),
                timestamp: self.timestamp,
            },
        )])
    }
}

/// Every `set` and `trigger` delivers the new reading (ophyd's `SynSignal`
/// runs its subscriptions on each `put`).
impl Subscribable for SynSignal {
    fn subscribe(&mut self) -> Result<Subscription, DeviceError> {
        Ok(self.subs.subscribe(self.reading()))
    }
}

impl Readable for SynSignal {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(self.reading())
    }

    fn describe(&self) -> DataKeys {
        let mut key = DataKey::for_value(format!("SIM:{}", self.name), &self.value);
        key.units = self.units.clone();
        DataKeys::from([(self.name.clone(), key)])
    }
}

impl Movable for SynSignal {
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        if let Some(x) = value.as_f64() {
            if !x.is_finite() {
                return Err(DeviceError::InvalidArgument {
                    device: self.name.clone(),
                    operation: "set",
                    reason: format!("expected a finite value, got {value}"),
                });
            }
        }
        self.value = value.clone();
        self.timestamp = now();
        self.subs.publish_with(|| self.reading());
        Ok(self.finish(ctx, TimedOp::Set))
    }

    fn position(&self) -> Value {
        self.value.clone()
    }
}

impl Triggerable for SynSignal {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.timestamp = now();
        self.subs.publish_with(|| self.reading());
        Ok(self.finish(ctx, TimedOp::Trigger))
    }
}

/// `timing` (or none) with the same latencies and faults, drawing from `seed`.
pub(crate) fn reseeded(timing: Option<&Timing>, seed: u64) -> Timing {
    let t = timing.cloned().unwrap_or_default();
    let mut fresh = Timing::seeded(seed).with_faults(t.faults());
    for op in TimedOp::ALL {
        if let Some(l) = t.latency_of(op) {
            fresh = fresh.with_latency(op, l);
        }
    }
    fresh
}
