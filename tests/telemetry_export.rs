//! The trace export pipeline end to end: a real plan on a real engine and
//! real devices, exported to a JSON-lines file, the console, a real OTLP/gRPC
//! receiver (tonic), a real OTLP/HTTP receiver (tiny_http), and a collector
//! that is down. No environment variables: every setting is explicit, since
//! tests run in parallel threads of one process.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;
use serde_json::{Map, Value};
use skyrun::telemetry::{
    self, ConsoleOut, ExportReport, OtlpProtocol, Telemetry, TelemetryOptions, TraceTarget,
};
use skyrun::{plan_stubs as bps, preprocessors, ExitStatus, Plan, RunEngine};
use skyrun_actors::{sim::SynAxis, DeviceHandle};

const STATUS: &str = "Ophyd Status";
const SET: &str = "Bluesky RunEngine set";
const PLAN: &str = "demo plan";
const RUN: &str = "Bluesky RunEngine run";

/// The documented example: `moves` absolute moves (set + wait) inside
/// `trace_plan`, inside a run.
fn demo_plan(motor: DeviceHandle, moves: usize) -> Plan {
    let body = Plan::new("demo", move |ctx| async move {
        for i in 0..moves {
            bps::abs_set(&ctx, &motor, 5.0 + i as f64, None, true).await?;
        }
        Ok(())
    });
    preprocessors::run_wrapper(telemetry::trace_plan(PLAN, body), Map::new())
}

async fn run_demo_async(t: &Telemetry, moves: usize) {
    let re = RunEngine::builder()
        .tracer(t.engine_tracer())
        .run_trace(true)
        .build();
    let motor = DeviceHandle::builder(SynAxis::new("motor1").with_units("mm"))
        .tracer(t.device_tracer())
        .spawn();
    let summary = re
        .run(demo_plan(motor, moves))
        .await
        .expect("the plan runs");
    assert_eq!(summary.exit_status, ExitStatus::Success);
}

fn run_demo(t: &Telemetry, moves: usize) {
    actix::System::new().block_on(run_demo_async(t, moves));
}

/// Device requests carry the span context through the global propagator
/// (W3C trace context here); without one, "Ophyd Status" spans are roots.
fn install_propagator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        )
    });
}

fn opts() -> TelemetryOptions {
    install_propagator();
    TelemetryOptions {
        service_name: Some("skyrun-test".into()),
        ..TelemetryOptions::default()
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("skyrun-{name}-{}.jsonl", std::process::id()))
}

/// A span as received, whatever the exporter: names and ids in hex.
#[derive(Debug, Clone)]
struct Got {
    name: String,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    scope: String,
}

fn find<'a>(spans: &'a [Got], name: &str) -> &'a Got {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

/// Status -> set -> demo plan -> run, all in one trace (run_trace).
fn assert_linked(spans: &[Got]) {
    let (status, set, plan, run) = (
        find(spans, STATUS),
        find(spans, SET),
        find(spans, PLAN),
        find(spans, RUN),
    );
    assert_eq!(
        status.parent.as_deref(),
        Some(set.span_id.as_str()),
        "Status -> set"
    );
    assert_eq!(
        set.parent.as_deref(),
        Some(plan.span_id.as_str()),
        "set -> demo plan"
    );
    assert_eq!(
        plan.parent.as_deref(),
        Some(run.span_id.as_str()),
        "demo plan -> run"
    );
    assert_eq!(run.parent, None, "the run span is the root");
    assert!(
        spans.iter().all(|s| s.trace_id == run.trace_id),
        "one trace: {spans:#?}"
    );
}

fn got_from_json(v: &Value) -> Got {
    let hex = |v: &Value| {
        v.as_str()
            .expect("a hex id")
            .trim_start_matches("0x")
            .to_owned()
    };
    Got {
        name: v["name"].as_str().unwrap().to_owned(),
        trace_id: hex(&v["context"]["trace_id"]),
        span_id: hex(&v["context"]["span_id"]),
        parent: (!v["parent_id"].is_null()).then(|| hex(&v["parent_id"])),
        scope: String::new(),
    }
}

/// The shape of Python's `ReadableSpan.to_json()`, key order included.
fn assert_python_shape(v: &Value) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "name",
            "context",
            "kind",
            "parent_id",
            "start_time",
            "end_time",
            "status",
            "attributes",
            "events",
            "links",
            "resource"
        ]
    );
    let cx = &v["context"];
    assert_eq!(
        cx.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["trace_id", "span_id", "trace_state"]
    );
    assert!(cx["trace_id"].as_str().unwrap().starts_with("0x"));
    assert_eq!(cx["trace_id"].as_str().unwrap().len(), 34);
    assert_eq!(cx["span_id"].as_str().unwrap().len(), 18);
    assert_eq!(cx["trace_state"], "[]");
    assert_eq!(v["kind"], "SpanKind.INTERNAL");
    for t in ["start_time", "end_time"] {
        let t = v[t].as_str().unwrap();
        assert_eq!(
            (t.len(), &t[10..11], &t[19..20], &t[26..]),
            (27, "T", ".", "Z"),
            "{t}"
        );
    }
    assert_eq!(v["status"], serde_json::json!({"status_code": "UNSET"}));
    assert!(v["attributes"].is_object() && v["events"].is_array() && v["links"].is_array());
    assert_eq!(v["resource"]["attributes"]["service.name"], "skyrun-test");
    assert_eq!(v["resource"]["schema_url"], "");
}

#[test]
fn jsonl_file_holds_python_shaped_linked_spans() {
    let path = temp_path("export-jsonl");
    let t = Telemetry::init(TraceTarget::Jsonl(path.clone()), opts()).unwrap();
    run_demo(&t, 1);
    let report = t.shutdown().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(report.spans_exported, lines.len() as u64);
    assert_eq!(
        report,
        ExportReport {
            spans_ended: lines.len() as u64,
            spans_exported: lines.len() as u64,
            spans_dropped: 0,
            export_errors: 0
        }
    );
    lines.iter().for_each(assert_python_shape);
    let spans: Vec<Got> = lines.iter().map(got_from_json).collect();
    assert_linked(&spans);

    // Attributes keep their JSON types.
    let set = lines.iter().find(|l| l["name"] == SET).unwrap();
    assert_eq!(set["attributes"]["msg.command"], "set");
    assert_eq!(set["attributes"]["msg.args"], serde_json::json!([5.0]));
    let status = lines.iter().find(|l| l["name"] == STATUS).unwrap();
    assert_eq!(status["attributes"]["finish_pos"], 5.0);
    assert_eq!(status["attributes"]["unit"], "mm");
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn console_prints_each_span_as_python_pretty_json_as_it_ends() {
    let buf = SharedBuf::default();
    let t = Telemetry::init(
        TraceTarget::Console,
        TelemetryOptions {
            console_out: ConsoleOut::writer(buf.clone()),
            ..opts()
        },
    )
    .unwrap();
    run_demo(&t, 1);
    let report = t.shutdown().unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();

    assert!(text.starts_with("{\n    \"name\": \""), "{text}");
    assert!(text.contains("\n    \"context\": {\n        \"trace_id\": \"0x"));
    assert!(text.ends_with("}\n"));
    let spans: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(report.spans_exported, spans.len() as u64);
    assert_eq!(report.spans_dropped, 0);
    spans.iter().for_each(assert_python_shape);
    // Printed as they end: children before their parents.
    let pos = |name: &str| spans.iter().position(|s| s["name"] == name).unwrap();
    assert!(pos(STATUS) < pos(PLAN) && pos(SET) < pos(PLAN) && pos(PLAN) < pos(RUN));
    assert_linked(&spans.iter().map(got_from_json).collect::<Vec<_>>());
}

#[test]
fn small_queue_counts_every_span_as_exported_or_dropped() {
    let path = temp_path("export-small-queue");
    let t = Telemetry::init(
        TraceTarget::Jsonl(path.clone()),
        TelemetryOptions {
            max_queue_size: 4,
            ..opts()
        },
    )
    .unwrap();
    run_demo(&t, 200);
    let report = t.shutdown().unwrap();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    std::fs::remove_file(&path).unwrap();
    eprintln!("queue of 4: {report}");
    assert!(report.spans_ended >= 600, "{report}");
    assert_eq!(report.spans_exported, lines);
    assert_eq!(
        report.spans_ended,
        report.spans_exported + report.spans_dropped
    );
}

/// Spans from OTLP requests, with the resource's service name checked.
fn got_from_otlp(reqs: &[ExportTraceServiceRequest]) -> Vec<Got> {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut out = Vec::new();
    for rs in reqs.iter().flat_map(|r| &r.resource_spans) {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name");
        let service = service
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone());
        assert_eq!(
            service,
            Some(any_value::Value::StringValue("skyrun-test".into()))
        );
        for ss in &rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for s in &ss.spans {
                out.push(Got {
                    name: s.name.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn assert_otlp_received(spans: &[Got], report: &ExportReport) {
    assert_eq!(report.spans_exported, spans.len() as u64, "{report}");
    assert_eq!(
        (report.spans_dropped, report.export_errors),
        (0, 0),
        "{report}"
    );
    assert_linked(spans);
    assert_eq!(find(spans, STATUS).scope, "ophyd.status");
    assert_eq!(find(spans, SET).scope, "bluesky.tracing");
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn start_grpc_collector(rt: &tokio::runtime::Runtime) -> (SocketAddr, Collector) {
    let collector = Collector::default();
    let _guard = rt.enter();
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let service = TraceServiceServer::new(collector.clone());
    rt.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
    });
    (addr, collector)
}

#[test]
fn otlp_grpc_collector_receives_linked_spans() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (addr, collector) = start_grpc_collector(&rt);
    let t = Telemetry::init(
        TraceTarget::Otlp,
        TelemetryOptions {
            otlp_endpoint: Some(format!("http://{addr}")),
            otlp_protocol: Some(OtlpProtocol::Grpc),
            ..opts()
        },
    )
    .unwrap();
    run_demo(&t, 1);
    let report = t.shutdown().unwrap();
    let spans = got_from_otlp(&collector.0.lock().unwrap());
    assert_otlp_received(&spans, &report);
}

type HttpRequests = Arc<Mutex<Vec<(String, String, ExportTraceServiceRequest)>>>;

fn start_http_collector() -> (u16, HttpRequests) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let got = HttpRequests::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = Vec::new();
            req.as_reader().read_to_end(&mut body).unwrap();
            let content_type = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.to_string());
            let decoded = ExportTraceServiceRequest::decode(body.as_slice())
                .expect("a protobuf ExportTraceServiceRequest");
            sink.lock().unwrap().push((
                req.url().to_owned(),
                content_type.unwrap_or_default(),
                decoded,
            ));
            let reply = ExportTraceServiceResponse {
                partial_success: None,
            }
            .encode_to_vec();
            let header: tiny_http::Header = "Content-Type: application/x-protobuf".parse().unwrap();
            let _ = req.respond(tiny_http::Response::from_data(reply).with_header(header));
        }
    });
    (port, got)
}

#[test]
fn otlp_http_collector_receives_linked_spans() {
    let (port, got) = start_http_collector();
    // A bare endpoint gets the standard /v1/traces path.
    let t = Telemetry::init(
        TraceTarget::Otlp,
        TelemetryOptions {
            otlp_endpoint: Some(format!("http://127.0.0.1:{port}")),
            otlp_protocol: Some(OtlpProtocol::HttpProtobuf),
            ..opts()
        },
    )
    .unwrap();
    run_demo(&t, 1);
    let report = t.shutdown().unwrap();
    let got = got.lock().unwrap();
    assert!(!got.is_empty());
    for (url, content_type, _) in got.iter() {
        assert_eq!(
            (url.as_str(), content_type.as_str()),
            ("/v1/traces", "application/x-protobuf")
        );
    }
    let reqs: Vec<_> = got.iter().map(|g| g.2.clone()).collect();
    assert_otlp_received(&got_from_otlp(&reqs), &report);
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A collector that is down: the plan completes, shutdown returns promptly,
/// nothing is exported, and the losses are reported. Everything happens
/// inside the actix system, as in a CLI.
#[test]
fn collector_down_never_stalls_the_plan_and_losses_are_reported() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let opts = TelemetryOptions {
            otlp_endpoint: Some(format!("http://127.0.0.1:{}", closed_port())),
            otlp_protocol: Some(protocol),
            otlp_timeout: Some(Duration::from_secs(2)),
            shutdown_timeout: Duration::from_secs(5),
            ..opts()
        };
        let (report, took) = actix::System::new().block_on(async move {
            let t = Telemetry::init(TraceTarget::Otlp, opts).unwrap();
            run_demo_async(&t, 2000).await;
            let started = Instant::now();
            // A timeout is an error that still carries the counts.
            let report = t
                .shutdown()
                .unwrap_or_else(|e| *e.report().unwrap_or_else(|| panic!("{e}")));
            (report, started.elapsed())
        });
        eprintln!("collector down, {protocol}: {report}; shutdown took {took:?}");
        assert!(
            took < Duration::from_secs(30),
            "{protocol}: shutdown took {took:?}"
        );
        assert!(report.spans_ended >= 6000, "{protocol}: {report}");
        assert_eq!(report.spans_exported, 0, "{protocol}: {report}");
        assert_eq!(
            report.spans_dropped, report.spans_ended,
            "{protocol}: {report}"
        );
        assert!(report.export_errors > 0, "{protocol}: {report}");
    }
}

/// Dropping a pipeline without shutting it down, inside an async context,
/// neither panics nor hangs (the gRPC runtime is let go in the background).
#[test]
fn dropping_inside_the_actix_system_is_safe() {
    let opts = TelemetryOptions {
        otlp_endpoint: Some(format!("http://127.0.0.1:{}", closed_port())),
        otlp_protocol: Some(OtlpProtocol::Grpc),
        shutdown_timeout: Duration::from_secs(2),
        ..opts()
    };
    actix::System::new().block_on(async move {
        let t = Telemetry::init(TraceTarget::Otlp, opts).unwrap();
        run_demo_async(&t, 3).await;
        drop(t);
    });
}

/// A collector that accepts connections but never answers: shutdown gives up
/// at its timeout with an error that carries the counts.
#[test]
fn unresponsive_collector_cannot_hold_shutdown_past_its_timeout() {
    // Connections complete in the kernel's backlog; nothing ever reads them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let t = Telemetry::init(
            TraceTarget::Otlp,
            TelemetryOptions {
                otlp_endpoint: Some(format!("http://{addr}")),
                otlp_protocol: Some(protocol),
                otlp_timeout: Some(Duration::from_secs(60)),
                shutdown_timeout: Duration::from_secs(1),
                ..opts()
            },
        )
        .unwrap();
        run_demo(&t, 20);
        let started = Instant::now();
        let err = t.shutdown().expect_err("nothing can be exported");
        let took = started.elapsed();
        eprintln!("unresponsive, {protocol}: {err}; shutdown took {took:?}");
        assert!(
            took < Duration::from_secs(20),
            "{protocol}: shutdown took {took:?}"
        );
        assert!(
            err.to_string().contains("did not finish within 1s"),
            "{err}"
        );
        let report = err.report().expect("the counts");
        assert_eq!(report.spans_exported, 0, "{protocol}: {report}");
        assert!(report.spans_dropped >= 60, "{protocol}: {report}");
    }
    drop(listener);
}

/// A collector that comes back: spans exported while it is down are counted
/// as dropped, and export resumes without any action once it listens again.
#[test]
fn export_resumes_when_the_collector_comes_back() {
    let port = closed_port();
    let t = Telemetry::init(
        TraceTarget::Otlp,
        TelemetryOptions {
            otlp_endpoint: Some(format!("http://127.0.0.1:{port}")),
            otlp_protocol: Some(OtlpProtocol::HttpProtobuf),
            otlp_timeout: Some(std::time::Duration::from_secs(2)),
            ..opts()
        },
    )
    .unwrap();
    run_demo(&t, 3);
    t.force_flush();
    let while_down = t.report();
    assert_eq!(while_down.spans_exported, 0);
    assert!(while_down.export_errors > 0, "{while_down}");

    // The collector comes up on the same port.
    let server = tiny_http::Server::http(format!("127.0.0.1:{port}")).unwrap();
    let received = Arc::new(Mutex::new(0usize));
    let r = received.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = Vec::new();
            req.as_reader().read_to_end(&mut body).unwrap();
            let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            *r.lock().unwrap() += got_from_otlp(&[decoded]).len();
            let reply = ExportTraceServiceResponse {
                partial_success: None,
            }
            .encode_to_vec();
            let _ = req.respond(tiny_http::Response::from_data(reply));
        }
    });
    run_demo(&t, 3);
    let report = t.shutdown().unwrap();
    // 3 moves: run, demo plan, 3 × (set, status, wait) = 11 spans per demo.
    assert_eq!(report.spans_ended, 22);
    assert_eq!(report.spans_exported, 11, "{report}");
    assert_eq!(report.spans_dropped, 11);
    assert_eq!(*received.lock().unwrap(), 11);
}
