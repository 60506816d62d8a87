//! The progress of the active task, as blueapi's `ProgressEvent`s, made
//! from the task's documents: each run is one status, keyed by the run's
//! uid, named after its plan; its `current` is the events of its primary
//! stream so far, its `target` the start document's `num_points`, its
//! times from [`Pace`] (a clock that stops while paused). A run's last
//! view (at its stop document) says `done`, then it leaves the snapshot,
//! as blueapi drops a completed status.
//!
//! (blueapi watches each ophyd Status the plan waits on; skyrun's Status
//! carries no watch callbacks, so the run's own progress is what there is.
//! See COMPATIBILITY.md.)

use std::time::Instant;

use indexmap::IndexMap;
use serde_json::Value;

use super::model::StatusView;
use crate::console::pace::Pace;

struct RunTrack {
    name: String,
    target: Option<u64>,
    /// The primary stream's descriptor uid, once it is declared.
    primary: Option<String>,
    current: u64,
    pace: Pace,
}

impl RunTrack {
    fn view(&self, done: bool, now: Instant) -> StatusView {
        let percentage = if done {
            Some(1.0)
        } else {
            self.target
                .filter(|t| *t > 0)
                .map(|t| (self.current as f64 / t as f64).min(1.0))
        };
        StatusView {
            display_name: self.name.clone(),
            current: Some(self.current as f64),
            initial: Some(0.0),
            target: self.target.map(|t| t as f64),
            unit: "points".into(),
            precision: Some(0),
            done,
            percentage,
            time_elapsed: Some(self.pace.active_elapsed(now).as_secs_f64()),
            time_remaining: if done {
                Some(0.0)
            } else {
                self.target
                    .and_then(|t| self.pace.eta(t, now))
                    .map(|d| d.as_secs_f64())
            },
        }
    }
}

/// The runs of the active task and how far each has got.
#[derive(Default)]
pub struct Progress {
    runs: IndexMap<String, RunTrack>,
}

impl Progress {
    /// Takes document `name` (as JSON) at `now`; the snapshot to publish
    /// when it changed the progress.
    ///
    /// ```
    /// use std::time::Instant;
    /// use serde_json::json;
    /// use skyrun::service::Progress;
    /// let (mut p, now) = (Progress::default(), Instant::now());
    /// p.document("start", &json!({"uid": "r1", "plan_name": "count", "num_points": 4}), now);
    /// p.document("descriptor", &json!({"uid": "d1", "run_start": "r1", "name": "primary"}), now);
    /// let snap = p.document("event", &json!({"descriptor": "d1", "seq_num": 1}), now).unwrap();
    /// assert_eq!(snap["r1"].display_name, "count");
    /// assert_eq!((snap["r1"].current, snap["r1"].target), (Some(1.0), Some(4.0)));
    /// assert_eq!(snap["r1"].percentage, Some(0.25));
    /// let snap = p.document("stop", &json!({"run_start": "r1"}), now).unwrap();
    /// assert!(snap["r1"].done);
    /// assert!(p.document("stop", &json!({"run_start": "r1"}), now).is_none());
    /// ```
    pub fn document(
        &mut self,
        name: &str,
        doc: &Value,
        now: Instant,
    ) -> Option<IndexMap<String, StatusView>> {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        match name {
            "start" => {
                let uid = s(&doc["uid"])?;
                let track = RunTrack {
                    name: s(&doc["plan_name"]).unwrap_or_else(|| "run".into()),
                    target: doc["num_points"].as_u64(),
                    primary: None,
                    current: 0,
                    pace: Pace::new(now),
                };
                self.runs.insert(uid, track);
                Some(self.snapshot(None, now))
            }
            "descriptor" if doc["name"] == "primary" => {
                let track = self.runs.get_mut(doc["run_start"].as_str()?)?;
                track.primary = s(&doc["uid"]);
                None
            }
            "event" | "event_page" => {
                let descriptor = doc["descriptor"].as_str()?;
                let track = self
                    .runs
                    .values_mut()
                    .find(|t| t.primary.as_deref() == Some(descriptor))?;
                let seq = match &doc["seq_num"] {
                    Value::Array(a) => a.last().and_then(Value::as_u64),
                    v => v.as_u64(),
                }?;
                while track.current < seq {
                    track.current += 1;
                    track.pace.point(now);
                }
                Some(self.snapshot(None, now))
            }
            "stop" => {
                let uid = doc["run_start"].as_str()?.to_owned();
                self.runs.get(&uid)?;
                let snap = self.snapshot(Some(&uid), now);
                self.runs.shift_remove(&uid);
                Some(snap)
            }
            _ => None,
        }
    }

    /// Every run's view at `now` (`done`: the run that has just ended).
    fn snapshot(&self, done: Option<&str>, now: Instant) -> IndexMap<String, StatusView> {
        self.runs
            .iter()
            .map(|(uid, t)| (uid.clone(), t.view(done == Some(uid.as_str()), now)))
            .collect()
    }

    /// The clocks stop (the engine has paused).
    pub fn pause(&mut self, now: Instant) {
        self.runs.values_mut().for_each(|t| t.pace.pause(now));
    }

    /// The clocks run again.
    pub fn resume(&mut self, now: Instant) {
        self.runs.values_mut().for_each(|t| t.pace.resume(now));
    }

    /// Forgets every run (the task has ended).
    pub fn clear(&mut self) {
        self.runs.clear();
    }
}
