//! `skyrun service`: blueapi's REST API (1.21.1) over a RunEngine, so
//! blueapi's own client (`blueapi controller ...`) drives skyrun unchanged.
//!
//! The service sits on top of the engine: the engine, the devices and the
//! config module know nothing of it.
//!
//! * The **[`Backend`]** (`backend.rs`) is what is served: the plans (with
//!   the JSON schema of their parameters), the devices, and the engine that
//!   runs a task and takes pause, resume, abort and stop. `skyrun service`
//!   serves a [`FileBackend`] (`environment.rs`); the Python package serves
//!   Python plan functions and devices on its RunEngine through
//!   [`serve_backend`], with the same routes and worker.
//! * The **engine thread** (`engine_thread.rs`) is an actix system that owns
//!   the RunEngine and the devices of a device file; it takes requests (run
//!   a plan file as a task, pause, resume, abort, stop, ping) over a channel.
//! * The **[`Worker`]** (`worker.rs`) keeps blueapi's task records (pending,
//!   active, complete with an outcome), refuses a second active task, maps
//!   the engine's state to blueapi's `WorkerState`, and publishes each
//!   document of the active task (also to [`ServiceOptions::task_documents`],
//!   which `skyrun service --nats` sends to JetStream), its progress
//!   (`progress.rs`: each run's points done of its `num_points`) and each
//!   state change as an update (the WorkerEvents and ProgressEvents also
//!   to [`ServiceOptions::task_events`], to JetStream with `--nats`).
//! * The **[`Environment`]** (`environment.rs`): the device file's devices
//!   and the catalog's plans, loaded again on `DELETE /environment` while no
//!   task runs.
//! * The **[`Catalog`]** (`catalog.rs`) lists the plans with the JSON schema
//!   of their parameters and checks a task's parameters against it (422
//!   naming the field, as pydantic does) and against the device file.
//! * The **task record** ([`TaskRecord`], `record.rs`) keeps the tasks so a
//!   restart lists them and reports a task that was running when the
//!   process died as lost: on disk, one JSON-lines file ([`TaskStore`],
//!   `store.rs`), or shared by several services through a key-value
//!   [`Bucket`] ([`SharedRecord`], `shared.rs`; `skyrun service --nats`: a
//!   JetStream key-value bucket), each service listing the others' tasks.
//! * **Access** (`auth.rs`): with [`Tokens`] (`--token-file`), every route
//!   but `/config/oidc` and `/healthz` (which blueapi's client calls before
//!   it has a token) answers 401 without a known bearer token; a service
//!   bound to a non-loopback address without tokens refuses to start unless
//!   told that anyone on the network may run plans (then it says so).
//! * The **routes** (`routes.rs`, `ws.rs`) answer HTTP on a tokio runtime
//!   of their own (axum): `/plans`, `/devices`, `/worker/state`,
//!   `/worker/task`, `/tasks`, `/environment`, `/config/oidc`, `/healthz`
//!   and the WebSocket `/api/v2/run_plan`.
//!
//! Unlike blueapi, a paused task stays paused inside the engine's run and
//! resumes from its checkpoint to end in success. The client's
//! `traceparent` (on `PUT /worker/task` or the WebSocket handshake) parents
//! the task's span `task`, which parents the run.
//!
//! ```no_run
//! use skyrun::config::DeviceSet;
//! use skyrun::service::{serve, Catalog, ServiceOptions};
//! let set = DeviceSet::load("examples/beamline.toml".as_ref()).unwrap();
//! let opts = ServiceOptions::new("127.0.0.1:8000".parse().unwrap());
//! serve(set, Catalog::standard(), opts, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .unwrap();
//! ```

mod auth;
mod backend;
mod catalog;
mod engine_thread;
mod environment;
pub mod model;
mod progress;
mod record;
mod routes;
mod shared;
mod store;
mod worker;
mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use skyrun_actors::SpanTracer;
use tokio::sync::broadcast;

pub use auth::{check_exposure, open_warning, TokenFileError, Tokens};
pub use backend::{
    Backend, BoxFuture, ControlReq, DocumentSink, Ended, Job, Prepared, TaskDocumentSink,
    TaskEventSink, TaskSpan,
};
pub use catalog::{Catalog, CatalogPlan};
pub use environment::{Environment, FileBackend, Loaded, Loader};
pub use progress::Progress;
pub use record::{OpenedRecord, PeerTask, RecordError, TaskRecord};
pub use routes::ENGINE_LIMIT;
pub use shared::{
    valid_service_id, Bucket, BucketEntry, MemoryBucket, OpenedShared, SharedRecord, HEARTBEAT,
    PRESUMED_GONE,
};
pub use store::TaskStore;
pub use worker::{BeginError, ReloadError, SubmitError, Update, Worker, MAX_TASKS};

use crate::config::{DeviceSet, Devices};

/// The largest request body accepted (413 beyond it).
pub const MAX_BODY: usize = 256 * 1024;

/// Adds devices to the running set once the engine's actix system runs.
pub type SpawnExtra = Box<dyn FnOnce(&mut Devices) + Send>;

/// How the service runs. [`serve`] uses them all; [`serve_backend`] does
/// not use the engine's (`engine_tracer`, `device_tracer`, `spawn_extra`,
/// `reload`).
pub struct ServiceOptions {
    /// Where to listen (port 0: any free port; the address is printed).
    pub bind: SocketAddr,
    /// The engine's tracer (the `task` span and the run's spans).
    pub engine_tracer: SpanTracer,
    /// The devices' tracer.
    pub device_tracer: SpanTracer,
    /// Adds devices once the engine's actix system runs (remote proxies).
    pub spawn_extra: Option<SpawnExtra>,
    /// Called with the address once the service listens.
    pub on_listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    /// The folder of the task record (`tasks.jsonl`); `None`: tasks live in
    /// memory only (unless `task_record` is given).
    pub state_dir: Option<PathBuf>,
    /// The task record, already open (a [`SharedRecord`]); it takes the
    /// place of `state_dir`'s file.
    pub task_record: Option<OpenedRecord>,
    /// Loads the devices and plans again (`DELETE /environment`); `None`:
    /// the service cannot reload (409).
    pub reload: Option<Loader>,
    /// The bearer tokens every route but `/config/oidc` and `/healthz`
    /// requires; `None`: no authentication.
    pub tokens: Option<Tokens>,
    /// Whether to listen on a non-loopback address without tokens (with a
    /// warning on stderr that anyone on the network may run plans); without
    /// it, such an address is refused ([`ServiceError::Unprotected`]).
    pub allow_unauthenticated: bool,
    /// Also given every document of every task, with the task's id
    /// (`skyrun service --nats`: the documents to JetStream).
    pub task_documents: Option<TaskDocumentSink>,
    /// Also given every WorkerEvent and ProgressEvent of every task, with
    /// the task's id (`skyrun service --nats`: to JetStream).
    pub task_events: Option<TaskEventSink>,
}

impl ServiceOptions {
    /// Options with the global tracers, nothing extra.
    pub fn new(bind: SocketAddr) -> Self {
        ServiceOptions {
            bind,
            engine_tracer: SpanTracer::global(crate::telemetry::spans::ENGINE_SCOPE),
            device_tracer: SpanTracer::global("ophyd.status"),
            spawn_extra: None,
            on_listening: None,
            state_dir: None,
            task_record: None,
            reload: None,
            tokens: None,
            allow_unauthenticated: false,
            task_documents: None,
            task_events: None,
        }
    }
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The engine thread or the runtime could not start, or the server failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A non-loopback address without tokens, and not allowed.
    #[error(
        "refusing to listen on {addr} without authentication: anyone on the network could run \
         plans; give --token-file FILE (bearer tokens, one a line), or --allow-unauthenticated \
         if that is what you want"
    )]
    Unprotected {
        /// The address.
        addr: SocketAddr,
    },
    /// The task record could not be opened.
    #[error(transparent)]
    Store(#[from] RecordError),
}

/// The whole HTTP application over `worker`; with `tokens`, every route
/// but `/healthz` and `/config/oidc` (blueapi's open ones) requires one.
pub fn app(worker: Arc<Worker>, tokens: Option<Tokens>) -> Router {
    let rest = routes::rest();
    let guarded = Router::new()
        .merge(rest.clone())
        .nest("/api/v1", rest)
        .route("/api/v2/run_plan", get(ws::run_plan))
        .fallback(|| async { routes::detail(StatusCode::NOT_FOUND, "Not Found") });
    let guarded = match tokens {
        Some(t) => guarded.layer(axum::middleware::from_fn_with_state(
            Arc::new(t),
            auth::require_token,
        )),
        None => guarded,
    };
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/config/oidc", get(routes::oidc))
        .merge(guarded)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(worker)
}

/// Runs the service on `set` with `catalog` until `shutdown` completes.
pub fn serve(
    set: DeviceSet,
    catalog: Catalog,
    mut opts: ServiceOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let engine_tracer = opts.engine_tracer.clone();
    let device_tracer = opts.device_tracer.clone();
    let spawn_extra = opts.spawn_extra.take();
    let reload = opts.reload.take();
    serve_backend(
        move |on_document| {
            let (link, _engine) = engine_thread::start(engine_thread::EngineSetup {
                set: set.clone(),
                engine_tracer,
                device_tracer,
                spawn_extra,
                on_document,
            })?;
            let env = Environment { set, catalog };
            Ok(Arc::new(FileBackend::new(link, env, reload)))
        },
        opts,
        shutdown,
    )
}

/// Runs the service over the backend `start` makes (given the subscriber
/// its engine must call with every document) until `shutdown` completes.
/// A non-loopback `bind` without tokens is refused unless
/// `allow_unauthenticated`, which prints a warning on stderr.
pub fn serve_backend(
    start: impl FnOnce(DocumentSink) -> Result<Arc<dyn Backend>, ServiceError>,
    mut opts: ServiceOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let exposure = check_exposure(opts.bind, opts.tokens.is_some(), opts.allow_unauthenticated)?;
    if let Some(warning) = exposure {
        eprintln!("{warning}");
    }
    let store = match opts.task_record.take() {
        Some(record) => Some(record),
        None => match opts.state_dir.as_deref() {
            Some(dir) => {
                let (store, kept) = TaskStore::open(dir)?;
                Some((Box::new(store) as Box<dyn TaskRecord>, kept))
            }
            None => None,
        },
    };
    let (events, _) = broadcast::channel(4096);
    let current = Arc::new(Mutex::new(None));
    let progress = Arc::new(Mutex::new(Progress::default()));
    let task_events = opts.task_events.take().map(Arc::new);
    let backend = start(Box::new(Worker::document_sink(
        current.clone(),
        progress.clone(),
        events.clone(),
        opts.task_documents.take(),
        task_events.clone(),
    )))?;
    let worker = Arc::new(Worker::new(
        backend,
        current,
        progress,
        events,
        task_events,
        store,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("skyrun-service")
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|source| ServiceError::Bind {
                addr: opts.bind,
                source,
            })?;
        let addr = listener.local_addr()?;
        if let Some(f) = opts.on_listening {
            f(addr);
        }
        axum::serve(listener, app(worker, opts.tokens))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    })
}
