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

use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};

use super::counting::Counters;
use super::http_client::DiagnosingClient;

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

/// The endpoint as given (option, variable or default), where it came from
/// (`None`: an explicit option or the default), and the URL exported to.
fn effective_endpoint(
    opts: &TelemetryOptions,
    protocol: OtlpProtocol,
) -> (String, Option<&'static str>, String) {
    let http = protocol == OtlpProtocol::HttpProtobuf;
    if let Some(e) = &opts.otlp_endpoint {
        let url = if http {
            http_traces_url(e)
        } else {
            e.trim().to_owned()
        };
        return (e.trim().to_owned(), None, url);
    }
    match first_env(&ENDPOINT_VARS) {
        Some((var, value)) => {
            let value = value.trim().to_owned();
            // The traces variable is used as is; the generic one gets the path for HTTP.
            let url = if http && var != ENDPOINT_VARS[0] {
                http_traces_url(&value)
            } else {
                value.clone()
            };
            (value, Some(var), url)
        }
        None if http => {
            let url = "http://localhost:4318/v1/traces".to_owned();
            (url.clone(), None, url)
        }
        None => {
            let url = "http://localhost:4317".to_owned();
            (url.clone(), None, url)
        }
    }
}

/// Why `endpoint` cannot be exported to, if it cannot: it must be
/// `http://` or `https://`, a host, and an optional numeric port.
///
/// ```
/// use skyrun::telemetry::otlp::endpoint_problem;
/// assert_eq!(endpoint_problem("http://localhost:4318/v1/traces"), None);
/// assert_eq!(endpoint_problem("localhost:4318").unwrap(),
///     "it has no scheme: write http://localhost:4318 (or https://)");
/// assert!(endpoint_problem("http://:4318").unwrap().contains("no host"));
/// assert!(endpoint_problem("http://h:43x8").unwrap().contains("port"));
/// ```
pub fn endpoint_problem(endpoint: &str) -> Option<String> {
    let e = endpoint.trim();
    let Some((scheme, rest)) = e.split_once("://") else {
        return Some(format!("it has no scheme: write http://{e} (or https://)"));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Some(format!(
            "unsupported scheme '{scheme}': expected http:// or https://"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Some("unclosed '[' in the host".to_owned()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Some("it has no host".to_owned());
    }
    if host.contains(char::is_whitespace) {
        return Some(format!("invalid host '{host}'"));
    }
    match port {
        Some(p) if p.parse::<u16>().is_err() => {
            Some(format!("invalid port '{p}': expected a number up to 65535"))
        }
        _ => None,
    }
}

/// The exporter, the runtime it needs (gRPC), and where it exports to
/// (`OTLP PROTOCOL to URL`, for reports).
pub(super) fn otlp_exporter(
    opts: &TelemetryOptions,
    counters: &Counters,
) -> Result<
    (
        opentelemetry_otlp::SpanExporter,
        Option<tokio::runtime::Runtime>,
        String,
    ),
    TelemetryError,
> {
    let protocol = match opts.otlp_protocol {
        Some(p) => p,
        None => OtlpProtocol::from_env()?,
    };
    let timeout = export_timeout(opts)?;
    let (given, from, url) = effective_endpoint(opts, protocol);
    let from = from.map_or(String::new(), |var| format!(" (from {var})"));
    if let Some(reason) = endpoint_problem(&given) {
        return Err(TelemetryError::InvalidEndpoint {
            endpoint: format!("'{given}'{from}"),
            reason,
        });
    }
    let described = format!("{url}{from}");
    let destination = format!("OTLP {protocol} to {described}");
    let endpoint = match protocol {
        OtlpProtocol::Grpc => opts.otlp_endpoint.clone(),
        OtlpProtocol::HttpProtobuf => opts.otlp_endpoint.as_deref().map(http_traces_url),
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
                Ok(exporter) => Ok((exporter, Some(rt), destination)),
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
                .with_http_client(DiagnosingClient::new(timeout, counters))
                .with_timeout(timeout);
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e.clone());
            }
            Ok((b.build().map_err(error)?, None, destination))
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
    fn endpoints_without_scheme_or_host_are_refused_before_export() {
        for (endpoint, reason) in [
            (
                "localhost:4318",
                "it has no scheme: write http://localhost:4318 (or https://)",
            ),
            (
                "ftp://h:21",
                "unsupported scheme 'ftp': expected http:// or https://",
            ),
            ("http://", "it has no host"),
            (
                "http://h:99999",
                "invalid port '99999': expected a number up to 65535",
            ),
        ] {
            let opts = TelemetryOptions {
                otlp_endpoint: Some(endpoint.into()),
                otlp_protocol: Some(OtlpProtocol::HttpProtobuf),
                ..TelemetryOptions::default()
            };
            let err = Telemetry::init(TraceTarget::Otlp, opts).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid OTLP endpoint '{endpoint}': {reason}")
            );
        }
        assert_eq!(endpoint_problem("http://[::1]:4317"), None);
        assert_eq!(
            endpoint_problem("https://user@collector.example:443/v1/traces"),
            None
        );
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
