//! # skyrun-epics: EPICS Channel Access devices as skyrun actors
//!
//! Real beamline hardware is EPICS records behind IOCs. This crate makes
//! them skyrun devices with ophyd's semantics and names, hosted by
//! [`skyrun_actors::DeviceActor`] like every simulated device:
//!
//! - [`EpicsSignal`] (`read_pv`, `write_pv`) and [`EpicsSignalRO`]: one PV,
//!   read from its monitor, set by a put-with-completion or a put and a
//!   readback wait;
//! - [`EpicsMotor`] (`prefix`): a motor record, done when DMOV returns to 1
//!   after the put, refusing moves outside HLM/LLM, failing on a limit
//!   switch or a lost IOC with a reason naming the PV.
//!
//! The model: devices talk to a [`PvClient`] (skyrun's own trait, so the
//! client can be swapped); [`CaClient`] implements it on the pure-Rust
//! `epics-ca-rs` client (pinned `=0.31.0`, its licence is EPICS-style: see
//! the README), on a runtime of its own. Every PV of a device is connected
//! at once ([`connect_all`], a bounded number in flight) and monitored
//! ([`Pv`]): `read` never waits for the network. A move's or set's
//! [`Status`](skyrun_actors::Status) records the "Ophyd Status" span, with
//! span events at the put, at DMOV 0 and at DMOV 1.
//!
//! ```no_run
//! use skyrun_actors::{DeviceHandle, DeviceOp, DeviceReply};
//! use skyrun_epics::{CaClient, EpicsMotor};
//! use opentelemetry::Context;
//!
//! actix_rt::System::new().block_on(async {
//!     let ca = CaClient::start().expect("the CA client starts");
//!     let m1 = EpicsMotor::connect(ca.as_ref(), "m1", "BL:MTR1", 2.0).await.expect("m1 connects");
//!     let m1 = DeviceHandle::spawn(m1);
//!     let DeviceReply::Status(st) = m1.request(DeviceOp::Set(1.0.into()), &Context::new()).await.unwrap()
//!         else { unreachable!() };
//!     st.wait().await.expect("the move succeeds");
//! });
//! ```
//!
//! Where things live: `client.rs` (the trait), `ca.rs` (Channel Access),
//! `pva.rs` (PVAccess, the experimental `pva` feature), `protocols.rs`
//! (both behind one client, by the name's `pva://` / `ca://` prefix),
//! `runtime.rs` (a client's own runtime),
//! `pv.rs` (a connected, monitored PV; connecting many), `signal.rs`,
//! `motor.rs` (the devices), `subscription.rs` (a PV's monitor as a
//! device's subscriptions: the engine's `monitor`), `devices.rs`
//! (connecting many devices at once, as a device file or the Python
//! package declares them), `error.rs`.

#![warn(missing_docs)]

mod ca;
mod client;
mod devices;
mod error;
mod motor;
mod protocols;
mod pv;
#[cfg(feature = "pva")]
mod pva;
mod runtime;
mod signal;
mod subscription;

pub use ca::CaClient;
pub use client::{PvChannel, PvClient, PvEvent, PvMeta, PvUpdate};
pub use devices::{connect_devices, ConnectedDevice, EpicsSpec};
pub use error::{ClientError, ConnectError};
pub use motor::{EpicsMotor, MOTOR_FIELDS};
pub use protocols::PvClients;
pub use pv::{connect_all, Pv, PvState, MAX_IN_FLIGHT};
#[cfg(feature = "pva")]
pub use pva::PvaClient;
pub use signal::{EpicsSignal, EpicsSignalRO, SetOptions, DEFAULT_CONNECT_TIMEOUT};
