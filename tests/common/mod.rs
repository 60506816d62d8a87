//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use skyrun::{Document, RunEngine};
use skyrun_actors::sim::{SynAxis, SynGauss};
use skyrun_actors::DeviceHandle;

/// The documents a subscriber received, in order.
#[derive(Clone, Default)]
pub struct Docs(pub Arc<Mutex<Vec<(String, Document)>>>);

impl Docs {
    pub fn subscribe(re: &RunEngine) -> Docs {
        let d = Docs::default();
        let inner = d.0.clone();
        re.subscribe(move |name, doc| inner.lock().unwrap().push((name.to_owned(), doc.clone())));
        d
    }
    pub fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
    pub fn all(&self) -> Vec<Document> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }
    pub fn take(&self) -> Vec<Document> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }
    /// Every event, those of event pages one by one (as Bluesky's callbacks see them).
    pub fn events(&self) -> Vec<skyrun::Event> {
        self.all()
            .into_iter()
            .flat_map(|d| match d {
                Document::Event(e) => vec![e],
                Document::EventPage(p) => p.events(),
                _ => Vec::new(),
            })
            .collect()
    }
    pub fn stops(&self) -> Vec<skyrun::RunStop> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Stop(s) => Some(s),
                _ => None,
            })
            .collect()
    }
    pub fn starts(&self) -> Vec<skyrun::RunStart> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Start(s) => Some(s),
                _ => None,
            })
            .collect()
    }
    pub fn descriptors(&self) -> Vec<skyrun::EventDescriptor> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Descriptor(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

/// A motor and a noiseless detector peaking at 0 with height 1.
pub fn motor_det() -> (DeviceHandle, DeviceHandle) {
    let motor = SynAxis::new("motor");
    let det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
    (DeviceHandle::spawn(motor), DeviceHandle::spawn(det))
}

/// Runs `f` inside an actix system; fails the test if it has not ended
/// within 120 s, so no test can hang.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    actix::System::new().block_on(async {
        match tokio::time::timeout(std::time::Duration::from_secs(120), f).await {
            Ok(v) => v,
            Err(_) => panic!("the test did not end within 120 s"),
        }
    })
}

/// Waits (polling every millisecond) until `cond` holds; fails the test after
/// 10 s with `what`, so no test can hang on a condition that never comes.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "timed out after 10 s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Awaits `f`, failing the test after 30 s (a plan that should have ended).
pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(std::time::Duration::from_secs(30), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after 30 s waiting for {what}"),
    }
}

/// Spans recorded in memory by the SDK's own provider, for engines and
/// devices built here.
pub struct Traced {
    pub provider: opentelemetry_sdk::trace::SdkTracerProvider,
    pub exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
}

impl Traced {
    pub fn new() -> Self {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Traced { provider, exporter }
    }
    /// An engine whose spans are recorded here.
    pub fn engine(&self) -> skyrun::RunEngineBuilder {
        RunEngine::builder().tracer(skyrun_actors::SpanTracer::from_provider(
            &self.provider,
            "bluesky.tracing",
        ))
    }
    /// A device whose Status spans are recorded here.
    pub fn device(&self, d: impl skyrun_actors::Device) -> DeviceHandle {
        DeviceHandle::builder(d)
            .tracer(skyrun_actors::SpanTracer::from_provider(
                &self.provider,
                "ophyd.status",
            ))
            .spawn()
    }
    /// Every span ended so far.
    pub fn spans(&self) -> Vec<opentelemetry_sdk::trace::SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_spans().unwrap()
    }
}

/// The failure text and summary of a run that was expected to fail.
pub fn failed(err: skyrun::RunError) -> (String, skyrun::RunSummary) {
    match err {
        skyrun::RunError::Failed { error, summary } => (error.to_string(), summary),
        other => panic!("expected a failed run, got {other:?}"),
    }
}

/// Waits until the engine is in `state`; fails after 10 s, saying which state it is in.
pub async fn until(re: &RunEngine, state: skyrun::EngineState) {
    let t0 = std::time::Instant::now();
    while re.state() != state {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "the engine did not become {state:?} within 10 s (it is {:?})",
            re.state()
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}
