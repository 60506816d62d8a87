//! Ctrl-C while a plan runs, as Bluesky's `SigintHandler`
//! (`bluesky/utils/__init__.py`, bluesky 1.15.1):
//!
//! * the first Ctrl-C asks for a *deferred* pause: the plan pauses at its
//!   next checkpoint;
//! * each further Ctrl-C within 10 s of the last one asks for a *hard*
//!   pause: the plan pauses at once (interrupting a move, wait or sleep;
//!   resume rewinds to the last checkpoint). A Ctrl-C less than 100 ms after
//!   the last one counted is ignored (a key held down, not a person);
//! * at the 11th Ctrl-C counted within 10 s of each other, where Bluesky
//!   gives the signal back to Python (a `KeyboardInterrupt`), the plan is
//!   halted: no cleanup, exit status `abort`, stop document still written;
//! * once paused, the operator is asked: resume, abort, stop or halt (the
//!   four ways out of Bluesky's paused state). End of input means abort.
//!   A Ctrl-C at the prompt reminds of the choices (Bluesky's handler is
//!   released while paused, so Ctrl-C at its prompt does not touch the run).
//!
//! Every way out goes through the engine, so the stop document and the run
//! span are always written.
//!
//! The counting rule alone is [`SigintCounter`]:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use skyrun::console::sigint::{PauseRequest, SigintCounter};
//! let (t0, ms) = (Instant::now(), Duration::from_millis);
//! let mut c = SigintCounter::default();
//! assert_eq!(c.on_sigint(t0), PauseRequest::Deferred);
//! assert_eq!(c.on_sigint(t0 + ms(50)), PauseRequest::Ignored);   // too soon
//! assert_eq!(c.on_sigint(t0 + ms(500)), PauseRequest::Hard);
//! assert_eq!(c.on_sigint(t0 + ms(20_000)), PauseRequest::Deferred); // 10 s later: a new count
//! ```

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{EngineState, RunEngine};

/// Within this long of the last counted Ctrl-C, another one asks for a hard pause.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(10);
/// A Ctrl-C closer than this to the last counted one is ignored.
pub const MIN_SPACING: Duration = Duration::from_millis(100);
/// Ctrl-C presses counted (each within the window of the last) before the next one gives up and halts.
pub const MAX_COUNTED: u32 = 10;

/// What one Ctrl-C asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseRequest {
    /// Pause at the next checkpoint.
    Deferred,
    /// Pause now.
    Hard,
    /// Nothing: too soon after the last one.
    Ignored,
    /// Too many: stop handling Ctrl-C gently (the plan is halted).
    GiveUp,
}

/// Bluesky's counting of Ctrl-C presses (see the [module docs](self)).
#[derive(Debug, Clone, Default)]
pub struct SigintCounter {
    count: u32,
    last: Option<Instant>,
}

impl SigintCounter {
    /// What a Ctrl-C at `now` asks for.
    pub fn on_sigint(&mut self, now: Instant) -> PauseRequest {
        let since = self.last.map(|l| now.saturating_duration_since(l));
        match since {
            None => self.count = 0,
            Some(d) if d > REPEAT_WINDOW => self.count = 0,
            _ => {}
        }
        if self.count == 0 {
            self.count = 1;
            self.last = Some(now);
            return PauseRequest::Deferred;
        }
        if since.is_some_and(|d| d <= MIN_SPACING) {
            return PauseRequest::Ignored;
        }
        self.last = Some(now);
        self.count += 1;
        if self.count <= MAX_COUNTED {
            PauseRequest::Hard
        } else {
            PauseRequest::GiveUp
        }
    }

    /// Forgets the presses so far (a resumed plan starts a new count).
    pub fn reset(&mut self) {
        *self = SigintCounter::default();
    }
}

/// The operator's answer at the pause prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Resume the plan (from its last checkpoint).
    Resume,
    /// Clean up, then end the plan; exit status `abort`.
    Abort,
    /// Clean up, then end the plan; exit status `success`.
    Stop,
    /// End the plan without cleanup; exit status `abort`.
    Halt,
}

impl Choice {
    /// `r`/`resume`, `a`/`abort`, `s`/`stop`, `h`/`halt` (any case, spaces around).
    ///
    /// ```
    /// use skyrun::console::sigint::Choice;
    /// assert_eq!(Choice::parse(" H\n"), Some(Choice::Halt));
    /// assert_eq!(Choice::parse("resume"), Some(Choice::Resume));
    /// assert_eq!(Choice::parse("x"), None);
    /// ```
    pub fn parse(answer: &str) -> Option<Choice> {
        match answer.trim().to_ascii_lowercase().as_str() {
            "r" | "resume" => Some(Choice::Resume),
            "a" | "abort" => Some(Choice::Abort),
            "s" | "stop" => Some(Choice::Stop),
            "h" | "halt" => Some(Choice::Halt),
            _ => None,
        }
    }
}

/// What the handler did, for whoever shows it (the default prints to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigintEvent {
    /// A Ctrl-C asked for a pause at the next checkpoint.
    DeferredPause,
    /// A Ctrl-C asked for a pause now.
    HardPause,
    /// The plan is paused; the operator is being asked.
    Paused,
    /// A Ctrl-C while the operator is being asked.
    AtPrompt,
    /// The operator chose.
    Chose(Choice),
    /// Too many Ctrl-C: the plan is being halted.
    GaveUp,
}

/// What the default observer prints for `event` (`None`: nothing).
pub fn message(event: &SigintEvent) -> Option<&'static str> {
    Some(match event {
        SigintEvent::DeferredPause => "A 'deferred pause' has been requested. The RunEngine will pause at the next checkpoint. To pause immediately, hit Ctrl+C again in the next 10 seconds.",
        SigintEvent::HardPause => "A 'hard pause' has been requested.",
        SigintEvent::Paused => "The RunEngine is paused. Your options:\n  r  resume: continue the plan from its last checkpoint\n  a  abort:  clean up, then end the plan (exit_status 'abort')\n  s  stop:   clean up, then end the plan (exit_status 'success')\n  h  halt:   emergency stop, no cleanup (exit_status 'abort')",
        SigintEvent::AtPrompt => "The plan is paused: answer r, a, s or h (end of input aborts).",
        SigintEvent::GaveUp => "Ctrl-C 11 times, each within 10 seconds of the last: halting the plan.",
        SigintEvent::Chose(_) => return None,
    })
}

/// Asks on the terminal (prompt on stderr, answer on stdin) until the answer is
/// one of the choices; end of input (or a read error) is [`Choice::Abort`].
pub fn ask_on_terminal() -> Choice {
    let mut err = std::io::stderr();
    loop {
        let _ = write!(
            err,
            "skyrun: paused. resume, abort, stop or halt? [r/a/s/h] "
        );
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => return Choice::Abort,
            Ok(_) => {
                if let Some(c) = Choice::parse(&line) {
                    return c;
                }
            }
        }
    }
}

type Prompt = Arc<dyn Fn() -> Choice + Send + Sync>;
type Observer = Box<dyn Fn(&SigintEvent)>;

/// Handles Ctrl-C for one [`RunEngine`] while it runs plans.
///
/// ```no_run
/// # use skyrun::{plans, RunEngine};
/// use skyrun::console::sigint::SigintHandler;
/// # async fn demo(re: RunEngine, plan: skyrun::Plan) {
/// let watcher = actix::spawn(SigintHandler::new(re.clone()).watch());
/// let outcome = re.run(plan).await;
/// watcher.abort();
/// # }
/// ```
pub struct SigintHandler {
    re: RunEngine,
    prompt: Prompt,
    observers: Vec<Observer>,
    choices: Arc<Mutex<Vec<Choice>>>,
}

impl SigintHandler {
    /// A handler asking on the terminal and printing what it does on stderr.
    pub fn new(re: RunEngine) -> Self {
        SigintHandler {
            re,
            prompt: Arc::new(ask_on_terminal),
            observers: vec![Box::new(|e| {
                if let Some(m) = message(e) {
                    eprintln!("\nskyrun: {m}");
                }
            })],
            choices: Arc::default(),
        }
    }

    /// Asks with `prompt` instead (it runs on a thread of its own, so it may block).
    pub fn with_prompt(mut self, prompt: impl Fn() -> Choice + Send + Sync + 'static) -> Self {
        self.prompt = Arc::new(prompt);
        self
    }

    /// Prints nothing (observers added later still see every event).
    pub fn quiet(mut self) -> Self {
        self.observers.clear();
        self
    }

    /// Also tells `observer` what happens (to pause a progress bar, say).
    pub fn on_event(mut self, observer: impl Fn(&SigintEvent) + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// The operator's choices so far, shared (read it after the run).
    pub fn choices(&self) -> Arc<Mutex<Vec<Choice>>> {
        self.choices.clone()
    }

    fn tell(&self, e: SigintEvent) {
        for o in &self.observers {
            o(&e);
        }
    }

    /// Watches for Ctrl-C until the task is dropped. Without signal
    /// handling (no signal driver) it returns at once.
    pub async fn watch(self) {
        let Some(mut sigints) = Sigints::new() else {
            return;
        };
        let mut counter = SigintCounter::default();
        loop {
            // Running or idle: a Ctrl-C, or the engine paused (by us or the plan).
            let paused = async {
                while self.re.state() != EngineState::Paused {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                got = sigints.recv() => {
                    if !got {
                        return;
                    }
                    self.on_sigint(&mut counter).await;
                    continue;
                }
                () = paused => {}
            }
            self.tell(SigintEvent::Paused);
            let (tx, mut rx) = tokio::sync::oneshot::channel();
            let prompt = self.prompt.clone();
            // Detached: a process that ends meanwhile never waits on the terminal.
            std::thread::spawn(move || {
                let _ = tx.send(prompt());
            });
            let choice = loop {
                tokio::select! {
                    c = &mut rx => break c.unwrap_or(Choice::Abort),
                    got = sigints.recv() => {
                        if got && counter.on_sigint(Instant::now()) == PauseRequest::GiveUp {
                            self.tell(SigintEvent::GaveUp);
                            break Choice::Halt;
                        }
                        self.tell(SigintEvent::AtPrompt);
                    }
                }
            };
            self.choices.lock().map(|mut c| c.push(choice)).ok();
            self.tell(SigintEvent::Chose(choice));
            let _ = match choice {
                Choice::Resume => self.re.resume().await,
                Choice::Abort => {
                    self.re
                        .abort("interrupted: aborted at the operator's request")
                        .await
                }
                Choice::Stop => self.re.stop().await,
                Choice::Halt => self.re.halt().await,
            };
            counter.reset();
            // The engine leaves the paused state as it handles the request.
            for _ in 0..500 {
                if self.re.state() != EngineState::Paused {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    async fn on_sigint(&self, counter: &mut SigintCounter) {
        if self.re.state() == EngineState::Idle {
            return;
        }
        match counter.on_sigint(Instant::now()) {
            PauseRequest::Deferred => {
                self.tell(SigintEvent::DeferredPause);
                let _ = self.re.pause(true).await;
            }
            PauseRequest::Hard => {
                self.tell(SigintEvent::HardPause);
                let _ = self.re.pause(false).await;
            }
            PauseRequest::Ignored => {}
            PauseRequest::GiveUp => {
                self.tell(SigintEvent::GaveUp);
                let _ = self.re.halt().await;
            }
        }
    }
}

/// SIGINT (Ctrl-C on Windows) as a stream, so that none is lost between two waits.
struct Sigints {
    #[cfg(unix)]
    inner: tokio::signal::unix::Signal,
    #[cfg(windows)]
    inner: tokio::signal::windows::CtrlC,
}

impl Sigints {
    fn new() -> Option<Sigints> {
        #[cfg(unix)]
        let inner =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()?;
        #[cfg(windows)]
        let inner = tokio::signal::windows::ctrl_c().ok()?;
        Some(Sigints { inner })
    }

    /// The next one; `false` when no more can come.
    async fn recv(&mut self) -> bool {
        self.inner.recv().await.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_follows_bluesky() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = SigintCounter::default();
        assert_eq!(c.on_sigint(t0), PauseRequest::Deferred);
        // Presses 2 to 10, 200 ms apart, pause at once; the 11th gives up.
        for i in 2..=10 {
            assert_eq!(
                c.on_sigint(t0 + ms(200 * i)),
                PauseRequest::Hard,
                "press {i}"
            );
        }
        assert_eq!(c.on_sigint(t0 + ms(2200)), PauseRequest::GiveUp);
        // An ignored press does not move the window: 10 s after the last counted one starts over.
        let mut c = SigintCounter::default();
        c.on_sigint(t0);
        assert_eq!(c.on_sigint(t0 + ms(9_990)), PauseRequest::Hard);
        assert_eq!(c.on_sigint(t0 + ms(10_050)), PauseRequest::Ignored);
        assert_eq!(c.on_sigint(t0 + ms(20_000)), PauseRequest::Deferred);
        c.reset();
        assert_eq!(c.on_sigint(t0 + ms(20_100)), PauseRequest::Deferred);
    }
}
