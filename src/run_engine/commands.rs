//! What the engine does with each command: one handler bound to each
//! command the message model declares (`msg/command.rs`: name, typed
//! arguments, reply kind, rewind, tracing), and whether that handler can
//! wait (`waits`, an async fn) or answers at once (`now`, a plain fn the
//! engine runs on its fast path, without building a future).
//!
//! The binding matches on [`Parsed`], the typed arguments of every declared
//! command: a command declared without a handler here does not compile.
//! Handlers return an explicit `After` effect (continue, pause now, pause
//! if a deferred pause is pending), so the engine loop has no per-command
//! special case.

use std::future::Future;
use std::pin::Pin;

use super::core::EngineCore;
use super::handlers::{bundling, collect, devices, flow, monitors, runs, statuses, Done};
use super::registry::{CommandContext, Handler};
use super::request_context::RequestContext;
use crate::error::PlanError;
use crate::msg::command::Parsed;
use crate::msg::{Command, Msg};

/// What [`dispatch`] gives: a handler's answer, or the work to await.
pub(crate) enum Dispatched<'a> {
    /// Answered at once (a handler that does not wait, or bad arguments).
    Now(Result<Done, PlanError>),
    /// The handler's work, boxed.
    Later(Work<'a>),
}

/// A waiting handler's work.
pub(crate) type Work<'a> = Pin<Box<dyn Future<Output = Result<Done, PlanError>> + 'a>>;

/// Calls a handler: its boxed work when it can wait, its answer when not.
macro_rules! handler_work {
    (waits, $call:expr) => {
        Dispatched::Later(Box::pin($call))
    };
    (now, $call:expr) => {
        Dispatched::Now($call)
    };
}

/// The answer of a handler that does not wait; `None` for one that can.
macro_rules! handler_now {
    (waits, $args:ident, $call:expr) => {{
        let _ = $args;
        None
    }};
    (now, $args:ident, $call:expr) => {
        Some($call)
    };
}

/// Whether a handler answers at once.
macro_rules! answers_now {
    (waits) => {
        false
    };
    (now) => {
        true
    };
}

macro_rules! handlers {
    ($($variant:ident => $waits:ident $handler:path,)*) => {
        /// Runs `registered` if a handler is registered for the command;
        /// otherwise parses `msg`'s arguments and runs the command's handler:
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
            match msg.parse() {
                $(Ok(Parsed::$variant(args)) => handler_work!($waits, $handler(core, msg, args, cx)),)*
                Err(e) => Dispatched::Now(Err(e)),
            }
        }

        impl Command {
            /// Its handler answers at once (`now`, a plain fn): the
            /// engine's fast path runs it without building a future.
            #[inline]
            pub(crate) fn answers_now(&self) -> bool {
                match self {
                    $(Command::$variant => answers_now!($waits),)*
                    Command::Other(_) => false,
                }
            }
        }

        /// Parses `msg`'s arguments and runs the command's handler, if it
        /// answers at once (see [`Command::answers_now`]); `None` otherwise.
        pub(crate) fn dispatch_now(
            core: &std::rc::Rc<EngineCore>,
            msg: &Msg,
            cx: &RequestContext<'_>,
        ) -> Option<Result<Done, PlanError>> {
            match msg.parse() {
                $(Ok(Parsed::$variant(args)) => handler_now!($waits, args, $handler(core, msg, args, cx)),)*
                Err(e) => Some(Err(e)),
            }
        }
    };
}

handlers! {
    OpenRun => now runs::open_run,
    CloseRun => waits runs::close_run,
    DeclareStream => waits bundling::declare_stream,
    Create => now bundling::create,
    Save => waits bundling::save,
    Drop => now bundling::drop_bundle,
    Read => waits bundling::read,
    Locate => waits devices::locate,
    Set => waits statuses::set,
    Trigger => waits statuses::trigger,
    Wait => waits statuses::wait,
    Sleep => waits flow::sleep,
    Checkpoint => now flow::checkpoint,
    ClearCheckpoint => now flow::clear_checkpoint,
    Pause => now flow::pause,
    Rewindable => now flow::rewindable,
    Stage => waits devices::stage,
    Unstage => waits devices::unstage,
    Stop => waits devices::stop,
    Kickoff => waits statuses::kickoff,
    Prepare => waits statuses::prepare,
    Complete => waits statuses::complete,
    Collect => waits collect::collect,
    Configure => waits devices::configure,
    Monitor => waits monitors::monitor,
    Unmonitor => waits monitors::unmonitor,
    Null => now flow::null,
}
