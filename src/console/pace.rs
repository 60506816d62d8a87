//! The pace of a run, for the progress bar's ETA: the time per point over
//! the last few points, on a clock that stops while the run is paused, so a
//! pause neither inflates the estimate nor counts as time spent.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use skyrun::console::pace::Pace;
//! let t0 = Instant::now();
//! let s = Duration::from_secs;
//! let mut pace = Pace::new(t0);
//! pace.point(t0 + s(1));
//! pace.point(t0 + s(2));
//! pace.pause(t0 + s(2));
//! pace.resume(t0 + s(62));          // a minute paused
//! pace.point(t0 + s(63));
//! assert_eq!(pace.active_elapsed(t0 + s(63)), s(3));
//! // 3 points done at 1 s each: 7 more take 7 s.
//! assert_eq!(pace.eta(10, t0 + s(63)), Some(s(7)));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many recent points the pace is measured over by default.
pub const DEFAULT_WINDOW: usize = 10;

/// Point times on a clock that stops while paused.
#[derive(Debug, Clone)]
pub struct Pace {
    started: Instant,
    paused_total: Duration,
    paused_since: Option<Instant>,
    /// Active time of the last points (at most `window + 1`).
    recent: VecDeque<Duration>,
    window: usize,
    done: u64,
}

impl Pace {
    /// A pace measured over the last [`DEFAULT_WINDOW`] points, from `started`.
    pub fn new(started: Instant) -> Self {
        Self::with_window(started, DEFAULT_WINDOW)
    }

    /// A pace measured over the last `window` points (at least 1).
    pub fn with_window(started: Instant, window: usize) -> Self {
        let mut recent = VecDeque::new();
        recent.push_back(Duration::ZERO);
        Pace {
            started,
            paused_total: Duration::ZERO,
            paused_since: None,
            recent,
            window: window.max(1),
            done: 0,
        }
    }

    /// Time since the start, less the time spent paused.
    pub fn active_elapsed(&self, now: Instant) -> Duration {
        let paused_now = self
            .paused_since
            .map_or(Duration::ZERO, |p| now.saturating_duration_since(p));
        now.saturating_duration_since(self.started)
            .saturating_sub(self.paused_total + paused_now)
    }

    /// One more point done at `now`.
    pub fn point(&mut self, now: Instant) {
        self.done += 1;
        self.recent.push_back(self.active_elapsed(now));
        while self.recent.len() > self.window + 1 {
            self.recent.pop_front();
        }
    }

    /// Points done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// The clock stops at `now` (a second pause is ignored).
    pub fn pause(&mut self, now: Instant) {
        if self.paused_since.is_none() {
            self.paused_since = Some(now);
        }
    }

    /// The clock runs again from `now`.
    pub fn resume(&mut self, now: Instant) {
        if let Some(p) = self.paused_since.take() {
            self.paused_total += now.saturating_duration_since(p);
        }
    }

    /// Whether the clock is stopped.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Active time per point over the recent points; `None` before the first point.
    pub fn per_point(&self) -> Option<Duration> {
        let n = self.recent.len().checked_sub(1).filter(|n| *n > 0)?;
        let span = *self.recent.back()? - *self.recent.front()?;
        Some(span / n as u32)
    }

    /// The time the remaining `total - done` points take at the recent pace.
    pub fn eta(&self, total: u64, _now: Instant) -> Option<Duration> {
        let left = total.saturating_sub(self.done);
        let per = self.per_point()?;
        Some(per.saturating_mul(u32::try_from(left).unwrap_or(u32::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_follows_the_last_points_not_the_first() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pace = Pace::with_window(t0, 2);
        // Slow at first (1 s a point), then fast (100 ms a point).
        pace.point(t0 + ms(1000));
        pace.point(t0 + ms(2000));
        pace.point(t0 + ms(2100));
        pace.point(t0 + ms(2200));
        assert_eq!(pace.per_point(), Some(ms(100)));
        assert_eq!(pace.eta(14, t0 + ms(2200)), Some(ms(1000)));
    }

    #[test]
    fn no_estimate_before_a_point_and_paused_time_never_counts() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut pace = Pace::new(t0);
        assert_eq!(pace.eta(10, t0), None);
        pace.pause(t0 + s(1));
        assert!(pace.is_paused());
        assert_eq!(pace.active_elapsed(t0 + s(100)), s(1));
        pace.resume(t0 + s(100));
        pace.point(t0 + s(101));
        assert_eq!(pace.active_elapsed(t0 + s(101)), s(2));
        assert_eq!(pace.per_point(), Some(s(2)));
    }
}
