//! Tracing: the engine's Bluesky-compatible spans, `trace_plan`, and (in
//! later modules) the exporters that send spans to the console, a file or an
//! OTLP backend.

pub mod profile;
pub mod spans;
mod trace_plan;

pub use trace_plan::trace_plan;
