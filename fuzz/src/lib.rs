//! What fuzzing checks on plan and device files, shared by the cargo-fuzz
//! targets (`fuzz_targets/`), the property tests (`tests/config_fuzz.rs`) and
//! the regression tests (`tests/config_regressions.rs`), which include this
//! file as a module.
//!
//! Each entry point does what `skyrun check` does with one file's text:
//!
//! * [`plan_file`] parses a plan file and checks it against the example
//!   beamline (`examples/beamline.toml`);
//! * [`device_file`] parses a device file and, when it parses, checks every
//!   shipped example plan against it.
//!
//! Neither may panic, whatever the input, and every error must keep the
//! promise of `skyrun::config` ([`assert_well_formed`]): it names the file,
//! reads `FILE:LINE:COL: message` on one line when it concerns a place in the
//! file, and concerns a place whenever the text is TOML at all, except for the
//! one whole-file error ("neither a [plan] table nor [[steps]]").

use std::sync::OnceLock;

use skyrun::config::{ConfigError, DeviceSet, ErrorKind, PlanFile, PlanSummary};

/// The name plan files are parsed under.
pub const PLAN_FILE: &str = "plan.toml";
/// The name device files are parsed under.
pub const DEVICE_FILE: &str = "devices.toml";

/// The example device file.
pub const BEAMLINE: &str = include_str!("../../examples/beamline.toml");

/// The shipped example plan files, by name.
pub const PLANS: &[(&str, &str)] = &[
    ("scan.toml", include_str!("../../examples/scan.toml")),
    ("count.toml", include_str!("../../examples/count.toml")),
    (
        "grid_scan.toml",
        include_str!("../../examples/grid_scan.toml"),
    ),
    ("fly.toml", include_str!("../../examples/fly.toml")),
    ("steps.toml", include_str!("../../examples/steps.toml")),
];

/// The only error that concerns a whole file rather than a place in it.
const NO_PLAN: &str = "the plan file has neither a [plan] table nor [[steps]]";

/// The example beamline, parsed once.
pub fn beamline() -> &'static DeviceSet {
    static SET: OnceLock<DeviceSet> = OnceLock::new();
    SET.get_or_init(|| {
        DeviceSet::parse(BEAMLINE, "beamline.toml")
            .unwrap_or_else(|e| panic!("the example beamline parses: {e}"))
    })
}

/// Fuzz entry point: arbitrary bytes as a plan file.
pub fn fuzz_plan_file(data: &[u8]) {
    let _ = plan_file(&String::from_utf8_lossy(data));
}

/// Fuzz entry point: arbitrary bytes as a device file.
pub fn fuzz_device_file(data: &[u8]) {
    let _ = device_file(&String::from_utf8_lossy(data));
}

/// Parses `text` as a plan file and checks it against the example beamline,
/// asserting that an error is well formed.
pub fn plan_file(text: &str) -> Result<PlanSummary, ConfigError> {
    plan_file_against(text, beamline())
}

/// Parses `text` as a plan file and checks it against `set`, asserting that
/// an error is well formed.
pub fn plan_file_against(text: &str, set: &DeviceSet) -> Result<PlanSummary, ConfigError> {
    let result = PlanFile::parse(text, PLAN_FILE).and_then(|plan| {
        let _ = (plan.devices_file(), plan.metadata().len(), plan.body());
        plan.check(set)
    });
    match &result {
        Ok(summary) => {
            // What `skyrun check` prints.
            let _ = format!("{summary:?}");
        }
        Err(e) => assert_well_formed(e, PLAN_FILE, text),
    }
    result
}

/// Parses `text` as a device file and, when it parses, checks every example
/// plan against it, asserting that every error is well formed.
pub fn device_file(text: &str) -> Result<DeviceSet, ConfigError> {
    let result = DeviceSet::parse(text, DEVICE_FILE);
    match &result {
        Err(e) => assert_well_formed(e, DEVICE_FILE, text),
        Ok(set) => {
            let _ = (set.counts(), set.names().count(), set.iter().count());
            for (name, plan) in PLANS {
                let parsed = PlanFile::parse(plan, name)
                    .unwrap_or_else(|e| panic!("the example {name} parses: {e}"));
                if let Err(e) = parsed.check(set) {
                    assert_well_formed(&e, name, plan);
                }
            }
        }
    }
    result
}

/// Asserts what `skyrun::config` promises of an error found in `text`, the
/// contents of `file`:
///
/// * it names `file`, and its message is `LOCATION: WHAT`, with something to say;
/// * it is one line (a terminal shows it as written);
/// * a line and column, when given, are a place in `text` (1-based, the
///   column in characters, at most one past the end of the line);
/// * it has a line and column, except for the one whole-file error.
pub fn assert_well_formed(e: &ConfigError, file: &str, text: &str) {
    let shown = e.to_string();
    let loc = e.location();
    assert_eq!(loc.file, file, "the error names the file: {shown}");
    assert_eq!(shown, format!("{loc}: {}", e.kind()), "LOCATION: WHAT");
    assert!(
        shown.starts_with(&format!("{file}:")),
        "starts with the file name: {shown}"
    );
    assert!(
        !e.kind().to_string().trim().is_empty(),
        "says what is wrong: {shown}"
    );
    assert!(
        !shown.chars().any(|c| c.is_control()),
        "one line, no control characters: {shown:?}"
    );
    match loc.position {
        Some((line, col)) => {
            let lines: Vec<&str> = text.split('\n').collect();
            assert!(
                line >= 1 && line <= lines.len(),
                "line {line} is in the file ({} lines): {shown}",
                lines.len()
            );
            let len = lines[line - 1].chars().count();
            assert!(
                col >= 1 && col <= len + 1,
                "column {col} is in line {line} ({len} characters): {shown}"
            );
            assert!(
                shown.starts_with(&format!("{file}:{line}:{col}: ")),
                "FILE:LINE:COL: {shown}"
            );
        }
        None => assert!(
            matches!(e.kind(), ErrorKind::Invalid(m) if m == NO_PLAN),
            "only a missing [plan]/[[steps]] concerns the whole file; this has no line:column: {shown}"
        ),
    }
}
