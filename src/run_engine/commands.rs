//! The command table: every message command skyrun knows, declared once.
//!
//! One entry per command says all the engine knows about it: its name (as
//! Bluesky spells it), its typed arguments (parsed once from the message's
//! Bluesky form — `obj`, `args`, `kwargs` — by the arguments type, with an
//! error naming the command and the argument), the kind of reply it gives,
//! whether it is replayed on a rewind, whether it is traced by default
//! (under the span name `Bluesky RunEngine <name>`) or only with
//! `trace_all_messages`, whether it takes a status `group`, whether its
//! handler can wait (`waits: true`, an async fn) or answers at once
//! (`waits: false`, a plain fn the engine runs on its fast path, without
//! building a future), and its handler.
//! Handlers return an explicit `After` effect (continue, pause now, pause
//! if a deferred pause is pending), so the engine loop has no per-command
//! special case. Adding a command is one entry here and its handler.
//!
//! Commands that are not in the table can be registered at run time
//! ([`RunEngine::register_command`](crate::RunEngine::register_command)).

use std::future::Future;
use std::pin::Pin;

use super::core::EngineCore;
use super::handlers::{bundling, devices, flow, runs, statuses, Done, FromMsg};
use super::registry::{CommandContext, Handler};
use super::request_context::RequestContext;
use crate::error::PlanError;
use crate::msg::Msg;
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

/// What [`dispatch`] gives: a handler's answer, or the work to await.
pub(crate) enum Dispatched<'a> {
    /// Answered at once (a handler that does not wait, or bad arguments).
    Now(Result<Done, PlanError>),
    /// The handler's work, boxed.
    Later(Work<'a>),
}

/// A waiting handler's work.
pub(crate) type Work<'a> = Pin<Box<dyn Future<Output = Result<Done, PlanError>> + 'a>>;

/// Calls a handler: its boxed work when it can wait (`waits: true`), its answer when not.
macro_rules! handler_work {
    (true, $call:expr) => {
        Dispatched::Later(Box::pin($call))
    };
    (false, $call:expr) => {
        Dispatched::Now($call)
    };
}

/// The answer of a handler that does not wait; `None` for one that can.
macro_rules! handler_now {
    (true, $body:block) => {
        None
    };
    (false, $body:block) => {
        Some($body)
    };
}

macro_rules! command_table {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident => $name:literal {
            args: $args:ty,
            reply: $reply:ident,
            cached: $cached:literal,
            trace: $trace:ident,
            group: $group:literal,
            waits: $waits:tt,
            handler: $handler:path $(,)?
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

        /// Runs `registered` if a handler is registered for the command;
        /// otherwise parses `msg`'s arguments and runs the table's handler:
        /// its answer if it has one at once, or the work to await (boxed,
        /// so the engine's per-message future is small whatever the handler).
        pub(crate) fn dispatch<'a>(
            core: &'a std::rc::Rc<EngineCore>,
            msg: &'a Msg,
            registered: Option<Handler>,
            cx: &'a RequestContext<'a>,
        ) -> Dispatched<'a> {
            if let Some(handler) = registered {
                let cmd_cx = CommandContext::new(cx.context().clone(), core.opts().request_timeout);
                let work = handler(msg.clone(), cmd_cx);
                return Dispatched::Later(Box::pin(async move { work.await.map(Done::from) }));
            }
            match &msg.command {
                $(Command::$variant => match <$args as FromMsg>::from_msg(msg) {
                    Ok(args) => handler_work!($waits, $handler(core, msg, args, cx)),
                    Err(e) => Dispatched::Now(Err(e)),
                },)*
                Command::Other(name) => Dispatched::Now(Err(PlanError::UnknownCommand(name.clone()))),
            }
        }

        impl Command {
            /// Its handler answers at once (`waits: false`, a plain fn): the
            /// engine's fast path runs it without building a future.
            #[inline]
            pub(crate) fn answers_now(&self) -> bool {
                match self {
                    $(Command::$variant => !$waits,)*
                    Command::Other(_) => false,
                }
            }
        }

        /// Parses `msg`'s arguments and runs the table's handler, if it
        /// answers at once (see [`Command::answers_now`]); `None` otherwise.
        pub(crate) fn dispatch_now(
            core: &std::rc::Rc<EngineCore>,
            msg: &Msg,
            cx: &RequestContext<'_>,
        ) -> Option<Result<Done, PlanError>> {
            match &msg.command {
                $(Command::$variant => handler_now!($waits, {
                    match <$args as FromMsg>::from_msg(msg) {
                        Ok(args) => $handler(core, msg, args, cx),
                        Err(e) => Err(e),
                    }
                }),)*
                Command::Other(_) => None,
            }
        }
    };
}

command_table! {
    /// Open a run: emit the start document.
    OpenRun => "open_run" {
        args: runs::OpenRunArgs, reply: RunUid, cached: false, trace: All, group: false, waits: false,
        handler: runs::open_run,
    }
    /// Close a run: emit the stop document.
    CloseRun => "close_run" {
        args: runs::CloseRunArgs, reply: RunUid, cached: false, trace: All, group: false, waits: false,
        handler: runs::close_run,
    }
    /// Emit a stream's descriptor before any event.
    DeclareStream => "declare_stream" {
        args: bundling::DeclareStreamArgs, reply: None, cached: true, trace: All, group: false, waits: true,
        handler: bundling::declare_stream,
    }
    /// Start bundling readings into an event.
    Create => "create" {
        args: bundling::CreateArgs, reply: None, cached: true, trace: All, group: false, waits: false,
        handler: bundling::create,
    }
    /// Emit the bundled readings as an event.
    Save => "save" {
        args: bundling::NoArgs, reply: None, cached: true, trace: All, group: false, waits: true,
        handler: bundling::save,
    }
    /// Discard the bundled readings.
    Drop => "drop" {
        args: bundling::NoArgs, reply: None, cached: true, trace: All, group: false, waits: false,
        handler: bundling::drop_bundle,
    }
    /// Read a device (into the bundle, if one is open).
    Read => "read" {
        args: bundling::ReadArgs, reply: Readings, cached: true, trace: All, group: false, waits: true,
        handler: bundling::read,
    }
    /// Locate movable devices: where each was asked to go and where it is.
    Locate => "locate" {
        args: devices::LocateArgs, reply: Locations, cached: true, trace: All, group: false, waits: true,
        handler: devices::locate,
    }
    /// Set a device to a value; returns a Status.
    Set => "set" {
        args: statuses::SetArgs, reply: Status, cached: true, trace: Bluesky, group: true, waits: true,
        handler: statuses::set,
    }
    /// Trigger a device; returns a Status.
    Trigger => "trigger" {
        args: statuses::StatusArgs, reply: Status, cached: true, trace: All, group: true, waits: true,
        handler: statuses::trigger,
    }
    /// Wait for the statuses of a group.
    Wait => "wait" {
        args: statuses::WaitArgs, reply: Done, cached: true, trace: Bluesky, group: true, waits: true,
        handler: statuses::wait,
    }
    /// Sleep for a number of seconds.
    Sleep => "sleep" {
        args: flow::SleepArgs, reply: None, cached: true, trace: All, group: false, waits: true,
        handler: flow::sleep,
    }
    /// Mark a point a paused plan can rewind to; deferred pauses happen here.
    Checkpoint => "checkpoint" {
        args: bundling::NoArgs, reply: None, cached: false, trace: All, group: false, waits: false,
        handler: flow::checkpoint,
    }
    /// Mark the plan as not rewindable until the next checkpoint.
    ClearCheckpoint => "clear_checkpoint" {
        args: bundling::NoArgs, reply: None, cached: false, trace: All, group: false, waits: false,
        handler: flow::clear_checkpoint,
    }
    /// Pause the engine from inside the plan.
    Pause => "pause" {
        args: flow::PauseArgs, reply: None, cached: false, trace: All, group: false, waits: false,
        handler: flow::pause,
    }
    /// Set whether a rewind replays the messages that follow (`null` asks); replies the setting.
    Rewindable => "rewindable" {
        args: flow::RewindableArgs, reply: Value, cached: true, trace: All, group: false, waits: false,
        handler: flow::rewindable,
    }
    /// Stage a device (not replayed on a rewind, as in Bluesky: it stays staged).
    Stage => "stage" {
        args: devices::StageArgs, reply: None, cached: false, trace: All, group: false, waits: true,
        handler: devices::stage,
    }
    /// Unstage a device (not replayed on a rewind, as in Bluesky).
    Unstage => "unstage" {
        args: devices::StageArgs, reply: None, cached: false, trace: All, group: false, waits: true,
        handler: devices::unstage,
    }
    /// Stop a device (`obj.stop()`: a move in progress ends, its status failed).
    Stop => "stop" {
        args: devices::StopArgs, reply: None, cached: true, trace: All, group: false, waits: true,
        handler: devices::stop,
    }
    /// Start a flyer; returns a Status.
    Kickoff => "kickoff" {
        args: statuses::StatusArgs, reply: Status, cached: true, trace: All, group: true, waits: true,
        handler: statuses::kickoff,
    }
    /// Ask a flyer to finish; returns a Status.
    Complete => "complete" {
        args: statuses::CompleteArgs, reply: Status, cached: true, trace: Bluesky, group: true, waits: true,
        handler: statuses::complete,
    }
    /// Collect a flyer's events and emit them.
    Collect => "collect" {
        args: devices::CollectArgs, reply: Collected, cached: true, trace: Bluesky, group: false, waits: true,
        handler: devices::collect,
    }
    /// Configure a device.
    Configure => "configure" {
        args: devices::ConfigureArgs, reply: Configured, cached: true, trace: All, group: false, waits: true,
        handler: devices::configure,
    }
    /// Do nothing.
    Null => "null" {
        args: bundling::NoArgs, reply: None, cached: false, trace: All, group: false, waits: false,
        handler: flow::null,
    }
}
