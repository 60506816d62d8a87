//! The trace export pipeline: where spans go ([`TraceTarget`]), how
//! ([`TelemetryOptions`]), and the [`Telemetry`] handle that owns it and
//! shuts it down with an [`ExportReport`].
//!
//! | target | processor | output |
//! |---|---|---|
//! | `none` | none | nothing; tracers are disabled and cost nothing |
//! | `console` | simple (a span is written when it ends) | pretty JSON on stdout, as Python's `ConsoleSpanExporter` |
//! | `jsonl:FILE` | batch | one JSON object per line in `FILE` (created or truncated at init) |
//! | `chrome:FILE` | batch | the Chrome trace-event format in `FILE`, written at shutdown (see [`chrome`](super::chrome)) |
//! | `otlp` | batch | OTLP over gRPC or HTTP/protobuf |
//!
//! OTLP is configured by the standard environment variables, which explicit
//! [`TelemetryOptions`] fields override (see [`otlp`](super::otlp)); batching
//! by `OTEL_BSP_SCHEDULE_DELAY` and `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, except
//! the queue size, which is [`TelemetryOptions::max_queue_size`].
//!
//! The batch processor exports from a thread of its own, so a slow or dead
//! collector never stalls a plan: spans past the queue are dropped and
//! counted. The gRPC exporter runs on a small tokio runtime that the
//! [`Telemetry`] owns and keeps until the provider is shut down. Nothing is
//! guaranteed exported until [`Telemetry::shutdown`], which flushes, waits at
//! most [`TelemetryOptions::shutdown_timeout`], and reports what happened.
//!
//! ```
//! use skyrun::telemetry::{Telemetry, TelemetryOptions, TraceTarget};
//! let path = std::env::temp_dir().join(format!("skyrun-pipeline-doc-{}.jsonl", std::process::id()));
//! let target: TraceTarget = format!("jsonl:{}", path.display()).parse().unwrap();
//! let telemetry = Telemetry::init(target, TelemetryOptions::default()).unwrap();
//! let tracer = telemetry.engine_tracer();
//! drop(tracer.start("demo plan", &opentelemetry::Context::new(), Vec::new()));
//! let report = telemetry.shutdown().unwrap();
//! assert_eq!((report.spans_ended, report.spans_exported, report.spans_dropped), (1, 1, 0));
//! assert!(std::fs::read_to_string(&path).unwrap().contains(r#""name":"demo plan""#));
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SimpleSpanProcessor, SpanExporter,
};
use opentelemetry_sdk::Resource;
use skyrun_actors::propagation::{install_propagator_from_env, UnknownPropagator};
use skyrun_actors::{SpanTracer, STATUS_TRACER_SCOPE};

use super::chrome::ChromeExporter;
use super::console::{ConsoleExporter, ConsoleOut};
pub use super::counting::Counters;
use super::counting::{CountingExporter, EndedCounter};
use super::jsonl::{CreateFileError, JsonLinesExporter};
pub use super::otlp::OtlpProtocol;
use super::otlp::{env_var, first_env, otlp_exporter, ENDPOINT_VARS};
use super::profile::ProfileProcessor;
use super::record::SpanRecorder;
use super::spans::ENGINE_SCOPE;

/// Where spans go.
///
/// ```
/// use skyrun::telemetry::TraceTarget;
/// assert_eq!("jsonl:out/spans.jsonl".parse::<TraceTarget>().unwrap(), TraceTarget::Jsonl("out/spans.jsonl".into()));
/// assert_eq!("otlp".parse::<TraceTarget>().unwrap().to_string(), "otlp");
/// let err = "jaeger".parse::<TraceTarget>().unwrap_err();
/// assert!(err.to_string().contains("'jaeger'"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceTarget {
    /// No tracing.
    None,
    /// Pretty JSON on the console, as OpenTelemetry Python's `ConsoleSpanExporter`.
    Console,
    /// One JSON object per line in a file.
    Jsonl(PathBuf),
    /// The Chrome trace-event format (Perfetto, `chrome://tracing`), written at shutdown.
    Chrome(PathBuf),
    /// An OTLP collector (gRPC or HTTP/protobuf).
    Otlp,
}

impl TraceTarget {
    /// [`TraceTarget::Otlp`] when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, else [`TraceTarget::None`].
    pub fn from_env_default() -> TraceTarget {
        match first_env(&ENDPOINT_VARS) {
            Some(_) => TraceTarget::Otlp,
            None => TraceTarget::None,
        }
    }
}

impl FromStr for TraceTarget {
    type Err = TelemetryError;

    /// `none`, `console`, `jsonl:FILE`, `chrome:FILE` or `otlp`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(TraceTarget::None),
            "console" => Ok(TraceTarget::Console),
            "otlp" => Ok(TraceTarget::Otlp),
            _ => match (s.strip_prefix("jsonl:"), s.strip_prefix("chrome:")) {
                (Some(path), _) if !path.is_empty() => Ok(TraceTarget::Jsonl(PathBuf::from(path))),
                (_, Some(path)) if !path.is_empty() => Ok(TraceTarget::Chrome(PathBuf::from(path))),
                _ => Err(TelemetryError::InvalidTarget(s.to_owned())),
            },
        }
    }
}

impl fmt::Display for TraceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceTarget::None => f.write_str("none"),
            TraceTarget::Console => f.write_str("console"),
            TraceTarget::Jsonl(path) => write!(f, "jsonl:{}", path.display()),
            TraceTarget::Chrome(path) => write!(f, "chrome:{}", path.display()),
            TraceTarget::Otlp => f.write_str("otlp"),
        }
    }
}

/// How the pipeline is built. `Default` reads nothing but `OTEL_SERVICE_NAME`
/// (at init); every `None` field falls back to the standard environment.
///
/// ```
/// use skyrun::telemetry::{OtlpProtocol, TelemetryOptions};
/// let opts = TelemetryOptions {
///     otlp_endpoint: Some("http://127.0.0.1:4317".into()),
///     otlp_protocol: Some(OtlpProtocol::Grpc),
///     ..TelemetryOptions::default()
/// };
/// assert_eq!(opts.max_queue_size, 65536);
/// ```
#[derive(Debug)]
pub struct TelemetryOptions {
    /// `service.name` of the resource; default `OTEL_SERVICE_NAME`, else `"skyrun"`.
    pub service_name: Option<String>,
    /// Spans the batch processor holds before it drops (and counts) new ones.
    /// Default 65536; at least 1 is used.
    pub max_queue_size: usize,
    /// Where the console target writes (default stdout).
    pub console_out: ConsoleOut,
    /// OTLP endpoint, overriding the environment. For gRPC it is used as is;
    /// for HTTP a URL without a path gets `/v1/traces` appended.
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol, overriding the environment.
    pub otlp_protocol: Option<OtlpProtocol>,
    /// Timeout of one OTLP export, overriding the environment.
    pub otlp_timeout: Option<Duration>,
    /// The longest [`Telemetry::shutdown`] waits for the last exports (default 5 s).
    pub shutdown_timeout: Duration,
    /// Also record every span's duration here (for `--profile`); spans are
    /// then recorded even with [`TraceTarget::None`].
    pub profile: Option<ProfileProcessor>,
    /// Also keep a record of every span here (for `--timeline`); spans are
    /// then recorded even with [`TraceTarget::None`].
    pub record: Option<SpanRecorder>,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        TelemetryOptions {
            service_name: None,
            max_queue_size: 65536,
            console_out: ConsoleOut::Stdout,
            otlp_endpoint: None,
            otlp_protocol: None,
            otlp_timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            profile: None,
            record: None,
        }
    }
}

/// What became of the spans, as counted by the pipeline itself (the SDK
/// drops spans silently when its queue is full).
///
/// ```
/// let r = skyrun::telemetry::ExportReport { spans_ended: 10, spans_exported: 4, spans_dropped: 6, export_errors: 1 };
/// assert_eq!(r.to_string(), "10 spans ended, 4 exported, 6 dropped, 1 failed export");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Sampled spans that ended while the pipeline was up.
    pub spans_ended: u64,
    /// Spans the exporter delivered.
    pub spans_exported: u64,
    /// Spans that ended but were not delivered (`spans_ended - spans_exported`):
    /// dropped from a full queue, lost in a failed export, or still queued at
    /// the shutdown deadline.
    pub spans_dropped: u64,
    /// Export calls (batches) that failed.
    pub export_errors: u64,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} spans ended, {} exported, {} dropped, {} failed export{}",
            self.spans_ended,
            self.spans_exported,
            self.spans_dropped,
            self.export_errors,
            if self.export_errors == 1 { "" } else { "s" }
        )
    }
}

/// Why the pipeline could not be set up or shut down.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A trace target that is not `none`, `console`, `jsonl:FILE`, `chrome:FILE` or `otlp`.
    #[error("invalid trace target '{0}': expected none, console, jsonl:FILE, chrome:FILE or otlp")]
    InvalidTarget(String),
    /// The JSON-lines file could not be created.
    #[error(transparent)]
    CreateFile(#[from] CreateFileError),
    /// An OTLP protocol other than `grpc` or `http/protobuf`.
    #[error("{setting}='{value}' is not supported: expected grpc or http/protobuf")]
    UnsupportedProtocol {
        /// The variable (or option) that held it.
        setting: String,
        /// The value.
        value: String,
    },
    /// An environment variable with a value that cannot be used.
    #[error("{var}='{value}' is invalid: {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// An OTLP endpoint that cannot be exported to (no scheme, no host, a bad port).
    #[error("invalid OTLP endpoint {endpoint}: {reason}")]
    InvalidEndpoint {
        /// The endpoint, and where it came from.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The OTLP exporter could not be built (bad URL, unsupported compression...).
    #[error("cannot set up OTLP {protocol} export to {endpoint}: {source}")]
    Otlp {
        /// The protocol.
        protocol: OtlpProtocol,
        /// The endpoint, and where it came from.
        endpoint: String,
        /// The exporter's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The gRPC exporter's runtime could not be started.
    #[error("cannot start the OTLP export runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `OTEL_PROPAGATORS` names an unknown propagator.
    #[error(transparent)]
    Propagator(#[from] UnknownPropagator),
    /// The last exports did not finish in time; what was left is dropped.
    #[error("trace export did not finish within {timeout:?}: {report}")]
    ShutdownTimedOut {
        /// The shutdown timeout.
        timeout: Duration,
        /// The counts when shutdown gave up.
        report: ExportReport,
    },
    /// The provider failed to shut down for another reason.
    #[error("trace pipeline shutdown failed: {source} ({report})")]
    Shutdown {
        /// The SDK's error.
        #[source]
        source: OTelSdkError,
        /// The counts.
        report: ExportReport,
    },
}

impl TelemetryError {
    /// The counts, for the errors of [`Telemetry::shutdown`].
    pub fn report(&self) -> Option<&ExportReport> {
        match self {
            TelemetryError::ShutdownTimedOut { report, .. }
            | TelemetryError::Shutdown { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// The trace pipeline: the tracer provider, its exporter, and (for gRPC)
/// the runtime the exporter runs on. Hand [`engine_tracer`](Self::engine_tracer)
/// to the `RunEngine` and [`device_tracer`](Self::device_tracer) to devices,
/// then call [`shutdown`](Self::shutdown). Dropping it shuts it down too, with
/// the same bounded wait, but without a report.
///
/// Device requests carry the span context through the *global* text-map
/// propagator, so "Ophyd Status" spans are children of the engine's spans
/// only when one is installed: [`install_global`](Self::install_global)
/// does it (from `OTEL_PROPAGATORS`, default `tracecontext,baggage`), or
/// call `opentelemetry::global::set_text_map_propagator` yourself. Without
/// one, device spans are exported as roots.
pub struct Telemetry {
    target: TraceTarget,
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
    counters: Counters,
    shutdown_timeout: Duration,
    destination: String,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("target", &self.target)
            .field("report", &self.counters.report())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Builds the pipeline for `target`. Does not touch the global provider
    /// (see [`install_global`](Self::install_global)).
    ///
    /// ```
    /// use skyrun::telemetry::{Telemetry, TelemetryOptions, TraceTarget};
    /// let t = Telemetry::init(TraceTarget::None, TelemetryOptions::default()).unwrap();
    /// assert!(!t.engine_tracer().is_enabled());
    /// let err = Telemetry::init(TraceTarget::Jsonl("/nonexistent-dir/t.jsonl".into()), TelemetryOptions::default());
    /// assert!(err.unwrap_err().to_string().contains("/nonexistent-dir/t.jsonl"));
    /// ```
    pub fn init(target: TraceTarget, opts: TelemetryOptions) -> Result<Telemetry, TelemetryError> {
        let counters = Counters::default();
        let mut telemetry = Telemetry {
            target: target.clone(),
            provider: None,
            runtime: None,
            counters: counters.clone(),
            shutdown_timeout: opts.shutdown_timeout,
            destination: match &target {
                TraceTarget::Jsonl(path) => format!("the file {}", path.display()),
                other => other.to_string(),
            },
        };
        let service_name = opts
            .service_name
            .clone()
            .or_else(|| env_var("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "skyrun".to_owned());
        let mut builder = SdkTracerProvider::builder().with_resource(
            Resource::builder()
                .with_service_name(service_name)
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        if let Some(profile) = opts.profile.clone() {
            builder = builder.with_span_processor(profile);
        }
        if let Some(record) = opts.record.clone() {
            builder = builder.with_span_processor(record);
        }
        let queue = opts.max_queue_size;
        let local = opts.profile.is_some() || opts.record.is_some();
        let provider = match target {
            TraceTarget::None if local => builder,
            TraceTarget::None => return Ok(telemetry),
            TraceTarget::Console => {
                let exporter =
                    CountingExporter::new(ConsoleExporter::new(opts.console_out), &counters);
                builder.with_span_processor(EndedCounter::new(
                    SimpleSpanProcessor::new(exporter),
                    &counters,
                ))
            }
            TraceTarget::Jsonl(path) => {
                let exporter = JsonLinesExporter::create(&path)?;
                builder.with_span_processor(batch_processor(exporter, &counters, queue))
            }
            TraceTarget::Chrome(path) => {
                let exporter = ChromeExporter::create(&path)?;
                builder.with_span_processor(batch_processor(exporter, &counters, queue))
            }
            TraceTarget::Otlp => {
                let (exporter, runtime, destination) = otlp_exporter(&opts, &counters)?;
                telemetry.runtime = runtime;
                telemetry.destination = destination;
                builder.with_span_processor(batch_processor(exporter, &counters, queue))
            }
        }
        .build();
        telemetry.provider = Some(provider);
        Ok(telemetry)
    }

    /// The tracer for the engine's spans (scope `bluesky.tracing`).
    pub fn engine_tracer(&self) -> SpanTracer {
        self.tracer(ENGINE_SCOPE)
    }

    /// The tracer for devices' "Ophyd Status" spans (scope `ophyd.status`).
    pub fn device_tracer(&self) -> SpanTracer {
        self.tracer(STATUS_TRACER_SCOPE)
    }

    fn tracer(&self, scope: &'static str) -> SpanTracer {
        match &self.provider {
            Some(p) => SpanTracer::from_provider(p, scope),
            None => SpanTracer::disabled(),
        }
    }

    /// The target this pipeline exports to.
    pub fn target(&self) -> &TraceTarget {
        &self.target
    }

    /// Where spans go, for reports: `OTLP http/protobuf to http://h:4318/v1/traces
    /// (from OTEL_EXPORTER_OTLP_ENDPOINT)`, `the file spans.jsonl`, `console`, `none`.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The shared counters (which outlive [`shutdown`](Self::shutdown)): the
    /// first export error of each kind is in [`Counters::failures`].
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// The counts so far (spans still queued count as dropped until exported).
    pub fn report(&self) -> ExportReport {
        self.counters.report()
    }

    /// Exports what is queued now (waiting at most the SDK's flush timeout);
    /// a failed export is counted, not returned.
    pub fn force_flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }

    /// Makes this pipeline the global tracer provider (so
    /// `SpanTracer::global` tracers use it) and installs the propagator that
    /// `OTEL_PROPAGATORS` asks for. A bad `OTEL_PROPAGATORS` is reported on
    /// stderr and leaves the propagator unchanged; use
    /// [`try_install_global`](Self::try_install_global) to handle it.
    pub fn install_global(&self) {
        if let Err(e) = self.try_install_global() {
            eprintln!("skyrun: {e}");
        }
    }

    /// As [`install_global`](Self::install_global), returning the error.
    pub fn try_install_global(&self) -> Result<(), TelemetryError> {
        if let Some(p) = &self.provider {
            opentelemetry::global::set_tracer_provider(p.clone());
        }
        install_propagator_from_env()?;
        Ok(())
    }

    /// As [`shutdown`](Self::shutdown), and what to tell a person about it:
    /// the destination, the counts, the first error of each kind, and
    /// whether the collector left the last exports unanswered at the
    /// deadline (which is not an error here). Other shutdown failures are.
    pub fn finish(self) -> Result<super::export_summary::ExportSummary, TelemetryError> {
        let destination = self.destination.clone();
        let counters = self.counters.clone();
        let (report, timed_out) = match self.shutdown() {
            Ok(report) => (report, None),
            Err(TelemetryError::ShutdownTimedOut { timeout, report }) => (report, Some(timeout)),
            Err(e) => return Err(e),
        };
        Ok(super::export_summary::ExportSummary {
            destination,
            report,
            failures: counters.failures(),
            timed_out,
        })
    }

    /// Exports what is left, shuts the pipeline down, and reports the counts.
    /// Waits at most the shutdown timeout (plus a little), whatever the
    /// collector does. Failed exports are counted in the report, not returned
    /// as errors; a timeout is an error that carries the report.
    pub fn shutdown(mut self) -> Result<ExportReport, TelemetryError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<ExportReport, TelemetryError> {
        let result = match self.provider.take() {
            None => Ok(self.counters.report()),
            Some(provider) => self.shutdown_provider(provider),
        };
        if let Some(rt) = self.runtime.take() {
            // Never blocks, so it is allowed inside another runtime (an actix system).
            rt.shutdown_background();
        }
        result
    }

    fn shutdown_provider(
        &self,
        provider: SdkTracerProvider,
    ) -> Result<ExportReport, TelemetryError> {
        let timeout = self.shutdown_timeout;
        let started = Instant::now();
        // On a thread of its own, so that nothing (a stuck writer, a black-hole
        // collector) can make the caller wait past the deadline.
        let (tx, rx) = mpsc::channel();
        let p = provider.clone();
        let spawned = std::thread::Builder::new()
            .name("skyrun-otel-shutdown".into())
            .spawn(move || {
                let _ = tx.send(p.shutdown_with_timeout(timeout));
            });
        let outcome = match spawned {
            Ok(_) => rx.recv_timeout(timeout + Duration::from_millis(500)),
            Err(_) => Ok(provider.shutdown_with_timeout(timeout)),
        };
        let report = self.counters.report();
        match outcome {
            Ok(Ok(())) => Ok(report),
            Err(_) => Err(TelemetryError::ShutdownTimedOut { timeout, report }),
            Ok(Err(_)) if started.elapsed() >= timeout => {
                Err(TelemetryError::ShutdownTimedOut { timeout, report })
            }
            // The batch processor returns the last export's error: already counted.
            Ok(Err(_)) if report.export_errors > 0 => Ok(report),
            Ok(Err(source)) => Err(TelemetryError::Shutdown { source, report }),
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.shutdown_inner();
    }
}

/// A batch processor exporting through `exporter`, counting what ends and what is exported.
pub(crate) fn batch_processor<E: SpanExporter + 'static>(
    exporter: E,
    counters: &Counters,
    max_queue_size: usize,
) -> EndedCounter<BatchSpanProcessor> {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(max_queue_size.max(1))
        .build();
    EndedCounter::new(
        BatchSpanProcessor::new(CountingExporter::new(exporter, counters), config),
        counters,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Telemetry>();
        send_sync::<TelemetryError>();
        send_sync::<TraceTarget>();
    }

    #[test]
    fn none_target_is_free_and_reports_nothing() {
        let t = Telemetry::init(TraceTarget::None, TelemetryOptions::default()).unwrap();
        assert!(!t.device_tracer().is_enabled());
        assert_eq!(t.shutdown().unwrap(), ExportReport::default());
    }

    #[test]
    fn targets_parse_and_print_back() {
        for s in [
            "none",
            "console",
            "otlp",
            "jsonl:a b/c.jsonl",
            "chrome:t.json",
        ] {
            assert_eq!(s.parse::<TraceTarget>().unwrap().to_string(), s);
        }
        for bad in ["", "jsonl:", "chrome:", "Console", "otlp:x"] {
            let e = bad.parse::<TraceTarget>().unwrap_err();
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
        }
    }
}
