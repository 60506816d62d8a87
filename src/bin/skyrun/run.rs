//! `skyrun run`: spawn the devices, run the plan, show it live, write the
//! documents, report how it ended, where the peaks are and where the time
//! went, and write the timeline.
//!
//! Spans: by default one plan is one trace. A span named after the plan is
//! the root; the engine gets its context as the plan's parent, marked
//! remote (it comes from outside the engine), so with one-trace-per-run the
//! run span, its child, parents the run's spans, and what the plan does
//! outside the run (stage, unstage) is parented by the plan span.
//! `--run-trace` drops the plan span (the run span is the root);
//! `--bluesky-parents` parents as Bluesky does.

use std::fs::File;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opentelemetry::trace::{Span as _, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use skyrun::callbacks::PeakSummary;
use skyrun::console::documents_jsonl::DocumentsWriter;
use skyrun::console::sigint::{Choice, SigintEvent, SigintHandler};
use skyrun::console::summary::{RunCounter, RunReport};
use skyrun::telemetry::profile::{format_duration, ProfileReport};
use skyrun::{ExitStatus, RunEngine, RunError, RunSummary};
use skyrun_actors::propagation::context_from_env;
use skyrun_actors::{ActiveSpan, SpanTracer};

use crate::live::Live;
#[cfg(not(feature = "nats"))]
use crate::load::load;
use crate::load::Loaded;
use crate::output::Out;
use crate::tracing::{tracing_setup, Finished, Tracing};
use crate::{Failure, RunArgs};

/// The `[[remote]]` device servers of the device file, resolved (with NATS).
#[cfg(feature = "nats")]
type RemoteDevices = crate::remote::Remote;
/// No `[[remote]]` device servers without NATS.
#[cfg(not(feature = "nats"))]
type RemoteDevices = ();

/// The `[[epics_*]]` devices of the device file, connected (with EPICS).
#[cfg(feature = "epics")]
type EpicsDevices = crate::epics::Epics;
/// No EPICS devices without the `epics` feature (a file with some is refused).
#[cfg(not(feature = "epics"))]
type EpicsDevices = ();

/// Runs the plan file; the exit code says whether the plan succeeded.
pub fn run(args: &RunArgs) -> Result<ExitCode, Failure> {
    let (loaded, remote, epics) = load_plan(args)?;
    let tracing = tracing_setup(args).map_err(Failure::Usage)?;
    let out = tracing.out;
    let docs = Documents::open(args)?;
    let shown = Shown::new(args, out);
    let ran = actix::System::new().block_on(run_plan(
        args, &loaded, remote, epics, &tracing, &docs, &shown,
    ))?;
    shown.live.lock().finish();
    let finished = tracing.finish().map_err(Failure::Runtime)?;
    docs.finish()?;
    report(args, &loaded, &ran, &shown, finished, out)
}

/// Loads the plan and its device file, resolves the `[[remote]]` device
/// servers, checks that the timeline can be written (before running, not
/// after), and says what `check` would refuse (it is still run: the engine
/// reports the failure with its stop document).
fn load_plan(args: &RunArgs) -> Result<(Loaded, RemoteDevices, EpicsDevices), Failure> {
    #[cfg(feature = "nats")]
    let (loaded, remote) = crate::load::load_with(&args.plan, args.devices.as_deref(), |set| {
        args.remote.resolve(set)
    })?;
    #[cfg(not(feature = "nats"))]
    let (loaded, remote) = (load(&args.plan, args.devices.as_deref())?, ());
    // Every PV of the file connects now, at once, or the run does not start.
    #[cfg(feature = "epics")]
    let epics = args.epics.resolve(&loaded.devices)?;
    #[cfg(not(feature = "epics"))]
    let epics = crate::load::no_epics(&loaded.devices)?;
    if let Some(path) = &args.timeline {
        File::create(path)
            .with_context(|| format!("cannot create the timeline {}", path.display()))
            .map_err(Failure::Usage)?;
    }
    for p in loaded.plan.problems(&loaded.devices) {
        eprintln!("skyrun: warning: {p}");
    }
    Ok((loaded, remote, epics))
}

/// Where the documents go: a JSON-lines file, and NATS (`nats:PREFIX`).
struct Documents {
    file: Option<Arc<Mutex<DocumentsWriter>>>,
    #[cfg(feature = "nats")]
    nats: Option<Arc<skyrun_remote::documents::DocumentPublisher>>,
}

impl Documents {
    /// Opens what `--documents` names.
    fn open(args: &RunArgs) -> Result<Documents, Failure> {
        #[cfg(feature = "nats")]
        let nats = crate::remote::document_publisher(
            args.documents.as_deref(),
            args.remote.nats.as_deref(),
        )?
        .map(Arc::new);
        #[cfg(feature = "nats")]
        let file = args
            .documents
            .as_ref()
            .filter(|p| crate::remote::nats_prefix(Some(p)).is_none());
        #[cfg(not(feature = "nats"))]
        let file = args.documents.as_ref();
        let file = match file {
            Some(p) => Some(Arc::new(Mutex::new(
                DocumentsWriter::create(p).map_err(|e| Failure::Usage(e.into()))?,
            ))),
            None => None,
        };
        Ok(Documents {
            file,
            #[cfg(feature = "nats")]
            nats,
        })
    }

    /// Sends every document of `re` where it goes (`cx`: the span context
    /// NATS messages carry).
    fn subscribe(&self, re: &RunEngine, shown: &Shown, cx: &Context) {
        let (file, counts, live) = (self.file.clone(), shown.counts.clone(), shown.live.clone());
        #[cfg(feature = "nats")]
        let (nats, cx) = (self.nats.clone(), cx.clone());
        #[cfg(not(feature = "nats"))]
        let _ = cx;
        re.subscribe(move |name, doc| {
            counts.on_document(doc);
            if let Some(d) = &file {
                d.lock().write(name, doc);
            }
            #[cfg(feature = "nats")]
            if let Some(p) = &nats {
                // Failures are counted by the publisher and reported at the end.
                let _ = p.publish(name, doc, &cx);
            }
            let mut l = live.lock();
            if l.is_active() {
                l.on_document(doc);
            }
        });
    }

    /// Flushes the file and waits for NATS to take every document.
    fn finish(&self) -> Result<(), Failure> {
        if let Some(d) = &self.file {
            d.lock().finish().map_err(|e| Failure::Runtime(e.into()))?;
        }
        #[cfg(feature = "nats")]
        if let Some(p) = &self.nats {
            let report = p.finish(Duration::from_secs(30));
            if report.failed > 0 {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "documents to NATS: {report}"
                )));
            }
        }
        Ok(())
    }
}

/// What is shown while the plan runs (the live table), and the document
/// counts for the report at the end.
struct Shown {
    live: Arc<Mutex<Live>>,
    counts: RunCounter,
}

impl Shown {
    fn new(args: &RunArgs, out: Out) -> Shown {
        let terminal = !args.quiet && out.is_terminal();
        // `--table` prints the table wherever the output goes (a CI log, `| tee`).
        let table = terminal || args.table;
        Shown {
            live: Arc::new(Mutex::new(Live::new(out, table, terminal))),
            counts: RunCounter::default(),
        }
    }
}

/// The engine for the plan, with its tracer, parenting and metadata.
fn engine(args: &RunArgs, tracer: SpanTracer, metadata: Map<String, Value>) -> RunEngine {
    let mut builder = RunEngine::builder()
        .tracer(tracer)
        .run_trace(!args.bluesky_parents)
        .trace_all_messages(args.trace_all);
    for (k, v) in metadata {
        builder = builder.metadata(k, v);
    }
    builder.build()
}

/// How the run went.
struct Ran {
    outcome: Result<RunSummary, RunError>,
    elapsed: Duration,
    /// The peaks of its scans (unless `-q`).
    peaks: Option<Arc<Mutex<PeakSummary>>>,
}

/// Spawns the devices (local and remote), builds the plan, and runs it on
/// a new engine under the plan span, with Ctrl-C handled as Bluesky does.
async fn run_plan(
    args: &RunArgs,
    loaded: &Loaded,
    remote: RemoteDevices,
    epics: EpicsDevices,
    tracing: &Tracing,
    docs: &Documents,
    shown: &Shown,
) -> Result<Ran, Failure> {
    #[allow(unused_mut)]
    let mut devices = loaded.devices.spawn(tracing.device.clone());
    #[cfg(feature = "nats")]
    remote.spawn(&mut devices);
    #[cfg(not(feature = "nats"))]
    let () = remote;
    // Kept until the run is over: the EPICS devices' client.
    #[cfg(feature = "epics")]
    let _ca = epics.spawn(&mut devices, &tracing.device);
    #[cfg(not(feature = "epics"))]
    let () = epics;
    let built = loaded.plan.build(&loaded.devices, &devices)?;
    let parent = context_from_env();
    let plan_span = plan_span(args, &loaded.summary.plan, &tracing.engine, &parent);
    let run_parent = match &plan_span {
        Some(span) => skyrun::telemetry::spans::remote_parent(span.span_context()),
        None => parent.clone(),
    };
    let re = engine(args, tracing.engine.clone(), built.run_metadata);
    install_suspenders(&re, loaded, &devices).await?;
    let peaks = (!args.quiet).then(|| PeakSummary::subscribe(&re));
    docs.subscribe(&re, shown, &parent);
    let started = Instant::now();
    let paused_live = shown.live.clone();
    let handler = SigintHandler::new(re.clone()).on_event(move |e| match e {
        SigintEvent::Paused => paused_live.lock().set_paused(true),
        SigintEvent::Chose(Choice::Resume) => paused_live.lock().set_paused(false),
        _ => {}
    });
    let watcher = actix::spawn(handler.watch());
    let result = re.run_with_parent(built.plan, run_parent).await;
    watcher.abort();
    if let Some(span) = plan_span {
        end_plan_span(span, &result);
    }
    Ok(Ran {
        outcome: result,
        elapsed: started.elapsed(),
        peaks,
    })
}

/// The device file's `[[suspender]]` tables, on the engine before the plan runs.
async fn install_suspenders(
    re: &RunEngine,
    loaded: &Loaded,
    devices: &skyrun::config::Devices,
) -> Result<(), Failure> {
    for spec in loaded.devices.suspenders() {
        let signal = devices.get(&spec.signal).ok_or_else(|| {
            Failure::Runtime(anyhow::anyhow!(
                "suspender: device '{}' was not started",
                spec.signal
            ))
        })?;
        let suspender = spec
            .build(signal)
            .map_err(|e| Failure::Usage(anyhow::anyhow!("{}: {e}", loaded.devices.file())))?;
        re.install_suspender(suspender).await.map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "suspender on '{}' cannot watch it: {e}",
                spec.signal
            ))
        })?;
    }
    Ok(())
}

/// The span named after the plan, the root of its trace (unless
/// `--run-trace` or `--bluesky-parents`; `None` when untraced).
fn plan_span(
    args: &RunArgs,
    name: &str,
    tracer: &SpanTracer,
    parent: &Context,
) -> Option<ActiveSpan> {
    if args.bluesky_parents || args.run_trace {
        return None;
    }
    let attributes = vec![
        KeyValue::new("plan_name", name.to_owned()),
        KeyValue::new("plan_file", args.plan.display().to_string()),
    ];
    tracer.start(name.to_owned(), parent, attributes)
}

/// Ends the plan span with how the run ended (failed unless it succeeded).
fn end_plan_span(mut span: ActiveSpan, result: &Result<RunSummary, RunError>) {
    let (status, reason) = match result {
        Ok(s) => (s.exit_status, s.reason.clone()),
        Err(RunError::Failed { summary, .. } | RunError::Aborted { summary }) => {
            (summary.exit_status, summary.reason.clone())
        }
        Err(e) => (ExitStatus::Fail, e.to_string()),
    };
    span.set_attribute(KeyValue::new("exit_status", status.as_str()));
    span.set_attribute(KeyValue::new("reason", reason.clone()));
    if status != ExitStatus::Success {
        span.set_status(SpanStatus::error(reason));
    }
    span.end();
}

/// Reports how the run ended, where the peaks are, the profile and the
/// timeline; the exit code says whether the plan succeeded.
fn report(
    args: &RunArgs,
    loaded: &Loaded,
    ran: &Ran,
    shown: &Shown,
    finished: Finished,
    out: Out,
) -> Result<ExitCode, Failure> {
    let RunReport { ok, line } = RunReport::new(
        &loaded.summary.plan,
        &ran.outcome,
        &shown.counts,
        Some(loaded.summary.num_points),
        ran.elapsed,
    );
    if !args.quiet {
        out.line(&line);
    } else if !ok {
        eprintln!("{line}");
    }
    for run in ran.peaks.iter().flat_map(|p| p.lock().runs().to_vec()) {
        out.text(&format!(
            "\npeaks along {} (Bluesky's PeakStats, as BestEffortCallback's bec.peaks):\n{run}",
            run.motor
        ));
    }
    if let Some(report) = finished.profile {
        out.text(&profile_text(&report, ran.elapsed));
    }
    if let (Some(path), Some(spans)) = (&args.timeline, finished.spans) {
        let title = format!("{} ({})", loaded.summary.plan, args.plan.display());
        skyrun::timeline::write_html(path, &spans, &title)
            .map_err(|e| Failure::Runtime(e.into()))?;
        if !args.quiet {
            out.line(&format!(
                "\ntimeline: {} spans -> {}",
                spans.len(),
                path.display()
            ));
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The `--profile` output.
fn profile_text(report: &ProfileReport, elapsed: Duration) -> String {
    let mut s = format!(
        "\nprofile: {} spans over {} of running (span times nest: a parent's total includes its children's)\n",
        report.span_count(),
        format_duration(elapsed)
    );
    if report.is_empty() {
        s.push_str("(no spans were recorded)\n");
    } else {
        s.push_str(&report.to_string());
    }
    s
}
