//! Regressions found by fuzzing the plan and device file parsers
//! (`tests/config_fuzz.rs`, `fuzz/`): every input kept in
//! `fuzz/regressions/{plan_file,device_file}/` is refused or accepted without
//! a panic and with a well-formed error, and each finding's error reads as
//! it should now.

#[path = "../fuzz/src/lib.rs"]
mod oracle;

use std::fs;
use std::path::Path;

/// The files kept in `fuzz/regressions/<target>`, with their text.
fn regressions(target: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = fs::read(&path).expect("a readable regression file");
            (
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no regressions in {}", dir.display());
    files
}

/// The error a plan file gets against the example beamline.
fn plan_error(text: &str) -> String {
    match oracle::plan_file(text) {
        Ok(s) => panic!("accepted ({} points): {text}", s.num_points),
        Err(e) => e.to_string(),
    }
}

/// The error a device file gets.
fn device_error(text: &str) -> String {
    match oracle::device_file(text) {
        Ok(set) => panic!("accepted ({} devices): {text}", set.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_kept_plan_file_input_is_handled() {
    for (path, text) in regressions("plan_file") {
        println!("{path}");
        oracle::fuzz_plan_file(text.as_bytes());
    }
}

#[test]
fn every_kept_device_file_input_is_handled() {
    for (path, text) in regressions("device_file") {
        println!("{path}");
        oracle::fuzz_device_file(text.as_bytes());
    }
}

/// Found by `config_fuzz`: a name written with an escaped newline made a
/// two-line error message. Control characters are now shown escaped.
#[test]
fn control_characters_in_names_are_escaped() {
    assert_eq!(
        plan_error("[plan]\nname = \"\\n\"\ndetectors = [\"det\"]\n"),
        "plan.toml:2:8: unknown plan '\\n' (known: count, scan, rel_scan, list_scan, grid_scan, fly)"
    );
    assert_eq!(
        device_error("[[motor]]\nname = \"a\\u0007b\"\n"),
        "devices.toml:2:8: invalid device name 'a\\u{7}b': use letters, digits, '_' and '-'"
    );
    assert_eq!(
        device_error("[[motor]]\n\"x\\ty\" = 1\n"),
        "devices.toml:2:1: unknown key 'x\\ty'; expected one of: name, prefix, count, first, position, velocity, settle_time, timeout, limits, units, acceleration, latency, faults"
    );
    assert_eq!(
        plan_error("[plan]\nname = 'count'\ndetectors = ['det']\n[metadata]\n\"a\\rb\" = nan\n"),
        "plan.toml:5:10: metadata 'a\\rb' must be a finite number, got NaN"
    );
    // Printable text, accents included, is shown as written.
    assert_eq!(
        plan_error("[plan]\nname = 'scan é'\n"),
        "plan.toml:2:8: unknown plan 'scan é' (known: count, scan, rel_scan, list_scan, grid_scan, fly)"
    );
}

/// Found by hand while fuzzing: the TOML parser refuses a key of more than
/// 80 dotted parts without a place ("plan.toml: recursion limit"); the error
/// now says what and where.
#[test]
fn keys_of_too_many_dotted_parts_are_located() {
    let key = |parts: usize| vec!["a"; parts].join(".");
    let plan = |key: &str| {
        format!("[plan]\nname = 'count'\ndetectors = ['det']\n[metadata]\n  {key} = 1\n")
    };
    assert_eq!(
        plan_error(&plan(&key(81))),
        "plan.toml:5:3: a dotted key has more than 80 parts"
    );
    // 80 parts are TOML: metadata takes any keys.
    assert_eq!(oracle::plan_file(&plan(&key(80))).map(|s| s.runs), Ok(1));
    assert_eq!(
        device_error(&format!("[[motor]]\nname = 'm'\n[{}]\n", key(200))),
        "devices.toml:3:1: a dotted key has more than 80 parts"
    );
}

/// Values nested past the TOML parser's limit are refused where they start
/// to be too deep, not with a stack overflow.
#[test]
fn deeply_nested_values_are_refused() {
    let md = |value: String| {
        format!("[plan]\nname = 'count'\ndetectors = ['det']\n[metadata]\nx = {value}\n")
    };
    let arrays = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(
        plan_error(&md(arrays(100_000))),
        "plan.toml:5:85: cannot recurse further; max recursion depth met"
    );
    assert_eq!(oracle::plan_file(&md(arrays(70))).map(|s| s.runs), Ok(1));
    let tables = format!("{}1{}", "{ a = ".repeat(100_000), " }".repeat(100_000));
    assert_eq!(
        plan_error(&md(tables)),
        "plan.toml:5:485: cannot recurse further; max recursion depth met"
    );
}
