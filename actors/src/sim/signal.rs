//! `SynSignal`: a simulated signal holding one value that can be set, triggered and read.

use serde_json::Value;

use crate::context::DeviceContext;
use crate::device::{Device, Movable, Readable, Triggerable};
use crate::error::DeviceError;
use crate::reading::{now, DataKey, DataKeys, Reading, Readings};
use crate::status::Status;

/// A value with a timestamp: `set` replaces it at once, `trigger` completes at once.
///
/// ```
/// use skyrun_actors::sim::SynSignal;
/// use skyrun_actors::Readable;
/// let mut s = SynSignal::new("temperature", 21.5);
/// assert_eq!(s.read().unwrap()["temperature"].value, serde_json::json!(21.5));
/// ```
#[derive(Debug)]
pub struct SynSignal {
    name: String,
    value: Value,
    timestamp: f64,
    units: Option<String>,
}

impl SynSignal {
    /// A signal named `name` holding `value`.
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        SynSignal {
            name: name.into(),
            value: value.into(),
            timestamp: now(),
            units: None,
        }
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
}

impl Readable for SynSignal {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        Ok(Readings::from([(
            self.name.clone(),
            Reading {
                value: self.value.clone(),
                timestamp: self.timestamp,
            },
        )]))
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
        let status = ctx.status().build();
        status.set_finished();
        Ok(status)
    }

    fn position(&self) -> Value {
        self.value.clone()
    }
}

impl Triggerable for SynSignal {
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.timestamp = now();
        let status = ctx.status().build();
        status.set_finished();
        Ok(status)
    }
}
