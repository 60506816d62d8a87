//! Document subscribers that analyse a run, after Bluesky's callbacks:
//! [`PeakSummary`] keeps the peak statistics of each scan, as
//! BestEffortCallback's `bec.peaks` (see [the definitions](mod@peak_stats)).

pub mod peak_stats;

pub use peak_stats::{peak_stats, Peak, PeakSummary, RunPeaks};
