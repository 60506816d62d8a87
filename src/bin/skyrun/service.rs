//! `skyrun service --devices DEVICES.toml [--plans DIR] [--bind ADDR]
//! [--nats URL]`: blueapi's REST API over one RunEngine and the devices of
//! a device file (see `skyrun::service`), until Ctrl-C or SIGTERM. Spans go
//! where `--trace` says (OTLP from the OTEL_* variables by default, as
//! `skyrun run`), under service name `skyrun-service`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use skyrun::config::DeviceSet;
use skyrun::service::{serve, Catalog, ServiceOptions};

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
    /// The NATS server(s) of the device file's `[[remote]]` servers.
    #[cfg(feature = "nats")]
    #[arg(long, env = "SKYRUN_NATS", value_name = "URL")]
    nats: Option<String>,
    /// How long a request to a remote device may wait for its answer.
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    remote_timeout: f64,
    /// Where spans go: none, console, jsonl:FILE or otlp
    /// [default: otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none].
    #[arg(long, value_name = "TARGET")]
    trace: Option<TraceArg>,
}

/// Runs the service until interrupted.
pub fn service(args: &ServiceArgs) -> Result<ExitCode, Failure> {
    #[allow(unused_mut)]
    let mut set = DeviceSet::load(&args.devices)?;
    if let Some((name, _)) = set.epics_devices().next() {
        return Err(Failure::Usage(anyhow!(
            "{}: device '{name}' is an EPICS device: `skyrun service` does not connect EPICS devices yet (serve them with `skyrun serve` and name that server in a [[remote]] table)",
            args.devices.display()
        )));
    }
    #[cfg(feature = "nats")]
    let remote = crate::remote::resolve(&mut set, args.nats.as_deref(), args.remote_timeout)?;
    let mut catalog = Catalog::standard();
    if let Some(dir) = &args.plans {
        catalog.add_dir(dir, &set)?;
    }
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "skyrun service: WARNING: listening on {} without authentication: anyone who can reach it may run plans",
            args.bind
        );
    }
    let telemetry = crate::tracing::process_telemetry(args.trace.clone(), "skyrun-service")?;
    let mut opts = ServiceOptions::new(args.bind);
    opts.engine_tracer = telemetry.engine_tracer();
    opts.device_tracer = telemetry.device_tracer();
    #[cfg(feature = "nats")]
    {
        opts.spawn_extra = Some(Box::new(move |devices| remote.spawn(devices)));
    }
    let plans = catalog.models().len();
    let devices = set.len();
    opts.on_listening = Some(Box::new(move |addr| {
        eprintln!("skyrun service: {plans} plans, {devices} devices; listening on http://{addr}");
    }));
    let result = serve(set, catalog, opts, crate::signals::interrupted());
    if let Err(e) = telemetry.shutdown() {
        eprintln!("skyrun service: trace export: {e}");
    }
    result
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| Failure::Runtime(anyhow!(e)))
}
