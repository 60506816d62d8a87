//! The documents of one open run: descriptors per stream, the event bundle
//! being built between `create` and `save`, sequence numbers, and the
//! rewind state a checkpoint records (after Bluesky's `RunBundler`).

use std::collections::HashMap;

use indexmap::IndexMap;
use opentelemetry::Context;
use skyrun_actors::{now, AssetDocument, DataKeys, DeviceHandle, Hints, Readings};

use crate::documents::{
    new_uid, split_readings, Document, Event, EventDescriptor, ObjectConfiguration,
};
use crate::error::{BlueskyException, PlanError};

/// What a descriptor records about one object.
#[derive(Debug, Clone)]
pub(crate) struct ObjectDescription {
    pub data_keys: DataKeys,
    pub configuration: ObjectConfiguration,
    pub hints: Option<Hints>,
}

mod collect;
mod interruptions;

struct Stream {
    descriptor: Option<String>,
    objects: Vec<String>,
    /// The objects themselves, once known (names are not identities: two
    /// devices may share one, and Bluesky's bundler compares objects).
    handles: Vec<DeviceHandle>,
    seq: u64,
    /// The descriptor's data keys (which of them are stored externally).
    data_keys: DataKeys,
}

impl Stream {
    fn new(objects: Vec<String>) -> Self {
        Stream {
            descriptor: None,
            objects,
            handles: Vec::new(),
            seq: 0,
            data_keys: DataKeys::new(),
        }
    }
}

struct Bundle {
    stream: String,
    reads: IndexMap<String, (DeviceHandle, Readings)>,
    /// Asset documents the devices read gave, emitted with the event.
    assets: Vec<AssetDocument>,
}

/// One open run.
pub(crate) struct OpenRun {
    pub key: Option<String>,
    pub uid: String,
    /// The context holding the run span (when traced).
    pub span_cx: Option<Context>,
    streams: IndexMap<String, Stream>,
    checkpoint_seq: HashMap<String, u64>,
    bundle: Option<Bundle>,
    descriptions: HashMap<String, ObjectDescription>,
    pub num_events: IndexMap<String, u64>,
    /// The devices monitored in this run (by name): their streams and
    /// subscription tasks, which end when removed (or the run closes).
    monitors: HashMap<String, Monitor>,
    /// Streams that are or were monitored: their events are not rewound.
    monitor_streams: Vec<String>,
    /// Streams declared with `declare_stream`, by their objects (sorted names), for `collect`.
    declared: Vec<(Vec<String>, String)>,
    /// The data key of each stream resource emitted (by uid).
    stream_resources: HashMap<String, String>,
    /// The streams of each old-style flyer's `describe_collect` (by flyer name).
    local_streams: HashMap<String, Vec<String>>,
    /// Flyers kicked off and not collected since.
    uncollected: Vec<DeviceHandle>,
}

/// A monitored device: its stream, and the task emitting its events
/// (aborted when this is dropped, or while the engine is paused).
pub(crate) struct Monitor {
    pub device: DeviceHandle,
    pub stream: String,
    pub task: tokio::task::AbortHandle,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn illegal(command: &str, reason: impl Into<String>) -> PlanError {
    PlanError::Illegal {
        command: command.into(),
        reason: reason.into(),
    }
}

/// A check of Bluesky's bundler failed; it raises `raises` for it.
fn inconsistent(command: &str, raises: BlueskyException, reason: impl Into<String>) -> PlanError {
    PlanError::Bundle {
        command: command.into(),
        reason: reason.into(),
        raises,
    }
}

impl OpenRun {
    pub fn new(key: Option<String>, uid: String, span_cx: Option<Context>) -> Self {
        OpenRun {
            key,
            uid,
            span_cx,
            streams: IndexMap::new(),
            checkpoint_seq: HashMap::new(),
            bundle: None,
            descriptions: HashMap::new(),
            num_events: IndexMap::new(),
            monitors: HashMap::new(),
            monitor_streams: Vec::new(),
            declared: Vec::new(),
            stream_resources: HashMap::new(),
            local_streams: HashMap::new(),
            uncollected: Vec::new(),
        }
    }

    pub fn create(&mut self, stream: String) -> Result<(), PlanError> {
        if let Some(b) = &self.bundle {
            return Err(illegal(
                "create",
                format!("an event bundle for stream '{}' is already open; close it with 'save' or 'drop' first", b.stream),
            ));
        }
        self.bundle = Some(Bundle {
            stream,
            reads: IndexMap::new(),
            assets: Vec::new(),
        });
        Ok(())
    }

    pub fn is_bundling(&self) -> bool {
        self.bundle.is_some()
    }

    /// Adds a reading to the open bundle, if any.
    /// Adds `device`'s reading to the open bundle. Another object of the
    /// same name already in it collides, as its data keys do in Bluesky's
    /// bundler (`ValueError`).
    pub fn record_read(
        &mut self,
        device: &DeviceHandle,
        readings: &Readings,
    ) -> Result<(), PlanError> {
        if let Some(b) = &mut self.bundle {
            if let Some((other, _)) = b.reads.get(device.name()) {
                if other != device {
                    return Err(inconsistent(
                        "read",
                        BlueskyException::ValueError,
                        format!(
                            "Data keys (field names) from {} collide with those from {}: two objects named '{}' in one event",
                            device.repr(),
                            other.repr(),
                            device.name()
                        ),
                    ));
                }
            }
            b.reads
                .insert(device.name().to_owned(), (device.clone(), readings.clone()));
        }
        Ok(())
    }

    /// Checks that `handles` are the objects of `stream` (in any order), if
    /// it has any yet, else records them: a device of the same name as one
    /// of the stream's is not it (Bluesky: "Mismatched objects read").
    fn same_handles(&mut self, stream: &str, handles: &[DeviceHandle]) -> Result<(), PlanError> {
        let Some(s) = self.streams.get_mut(stream) else {
            return Ok(());
        };
        if s.handles.is_empty() {
            s.handles = handles.to_vec();
            return Ok(());
        }
        if s.handles.len() == handles.len() && handles.iter().all(|h| s.handles.contains(h)) {
            return Ok(());
        }
        let names = |hs: &[DeviceHandle]| {
            hs.iter()
                .map(|h| h.repr().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(inconsistent(
            "save",
            BlueskyException::RuntimeError,
            format!(
                "Mismatched objects read for stream '{stream}': expected {}, got {} (another object of the same name is not the one of the descriptor)",
                names(&s.handles),
                names(handles)
            ),
        ))
    }

    pub fn drop_bundle(&mut self) -> Result<(), PlanError> {
        self.bundle
            .take()
            .map(|_| ())
            .ok_or_else(|| illegal("drop", "no event bundle is open (send 'create' first)"))
    }

    /// The devices of the open bundle to describe before it is saved: all
    /// of them when its stream has no descriptor yet (a new stream records
    /// its objects' description and configuration as they are now, as
    /// Bluesky's bundler caches them per stream), else those with none.
    pub fn bundle_undescribed(&self) -> Result<Vec<DeviceHandle>, PlanError> {
        let b = self
            .bundle
            .as_ref()
            .ok_or_else(|| illegal("save", "no event bundle is open (send 'create' first)"))?;
        let new_stream = self
            .streams
            .get(&b.stream)
            .is_none_or(|s| s.descriptor.is_none());
        Ok(b.reads
            .values()
            .filter(|(d, _)| new_stream || !self.descriptions.contains_key(d.name()))
            .map(|(d, _)| d.clone())
            .collect())
    }

    pub fn undescribed<'a>(
        &self,
        devices: impl IntoIterator<Item = &'a DeviceHandle>,
    ) -> Vec<DeviceHandle> {
        devices
            .into_iter()
            .filter(|d| !self.descriptions.contains_key(d.name()))
            .cloned()
            .collect()
    }

    pub fn add_description(&mut self, device: &str, desc: ObjectDescription) {
        self.descriptions.insert(device.to_owned(), desc);
    }

    /// Whether `device` has been described in this run.
    pub fn is_described(&self, device: &str) -> bool {
        self.descriptions.contains_key(device)
    }

    /// New descriptors, emitted at once, for every stream with a descriptor
    /// that includes `device` (after `configure` re-described it), as
    /// Bluesky's bundler does.
    pub fn redescribe(&mut self, device: &str) -> Result<Vec<Document>, PlanError> {
        let affected: Vec<(String, Vec<String>)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.descriptor.is_some() && s.objects.iter().any(|o| o == device))
            .map(|(name, s)| (name.clone(), s.objects.clone()))
            .collect();
        let mut docs = Vec::new();
        for (name, objects) in affected {
            if let Some(s) = self.streams.get_mut(&name) {
                s.descriptor = None;
            }
            self.descriptor_for(&name, &objects, &mut docs)?;
        }
        Ok(docs)
    }

    /// Forgets `device`'s description (after `configure`), so its streams get a new descriptor.
    pub fn invalidate(&mut self, device: &str) {
        if self.descriptions.remove(device).is_some() {
            for s in self.streams.values_mut() {
                if s.objects.iter().any(|o| o == device) {
                    s.descriptor = None;
                }
            }
        }
    }

    fn descriptor_for(
        &mut self,
        stream: &str,
        objects: &[String],
        docs: &mut Vec<Document>,
    ) -> Result<String, PlanError> {
        if let Some(s) = self.streams.get(stream) {
            // The same objects in any order, as Bluesky's bundler compares them (a set).
            if s.objects != objects && !same_objects(&s.objects, objects) {
                return Err(inconsistent(
                    "save",
                    BlueskyException::RuntimeError,
                    format!(
                        "Mismatched objects read: the objects read for stream '{stream}' ({}) differ from those of its descriptor ({})",
                        objects.join(", "),
                        s.objects.join(", ")
                    ),
                ));
            }
            if let Some(uid) = &s.descriptor {
                return Ok(uid.clone());
            }
        }
        let parts: Vec<(&String, &ObjectDescription)> =
            objects.iter().map(|n| (n, &self.descriptions[n])).collect();
        let d = make_descriptor(&self.uid, stream, &parts)?;
        Ok(self.add_descriptor(d, objects.to_vec(), docs))
    }

    /// Records descriptor `d` of `objects` (its stream's first, or a new one
    /// after `configure`) and queues it in `docs`; returns its uid.
    fn add_descriptor(
        &mut self,
        d: EventDescriptor,
        objects: Vec<String>,
        docs: &mut Vec<Document>,
    ) -> String {
        let uid = d.uid.clone();
        let s = self
            .streams
            .entry(d.name.clone())
            .or_insert_with(|| Stream::new(Vec::new()));
        s.objects = objects;
        s.descriptor = Some(uid.clone());
        s.data_keys = d.data_keys.clone();
        docs.push(Document::Descriptor(d));
        uid
    }

    /// Emits the descriptor of `stream` for `objects` (all described) if it
    /// has none, and records the stream as theirs (for `collect`).
    pub fn declare_stream(
        &mut self,
        stream: &str,
        devices: &[DeviceHandle],
    ) -> Result<Vec<Document>, PlanError> {
        let objects: Vec<String> = devices.iter().map(|d| d.name().to_owned()).collect();
        // Each declaration emits a new descriptor, as Bluesky's does (the
        // stream's sequence numbers go on).
        if let Some(s) = self.streams.get_mut(stream) {
            s.descriptor = None;
            s.objects = objects.clone();
            s.handles.clear();
        }
        let mut docs = Vec::new();
        self.descriptor_for(stream, &objects, &mut docs)?;
        self.same_handles(stream, devices)?;
        self.record_declared(&objects, stream);
        Ok(docs)
    }

    fn next_event(
        &mut self,
        stream: &str,
        descriptor: String,
        time: f64,
        data: IndexMap<String, serde_json::Value>,
        timestamps: IndexMap<String, f64>,
    ) -> Document {
        Document::Event(self.next_event_doc(stream, descriptor, time, data, timestamps))
    }

    fn next_event_doc(
        &mut self,
        stream: &str,
        descriptor: String,
        time: f64,
        data: IndexMap<String, serde_json::Value>,
        timestamps: IndexMap<String, f64>,
    ) -> Event {
        let s = self.streams.get_mut(stream).expect("descriptor made first");
        s.seq += 1;
        *self.num_events.entry(stream.to_owned()).or_insert(0) += 1;
        Event {
            uid: new_uid(),
            time,
            descriptor,
            seq_num: s.seq,
            data,
            timestamps,
            filled: IndexMap::new(),
        }
    }

    /// Closes the bundle into an event, preceded by its descriptor the first
    /// time and by the asset documents its devices gave.
    pub fn save(&mut self) -> Result<Vec<Document>, PlanError> {
        let b = self
            .bundle
            .take()
            .ok_or_else(|| illegal("save", "no event bundle is open (send 'create' first)"))?;
        // Nothing read: no event (Bluesky's short-circuit), no descriptor.
        if b.reads.is_empty() {
            return Ok(Vec::new());
        }
        let objects: Vec<String> = b.reads.keys().cloned().collect();
        let handles: Vec<DeviceHandle> = b.reads.values().map(|(d, _)| d.clone()).collect();
        let mut docs = Vec::with_capacity(2);
        let descriptor = self.descriptor_for(&b.stream, &objects, &mut docs)?;
        self.same_handles(&b.stream, &handles)?;
        if !b.assets.is_empty() {
            let frames = self.pack_assets(b.assets, Some(&b.stream), &mut docs)?;
            if frames > 1 {
                return Err(inconsistent(
                    "save",
                    BlueskyException::RuntimeError,
                    "Received multiple indices in a `stream_datum` document for one event, during a `read()` `save()`. \
                     `stream_datum` should have indices {\"start\": n, \"stop\": n+1} in a `read()` `save()`.",
                ));
            }
        }
        let mut data = IndexMap::new();
        let mut timestamps = IndexMap::new();
        for (_, (_, readings)) in b.reads {
            let (d, t) = split_readings(readings);
            data.extend(d);
            timestamps.extend(t);
        }
        let filled = self.unfilled(&b.stream);
        let mut ev = self.next_event(&b.stream, descriptor, now(), data, timestamps);
        if let Document::Event(e) = &mut ev {
            e.filled = filled;
        }
        docs.push(ev);
        Ok(docs)
    }

    /// Whether `device` is monitored in this run.
    pub fn is_monitored(&self, device: &str) -> bool {
        self.monitors.contains_key(device)
    }

    /// Records that `device` is monitored into `monitor.stream`.
    pub fn add_monitor(&mut self, device: &str, monitor: Monitor) {
        if !self.monitor_streams.contains(&monitor.stream) {
            self.monitor_streams.push(monitor.stream.clone());
        }
        self.monitors.insert(device.to_owned(), monitor);
    }

    /// Each monitored device and its stream.
    pub fn monitors(&self) -> Vec<(DeviceHandle, String)> {
        self.monitors
            .values()
            .map(|m| (m.device.clone(), m.stream.clone()))
            .collect()
    }

    /// Stops every monitor's subscription (at a pause), keeping the monitors.
    pub fn suspend_monitors(&mut self) {
        self.monitors.values().for_each(|m| m.task.abort());
    }

    /// The task now emitting `device`'s monitor events (after a pause).
    pub fn restore_monitor(&mut self, device: &str, task: tokio::task::AbortHandle) {
        if let Some(m) = self.monitors.get_mut(device) {
            m.task.abort();
            m.task = task;
        }
    }

    /// Stops monitoring `device`; `false` if it was not monitored.
    pub fn remove_monitor(&mut self, device: &str) -> bool {
        self.monitors.remove(device).is_some()
    }

    /// The event of a monitored stream for `readings` (its descriptor was
    /// emitted by `monitor`); `None` once the stream is not monitored.
    pub fn monitor_event(&mut self, stream: &str, readings: Readings) -> Option<Document> {
        if !self.monitors.values().any(|m| m.stream == stream) {
            return None;
        }
        let descriptor = self.streams.get(stream)?.descriptor.clone()?;
        let (data, timestamps) = split_readings(readings);
        Some(self.next_event(stream, descriptor, now(), data, timestamps))
    }

    /// Records the sequence numbers a rewind returns to.
    pub fn checkpoint(&mut self) {
        self.checkpoint_seq = self
            .streams
            .iter()
            .map(|(k, s)| (k.clone(), s.seq))
            .collect();
    }

    /// Returns to the last checkpoint: the open bundle is dropped and sequence numbers restored.
    pub fn rewind(&mut self) {
        self.bundle = None;
        for (k, s) in self.streams.iter_mut() {
            // A monitor's events were not taken by the plan: none is retaken.
            if !self.monitor_streams.contains(k) {
                s.seq = self.checkpoint_seq.get(k).copied().unwrap_or(0);
            }
        }
    }
}

fn make_descriptor(
    run_start: &str,
    stream: &str,
    parts: &[(&String, &ObjectDescription)],
) -> Result<EventDescriptor, PlanError> {
    let mut d = EventDescriptor {
        uid: new_uid(),
        time: now(),
        run_start: run_start.to_owned(),
        name: stream.to_owned(),
        data_keys: DataKeys::new(),
        object_keys: IndexMap::new(),
        configuration: IndexMap::new(),
        hints: IndexMap::new(),
    };
    for (name, desc) in parts {
        for (k, dk) in &desc.data_keys {
            if d.data_keys.contains_key(k) {
                return Err(inconsistent(
                    "save",
                    BlueskyException::ValueError,
                    format!("data key '{k}' of {name} is also read from another object in stream '{stream}'"),
                ));
            }
            let mut dk = dk.clone();
            dk.object_name = Some((*name).clone());
            d.data_keys.insert(k.clone(), dk);
        }
        d.object_keys
            .insert((*name).clone(), desc.data_keys.keys().cloned().collect());
        d.configuration
            .insert((*name).clone(), desc.configuration.clone());
        // Bluesky's `maybe_update_hints`: an object with hints has them
        // written as they are, even empty.
        if let Some(hints) = &desc.hints {
            d.hints.insert((*name).clone(), hints.clone());
        }
    }
    Ok(d)
}

/// Whether `a` and `b` hold the same object names, in any order.
fn same_objects(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && {
        let a: std::collections::HashSet<&String> = a.iter().collect();
        b.iter().all(|o| a.contains(o))
    }
}
