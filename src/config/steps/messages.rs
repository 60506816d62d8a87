//! The steps that are one Bluesky message each: `stage`, `unstage`, `stop`,
//! `create`, `read`, `save`, `drop`, `declare_stream`, `configure`, `pause`,
//! `locate` (and `rd`, which locates), so a plan file can spell any plan
//! that Bluesky's stubs build message by message.
//!
//! ```toml
//! [[steps]]
//! stub = "stage"
//! device = "det"
//! [[steps]]
//! stub = "open_run"
//! [[steps]]
//! stub = "declare_stream"
//! devices = ["det", "motor"]
//! [[steps]]
//! stub = "create"            # stream = "primary" by default
//! [[steps]]
//! stub = "read"
//! device = "det"
//! [[steps]]
//! stub = "save"
//! [[steps]]
//! stub = "configure"
//! device = "motor"
//! settings = { velocity = 2.0 }
//! [[steps]]
//! stub = "close_run"
//! [[steps]]
//! stub = "unstage"
//! device = "det"
//! ```

use std::fmt;

use serde_json::{Map, Value};
use skyrun_actors::DeviceHandle;

use crate::config::args::{Args, DeviceRef, Need};
use crate::config::devices::{DeviceSet, Devices};
use crate::config::error::ConfigError;
use crate::config::metadata;
use crate::plan::PlanCtx;
use crate::plan_stubs as bps;

/// The arguments each takes.
pub(crate) fn takes(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "stage" | "unstage" | "stop" | "read" | "locate" | "rd" => &["device"],
        "create" => &["stream"],
        "save" | "drop" => &[],
        "declare_stream" => &["devices", "stream"],
        "configure" => &["device", "settings"],
        "pause" => &["defer"],
        _ => return None,
    })
}

/// A step that is one message.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageStep {
    /// `stage` a device.
    Stage(DeviceRef),
    /// `unstage` a device.
    Unstage(DeviceRef),
    /// `stop` a device.
    Stop(DeviceRef),
    /// `create`: start an event of `stream`.
    Create(String),
    /// `read` a device into the open event.
    Read(DeviceRef),
    /// `save` the open event.
    Save,
    /// `drop` the open event.
    Drop,
    /// `declare_stream`: the stream's descriptor for these devices.
    DeclareStream(Vec<DeviceRef>, String),
    /// `configure` a device with settings.
    Configure(DeviceRef, Map<String, Value>),
    /// `pause` (at the next checkpoint when `defer`).
    Pause(bool),
    /// `locate` a device (`rd` too).
    Locate(DeviceRef),
}

impl MessageStep {
    /// Parses stub `name`, or `None` if it is not one of this module's.
    pub(crate) fn parse(name: &str, a: &Args<'_>) -> Option<Result<Self, ConfigError>> {
        let want = takes(name)?;
        Some((|| {
            a.only(want)?;
            let r = a.raw;
            let device = |need| a.req_device(&r.device, "device", need, "the device");
            let stream = || a.string(&r.stream).unwrap_or_else(|| "primary".into());
            Ok(match name {
                "stage" => MessageStep::Stage(device(Need::Readable)?),
                "unstage" => MessageStep::Unstage(device(Need::Readable)?),
                "stop" => MessageStep::Stop(device(Need::Movable)?),
                "read" => MessageStep::Read(device(Need::Readable)?),
                "locate" | "rd" => MessageStep::Locate(device(Need::Movable)?),
                "create" => MessageStep::Create(stream()),
                "save" => MessageStep::Save,
                "drop" => MessageStep::Drop,
                "declare_stream" => MessageStep::DeclareStream(
                    a.devices(&r.devices, "devices", Need::Readable, "a device", true)?,
                    stream(),
                ),
                "configure" => MessageStep::Configure(
                    device(Need::Readable)?,
                    match &r.settings {
                        Some(s) => {
                            metadata(a.src, s.get_ref(), &format!("settings of {}", a.context))?
                        }
                        None => Map::new(),
                    },
                ),
                "pause" => MessageStep::Pause(r.defer.as_ref().is_some_and(|d| *d.get_ref())),
                _ => unreachable!("takes() named only these"),
            })
        })())
    }

    /// Whether it needs an open run (an event or a descriptor).
    pub(crate) fn needs_run(&self) -> bool {
        matches!(
            self,
            MessageStep::Create(_)
                | MessageStep::Save
                | MessageStep::Drop
                | MessageStep::DeclareStream(..)
        )
    }

    /// The stub's name.
    pub(crate) fn stub(&self) -> &'static str {
        match self {
            MessageStep::Stage(_) => "stage",
            MessageStep::Unstage(_) => "unstage",
            MessageStep::Stop(_) => "stop",
            MessageStep::Create(_) => "create",
            MessageStep::Read(_) => "read",
            MessageStep::Save => "save",
            MessageStep::Drop => "drop",
            MessageStep::DeclareStream(..) => "declare_stream",
            MessageStep::Configure(..) => "configure",
            MessageStep::Pause(_) => "pause",
            MessageStep::Locate(_) => "locate",
        }
    }

    /// The devices it names.
    pub(crate) fn devices(&self) -> Vec<&DeviceRef> {
        match self {
            MessageStep::Stage(d)
            | MessageStep::Unstage(d)
            | MessageStep::Stop(d)
            | MessageStep::Read(d)
            | MessageStep::Locate(d)
            | MessageStep::Configure(d, _) => vec![d],
            MessageStep::DeclareStream(ds, _) => ds.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// With the families and globs of `declare_stream`'s devices expanded.
    pub(crate) fn expand(&self, set: &DeviceSet) -> Result<Self, ConfigError> {
        Ok(match self {
            MessageStep::DeclareStream(ds, s) => {
                MessageStep::DeclareStream(crate::config::families::expand(ds, set)?, s.clone())
            }
            other => other.clone(),
        })
    }

    /// On running devices.
    pub(crate) fn build(&self, devices: &Devices) -> Result<BuiltMessage, ConfigError> {
        let one = |d: &DeviceRef| d.resolve(devices);
        Ok(match self {
            MessageStep::Stage(d) => BuiltMessage::Stage(one(d)?),
            MessageStep::Unstage(d) => BuiltMessage::Unstage(one(d)?),
            MessageStep::Stop(d) => BuiltMessage::Stop(one(d)?),
            MessageStep::Create(s) => BuiltMessage::Create(s.clone()),
            MessageStep::Read(d) => BuiltMessage::Read(one(d)?),
            MessageStep::Save => BuiltMessage::Save,
            MessageStep::Drop => BuiltMessage::Drop,
            MessageStep::DeclareStream(ds, s) => BuiltMessage::DeclareStream(
                ds.iter().map(one).collect::<Result<_, _>>()?,
                s.clone(),
            ),
            MessageStep::Configure(d, m) => BuiltMessage::Configure(one(d)?, m.clone()),
            MessageStep::Pause(defer) => BuiltMessage::Pause(*defer),
            MessageStep::Locate(d) => BuiltMessage::Locate(one(d)?),
        })
    }
}

impl fmt::Display for MessageStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageStep::Stage(d)
            | MessageStep::Unstage(d)
            | MessageStep::Stop(d)
            | MessageStep::Read(d)
            | MessageStep::Locate(d) => write!(f, "{} {}", self.stub(), d.name),
            MessageStep::Create(s) => write!(f, "create an event of stream '{s}'"),
            MessageStep::Save | MessageStep::Drop => f.write_str(self.stub()),
            MessageStep::DeclareStream(ds, s) => write!(
                f,
                "declare_stream '{s}' for [{}]",
                crate::config::families::ref_names(ds)
            ),
            MessageStep::Configure(d, m) => {
                let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                write!(f, "configure {} ({})", d.name, keys.join(", "))
            }
            MessageStep::Pause(true) => f.write_str("pause at the next checkpoint"),
            MessageStep::Pause(false) => f.write_str("pause"),
        }
    }
}

/// A message step on running devices.
pub(crate) enum BuiltMessage {
    Stage(DeviceHandle),
    Unstage(DeviceHandle),
    Stop(DeviceHandle),
    Create(String),
    Read(DeviceHandle),
    Save,
    Drop,
    DeclareStream(Vec<DeviceHandle>, String),
    Configure(DeviceHandle, Map<String, Value>),
    Pause(bool),
    Locate(DeviceHandle),
}

impl BuiltMessage {
    /// Sends the message.
    pub(crate) async fn run(&self, ctx: &PlanCtx) -> Result<(), crate::PlanError> {
        match self {
            BuiltMessage::Stage(d) => bps::stage(ctx, d).await,
            BuiltMessage::Unstage(d) => bps::unstage(ctx, d).await,
            BuiltMessage::Stop(d) => bps::stop(ctx, d).await,
            BuiltMessage::Create(s) => bps::create(ctx, s).await,
            BuiltMessage::Read(d) => bps::read(ctx, d).await.map(|_| ()),
            BuiltMessage::Save => bps::save(ctx).await,
            BuiltMessage::Drop => bps::drop(ctx).await,
            BuiltMessage::DeclareStream(ds, s) => bps::declare_stream(ctx, s, ds).await,
            BuiltMessage::Configure(d, m) => bps::configure(ctx, d, m.clone()).await.map(|_| ()),
            BuiltMessage::Pause(defer) => bps::pause(ctx, *defer).await,
            BuiltMessage::Locate(d) => bps::locate(ctx, d).await.map(|_| ()),
        }
    }
}
