//! How a [`RunEngine`] is set up: its [`EngineOptions`] and the
//! [`RunEngineBuilder`] that starts the engine actor (inside an actix
//! system, or [`NoSystem`] says why not).

use std::rc::Rc;
use std::sync::Arc;

use actix::Actor;
use serde_json::{Map, Value};
use skyrun_actors::SpanTracer;

use super::control::AtomicState;
use super::core::EngineCore;
use super::registry::Registry;
use super::{EngineActor, RunEngine};
use crate::subscriptions::{Dispatcher, DEFAULT_DOCUMENT_BUFFER};
use crate::telemetry::spans::ENGINE_SCOPE;

/// Default of [`EngineOptions::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Default of [`EngineOptions::max_rewind_messages`].
pub const DEFAULT_MAX_REWIND_MESSAGES: usize = 100_000;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Record a span for every message, not only Bluesky's set/wait/complete/collect.
    pub trace_all_messages: bool,
    /// Make the run span the parent of every span of its run (one run, one trace),
    /// instead of Bluesky's parenting, which splits a run over many traces.
    pub run_trace: bool,
    /// Metadata added to every start document.
    pub metadata: Map<String, Value>,
    /// Documents buffered for subscribers before the engine waits for them.
    pub document_buffer: usize,
    /// Messages kept since the last checkpoint for a rewind on resume. A plan
    /// that sends more without a checkpoint becomes not rewindable until its
    /// next checkpoint (as after `clear_checkpoint`), so memory stays bounded.
    pub max_rewind_messages: usize,
    /// How long a device may take to answer a request (not to complete its
    /// Status) before the message fails; `None` waits forever.
    pub request_timeout: Option<std::time::Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            trace_all_messages: false,
            run_trace: false,
            metadata: Map::new(),
            document_buffer: DEFAULT_DOCUMENT_BUFFER,
            max_rewind_messages: DEFAULT_MAX_REWIND_MESSAGES,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
        }
    }
}

/// Builds a [`RunEngine`].
#[must_use]
pub struct RunEngineBuilder {
    opts: EngineOptions,
    tracer: SpanTracer,
}

impl RunEngineBuilder {
    /// The default options, Bluesky's span scope.
    pub(super) fn new() -> Self {
        RunEngineBuilder {
            opts: EngineOptions::default(),
            tracer: SpanTracer::global(ENGINE_SCOPE),
        }
    }

    /// Records engine spans with `tracer` (default: the global `bluesky.tracing` tracer).
    pub fn tracer(mut self, tracer: SpanTracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// See [`EngineOptions::trace_all_messages`].
    pub fn trace_all_messages(mut self, on: bool) -> Self {
        self.opts.trace_all_messages = on;
        self
    }

    /// See [`EngineOptions::run_trace`].
    pub fn run_trace(mut self, on: bool) -> Self {
        self.opts.run_trace = on;
        self
    }

    /// Adds `key: value` to every start document.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.opts.metadata.insert(key.into(), value.into());
        self
    }

    /// See [`EngineOptions::request_timeout`].
    pub fn request_timeout(mut self, limit: Option<std::time::Duration>) -> Self {
        self.opts.request_timeout = limit;
        self
    }

    /// See [`EngineOptions::max_rewind_messages`].
    pub fn max_rewind_messages(mut self, n: usize) -> Self {
        self.opts.max_rewind_messages = n;
        self
    }

    /// See [`EngineOptions::document_buffer`].
    pub fn document_buffer(mut self, n: usize) -> Self {
        self.opts.document_buffer = n;
        self
    }

    /// Starts the engine actor on the current arbiter (inside an actix system).
    ///
    /// # Panics
    /// Outside an actix system, with a message saying so; [`try_build`](Self::try_build)
    /// returns that as an error instead.
    pub fn build(self) -> RunEngine {
        match self.try_build() {
            Ok(re) => re,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the engine actor, or says why it cannot: it needs to run inside
    /// an actix system (`actix::System::new().block_on(async { ... })`, or
    /// `#[actix::main]`).
    ///
    /// ```
    /// let Err(e) = skyrun::RunEngine::builder().try_build() else { panic!("no system here") };
    /// assert!(e.to_string().contains("actix::System"));
    /// ```
    pub fn try_build(self) -> Result<RunEngine, NoSystem> {
        if actix::System::try_current().is_none() || !in_local_set() {
            return Err(NoSystem);
        }
        let state = Arc::new(AtomicState::default());
        let docs = Arc::new(Dispatcher::new(self.opts.document_buffer));
        let registry = Arc::new(Registry::default());
        let core = Rc::new(EngineCore::new(
            state.clone(),
            docs.clone(),
            self.tracer,
            self.opts,
            registry.clone(),
        ));
        let addr = EngineActor { core }.start();
        Ok(RunEngine {
            addr,
            state,
            docs,
            registry,
            suspenders: Default::default(),
        })
    }
}

/// [`RunEngine`]s are actix actors: they start only inside an actix system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a RunEngine must be created inside an actix::System: wrap the code in \
     `actix::System::new().block_on(async {{ ... }})` (or use `#[actix::main]`)"
)]
pub struct NoSystem;

/// Whether we are inside a tokio LocalSet (where actix spawns its actors).
fn in_local_set() -> bool {
    // `spawn_local` panics outside a LocalSet; a LocalSet is current when
    // the runtime handle exists and actix's arbiter is running on this thread.
    tokio::runtime::Handle::try_current().is_ok() && actix::Arbiter::try_current().is_some()
}
