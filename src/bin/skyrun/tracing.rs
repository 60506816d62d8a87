//! Tracing for `skyrun run`: where spans go (`--trace`), and the in-process
//! span profile (`--profile`).
//!
//! Everything about tracing setup lives in [`tracing_setup`] and
//! [`Tracing::finish`], so switching to the shared
//! `skyrun::telemetry::pipeline` only touches this file.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::anyhow;
use opentelemetry_sdk::trace::SdkTracerProvider;
use skyrun::telemetry::profile::{ProfileProcessor, ProfileReport};
use skyrun_actors::SpanTracer;

use crate::output::Out;
use crate::RunArgs;

/// The engine's instrumentation scope (Bluesky's).
const ENGINE_SCOPE: &str = "bluesky.tracing";
/// The devices' instrumentation scope (ophyd's).
const DEVICE_SCOPE: &str = "ophyd.status";

/// Where spans go (`--trace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceArg {
    /// Nowhere (spans are still recorded for `--profile`).
    None,
    /// One JSON object per span on stdout.
    Console,
    /// One JSON object per span per line in a file.
    Jsonl(PathBuf),
    /// An OTLP backend, configured by the `OTEL_EXPORTER_OTLP_*` variables.
    Otlp,
}

impl FromStr for TraceArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(TraceArg::None),
            "console" => Ok(TraceArg::Console),
            "otlp" => Ok(TraceArg::Otlp),
            _ => match s.strip_prefix("jsonl:") {
                Some("") => Err("jsonl needs a file: jsonl:FILE".into()),
                Some(path) => Ok(TraceArg::Jsonl(PathBuf::from(path))),
                None => Err(format!(
                    "unknown trace target '{s}' (expected none, console, jsonl:FILE or otlp)"
                )),
            },
        }
    }
}

impl TraceArg {
    /// The default: `otlp` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else `none`.
    pub fn from_env_default() -> Self {
        match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Ok(v) if !v.trim().is_empty() => TraceArg::Otlp,
            _ => TraceArg::None,
        }
    }

    fn name(&self) -> String {
        match self {
            TraceArg::None => "none".into(),
            TraceArg::Console => "console".into(),
            TraceArg::Jsonl(p) => format!("jsonl:{}", p.display()),
            TraceArg::Otlp => "otlp".into(),
        }
    }
}

/// The tracers of a run, and what must be done with its spans at the end.
pub struct Tracing {
    /// The engine's tracer (scope `bluesky.tracing`).
    pub engine: SpanTracer,
    /// The devices' tracer (scope `ophyd.status`).
    pub device: SpanTracer,
    /// Where human output goes: stdout, unless spans are printed there.
    pub out: Out,
    provider: Option<SdkTracerProvider>,
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
    match target {
        TraceArg::None => {}
        other => {
            let why = if args.trace.is_none() {
                " (chosen because OTEL_EXPORTER_OTLP_ENDPOINT is set; pass --trace none to run without it)"
            } else {
                ""
            };
            return Err(anyhow!(
                "--trace {}: span export is not available in this build yet{why}",
                other.name()
            ));
        }
    }
    if !args.profile {
        return Ok(Tracing {
            engine: SpanTracer::disabled(),
            device: SpanTracer::disabled(),
            out,
            provider: None,
            profile: None,
        });
    }
    let profile = ProfileProcessor::new();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(profile.clone())
        .build();
    Ok(Tracing {
        engine: SpanTracer::from_provider(&provider, ENGINE_SCOPE),
        device: SpanTracer::from_provider(&provider, DEVICE_SCOPE),
        out,
        provider: Some(provider),
        profile: Some(profile),
    })
}

impl Tracing {
    /// Flushes and shuts the span pipeline down; returns the profile when
    /// `--profile` asked for one.
    pub fn finish(self) -> anyhow::Result<Option<ProfileReport>> {
        let report = self.profile.as_ref().map(ProfileProcessor::report);
        if let Some(provider) = self.provider {
            provider
                .shutdown()
                .map_err(|e| anyhow!("shutting the span pipeline down: {e}"))?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!("none".parse(), Ok(TraceArg::None));
        assert_eq!("console".parse(), Ok(TraceArg::Console));
        assert_eq!("otlp".parse(), Ok(TraceArg::Otlp));
        assert_eq!(
            "jsonl:spans.jsonl".parse(),
            Ok(TraceArg::Jsonl("spans.jsonl".into()))
        );
        assert!("jsonl:".parse::<TraceArg>().is_err());
        assert!("zipkin"
            .parse::<TraceArg>()
            .unwrap_err()
            .contains("'zipkin'"));
    }
}
