//! The device traits a real or simulated device implements, in the spirit of
//! ophyd's protocols (`Readable`, `Movable`, `Triggerable`, `Flyable`,
//! `Stageable`, `Configurable`, `Stoppable`).
//!
//! A device implements [`Device`] and returns itself from the capability
//! accessors it supports; the [`DeviceActor`](crate::DeviceActor) hosting it
//! dispatches each request to the right trait and answers
//! [`DeviceError::Unsupported`] for the rest.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::assets::{CollectDescription, ExternalAssets};
use crate::context::DeviceContext;
use crate::error::DeviceError;
use crate::hints::Hints;
use crate::reading::{DataKeys, Readings};
use crate::request::DeviceOp;
use crate::status::Status;
use crate::subscription::Subscribable;

/// A device: a name, a type, and the capabilities it supports.
///
/// ```
/// use skyrun_actors::{Device, Readable, Reading, Readings, DataKeys, DataKey, DeviceError};
///
/// struct Thermometer { name: String, kelvin: f64 }
///
/// impl Device for Thermometer {
///     fn name(&self) -> &str { &self.name }
///     fn type_name(&self) -> &'static str { "Thermometer" }
///     fn readable(&mut self) -> Option<&mut dyn Readable> { Some(self) }
/// }
///
/// impl Readable for Thermometer {
///     fn read(&mut self) -> Result<Readings, DeviceError> {
///         Ok(Readings::from([(self.name.clone(), Reading::new(self.kelvin))]))
///     }
///     fn describe(&self) -> DataKeys {
///         DataKeys::from([(self.name.clone(), DataKey::number("SIM:T").with_units("K"))])
///     }
/// }
///
/// let mut t = Thermometer { name: "t1".into(), kelvin: 4.2 };
/// assert!(t.readable().is_some() && t.movable().is_none());
/// assert_eq!(t.repr(), "Thermometer(name='t1')");
/// ```
pub trait Device: Send + 'static {
    /// The device name; data keys are derived from it.
    fn name(&self) -> &str;
    /// The name as a shared string. The default copies [`name`](Self::name);
    /// a device that keeps its name in an `Arc<str>` returns it, so the
    /// handle, the repr and span attributes share one allocation.
    ///
    /// ```
    /// use skyrun_actors::{sim::SynAxis, Device};
    /// let m = SynAxis::new("m1");
    /// assert!(std::sync::Arc::ptr_eq(&m.shared_name(), &m.shared_name()));
    /// ```
    fn shared_name(&self) -> std::sync::Arc<str> {
        self.name().into()
    }
    /// The device's type name (ophyd's class name), e.g. `SynAxis`.
    fn type_name(&self) -> &'static str;
    /// A human-readable representation, used in span attributes (`msg.obj`).
    fn repr(&self) -> String {
        format!("{}(name='{}')", self.type_name(), self.name())
    }
    /// This device as [`Readable`], if it is.
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        None
    }
    /// This device as [`Movable`], if it is.
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        None
    }
    /// This device as [`Triggerable`], if it is.
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        None
    }
    /// This device as [`Flyable`], if it is.
    fn flyable(&mut self) -> Option<&mut dyn Flyable> {
        None
    }
    /// This device as [`Preparable`], if it is.
    fn preparable(&mut self) -> Option<&mut dyn Preparable> {
        None
    }
    /// This device as [`ExternalAssets`], if it writes data elsewhere.
    fn external_assets(&mut self) -> Option<&mut dyn ExternalAssets> {
        None
    }
    /// This device as [`Stageable`], if it is.
    fn stageable(&mut self) -> Option<&mut dyn Stageable> {
        None
    }
    /// This device as [`Configurable`], if it is.
    fn configurable(&mut self) -> Option<&mut dyn Configurable> {
        None
    }
    /// This device as [`Stoppable`], if it is.
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        None
    }
    /// This device as [`Subscribable`], if it is.
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        None
    }
    /// This device as [`Pausable`], if it is.
    fn pausable(&mut self) -> Option<&mut dyn Pausable> {
        None
    }
    /// When the answer to `op` is sent, asked before the request is handled
    /// (a modelled reply latency, or a device that has stopped answering).
    /// The default answers at once.
    ///
    /// ```
    /// use skyrun_actors::{sim::{SynSignal, TimedOp, Timing, Latency}, Answer, Device, DeviceOp};
    /// let mut s = SynSignal::new("t", 1.0)
    ///     .with_timing(Timing::seeded(42).with_latency(TimedOp::Read, Latency::fixed(0.25).unwrap()));
    /// assert_eq!(s.answer(&DeviceOp::Read), Answer::After(std::time::Duration::from_millis(250)));
    /// assert_eq!(s.answer(&DeviceOp::Describe), Answer::Now);
    /// ```
    fn answer(&mut self, op: &DeviceOp) -> Answer {
        let _ = op;
        Answer::Now
    }
}

/// When a device answers a request (see [`Device::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// At once.
    Now,
    /// After this long (the request is handled at once; its reply waits).
    After(std::time::Duration),
    /// Never: the request is not handled and no reply comes (the caller's
    /// timeout fires).
    Never,
}

/// A device that can be read.
pub trait Readable {
    /// The current readings, keyed by data key.
    fn read(&mut self) -> Result<Readings, DeviceError>;
    /// The data keys [`read`](Self::read) returns.
    fn describe(&self) -> DataKeys;
    /// Configuration readings (recorded in descriptors).
    fn read_configuration(&self) -> Readings {
        Readings::new()
    }
    /// The data keys of [`read_configuration`](Self::read_configuration).
    fn describe_configuration(&self) -> DataKeys {
        DataKeys::new()
    }
    /// The device's hints (Bluesky's `obj.hints`, recorded in descriptors
    /// as they are): by default the first data key as the one hinted field.
    /// `None` for a device without hints (a Python object with no `hints`
    /// attribute), which descriptors leave out.
    fn hints(&self) -> Option<Hints> {
        Some(Hints::fields(self.describe().keys().take(1).cloned()))
    }
    /// [`describe`](Self::describe) for a device whose description can
    /// fail (a Python object's `describe()` raising): the actor asks this
    /// one, and its error fails the message that needed the description.
    /// The default never fails.
    fn try_describe(&self) -> Result<DataKeys, DeviceError> {
        Ok(self.describe())
    }
    /// [`read_configuration`](Self::read_configuration), when it can fail.
    fn try_read_configuration(&self) -> Result<Readings, DeviceError> {
        Ok(self.read_configuration())
    }
    /// [`describe_configuration`](Self::describe_configuration), when it can fail.
    fn try_describe_configuration(&self) -> Result<DataKeys, DeviceError> {
        Ok(self.describe_configuration())
    }
}

/// A device that can be set to a value, completing a [`Status`] when it gets there.
pub trait Movable {
    /// Starts moving to `value`; the returned status completes on arrival.
    fn set(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError>;
    /// The current position (readback).
    fn position(&self) -> Value;
    /// Where the device was last asked to go and where it is, as
    /// `(setpoint, readback)` (Bluesky's `locate()`); by default its
    /// position for both.
    fn locate(&self) -> (Value, Value) {
        let p = self.position();
        (p.clone(), p)
    }
    /// [`locate`](Self::locate) answered later, for a device whose location
    /// takes a while to come (a Python object's coroutine `locate()`, run on
    /// Bluesky's event loop): the future gives `(setpoint, readback)` or the
    /// error that fails the locate, and the device's actor handles other
    /// requests meanwhile, so the engine locates several devices at once, as
    /// Bluesky gathers their `locate()`s. `None` (the default): `locate`
    /// answers now.
    ///
    /// `gathered`: other devices are located at once with this one. A device
    /// that can answer either way may answer at once when it is not (a
    /// future that is ready is answered without a turn of the actor).
    ///
    /// ```
    /// use skyrun_actors::{json, Device, DeviceContext, DeviceError, DeviceHandle, DeviceOp,
    ///                     DeviceReply, Later, Movable, Status, Value};
    /// use opentelemetry::Context;
    ///
    /// struct Slow;
    /// impl Device for Slow {
    ///     fn name(&self) -> &str { "slow" }
    ///     fn type_name(&self) -> &'static str { "Slow" }
    ///     fn movable(&mut self) -> Option<&mut dyn Movable> { Some(self) }
    /// }
    /// impl Movable for Slow {
    ///     fn set(&mut self, _: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError> {
    ///         Ok(ctx.status().build())
    ///     }
    ///     fn position(&self) -> Value { json!(0.0) }
    ///     fn locate_later(&self, _gathered: bool) -> Option<Later<(Value, Value)>> {
    ///         Some(Box::pin(async { Ok((json!(1.0), json!(0.5))) }))
    ///     }
    /// }
    ///
    /// actix_rt::System::new().block_on(async {
    ///     let slow = DeviceHandle::spawn(Slow);
    ///     let locate = DeviceOp::Locate { gathered: false };
    ///     let reply = slow.request(locate, &Context::new()).await.unwrap();
    ///     let DeviceReply::Located { setpoint, readback } = reply else { panic!() };
    ///     assert_eq!((setpoint, readback), (json!(1.0), json!(0.5)));
    /// });
    /// ```
    fn locate_later(&self, gathered: bool) -> Option<Later<(Value, Value)>> {
        let _ = gathered;
        None
    }
}

/// An answer a device gives later (see [`Movable::locate_later`]).
pub type Later<T> = futures::future::LocalBoxFuture<'static, Result<T, DeviceError>>;

/// A device that acquires on `trigger`.
pub trait Triggerable {
    /// Starts an acquisition; the status completes when the data can be read.
    fn trigger(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError>;
}

/// One event produced by a flyer's `collect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectedEvent {
    /// The stream the event belongs to (a key of `describe_collect`).
    pub stream: String,
    /// When the event was taken.
    pub time: f64,
    /// Values by data key.
    pub data: IndexMap<String, Value>,
    /// Timestamps by data key.
    pub timestamps: IndexMap<String, f64>,
}

/// A device that acquires on its own between `kickoff` and `complete`.
pub trait Flyable {
    /// Starts the acquisition; the status completes once it has started.
    fn kickoff(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError>;
    /// The status completes when the acquisition has finished.
    fn complete(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError>;
    /// The events acquired since the last collect.
    fn collect(&mut self) -> Result<Vec<CollectedEvent>, DeviceError>;
    /// Data keys of the collected events: per stream, or flat for a stream the plan declares.
    fn describe_collect(&self) -> CollectDescription;
}

/// A device prepared for a fly scan (Bluesky's `Preparable`: ophyd-async's
/// detectors take a `TriggerInfo`, its motors a `FlyMotorInfo`).
pub trait Preparable {
    /// Starts preparing with `value`; the returned status completes when ready.
    fn prepare(&mut self, value: &Value, ctx: &DeviceContext) -> Result<Status, DeviceError>;
}

/// A device that is prepared before a run (`stage`) and released after (`unstage`).
pub trait Stageable {
    /// Prepares the device for acquisition.
    fn stage(&mut self) -> Result<(), DeviceError>;
    /// Returns the device to its state before [`stage`](Self::stage).
    fn unstage(&mut self) -> Result<(), DeviceError>;
    /// Stages, answering a status when staging completes later (an
    /// ophyd-async device's `AsyncStatus`, an ophyd Status), which the
    /// engine puts in the message's group as Bluesky does. The default
    /// stages at once ([`stage`](Self::stage)) and answers none.
    fn stage_status(&mut self) -> Result<Option<Status>, DeviceError> {
        self.stage().map(|()| None)
    }
    /// Unstages, answering a status as [`stage_status`](Self::stage_status) does.
    fn unstage_status(&mut self) -> Result<Option<Status>, DeviceError> {
        self.unstage().map(|()| None)
    }
}

/// A device whose configuration can be changed.
pub trait Configurable {
    /// Applies `settings`; returns the configuration readings before and after.
    fn configure(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<(Readings, Readings), DeviceError>;
}

/// A device that can be stopped (motion halted, acquisition aborted).
pub trait Stoppable {
    /// Stops; pending statuses complete with `success`.
    fn stop(&mut self, success: bool) -> Result<(), DeviceError>;
}

/// A device told when the engine pauses and resumes (Bluesky's `Pausable`:
/// a detector that cannot take up where it left off says so, and the plan
/// is not replayed from its checkpoint).
///
/// ```
/// use skyrun_actors::{DeviceError, Pausable, Replay};
/// struct Camera { acquiring: bool }
/// impl Pausable for Camera {
///     fn pause(&mut self) -> Result<Replay, DeviceError> {
///         self.acquiring = false;
///         Ok(Replay::NotAllowed)
///     }
///     fn resume(&mut self) -> Result<(), DeviceError> {
///         Ok(())
///     }
/// }
/// assert_eq!(Camera { acquiring: true }.pause().unwrap(), Replay::NotAllowed);
/// ```
pub trait Pausable {
    /// The engine paused; whether the messages since the last checkpoint
    /// may be replayed on resume (Bluesky's `NoReplayAllowed`).
    fn pause(&mut self) -> Result<Replay, DeviceError>;
    /// The engine resumes.
    fn resume(&mut self) -> Result<(), DeviceError>;
}

/// Whether a paused device allows the plan's rewind ([`Pausable::pause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The messages since the last checkpoint may be replayed.
    Allowed,
    /// They may not: the plan goes on where it paused.
    NotAllowed,
}

/// Which capabilities a device has, recorded when its actor starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Implements [`Readable`].
    pub readable: bool,
    /// Implements [`Movable`].
    pub movable: bool,
    /// Implements [`Triggerable`].
    pub triggerable: bool,
    /// Implements [`Flyable`].
    pub flyable: bool,
    /// Implements [`Stageable`].
    pub stageable: bool,
    /// Implements [`Configurable`].
    pub configurable: bool,
    /// Implements [`Stoppable`].
    pub stoppable: bool,
    /// Implements [`Subscribable`].
    #[serde(default)]
    pub subscribable: bool,
    /// Implements [`ExternalAssets`].
    #[serde(default)]
    pub external_assets: bool,
    /// Implements [`Preparable`].
    #[serde(default)]
    pub preparable: bool,
    /// Implements [`Pausable`].
    #[serde(default)]
    pub pausable: bool,
}

impl Capabilities {
    /// The capabilities `device` reports.
    pub fn of(device: &mut dyn Device) -> Self {
        Capabilities {
            readable: device.readable().is_some(),
            movable: device.movable().is_some(),
            triggerable: device.triggerable().is_some(),
            flyable: device.flyable().is_some(),
            stageable: device.stageable().is_some(),
            configurable: device.configurable().is_some(),
            stoppable: device.stoppable().is_some(),
            subscribable: device.subscribable().is_some(),
            external_assets: device.external_assets().is_some(),
            preparable: device.preparable().is_some(),
            pausable: device.pausable().is_some(),
        }
    }
}
