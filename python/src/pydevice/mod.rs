//! Python objects that follow ophyd's protocol (ophyd.sim's own devices, a
//! user's class) run as skyrun device actors: each request calls the object's
//! method with the GIL, inside the OpenTelemetry context the request carried
//! (so ophyd's own "Ophyd Status" span is a child of skyrun's set span), and
//! an ophyd Status completes the skyrun Status it is paired with.
//!
//! ophyd-async devices run here too: every call runs with Bluesky's event
//! loop as the running loop, an awaitable answer is awaited on it, and an
//! awaitable status is traced by skyrun (see [`crate::async_device`]).
//!
//! Where things live: this file holds the registry of objects running as
//! actors ([`handle_for`]), [`PyDevice`] and the capabilities it finds on
//! the object; `calls` calls the object's methods (awaiting what they
//! answer); `status_calls` the methods that answer a status (`set`,
//! `trigger`, `stage`, ...); `raised` the exceptions they raise; and one
//! file per capability group implements skyrun's device traits: `readable`
//! (read, describe, hints, subscribe), `movable` (set, position, locate),
//! `flyable` (kickoff, complete, collect, external assets), `control`
//! (trigger, prepare, stage, configure, pause, stop).

mod calls;
mod control;
mod flyable;
mod movable;
mod raised;
mod readable;
mod status_calls;

pub(crate) use raised::{raised, Raised};

use std::collections::HashMap;

use parking_lot::Mutex;
use pyo3::prelude::*;
use skyrun_actors::{
    Configurable, Device, DeviceHandle, ExternalAssets, Flyable, Movable, Pausable, Preparable,
    Readable, Stageable, Stoppable, Subscribable, Subscribers, Triggerable,
};

/// Python objects already running as actors, by identity (kept alive here so
/// an identity is never reused).
type Registry = HashMap<usize, (Py<PyAny>, DeviceHandle)>;
static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// The actor of Python object `obj`, spawned on first use. Must run on the runtime thread.
pub fn handle_for(obj: &Bound<'_, PyAny>) -> PyResult<DeviceHandle> {
    let key = obj.as_ptr() as usize;
    if let Some((_, h)) = REGISTRY.lock().get_or_insert_with(HashMap::new).get(&key) {
        return Ok(h.clone());
    }
    let dev = PyDevice::new(obj)?;
    let handle = DeviceHandle::spawn(dev);
    REGISTRY
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(key, (obj.clone().unbind(), handle.clone()));
    Ok(handle)
}

struct Caps {
    read: bool,
    set: bool,
    trigger: bool,
    fly: bool,
    stage: bool,
    configure: bool,
    stop: bool,
    /// ophyd's `subscribe(callback, run=...)` (readable objects only).
    subscribe: bool,
    /// `collect_asset_docs` (Bluesky's WritesExternalAssets).
    assets: bool,
    /// `get_index` (with `collect_asset_docs`, WritesStreamAssets).
    index: bool,
    /// `collect_pages` (EventPageCollectable).
    pages: bool,
    /// `prepare` (Preparable: ophyd-async's detectors and motors).
    prepare: bool,
    /// Bluesky's Pausable: `pause()` and `resume()`.
    pause: bool,
}

/// An ophyd-protocol Python object hosted by a skyrun device actor.
pub struct PyDevice {
    obj: Py<PyAny>,
    name: String,
    type_name: &'static str,
    repr: String,
    caps: Caps,
    /// Where the object's subscription publishes (made at the first subscribe).
    subscribers: Option<Subscribers>,
    /// The callback given to the object's `subscribe`, while subscribed.
    callback: Option<Py<PyAny>>,
}

fn leak_type_name(name: String) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock();
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.into_boxed_str());
    names.push(n);
    n
}

impl PyDevice {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let has = |a: &str| obj.hasattr(a).unwrap_or(false);
        // Bluesky asks a name only of what it reads: an object without one
        // (stage-only helpers, say) is named after its type and identity.
        let name: String = match obj.getattr("name") {
            Ok(n) => n.extract()?,
            Err(_) => format!("{}@{:x}", obj.get_type().name()?, obj.as_ptr() as usize),
        };
        Ok(PyDevice {
            obj: obj.clone().unbind(),
            type_name: leak_type_name(obj.get_type().name()?.to_string()),
            repr: obj.repr()?.to_string(),
            caps: Caps {
                // A flyer with configuration only is read for its configuration.
                read: (has("read") && has("describe"))
                    || (has("read_configuration") && has("describe_configuration")),
                set: has("set"),
                trigger: has("trigger"),
                // Bluesky's Flyable, and its collectables (EventCollectable,
                // EventPageCollectable, describe_collect of WritesStreamAssets).
                fly: (has("kickoff") && has("complete"))
                    || has("collect")
                    || has("collect_pages")
                    || has("describe_collect"),
                stage: has("stage") && has("unstage"),
                configure: has("configure"),
                stop: has("stop"),
                subscribe: has("subscribe") && has("read") && has("describe"),
                assets: has("collect_asset_docs"),
                index: has("get_index"),
                pages: has("collect_pages"),
                prepare: has("prepare"),
                pause: has("pause") && has("resume"),
            },
            subscribers: None,
            callback: None,
            name,
        })
    }
}

impl Device for PyDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        self.type_name
    }
    fn repr(&self) -> String {
        self.repr.clone()
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        self.caps.read.then_some(self as _)
    }
    fn movable(&mut self) -> Option<&mut dyn Movable> {
        self.caps.set.then_some(self as _)
    }
    fn triggerable(&mut self) -> Option<&mut dyn Triggerable> {
        self.caps.trigger.then_some(self as _)
    }
    fn flyable(&mut self) -> Option<&mut dyn Flyable> {
        self.caps.fly.then_some(self as _)
    }
    fn stageable(&mut self) -> Option<&mut dyn Stageable> {
        self.caps.stage.then_some(self as _)
    }
    fn configurable(&mut self) -> Option<&mut dyn Configurable> {
        self.caps.configure.then_some(self as _)
    }
    fn stoppable(&mut self) -> Option<&mut dyn Stoppable> {
        self.caps.stop.then_some(self as _)
    }
    fn subscribable(&mut self) -> Option<&mut dyn Subscribable> {
        self.caps.subscribe.then_some(self as _)
    }
    fn external_assets(&mut self) -> Option<&mut dyn ExternalAssets> {
        self.caps.assets.then_some(self as _)
    }
    fn preparable(&mut self) -> Option<&mut dyn Preparable> {
        self.caps.prepare.then_some(self as _)
    }
    fn pausable(&mut self) -> Option<&mut dyn Pausable> {
        self.caps.pause.then_some(self as _)
    }
}
