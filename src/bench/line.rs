//! One schema for every line `skyrun bench --json` writes: the built-in
//! scenarios, a plan file (`skyrun bench PLAN.toml`) and the remote
//! scenario. The same figure has the same key in all of them, so one
//! parser reads them all ([`BenchLine::parse`]); what only one kind
//! measures is in [`BenchLine::details`], under its own keys.
//!
//! ```
//! use skyrun::bench::BenchLine;
//! let builtin = BenchLine::parse(r#"{"scenario":"set","trace":"off","devices":1,"messages":1000,"seconds":0.002,"per_second":500000.0,"spans_exported":0}"#).unwrap();
//! let plan = BenchLine::parse(r#"{"scenario":"plan","plan":"scan","trace":"on","devices":"examples/ideal.toml","messages":260,"seconds":0.01,"per_second":26000.0,"runs":3}"#).unwrap();
//! assert_eq!(builtin.per_second, Some(500000.0));
//! assert_eq!(plan.per_second, Some(26000.0));
//! assert_eq!(plan.details["runs"], 3);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a case ran against: a number of devices (the built-in scenarios),
/// or a device file (a plan file's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Devices {
    /// How many devices.
    Count(u64),
    /// The device file.
    File(String),
}

/// One line of `skyrun bench --json` (the schema is in BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchLine {
    /// What was measured: a built-in scenario (`null`, `set`, `count`,
    /// `many`, `idle`, `limit-...`), `plan` (a plan file), `remote` or
    /// `epics`.
    pub scenario: String,
    /// The case within the scenario (`remote`: each measurement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The plan's name (`plan` lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// `off` or `on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Where traced spans went (`batch`, `simple`, `discard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_processor: Option<String>,
    /// The devices it ran against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Devices>,
    /// Messages (or sets, or events) measured: per run for a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Wall time of the measured part, s (the median of the repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The throughput: `messages / seconds` (or operations per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// What only this kind of line measures (spans exported, per-run wall
    /// times, per-command latencies, the limit of a remote case, ...).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl BenchLine {
    /// A line of `scenario` with nothing measured yet.
    pub fn new(scenario: impl Into<String>) -> Self {
        BenchLine {
            scenario: scenario.into(),
            case: None,
            plan: None,
            trace: None,
            span_processor: None,
            devices: None,
            messages: None,
            seconds: None,
            per_second: None,
            details: Map::new(),
        }
    }

    /// Adds a detail under `key`.
    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        let v = serde_json::to_value(value).expect("a detail is plain data");
        self.details.insert(key.to_owned(), v);
        self
    }

    /// Reads one line of `skyrun bench --json`, whichever kind wrote it.
    pub fn parse(line: &str) -> Result<BenchLine, serde_json::Error> {
        serde_json::from_str(line.trim())
    }

    /// The line as `skyrun bench --json` writes it (one JSON object).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a bench line serializes")
    }
}
