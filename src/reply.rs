//! What the RunEngine answers: the [`Reply`] to each message, checked by the
//! plan side with typed accessors, and the [`RunSummary`] of a whole plan.
//!
//! Every command declares the kind of reply it gives (see
//! [`Command::reply_kind`](crate::Command::reply_kind)); a plan that expects
//! another kind gets a [`PlanError::WrongReply`] naming the command, never a
//! silent default.
//!
//! ```
//! use skyrun::{Command, PlanError, Reply};
//! assert_eq!(Reply::RunUid("u1".into()).run_uid(&Command::OpenRun).unwrap(), "u1");
//! let e = Reply::None.status(&Command::Set).unwrap_err();
//! assert_eq!(e.to_string(), "set: expected a status as its reply, got nothing");
//! ```

use serde_json::Value;
use skyrun_actors::{Readings, Status};

use crate::documents::ExitStatus;
use crate::error::{Interrupt, PlanError};
use crate::msg::Command;

/// Where a movable device is, as Bluesky's `Location` (`locate` replies with these).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Where it was asked to go.
    pub setpoint: Value,
    /// Where it is.
    pub readback: Value,
}

/// What a message returns to the plan.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Nothing.
    None,
    /// The Status of a set, trigger, kickoff or complete.
    Status(Status),
    /// The readings of a read.
    Readings(Readings),
    /// The uid of the run opened or closed.
    RunUid(String),
    /// The number of events a collect emitted.
    Collected(usize),
    /// Whether the statuses a `wait` waited for are all done (`false` only
    /// when it timed out with `error_on_timeout=False`), as Bluesky's
    /// `wait` returns.
    Done(bool),
    /// Configuration before and after a configure (boxed, so that every
    /// reply stays small).
    Configured {
        /// Before.
        old: Box<Readings>,
        /// After.
        new: Box<Readings>,
    },
    /// Where each located device is (`locate`), in the order asked.
    Locations(Vec<Location>),
    /// Any value (what a registered command returns).
    Value(Value),
    /// A front end's own value, handed back to the plan untouched: what a
    /// command registered by a front end answers (the Python package's
    /// `wait_for` answers its asyncio tasks).
    Foreign(Foreign),
}

/// A value the engine carries without looking at it (see [`Reply::Foreign`]).
///
/// ```
/// use skyrun::{Foreign, Reply, ReplyKind};
/// let r = Reply::Foreign(std::sync::Arc::new(7_u8) as Foreign);
/// assert_eq!(r.kind(), ReplyKind::Foreign);
/// ```
pub type Foreign = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// The kinds of [`Reply`], as a command declares the one it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// [`Reply::None`].
    None,
    /// [`Reply::Status`].
    Status,
    /// [`Reply::Readings`].
    Readings,
    /// [`Reply::RunUid`].
    RunUid,
    /// [`Reply::Collected`].
    Collected,
    /// [`Reply::Done`].
    Done,
    /// [`Reply::Configured`].
    Configured,
    /// [`Reply::Locations`].
    Locations,
    /// [`Reply::Value`] (or anything: a registered command's reply is not declared).
    Value,
    /// [`Reply::Foreign`].
    Foreign,
}

impl ReplyKind {
    /// How error messages name the kind.
    pub fn describe(self) -> &'static str {
        match self {
            ReplyKind::None => "nothing",
            ReplyKind::Status => "a status",
            ReplyKind::Readings => "readings",
            ReplyKind::RunUid => "a run uid",
            ReplyKind::Collected => "an event count",
            ReplyKind::Done => "whether it is done",
            ReplyKind::Configured => "a configuration",
            ReplyKind::Locations => "locations",
            ReplyKind::Value => "a value",
            ReplyKind::Foreign => "a front end's value",
        }
    }
}

impl Reply {
    /// The kind of this reply.
    pub fn kind(&self) -> ReplyKind {
        match self {
            Reply::None => ReplyKind::None,
            Reply::Status(_) => ReplyKind::Status,
            Reply::Readings(_) => ReplyKind::Readings,
            Reply::RunUid(_) => ReplyKind::RunUid,
            Reply::Collected(_) => ReplyKind::Collected,
            Reply::Done(_) => ReplyKind::Done,
            Reply::Configured { .. } => ReplyKind::Configured,
            Reply::Locations(_) => ReplyKind::Locations,
            Reply::Value(_) => ReplyKind::Value,
            Reply::Foreign(_) => ReplyKind::Foreign,
        }
    }

    fn wrong(&self, command: &Command, expected: ReplyKind) -> PlanError {
        PlanError::WrongReply {
            command: command.as_str().to_owned(),
            expected: expected.describe(),
            got: self.kind().describe(),
        }
    }

    /// The status this reply carries; an error naming `command` otherwise.
    pub fn status(self, command: &Command) -> Result<Status, PlanError> {
        match self {
            Reply::Status(s) => Ok(s),
            other => Err(other.wrong(command, ReplyKind::Status)),
        }
    }

    /// The readings this reply carries; an error naming `command` otherwise.
    pub fn readings(self, command: &Command) -> Result<Readings, PlanError> {
        match self {
            Reply::Readings(r) => Ok(r),
            other => Err(other.wrong(command, ReplyKind::Readings)),
        }
    }

    /// The run uid this reply carries; an error naming `command` otherwise.
    pub fn run_uid(self, command: &Command) -> Result<String, PlanError> {
        match self {
            Reply::RunUid(u) => Ok(u),
            other => Err(other.wrong(command, ReplyKind::RunUid)),
        }
    }

    /// The event count this reply carries; an error naming `command` otherwise.
    pub fn collected(self, command: &Command) -> Result<usize, PlanError> {
        match self {
            Reply::Collected(n) => Ok(n),
            other => Err(other.wrong(command, ReplyKind::Collected)),
        }
    }

    /// The configuration before and after; an error naming `command` otherwise.
    pub fn configured(self, command: &Command) -> Result<(Readings, Readings), PlanError> {
        match self {
            Reply::Configured { old, new } => Ok((*old, *new)),
            other => Err(other.wrong(command, ReplyKind::Configured)),
        }
    }

    /// The locations this reply carries; an error naming `command` otherwise.
    pub fn locations(self, command: &Command) -> Result<Vec<Location>, PlanError> {
        match self {
            Reply::Locations(l) => Ok(l),
            other => Err(other.wrong(command, ReplyKind::Locations)),
        }
    }

    /// The value this reply carries; an error naming `command` otherwise.
    pub fn value(self, command: &Command) -> Result<Value, PlanError> {
        match self {
            Reply::Value(v) => Ok(v),
            other => Err(other.wrong(command, ReplyKind::Value)),
        }
    }

    /// Whether a `wait` is done; an error naming `command` otherwise.
    pub fn done(self, command: &Command) -> Result<bool, PlanError> {
        match self {
            Reply::Done(d) => Ok(d),
            other => Err(other.wrong(command, ReplyKind::Done)),
        }
    }

    /// Nothing is expected: an error naming `command` if something came back.
    pub fn none(self, command: &Command) -> Result<(), PlanError> {
        match self {
            Reply::None => Ok(()),
            other => Err(other.wrong(command, ReplyKind::None)),
        }
    }
}

/// How a plan ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The exit status of its runs.
    pub exit_status: ExitStatus,
    /// Why it did not succeed (empty on success).
    pub reason: String,
    /// The uids of the runs it opened.
    pub run_uids: Vec<String>,
    /// The interrupt that ended it, if any.
    pub interrupted: Option<Interrupt>,
}
