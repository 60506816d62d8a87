//! The wire protocol between a client (the engine's proxy devices) and a
//! device server: NATS subjects, the JSON messages on them, and the span
//! context in message headers.
//!
//! | subject | from | what |
//! |---|---|---|
//! | `skyrun.srv.SERVER.discover` | client, request/reply | a page of the server's devices ([`DiscoverRequest`] → [`Discovery`]) |
//! | `skyrun.srv.SERVER.req` | client, reply subject = the client's inbox | one device operation ([`Request`]), the span context in headers |
//! | the client's inbox | server | the answer ([`ServerMsg::Reply`] / [`ServerMsg::Error`]), then for a status its completion ([`ServerMsg::Done`]) |
//! | `skyrun.srv.SERVER.alive` | server, every heartbeat interval | [`Heartbeat`]: the server is up (and which instance) |
//!
//! A status is never a blocking reply: the server answers `Reply(Status)` at
//! once and sends `Done` when the device completes it, so any number of sets
//! are in flight on one connection. A status already complete when the
//! device returns it is answered by `Done` alone.

use async_nats::HeaderMap;
use opentelemetry::propagation::Injector;
use opentelemetry::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skyrun_actors::{
    AssetDocument, Capabilities, CollectDescription, CollectedEvent, DataKeys, DeviceError,
    DeviceOp, Hints, Readings, TraceCarrier,
};

/// The first token of every skyrun subject.
pub const SUBJECT_ROOT: &str = "skyrun";

/// The subject a server answers discovery requests on.
pub fn discover_subject(server: &str) -> String {
    format!("{SUBJECT_ROOT}.srv.{server}.discover")
}

/// The subject a server takes device requests on.
pub fn request_subject(server: &str) -> String {
    format!("{SUBJECT_ROOT}.srv.{server}.req")
}

/// The subject a server publishes its heartbeat on.
pub fn alive_subject(server: &str) -> String {
    format!("{SUBJECT_ROOT}.srv.{server}.alive")
}

/// Whether `name` can be a server name: one NATS subject token of letters,
/// digits, `_` and `-`.
///
/// ```
/// assert!(skyrun_remote::wire::valid_server_name("ioc-1"));
/// assert!(!skyrun_remote::wire::valid_server_name("a.b"));
/// assert!(!skyrun_remote::wire::valid_server_name(""));
/// ```
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The largest page of devices one discovery reply carries.
pub const DISCOVERY_PAGE: usize = 500;

/// A discovery request: devices `offset .. offset + limit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverRequest {
    /// The first device of the page.
    pub offset: usize,
    /// At most this many devices.
    pub limit: usize,
}

/// One device a server offers, with what a proxy needs to answer the
/// engine's questions that take no round trip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device name.
    pub name: String,
    /// Its type name (ophyd's class name).
    pub type_name: String,
    /// Its representation (`msg.obj`).
    pub repr: String,
    /// What it supports.
    pub caps: Capabilities,
    /// `motor`, `detector`, `signal` or `flyer`, when the server knows.
    #[serde(default)]
    pub kind: Option<String>,
    /// `describe()` (readable devices).
    #[serde(default)]
    pub describe: DataKeys,
    /// `describe_configuration()`.
    #[serde(default)]
    pub describe_configuration: DataKeys,
    /// `read_configuration()` at discovery.
    #[serde(default)]
    pub read_configuration: Readings,
    /// `hints()["fields"]` alone, which peers from before
    /// [`hint_object`](Self::hint_object) read; set both with
    /// [`set_hints`](Self::set_hints), read them with
    /// [`device_hints`](Self::device_hints).
    #[serde(default)]
    pub hints: Vec<String>,
    /// `hints()`, the whole object; absent when the device has none (and
    /// from peers from before it, which send `hints` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint_object: Option<Hints>,
    /// `describe_collect()` (flyers).
    #[serde(default)]
    pub describe_collect: CollectDescription,
}

impl DeviceInfo {
    /// Records the device's `hints()` in both fields.
    pub fn set_hints(&mut self, hints: Option<Hints>) {
        self.hints = hints
            .as_ref()
            .map(|h| h.field_names().to_vec())
            .unwrap_or_default();
        self.hint_object = hints;
    }

    /// The device's `hints()`: the whole object, or from a peer that sent
    /// the fields alone, hints of those fields (none when there are none, as
    /// such peers' engines wrote no hints then).
    ///
    /// ```
    /// use skyrun_actors::{json, Capabilities, Hints};
    /// use skyrun_remote::wire::DeviceInfo;
    /// // What an older server sends: the fields alone.
    /// let old = json!({"name": "det", "type_name": "SynGauss", "repr": "det",
    ///                  "caps": Capabilities::default(), "hints": ["det"]});
    /// let mut info: DeviceInfo = serde_json::from_value(old).unwrap();
    /// assert_eq!(info.device_hints(), Some(Hints::fields(["det"])));
    /// // What this one sends: the fields too, for older clients, and the whole hints.
    /// info.set_hints(Some(Hints::from_object(json!({"fields": ["det"], "vis": 1}).as_object().unwrap().clone())));
    /// let new = serde_json::to_value(&info).unwrap();
    /// assert_eq!(new["hints"], json!(["det"]));
    /// assert_eq!(new["hint_object"], json!({"fields": ["det"], "vis": 1}));
    /// let info: DeviceInfo = serde_json::from_value(new).unwrap();
    /// assert_eq!(info.device_hints().unwrap().extra["vis"], 1);
    /// ```
    pub fn device_hints(&self) -> Option<Hints> {
        match &self.hint_object {
            Some(h) => Some(h.clone()),
            None if self.hints.is_empty() => None,
            None => Some(Hints::fields(self.hints.iter().cloned())),
        }
    }
}

/// A page of a server's devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    /// The server's name.
    pub server: String,
    /// This run of the server (changes when it restarts).
    pub instance: String,
    /// How many devices the server has in all.
    pub total: usize,
    /// The devices of this page.
    pub devices: Vec<DeviceInfo>,
}

/// A server's heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The server's name.
    pub server: String,
    /// This run of the server.
    pub instance: String,
}

/// One operation on the wire (a [`DeviceOp`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WireOp {
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
    Set {
        /// The target.
        value: Value,
    },
    /// The position.
    Position,
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
    /// `collect_asset_docs(index)`.
    CollectAssetDocs {
        /// Frames to collect up to.
        index: Option<u64>,
    },
    /// `get_index()`.
    GetIndex,
    /// `prepare(value)`.
    Prepare {
        /// The value (a TriggerInfo's fields, say).
        value: Value,
    },
    /// `stage()`.
    Stage,
    /// `unstage()`.
    Unstage,
    /// `configure(settings)`.
    Configure {
        /// The settings.
        settings: Map<String, Value>,
    },
    /// `stop(success)`.
    Stop {
        /// Whether pending statuses succeed.
        success: bool,
    },
    /// `locate()`.
    Locate,
    /// `pause()`.
    Pause,
    /// `resume()`.
    Resume,
}

impl From<DeviceOp> for WireOp {
    fn from(op: DeviceOp) -> Self {
        match op {
            DeviceOp::Read => WireOp::Read,
            DeviceOp::Describe => WireOp::Describe,
            DeviceOp::ReadConfiguration => WireOp::ReadConfiguration,
            DeviceOp::DescribeConfiguration => WireOp::DescribeConfiguration,
            DeviceOp::Hints => WireOp::Hints,
            DeviceOp::Set(value) => WireOp::Set { value },
            DeviceOp::Position => WireOp::Position,
            DeviceOp::Trigger => WireOp::Trigger,
            DeviceOp::Kickoff => WireOp::Kickoff,
            DeviceOp::Complete => WireOp::Complete,
            DeviceOp::Collect => WireOp::Collect,
            DeviceOp::DescribeCollect => WireOp::DescribeCollect,
            DeviceOp::CollectAssetDocs(index) => WireOp::CollectAssetDocs { index },
            DeviceOp::GetIndex => WireOp::GetIndex,
            DeviceOp::Prepare(value) => WireOp::Prepare { value },
            DeviceOp::Stage => WireOp::Stage,
            DeviceOp::Unstage => WireOp::Unstage,
            DeviceOp::Configure(settings) => WireOp::Configure { settings },
            DeviceOp::Stop { success } => WireOp::Stop { success },
            // The server's device is located as if alone (the proxy's call blocks anyway).
            DeviceOp::Locate { .. } => WireOp::Locate,
            DeviceOp::Pause => WireOp::Pause,
            DeviceOp::Resume => WireOp::Resume,
        }
    }
}

impl From<WireOp> for DeviceOp {
    fn from(op: WireOp) -> Self {
        match op {
            WireOp::Read => DeviceOp::Read,
            WireOp::Describe => DeviceOp::Describe,
            WireOp::ReadConfiguration => DeviceOp::ReadConfiguration,
            WireOp::DescribeConfiguration => DeviceOp::DescribeConfiguration,
            WireOp::Hints => DeviceOp::Hints,
            WireOp::Set { value } => DeviceOp::Set(value),
            WireOp::Position => DeviceOp::Position,
            WireOp::Trigger => DeviceOp::Trigger,
            WireOp::Kickoff => DeviceOp::Kickoff,
            WireOp::Complete => DeviceOp::Complete,
            WireOp::Collect => DeviceOp::Collect,
            WireOp::DescribeCollect => DeviceOp::DescribeCollect,
            WireOp::CollectAssetDocs { index } => DeviceOp::CollectAssetDocs(index),
            WireOp::GetIndex => DeviceOp::GetIndex,
            WireOp::Prepare { value } => DeviceOp::Prepare(value),
            WireOp::Stage => DeviceOp::Stage,
            WireOp::Unstage => DeviceOp::Unstage,
            WireOp::Configure { settings } => DeviceOp::Configure(settings),
            WireOp::Stop { success } => DeviceOp::Stop { success },
            WireOp::Locate => DeviceOp::Locate { gathered: false },
            WireOp::Pause => DeviceOp::Pause,
            WireOp::Resume => DeviceOp::Resume,
        }
    }
}

/// A device request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The client's id of the request, echoed in every answer.
    pub id: u64,
    /// The device asked.
    pub device: String,
    /// What to do.
    #[serde(flatten)]
    pub op: WireOp,
}

/// A device's answer on the wire (a `DeviceReply`; a status is described, and completes later by [`ServerMsg::Done`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum WireReply {
    /// A status is pending on the server.
    Status {
        /// Its ophyd class name.
        status_type: String,
    },
    /// Readings.
    Readings {
        /// By data key.
        readings: Readings,
    },
    /// Data keys.
    DataKeys {
        /// By name.
        keys: DataKeys,
    },
    /// The device's hints.
    Hints {
        /// `hints["fields"]` alone (what peers from before `hints` read).
        fields: Vec<String>,
        /// The whole hints; absent when the device has none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hints: Option<Hints>,
    },
    /// A position.
    Position {
        /// The value.
        value: Value,
    },
    /// Collected events.
    Collected {
        /// The events.
        events: Vec<CollectedEvent>,
    },
    /// Data keys per stream (or flat).
    CollectKeys {
        /// By stream.
        streams: CollectDescription,
    },
    /// External-asset documents.
    Assets {
        /// The documents.
        docs: Vec<AssetDocument>,
    },
    /// A frame index.
    Index {
        /// The index (`None`: the device has none).
        index: Option<u64>,
    },
    /// Configuration before and after.
    Configured {
        /// Before.
        old: Readings,
        /// After.
        new: Readings,
    },
    /// Done.
    Done,
    /// Setpoint and readback.
    Located {
        /// Where it was asked to go.
        setpoint: Value,
        /// Where it is.
        readback: Value,
    },
    /// Paused: whether a rewind may replay.
    Paused {
        /// `false`: Bluesky's `NoReplayAllowed`.
        replay: bool,
    },
}

/// A [`DeviceError`] on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// `unsupported`, `invalid_argument`, `failed`, `panicked`, `no_reply`, `gone` or `unknown_device`.
    pub kind: String,
    /// The operation.
    pub operation: String,
    /// The whole message, as the server's device side wrote it.
    pub message: String,
    /// The reason alone (without the device name), when there is one.
    #[serde(default)]
    pub reason: String,
}

impl WireError {
    /// The wire form of `e`.
    pub fn from_device_error(e: &DeviceError) -> Self {
        let (kind, operation, reason) = match e {
            DeviceError::Unsupported { operation, .. } => {
                ("unsupported", *operation, String::new())
            }
            DeviceError::InvalidArgument {
                operation, reason, ..
            } => ("invalid_argument", *operation, reason.clone()),
            DeviceError::Failed {
                operation, reason, ..
            } => ("failed", *operation, reason.clone()),
            DeviceError::Raised {
                operation, cause, ..
            } => ("failed", *operation, cause.to_string()),
            DeviceError::Panicked {
                operation, reason, ..
            } => ("panicked", *operation, reason.clone()),
            DeviceError::NoReply { operation, .. } => ("no_reply", *operation, String::new()),
            DeviceError::Gone { operation, .. } => ("gone", *operation, String::new()),
        };
        WireError {
            kind: kind.into(),
            operation: operation.into(),
            message: e.to_string(),
            reason,
        }
    }
}

/// What a server sends to a client's inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The answer to request `id`.
    Reply {
        /// The request.
        id: u64,
        /// The answer.
        #[serde(flatten)]
        reply: WireReply,
    },
    /// Request `id` failed.
    Error {
        /// The request.
        id: u64,
        /// Why.
        error: WireError,
    },
    /// The status of request `id` completed: `error` is `None` on success.
    Done {
        /// The request.
        id: u64,
        /// The failure, if it failed.
        #[serde(default)]
        error: Option<String>,
    },
}

/// The span context of `cx` as NATS headers, through the global propagator
/// (W3C tracecontext when none is installed), as the in-process actors carry it.
pub fn inject_headers(cx: &Context) -> HeaderMap {
    carrier_to_headers(&TraceCarrier::inject(cx))
}

/// `carrier`'s entries as NATS headers.
pub fn carrier_to_headers(carrier: &TraceCarrier) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in carrier.iter() {
        h.insert(k, v);
    }
    h
}

/// The span context carried by NATS headers, extracted with the global propagator.
pub fn extract_headers(headers: Option<&HeaderMap>) -> Context {
    let Some(headers) = headers else {
        return Context::new();
    };
    let mut carrier = TraceCarrier::empty();
    for (name, values) in headers.iter() {
        if let Some(v) = values.last() {
            // Header names keep the case they were sent with; propagators look up lower case.
            let key: &str = name.as_ref();
            carrier.set(&key.to_ascii_lowercase(), v.as_str().to_owned());
        }
    }
    carrier.extract()
}
