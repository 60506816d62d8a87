//! Suspensions: Bluesky's `RE.request_suspend`, the mechanism under its
//! suspenders (beam dumped, shutter closed, ring current below a floor).
//!
//! A suspension interrupts the plan at once, like an immediate pause: what
//! it waited on is dropped and the devices it moved are stopped. Then,
//! without anyone resuming it, the engine runs the suspension's `pre_plan`
//! (close a shutter), waits until its condition is met, runs its
//! `post_plan` (reopen the shutter), rewinds to the last checkpoint
//! (replaying the messages since) and goes on. The messages of the pre- and
//! post-plans are not kept for a later rewind. A plan with no checkpoint to
//! rewind to cannot be suspended: it is aborted, as Bluesky does. The
//! suspension is one span, "Bluesky RunEngine suspend", with its
//! justification: how long the beam was down is what a trace should show.
//!
//! ```
//! use std::time::Duration;
//! use skyrun::{plan_stubs as bps, plans, Plan, RunEngine, Suspension};
//!
//! actix::System::new().block_on(async {
//!     let re = RunEngine::new();
//!     let re2 = re.clone();
//!     let run = actix::spawn(async move {
//!         re2.run(Plan::new("slow", |ctx| async move {
//!             bps::checkpoint(&ctx).await?;
//!             bps::sleep(&ctx, 0.2).await
//!         }))
//!         .await
//!     });
//!     actix_rt::time::sleep(Duration::from_millis(50)).await;
//!     // Beam lost for 10 ms: the plan waits, then rewinds and finishes.
//!     let beam_back = actix_rt::time::sleep(Duration::from_millis(10));
//!     re.request_suspend(Suspension::until(beam_back).justification("beam lost"))
//!         .await
//!         .unwrap();
//!     assert!(run.await.unwrap().is_ok());
//! });
//! ```

use std::future::Future;
use std::pin::Pin;

use super::Runnable;

/// The condition a suspension waits for, made on the engine's thread.
type Until = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A request to suspend the running plan until a condition is met.
pub struct Suspension {
    pub(crate) until: Until,
    pub(crate) pre_plan: Option<Runnable>,
    pub(crate) post_plan: Option<Runnable>,
    pub(crate) justification: String,
}

impl Suspension {
    /// Suspends until `condition` resolves.
    pub fn until(condition: impl Future<Output = ()> + Send + 'static) -> Self {
        Self::until_with(move || condition)
    }

    /// Suspends until the future `make()` returns (called on the engine's
    /// thread when the suspension starts, so it need not be `Send`) resolves.
    pub fn until_with<F, Fut>(make: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Suspension {
            until: Box::new(move || Box::pin(make())),
            pre_plan: None,
            post_plan: None,
            justification: String::new(),
        }
    }

    /// Runs `plan` once the plan is interrupted, before waiting.
    pub fn pre_plan(mut self, plan: impl Into<Runnable>) -> Self {
        self.pre_plan = Some(plan.into());
        self
    }

    /// Runs `plan` once the condition is met, before rewinding.
    pub fn post_plan(mut self, plan: impl Into<Runnable>) -> Self {
        self.post_plan = Some(plan.into());
        self
    }

    /// Why the plan is suspended (in the span, and the console).
    pub fn justification(mut self, why: impl Into<String>) -> Self {
        self.justification = why.into();
        self
    }
    /// What the interruptions stream records: the justification, or
    /// `suspended` (Bluesky's words when none is given).
    pub(crate) fn why(&self) -> &str {
        if self.justification.is_empty() {
            "suspended"
        } else {
            &self.justification
        }
    }
}

impl std::fmt::Debug for Suspension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suspension")
            .field("justification", &self.justification)
            .field("pre_plan", &self.pre_plan.is_some())
            .field("post_plan", &self.post_plan.is_some())
            .finish()
    }
}
