//! Families and globs in plan files: wherever a list of devices goes
//! (`detectors`, `motors`, `flyers`), each name may be
//!
//! * a device: `"det"`;
//! * a family of the device file, by its prefix: `"m"` for the motors of
//!   `[[motor_family]] prefix = "m"` (m0, m1, ...), in index order, when no
//!   device is called `m`;
//! * a glob: `"m1*"`, `"d?"`, `"sample_[xy]"` (`*` any run of characters,
//!   `?` one character, `[..]` one of a set or range, `[!..]` none of them),
//!   matching devices in declaration order.
//!
//! A single string may stand for the list: `motors = "m"`. Every device a
//! family or glob names must fit the role (a glob over motors and detectors
//! is refused where only detectors fit), the same device is listed once, and
//! a glob that matches nothing is an error naming the families there are.
//!
//! ```
//! use skyrun::config::families::glob_match;
//! assert!(glob_match("m1*", "m17"));
//! assert!(glob_match("sample_[xy]", "sample_y"));
//! assert!(!glob_match("d?", "d10"));
//! assert!(glob_match("[!a-c]x", "dx"));
//! ```

use std::collections::HashSet;

use super::args::DeviceRef;
use super::devices::DeviceSet;
use super::error::{ConfigError, ErrorKind};
use super::standard::{Axis, StandardPlan};
use super::steps::Step;

/// Whether `name` is a glob (has `*`, `?` or `[`).
pub fn is_glob(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Whether `name` matches the glob `pattern` as a whole.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| matches(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && matches(&p[1..], &n[1..]),
        Some('[') => match (class(&p[1..]), n.first()) {
            (Some((set, len)), Some(c)) => set(*c) && matches(&p[1 + len..], &n[1..]),
            // An unclosed `[` is a plain character.
            (None, Some('[')) => matches(&p[1..], &n[1..]),
            _ => false,
        },
        Some(c) => n.first() == Some(c) && matches(&p[1..], &n[1..]),
    }
}

/// The class after a `[`: a test and the number of pattern characters it takes (with `]`).
#[allow(clippy::type_complexity)]
fn class(p: &[char]) -> Option<(Box<dyn Fn(char) -> bool>, usize)> {
    let close = p.iter().skip(1).position(|c| *c == ']')? + 1;
    let body: Vec<char> = p[..close].to_vec();
    let (negate, body) = match body.first() {
        Some('!') | Some('^') => (true, body[1..].to_vec()),
        _ => (false, body),
    };
    let test = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == '-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((Box::new(test), close + 1))
}

/// The families of `set`: prefix, kind and member count, in declaration order.
pub fn families(set: &DeviceSet) -> Vec<(String, &'static str, usize)> {
    let mut out: Vec<(String, &'static str, usize)> = Vec::new();
    for d in set.iter() {
        if let Some(f) = &d.family {
            match out.iter_mut().find(|(p, _, _)| p == f) {
                Some((_, _, n)) => *n += 1,
                None => out.push((f.clone(), d.config.kind().as_str(), 1)),
            }
        }
    }
    out
}

fn families_text(set: &DeviceSet) -> String {
    let fams = families(set);
    if fams.is_empty() {
        return "the device file declares no family".into();
    }
    let list: Vec<String> = fams
        .iter()
        .map(|(p, k, n)| format!("'{p}' ({n} {k}s)"))
        .collect();
    format!("families: {}", list.join(", "))
}

/// `refs` with families and globs replaced by the devices they name, each
/// device once, and every ref's `family` filled in.
pub(crate) fn expand(refs: &[DeviceRef], set: &DeviceSet) -> Result<Vec<DeviceRef>, ConfigError> {
    let mut out: Vec<DeviceRef> = Vec::with_capacity(refs.len());
    let mut seen: HashSet<String> = HashSet::new();
    for r in refs {
        for name in names_of(r, set)? {
            if seen.insert(name.clone()) {
                let family = set.get(&name).and_then(|d| d.family.clone());
                out.push(DeviceRef {
                    name,
                    family,
                    ..r.clone()
                });
            }
        }
    }
    Ok(out)
}

/// One device (`motor = ".."`): as is, with its family filled in.
fn single(r: &DeviceRef, set: &DeviceSet) -> DeviceRef {
    DeviceRef {
        family: set.get(&r.name).and_then(|d| d.family.clone()),
        ..r.clone()
    }
}

/// `p` with its families and globs expanded.
pub(crate) fn expand_plan(p: &StandardPlan, set: &DeviceSet) -> Result<StandardPlan, ConfigError> {
    Ok(match p {
        StandardPlan::Count {
            detectors,
            num,
            delay,
        } => StandardPlan::Count {
            detectors: expand(detectors, set)?,
            num: *num,
            delay: *delay,
        },
        StandardPlan::Scan {
            detectors,
            motor,
            start,
            stop,
            num,
            relative,
        } => StandardPlan::Scan {
            detectors: expand(detectors, set)?,
            motor: single(motor, set),
            start: *start,
            stop: *stop,
            num: *num,
            relative: *relative,
        },
        StandardPlan::ListScan {
            detectors,
            motor,
            positions,
        } => StandardPlan::ListScan {
            detectors: expand(detectors, set)?,
            motor: single(motor, set),
            positions: positions.clone(),
        },
        StandardPlan::GridScan {
            detectors,
            axes,
            snake,
        } => StandardPlan::GridScan {
            detectors: expand(detectors, set)?,
            axes: axes
                .iter()
                .map(|a| Axis {
                    motor: single(&a.motor, set),
                    ..a.clone()
                })
                .collect(),
            snake: *snake,
        },
        StandardPlan::Fly { flyers } => StandardPlan::Fly {
            flyers: expand(flyers, set)?,
        },
    })
}

/// `s` with its families and globs expanded, and `positions` paired with
/// the motors they name.
pub(crate) fn expand_step(s: &Step, set: &DeviceSet) -> Result<Step, ConfigError> {
    Ok(match s {
        Step::Move {
            moves,
            relative,
            spread,
        } => {
            let mut out: Vec<(DeviceRef, f64)> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            for (r, x) in moves {
                for d in expand(std::slice::from_ref(r), set)? {
                    if seen.insert(d.name.clone()) {
                        out.push((d, *x));
                    }
                }
            }
            if let Some((xs, at)) = spread {
                if xs.len() != out.len() {
                    let names: Vec<String> = out.iter().map(|(d, _)| d.name.clone()).collect();
                    return Err(ConfigError::new(
                        at.clone(),
                        ErrorKind::Invalid(format!(
                            "'positions' has {} number{} for {} motor{} ({}){}",
                            xs.len(),
                            if xs.len() == 1 { "" } else { "s" },
                            out.len(),
                            if out.len() == 1 { "" } else { "s" },
                            summarize(&names, set).join(", "),
                            if out.len() > 1 {
                                "; for one position for all of them, write position = X"
                            } else {
                                ""
                            }
                        )),
                    ));
                }
                for ((_, x), p) in out.iter_mut().zip(xs) {
                    *x = *p;
                }
            }
            Step::Move {
                moves: out,
                relative: *relative,
                spread: None,
            }
        }
        Step::TriggerAndRead { detectors, stream } => Step::TriggerAndRead {
            detectors: expand(detectors, set)?,
            stream: stream.clone(),
        },
        Step::AbsSet {
            device,
            value,
            value_at,
            group,
            wait,
        } => Step::AbsSet {
            device: single(device, set),
            value: value.clone(),
            value_at: value_at.clone(),
            group: group.clone(),
            wait: *wait,
        },
        Step::Plan(p) => Step::Plan(expand_plan(p, set)?),
        Step::Message(m) => Step::Message(m.expand(set)?),
        other => other.clone(),
    })
}

/// The device names `r` stands for.
pub(crate) fn names_of(r: &DeviceRef, set: &DeviceSet) -> Result<Vec<String>, ConfigError> {
    if set.get(&r.name).is_some() {
        return Ok(vec![r.name.clone()]);
    }
    let members: Vec<String> = set
        .iter()
        .filter(|d| d.family.as_deref() == Some(r.name.as_str()))
        .map(|d| d.name.clone())
        .collect();
    if !members.is_empty() {
        return Ok(members);
    }
    if !is_glob(&r.name) {
        // Not a device, family or glob: the check says what is wrong.
        return Ok(vec![r.name.clone()]);
    }
    let matched: Vec<String> = set
        .names()
        .filter(|n| glob_match(&r.name, n))
        .map(str::to_owned)
        .collect();
    if matched.is_empty() {
        return Err(ConfigError::new(
            r.location.clone(),
            ErrorKind::Invalid(format!(
                "'{}' ({}) matches no device ({})",
                r.name,
                r.role,
                families_text(set)
            )),
        ));
    }
    Ok(matched)
}

/// The ranges of `items` to say as one: three or more members of one
/// family with consecutive indices (`m3, m4, m5`), for which `member` gives
/// the family and name.
pub(crate) fn runs<T>(
    items: &[T],
    member: impl Fn(&T) -> Option<(String, String)>,
) -> Vec<std::ops::Range<usize>> {
    let index = |t: &T| {
        let (f, n) = member(t)?;
        let k = n.strip_prefix(f.as_str())?.parse::<u64>().ok()?;
        Some((f, k))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let mut j = i + 1;
        if let Some((f, mut k)) = index(&items[i]) {
            while j < items.len() && index(&items[j]) == Some((f.clone(), k + 1)) {
                k += 1;
                j += 1;
            }
        }
        out.push(i..j);
        i = j;
    }
    out
}

/// `names` with each run of three or more members of one family, in
/// index order, said as `m0..m99 (family 'm', 100)`: readable for a beamline
/// of 1000 motors.
pub fn summarize(names: &[String], set: &DeviceSet) -> Vec<String> {
    let member = |n: &String| Some((set.get(n)?.family.clone()?, n.clone()));
    let mut out = Vec::new();
    for r in runs(names, member) {
        if r.len() > 2 {
            let f = set
                .get(&names[r.start])
                .and_then(|d| d.family.clone())
                .unwrap_or_default();
            out.push(format!(
                "{}..{} (family '{f}', {})",
                names[r.start],
                names[r.end - 1],
                r.len()
            ));
        } else {
            out.extend(names[r].iter().cloned());
        }
    }
    out
}

/// The names of `refs`, comma-separated, with runs of a family said as `d0..d99 (100)`.
pub(crate) fn ref_names(refs: &[DeviceRef]) -> String {
    let member = |d: &DeviceRef| Some((d.family.clone()?, d.name.clone()));
    let mut out = Vec::new();
    for r in runs(refs, member) {
        if r.len() > 2 {
            out.push(format!(
                "{}..{} ({})",
                refs[r.start].name,
                refs[r.end - 1].name,
                r.len()
            ));
        } else {
            out.extend(refs[r].iter().map(|d| d.name.clone()));
        }
    }
    out.join(", ")
}

/// `m0 to 1, m1 to 2, ...`, with runs of a family to one position said
/// once: `m0..m99 to 1 (100 motors)`.
pub(crate) fn describe_moves(moves: &[(DeviceRef, f64)], arrow: &str) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < moves.len() {
        // Runs of one position, then family runs within them.
        let x = moves[i].1;
        let mut j = i + 1;
        while j < moves.len() && moves[j].1 == x {
            j += 1;
        }
        let same = &moves[i..j];
        let member = |m: &(DeviceRef, f64)| Some((m.0.family.clone()?, m.0.name.clone()));
        for r in runs(same, member) {
            if r.len() > 2 {
                parts.push(format!(
                    "{}..{} {arrow} {x} ({} motors)",
                    same[r.start].0.name,
                    same[r.end - 1].0.name,
                    r.len()
                ));
            } else {
                parts.extend(
                    same[r]
                        .iter()
                        .map(|(d, x)| format!("{} {arrow} {x}", d.name)),
                );
            }
        }
        i = j;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_need_consecutive_indices_of_one_family() {
        let items = ["m1", "m10", "m11", "m12", "x", "m13"];
        let r = runs(&items, |n| {
            n.starts_with('m').then(|| ("m".to_owned(), n.to_string()))
        });
        assert_eq!(r, vec![0..1, 1..4, 4..5, 5..6]);
    }

    #[test]
    fn globs() {
        for (p, n, hit) in [
            ("*", "", true),
            ("m*", "motor", true),
            ("m?", "m1", true),
            ("m?", "m12", false),
            ("m[0-4]", "m3", true),
            ("m[0-4]", "m5", false),
            ("m[!0-4]", "m5", true),
            ("det[", "det[", true),
            ("*_x", "sample_x", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ] {
            assert_eq!(glob_match(p, n), hit, "{p} {n}");
        }
    }
}
