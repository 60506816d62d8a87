//! Plan wrappers, after `bluesky.preprocessors`: open and close a run around a
//! plan, stage and unstage devices, run cleanup whatever happens, and read a
//! baseline of devices at the start and the end of each run.
//!
//! ```
//! use skyrun::{preprocessors::{run_wrapper, finalize_wrapper}, plan_stubs as bps, Plan, PlanError, RunEngine, RunError, ExitStatus};
//! use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
//! actix::System::new().block_on(async {
//!     let cleaned = Arc::new(AtomicBool::new(false));
//!     let c = cleaned.clone();
//!     let failing = Plan::new("boom", |_| async { Err(PlanError::failed("boom in plan")) });
//!     let cleanup = Plan::new("cleanup", move |ctx| async move {
//!         bps::null(&ctx).await?;
//!         c.store(true, Ordering::SeqCst);
//!         Ok(())
//!     });
//!     let plan = run_wrapper(finalize_wrapper(failing, cleanup), Default::default());
//!     let err = RunEngine::new().run(plan).await.unwrap_err();
//!     let RunError::Failed { summary, .. } = err else { panic!() };
//!     assert_eq!((summary.exit_status, summary.reason.as_str()), (ExitStatus::Fail, "boom in plan"));
//!     assert!(cleaned.load(Ordering::SeqCst));
//! });
//! ```

use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

use crate::error::{Interrupt, PlanError};
use crate::msg::Command;
use crate::plan::{MsgPoint, Plan};
use crate::plan_stubs as bps;

/// Opens a run with metadata `md` around `plan` and closes it: `success`, or
/// `fail` with the error as the reason (or `abort`/`success` when the run was
/// aborted/stopped), then passes the error on.
pub fn run_wrapper(plan: Plan, md: Map<String, Value>) -> Plan {
    let name = plan.name().to_owned();
    Plan::new(name, move |ctx| async move {
        bps::open_run(&ctx, md).await?;
        match plan.run(&ctx).await {
            Ok(()) => {
                bps::close_run(&ctx, Some("success"), None).await?;
                Ok(())
            }
            Err(e) => {
                let (status, reason) = match &e {
                    PlanError::Interrupted(Interrupt::Stop) => ("success", String::new()),
                    PlanError::Interrupted(Interrupt::Abort(r)) => ("abort", r.clone()),
                    PlanError::Interrupted(Interrupt::Halt) => ("abort", "halted".into()),
                    other => ("fail", other.to_string()),
                };
                let _ = bps::close_run(&ctx, Some(status), Some(&reason)).await;
                Err(e)
            }
        }
    })
}

/// Runs `plan`, then `cleanup` whether `plan` succeeded or failed; returns
/// `plan`'s error if it failed, else `cleanup`'s.
pub fn finalize_wrapper(plan: Plan, cleanup: Plan) -> Plan {
    let name = plan.name().to_owned();
    Plan::new(name, move |ctx| async move {
        let result = plan.run(&ctx).await;
        let cleaned = cleanup.run(&ctx).await;
        result.and(cleaned)
    })
}

/// Runs `plan` rewindable or not, as Bluesky's `rewindable_wrapper`: with
/// `rewindable = false`, a pause in `plan` resumes where it was instead of
/// replaying the messages since its last checkpoint (for plans whose
/// messages must not be sent twice). The engine's setting is restored after.
///
/// ```
/// use skyrun::{plan_stubs as bps, preprocessors::rewindable_wrapper, Plan, RunEngine};
/// let plan = rewindable_wrapper(Plan::new("once", |ctx| async move { bps::null(&ctx).await }), false);
/// actix::System::new().block_on(async { RunEngine::new().run(plan).await.unwrap(); });
/// ```
pub fn rewindable_wrapper(plan: Plan, rewindable: bool) -> Plan {
    let name = plan.name().to_owned();
    Plan::new(name, move |ctx| async move {
        if rewindable {
            return plan.run(&ctx).await;
        }
        // Not rewindable: switched off for `plan` if it is on, and back on after.
        let was_on = bps::rewindable(&ctx, None).await?;
        if was_on {
            bps::rewindable(&ctx, Some(false)).await?;
        }
        let result = plan.run(&ctx).await;
        let restored = if was_on {
            bps::rewindable(&ctx, Some(true)).await.map(|_| ())
        } else {
            Ok(())
        };
        result.and(restored)
    })
}

/// Stages `devices` before `plan` and unstages them (in reverse) after it, whatever happens.
pub fn stage_wrapper(plan: Plan, devices: Vec<DeviceHandle>) -> Plan {
    let name = plan.name().to_owned();
    let unstage = devices.clone();
    let body = Plan::new(name.clone(), move |ctx| async move {
        for d in &devices {
            bps::stage(&ctx, d).await?;
        }
        plan.run(&ctx).await
    });
    finalize_wrapper(
        body,
        Plan::new("unstage", move |ctx| async move {
            for d in unstage.iter().rev() {
                bps::unstage(&ctx, d).await?;
            }
            Ok(())
        }),
    )
}

/// Moves `motors` back to where they were before `plan`, whatever happens (Bluesky's `reset_positions_wrapper`).
pub fn reset_positions_wrapper(plan: Plan, motors: Vec<DeviceHandle>) -> Plan {
    let name = plan.name().to_owned();
    Plan::new(name, move |ctx| async move {
        let mut start = Vec::with_capacity(motors.len());
        for m in &motors {
            start.push(bps::position(&ctx, m).await?);
        }
        let result = plan.run(&ctx).await;
        let moves: Vec<(&DeviceHandle, f64)> = motors.iter().zip(start).collect();
        let reset = bps::mv(&ctx, &moves).await;
        result.and(reset)
    })
}

/// Reads `devices` into the stream `baseline` at the start of every run the
/// plan opens (after its `open_run`) and at its end (before its
/// `close_run`) (Bluesky's `baseline_wrapper`, which `SupplementalData`
/// applies to every plan). The baseline is read into the run without a run
/// key: a plan whose runs all have keys (several runs at once) needs one
/// wrapper per run, which this does not do yet.
///
/// ```
/// use skyrun::{plans, preprocessors::baseline_wrapper, RunEngine};
/// use skyrun::actors::{sim::SynSignal, DeviceHandle};
/// actix::System::new().block_on(async {
///     let det = DeviceHandle::spawn(SynSignal::new("det", 1.0));
///     let ring = DeviceHandle::spawn(SynSignal::new("ring_current", 300.0));
///     let plan = baseline_wrapper(plans::count(vec![det], 3, 0.0), vec![ring]);
///     RunEngine::new().run(plan).await.unwrap();
/// });
/// ```
pub fn baseline_wrapper(plan: Plan, devices: Vec<DeviceHandle>) -> Plan {
    let name = plan.name().to_owned();
    Plan::new(name, move |ctx| async move {
        if devices.is_empty() {
            return plan.run(&ctx).await;
        }
        let devices = std::rc::Rc::new(devices);
        let hooked = ctx.with_hook(std::rc::Rc::new(move |ctx, point| {
            let devices = devices.clone();
            Box::pin(async move {
                match point {
                    MsgPoint::After(Command::OpenRun, None)
                    | MsgPoint::Before(Command::CloseRun, None) => {
                        bps::trigger_and_read(&ctx, &devices, "baseline").await?;
                    }
                    _ => {}
                }
                Ok(())
            })
        }));
        plan.run(&hooked).await
    })
}
