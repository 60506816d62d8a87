//! The messages a device actor understands, each carrying the propagated span
//! context of its sender.

use actix::Message;
use serde_json::{Map, Value};

use crate::assets::{AssetDocument, CollectDescription};
use crate::device::CollectedEvent;
use crate::error::DeviceError;
use crate::hints::Hints;
use crate::propagation::TraceCarrier;
use crate::reading::{DataKeys, Readings};
use crate::status::Status;

/// One operation asked of a device.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceOp {
    /// `read()`.
    Read,
    /// `describe()`.
    Describe,
    /// `read_configuration()`.
    ReadConfiguration,
    /// `describe_configuration()`.
    DescribeConfiguration,
    /// `hints()`.
    Hints,
    /// `set(value)`.
    Set(Value),
    /// The current position of a movable.
    Position,
    /// `locate()`: setpoint and readback of a movable.
    Locate {
        /// Other devices are located at once with this one (Bluesky gathers
        /// their `locate()`s): see [`Movable::locate_later`](crate::Movable::locate_later).
        gathered: bool,
    },
    /// `trigger()`.
    Trigger,
    /// `kickoff()`.
    Kickoff,
    /// `complete()`.
    Complete,
    /// `collect()`.
    Collect,
    /// `describe_collect()`.
    DescribeCollect,
    /// `prepare(value)`.
    Prepare(Value),
    /// `collect_asset_docs(index)`.
    CollectAssetDocs(Option<u64>),
    /// `get_index()`.
    GetIndex,
    /// `stage()`.
    Stage,
    /// `unstage()`.
    Unstage,
    /// `configure(settings)`.
    Configure(Map<String, Value>),
    /// `stop(success)`.
    Stop {
        /// Whether pending statuses complete successfully.
        success: bool,
    },
    /// `pause()`: the engine paused.
    Pause,
    /// `resume()`: the engine resumes.
    Resume,
}

impl DeviceOp {
    /// The operation's name, as used in error messages.
    ///
    /// ```
    /// assert_eq!(skyrun_actors::DeviceOp::Trigger.name(), "trigger");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            DeviceOp::Read => "read",
            DeviceOp::Describe => "describe",
            DeviceOp::ReadConfiguration => "read_configuration",
            DeviceOp::DescribeConfiguration => "describe_configuration",
            DeviceOp::Hints => "hints",
            DeviceOp::Set(_) => "set",
            DeviceOp::Position => "position",
            DeviceOp::Locate { .. } => "locate",
            DeviceOp::Trigger => "trigger",
            DeviceOp::Kickoff => "kickoff",
            DeviceOp::Complete => "complete",
            DeviceOp::Collect => "collect",
            DeviceOp::DescribeCollect => "describe_collect",
            DeviceOp::CollectAssetDocs(_) => "collect_asset_docs",
            DeviceOp::Prepare(_) => "prepare",
            DeviceOp::GetIndex => "get_index",
            DeviceOp::Stage => "stage",
            DeviceOp::Unstage => "unstage",
            DeviceOp::Configure(_) => "configure",
            DeviceOp::Stop { .. } => "stop",
            DeviceOp::Pause => "pause",
            DeviceOp::Resume => "resume",
        }
    }
}

/// A request to a device actor: the operation and the sender's span context.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<DeviceReply, DeviceError>")]
pub struct DeviceRequest {
    /// What to do.
    pub op: DeviceOp,
    /// The sender's span context, propagated.
    pub trace: TraceCarrier,
}

/// A device's answer to a [`DeviceRequest`].
#[derive(Debug, Clone)]
pub enum DeviceReply {
    /// A status that completes later (set, trigger, kickoff, complete).
    Status(Status),
    /// Readings (read, read_configuration).
    Readings(Readings),
    /// Data keys (describe, describe_configuration).
    DataKeys(DataKeys),
    /// The device's hints (`None`: it has none).
    Hints(Option<Hints>),
    /// A position.
    Position(Value),
    /// Setpoint and readback ([`DeviceOp::Locate`]).
    Located {
        /// Where it was asked to go.
        setpoint: Value,
        /// Where it is.
        readback: Value,
    },
    /// Collected events.
    Collected(Vec<CollectedEvent>),
    /// Data keys per stream.
    CollectKeys(CollectDescription),
    /// External-asset documents.
    Assets(Vec<AssetDocument>),
    /// A frame index (`None`: the device has none).
    Index(Option<u64>),
    /// Configuration before and after `configure` (boxed: the replies that
    /// every message passes along stay small).
    Configured {
        /// Before.
        old: Box<Readings>,
        /// After.
        new: Box<Readings>,
    },
    /// Done, nothing to return.
    Done,
    /// Paused ([`DeviceOp::Pause`]): whether a rewind may replay.
    Paused(crate::device::Replay),
}
