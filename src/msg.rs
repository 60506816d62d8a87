//! Plan messages: what a plan asks the RunEngine to do, one [`Msg`] at a time,
//! with Bluesky's commands and the span context of the plan that sent it.

use std::fmt;
use std::str::FromStr;

use opentelemetry::Context;
use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

macro_rules! commands {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A message command, as Bluesky names it.
        ///
        /// ```
        /// use skyrun::Command;
        /// assert_eq!("set".parse::<Command>().unwrap(), Command::Set);
        /// assert_eq!(Command::OpenRun.as_str(), "open_run");
        /// assert_eq!("frobnicate".parse::<Command>().unwrap(), Command::Other("frobnicate".into()));
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Command {
            $(#[doc = $doc] $variant,)*
            /// A command skyrun does not know; dispatching it fails the run.
            Other(String),
        }

        impl Command {
            /// Every known command.
            pub const ALL: &'static [Command] = &[$(Command::$variant,)*];

            /// The command's name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Command::$variant => $name,)*
                    Command::Other(s) => s,
                }
            }

            /// The name of a known command, `None` for [`Command::Other`].
            pub fn static_str(&self) -> Option<&'static str> {
                match self {
                    $(Command::$variant => Some($name),)*
                    Command::Other(_) => None,
                }
            }

            /// `Bluesky RunEngine <command>` for a known command.
            pub(crate) fn static_span_name(&self) -> Option<&'static str> {
                match self {
                    $(Command::$variant => Some(concat!("Bluesky RunEngine ", $name)),)*
                    Command::Other(_) => None,
                }
            }
        }

        impl FromStr for Command {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($name => Command::$variant,)*
                    other => Command::Other(other.to_owned()),
                })
            }
        }
    };
}

commands! {
    OpenRun => "open_run", "Open a run: emit the start document.";
    CloseRun => "close_run", "Close a run: emit the stop document.";
    DeclareStream => "declare_stream", "Emit a stream's descriptor before any event.";
    Create => "create", "Start bundling readings into an event.";
    Save => "save", "Emit the bundled readings as an event.";
    Drop => "drop", "Discard the bundled readings.";
    Read => "read", "Read a device (into the bundle, if one is open).";
    Set => "set", "Set a device to a value; returns a Status.";
    Trigger => "trigger", "Trigger a device; returns a Status.";
    Wait => "wait", "Wait for the statuses of a group.";
    Sleep => "sleep", "Sleep for a number of seconds.";
    Checkpoint => "checkpoint", "Mark a point a paused plan can rewind to; deferred pauses happen here.";
    ClearCheckpoint => "clear_checkpoint", "Mark the plan as not rewindable until the next checkpoint.";
    Pause => "pause", "Pause the engine from inside the plan.";
    Stage => "stage", "Stage a device.";
    Unstage => "unstage", "Unstage a device.";
    Kickoff => "kickoff", "Start a flyer; returns a Status.";
    Complete => "complete", "Ask a flyer to finish; returns a Status.";
    Collect => "collect", "Collect a flyer's events and emit them.";
    Configure => "configure", "Configure a device.";
    Null => "null", "Do nothing.";
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

/// One message from a plan to the RunEngine.
///
/// ```
/// use skyrun::{Msg, Command};
/// let m = Msg::new("wait").group("A").kwarg("timeout", 1.5);
/// assert_eq!(m.command, Command::Wait);
/// assert_eq!(m.group.as_deref(), Some("A"));
/// assert_eq!(m.kwargs["timeout"], 1.5);
/// ```
#[derive(Clone)]
pub struct Msg {
    /// What to do.
    pub command: Command,
    /// The device it targets, if any.
    pub obj: Option<DeviceHandle>,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// The run it belongs to, when several runs are open.
    pub run: Option<String>,
    /// The status group (for set/trigger/kickoff/complete/wait).
    pub group: Option<String>,
    /// The span context of the plan that sent it (stamped by the plan handle).
    pub context: Context,
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Msg({:?}, obj={}, args={:?}, kwargs={:?}, run={:?}, group={:?})",
            self.command.as_str(),
            self.obj.as_ref().map(|o| o.name()).unwrap_or("None"),
            self.args,
            self.kwargs,
            self.run,
            self.group
        )
    }
}

impl Msg {
    /// A message with `command` and nothing else.
    pub fn new(command: impl Into<Command>) -> Self {
        Msg {
            command: command.into(),
            obj: None,
            args: Vec::new(),
            kwargs: Map::new(),
            run: None,
            group: None,
            context: Context::new(),
        }
    }

    /// Targets `device`.
    pub fn obj(mut self, device: &DeviceHandle) -> Self {
        self.obj = Some(device.clone());
        self
    }

    /// Adds a positional argument.
    pub fn arg(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Adds a keyword argument.
    pub fn kwarg(mut self, k: impl Into<String>, v: impl Into<Value>) -> Self {
        self.kwargs.insert(k.into(), v.into());
        self
    }

    /// Replaces the keyword arguments.
    pub fn kwargs(mut self, kwargs: Map<String, Value>) -> Self {
        self.kwargs = kwargs;
        self
    }

    /// Puts the message in status group `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Puts the message in status group `group`, if any.
    pub fn maybe_group(mut self, group: Option<String>) -> Self {
        self.group = group;
        self
    }

    /// Addresses the run with key `run`.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// The keyword argument `key`, if present and not null.
    pub fn kw(&self, key: &str) -> Option<&Value> {
        self.kwargs.get(key).filter(|v| !v.is_null())
    }
}
