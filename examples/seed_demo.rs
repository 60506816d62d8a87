//! The seed scenario of Bluesky's tracing documentation: a plan wrapped in
//! `trace_plan("demo plan")` that sets det1's motor to 5 inside a run,
//! printing the spans to stdout as OpenTelemetry Python's ConsoleSpanExporter
//! does. With one-trace-per-run, the four spans form one trace:
//! "Ophyd Status" under "Bluesky RunEngine set" under "demo plan" under
//! "Bluesky RunEngine run".
//!
//! ```text
//! cargo run --release --example seed_demo
//! ```

use skyrun::preprocessors::run_wrapper;
use skyrun::telemetry::{trace_plan, Telemetry, TelemetryOptions, TraceTarget};
use skyrun::{plan_stubs as bps, Plan, RunEngine};
use skyrun_actors::sim::{SynAxis, SynGauss};
use skyrun_actors::DeviceHandle;

fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::init(
        TraceTarget::Console,
        TelemetryOptions {
            service_name: Some("bluesky-docs-example".into()),
            ..Default::default()
        },
    )?;
    telemetry.install_global();
    actix::System::new().block_on(async {
        let re = RunEngine::builder()
            .tracer(telemetry.engine_tracer())
            .run_trace(true)
            .build();
        let motor1 = SynAxis::new("motor1");
        let det1 = SynGauss::new("det1", motor1.probe(), 0.0, 1.0, 1.0);
        let _det1 = DeviceHandle::builder(det1)
            .tracer(telemetry.device_tracer())
            .spawn();
        let motor1 = DeviceHandle::builder(motor1)
            .tracer(telemetry.device_tracer())
            .spawn();

        let m = motor1.clone();
        let plan = run_wrapper(
            trace_plan(
                "demo plan",
                Plan::new("demo", move |ctx| async move {
                    bps::abs_set(&ctx, &m, 5, None, false).await?;
                    Ok(())
                }),
            ),
            Default::default(),
        );
        re.run(plan).await?;
        anyhow::Ok(())
    })?;
    let report = telemetry.shutdown()?;
    if report.spans_dropped > 0 {
        eprintln!("{report}");
    }
    Ok(())
}
