//! Pausing and suspending (the engine core's side of Bluesky's
//! `_run` loop when it is interrupted): a pause waits for resume and
//! rewinds to the last checkpoint, replaying the messages since; a
//! suspension runs its pre-plan, waits for its condition, runs its
//! post-plan and rewinds, in one span. A suspension asked for while paused
//! is carried out when the plan is resumed.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures::future::{select, Either};
use opentelemetry::trace::{Span as _, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use skyrun_actors::Replay;

use super::{stop_devices, EngineCore, PauseOutcome, Processed};
use crate::error::{Interrupt, PlanError};
use crate::run_engine::control::EngineState;
use crate::run_engine::core_handle::CoreHandle;
use crate::run_engine::handlers::monitors;
use crate::run_engine::pausable;
use crate::run_engine::suspension::Suspension;
use crate::run_engine::Runnable;

impl EngineCore {
    /// [`Self::pause_and_rewind`] on the heap: pauses are rare, and inline
    /// its future would make every message's future (which the plan holds
    /// and copies) larger.
    #[inline(never)]
    pub(super) fn pause_and_rewind_boxed(
        self: &Rc<Self>,
    ) -> Pin<Box<dyn Future<Output = PauseOutcome> + '_>> {
        Box::pin(self.pause_and_rewind())
    }

    /// Pauses until resumed; then replays the messages since the last
    /// checkpoint and returns the reply to the last one, if any.
    pub(super) async fn pause_and_rewind(self: &Rc<Self>) -> PauseOutcome {
        'paused: loop {
            self.control.clear_pause();
            let suspension = self.control.take_suspension();
            if suspension.is_none() && self.st.borrow().checkpoint_cleared {
                // Bluesky's FailedPause: the plan cannot be resumed.
                return Err(self.cannot_resume("cannot pause"));
            }
            // Subscribers have seen every document up to the pause once it is reported.
            self.docs.flush().await;
            if suspension.is_none() {
                self.state.set(EngineState::Paused);
            }
            let touched = std::mem::take(&mut self.st.borrow_mut().touched);
            stop_devices(&touched).await;
            let suspension = match suspension {
                Some(s) => Some(s),
                None => {
                    self.record_interruption("pause");
                    monitors::suspend_monitors(self);
                    if pausable::pause_devices(self).await == Replay::NotAllowed {
                        // Bluesky's NoReplayAllowed: the checkpoint is now.
                        let mut st = self.st.borrow_mut();
                        st.msg_cache = st.msg_cache.as_ref().map(|_| Vec::new());
                        for run in st.runs.iter_mut() {
                            run.checkpoint();
                        }
                    }
                    let resumed = self.control.paused().await;
                    self.state.set(EngineState::Running);
                    resumed.map_err(PlanError::Interrupted)?;
                    self.record_interruption("resume");
                    pausable::resume_devices(self).await;
                    monitors::restore_monitors(self).await?;
                    // A suspension asked for while paused comes first.
                    self.control.take_suspension()
                }
            };
            if let Some(s) = suspension {
                self.record_interruption(s.why());
                if !self.suspend(s).await? {
                    // Paused during the suspension: an ordinary pause now.
                    continue 'paused;
                }
            }
            let replay = {
                let mut st = self.st.borrow_mut();
                // Not rewindable: the plan goes on where it paused (an open
                // bundle stays open), as in Bluesky.
                match st.msg_cache.clone() {
                    None => Vec::new(),
                    Some(_) if st.not_rewindable => Vec::new(),
                    Some(cache) => {
                        st.groups.clear();
                        for run in st.runs.iter_mut() {
                            run.rewind();
                        }
                        cache
                    }
                }
            };
            let mut last = None;
            let hook = self.registry.replay_hook();
            for m in &replay {
                if let Some(hook) = &hook {
                    hook(m);
                }
                match self.process_interruptible(m).await {
                    Processed::Done(r) => last = Some(r),
                    Processed::Interrupted(i) => return Err(PlanError::Interrupted(i)),
                    Processed::Paused => continue 'paused,
                }
            }
            return Ok(last);
        }
    }

    /// Bluesky's FailedPause: nothing to rewind to, so nothing to resume:
    /// the plan is aborted (it cleans up; its runs end `abort`), and the
    /// run's reason says why (`no checkpoint to rewind to: WHAT`).
    fn cannot_resume(&self, what: &str) -> PlanError {
        let abort = Interrupt::Abort(format!("no checkpoint to rewind to: {what}"));
        let _ = self
            .control
            .request_interrupt(EngineState::Running, abort.clone());
        self.control.take_interrupt();
        PlanError::Interrupted(abort)
    }

    /// Carries out a suspension (see [`super::suspension`]): the pre-plan,
    /// the wait for the condition (and for any suspension requested
    /// meanwhile), the post-plan, in one span. `Ok(true)` when the plan may
    /// go on (rewinding), `Ok(false)` when a pause was requested meanwhile.
    async fn suspend(self: &Rc<Self>, s: Suspension) -> Result<bool, PlanError> {
        if self.st.borrow().msg_cache.is_none() {
            return Err(self.cannot_resume(&format!("cannot suspend ({})", s.justification)));
        }
        let here = Context::current();
        let parent = self.span_parent(&here, None);
        let mut span = self.tracer.start(
            "Bluesky RunEngine suspend".to_owned(),
            &parent,
            vec![KeyValue::new("justification", s.justification.clone())],
        );
        let r = self.suspended(s).await;
        if let Some(span) = span.as_mut() {
            if let Err(e) = &r {
                span.set_status(SpanStatus::error(e.to_string()));
            }
        }
        if let Some(mut span) = span {
            span.end();
        }
        self.suspending.set(false);
        r
    }

    async fn suspended(self: &Rc<Self>, s: Suspension) -> Result<bool, PlanError> {
        let mut posts = Vec::new();
        let mut until = Vec::new();
        let mut next = Some(s);
        loop {
            if let Some(s) = next.take() {
                until.push((s.until)());
                posts.extend(s.post_plan);
                if let Some(pre) = s.pre_plan {
                    if !self.run_aside(pre).await? {
                        return Ok(false);
                    }
                }
            }
            let all = futures::future::join_all(until.iter_mut().map(|f| f.as_mut()));
            let stop = self.control.interrupted();
            match select(std::pin::pin!(all), std::pin::pin!(stop)).await {
                Either::Left(_) => break,
                Either::Right(_) => match self.interrupted_aside()? {
                    Some(s) => next = Some(s),
                    None => return Ok(false),
                },
            }
        }
        for post in posts {
            if !self.run_aside(post).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// What interrupted a suspension: an interrupt (the error), another
    /// suspension (to wait for too), or a pause (`None`: it becomes an
    /// ordinary pause, asked for again here).
    fn interrupted_aside(&self) -> Result<Option<Suspension>, PlanError> {
        if let Some(i) = self.control.take_interrupt() {
            return Err(PlanError::Interrupted(i));
        }
        self.control.clear_pause();
        match self.control.take_suspension() {
            Some(s) => Ok(Some(s)),
            None => {
                self.control.request_pause(EngineState::Running, false).ok();
                Ok(None)
            }
        }
    }

    /// Runs a suspension's pre- or post-plan (its messages are not cached),
    /// interruptibly: `Ok(false)` when a pause was asked for meanwhile (the
    /// plan is dropped). A suspension asked for meanwhile is waited for at once.
    async fn run_aside(self: &Rc<Self>, plan: Runnable) -> Result<bool, PlanError> {
        self.suspending.set(true);
        let mut body = (plan.body)(CoreHandle::new(self.clone()), Context::current());
        let r = loop {
            let stop = self.control.interrupted();
            match select(body.as_mut(), std::pin::pin!(stop)).await {
                Either::Left((r, _)) => break r.map(|()| true),
                Either::Right(_) => match self.interrupted_aside() {
                    Err(e) => break Err(e),
                    Ok(None) => break Ok(false),
                    Ok(Some(s)) => {
                        // Nested: wait for it before the plan aside goes on.
                        if !Box::pin(self.suspended(s)).await? {
                            break Ok(false);
                        }
                    }
                },
            }
        };
        self.suspending.set(false);
        r
    }
}
