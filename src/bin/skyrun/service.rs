//! `skyrun service --devices DEVICES.toml [--plans DIR] [--bind ADDR]
//! [--state-dir DIR] [--nats URL [--documents-prefix PREFIX] [--tasks-bucket
//! NAME] [--service-id ID]]
//! [--connect-timeout SECS] [--token-file
//! FILE | --allow-unauthenticated]`: blueapi's REST
//! API over one RunEngine and the devices of a device file (see
//! `skyrun::service`; its EPICS devices connected as `skyrun run` connects
//! them, `[[remote]]` ones found on NATS), until Ctrl-C or SIGTERM. Spans go
//! where `--trace` says (OTLP from the OTEL_* variables by default, as
//! `skyrun run`), under service name `skyrun-service`. With `--nats`, every
//! task's documents also go to JetStream through the publisher of `skyrun
//! run --documents nats:PREFIX`, each with its `task_id` header, and so do
//! its WorkerEvents and ProgressEvents (JSON, `PREFIX.worker_event`,
//! `PREFIX.progress_event`); the task record is then a JetStream key-value
//! bucket the services on that NATS share (`service_nats.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use clap::Args;
use skyrun::config::DeviceSet;
use skyrun::service::{
    check_exposure, serve, Catalog, Environment, ServiceOptions, SpawnExtra, Tokens,
};

use crate::tracing::TraceArg;
use crate::Failure;

/// Arguments of `skyrun service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The device file (TOML) of the devices the plans run on.
    #[arg(long, short = 'd', value_name = "DEVICES.toml")]
    devices: PathBuf,
    /// A folder of plan files (TOML), each offered as a plan named by its file stem.
    #[arg(long, value_name = "DIR")]
    plans: Option<PathBuf>,
    /// Where to listen: loopback unless told otherwise (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Bearer tokens, one a line (not readable by every user): every route
    /// but /config/oidc and /healthz then requires `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Listen on a non-loopback --bind without --token-file: anyone on the
    /// network who can reach the service may run plans (said on stderr at start).
    #[arg(long, conflicts_with = "token_file")]
    allow_unauthenticated: bool,
    /// The NATS server(s) of the device file's `[[remote]]` servers.
    #[cfg(feature = "nats")]
    #[arg(long, env = "SKYRUN_NATS", value_name = "URL")]
    nats: Option<String>,
    /// With --nats: the subject prefix of every task's documents on JetStream
    /// (`PREFIX.<document name>`, bluesky-nats's format, header `task_id`;
    /// stream PREFIX with '.' as '_', created when missing).
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "PREFIX", default_value = "skyrun.service")]
    documents_prefix: String,
    /// With --nats: the JetStream key-value bucket of the task record, shared
    /// by the services on that NATS (created when missing).
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "NAME", default_value = "skyrun_tasks")]
    tasks_bucket: String,
    /// With --nats: this service's id in the shared task record [default:
    /// the one kept in the state folder's `service-id`, made at the first start].
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "ID")]
    service_id: Option<String>,
    /// How long a request to a remote device may wait for its answer.
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    remote_timeout: f64,
    /// The folder of the task record (`tasks.jsonl`), so a restart lists the
    /// tasks [default: $XDG_STATE_HOME/skyrun/service, else
    /// ~/.local/state/skyrun/service].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Keep the tasks in memory only: a restart forgets them.
    #[arg(long, conflicts_with = "state_dir")]
    no_state: bool,
    /// Where spans go: none, console, jsonl:FILE or otlp
    /// [default: otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none].
    #[arg(long, value_name = "TARGET")]
    trace: Option<TraceArg>,
    /// How the device file's EPICS PVs connect (at start and at each reload).
    #[cfg(feature = "epics")]
    #[command(flatten)]
    epics: crate::epics::EpicsArgs,
}

/// Runs the service until interrupted.
pub fn service(args: &ServiceArgs) -> Result<ExitCode, Failure> {
    let tokens = match &args.token_file {
        Some(path) => Some(Tokens::load(path).map_err(|e| Failure::Usage(anyhow!(e)))?),
        None => None,
    };
    // Refused before anything is loaded or connected.
    check_exposure(args.bind, tokens.is_some(), args.allow_unauthenticated)
        .map_err(|e| Failure::Usage(anyhow!(e)))?;
    let telemetry = crate::tracing::process_telemetry(args.trace.clone(), "skyrun-service")?;
    let files = Files {
        devices: args.devices.clone(),
        plans: args.plans.clone(),
        #[cfg(feature = "nats")]
        nats: args.nats.clone(),
        #[cfg(feature = "nats")]
        remote_timeout: args.remote_timeout,
        #[cfg(feature = "epics")]
        epics: EpicsLink {
            timeout: args.epics.connect_timeout,
            tracer: telemetry.device_tracer(),
            client: Default::default(),
        },
    };
    let (env, spawn_extra) = match files.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = telemetry.shutdown();
            return Err(e);
        }
    };
    #[cfg(feature = "nats")]
    let publisher = match task_documents(args) {
        Ok(p) => p,
        Err(e) => {
            let _ = telemetry.shutdown();
            return Err(e);
        }
    };
    let mut opts = ServiceOptions::new(args.bind);
    #[cfg(feature = "nats")]
    if let Some(p) = publisher.clone() {
        let cx = opentelemetry::Context::new();
        let events = p.clone();
        opts.task_documents = Some(Box::new(move |task_id, name, doc| {
            // Failures are counted by the publisher and reported at the end.
            let _ = p.publish_tagged(name, doc, &cx, &[("task_id", task_id)]);
        }));
        opts.task_events = Some(Box::new(move |task_id, kind, json| {
            let _ = events.publish_json_tagged(kind, json, &[("task_id", task_id)]);
        }));
    }
    opts.tokens = tokens;
    opts.allow_unauthenticated = args.allow_unauthenticated;
    opts.state_dir = if args.no_state {
        None
    } else {
        let dir = args.state_dir.clone().or_else(default_state_dir);
        if dir.is_none() {
            eprintln!(
                "skyrun service: WARNING: neither XDG_STATE_HOME nor HOME is set and no --state-dir \
                 given: tasks are kept in memory only"
            );
        }
        dir
    };
    #[cfg(feature = "nats")]
    let shared = match shared_tasks(args, opts.state_dir.as_deref()) {
        Ok(s) => s.map(|s| {
            opts.task_record = Some(s.record);
            s.bucket
        }),
        Err(e) => {
            let _ = telemetry.shutdown();
            return Err(e);
        }
    };
    opts.engine_tracer = telemetry.engine_tracer();
    opts.device_tracer = telemetry.device_tracer();
    opts.spawn_extra = spawn_extra;
    opts.reload = Some(Arc::new(move || {
        files.load().map_err(|e| match e {
            Failure::Usage(e) | Failure::Runtime(e) => format!("{e:#}"),
        })
    }));
    let kept = match (&opts.task_record, &opts.state_dir) {
        (Some((record, _)), _) => record.describe(),
        (None, Some(d)) => format!("tasks kept in {}", d.display()),
        (None, None) => "tasks in memory only".into(),
    };
    let plans = env.catalog.models().len();
    let devices = env.set.len();
    opts.on_listening = Some(Box::new(move |addr| {
        eprintln!(
            "skyrun service: {plans} plans, {devices} devices, {kept}; listening on http://{addr}"
        );
    }));
    let result = serve(env.set, env.catalog, opts, crate::signals::interrupted());
    #[cfg(feature = "nats")]
    if let Some(bucket) = shared {
        crate::service_nats::finish(&bucket);
    }
    #[cfg(feature = "nats")]
    if let Some(p) = publisher {
        let report = p.finish(std::time::Duration::from_secs(30));
        if report.failed > 0 {
            eprintln!("skyrun service: documents to NATS: {report}");
        }
    }
    if let Err(e) = telemetry.shutdown() {
        eprintln!("skyrun service: trace export: {e}");
    }
    result
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| Failure::Runtime(anyhow!(e)))
}

/// With `--nats`: the JetStream publisher of every task's documents.
#[cfg(feature = "nats")]
fn task_documents(
    args: &ServiceArgs,
) -> Result<Option<Arc<skyrun_remote::documents::DocumentPublisher>>, Failure> {
    use skyrun_remote::documents::{valid_prefix, DocumentPublisher, PublisherOptions};
    let Some(url) = args.nats.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    let prefix = &args.documents_prefix;
    if !valid_prefix(prefix) {
        return Err(Failure::Usage(anyhow!(
            "--documents-prefix '{prefix}': dot-separated tokens of letters, digits, '_' and '-'"
        )));
    }
    let opts = PublisherOptions {
        stream: prefix.replace('.', "_"),
        ..Default::default()
    };
    // `--nats` also finds `[[remote]]` devices, which need no JetStream: a
    // server without it (or a stream that cannot be made) is said, not fatal.
    match DocumentPublisher::connect(url, prefix, opts) {
        Ok(p) => Ok(Some(Arc::new(p))),
        Err(e) => {
            eprintln!(
                "skyrun service: WARNING: the tasks' documents do not go to NATS at {url}: {e}"
            );
            Ok(None)
        }
    }
}

/// With `--nats`: the task record in the shared bucket; `None` without
/// `--nats`, or (said) when the bucket cannot be opened: the state folder's
/// file then keeps the tasks.
#[cfg(feature = "nats")]
fn shared_tasks(
    args: &ServiceArgs,
    state_dir: Option<&std::path::Path>,
) -> Result<Option<crate::service_nats::SharedTasks>, Failure> {
    let Some(url) = args.nats.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    if !skyrun_remote::bucket::valid_bucket(&args.tasks_bucket) {
        return Err(Failure::Usage(anyhow!(
            "--tasks-bucket '{}': letters, digits, '-' and '_'",
            args.tasks_bucket
        )));
    }
    let id = crate::service_nats::service_id(args.service_id.as_deref(), state_dir)
        .map_err(|e| Failure::Usage(anyhow!(e)))?;
    match crate::service_nats::open(url, &args.tasks_bucket, &id) {
        Ok(s) => Ok(Some(s)),
        Err(crate::service_nats::OpenError::Record(e)) => Err(Failure::Usage(anyhow!(e))),
        Err(crate::service_nats::OpenError::Bucket(e)) => {
            let instead = match state_dir {
                Some(d) => format!("kept in {} instead", d.display()),
                None => "kept in memory only".into(),
            };
            eprintln!(
                "skyrun service: WARNING: the tasks are not shared on NATS at {url} ({e}); {instead}"
            );
            Ok(None)
        }
    }
}

/// Where the devices and the plans come from, to load them again on a reload.
struct Files {
    devices: PathBuf,
    plans: Option<PathBuf>,
    #[cfg(feature = "nats")]
    nats: Option<String>,
    #[cfg(feature = "nats")]
    remote_timeout: f64,
    #[cfg(feature = "epics")]
    epics: EpicsLink,
}

/// How the service connects the device file's EPICS devices: one Channel
/// Access client for the service's life (started with the first EPICS
/// device), each load connecting the file's PVs on it (as `skyrun run`).
#[cfg(feature = "epics")]
struct EpicsLink {
    timeout: f64,
    tracer: skyrun_actors::SpanTracer,
    client: parking_lot::Mutex<Option<Arc<skyrun_epics::PvClients>>>,
}

#[cfg(feature = "epics")]
impl EpicsLink {
    /// Connects the EPICS devices of `set`; spawns them when asked.
    fn connect(&self, set: &DeviceSet) -> Result<SpawnExtra, Failure> {
        let epics = crate::epics::connect_with(set, self.timeout, || {
            let mut c = self.client.lock();
            if let Some(c) = c.as_ref() {
                return Ok(c.clone());
            }
            let started = skyrun_epics::PvClients::start()?;
            *c = Some(started.clone());
            Ok(started)
        })?;
        let tracer = self.tracer.clone();
        // The client stays in `self.client` (the service's life), so the
        // guard `spawn` returns may go.
        Ok(Box::new(move |devices| drop(epics.spawn(devices, &tracer))))
    }
}

impl Files {
    /// The device file's devices (EPICS ones connected, remote ones found
    /// on NATS) and the plans.
    #[allow(clippy::vec_init_then_push)] // the pushes depend on the features
    fn load(&self) -> Result<(Environment, Option<SpawnExtra>), Failure> {
        #[allow(unused_mut)]
        let mut set = DeviceSet::load(&self.devices)?;
        #[cfg(not(feature = "epics"))]
        crate::load::no_epics(&set)?;
        #[cfg(feature = "nats")]
        let remote = crate::remote::resolve(&mut set, self.nats.as_deref(), self.remote_timeout)?;
        let mut catalog = Catalog::standard();
        if let Some(dir) = &self.plans {
            catalog.add_dir(dir, &set)?;
        }
        // Which of them there are depends on the features.
        #[allow(unused_mut)]
        let mut extras: Vec<SpawnExtra> = Vec::new();
        #[cfg(feature = "epics")]
        extras.push(self.epics.connect(&set)?);
        #[cfg(feature = "nats")]
        extras.push(Box::new(move |devices| remote.spawn(devices)));
        let extra: Option<SpawnExtra> = (!extras.is_empty()).then(|| {
            Box::new(move |devices: &mut skyrun::config::Devices| {
                for e in extras {
                    e(devices);
                }
            }) as SpawnExtra
        });
        Ok((Environment { set, catalog }, extra))
    }
}

/// `$XDG_STATE_HOME/skyrun/service`, else `~/.local/state/skyrun/service`.
fn default_state_dir() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_STATE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/state")))
        .map(|d| d.join("skyrun/service"))
}
