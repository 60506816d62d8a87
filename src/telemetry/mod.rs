//! Tracing: the engine's Bluesky-compatible spans, `trace_plan`, and (in
//! later modules) the exporters that send spans to the console, a file or an
//! OTLP backend.

pub mod console;
pub mod counting;
pub mod jsonl;
pub mod otlp;
pub mod pipeline;
pub mod spans;
mod trace_plan;

pub use console::{span_to_json, ConsoleOut};
pub use pipeline::{
    ExportReport, OtlpProtocol, Telemetry, TelemetryError, TelemetryOptions, TraceTarget,
};
pub use trace_plan::trace_plan;
