//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use skyrun::{Document, RunEngine};
use skyrun_actors::sim::{SynAxis, SynGauss};
use skyrun_actors::DeviceHandle;

/// The documents a subscriber received, in order.
#[derive(Clone, Default)]
pub struct Docs(pub Arc<Mutex<Vec<(String, Document)>>>);

impl Docs {
    pub fn subscribe(re: &RunEngine) -> Docs {
        let d = Docs::default();
        let inner = d.0.clone();
        re.subscribe(move |name, doc| inner.lock().unwrap().push((name.to_owned(), doc.clone())));
        d
    }
    pub fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
    pub fn all(&self) -> Vec<Document> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }
    pub fn take(&self) -> Vec<Document> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }
    pub fn events(&self) -> Vec<skyrun::Event> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }
    pub fn stops(&self) -> Vec<skyrun::RunStop> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Stop(s) => Some(s),
                _ => None,
            })
            .collect()
    }
    pub fn starts(&self) -> Vec<skyrun::RunStart> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Start(s) => Some(s),
                _ => None,
            })
            .collect()
    }
    pub fn descriptors(&self) -> Vec<skyrun::EventDescriptor> {
        self.all()
            .into_iter()
            .filter_map(|d| match d {
                Document::Descriptor(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

/// A motor and a noiseless detector peaking at 0 with height 1.
pub fn motor_det() -> (DeviceHandle, DeviceHandle) {
    let motor = SynAxis::new("motor");
    let det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
    (DeviceHandle::spawn(motor), DeviceHandle::spawn(det))
}

/// Runs `f` inside an actix system.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    actix::System::new().block_on(f)
}
