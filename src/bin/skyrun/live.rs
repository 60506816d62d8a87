//! Live output while a run goes: the library's event table
//! ([`skyrun::console::table::EventTable`]) and, for long plans on a
//! terminal, its progress bar ([`skyrun::console::progress::Progress`]),
//! with the table printed above the bar.

use serde_json::Value;
use skyrun::console::progress::Progress;
use skyrun::console::table::EventTable;
use skyrun::Document;

use crate::output::Out;

/// Plans with at least this many points get a progress bar.
const PROGRESS_MIN_POINTS: u64 = 10;

/// The live table and progress bar of `skyrun run`.
pub struct Live {
    out: Out,
    table: Option<EventTable>,
    progress: bool,
    bar: Option<Progress>,
}

impl Live {
    /// Live output on `out`: the table when `table`, the bar when `progress`.
    pub fn new(out: Out, table: bool, progress: bool) -> Self {
        Live {
            out,
            table: table.then(EventTable::new),
            progress,
            bar: None,
        }
    }

    /// Whether it prints anything at all.
    pub fn is_active(&self) -> bool {
        self.table.is_some() || self.progress
    }

    /// Handles one document.
    pub fn on_document(&mut self, doc: &Document) {
        if let Document::Start(s) = doc {
            self.finish();
            let points = s.metadata.get("num_points").and_then(Value::as_u64);
            if let (true, Some(n)) = (self.progress, points) {
                if n >= PROGRESS_MIN_POINTS {
                    let plan = s.metadata.get("plan_name").and_then(Value::as_str);
                    self.bar = Some(Progress::new(n, plan.unwrap_or("run"), self.out));
                }
            }
        }
        if let (Document::Event(_), Some(bar)) = (doc, &mut self.bar) {
            bar.point();
        }
        if matches!(doc, Document::Stop(_)) {
            self.finish();
        }
        let text = self.table.as_mut().and_then(|t| t.on_document(doc));
        if let Some(text) = text {
            match &self.bar {
                Some(bar) => bar.suspend(|| self.out.line(&text)),
                None => self.out.line(&text),
            }
        }
    }

    /// The run paused or resumed: the bar's clock stops or runs.
    pub fn set_paused(&mut self, paused: bool) {
        if let Some(bar) = &mut self.bar {
            bar.set_paused(paused);
        }
    }

    /// Removes the progress bar if a run left one.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
