//! What a failed trace export says: the destination (protocol and
//! endpoint) and the first error of each kind, once, against real sockets
//! started here: a port nothing listens on (refused), a listener that
//! accepts and never answers (timed out, within a bounded export timeout),
//! and a tiny HTTP server answering 404. An endpoint that cannot be parsed
//! is refused before anything runs.

use std::time::Duration;

use skyrun::telemetry::counting::FailureKind;
use skyrun::telemetry::export_summary::ExportSummary;
use skyrun::telemetry::{OtlpProtocol, Telemetry, TelemetryOptions, TraceTarget};
use skyrun::{plan_stubs as bps, ExitStatus, Plan, RunEngine};
use skyrun_actors::{sim::SynAxis, DeviceHandle};

/// A few traced moves, then the pipeline's summary.
fn export_moves(
    endpoint: String,
    protocol: OtlpProtocol,
    export_timeout: Duration,
) -> ExportSummary {
    let t = Telemetry::init(
        TraceTarget::Otlp,
        TelemetryOptions {
            otlp_endpoint: Some(endpoint),
            otlp_protocol: Some(protocol),
            otlp_timeout: Some(export_timeout),
            shutdown_timeout: Duration::from_secs(10),
            ..TelemetryOptions::default()
        },
    )
    .expect("a valid endpoint");
    actix::System::new().block_on(async {
        let re = RunEngine::builder().tracer(t.engine_tracer()).build();
        let motor = DeviceHandle::builder(SynAxis::new("motor"))
            .tracer(t.device_tracer())
            .spawn();
        let plan = Plan::new("moves", move |ctx| async move {
            for i in 0..3 {
                bps::abs_set(&ctx, &motor, i as f64, None, true).await?;
            }
            Ok(())
        });
        let summary = re.run(plan).await.expect("the plan runs");
        assert_eq!(summary.exit_status, ExitStatus::Success);
    });
    t.finish().expect("a summary")
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn assert_one_failure(s: &ExportSummary, kind: FailureKind, words: &str) {
    let text = s.to_string();
    assert_eq!(s.report.spans_exported, 0, "{text}");
    assert!(s.report.spans_ended > 0, "{text}");
    assert_eq!(s.failures.len(), 1, "one line per kind: {text}");
    assert_eq!(s.failures[0].kind, kind, "{text}");
    assert!(s.failures[0].first.contains(words), "{text}");
    assert!(text.contains(&format!("\n  {}: ", kind.as_str())), "{text}");
    assert!(!s.is_clean());
}

#[test]
fn a_refused_connection_names_the_endpoint_protocol_and_refusal() {
    let port = closed_port();
    for protocol in [OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc] {
        let s = export_moves(
            format!("http://127.0.0.1:{port}"),
            protocol,
            Duration::from_secs(5),
        );
        let url = match protocol {
            OtlpProtocol::HttpProtobuf => format!("http://127.0.0.1:{port}/v1/traces"),
            OtlpProtocol::Grpc => format!("http://127.0.0.1:{port}"),
        };
        assert_eq!(s.destination, format!("OTLP {protocol} to {url}"));
        assert!(s
            .to_string()
            .starts_with(&format!("trace export to OTLP {protocol} to {url}: ")));
        assert_one_failure(&s, FailureKind::Refused, "Connection refused");
    }
}

#[test]
fn a_black_hole_times_out_within_the_export_timeout() {
    // Accepts connections (in the kernel's backlog) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    for protocol in [OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc] {
        let s = export_moves(
            format!("http://{addr}"),
            protocol,
            Duration::from_millis(500),
        );
        assert_eq!(
            s.timed_out, None,
            "the export timed out before the shutdown did: {s}"
        );
        let words = match protocol {
            OtlpProtocol::HttpProtobuf => "timed out",
            OtlpProtocol::Grpc => "Timeout",
        };
        assert_one_failure(&s, FailureKind::TimedOut, words);
    }
    drop(listener);
}

#[test]
fn a_black_hole_past_the_shutdown_deadline_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = Telemetry::init(
        TraceTarget::Otlp,
        TelemetryOptions {
            otlp_endpoint: Some(format!("http://{addr}")),
            otlp_protocol: Some(OtlpProtocol::HttpProtobuf),
            otlp_timeout: Some(Duration::from_secs(60)),
            shutdown_timeout: Duration::from_secs(1),
            ..TelemetryOptions::default()
        },
    )
    .unwrap();
    drop(
        t.engine_tracer()
            .start("a span", &opentelemetry::Context::new(), Vec::new()),
    );
    let s = t
        .finish()
        .expect("a timeout is part of the summary, not an error");
    assert_eq!(s.timed_out, Some(Duration::from_secs(1)));
    assert!(
        s.to_string()
            .contains("timed out: no answer within the shutdown timeout (1 s)"),
        "{s}"
    );
    drop(listener);
}

#[test]
fn an_http_404_is_reported_with_its_status() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            let _ =
                req.respond(tiny_http::Response::from_string("no such path").with_status_code(404));
        }
    });
    let s = export_moves(
        format!("http://127.0.0.1:{port}/wrong/path"),
        OtlpProtocol::HttpProtobuf,
        Duration::from_secs(5),
    );
    assert_eq!(
        s.destination,
        format!("OTLP http/protobuf to http://127.0.0.1:{port}/wrong/path")
    );
    assert_one_failure(&s, FailureKind::Status, "404 Not Found");
}

#[test]
fn an_endpoint_without_a_scheme_is_refused_at_init() {
    for protocol in [OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc] {
        let err = Telemetry::init(
            TraceTarget::Otlp,
            TelemetryOptions {
                otlp_endpoint: Some("localhost:4318".into()),
                otlp_protocol: Some(protocol),
                ..TelemetryOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid OTLP endpoint 'localhost:4318': it has no scheme: write http://localhost:4318 (or https://)"
        );
    }
}
