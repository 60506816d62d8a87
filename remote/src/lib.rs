//! # skyrun-remote: devices in other processes and on other hosts, over NATS
//!
//! A **device server** ([`DeviceServer`], `skyrun serve DEVICES.toml --nats
//! URL --name SERVER`) hosts devices as actors and answers requests over
//! NATS. A **client** ([`RemoteClient`]) discovers a server's devices and
//! starts a [`ProxyDevice`] for each, an ordinary
//! [`DeviceHandle`](skyrun_actors::DeviceHandle) for the engine, so every plan
//! and stub works on remote devices unchanged.
//!
//! Every request carries the span context in NATS headers through the
//! global OpenTelemetry propagator (W3C by default, Jaeger with
//! `OTEL_PROPAGATORS=jaeger`), so the server's "Ophyd Status" span is the
//! child of the engine's set span, in one trace across both processes. A
//! status completes by a message back, so many sets are in flight at once.
//! Failures are explicit and bounded in time (see [`client`]).
//!
//! [`documents::DocumentPublisher`] publishes documents to JetStream in
//! bluesky-nats's wire format; [`bucket::SharedBucket`] is a JetStream
//! key-value bucket shared by several processes (`skyrun service`'s task
//! record with `--nats`).
//!
//! This crate sits on top of the device side (`skyrun-actors`); neither the
//! device side nor the engine imports it. The protocol is in [`wire`].

#![warn(missing_docs)]

pub mod bench;
pub mod bucket;
pub mod client;
pub mod documents;
mod error;
mod proxy;
mod resolve;
mod server;
pub mod wire;

pub use client::{connect_nats, RemoteClient, RemoteOptions};
pub use error::RemoteError;
pub use proxy::ProxyDevice;
pub use resolve::{discover_all, Discovered, RemoteTable};
pub use server::{DeviceServer, ServedDevice, DEFAULT_HEARTBEAT};
