//! The errors a plan sees, and the errors `RunEngine::run` returns.

use skyrun_actors::{Cause, DeviceError, StatusError};
use thiserror::Error;

use crate::reply::RunSummary;

/// What a plan returns.
pub type PlanResult = Result<(), PlanError>;

/// How a run was interrupted from outside the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// `abort(reason)`: stop, clean up, exit status `abort`.
    Abort(String),
    /// `stop()`: stop, clean up, exit status `success`.
    Stop,
    /// `halt()`: stop without letting the plan clean up, exit status `abort`.
    Halt,
}

/// Why a message, and so the plan sending it, failed.
///
/// ```
/// use skyrun::PlanError;
/// let e = PlanError::Illegal { command: "close_run".into(), reason: "no run is open".into() };
/// assert_eq!(e.to_string(), "close_run: no run is open");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    /// The message's command is not one skyrun knows.
    #[error("unknown message command '{0}'")]
    UnknownCommand(String),
    /// The message is ill-formed (missing device or argument, wrong type).
    #[error("ill-formed '{command}' message: {reason}")]
    IllFormed {
        /// The command.
        command: String,
        /// What is wrong.
        reason: String,
    },
    /// The message is not allowed in the current state (e.g. `close_run` with no open run).
    #[error("{command}: {reason}")]
    Illegal {
        /// The command.
        command: String,
        /// Why it is not allowed.
        reason: String,
    },
    /// What a message would record contradicts the run's streams: one of
    /// the checks of Bluesky's bundler (`RunBundler`), which raises a plain
    /// Python exception for it, named by `raises`.
    ///
    /// ```
    /// use skyrun::{BlueskyException, PlanError};
    /// let e = PlanError::Bundle {
    ///     command: "save".into(),
    ///     reason: "Mismatched objects read".into(),
    ///     raises: BlueskyException::RuntimeError,
    /// };
    /// assert_eq!(e.to_string(), "save: Mismatched objects read");
    /// assert_eq!(e.kind(), "RuntimeError");
    /// ```
    #[error("{command}: {reason}")]
    Bundle {
        /// The command.
        command: String,
        /// What is inconsistent.
        reason: String,
        /// The exception Bluesky raises for the same check.
        raises: BlueskyException,
    },
    /// A device refused or failed an operation.
    #[error("{command} on {device}: {source}")]
    Device {
        /// The command.
        command: String,
        /// The device name.
        device: String,
        /// What the device said.
        #[source]
        source: DeviceError,
    },
    /// A status the plan waited on failed.
    #[error("{command} on {device} failed: {source}")]
    Status {
        /// The command that created the status.
        command: String,
        /// The device name.
        device: String,
        /// Why the status failed.
        #[source]
        source: StatusError,
    },
    /// A message's reply was not of the kind its command gives (a plan
    /// reading the wrong variant, or a registered command answering otherwise).
    #[error("{command}: expected {expected} as its reply, got {got}")]
    WrongReply {
        /// The command.
        command: String,
        /// The kind the plan expected.
        expected: &'static str,
        /// The kind that came back.
        got: &'static str,
    },
    /// `wait` timed out.
    #[error("wait for group {group} timed out after {timeout} s")]
    WaitTimeout {
        /// The group waited on (`None` for the ungrouped statuses).
        group: String,
        /// The timeout, in seconds.
        timeout: f64,
    },
    /// The run was interrupted from outside; the plan should clean up and return.
    #[error("{}", match .0 { Interrupt::Abort(r) if r.is_empty() => "run aborted".to_string(), Interrupt::Abort(r) => format!("run aborted: {r}"), Interrupt::Stop => "run stopped".into(), Interrupt::Halt => "run halted".into() })]
    Interrupted(Interrupt),
    /// The plan itself failed.
    #[error("{0}")]
    Failed(String),
    /// A front end's own exception (a Python plan's or command's), kept as
    /// raised in `cause` so that the plan it is thrown into sees the same
    /// object; `text` is what it says (Python's `str(exc)`).
    ///
    /// ```
    /// use skyrun::PlanError;
    /// use skyrun_actors::Cause;
    /// let e = PlanError::Raised { text: "no beam".into(), cause: Cause::new(std::io::Error::other("no beam")) };
    /// assert_eq!(e.to_string(), "no beam");
    /// ```
    #[error("{text}")]
    Raised {
        /// What the exception says.
        text: String,
        /// The exception itself.
        cause: Cause,
    },
}

impl PlanError {
    /// A plan failure with `reason`, as a plan raises an exception.
    pub fn failed(reason: impl Into<String>) -> Self {
        PlanError::Failed(reason.into())
    }

    /// The error's type name, as Bluesky names its exceptions where it has one
    /// (`FailedStatus`, `WaitForTimeoutError`, ...).
    ///
    /// ```
    /// use skyrun::PlanError;
    /// assert_eq!(PlanError::UnknownCommand("x".into()).kind(), "UnknownCommand");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            PlanError::UnknownCommand(_) => "UnknownCommand",
            PlanError::IllFormed { .. } => "IllFormedMessage",
            PlanError::Illegal { .. } => "IllegalMessageSequence",
            PlanError::Bundle { raises, .. } => raises.name(),
            PlanError::Device { .. } => "DeviceError",
            PlanError::Status { .. } => "FailedStatus",
            PlanError::WrongReply { .. } => "WrongReply",
            PlanError::WaitTimeout { .. } => "WaitForTimeoutError",
            PlanError::Interrupted(_) => "RunInterrupted",
            PlanError::Failed(_) | PlanError::Raised { .. } => "PlanFailed",
        }
    }
}

/// The Python exception Bluesky's bundler raises for a check skyrun's makes
/// too ([`PlanError::Bundle`]): its `assert`s, and the `RuntimeError`s and
/// `ValueError`s it raises where what is read or collected does not fit the
/// streams. skyrun's Python package raises the same class (also an
/// `IllegalMessageSequence`), so plans and tests written against Bluesky
/// catch it unchanged.
///
/// ```
/// use skyrun::BlueskyException;
/// assert_eq!(BlueskyException::ValueError.name(), "ValueError");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlueskyException {
    /// An `assert` of the bundler: the stream declarations do not allow
    /// what the message asks (collecting a stream never declared, ...).
    AssertionError,
    /// What was read or collected contradicts a stream's descriptor.
    RuntimeError,
    /// Data keys of two objects collide in one event.
    ValueError,
    /// event-model's `EventModelValueError` (a `ValueError`): a stream
    /// datum's `seq_nums` or `indices` the run cannot use.
    EventModelValueError,
}

impl BlueskyException {
    /// The Python class's name.
    pub fn name(self) -> &'static str {
        match self {
            BlueskyException::AssertionError => "AssertionError",
            BlueskyException::RuntimeError => "RuntimeError",
            BlueskyException::ValueError => "ValueError",
            BlueskyException::EventModelValueError => "EventModelValueError",
        }
    }
}

/// Why [`RunEngine::run`](crate::RunEngine::run) did not succeed.
#[derive(Debug, Error)]
pub enum RunError {
    /// A plan is already running (or paused) on this engine.
    #[error("the RunEngine is busy: a plan is already {0}")]
    Busy(&'static str),
    /// The plan failed; its runs were closed with exit status `fail`.
    #[error("plan failed: {error}")]
    Failed {
        /// The failure.
        error: PlanError,
        /// What ran.
        summary: RunSummary,
    },
    /// The plan was aborted or halted; its runs were closed with exit status `abort`.
    #[error("plan aborted: {}", summary.reason)]
    Aborted {
        /// What ran.
        summary: RunSummary,
    },
    /// The engine's actor is gone.
    #[error("the RunEngine actor has stopped")]
    EngineGone,
}

/// A control request (pause, resume, abort, ...) that is not valid now.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("cannot {action} while the RunEngine is {state}")]
pub struct ControlError {
    /// The refused request.
    pub action: &'static str,
    /// The engine state.
    pub state: &'static str,
}
