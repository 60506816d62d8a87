//! What `collect` and external assets add to a run's documents, after
//! Bluesky's `RunBundler.collect` and `_pack_external_assets`: the stream a
//! collect goes to (declared with `declare_stream`, or each stream of an
//! old-style flyer's `describe_collect`), event pages of collected events,
//! and resource / datum / stream resource / stream datum documents with what
//! only the engine knows filled in (`run_start`, the stream datum's
//! `descriptor` and `seq_nums`).

use indexmap::IndexMap;
use serde_json::{json, Value};
use skyrun_actors::{AssetDocument, AssetKind, CollectedEvent, DataKeys, DeviceHandle};

use super::{inconsistent, make_descriptor, ObjectDescription, OpenRun};
use crate::documents::{Document, EventPage, ObjectConfiguration};
use crate::error::{BlueskyException, PlanError};

/// The data keys of `keys` stored in stream resources (`external: "STREAM:"`).
fn stream_keys(keys: &DataKeys) -> Vec<String> {
    keys.iter()
        .filter(|(_, k)| k.external.as_deref() == Some("STREAM:"))
        .map(|(n, _)| n.clone())
        .collect()
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut v = names.to_vec();
    v.sort();
    v
}

impl OpenRun {
    /// Records that `flyer` was kicked off (and so is to be collected).
    pub fn kicked_off(&mut self, flyer: &DeviceHandle) {
        if !self.uncollected.contains(flyer) {
            self.uncollected.push(flyer.clone());
        }
    }

    /// Records that `flyer` was collected.
    pub fn collected(&mut self, flyer: &DeviceHandle) {
        self.uncollected.retain(|d| d != flyer);
    }

    /// The flyers kicked off and never collected (Bluesky's backstop collect
    /// takes them when the plan ends).
    pub fn take_uncollected(&mut self) -> Vec<DeviceHandle> {
        std::mem::take(&mut self.uncollected)
    }

    /// Records that `stream` was declared for `objects` (a set).
    pub(super) fn record_declared(&mut self, objects: &[String], stream: &str) {
        self.declared.push((sorted(objects), stream.to_owned()));
    }

    /// `declare_stream(*objs, name=stream, collect=True)`: the stream's
    /// descriptor from the objects' flat `describe_collect` keys.
    pub fn declare_collected(
        &mut self,
        stream: &str,
        parts: Vec<(String, ObjectDescription)>,
    ) -> Result<Vec<Document>, PlanError> {
        // Each declaration emits a new descriptor, as Bluesky's does (the
        // stream's sequence numbers go on).
        let objects: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
        let mut docs = Vec::new();
        let refs: Vec<(&String, &ObjectDescription)> = parts.iter().map(|(n, d)| (n, d)).collect();
        let d = make_descriptor(&self.uid, stream, &refs)?;
        self.add_descriptor(d, objects.clone(), &mut docs);
        self.record_declared(&objects, stream);
        Ok(docs)
    }

    /// The stream a `collect` of `objects` goes to: `name` (which must have
    /// been declared for them), else the one stream declared for them, else
    /// `None` (an old-style flyer names its own streams).
    pub fn collect_stream(
        &self,
        objects: &[String],
        name: Option<&str>,
    ) -> Result<Option<String>, PlanError> {
        let key = sorted(objects);
        let mut declared: Vec<&String> = self
            .declared
            .iter()
            .filter(|(objs, _)| *objs == key)
            .map(|(_, s)| s)
            .collect();
        declared.dedup();
        match name {
            Some(n) if declared.iter().any(|s| *s == n) => Ok(Some(n.to_owned())),
            Some(n) => Err(inconsistent(
                "collect",
                BlueskyException::AssertionError,
                format!("If a message stream name is provided declare stream needs to be called first. (stream '{n}' was not declared for {})", objects.join(", ")),
            )),
            None if declared.len() > 1 => Err(inconsistent(
                "collect",
                BlueskyException::AssertionError,
                format!(
                    "{} were declared in several streams ({}): name the stream with collect(..., name=)",
                    objects.join(", "),
                    declared.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
            None => Ok(declared.first().map(|s| (*s).clone())),
        }
    }

    /// Whether old-style flyer `flyer` has had its streams described.
    pub fn has_local_streams(&self, flyer: &str) -> bool {
        self.local_streams.contains_key(flyer)
    }

    /// The descriptors of an old-style flyer's streams (`describe_collect`
    /// as `{stream: {key: DataKey}}`), emitted for the streams that have
    /// none, each with its own reading of the flyer's configuration (one per
    /// stream, in order, as Bluesky's bundler reads it per stream).
    pub fn describe_local_streams(
        &mut self,
        flyer: &str,
        streams: IndexMap<String, DataKeys>,
        configurations: Vec<ObjectConfiguration>,
    ) -> Result<Vec<Document>, PlanError> {
        let mut configurations = configurations.into_iter();
        let names: Vec<&String> = streams.keys().collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                if let Some(k) = streams[*a].keys().find(|k| streams[*b].contains_key(*k)) {
                    return Err(inconsistent(
                        "collect",
                        BlueskyException::RuntimeError,
                        format!("Can't use identical data keys in multiple streams: '{k}' is in streams '{a}' and '{b}' of {flyer}"),
                    ));
                }
            }
        }
        let mut docs = Vec::new();
        let mut local = Vec::new();
        for (stream, data_keys) in streams {
            let configuration = configurations.next().unwrap_or_default();
            local.push(stream.clone());
            if let Some(s) = self.streams.get(&stream) {
                if s.descriptor.is_some() {
                    if s.objects.iter().any(|o| o == flyer) && s.data_keys.len() != data_keys.len()
                    {
                        return Err(inconsistent(
                            "collect",
                            BlueskyException::RuntimeError,
                            format!("Mismatched objects read for stream '{stream}' of {flyer}"),
                        ));
                    }
                    continue;
                }
            }
            let desc = ObjectDescription {
                data_keys,
                configuration,
                hints: None,
            };
            let d = make_descriptor(&self.uid, &stream, &[(&flyer.to_owned(), &desc)])?;
            self.add_descriptor(d, vec![flyer.to_owned()], &mut docs);
        }
        self.local_streams.insert(flyer.to_owned(), local);
        Ok(docs)
    }

    /// Event pages of `flyer`'s collected events, one per stream: into
    /// `stream` when the collect has one, else into the stream of the
    /// flyer's `describe_collect` whose data keys the event has.
    pub fn collected_pages(
        &mut self,
        flyer: &str,
        stream: Option<&str>,
        events: Vec<CollectedEvent>,
    ) -> Result<Vec<Document>, PlanError> {
        let mut pages: IndexMap<String, Vec<crate::documents::Event>> = IndexMap::new();
        for ev in events {
            let target = match stream {
                Some(s) => s.to_owned(),
                None => self.local_stream_of(flyer, &ev)?,
            };
            let s = self.streams.get(&target).ok_or_else(|| {
                inconsistent(
                    "collect",
                    BlueskyException::RuntimeError,
                    format!("`descriptor` not made for stream '{target}'"),
                )
            })?;
            let descriptor = s.descriptor.clone().unwrap_or_default();
            if let Some(k) = stream_keys(&s.data_keys)
                .into_iter()
                .find(|k| ev.data.contains_key(k))
            {
                return Err(inconsistent(
                    "collect",
                    BlueskyException::RuntimeError,
                    format!("{flyer} collected an event containing data for external data key '{k}' (its data is in stream resources)"),
                ));
            }
            let filled = self.unfilled(&target);
            let mut e = self.next_event_doc(&target, descriptor, ev.time, ev.data, ev.timestamps);
            e.filled = filled;
            pages.entry(target).or_default().push(e);
        }
        Ok(pages
            .into_values()
            .map(|evs| Document::EventPage(EventPage::pack(&evs)))
            .collect())
    }

    fn local_stream_of(&self, flyer: &str, ev: &CollectedEvent) -> Result<String, PlanError> {
        let local = self
            .local_streams
            .get(flyer)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let by_keys = local.iter().find(|s| {
            self.streams.get(*s).is_some_and(|st| {
                st.data_keys.len() == ev.data.len()
                    && ev.data.keys().all(|k| st.data_keys.contains_key(k))
            })
        });
        by_keys
            .or_else(|| local.iter().find(|s| **s == ev.stream))
            .cloned()
            .ok_or_else(|| {
                inconsistent(
                    "collect",
                    BlueskyException::RuntimeError,
                    format!(
                        "{flyer} collected an event with data keys {:?}, which no stream of its describe_collect has",
                        ev.data.keys().collect::<Vec<_>>()
                    ),
                )
            })
    }

    /// `filled` of an event of `stream`: `false` for each key stored in a
    /// resource (`external` other than `"STREAM:"`).
    pub(super) fn unfilled(&self, stream: &str) -> IndexMap<String, bool> {
        self.streams
            .get(stream)
            .map(|s| {
                s.data_keys
                    .iter()
                    .filter(|(_, k)| k.external.as_deref().is_some_and(|e| e != "STREAM:"))
                    .map(|(n, _)| (n.clone(), false))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds asset documents a device gave at `read` to the open bundle.
    pub fn record_assets(&mut self, docs: Vec<AssetDocument>) {
        if let Some(b) = &mut self.bundle {
            b.assets.extend(docs);
        }
    }

    /// Moves `stream`'s sequence numbers on by `frames` (a collect of stream
    /// data, which has no events of its own).
    pub fn advance(&mut self, stream: &str, frames: u64) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.seq += frames;
            *self.num_events.entry(stream.to_owned()).or_insert(0) += frames;
        }
    }

    /// Queues `assets` in `docs` with the run's fields filled in; returns
    /// the frames their stream data cover (the width of the `indices` of
    /// each stream datum, which must agree).
    pub fn pack_assets(
        &mut self,
        assets: Vec<AssetDocument>,
        stream: Option<&str>,
        docs: &mut Vec<Document>,
    ) -> Result<u64, PlanError> {
        let err = |reason: String| inconsistent("collect", BlueskyException::RuntimeError, reason);
        let model = |reason: String| {
            inconsistent("collect", BlueskyException::EventModelValueError, reason)
        };
        let (descriptor, external) = match stream.and_then(|s| self.streams.get(s)) {
            Some(s) => (s.descriptor.clone(), stream_keys(&s.data_keys)),
            None => (None, Vec::new()),
        };
        let seq0 = stream
            .and_then(|s| self.streams.get(s))
            .map_or(1, |s| s.seq + 1);
        let mut width = 0u64;
        let mut keys_received: Vec<String> = Vec::new();
        for mut doc in assets {
            match doc.kind {
                AssetKind::Resource => {
                    doc.body
                        .insert("run_start".into(), Value::String(self.uid.clone()));
                }
                AssetKind::StreamResource => {
                    doc.body
                        .insert("run_start".into(), Value::String(self.uid.clone()));
                    let uid = doc.str_field("uid").unwrap_or_default().to_owned();
                    let key = doc.str_field("data_key").unwrap_or_default().to_owned();
                    if self.stream_resources.contains_key(&uid) {
                        return Err(err(format!(
                            "Received `stream_resource` with uid {uid} twice."
                        )));
                    }
                    if !external.contains(&key) {
                        return Err(err(format!("Received a `stream_resource` with data_key {key} that is not in the descriptor 'STREAM:' data_keys {external:?}")));
                    }
                    self.stream_resources.insert(uid, key);
                }
                AssetKind::StreamDatum => {
                    let uid = doc.str_field("uid").unwrap_or_default().to_owned();
                    if doc.str_field("descriptor").is_some_and(|d| !d.is_empty()) {
                        return Err(err(format!("Received a `stream_datum` {uid} with a `descriptor` already filled in; it should be an empty string")));
                    }
                    let Some(descriptor) = &descriptor else {
                        return Err(err(format!(
                            "`descriptor` not made for stream {}",
                            stream.unwrap_or("(none)")
                        )));
                    };
                    let resource = doc.str_field("stream_resource").unwrap_or_default();
                    let Some(key) = self.stream_resources.get(resource) else {
                        return Err(err(format!("Received a `stream_datum` referring to an unknown stream resource {resource}")));
                    };
                    keys_received.push(key.clone());
                    let range = |name: &str| -> (u64, u64) {
                        let r = doc.body.get(name);
                        let n = |k: &str| {
                            r.and_then(|r| r.get(k))
                                .and_then(Value::as_u64)
                                .unwrap_or(0)
                        };
                        (n("start"), n("stop"))
                    };
                    if range("seq_nums") != (0, 0) {
                        return Err(model(format!("Received `seq_nums` {} in stream datum {uid}: `seq_nums` should be {{\"start\": 0, \"stop\": 0}} when used with the run engine", doc.body.get("seq_nums").cloned().unwrap_or_default())));
                    }
                    let (start, stop) = range("indices");
                    let w = stop.saturating_sub(start);
                    if width != 0 && width != w {
                        return Err(model(format!("Received `indices` {{\"start\": {start}, \"stop\": {stop}}} during `collect()`: these are of a different width `{w}` than other detectors in the same collect() or save()")));
                    }
                    width = w;
                    doc.body
                        .insert("descriptor".into(), Value::String(descriptor.clone()));
                    doc.body
                        .insert("seq_nums".into(), json!({"start": seq0, "stop": seq0 + w}));
                }
                AssetKind::Datum => {}
            }
            docs.push(Document::from_asset(doc));
        }
        if !keys_received.is_empty() {
            keys_received.sort();
            keys_received.dedup();
            let mut want = external.clone();
            want.sort();
            if want != keys_received {
                return Err(err(format!("Received `stream_datum` for each of the data_keys {keys_received:?}, expected `stream_datum` for each of the data_keys {want:?}.")));
            }
        }
        Ok(width)
    }
}
