//! Tracing for `skyrun run`: where spans go (`--trace`, through
//! [`skyrun::telemetry::Telemetry`]), the in-process span profile
//! (`--profile`), the span records of `--timeline`, and the report of spans
//! that could not be exported.
//!
//! With `--trace console` on a terminal that also shows the live table, the
//! spans are held until the table is done and then printed, so span JSON
//! and table rows never interleave.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use skyrun::telemetry::profile::{ProfileProcessor, ProfileReport};
use skyrun::telemetry::record::{SpanRecord, SpanRecorder};
use skyrun::telemetry::{ConsoleOut, Telemetry, TelemetryOptions};
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
    record: Option<SpanRecorder>,
    held: Option<HeldSpans>,
}

/// Console span output kept in memory while the live table owns the terminal.
#[derive(Clone, Default)]
struct HeldSpans(Arc<Mutex<Vec<u8>>>);

impl Write for HeldSpans {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the run's spans left behind, for the end of `skyrun run`.
pub struct Finished {
    /// The profile, when `--profile` asked for one.
    pub profile: Option<ProfileReport>,
    /// Every span, when `--timeline` asked for them.
    pub spans: Option<Vec<SpanRecord>>,
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
    // Both streams on one terminal, with the live table: hold the spans.
    let live_shown = !args.quiet && out.is_terminal();
    let held = (target == TraceArg::Console && live_shown && Out::Stdout.is_terminal())
        .then(HeldSpans::default);
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
    let record = args.timeline.is_some().then(SpanRecorder::new);
    let telemetry = Telemetry::init(
        target,
        TelemetryOptions {
            profile: profile.clone(),
            record: record.clone(),
            console_out: match &held {
                Some(h) => ConsoleOut::writer(h.clone()),
                None => ConsoleOut::Stdout,
            },
            ..Default::default()
        },
    )?;
    Ok(Tracing {
        engine: telemetry.engine_tracer(),
        device: telemetry.device_tracer(),
        out,
        telemetry,
        profile,
        record,
        held,
    })
}

impl Tracing {
    /// Flushes and shuts the span pipeline down (never waiting on a dead
    /// collector for long), prints console spans held back during the live
    /// table, reports spans that could not be exported on stderr, and
    /// returns the profile and span records that were asked for.
    pub fn finish(self) -> anyhow::Result<Finished> {
        let profile = self.profile.as_ref().map(ProfileProcessor::report);
        let exporting = *self.telemetry.target() != TraceArg::None;
        // A collector that is down or slow never fails the run: say so and go on.
        match self.telemetry.finish() {
            Ok(summary) if exporting && !summary.is_clean() => eprintln!("skyrun: {summary}"),
            Ok(_) => {}
            Err(e) => eprintln!("skyrun: trace export: {e}"),
        }
        if let Some(held) = self.held {
            let bytes = std::mem::take(&mut *held.0.lock());
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
        }
        Ok(Finished {
            profile,
            spans: self.record.map(|r| r.take()),
        })
    }
}

/// The telemetry of a long-running process (`serve`, `service`): the
/// propagator from `OTEL_PROPAGATORS`, spans to `trace` (default: OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set), service name `OTEL_SERVICE_NAME`,
/// else `default_name`.
#[cfg(any(feature = "nats", feature = "service"))]
pub fn process_telemetry(
    trace: Option<TraceArg>,
    default_name: &str,
) -> Result<Telemetry, crate::Failure> {
    use crate::Failure;
    skyrun_actors::propagation::install_propagator_from_env()
        .map_err(|e| Failure::Usage(e.into()))?;
    let target = trace.unwrap_or_else(TraceArg::from_env_default);
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_name.to_owned());
    Telemetry::init(
        target,
        TelemetryOptions {
            service_name: Some(service_name),
            ..Default::default()
        },
    )
    .map_err(|e| Failure::Usage(e.into()))
}
