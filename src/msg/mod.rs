//! Plan messages: what a plan asks the RunEngine to do, one [`Msg`] at a time,
//! in Bluesky's form (command, obj, args, kwargs), with the span context of
//! the plan that sent it.
//!
//! A `Msg` is untyped, as Bluesky's are; the command table ([`command`],
//! which also generates [`Command`]) declares what each command is, and its
//! arguments type (`msg/args/`) checks a message once and turns it into
//! typed arguments. Plans build messages with the typed constructors here
//! ([`Msg::set`], [`Msg::wait`], ...), or with [`Msg::new`] for a
//! registered command.
//!
//! The message model ([`Msg`], [`Command`], [`Reply`](crate::Reply),
//! [`PlanError`](crate::PlanError)) stands on its own: nothing here knows
//! the engine, which binds a handler to each command (`run_engine/commands.rs`).

pub(crate) mod args;
pub mod command;

use std::fmt;

use opentelemetry::Context;
use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

pub use self::command::{Command, CommandInfo, Trace};

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
    /// More devices given among the positional arguments, as in Bluesky's
    /// `Msg('locate', obj1, obj2)` or `Msg('declare_stream', None, *objs)`.
    pub objs: Vec<DeviceHandle>,
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
    /// What a front end made the message from (the Python package's `Msg`
    /// object), given back to its hooks: a rewind replays the message, and
    /// Bluesky's `msg_hook` sees the object the plan yielded again.
    pub origin: Option<MsgOrigin>,
}

/// What a message was made from (see [`Msg::origin`]): any value a front
/// end wants back.
pub type MsgOrigin = std::sync::Arc<dyn std::any::Any + Send + Sync>;

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
        Msg::whole(command.into(), None, Vec::new(), None)
    }

    /// Targets `device`.
    pub fn obj(mut self, device: &DeviceHandle) -> Self {
        self.obj = Some(device.clone());
        self
    }

    /// Adds a device among the positional arguments (see [`Msg::objs`](Msg#structfield.objs)).
    pub fn device_arg(mut self, device: &DeviceHandle) -> Self {
        self.objs.push(device.clone());
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

/// Typed constructors, one per command of the table: what plan stubs send.
///
/// ```
/// use skyrun::{Command, Msg};
/// let m = Msg::wait(Some("g"), Some(1.0));
/// assert_eq!(m.command, Command::Wait);
/// assert_eq!(m.group.as_deref(), Some("g"));
/// assert_eq!(m.kwargs["timeout"], 1.0);
/// ```
impl Msg {
    /// A message built whole (not through the builders, each of which moves
    /// the whole message): for the constructors plans send most.
    #[inline]
    fn whole(
        command: Command,
        obj: Option<&DeviceHandle>,
        args: Vec<Value>,
        group: Option<String>,
    ) -> Self {
        Msg {
            command,
            obj: obj.cloned(),
            objs: Vec::new(),
            args,
            kwargs: Map::new(),
            run: None,
            group,
            context: Context::new(),
            origin: None,
        }
    }

    /// `open_run(**md)`.
    pub fn open_run(md: Map<String, Value>) -> Self {
        Msg::new(Command::OpenRun).kwargs(md)
    }

    /// `close_run(exit_status=, reason=)` (only those given).
    pub fn close_run(exit_status: Option<&str>, reason: Option<&str>) -> Self {
        let mut m = Msg::new(Command::CloseRun);
        if let Some(e) = exit_status {
            m = m.kwarg("exit_status", e);
        }
        if let Some(r) = reason {
            m = m.kwarg("reason", r);
        }
        m
    }

    /// `declare_stream(*devices, name=)`: one message for all the stream's
    /// devices, as Bluesky's (`Msg('declare_stream', None, *objs, name=name)`).
    pub fn declare_stream<D: AsRef<DeviceHandle>>(devices: &[D], name: &str) -> Self {
        let mut m = Msg::new(Command::DeclareStream).kwarg("name", name);
        m.objs = devices.iter().map(|d| d.as_ref().clone()).collect();
        m
    }

    /// `create(name=)`.
    pub fn create(name: &str) -> Self {
        Msg::new(Command::Create).kwarg("name", name)
    }

    /// `save()`.
    pub fn save() -> Self {
        Msg::new(Command::Save)
    }

    /// `drop()`.
    pub fn drop_bundle() -> Self {
        Msg::new(Command::Drop)
    }

    /// `read(device)`.
    pub fn read(device: &DeviceHandle) -> Self {
        Msg::whole(Command::Read, Some(device), Vec::new(), None)
    }

    /// `locate(device)`.
    pub fn locate(device: &DeviceHandle) -> Self {
        Msg::whole(Command::Locate, Some(device), Vec::new(), None)
    }

    /// `set(device, value, group=)`.
    pub fn set(device: &DeviceHandle, value: impl Into<Value>, group: Option<String>) -> Self {
        Msg::whole(Command::Set, Some(device), vec![value.into()], group)
    }

    /// `trigger(device, group=)`.
    pub fn trigger(device: &DeviceHandle, group: Option<String>) -> Self {
        Msg::whole(Command::Trigger, Some(device), Vec::new(), group)
    }

    /// `wait(group=, timeout=)`: `timeout` is written only when given.
    pub fn wait(group: Option<&str>, timeout: Option<f64>) -> Self {
        let m = Msg::whole(Command::Wait, None, Vec::new(), group.map(str::to_owned));
        match timeout {
            Some(t) => m.kwarg("timeout", t),
            None => m,
        }
    }

    /// `sleep(seconds)`.
    pub fn sleep(secs: f64) -> Self {
        Msg::new(Command::Sleep).arg(secs)
    }

    /// `checkpoint()`.
    pub fn checkpoint() -> Self {
        Msg::new(Command::Checkpoint)
    }

    /// `clear_checkpoint()`.
    pub fn clear_checkpoint() -> Self {
        Msg::new(Command::ClearCheckpoint)
    }

    /// `pause(defer=)`.
    pub fn pause(defer: bool) -> Self {
        Msg::new(Command::Pause).kwarg("defer", defer)
    }

    /// `stage(device)`.
    pub fn stage(device: &DeviceHandle) -> Self {
        Msg::new(Command::Stage).obj(device)
    }

    /// `rewindable(flag)`: `None` asks whether a rewind may replay what follows.
    pub fn rewindable(flag: Option<bool>) -> Self {
        Msg::new(Command::Rewindable).arg(flag.map_or(Value::Null, Value::Bool))
    }

    /// `stop(device)`.
    pub fn stop(device: &DeviceHandle) -> Self {
        Msg::new(Command::Stop).obj(device)
    }

    /// `unstage(device)`.
    pub fn unstage(device: &DeviceHandle) -> Self {
        Msg::new(Command::Unstage).obj(device)
    }

    /// `kickoff(flyer, group=)`.
    pub fn kickoff(flyer: &DeviceHandle, group: Option<String>) -> Self {
        Msg::new(Command::Kickoff).obj(flyer).maybe_group(group)
    }

    /// `complete(flyer, group=)`.
    pub fn complete(flyer: &DeviceHandle, group: Option<String>) -> Self {
        Msg::new(Command::Complete).obj(flyer).maybe_group(group)
    }

    /// `collect(flyer, stream=False, return_payload=True, name=None)`.
    pub fn collect(flyer: &DeviceHandle) -> Self {
        Msg::new(Command::Collect)
            .obj(flyer)
            .kwarg("stream", false)
            .kwarg("return_payload", true)
            .kwarg("name", Value::Null)
    }

    /// `configure(device, **settings)`.
    pub fn configure(device: &DeviceHandle, settings: Map<String, Value>) -> Self {
        Msg::new(Command::Configure).obj(device).kwargs(settings)
    }

    /// `monitor(device, name=...)`: events of `device`'s readings in the
    /// stream `name` (default `<device>_monitor`).
    pub fn monitor(device: &DeviceHandle, name: Option<&str>) -> Self {
        let m = Msg::new(Command::Monitor).obj(device);
        match name {
            Some(n) => m.kwarg("name", n),
            None => m,
        }
    }

    /// `unmonitor(device)`.
    pub fn unmonitor(device: &DeviceHandle) -> Self {
        Msg::new(Command::Unmonitor).obj(device)
    }

    /// `null()`.
    pub fn null() -> Self {
        Msg::new(Command::Null)
    }
}
