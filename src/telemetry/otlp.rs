//! OTLP export: the protocol, endpoint and timeout, from explicit
//! [`TelemetryOptions`] or else the standard environment variables.
//!
//! * protocol: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`:
//!   `grpc` or `http/protobuf`. The default is `http/protobuf`, the
//!   specification's default (`http/json` is not built in).
//! * endpoint: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended for HTTP), else
//!   `http://localhost:4317` (gRPC) / `http://localhost:4318/v1/traces` (HTTP).
//! * headers: `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS`
//!   (`k=v,k2=v2`), read by the exporter.
//! * export timeout: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT`,
//!   in milliseconds, default 10000; a value that is not a number is an error
//!   naming the variable.
//!
//! The gRPC (tonic) exporter does its I/O on the tokio runtime that is
//! current when it is built, so it is built on a runtime of its
//! own (one worker thread), which the [`Telemetry`](super::Telemetry) keeps
//! until its provider is shut down. The HTTP exporter uses a blocking client
//! and needs no runtime.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};

use super::pipeline::{TelemetryError, TelemetryOptions};

pub(super) const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];
const TIMEOUT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
];
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A variable's value, with an empty value taken as unset (as the OTel spec says).
pub(super) fn env_var(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// The first of `vars` that is set, with its name.
pub(super) fn first_env(vars: &[&'static str]) -> Option<(&'static str, String)> {
    vars.iter()
        .find_map(|v| env_var(v).map(|value| (*v, value)))
}

/// The OTLP transport.
///
/// ```
/// use skyrun::telemetry::OtlpProtocol;
/// assert_eq!("grpc".parse::<OtlpProtocol>().unwrap(), OtlpProtocol::Grpc);
/// assert_eq!(OtlpProtocol::HttpProtobuf.to_string(), "http/protobuf");
/// assert!("http/json".parse::<OtlpProtocol>().unwrap_err().to_string().contains("http/json"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (tonic), usually port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, usually port 4318. The spec's default.
    #[default]
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The protocol the environment asks for (see the [module docs](self)).
    pub fn from_env() -> Result<OtlpProtocol, TelemetryError> {
        match first_env(&PROTOCOL_VARS) {
            None => Ok(OtlpProtocol::default()),
            Some((var, value)) => Self::parse(var, &value),
        }
    }

    fn parse(setting: &str, value: &str) -> Result<OtlpProtocol, TelemetryError> {
        match value.trim() {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            _ => Err(TelemetryError::UnsupportedProtocol {
                setting: setting.to_owned(),
                value: value.to_owned(),
            }),
        }
    }
}

impl FromStr for OtlpProtocol {
    type Err = TelemetryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse("OTLP protocol", s)
    }
}

impl fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        })
    }
}

/// The export timeout: the option, else the standard variables (milliseconds).
fn export_timeout(opts: &TelemetryOptions) -> Result<Duration, TelemetryError> {
    if let Some(t) = opts.otlp_timeout {
        return Ok(t);
    }
    match first_env(&TIMEOUT_VARS) {
        None => Ok(DEFAULT_EXPORT_TIMEOUT),
        Some((var, value)) => parse_timeout(var, value),
    }
}

fn parse_timeout(var: &'static str, value: String) -> Result<Duration, TelemetryError> {
    match value.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => Err(TelemetryError::InvalidEnv {
            var,
            value,
            reason: "expected a whole number of milliseconds",
        }),
    }
}

/// For HTTP, a bare `scheme://host:port` gets the traces path, as the
/// generic endpoint variable does.
fn http_traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        endpoint.trim().to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

pub(super) fn otlp_exporter(
    opts: &TelemetryOptions,
) -> Result<
    (
        opentelemetry_otlp::SpanExporter,
        Option<tokio::runtime::Runtime>,
    ),
    TelemetryError,
> {
    let protocol = match opts.otlp_protocol {
        Some(p) => p,
        None => OtlpProtocol::from_env()?,
    };
    let timeout = export_timeout(opts)?;
    let endpoint = match protocol {
        OtlpProtocol::Grpc => opts.otlp_endpoint.clone(),
        OtlpProtocol::HttpProtobuf => opts.otlp_endpoint.as_deref().map(http_traces_url),
    };
    let described = match (&endpoint, first_env(&ENDPOINT_VARS)) {
        (Some(e), _) => e.clone(),
        (None, Some((var, value))) => format!("{value} (from {var})"),
        (None, None) => "the default endpoint".to_owned(),
    };
    let error = |source| TelemetryError::Otlp {
        protocol,
        endpoint: described.clone(),
        source,
    };
    match protocol {
        OtlpProtocol::Grpc => {
            // The tonic channel spawns its I/O onto the runtime current at build
            // time; this one lives until after the provider is shut down.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("skyrun-otlp")
                .enable_all()
                .build()
                .map_err(TelemetryError::Runtime)?;
            let built = {
                let _guard = rt.enter();
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_timeout(timeout);
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build()
            };
            match built {
                Ok(exporter) => Ok((exporter, Some(rt))),
                Err(e) => {
                    // Dropping a runtime may block, which panics inside an async context.
                    rt.shutdown_background();
                    Err(error(e))
                }
            }
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_timeout(timeout);
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e.clone());
            }
            Ok((b.build().map_err(error)?, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Telemetry, TraceTarget};

    #[test]
    fn http_url_gets_the_traces_path_only_when_it_has_none() {
        assert_eq!(http_traces_url("http://h:4318"), "http://h:4318/v1/traces");
        assert_eq!(http_traces_url("http://h:4318/"), "http://h:4318/v1/traces");
        assert_eq!(
            http_traces_url("http://h:4318/custom"),
            "http://h:4318/custom"
        );
        assert_eq!(http_traces_url("h:4318"), "h:4318/v1/traces");
    }

    #[test]
    fn bad_settings_are_errors_naming_the_variable_and_value() {
        assert_eq!(
            parse_timeout("OTEL_EXPORTER_OTLP_TIMEOUT", " 2500 ".into()).unwrap(),
            Duration::from_millis(2500)
        );
        let e = parse_timeout("OTEL_EXPORTER_OTLP_TIMEOUT", "5s".into()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OTEL_EXPORTER_OTLP_TIMEOUT='5s' is invalid: expected a whole number of milliseconds"
        );
        let e = OtlpProtocol::parse("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json").unwrap_err();
        assert_eq!(e.to_string(), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http/json' is not supported: expected grpc or http/protobuf");
    }

    #[test]
    fn bad_explicit_endpoint_is_a_typed_error_naming_it() {
        for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
            let opts = TelemetryOptions {
                otlp_endpoint: Some("not a url".into()),
                otlp_protocol: Some(protocol),
                ..TelemetryOptions::default()
            };
            let err = Telemetry::init(TraceTarget::Otlp, opts).unwrap_err();
            assert!(err.to_string().contains("not a url"), "{err}");
        }
    }
}
