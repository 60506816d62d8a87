//! The progress bar of a long run (feature `cli`: it draws with `indicatif`).
//! Its elapsed time and ETA come from [`Pace`]: the pace of the last points,
//! on a clock that stops while the run is paused.
//!
//! ```
//! use skyrun::console::{progress::Progress, Stream};
//! let mut p = Progress::hidden(20, "scan");
//! p.point();
//! p.set_paused(true);
//! assert!(p.message().contains("paused"), "{}", p.message());
//! p.finish();
//! ```

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::pace::Pace;
use super::Stream;

/// A progress bar for `total` points.
pub struct Progress {
    bar: ProgressBar,
    pace: Pace,
    total: u64,
}

impl Progress {
    /// A bar drawn on `stream`, prefixed with `prefix` (the plan's name).
    pub fn new(total: u64, prefix: &str, stream: Stream) -> Self {
        let target = match stream {
            Stream::Stdout => ProgressDrawTarget::stdout(),
            Stream::Stderr => ProgressDrawTarget::stderr(),
        };
        Self::with_target(total, prefix, target)
    }

    /// A bar that draws nothing (for tests and non-terminal output).
    pub fn hidden(total: u64, prefix: &str) -> Self {
        Self::with_target(total, prefix, ProgressDrawTarget::hidden())
    }

    fn with_target(total: u64, prefix: &str, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template("{prefix} {wide_bar} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(prefix.to_owned());
        let mut p = Progress {
            bar,
            pace: Pace::new(Instant::now()),
            total,
        };
        p.refresh();
        p
    }

    /// One point done.
    pub fn point(&mut self) {
        self.pace.point(Instant::now());
        self.bar.inc(1);
        self.refresh();
    }

    /// The run paused (the clock stops) or resumed.
    pub fn set_paused(&mut self, paused: bool) {
        let now = Instant::now();
        if paused {
            self.pace.pause(now);
        } else {
            self.pace.resume(now);
        }
        self.refresh();
    }

    /// The text after the counts: `[elapsed] (eta ...)`, or `paused`.
    pub fn message(&self) -> String {
        let now = Instant::now();
        let elapsed = clock(self.pace.active_elapsed(now));
        if self.pace.is_paused() {
            return format!("[{elapsed}] paused");
        }
        match self.pace.eta(self.total, now) {
            Some(eta) => format!("[{elapsed}] (eta {})", clock(eta)),
            None => format!("[{elapsed}]"),
        }
    }

    fn refresh(&mut self) {
        self.bar.set_message(self.message());
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `h:mm:ss`, rounded up to the second.
fn clock(d: Duration) -> String {
    let s = d.as_millis().div_ceil(1000) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_reads_hours_minutes_seconds() {
        use std::time::Duration;
        assert_eq!(super::clock(Duration::from_millis(3_725_100)), "1:02:06");
        assert_eq!(super::clock(Duration::ZERO), "0:00:00");
    }
}
