//! event-model documents: the start, descriptor, event and stop documents a
//! run emits, serialized in the shape event-model's JSON schemas require.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skyrun_actors::{DataKeys, Readings};

/// How a run ended, as the stop document says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    /// Completed (or stopped) normally.
    Success,
    /// The plan or a device failed.
    Fail,
    /// Aborted or halted.
    Abort,
}

impl ExitStatus {
    /// The name used in documents and spans.
    ///
    /// ```
    /// assert_eq!(skyrun::ExitStatus::Abort.as_str(), "abort");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Fail => "fail",
            ExitStatus::Abort => "abort",
        }
    }
}

/// The RunStart document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// Unique id of the run.
    pub uid: String,
    /// When the run started.
    pub time: f64,
    /// Sequential number of the run on this engine.
    pub scan_id: u64,
    /// Plan metadata (`plan_name`, `plan_args`, `motors`, `detectors`, `num_points`, `hints`)
    /// and user metadata.
    #[serde(flatten)]
    pub metadata: Map<String, Value>,
}

/// Configuration of one object recorded in a descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectConfiguration {
    /// Configuration values.
    pub data: IndexMap<String, Value>,
    /// Their timestamps.
    pub timestamps: IndexMap<String, f64>,
    /// Their data keys.
    pub data_keys: DataKeys,
}

impl ObjectConfiguration {
    /// From `read_configuration` and `describe_configuration` results.
    pub fn new(readings: Readings, data_keys: DataKeys) -> Self {
        let (data, timestamps) = split_readings(readings);
        ObjectConfiguration {
            data,
            timestamps,
            data_keys,
        }
    }
}

/// Values and timestamps of `readings`, as event documents hold them.
pub fn split_readings(readings: Readings) -> (IndexMap<String, Value>, IndexMap<String, f64>) {
    let mut data = IndexMap::with_capacity(readings.len());
    let mut ts = IndexMap::with_capacity(readings.len());
    for (k, r) in readings {
        ts.insert(k.clone(), r.timestamp);
        data.insert(k, r.value);
    }
    (data, ts)
}

/// Hinted fields of one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectHints {
    /// The fields worth plotting.
    pub fields: Vec<String>,
}

/// The EventDescriptor document: the schema of one stream's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDescriptor {
    /// Unique id.
    pub uid: String,
    /// When it was made.
    pub time: f64,
    /// The run it belongs to.
    pub run_start: String,
    /// The stream name (`primary`, ...).
    pub name: String,
    /// Data keys of every event in the stream.
    pub data_keys: DataKeys,
    /// Which data keys come from which object.
    pub object_keys: IndexMap<String, Vec<String>>,
    /// Configuration of each object.
    pub configuration: IndexMap<String, ObjectConfiguration>,
    /// Hints per object.
    pub hints: IndexMap<String, ObjectHints>,
}

/// The Event document: one row of data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id.
    pub uid: String,
    /// When it was made.
    pub time: f64,
    /// Its descriptor.
    pub descriptor: String,
    /// 1-based position in its stream.
    pub seq_num: u64,
    /// Values by data key.
    pub data: IndexMap<String, Value>,
    /// Timestamps by data key.
    pub timestamps: IndexMap<String, f64>,
    /// External data not yet filled (always empty: skyrun has no external data yet).
    pub filled: IndexMap<String, bool>,
}

/// The RunStop document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStop {
    /// Unique id.
    pub uid: String,
    /// When the run ended.
    pub time: f64,
    /// The run it closes.
    pub run_start: String,
    /// How the run ended.
    pub exit_status: ExitStatus,
    /// Why, when it did not succeed (skyrun keeps an abort's reason here).
    pub reason: String,
    /// Events per stream.
    pub num_events: IndexMap<String, u64>,
}

/// Any document, serialized as its body alone.
///
/// ```
/// use skyrun::{Document, RunStop, ExitStatus};
/// let d = Document::Stop(RunStop { uid: "u".into(), time: 1.0, run_start: "s".into(),
///     exit_status: ExitStatus::Success, reason: String::new(), num_events: Default::default() });
/// assert_eq!(d.name(), "stop");
/// assert_eq!(serde_json::to_value(&d).unwrap()["exit_status"], "success");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Document {
    /// `start`.
    Start(RunStart),
    /// `descriptor`.
    Descriptor(EventDescriptor),
    /// `event`.
    Event(Event),
    /// `stop`.
    Stop(RunStop),
}

impl Document {
    /// The event-model name: `start`, `descriptor`, `event` or `stop`.
    pub fn name(&self) -> &'static str {
        match self {
            Document::Start(_) => "start",
            Document::Descriptor(_) => "descriptor",
            Document::Event(_) => "event",
            Document::Stop(_) => "stop",
        }
    }

    /// Parses a `[name, doc]` pair as written to a documents file.
    pub fn from_named(name: &str, body: Value) -> Result<Document, serde_json::Error> {
        Ok(match name {
            "start" => Document::Start(serde_json::from_value(body)?),
            "descriptor" => Document::Descriptor(serde_json::from_value(body)?),
            "event" => Document::Event(serde_json::from_value(body)?),
            "stop" => Document::Stop(serde_json::from_value(body)?),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown document name '{other}'"
                )))
            }
        })
    }
}

/// A fresh document uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}
