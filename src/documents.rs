//! event-model documents: the start, descriptor, event, event page and stop
//! documents a run emits, and the external-asset documents (resource, datum,
//! stream resource, stream datum) its devices compose, serialized in the
//! shape event-model's JSON schemas require.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skyrun_actors::{AssetDocument, AssetKind, DataKeys, Hints, Readings};

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
    /// Hints per object: each object's own [`Hints`], as it gave them
    /// (Bluesky writes `hints[obj.name] = obj.hints`); objects without
    /// hints are left out.
    pub hints: IndexMap<String, Hints>,
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
    /// External data not yet filled (`false` for each data key stored in a resource).
    pub filled: IndexMap<String, bool>,
}

/// The EventPage document: many events of one stream, column-wise (what
/// `collect` emits, as Bluesky's RunEngine does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// Their descriptor.
    pub descriptor: String,
    /// Unique id of each event.
    pub uid: Vec<String>,
    /// When each was made.
    pub time: Vec<f64>,
    /// 1-based position of each in its stream.
    pub seq_num: Vec<u64>,
    /// Values by data key, one per event.
    pub data: IndexMap<String, Vec<Value>>,
    /// Timestamps by data key, one per event.
    pub timestamps: IndexMap<String, Vec<f64>>,
    /// External data not yet filled, by data key, one per event.
    pub filled: IndexMap<String, Vec<bool>>,
}

impl EventPage {
    /// The page of `events` (all of one descriptor, in order).
    ///
    /// ```
    /// use skyrun::{Event, EventPage};
    /// let ev = |n: u64| Event { uid: format!("e{n}"), time: n as f64, descriptor: "d".into(),
    ///     seq_num: n, data: [("x".to_string(), n.into())].into_iter().collect(),
    ///     timestamps: [("x".to_string(), n as f64)].into_iter().collect(),
    ///     filled: Default::default() };
    /// let page = EventPage::pack(&[ev(1), ev(2)]);
    /// assert_eq!(page.seq_num, vec![1, 2]);
    /// assert_eq!(page.data["x"], vec![serde_json::json!(1), serde_json::json!(2)]);
    /// assert_eq!(page.events(), vec![ev(1), ev(2)]);
    /// ```
    pub fn pack(events: &[Event]) -> EventPage {
        let mut page = EventPage {
            descriptor: events
                .first()
                .map(|e| e.descriptor.clone())
                .unwrap_or_default(),
            uid: Vec::with_capacity(events.len()),
            time: Vec::with_capacity(events.len()),
            seq_num: Vec::with_capacity(events.len()),
            data: IndexMap::new(),
            timestamps: IndexMap::new(),
            filled: IndexMap::new(),
        };
        for e in events {
            page.uid.push(e.uid.clone());
            page.time.push(e.time);
            page.seq_num.push(e.seq_num);
            for (k, v) in &e.data {
                page.data.entry(k.clone()).or_default().push(v.clone());
            }
            for (k, t) in &e.timestamps {
                page.timestamps.entry(k.clone()).or_default().push(*t);
            }
            for (k, f) in &e.filled {
                page.filled.entry(k.clone()).or_default().push(*f);
            }
        }
        page
    }

    /// Its events, one by one (what a subscriber that wants events reads).
    pub fn events(&self) -> Vec<Event> {
        (0..self.uid.len())
            .map(|i| Event {
                uid: self.uid[i].clone(),
                time: self.time[i],
                descriptor: self.descriptor.clone(),
                seq_num: self.seq_num[i],
                data: column(&self.data, i),
                timestamps: column(&self.timestamps, i),
                filled: column(&self.filled, i),
            })
            .collect()
    }
}

fn column<T: Clone>(cols: &IndexMap<String, Vec<T>>, i: usize) -> IndexMap<String, T> {
    cols.iter()
        .filter_map(|(k, v)| v.get(i).map(|x| (k.clone(), x.clone())))
        .collect()
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
    /// `event_page`.
    EventPage(EventPage),
    /// `resource` (as the device composed it, `run_start` filled in).
    Resource(Map<String, Value>),
    /// `datum`.
    Datum(Map<String, Value>),
    /// `stream_resource` (`run_start` filled in).
    StreamResource(Map<String, Value>),
    /// `stream_datum` (`descriptor` and `seq_nums` filled in).
    StreamDatum(Map<String, Value>),
}

impl Document {
    /// The event-model name: `start`, `descriptor`, `event`, `event_page`,
    /// `stop`, or an asset's (`resource`, `datum`, `stream_resource`,
    /// `stream_datum`).
    pub fn name(&self) -> &'static str {
        match self {
            Document::Start(_) => "start",
            Document::Descriptor(_) => "descriptor",
            Document::Event(_) => "event",
            Document::Stop(_) => "stop",
            Document::EventPage(_) => "event_page",
            Document::Resource(_) => "resource",
            Document::Datum(_) => "datum",
            Document::StreamResource(_) => "stream_resource",
            Document::StreamDatum(_) => "stream_datum",
        }
    }

    /// The document of an external asset.
    pub fn from_asset(doc: AssetDocument) -> Document {
        match doc.kind {
            AssetKind::Resource => Document::Resource(doc.body),
            AssetKind::Datum => Document::Datum(doc.body),
            AssetKind::StreamResource => Document::StreamResource(doc.body),
            AssetKind::StreamDatum => Document::StreamDatum(doc.body),
        }
    }

    /// Parses a `[name, doc]` pair as written to a documents file.
    pub fn from_named(name: &str, body: Value) -> Result<Document, serde_json::Error> {
        Ok(match name {
            "start" => Document::Start(serde_json::from_value(body)?),
            "descriptor" => Document::Descriptor(serde_json::from_value(body)?),
            "event" => Document::Event(serde_json::from_value(body)?),
            "stop" => Document::Stop(serde_json::from_value(body)?),
            "event_page" => Document::EventPage(serde_json::from_value(body)?),
            "resource" => Document::Resource(serde_json::from_value(body)?),
            "datum" => Document::Datum(serde_json::from_value(body)?),
            "stream_resource" => Document::StreamResource(serde_json::from_value(body)?),
            "stream_datum" => Document::StreamDatum(serde_json::from_value(body)?),
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
