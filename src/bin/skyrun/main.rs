//! `skyrun`: run plan files against simulated beamlines, watch them live, see
//! where the time went.
//!
//! ```text
//! skyrun run PLAN.toml [--devices DEVICES.toml] [--documents FILE.jsonl]
//!            [--trace none|console|jsonl:FILE|chrome:FILE|otlp] [--timeline FILE.html]
//!            [--run-trace | --bluesky-parents] [--trace-all] [--profile] [--quiet] [--table]
//! skyrun check PLAN.toml [--devices DEVICES.toml]
//! skyrun view SPANS.jsonl -o FILE.html [--title TITLE]
//! skyrun serve DEVICES.toml --nats URL --name SERVER [--trace TARGET]
//! skyrun service --devices DEVICES.toml [--plans DIR] [--bind 127.0.0.1:8000] [--nats URL]
//! skyrun bench [--scenario NAME] [--devices N] [--messages M] [--trace off|on] [--json] [--repeat R]
//! skyrun bench --scenario epics [--pv TEMPLATE] [--pvs N1,N2] [--motor TEMPLATE] [--ca-addr HOST:PORT] [--json]
//! skyrun bench PLAN.toml [--devices DEVICES.toml] [--repeat N] [--json]
//! ```
//!
//! The device file is `--devices`, or else the one the plan file names with
//! `devices = "beamline.toml"` (relative to the plan file). The file formats
//! are described in `skyrun::config`.
//!
//! Output: `run` prints a live table of events and a progress bar while the
//! plan runs (only when its output stream is a terminal, and not with
//! `--quiet`; `--table` prints the table anywhere), then a status line (`success: ...` / `fail: reason`), after a
//! scan along one motor the peak summary of Bluesky's BestEffortCallback
//! (not with `--quiet`), and, with `--profile`, a table of span durations.
//! All of this goes to stdout, except with `--trace console`, where stdout
//! carries the spans and this goes to stderr instead (and, when both are
//! the terminal the live table is on, the spans are printed after it).
//! `--timeline FILE.html` writes the spans as one self-contained HTML page;
//! `skyrun view` makes that page from a `--trace jsonl:FILE` file.
//!
//! Ctrl-C works as Bluesky's `SigintHandler`: the first pauses at the next
//! checkpoint, each further one within 10 s pauses at once; once paused,
//! skyrun asks whether to resume, abort, stop or halt
//! (see `skyrun::console::sigint`).
//!
//! Exit status: 0 when the plan succeeds, 1 when it fails or aborts (or
//! output cannot be written), 2 for usage and plan/device file errors.

mod bench;
#[cfg(feature = "epics")]
mod bench_epics;
#[cfg(feature = "nats")]
mod bench_remote;
mod check;
#[cfg(feature = "epics")]
mod epics;
mod live;
mod load;
mod output;
#[cfg(feature = "nats")]
mod remote;
mod run;
#[cfg(feature = "nats")]
mod serve;
#[cfg(feature = "service")]
mod service;
#[cfg(all(feature = "service", feature = "nats"))]
mod service_nats;
#[cfg(any(feature = "nats", feature = "service"))]
mod signals;
mod tracing;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::tracing::TraceArg;

/// Run Bluesky-style plans on simulated devices, with OpenTelemetry tracing.
#[derive(Debug, Parser)]
#[command(name = "skyrun", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a plan file against a device file.
    Run(RunArgs),
    /// Check a plan file and its device file, and print what would run, without running it.
    Check(CheckArgs),
    /// Measure message throughput and device scaling, next to the physical
    /// limits; or, given a plan file, benchmark that plan.
    Bench(BenchArgs),
    /// Turn a spans file (`--trace jsonl:FILE`) into an HTML timeline.
    View(ViewArgs),
    /// Serve the devices of a device file to other processes over NATS.
    #[cfg(feature = "nats")]
    Serve(serve::ServeArgs),
    /// Serve blueapi's REST API, so blueapi's client runs plans here.
    #[cfg(feature = "service")]
    Service(service::ServiceArgs),
}

/// Arguments of `skyrun view`.
#[derive(Debug, Args)]
struct ViewArgs {
    /// The spans file: one span per line (`skyrun run --trace jsonl:SPANS.jsonl`),
    /// or console span output (`--trace console`, OpenTelemetry Python's
    /// ConsoleSpanExporter).
    spans: PathBuf,
    /// The HTML file to write: one self-contained page, no network needed.
    #[arg(long, short = 'o', value_name = "FILE.html")]
    output: PathBuf,
    /// The page's title [default: the spans file's name].
    #[arg(long)]
    title: Option<String>,
}

/// Arguments of `skyrun bench`.
#[derive(Debug, Args)]
struct BenchArgs {
    /// A plan file to benchmark, untraced and traced, instead of the built-in scenarios.
    #[arg(value_name = "PLAN.toml")]
    plan: Option<PathBuf>,
    /// One scenario: null, set, count, many, idle, limit-actix-roundtrip,
    /// limit-crossbeam, limit-actix-actors, remote (device servers over NATS,
    /// next to bare request/reply), epics (EPICS devices against a running
    /// IOC, next to the bare Channel Access client: see --pv)
    /// [default: the whole suite, without remote and epics].
    #[arg(long)]
    scenario: Option<String>,
    /// Devices: a number (many, idle, limit-actix-actors), or with a plan
    /// file its device file [default: the plan's `devices` key].
    #[arg(long, value_name = "N|DEVICES.toml")]
    devices: Option<String>,
    /// Messages (sets for many, events for count).
    #[arg(long)]
    messages: Option<u64>,
    /// Tracing: off, or on (every span recorded and handed to --span-processor)
    /// [default: both].
    #[arg(long)]
    trace: Option<String>,
    /// Where traced cases send their spans: batch (the SDK's batch processor,
    /// exporting on its own thread), simple (exported on the thread that ends
    /// the span) or discard (dropped as they end: span creation alone).
    #[arg(long, value_name = "KIND", default_value = "batch")]
    span_processor: String,
    /// One JSON object per line per measured case.
    #[arg(long)]
    json: bool,
    /// Repeats per case (with a plan file: runs per mode); the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Measure one case in this process (used by the parent run).
    #[arg(long, hide = true)]
    child: bool,
    #[cfg(feature = "epics")]
    #[command(flatten)]
    epics: bench_epics::EpicsBenchArgs,
}

/// Arguments of `skyrun run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The plan file (TOML).
    plan: PathBuf,
    /// The device file (TOML); default: the `devices` key of the plan file.
    #[arg(long, short = 'd', value_name = "DEVICES.toml")]
    devices: Option<PathBuf>,
    /// Write every document as one JSON line `["name", {...}]`.
    #[arg(long, value_name = "FILE.jsonl")]
    documents: Option<PathBuf>,
    /// Where spans go: none, console, jsonl:FILE, chrome:FILE (Chrome trace
    /// events, for Perfetto) or otlp
    /// [default: otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none].
    #[arg(long, value_name = "TARGET")]
    trace: Option<TraceArg>,
    /// Also write the spans as an HTML timeline (one self-contained file).
    #[arg(long, value_name = "FILE.html")]
    timeline: Option<PathBuf>,
    /// One trace per run, with no plan span: the run span is the root and
    /// parents all the run's spans (stage and unstage, outside the run, are
    /// then roots of their own). By default the plan's span is the root.
    #[arg(long, conflicts_with = "bluesky_parents")]
    run_trace: bool,
    /// Parent spans as Bluesky does (the run span parents nothing, so one
    /// plan spreads over many traces) instead of one trace under a span for
    /// the whole plan.
    #[arg(long)]
    bluesky_parents: bool,
    /// Record a span for every message, not only set/wait/complete/collect.
    #[arg(long)]
    trace_all: bool,
    /// At the end, print where the time went, per span name.
    #[arg(long)]
    profile: bool,
    /// No live table, progress bar or status line.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the event table even when the output is not a terminal (CI logs, `| tee`).
    #[arg(long)]
    table: bool,
    #[cfg(feature = "nats")]
    #[command(flatten)]
    remote: RemoteArgs,
    #[cfg(feature = "epics")]
    #[command(flatten)]
    epics: epics::EpicsArgs,
}

/// How `run` and `check` reach the device file's `[[remote]]` servers.
#[cfg(feature = "nats")]
#[derive(Debug, Args)]
struct RemoteArgs {
    /// The NATS server(s) of the device file's `[[remote]]` servers
    /// (comma-separated for a cluster), and of `--documents nats:PREFIX`.
    #[arg(long, env = "SKYRUN_NATS", value_name = "URL")]
    nats: Option<String>,
    /// How long a request to a remote device (discovery included) may wait for its answer.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    remote_timeout: f64,
}

/// Arguments of `skyrun check`.
#[derive(Debug, Args)]
struct CheckArgs {
    /// The plan file (TOML).
    plan: PathBuf,
    /// The device file (TOML); default: the `devices` key of the plan file.
    #[arg(long, short = 'd', value_name = "DEVICES.toml")]
    devices: Option<PathBuf>,
    /// The `[[remote]]` servers are asked which devices they serve, as
    /// `run` asks them (nothing is moved).
    #[cfg(feature = "nats")]
    #[command(flatten)]
    remote: RemoteArgs,
    /// The EPICS PVs of the device file are connected, as `run` connects
    /// them (nothing is written): a PV that does not connect is a problem.
    #[cfg(feature = "epics")]
    #[command(flatten)]
    epics: epics::EpicsArgs,
}

/// Why skyrun stops with an error: the exit status and the message.
#[derive(Debug)]
enum Failure {
    /// Bad usage or an invalid plan/device file: exit 2.
    Usage(anyhow::Error),
    /// Something went wrong while running: exit 1.
    Runtime(anyhow::Error),
}

impl From<skyrun::config::ConfigError> for Failure {
    fn from(e: skyrun::config::ConfigError) -> Self {
        Failure::Usage(e.into())
    }
}

// The SDK's batch processor frees every span on its export thread, which
// allocated on the engine thread: jemalloc handles that hand-off best of the
// allocators measured (glibc, mimalloc v2/v3, snmalloc; see BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::check(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::View(args) => view::view(&args),
        #[cfg(feature = "nats")]
        Command::Serve(args) => serve::serve(&args),
        #[cfg(feature = "service")]
        Command::Service(args) => service::service(&args),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
