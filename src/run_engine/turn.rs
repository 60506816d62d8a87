//! Fair turns: a plan whose messages are all answered at once (an endless
//! loop of `null`, of `read` of a simulated device) would otherwise hold the
//! engine's thread for as long as it runs, and nothing else on that thread
//! (control requests — pause, stop, halt —, Ctrl-C, timers, device actors,
//! Python's event loop) would be served. [`Turn`] tells the plan's message
//! path when to give the executor a turn: at least every
//! [`Turn::SLICE`] of plan work. It looks at the clock only every
//! [`Turn::CHECK_EVERY`] messages, so the common message pays one counter
//! increment.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// When the plan last gave its executor a turn, and how many messages since.
pub(crate) struct Turn {
    count: Cell<u32>,
    since: Cell<Instant>,
}

impl Default for Turn {
    fn default() -> Self {
        Turn {
            count: Cell::new(0),
            since: Cell::new(Instant::now()),
        }
    }
}

impl Turn {
    /// The longest stretch of plan work between two turns.
    pub const SLICE: Duration = Duration::from_millis(1);
    /// Messages between two looks at the clock.
    pub const CHECK_EVERY: u32 = 64;

    /// Counts one message; whether the executor's turn is due now.
    #[inline]
    pub fn due(&self) -> bool {
        let n = self.count.get() + 1;
        if n < Self::CHECK_EVERY {
            self.count.set(n);
            return false;
        }
        self.count.set(0);
        let now = Instant::now();
        if now.duration_since(self.since.get()) < Self::SLICE {
            return false;
        }
        self.since.set(now);
        true
    }
}

/// Gives the executor a turn: every other ready task (control requests,
/// timers, actors) runs before the plan goes on.
pub(crate) async fn give() {
    tokio::task::yield_now().await;
}
