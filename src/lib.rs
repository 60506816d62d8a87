//! # skyrun: an actor-based run engine for experiment orchestration
//!
//! skyrun executes *plans* against *devices*, with the semantics of
//! [Bluesky](https://blueskyproject.io)'s RunEngine and ophyd devices, and
//! OpenTelemetry tracing built in.
//!
//! * A **plan** is Rust async code given a [`PlanCtx`]. It sends [`Msg`]s
//!   (`open_run`, `set`, `trigger`, `read`, `create`/`save`, `wait`,
//!   `checkpoint`, `kickoff`/`complete`/`collect`, `close_run`, ...) and gets
//!   their results back, so it can react to what it reads. [`plan_stubs`] has
//!   the building blocks, [`plans`] the standard plans (count, scan,
//!   rel_scan, list_scan, grid_scan, fly) and [`preprocessors`] the wrappers.
//! * The **[`RunEngine`]** is an actix actor. It steps the plan, processes
//!   each message with one small handler, and emits event-model
//!   [`Document`]s (start, descriptor, event, stop) to subscribers, in order,
//!   on a thread of their own. It can be paused (now, or at the next
//!   checkpoint), resumed (rewinding to the last checkpoint), aborted,
//!   stopped or halted; every exit path emits the stop document.
//! * **Devices** are actors too (see [`skyrun_actors`]): a `set` returns a
//!   [`Status`] that the device completes later.
//! * **Tracing**: every message carries the plan's span context, and every
//!   device request carries it across the actor boundary through an
//!   OpenTelemetry propagator, so the device's "Ophyd Status" span is a child
//!   of the engine's "Bluesky RunEngine set" span, as in Bluesky.
//! * **Commands**: a [`Msg`] is untyped, in Bluesky's form (command, obj,
//!   args, kwargs). The command table ([`msg::command`]) checks it once and
//!   turns it into typed arguments; each command declares its reply kind,
//!   whether a rewind replays it and how it is traced, and the engine binds
//!   a handler to each.
//!   [`RunEngine::register_command`] adds commands at run time.
//! * **[`console`]**: what the `skyrun` command shows, for your own programs
//!   too: the live event table, the run summary line, Ctrl-C handling as
//!   Bluesky's `SigintHandler`, the documents file writer and (feature `cli`,
//!   on by default) the progress bar.
//! * **Looking at a run**: [`callbacks`] has Bluesky's PeakStats as a
//!   subscriber; [`timeline`] renders spans as a self-contained HTML page,
//!   and [`telemetry::chrome`] as a Chrome trace (Perfetto).
//!
//! ## Where things live
//!
//! Data flows one way: plan → engine → device → Status → span.
//!
//! | what | where |
//! |---|---|
//! | the message model: messages, replies, errors (knows nothing of the engine) | [`msg`], [`reply`], `error.rs` |
//! | the command table (one entry per command: name, typed arguments, reply kind, rewind, tracing) | [`msg::command`], `msg/args/` |
//! | plans, stubs, standard plans, wrappers | [`plan`], [`plan_stubs`], [`plans`], [`preprocessors`] |
//! | the engine loop (pause, rewind, interrupts, cleanup) | `run_engine/core.rs` |
//! | the command handlers, bound to the table's commands | `run_engine/commands.rs`, `run_engine/handlers/` (runs, bundling, statuses, devices, flow) |
//! | registered commands | `run_engine/registry.rs` |
//! | documents and the event bundle | [`documents`], `run_engine/bundler.rs` |
//! | engine-side tracing (span names, attributes, the propagated context) | [`telemetry::spans`], `run_engine/request_context.rs` |
//! | exporters (OTLP, console, jsonl), profile | [`telemetry`] |
//! | device-side tracing (Status spans, propagation) | `skyrun_actors::{status, propagation, tracer}` |
//! | each simulated device | [`skyrun_actors::sim`] (`axis.rs`, `gauss.rs`, `signal.rs`, `flyer.rs`) |
//! | plan and device files | [`config`] |
//! | blueapi's REST API over the engine (feature `service`) | `service/` (`skyrun service`) |
//! | the `skyrun` command | `src/bin/skyrun/` |
//! | what `skyrun` shows (table, summary, Ctrl-C, documents file) | [`console`] |
//! | peak statistics, the HTML timeline, the Chrome trace | [`callbacks`], [`timeline`], [`telemetry::chrome`] |
//!
//! Features: `cli` (default) builds the `skyrun` binary and
//! `console::progress`, and brings `clap`, `indicatif` and `anyhow`;
//! `service` (default) brings `axum` for `service` (blueapi's REST API);
//! a library user can leave them out with `default-features = false`.
//!
//! ```
//! use skyrun::{plans, RunEngine, Document};
//! use skyrun_actors::{sim::{SynAxis, SynGauss}, DeviceHandle};
//! use std::sync::{Arc, Mutex};
//!
//! actix::System::new().block_on(async {
//!     let re = RunEngine::new();
//!     let motor = SynAxis::new("motor").with_velocity(1000.0);
//!     let det = SynGauss::new("det", motor.probe(), 0.0, 10.0, 1.0);
//!     let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));
//!
//!     let peak = Arc::new(Mutex::new((f64::MIN, 0.0)));
//!     let p = peak.clone();
//!     re.subscribe(move |_, doc| {
//!         if let Document::Event(e) = doc {
//!             let (y, x) = (e.data["det"].as_f64().unwrap(), e.data["motor"].as_f64().unwrap());
//!             let mut best = p.lock().unwrap();
//!             if y > best.0 { *best = (y, x); }
//!         }
//!     });
//!     re.run(plans::scan(vec![det], &motor, -2.0, 2.0, 5)).await.unwrap();
//!     assert_eq!(*peak.lock().unwrap(), (10.0, 0.0));
//! });
//! ```

#![warn(missing_docs)]

pub mod bench;
pub mod callbacks;
pub mod config;
pub mod console;
pub mod documents;
mod error;
pub mod msg;
pub mod plan;
pub mod plan_stubs;
pub mod plans;
pub mod preprocessors;
pub mod reply;
pub mod run_engine;
#[cfg(feature = "service")]
pub mod service;
pub mod subscriptions;
pub mod telemetry;
pub mod timeline;

pub use documents::{Document, Event, EventDescriptor, EventPage, ExitStatus, RunStart, RunStop};
pub use error::{BlueskyException, ControlError, Interrupt, PlanError, RunError};
pub use msg::{Command, Msg, MsgOrigin};
pub use plan::{MsgHook, MsgPoint, Plan, PlanCtx, PlanResult};
pub use reply::{Foreign, Location, Reply, ReplyKind, RunSummary};
pub use run_engine::{
    CommandContext, Condition, EngineOptions, EngineState, NoSystem, ReplayHook, RunEngine,
    RunEngineBuilder, Runnable, Suspender, SuspenderError, SuspenderId, Suspension,
};
pub use skyrun_actors::{self as actors, Status};
pub use subscriptions::SubscriptionId;
