//! Tracing: the engine's Bluesky-compatible spans ([`spans`]), [`trace_plan`],
//! and the export pipeline ([`Telemetry`]) that sends spans to the console
//! (in the shape of OpenTelemetry Python's `ConsoleSpanExporter`), a
//! JSON-lines file, or any OTLP backend over gRPC or HTTP, configured with
//! the standard `OTEL_*` variables, counting what it exports and drops; a
//! Chrome trace-event file ([`chrome`]) and span [`record`]s for renderers
//! such as the HTML [timeline](crate::timeline).
//!
//! ```
//! use skyrun::telemetry::{Telemetry, TelemetryOptions, TraceTarget};
//! let t = Telemetry::init(TraceTarget::None, TelemetryOptions::default()).unwrap();
//! assert!(!t.engine_tracer().is_enabled());
//! assert_eq!(t.shutdown().unwrap().spans_dropped, 0);
//! ```

pub mod chrome;
pub mod console;
pub mod counting;
pub mod export_summary;
mod http_client;
pub mod jsonl;
pub mod otlp;
pub mod pipeline;
pub mod profile;
pub mod record;
pub mod spans;
mod trace_plan;

pub use console::{span_to_json, ConsoleOut};
pub use pipeline::{
    ExportReport, OtlpProtocol, Telemetry, TelemetryError, TelemetryOptions, TraceTarget,
};
pub use trace_plan::trace_plan;
