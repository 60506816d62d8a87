//! What a person watching a run sees, as library pieces: the live
//! [`EventTable`](table::EventTable) (after Bluesky's BestEffortCallback), the
//! end-of-run [`RunReport`](summary::RunReport) line, Ctrl-C handling as
//! Bluesky's `SigintHandler` ([`sigint`]), the documents file writer
//! ([`DocumentsWriter`](documents_jsonl::DocumentsWriter)), the pace-based ETA
//! ([`Pace`](pace::Pace)) and, with the `cli` feature, the progress bar
//! (`progress`, which needs `indicatif`).
//!
//! The `skyrun` binary is built from these; so can any program of your own:
//! see `examples/demo.rs`.
//!
//! ```
//! use skyrun::console::{summary::RunCounter, table::EventTable};
//! use skyrun::{plans, RunEngine};
//! use skyrun_actors::{sim::{SynAxis, SynGauss}, DeviceHandle};
//! use std::sync::{Arc, Mutex};
//!
//! actix::System::new().block_on(async {
//!     let re = RunEngine::new();
//!     let motor = SynAxis::new("motor");
//!     let det = SynGauss::new("det", motor.probe(), 0.0, 1.0, 1.0);
//!     let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));
//!     let printed = Arc::new(Mutex::new(String::new()));
//!     let (table, counter) = (Arc::new(Mutex::new(EventTable::new())), RunCounter::default());
//!     let (p, c) = (printed.clone(), counter.clone());
//!     re.subscribe(move |_, doc| {
//!         c.on_document(doc);
//!         if let Some(text) = table.lock().unwrap().on_document(doc) {
//!             p.lock().unwrap().push_str(&text);
//!         }
//!     });
//!     re.run(plans::scan(vec![det], &motor, -1.0, 1.0, 3)).await.unwrap();
//!     let text = printed.lock().unwrap().clone();
//!     assert!(text.contains("|   seq_num |         time |      motor |        det |"), "{text}");
//!     assert_eq!(counter.events(), 3);
//! });
//! ```

pub mod documents_jsonl;
pub mod pace;
#[cfg(feature = "cli")]
pub mod progress;
pub mod sigint;
pub mod summary;
pub mod table;

use std::io::{IsTerminal, Write};

/// A stream for human output: stdout, or stderr when stdout carries spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Whether the stream is a terminal.
    pub fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    /// Writes `text` and a newline; a closed stream is not an error worth stopping a run for.
    pub fn line(self, text: &str) {
        let _ = match self {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{text}"),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
        };
    }

    /// Writes `text` as is.
    pub fn text(self, text: &str) {
        let _ = match self {
            Stream::Stdout => write!(std::io::stdout().lock(), "{text}"),
            Stream::Stderr => write!(std::io::stderr().lock(), "{text}"),
        };
    }
}
