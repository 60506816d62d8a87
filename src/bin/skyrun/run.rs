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
use opentelemetry::trace::{Span as _, SpanContext, Status as SpanStatus, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use parking_lot::Mutex;
use skyrun::callbacks::PeakSummary;
use skyrun::console::documents_jsonl::DocumentsWriter;
use skyrun::console::sigint::{Choice, SigintEvent, SigintHandler};
use skyrun::console::summary::{RunCounter, RunReport};
use skyrun::telemetry::profile::{format_duration, ProfileReport};
use skyrun::{ExitStatus, RunEngine, RunError};
use skyrun_actors::propagation::context_from_env;

use crate::live::Live;
#[cfg(not(feature = "nats"))]
use crate::load::load;
use crate::tracing::tracing_setup;
use crate::{Failure, RunArgs};

/// Runs the plan file; the exit code says whether the plan succeeded.
pub fn run(args: &RunArgs) -> Result<ExitCode, Failure> {
    #[cfg(feature = "nats")]
    let (loaded, remote) = crate::load::load_with(&args.plan, args.devices.as_deref(), |set| {
        args.remote.resolve(set)
    })?;
    #[cfg(not(feature = "nats"))]
    let loaded = load(&args.plan, args.devices.as_deref())?;
    // Every PV of the file connects now, at once, or the run does not start.
    #[cfg(feature = "epics")]
    let epics = args.epics.resolve(&loaded.devices)?;
    #[cfg(not(feature = "epics"))]
    crate::load::no_epics(&loaded.devices)?;
    if let Some(path) = &args.timeline {
        // Fail before running, not after, when the timeline cannot be written.
        File::create(path)
            .with_context(|| format!("cannot create the timeline {}", path.display()))
            .map_err(Failure::Usage)?;
    }
    // What `check` refuses is still run (the engine reports the failure
    // with its stop document), but said first.
    for p in loaded.plan.problems(&loaded.devices) {
        eprintln!("skyrun: warning: {p}");
    }
    let tracing = tracing_setup(args).map_err(Failure::Usage)?;
    let out = tracing.out;
    #[cfg(feature = "nats")]
    let nats_docs =
        crate::remote::document_publisher(args.documents.as_deref(), args.remote.nats.as_deref())?
            .map(Arc::new);
    #[cfg(feature = "nats")]
    let file_docs = args
        .documents
        .as_ref()
        .filter(|p| crate::remote::nats_prefix(Some(p)).is_none());
    #[cfg(not(feature = "nats"))]
    let file_docs = args.documents.as_ref();
    let docs = match file_docs {
        Some(p) => Some(Arc::new(Mutex::new(
            DocumentsWriter::create(p).map_err(|e| Failure::Usage(e.into()))?,
        ))),
        None => None,
    };
    let terminal = !args.quiet && out.is_terminal();
    // `--table` prints the table wherever the output goes (a CI log, `| tee`).
    let table = terminal || args.table;
    let live = Arc::new(Mutex::new(Live::new(out, table, terminal)));
    let counts = RunCounter::default();
    let parent = context_from_env();
    let plan_name = loaded.summary.plan.clone();
    let plan_span_wanted = !args.bluesky_parents && !args.run_trace;
    let mut peaks = None;

    let system = actix::System::new();
    let (outcome, elapsed) = system.block_on({
        let (live, docs, counts) = (live.clone(), docs.clone(), counts.clone());
        #[cfg(feature = "nats")]
        let (nats_docs, doc_cx) = (nats_docs.clone(), parent.clone());
        let (engine_tracer, device_tracer) = (tracing.engine.clone(), tracing.device.clone());
        let (plan_file, set) = (&loaded.plan, &loaded.devices);
        let peaks = &mut peaks;
        async move {
            #[allow(unused_mut)]
            let mut devices = set.spawn(device_tracer.clone());
            #[cfg(feature = "nats")]
            remote.spawn(&mut devices);
            // Kept until the run is over: the EPICS devices' client.
            #[cfg(feature = "epics")]
            let _ca = epics.spawn(&mut devices, &device_tracer);
            let built = plan_file.build(set, &devices)?;
            let plan_span = plan_span_wanted
                .then(|| {
                    let attributes = vec![
                        KeyValue::new("plan_name", plan_name.clone()),
                        KeyValue::new("plan_file", args.plan.display().to_string()),
                    ];
                    engine_tracer.start(plan_name.clone(), &parent, attributes)
                })
                .flatten();
            let run_parent = match &plan_span {
                Some(span) => remote_parent(span.span_context()),
                None => parent,
            };
            let mut builder = RunEngine::builder()
                .tracer(engine_tracer)
                .run_trace(!args.bluesky_parents)
                .trace_all_messages(args.trace_all);
            for (k, v) in built.run_metadata {
                builder = builder.metadata(k, v);
            }
            let re = builder.build();
            let paused_live = live.clone();
            if !args.quiet {
                *peaks = Some(PeakSummary::subscribe(&re));
            }
            re.subscribe(move |name, doc| {
                counts.on_document(doc);
                if let Some(d) = &docs {
                    d.lock().write(name, doc);
                }
                #[cfg(feature = "nats")]
                if let Some(p) = &nats_docs {
                    // Failures are counted by the publisher and reported at the end.
                    let _ = p.publish(name, doc, &doc_cx);
                }
                let mut l = live.lock();
                if l.is_active() {
                    l.on_document(doc);
                }
            });
            let started = Instant::now();
            let handler = SigintHandler::new(re.clone()).on_event(move |e| match e {
                SigintEvent::Paused => paused_live.lock().set_paused(true),
                SigintEvent::Chose(Choice::Resume) => paused_live.lock().set_paused(false),
                _ => {}
            });
            let watcher = actix::spawn(handler.watch());
            let result = re.run_with_parent(built.plan, run_parent).await;
            watcher.abort();
            if let Some(mut span) = plan_span {
                let (status, reason) = match &result {
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
            Ok::<_, Failure>((result, started.elapsed()))
        }
    })?;
    live.lock().finish();

    let finished = tracing.finish().map_err(Failure::Runtime)?;
    if let Some(d) = &docs {
        d.lock().finish().map_err(|e| Failure::Runtime(e.into()))?;
    }
    #[cfg(feature = "nats")]
    if let Some(p) = &nats_docs {
        let report = p.finish(Duration::from_secs(30));
        if report.failed > 0 {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "documents to NATS: {report}"
            )));
        }
    }

    let RunReport { ok, line } = RunReport::new(
        &loaded.summary.plan,
        &outcome,
        &counts,
        Some(loaded.summary.num_points),
        elapsed,
    );
    if !args.quiet {
        out.line(&line);
    } else if !ok {
        eprintln!("{line}");
    }
    for run in peaks.iter().flat_map(|p| p.lock().runs().to_vec()) {
        out.text(&format!(
            "\npeaks along {} (Bluesky's PeakStats, as BestEffortCallback's bec.peaks):\n{run}",
            run.motor
        ));
    }
    if let Some(report) = finished.profile {
        out.text(&profile_text(&report, elapsed));
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

/// `cx` as a context from outside the engine (remote), so that the engine's
/// one-trace-per-run parenting puts the run span, not it, over the run's spans.
fn remote_parent(cx: &SpanContext) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags(),
        true,
        cx.trace_state().clone(),
    ))
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
