//! `skyrun run`: spawn the devices, run the plan, show it live, write the
//! documents, report how it ended and where the time went.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use skyrun::console::documents_jsonl::DocumentsWriter;
use skyrun::console::sigint::{Choice, SigintEvent, SigintHandler};
use skyrun::console::summary::{RunCounter, RunReport};
use skyrun::telemetry::profile::{format_duration, ProfileReport};
use skyrun::RunEngine;
use skyrun_actors::propagation::context_from_env;

use crate::live::Live;
use crate::load::load;
use crate::tracing::tracing_setup;
use crate::{Failure, RunArgs};

/// Runs the plan file; the exit code says whether the plan succeeded.
pub fn run(args: &RunArgs) -> Result<ExitCode, Failure> {
    let loaded = load(&args.plan, args.devices.as_deref())?;
    // What `check` refuses is still run (the engine reports the failure
    // with its stop document), but said first.
    for p in loaded.plan.problems(&loaded.devices) {
        eprintln!("skyrun: warning: {p}");
    }
    let tracing = tracing_setup(args).map_err(Failure::Usage)?;
    let out = tracing.out;
    let docs = match &args.documents {
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

    let system = actix::System::new();
    let (outcome, elapsed) = system.block_on({
        let (live, docs, counts) = (live.clone(), docs.clone(), counts.clone());
        let (engine_tracer, device_tracer) = (tracing.engine.clone(), tracing.device.clone());
        let (plan_file, set) = (&loaded.plan, &loaded.devices);
        async move {
            let devices = set.spawn(device_tracer);
            let built = plan_file.build(set, &devices)?;
            let mut builder = RunEngine::builder()
                .tracer(engine_tracer)
                .run_trace(args.run_trace)
                .trace_all_messages(args.trace_all);
            for (k, v) in built.run_metadata {
                builder = builder.metadata(k, v);
            }
            let re = builder.build();
            let paused_live = live.clone();
            re.subscribe(move |name, doc| {
                counts.on_document(doc);
                if let Some(d) = &docs {
                    d.lock().write(name, doc);
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
            let result = re.run_with_parent(built.plan, parent).await;
            watcher.abort();
            Ok::<_, Failure>((result, started.elapsed()))
        }
    })?;
    live.lock().finish();

    let profile = tracing.finish().map_err(Failure::Runtime)?;
    if let Some(d) = &docs {
        d.lock().finish().map_err(|e| Failure::Runtime(e.into()))?;
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
    if let Some(report) = profile {
        out.text(&profile_text(&report, elapsed));
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
