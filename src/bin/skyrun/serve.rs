//! `skyrun serve DEVICES.toml --nats URL --name SERVER`: a device server
//! process. It starts the devices of a device file as actors and answers
//! requests for them over NATS (see `skyrun_remote`), exporting its own
//! spans (service name `skyrun-serve-SERVER` unless `OTEL_SERVICE_NAME`
//! says otherwise) until Ctrl-C or SIGTERM, or until NATS closes the
//! connection.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use skyrun::config::{DeviceKind, DeviceSet};
use skyrun_remote::{connect_nats, DeviceServer, ServedDevice};

use crate::tracing::TraceArg;
use crate::Failure;

/// Arguments of `skyrun serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The device file (TOML) of the devices to serve.
    devices: PathBuf,
    /// The NATS server(s) to connect to, comma-separated for a cluster.
    #[arg(long, env = "SKYRUN_NATS", value_name = "URL")]
    nats: String,
    /// The server's name, as `[[remote]] server = "NAME"` names it.
    #[arg(long, value_name = "SERVER")]
    name: String,
    /// Where spans go: none, console, jsonl:FILE or otlp
    /// [default: otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none].
    #[arg(long, value_name = "TARGET")]
    trace: Option<TraceArg>,
    /// Heartbeat interval in seconds (clients fail pending requests when heartbeats stop).
    #[arg(long, value_name = "SECS", default_value_t = 0.25)]
    heartbeat: f64,
    /// Also answer bare echo requests (the limit `skyrun bench --scenario remote` compares with).
    #[arg(long, hide = true)]
    echo: bool,
    /// The device file's EPICS devices are connected before serving.
    #[cfg(feature = "epics")]
    #[command(flatten)]
    epics: crate::epics::EpicsArgs,
}

fn kind_name(k: DeviceKind) -> String {
    k.as_str().to_owned()
}

/// Runs the device server until interrupted.
pub fn serve(args: &ServeArgs) -> Result<ExitCode, Failure> {
    let set = DeviceSet::load(&args.devices)?;
    if let Some(r) = set.remotes().first() {
        return Err(Failure::Usage(anyhow!(
            "{}: a device server serves its own devices: [[remote]] tables cannot be served",
            r.location
        )));
    }
    if !(args.heartbeat.is_finite() && args.heartbeat > 0.0 && args.heartbeat <= 60.0) {
        return Err(Failure::Usage(anyhow!(
            "--heartbeat must be between 0 and 60 seconds, got {}",
            args.heartbeat
        )));
    }
    #[cfg(feature = "epics")]
    let epics = args.epics.resolve(&set)?;
    #[cfg(not(feature = "epics"))]
    crate::load::no_epics(&set)?;
    let telemetry = crate::tracing::process_telemetry(
        args.trace.clone(),
        &format!("skyrun-serve-{}", args.name),
    )?;
    let tracer = telemetry.device_tracer();
    let system = actix::System::new();
    let result = system.block_on(async {
        #[allow(unused_mut)]
        let mut devices = set.spawn(tracer.clone());
        // Kept while serving: the EPICS devices' client.
        #[cfg(feature = "epics")]
        let _ca = epics.spawn(&mut devices, &tracer);
        let served: Vec<ServedDevice> = devices
            .iter()
            .map(|(name, h)| ServedDevice {
                handle: h.clone(),
                kind: set.kind(name).map(kind_name),
            })
            .collect();
        let server = DeviceServer::new(&args.name, served)
            .map_err(|e| Failure::Usage(e.into()))?
            .heartbeat(Duration::from_secs_f64(args.heartbeat));
        let nats = connect_nats(
            &args.nats,
            &format!("skyrun serve {}", args.name),
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| Failure::Runtime(e.into()))?;
        eprintln!(
            "skyrun serve: '{}' serves {} device{} on {}",
            args.name,
            devices.len(),
            if devices.len() == 1 { "" } else { "s" },
            args.nats
        );
        let echo = {
            let (nats, name, on) = (nats.clone(), args.name.clone(), args.echo);
            async move {
                if on {
                    skyrun_remote::bench::serve_echo(nats, &name).await
                } else {
                    std::future::pending().await
                }
            }
        };
        tokio::select! {
            r = server.serve(nats) => r.map_err(|e| Failure::Runtime(e.into())),
            r = echo => r.map_err(|e| Failure::Runtime(e.into())),
            () = crate::signals::interrupted() => Ok(()),
        }
    });
    if let Err(e) = telemetry.shutdown() {
        eprintln!("skyrun serve: trace export: {e}");
    }
    result.map(|()| ExitCode::SUCCESS)
}
