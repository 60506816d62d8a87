//! Tracing for `skyrun run`: where spans go (`--trace`, through
//! [`skyrun::telemetry::Telemetry`]), the in-process span profile
//! (`--profile`), and the report of spans that could not be exported.

use skyrun::telemetry::profile::{ProfileProcessor, ProfileReport};
use skyrun::telemetry::{Telemetry, TelemetryOptions};
use skyrun_actors::SpanTracer;

use crate::output::Out;
use crate::RunArgs;

/// Where spans go (`--trace`): `none`, `console`, `jsonl:FILE` or `otlp`.
pub use skyrun::telemetry::TraceTarget as TraceArg;

/// The tracers of a run, and what must be done with its spans at the end.
pub struct Tracing {
    /// The engine's tracer (scope `bluesky.tracing`).
    pub engine: SpanTracer,
    /// The devices' tracer (scope `ophyd.status`).
    pub device: SpanTracer,
    /// Where human output goes: stdout, unless spans are printed there.
    pub out: Out,
    telemetry: Telemetry,
    profile: Option<ProfileProcessor>,
}

/// Sets up tracing as `args` ask; errors are usage errors.
pub fn tracing_setup(args: &RunArgs) -> anyhow::Result<Tracing> {
    let target = args
        .trace
        .clone()
        .unwrap_or_else(TraceArg::from_env_default);
    // Console spans go to stdout, so human output moves to stderr.
    let out = if target == TraceArg::Console {
        Out::Stderr
    } else {
        Out::Stdout
    };
    skyrun_actors::propagation::install_propagator_from_env()?;
    if target == TraceArg::None {
        let flags: Vec<&str> = [
            (args.run_trace, "--run-trace"),
            (args.trace_all, "--trace-all"),
        ]
        .iter()
        .filter_map(|(on, f)| on.then_some(*f))
        .collect();
        if !flags.is_empty() {
            eprintln!(
                "skyrun: warning: {} given, but there is no trace target: no span will be exported (give --trace console|jsonl:FILE|otlp, or set OTEL_EXPORTER_OTLP_ENDPOINT)",
                flags.join(" and ")
            );
        }
    }
    let profile = args.profile.then(ProfileProcessor::new);
    let telemetry = Telemetry::init(
        target,
        TelemetryOptions {
            profile: profile.clone(),
            ..Default::default()
        },
    )?;
    Ok(Tracing {
        engine: telemetry.engine_tracer(),
        device: telemetry.device_tracer(),
        out,
        telemetry,
        profile,
    })
}

impl Tracing {
    /// Flushes and shuts the span pipeline down (never waiting on a dead
    /// collector for long), reports spans that could not be exported on
    /// stderr, and returns the profile when `--profile` asked for one.
    pub fn finish(self) -> anyhow::Result<Option<ProfileReport>> {
        let profile = self.profile.as_ref().map(ProfileProcessor::report);
        let exporting = *self.telemetry.target() != TraceArg::None;
        // A collector that is down or slow never fails the run: say so and go on.
        match self.telemetry.finish() {
            Ok(summary) if exporting && !summary.is_clean() => eprintln!("skyrun: {summary}"),
            Ok(_) => {}
            Err(e) => eprintln!("skyrun: trace export: {e}"),
        }
        Ok(profile)
    }
}
