//! Requests from outside the plan (pause, resume, abort, stop, halt) and the
//! engine state they move between: idle, running, paused.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use super::suspension::Suspension;
use crate::error::{ControlError, Interrupt};

/// What the engine is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    /// No plan is running.
    Idle,
    /// A plan is running.
    Running,
    /// A plan is paused, waiting for resume, abort, stop or halt.
    Paused,
}

impl EngineState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineState::Idle => "idle",
            EngineState::Running => "running",
            EngineState::Paused => "paused",
        }
    }
}

/// The engine state, readable from any thread.
#[derive(Debug, Default)]
pub(crate) struct AtomicState(AtomicU8);

impl AtomicState {
    pub fn get(&self) -> EngineState {
        match self.0.load(Ordering::Acquire) {
            0 => EngineState::Idle,
            1 => EngineState::Running,
            _ => EngineState::Paused,
        }
    }
    pub fn set(&self, s: EngineState) {
        self.0.store(
            match s {
                EngineState::Idle => 0,
                EngineState::Running => 1,
                EngineState::Paused => 2,
            },
            Ordering::Release,
        );
    }
}

/// Pending control requests, on the engine's thread.
#[derive(Default)]
pub(crate) struct Control {
    /// A pause was requested: `Some(true)` deferred to the next checkpoint, `Some(false)` now.
    pause: Cell<Option<bool>>,
    resume: Cell<bool>,
    /// An interrupt not yet delivered to the plan.
    interrupt: RefCell<Option<Interrupt>>,
    /// The interrupt that ends this execution (kept for the exit status).
    outcome: RefCell<Option<Interrupt>>,
    halted: Cell<bool>,
    /// A suspension requested (it also asks for an immediate pause).
    suspension: RefCell<Option<Suspension>>,
    notify: Notify,
}

impl Control {
    pub fn reset(&self) {
        self.pause.set(None);
        self.resume.set(false);
        self.interrupt.replace(None);
        self.outcome.replace(None);
        self.halted.set(false);
        self.suspension.replace(None);
    }

    /// Suspends the running plan (see [`Suspension`]): it is interrupted
    /// as by an immediate pause, and resumes by itself. Asked while paused,
    /// the suspension is carried out first when the plan is resumed (as
    /// Bluesky puts its `_start_suspender` on top of the paused plan).
    pub fn request_suspend(&self, state: EngineState, s: Suspension) -> Result<(), ControlError> {
        match state {
            EngineState::Running => {
                self.suspension.replace(Some(s));
                self.pause.set(Some(false));
            }
            EngineState::Paused => {
                self.suspension.replace(Some(s));
            }
            _ => {
                return Err(ControlError {
                    action: "suspend",
                    state: state.as_str(),
                })
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    /// The suspension to carry out, if one was requested.
    pub fn take_suspension(&self) -> Option<Suspension> {
        self.suspension.borrow_mut().take()
    }

    pub fn request_pause(&self, state: EngineState, defer: bool) -> Result<(), ControlError> {
        match state {
            EngineState::Running => {
                // An immediate request overrides a deferred one, not the other way round.
                let now = self.pause.get().map_or(defer, |d| d && defer);
                self.pause.set(Some(now));
                self.notify.notify_waiters();
                Ok(())
            }
            s => Err(ControlError {
                action: "pause",
                state: s.as_str(),
            }),
        }
    }

    pub fn request_resume(&self, state: EngineState) -> Result<(), ControlError> {
        if state != EngineState::Paused {
            return Err(ControlError {
                action: "resume",
                state: state.as_str(),
            });
        }
        self.resume.set(true);
        self.notify.notify_waiters();
        Ok(())
    }

    pub fn request_interrupt(&self, state: EngineState, i: Interrupt) -> Result<(), ControlError> {
        if state == EngineState::Idle {
            return Err(ControlError {
                action: match i {
                    Interrupt::Abort(_) => "abort",
                    Interrupt::Stop => "stop",
                    Interrupt::Halt => "halt",
                },
                state: state.as_str(),
            });
        }
        self.outcome.replace(Some(i.clone()));
        if i == Interrupt::Halt {
            // Never delivered to the plan: the plan is dropped, without cleanup.
            self.halted.set(true);
        } else {
            self.interrupt.replace(Some(i));
        }
        self.notify.notify_waiters();
        Ok(())
    }

    /// The pause request, if any: `Some(defer)`.
    pub fn pause_requested(&self) -> Option<bool> {
        self.pause.get()
    }

    pub fn clear_pause(&self) {
        self.pause.set(None);
    }

    /// Takes the interrupt to deliver to the plan, if one is pending.
    pub fn take_interrupt(&self) -> Option<Interrupt> {
        self.interrupt.borrow_mut().take()
    }

    pub fn outcome(&self) -> Option<Interrupt> {
        self.outcome.borrow().clone()
    }

    fn breaks_in(&self) -> bool {
        self.pause.get() == Some(false) || self.interrupt.borrow().is_some()
    }

    /// Resolves when processing of the current message must stop: an immediate
    /// pause or an interrupt was requested.
    pub async fn interrupted(&self) {
        loop {
            let notified = self.notify.notified();
            if self.breaks_in() {
                return;
            }
            notified.await;
        }
    }

    /// Resolves when the plan must be dropped without cleanup.
    pub async fn halted(&self) {
        loop {
            let notified = self.notify.notified();
            if self.halted.get() {
                return;
            }
            notified.await;
        }
    }

    /// While paused: resolves with `Ok` on resume, or the interrupt that ends the pause.
    pub async fn paused(&self) -> Result<(), Interrupt> {
        loop {
            let notified = self.notify.notified();
            if let Some(i) = self.take_interrupt() {
                return Err(i);
            }
            if self.resume.replace(false) {
                return Ok(());
            }
            notified.await;
        }
    }
}
