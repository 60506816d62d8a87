//! Bluesky's `record_interruptions`: with it on, each run has a stream
//! `interruptions` (its descriptor emitted right after the start document,
//! one data key `interruption`, a string from the `RunEngine`), and every
//! pause, resume and suspension of the engine while the run is open is an
//! event of it (`"pause"`, `"resume"`, the suspension's justification).
//! Its events are never rewound.

use indexmap::IndexMap;
use serde_json::Value;
use skyrun_actors::{now, DataKey, DataKeys};

use super::OpenRun;
use crate::documents::{new_uid, Document, EventDescriptor};

/// The stream's name, as Bluesky's.
pub const STREAM: &str = "interruptions";
/// Its one data key.
const KEY: &str = "interruption";

impl OpenRun {
    /// Starts recording this run's interruptions: the stream's descriptor.
    pub fn record_interruptions(&mut self) -> Document {
        let mut key = DataKey::number("RunEngine");
        key.dtype = "string".into();
        let data_keys: DataKeys = [(KEY.to_owned(), key)].into_iter().collect();
        let d = EventDescriptor {
            uid: new_uid(),
            time: now(),
            run_start: self.uid.clone(),
            name: STREAM.to_owned(),
            data_keys,
            object_keys: IndexMap::new(),
            configuration: IndexMap::new(),
            hints: IndexMap::new(),
        };
        if !self.monitor_streams.iter().any(|s| s == STREAM) {
            self.monitor_streams.push(STREAM.to_owned());
        }
        let mut docs = Vec::with_capacity(1);
        self.add_descriptor(d, Vec::new(), &mut docs);
        docs.pop().expect("add_descriptor queues the descriptor")
    }

    /// The event of an interruption (`what`), if this run records them.
    pub fn interruption(&mut self, what: &str) -> Option<Document> {
        let descriptor = self.streams.get(STREAM)?.descriptor.clone()?;
        let t = now();
        Some(
            self.next_event(
                STREAM,
                descriptor,
                t,
                [(KEY.to_owned(), Value::String(what.to_owned()))]
                    .into_iter()
                    .collect(),
                [(KEY.to_owned(), t)].into_iter().collect(),
            ),
        )
    }
}
