//! Property tests of the plan and device file parsers (issue 7, bad input):
//! arbitrary bytes, TOML-shaped lines made of the schema's own keys and
//! values, and the shipped examples with lines deleted, duplicated, swapped
//! or truncated, numbers turned into NaN, infinities, negatives and huge
//! values, strings replaced and unknown keys inserted.
//!
//! Whatever the input, parsing and checking (what `skyrun check` does) never
//! panics, and an error keeps the promise of `skyrun::config`: it names the
//! file and says `FILE:LINE:COL: what is wrong` on one line (see
//! `fuzz/src/lib.rs`, shared with the cargo-fuzz targets, for exactly what is
//! asserted).
//!
//! Case counts are modest (512 per property) so the suite takes about a
//! second; `PROPTEST_CASES=100000 cargo test --test config_fuzz` searches
//! longer, and so do the cargo-fuzz targets (`fuzz/README.md`).

#[path = "../fuzz/src/lib.rs"]
mod oracle;

use proptest::prelude::*;
use proptest::sample::select;
use skyrun::config::DeviceSet;

use oracle::{assert_well_formed, device_file, plan_file, plan_file_against};

/// `cases` per property, or `PROPTEST_CASES` to search longer.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// What numbers are replaced with: non-finite, negative, huge, out of
/// range, and values of other types.
const NUMBERS: &[&str] = &[
    "nan",
    "+nan",
    "-nan",
    "inf",
    "+inf",
    "-inf",
    "-1",
    "-1.5",
    "0",
    "-0.0",
    "1e308",
    "-1e308",
    "1e400",
    "5e-324",
    "1000001",
    "10000001",
    "100000000000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "99999999999999999999999",
    "0x7fffffffffffffff",
    "1_000",
    "3",
    "true",
    "\"7\"",
    "[]",
    "{}",
    "[1, 2]",
    "",
    "1979-05-27",
];

/// What string contents are replaced with: other devices, typos, names
/// that are not names, and text that needs escaping.
const STRINGS: &[&str] = &[
    "",
    "mtr",
    "motor",
    "det",
    "det2",
    "m0",
    "m99",
    "m100",
    "d0",
    "flyer",
    "temperature",
    "sample_x",
    "a b",
    "é",
    "\\n",
    "\\t",
    "\\u0007",
    "\\\"",
    "scan",
    "count",
    "grid_scan",
    "fly",
    "mv",
    "open_run",
    "close_run",
    "trigger_and_read",
    "uniform",
    "poisson",
    "gauss",
    "m",
    "beamline.toml",
    "../nope.toml",
];

/// Keys of every table in the schemas, and some that are in none.
const KEYS: &[&str] = &[
    "name",
    "stub",
    "detectors",
    "motor",
    "motors",
    "device",
    "flyer",
    "flyers",
    "start",
    "stop",
    "num",
    "delay",
    "position",
    "positions",
    "axes",
    "snake",
    "value",
    "group",
    "wait",
    "timeout",
    "seconds",
    "stream",
    "md",
    "exit_status",
    "reason",
    "devices",
    "prefix",
    "count",
    "first",
    "velocity",
    "settle_time",
    "limits",
    "units",
    "motor_family",
    "center",
    "imax",
    "sigma",
    "noise",
    "noise_multiplier",
    "exposure_time",
    "readout_time",
    "dead_time",
    "acceleration",
    "latency",
    "faults",
    "seed",
    "dist",
    "set_fails",
    "never_completes",
    "num_points",
    "duration",
    "speed",
    "stpo",
    "nmu",
    "x",
    "plan",
    "steps",
    "metadata",
];

/// Table headers of both schemas, and some that are in neither.
const HEADERS: &[&str] = &[
    "[plan]",
    "[[steps]]",
    "[metadata]",
    "[[plan.axes]]",
    "[plan.md]",
    "[[motor]]",
    "[[motor_family]]",
    "[[detector]]",
    "[[detector_family]]",
    "[[signal]]",
    "[[flyer]]",
    "[motor]",
    "[[motors]]",
    "[plan.plan]",
    "[[steps.md]]",
    "[steps]",
    "[[metadata]]",
];

/// Right-hand sides of `key = value` lines.
const VALUES: &[&str] = &[
    "\"motor\"",
    "\"det\"",
    "\"m\"",
    "\"d\"",
    "\"scan\"",
    "\"count\"",
    "\"grid_scan\"",
    "\"list_scan\"",
    "\"rel_scan\"",
    "\"fly\"",
    "\"mv\"",
    "\"open_run\"",
    "\"close_run\"",
    "\"trigger_and_read\"",
    "\"sleep\"",
    "\"abs_set\"",
    "\"flyer\"",
    "\"uniform\"",
    "[\"det\", \"det2\"]",
    "[\"motor\"]",
    "[\"flyer\"]",
    "[\"m0\", \"m1\"]",
    "[1.0, 2.0]",
    "[]",
    "[nan]",
    "[1, \"a\"]",
    "{ motor = \"motor\", start = 0, stop = 1, num = 3 }",
    "[{ motor = \"sample_x\", start = 0, stop = 1, num = 3 }]",
    "[{ motor = \"m0\", num = 10000 }, { motor = \"m1\", num = 10000 }]",
    "{ purpose = \"x\" }",
    "{ a = { b = [inf] } }",
    "true",
    "false",
    "0",
    "1",
    "3",
    "-3",
    "100",
    "1.5",
    "nan",
    "-inf",
    "1e308",
    "9223372036854775807",
    "2000000",
    "20000000",
    "\"beamline.toml\"",
    "1979-05-27T07:32:00Z",
];

/// A line of a TOML-shaped file.
fn toml_line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(HEADERS).prop_map(str::to_owned),
        6 => (select(KEYS), select(VALUES)).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[a-z_\\[\\]=\"'. 0-9{},#-]{0,20}",
        // Dotted keys and headers, and nested values, up to past the TOML
        // parser's limits (80 parts, 80 levels).
        1 => (prop::collection::vec(select(KEYS), 1..100), any::<bool>()).prop_map(|(ks, header)| {
            if header { format!("[{}]", ks.join(".")) } else { format!("{} = 1", ks.join(".")) }
        }),
        1 => (select(KEYS), 1..100usize, any::<bool>()).prop_map(|(k, n, arrays)| {
            if arrays {
                format!("{k} = {}{}", "[".repeat(n), "]".repeat(n))
            } else {
                format!("{k} = {}1{}", "{ a = ".repeat(n), " }".repeat(n))
            }
        }),
    ]
}

/// Files made of schema keys, headers and values, in any order.
fn toml_shaped() -> impl Strategy<Value = String> {
    prop::collection::vec(toml_line(), 0..24).prop_map(|lines| lines.join("\n"))
}

/// One change to a file's text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceNumber(usize, &'static str),
    ReplaceString(usize, &'static str),
    InsertLine(usize, String),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<usize>().prop_map(Mutation::DeleteLine),
        2 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        4 => (any::<usize>(), select(NUMBERS)).prop_map(|(i, n)| Mutation::ReplaceNumber(i, n)),
        3 => (any::<usize>(), select(STRINGS)).prop_map(|(i, s)| Mutation::ReplaceString(i, s)),
        3 => (any::<usize>(), toml_line()).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// A byte range `(start, end)` in a file's text.
type Span = (usize, usize);

/// Byte ranges of number-like tokens and of the contents of double-quoted
/// strings, outside comments.
fn tokens(text: &str) -> (Vec<Span>, Vec<Span>) {
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                strings.push((start, i.min(b.len())));
                i += 1;
            }
            c if c.is_ascii_digit()
                || ((c == b'-' || c == b'+') && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"._+-:".contains(&b[i])) {
                    i += 1;
                }
                numbers.push((start, i));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                // a bare key or word: digits in it are not numbers
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    (numbers, strings)
}

fn splice(text: &str, (start, end): Span, with: &str) -> String {
    let end = end.min(text.len());
    if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return text.to_owned();
    }
    format!("{}{with}{}", &text[..start], &text[end..])
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len();
    match m {
        Mutation::DeleteLine(i) => {
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) => {
            let i = i % n;
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
        Mutation::InsertLine(i, line) => lines.insert(i % (n + 1), line.clone()),
        Mutation::ReplaceNumber(i, with) => {
            let (numbers, _) = tokens(text);
            return match numbers.len() {
                0 => text.to_owned(),
                k => splice(text, numbers[i % k], with),
            };
        }
        Mutation::ReplaceString(i, with) => {
            let (_, strings) = tokens(text);
            return match strings.len() {
                0 => text.to_owned(),
                k => splice(text, strings[i % k], with),
            };
        }
        Mutation::Truncate(i) => {
            let chars = text.chars().count();
            return text.chars().take(i % (chars + 1)).collect();
        }
    }
    lines.join("\n")
}

fn mutated(text: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(mutation(), 1..6)
        .prop_map(move |ms| ms.iter().fold(text.to_owned(), |t, m| apply(&t, m)))
}

fn mutated_plan() -> impl Strategy<Value = String> {
    select(oracle::PLANS).prop_flat_map(|(_, text)| mutated(text))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_as_a_plan_file(data in prop::collection::vec(any::<u8>(), 0..512)) {
        oracle::fuzz_plan_file(&data);
    }

    #[test]
    fn arbitrary_bytes_as_a_device_file(data in prop::collection::vec(any::<u8>(), 0..512)) {
        oracle::fuzz_device_file(&data);
    }

    #[test]
    fn arbitrary_text_as_either_file(text in "\\PC{0,300}") {
        let _ = plan_file(&text);
        let _ = device_file(&text);
    }

    #[test]
    fn toml_shaped_plan_files(text in toml_shaped()) {
        let _ = plan_file(&text);
    }

    #[test]
    fn toml_shaped_device_files(text in toml_shaped()) {
        let _ = device_file(&text);
    }

    #[test]
    fn mutated_example_plans(text in mutated_plan()) {
        let _ = plan_file(&text);
    }

    #[test]
    fn mutated_example_beamline(text in mutated(oracle::BEAMLINE)) {
        let _ = device_file(&text);
    }

    #[test]
    fn mutated_plans_against_mutated_beamlines(
        devices in mutated(oracle::BEAMLINE),
        plan in mutated_plan(),
    ) {
        if let Ok(set) = DeviceSet::parse(&devices, oracle::DEVICE_FILE) {
            if let Err(e) = plan_file_against(&plan, &set) {
                assert_well_formed(&e, oracle::PLAN_FILE, &plan);
            }
        }
    }
}

/// The mutations do what they say, so the properties above test what they claim.
#[test]
fn mutations_reach_numbers_and_strings() {
    let text = "# a 1\n[plan]\nname = \"scan\" # 2\nnum = -5\nstart = 1.5e3\nm0 = 1\n";
    let (numbers, strings) = tokens(text);
    let at = |(a, b): (usize, usize)| &text[a..b];
    assert_eq!(
        numbers.into_iter().map(at).collect::<Vec<_>>(),
        ["-5", "1.5e3", "1"]
    );
    assert_eq!(strings.into_iter().map(at).collect::<Vec<_>>(), ["scan"]);
    let nan = apply(text, &Mutation::ReplaceNumber(0, "nan"));
    assert!(nan.contains("num = nan\n"), "{nan}");
    assert_eq!(apply("a\nb", &Mutation::SwapLines(0, 1)), "b\na");
}
