//! `skyrun run`: spawn the devices, run the plan, show it live, write the
//! documents, report how it ended and where the time went.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use parking_lot::Mutex;
use skyrun::telemetry::profile::{format_duration, ProfileReport};
use skyrun::{Document, ExitStatus, RunEngine, RunError, RunSummary};
use skyrun_actors::propagation::context_from_env;

use crate::live::Live;
#[cfg(not(feature = "nats"))]
use crate::load::load;
use crate::tracing::tracing_setup;
use crate::{Failure, RunArgs};

/// Writes every document as one JSON line `["name", {...}]`.
struct DocWriter {
    path: PathBuf,
    w: BufWriter<File>,
    error: Option<std::io::Error>,
}

impl DocWriter {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let f = File::create(path)
            .with_context(|| format!("cannot create the documents file {}", path.display()))?;
        Ok(DocWriter {
            path: path.to_path_buf(),
            w: BufWriter::new(f),
            error: None,
        })
    }

    fn write(&mut self, name: &str, doc: &Document) {
        if self.error.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut self.w, &(name, doc))
            .map_err(std::io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"));
        let r = match (r, doc) {
            // A reader tailing the file sees each run start and complete.
            (Ok(()), Document::Start(_) | Document::Stop(_)) => self.w.flush(),
            (r, _) => r,
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        let flushed = self.w.flush();
        match self.error.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!(
                "cannot write the documents file {}",
                self.path.display()
            ))),
        }
    }
}

/// Counts what the run emitted, for the status line.
#[derive(Default)]
struct Counts {
    runs: AtomicU64,
    events: AtomicU64,
}

/// Runs the plan file; the exit code says whether the plan succeeded.
pub fn run(args: &RunArgs) -> Result<ExitCode, Failure> {
    #[cfg(feature = "nats")]
    let (loaded, remote) = crate::load::load_with(&args.plan, args.devices.as_deref(), |set| {
        crate::remote::resolve(set, args.nats.as_deref(), args.remote_timeout)
    })?;
    #[cfg(not(feature = "nats"))]
    let loaded = load(&args.plan, args.devices.as_deref())?;
    let tracing = tracing_setup(args).map_err(Failure::Usage)?;
    let out = tracing.out;
    #[cfg(feature = "nats")]
    let nats_docs =
        crate::remote::document_publisher(args.documents.as_deref(), args.nats.as_deref())?
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
            DocWriter::create(p).map_err(Failure::Usage)?,
        ))),
        None => None,
    };
    let show = !args.quiet && out.is_terminal();
    let live = Arc::new(Mutex::new(Live::new(out, show, show)));
    let counts = Arc::new(Counts::default());
    let parent = context_from_env();

    let system = actix::System::new();
    let (outcome, elapsed) = system.block_on({
        let (live, docs, counts) = (live.clone(), docs.clone(), counts.clone());
        #[cfg(feature = "nats")]
        let (nats_docs, doc_cx) = (nats_docs.clone(), parent.clone());
        let (engine_tracer, device_tracer) = (tracing.engine.clone(), tracing.device.clone());
        let (plan_file, set) = (&loaded.plan, &loaded.devices);
        async move {
            #[allow(unused_mut)]
            let mut devices = set.spawn(device_tracer);
            #[cfg(feature = "nats")]
            remote.spawn(&mut devices);
            let built = plan_file.build(set, &devices)?;
            let mut builder = RunEngine::builder()
                .tracer(engine_tracer)
                .run_trace(args.run_trace)
                .trace_all_messages(args.trace_all);
            for (k, v) in built.run_metadata {
                builder = builder.metadata(k, v);
            }
            let re = builder.build();
            re.subscribe(move |name, doc| {
                match doc {
                    Document::Start(_) => counts.runs.fetch_add(1, Ordering::Relaxed),
                    Document::Event(_) => counts.events.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
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
            let watcher = actix::spawn(crate::interrupt::watch(re.clone()));
            let result = re.run_with_parent(built.plan, parent).await;
            watcher.abort();
            Ok::<_, Failure>((result, started.elapsed()))
        }
    })?;
    live.lock().finish();

    let profile = tracing.finish().map_err(Failure::Runtime)?;
    if let Some(d) = &docs {
        d.lock().finish().map_err(Failure::Runtime)?;
    }
    #[cfg(feature = "nats")]
    if let Some(p) = &nats_docs {
        let report = p.finish(Duration::from_secs(30));
        if report.failed > 0 {
            return Err(Failure::Runtime(anyhow!("documents to NATS: {report}")));
        }
    }

    let runs = counts.runs.load(Ordering::Relaxed);
    let events = counts.events.load(Ordering::Relaxed);
    let (ok, line) = status_line(&loaded.summary.plan, &outcome, runs, events, elapsed);
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

/// `success: ...` or `fail: reason`, and whether the plan succeeded.
fn status_line(
    plan: &str,
    outcome: &Result<RunSummary, RunError>,
    runs: u64,
    events: u64,
    elapsed: Duration,
) -> (bool, String) {
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let done = format!(
        "{}, {} in {}",
        plural(runs, "run"),
        plural(events, "event"),
        format_duration(elapsed)
    );
    match outcome {
        Ok(_) => (true, format!("success: plan '{plan}' finished: {done}")),
        Err(RunError::Failed { error, .. }) => (false, format!("fail: {error} ({done})")),
        Err(RunError::Aborted { summary }) => {
            let status = match summary.exit_status {
                ExitStatus::Abort => "abort",
                other => other.as_str(),
            };
            (false, format!("{status}: {} ({done})", summary.reason))
        }
        Err(e) => (false, format!("fail: {e}")),
    }
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
