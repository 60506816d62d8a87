//! The command table: every message command skyrun knows, declared once.
//!
//! One entry per command says what the command *is*: its name (as Bluesky
//! spells it), its typed arguments (parsed once from the message's Bluesky
//! form — `obj`, `args`, `kwargs` — by the arguments type in `msg/args/`,
//! with an error naming the command and the argument), the kind of reply
//! it gives, whether it is replayed on a rewind, whether it is traced by
//! default (under the span name `Bluesky RunEngine <name>`) or only with
//! `trace_all_messages`, and whether it takes a status `group`.
//!
//! What the engine *does* with a command is its handler, in `run_engine/`:
//! the engine binds one handler to each declared command
//! (`run_engine/commands.rs`, one line each), matching on `Parsed`, so a
//! command declared here without a handler does not compile. Adding a
//! command is one entry here (with its arguments type in `msg/args/`,
//! unless it shares one); the compiler then asks for its handler.
//!
//! Commands that are not in the table can be registered at run time
//! ([`RunEngine::register_command`](crate::RunEngine::register_command)).

use std::fmt;

use super::args::bundling::{CreateArgs, DeclareStreamArgs, NoArgs, ReadArgs};
use super::args::devices::{CollectArgs, ConfigureArgs, LocateArgs, StageArgs, StopArgs};
use super::args::flow::{PauseArgs, RewindableArgs, SleepArgs};
use super::args::monitors::{MonitorArgs, UnmonitorArgs};
use super::args::runs::{CloseRunArgs, OpenRunArgs};
use super::args::statuses::{CompleteArgs, SetArgs, StatusArgs, WaitArgs};
use super::args::FromMsg;
use super::Msg;
use crate::error::PlanError;
use crate::reply::ReplyKind;

/// How a command is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// Traced by default, as Bluesky traces it (`set`, `wait`, `complete`, `collect`).
    Bluesky,
    /// Traced only with `trace_all_messages` (`--trace-all`).
    All,
}

/// What the table declares about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    /// The command's name.
    pub name: &'static str,
    /// The span of a traced message: `Bluesky RunEngine <name>`.
    pub span_name: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Replayed when a paused plan rewinds to its last checkpoint.
    pub cached: bool,
    /// When it is traced.
    pub trace: Trace,
    /// It puts a status in a group (so `msg.kwargs` records `group` first).
    pub takes_group: bool,
    /// The kind of reply it gives.
    pub reply: ReplyKind,
}

macro_rules! command_table {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident => $name:literal {
            args: $args:ty,
            reply: $reply:ident,
            cached: $cached:literal,
            trace: $trace:ident,
            group: $group:literal $(,)?
        }
    )*) => {
        /// A message command, as Bluesky names it (generated from the command table).
        ///
        /// ```
        /// use skyrun::Command;
        /// assert_eq!("set".parse::<Command>().unwrap(), Command::Set);
        /// assert_eq!(Command::OpenRun.as_str(), "open_run");
        /// assert_eq!("frobnicate".parse::<Command>().unwrap(), Command::Other("frobnicate".into()));
        /// assert!(Command::Set.info().unwrap().cached);
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Command {
            $($(#[doc = $doc])+ $variant,)*
            /// A command not in the table: a registered one, or unknown (which fails the run).
            Other(String),
        }

        impl Command {
            /// Every command of the table.
            pub const ALL: &'static [Command] = &[$(Command::$variant,)*];

            /// The command's name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Command::$variant => $name,)*
                    Command::Other(s) => s,
                }
            }

            /// The name of a command of the table, `None` for [`Command::Other`].
            pub fn static_str(&self) -> Option<&'static str> {
                self.info().map(|i| i.name)
            }

            /// What the table declares about it; `None` for [`Command::Other`].
            pub fn info(&self) -> Option<&'static CommandInfo> {
                match self {
                    $(Command::$variant => Some(&CommandInfo {
                        name: $name,
                        span_name: concat!("Bluesky RunEngine ", $name),
                        doc: concat!($($doc),+),
                        cached: $cached,
                        trace: Trace::$trace,
                        takes_group: $group,
                        reply: ReplyKind::$reply,
                    }),)*
                    Command::Other(_) => None,
                }
            }

            /// The kind of reply it gives (a registered command's is not declared: `Value`).
            pub fn reply_kind(&self) -> ReplyKind {
                self.info().map_or(ReplyKind::Value, |i| i.reply)
            }
        }

        impl std::str::FromStr for Command {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($name => Command::$variant,)*
                    other => Command::Other(other.to_owned()),
                })
            }
        }

        /// A message's typed arguments: one variant per command of the
        /// table, holding the arguments its declaration names.
        pub(crate) enum Parsed<'m> {
            $($variant($args),)*
        }

        impl Msg {
            /// Parses the message's arguments as its command declares them:
            /// an error names the command and the argument, and a command
            /// not in the table is [`PlanError::UnknownCommand`].
            #[inline(always)]
            pub(crate) fn parse<'m>(&'m self) -> Result<Parsed<'m>, PlanError> {
                match &self.command {
                    $(Command::$variant => <$args as FromMsg<'m>>::from_msg(self).map(Parsed::$variant),)*
                    Command::Other(name) => Err(PlanError::UnknownCommand(name.clone())),
                }
            }
        }
    };
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Command {
    fn from(s: &str) -> Self {
        s.parse().expect("infallible")
    }
}

command_table! {
    /// Open a run: emit the start document.
    OpenRun => "open_run" {
        args: OpenRunArgs<'m>, reply: RunUid, cached: false, trace: All, group: false,
    }
    /// Close a run: emit the stop document.
    CloseRun => "close_run" {
        args: CloseRunArgs<'m>, reply: RunUid, cached: false, trace: All, group: false,
    }
    /// Emit a stream's descriptor before any event.
    DeclareStream => "declare_stream" {
        args: DeclareStreamArgs<'m>, reply: None, cached: true, trace: All, group: false,
    }
    /// Start bundling readings into an event.
    Create => "create" {
        args: CreateArgs<'m>, reply: None, cached: true, trace: All, group: false,
    }
    /// Emit the bundled readings as an event.
    Save => "save" {
        args: NoArgs, reply: None, cached: true, trace: All, group: false,
    }
    /// Discard the bundled readings.
    Drop => "drop" {
        args: NoArgs, reply: None, cached: true, trace: All, group: false,
    }
    /// Read a device (into the bundle, if one is open).
    Read => "read" {
        args: ReadArgs<'m>, reply: Readings, cached: true, trace: All, group: false,
    }
    /// Locate movable devices: where each was asked to go and where it is.
    Locate => "locate" {
        args: LocateArgs<'m>, reply: Locations, cached: true, trace: All, group: false,
    }
    /// Set a device to a value; returns a Status.
    Set => "set" {
        args: SetArgs<'m>, reply: Status, cached: true, trace: Bluesky, group: true,
    }
    /// Prepare a device for a fly scan (`prepare(obj, value)`); returns a Status.
    Prepare => "prepare" {
        args: SetArgs<'m>, reply: Status, cached: true, trace: All, group: true,
    }
    /// Trigger a device; returns a Status.
    Trigger => "trigger" {
        args: StatusArgs<'m>, reply: Status, cached: true, trace: All, group: true,
    }
    /// Wait for the statuses of a group.
    Wait => "wait" {
        args: WaitArgs<'m>, reply: Done, cached: true, trace: Bluesky, group: true,
    }
    /// Sleep for a number of seconds.
    Sleep => "sleep" {
        args: SleepArgs, reply: None, cached: true, trace: All, group: false,
    }
    /// Mark a point a paused plan can rewind to; deferred pauses happen here.
    Checkpoint => "checkpoint" {
        args: NoArgs, reply: None, cached: false, trace: All, group: false,
    }
    /// Mark the plan as not rewindable until the next checkpoint.
    ClearCheckpoint => "clear_checkpoint" {
        args: NoArgs, reply: None, cached: false, trace: All, group: false,
    }
    /// Pause the engine from inside the plan.
    Pause => "pause" {
        args: PauseArgs, reply: None, cached: false, trace: All, group: false,
    }
    /// Set whether a rewind replays the messages that follow (`null` asks); replies the setting.
    Rewindable => "rewindable" {
        args: RewindableArgs, reply: Value, cached: true, trace: All, group: false,
    }
    /// Stage a device (not replayed on a rewind, as in Bluesky: it stays
    /// staged); replies the device's status, in the message's group, when its
    /// stage answers one.
    Stage => "stage" {
        args: StageArgs<'m>, reply: None, cached: false, trace: All, group: false,
    }
    /// Unstage a device (not replayed on a rewind, as in Bluesky); a status as `stage`'s.
    Unstage => "unstage" {
        args: StageArgs<'m>, reply: None, cached: false, trace: All, group: false,
    }
    /// Stop a device (`obj.stop()`: a move in progress ends, its status failed).
    Stop => "stop" {
        args: StopArgs<'m>, reply: None, cached: true, trace: All, group: false,
    }
    /// Start a flyer; returns a Status.
    Kickoff => "kickoff" {
        args: StatusArgs<'m>, reply: Status, cached: true, trace: All, group: true,
    }
    /// Ask a flyer to finish; returns a Status.
    Complete => "complete" {
        args: CompleteArgs<'m>, reply: Status, cached: true, trace: Bluesky, group: true,
    }
    /// Collect a flyer's events and emit them.
    Collect => "collect" {
        args: CollectArgs<'m>, reply: Collected, cached: true, trace: Bluesky, group: false,
    }
    /// Configure a device.
    Configure => "configure" {
        args: ConfigureArgs<'m>, reply: Configured, cached: true, trace: All, group: false,
    }
    /// Emit an event in the stream `name` (`<obj>_monitor`) for each new reading of a device, until `unmonitor` or the end of the run.
    Monitor => "monitor" {
        args: MonitorArgs<'m>, reply: None, cached: false, trace: All, group: false,
    }
    /// Stop monitoring a device.
    Unmonitor => "unmonitor" {
        args: UnmonitorArgs<'m>, reply: None, cached: false, trace: All, group: false,
    }
    /// Do nothing. Bluesky caches it for a rewind, where replaying it does
    /// nothing but show it to `msg_hook`: the engine caches it only while a
    /// replay hook is set.
    Null => "null" {
        args: NoArgs, reply: None, cached: false, trace: All, group: false,
    }
}
