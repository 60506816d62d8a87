//! The main demo: a scan of a simulated detector over a simulated motor,
//! shown as `skyrun run` shows it, from the library's console pieces: the
//! live event table, Ctrl-C as Bluesky's `SigintHandler` (pause, then
//! resume/abort/stop/halt), the documents file and the run summary line.
//!
//! ```text
//! cargo run --release --example demo [-- DOCUMENTS.jsonl]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Instant;

use skyrun::console::documents_jsonl::DocumentsWriter;
use skyrun::console::sigint::SigintHandler;
use skyrun::console::summary::{RunCounter, RunReport};
use skyrun::console::table::EventTable;
use skyrun::{plans, RunEngine};
use skyrun_actors::{
    sim::{Noise, SynAxis, SynGauss},
    DeviceHandle,
};

fn main() -> anyhow::Result<()> {
    // An optional documents file, as `skyrun run --documents`.
    let docs = match std::env::args_os().nth(1) {
        Some(p) => Some(Arc::new(Mutex::new(DocumentsWriter::create(p.as_ref())?))),
        None => None,
    };
    let counter = RunCounter::default();
    let started = Instant::now();
    let outcome = actix::System::new().block_on({
        let (docs, counter) = (docs.clone(), counter.clone());
        async move {
            let re = RunEngine::new();
            let motor = SynAxis::new("motor").with_velocity(50.0).with_units("mm");
            let det =
                SynGauss::new("det", motor.probe(), 0.0, 100.0, 1.0).with_noise(Noise::Poisson);
            let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));

            let table = Mutex::new(EventTable::new());
            re.subscribe(move |name, doc| {
                counter.on_document(doc);
                if let Some(d) = &docs {
                    d.lock().unwrap().write(name, doc);
                }
                if let Some(text) = table.lock().unwrap().on_document(doc) {
                    println!("{text}");
                }
            });
            let watcher = actix::spawn(SigintHandler::new(re.clone()).watch());
            let outcome = re.run(plans::scan(vec![det], &motor, -3.0, 3.0, 13)).await;
            watcher.abort();
            outcome
        }
    });
    if let Some(d) = &docs {
        d.lock().unwrap().finish()?;
    }
    let report = RunReport::new("scan", &outcome, &counter, None, started.elapsed());
    println!("{}", report.line);
    if !report.ok {
        std::process::exit(1);
    }
    Ok(())
}
