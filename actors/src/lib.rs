//! # skyrun-actors: the device side of skyrun
//!
//! Every device (a motor, a detector, a flyer) runs as its own
//! [actix](https://docs.rs/actix) actor, hosted by a [`DeviceActor`] and reached
//! through a clonable [`DeviceHandle`]. The engine sends it [`DeviceRequest`]s;
//! each carries the sender's OpenTelemetry span context in a [`TraceCarrier`],
//! injected and extracted with the standard propagator API, so the spans a
//! device opens (the "Ophyd Status" span of every [`Status`]) are children of
//! the engine span that asked, even across threads.
//!
//! A device implements [`Device`] and the capability traits it supports
//! ([`Readable`], [`Movable`], [`Triggerable`], [`Flyable`], [`Stageable`],
//! [`Configurable`], [`Stoppable`]). Operations that take time return a
//! [`Status`] that the device completes later; the caller waits on it or
//! registers callbacks. A [`Subscribable`] device delivers each new reading
//! to its [`Subscription`]s (see [`DeviceHandle::subscribe`]). [`sim`] has
//! simulated devices after ophyd.sim.
//!
//! ```
//! use skyrun_actors::{sim::SynAxis, DeviceHandle, DeviceOp, DeviceReply};
//! use opentelemetry::Context;
//!
//! actix_rt::System::new().block_on(async {
//!     let motor = DeviceHandle::spawn(SynAxis::new("motor").with_velocity(100.0));
//!     let reply = motor.request(DeviceOp::Set(1.0.into()), &Context::new()).await.unwrap();
//!     let DeviceReply::Status(status) = reply else { unreachable!() };
//!     status.wait().await.expect("the move succeeds");
//!     let DeviceReply::Readings(r) = motor.request(DeviceOp::Read, &Context::new()).await.unwrap()
//!         else { unreachable!() };
//!     assert_eq!(r["motor"].value, serde_json::json!(1.0));
//! });
//! ```

#![warn(missing_docs)]

mod actor;
mod assets;
mod context;
mod device;
mod error;
mod hints;
pub mod propagation;
mod reading;
mod repr;
mod request;
pub mod sim;
mod status;
mod subscription;
mod tracer;
mod w3c;

pub use actor::{
    Answered, DeviceActor, DeviceBuilder, DeviceHandle, DEFAULT_MAILBOX_CAPACITY,
    STATUS_TRACER_SCOPE,
};
pub use assets::{AssetDocument, AssetKind, CollectDescription, ExternalAssets};
pub use context::DeviceContext;
pub use device::{
    Answer, Capabilities, CollectedEvent, Configurable, Device, Flyable, Later, Movable, Pausable,
    Preparable, Readable, Replay, Stageable, Stoppable, Triggerable,
};
pub use error::{Cause, DeviceError, StatusError};
pub use hints::Hints;
pub use propagation::TraceCarrier;
pub use reading::{now, DataKey, DataKeys, Reading, Readings};
pub use request::{DeviceOp, DeviceReply, DeviceRequest};
pub use status::{
    record_move_finish, Status, StatusBuilder, StatusResult, StatusWait, STATUS_SPAN_NAME,
};
pub use subscription::{Subscribable, Subscribers, Subscription, SUBSCRIPTION_BUFFER};
pub use tracer::{record_exception, ActiveSpan, SpanTracer};
pub use w3c::W3cTraceContext;

pub use serde_json::{json, Map, Value};
