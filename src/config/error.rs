//! [`ConfigError`]: what is wrong in a device or plan file, and where.
//!
//! Every error names the file and, when it concerns a particular place in it,
//! the line and column (1-based), as compilers do:
//!
//! ```text
//! examples/scan.toml:4:9: unknown device 'mtr' (did you mean 'motor'? motors: motor, sample_x, ...)
//! ```
//!
//! An error is always one line: control characters in text quoted from the
//! file (a name written `"a\nb"`, say) are shown escaped (`a\nb`).

use std::fmt::{self, Write as _};
use std::ops::Range;

use thiserror::Error;

/// Where an error is: a file, and a line and column in it when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it.
    pub file: String,
    /// The 1-based line and column (in characters), when the error concerns a place in the file.
    pub position: Option<(usize, usize)>,
}

impl Location {
    /// The whole of `file`.
    pub fn file(file: impl Into<String>) -> Self {
        Location {
            file: file.into(),
            position: None,
        }
    }

    /// The place of byte offset `offset` in `src`, the text of `file`.
    ///
    /// ```
    /// use skyrun::config::Location;
    /// let loc = Location::at("a.toml", "x = 1\ny = 2\n", 10);
    /// assert_eq!(loc.to_string(), "a.toml:2:5");
    /// ```
    pub fn at(file: impl Into<String>, src: &str, offset: usize) -> Self {
        Location {
            file: file.into(),
            position: Some(line_col(src, offset)),
        }
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(l, _)| l)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}", Escaped(&self.file)),
            None => write!(f, "{}", Escaped(&self.file)),
        }
    }
}

/// The 1-based line and column (counted in characters) of byte `offset` in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..offset].chars().count() + 1;
    (line, col)
}

/// A device or plan file is unusable: where, and what is wrong.
///
/// ```
/// use skyrun::config::{ConfigError, ErrorKind, Location};
/// let e = ConfigError::new(
///     Location::at("scan.toml", "[plan]\nmotor = 'mtr'\n", 15),
///     ErrorKind::Invalid("something is off".into()),
/// );
/// assert_eq!(e.to_string(), "scan.toml:2:9: something is off");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{}: {}", .0.location, .0.kind)]
pub struct ConfigError(Box<Inner>);

#[derive(Debug, Clone, PartialEq)]
struct Inner {
    location: Location,
    kind: ErrorKind,
}

impl ConfigError {
    /// An error at `location`.
    pub fn new(location: Location, kind: ErrorKind) -> Self {
        ConfigError(Box::new(Inner { location, kind }))
    }

    /// Where.
    pub fn location(&self) -> &Location {
        &self.0.location
    }

    /// What is wrong, without the location.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }
}

/// What is wrong in a device or plan file.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {}", Escaped(.0))]
    Io(String),
    /// The TOML parser refused the file: bad syntax, a value of the wrong
    /// type, an unknown key or a missing required key.
    #[error("{}", Escaped(.0))]
    Toml(String),
    /// A name refers to no declared device.
    #[error("unknown device '{}' ({known})", Escaped(.name))]
    UnknownDevice {
        /// The name as written.
        name: String,
        /// A suggestion and (some of) the known names, ready to print.
        known: String,
    },
    /// A device is of the wrong kind for where it is used.
    #[error("device '{name}' is a {actual}, but {role} must be {expected}")]
    WrongKind {
        /// The device name.
        name: String,
        /// Its kind (`motor`, `detector`, `signal`, `flyer`).
        actual: &'static str,
        /// What it is used as (`the motor of 'scan'`, ...).
        role: String,
        /// The kinds allowed there.
        expected: &'static str,
    },
    /// A plan or stub needs an argument the file does not give.
    #[error("{context} is missing argument '{argument}'")]
    MissingArgument {
        /// The plan or stub (`plan 'scan'`, `step 3 (mv)`).
        context: String,
        /// The argument.
        argument: &'static str,
    },
    /// An argument the plan or stub does not take.
    #[error("argument '{}' is not used by {context} (it takes: {takes})", Escaped(.argument))]
    UnexpectedArgument {
        /// The argument.
        argument: String,
        /// The plan or stub.
        context: String,
        /// The arguments it does take.
        takes: String,
    },
    /// A plan or stub name skyrun does not know.
    #[error("unknown {what} '{}' (known: {known})", Escaped(.name))]
    UnknownName {
        /// `plan` or `stub`.
        what: &'static str,
        /// The name as written.
        name: String,
        /// The known names.
        known: String,
    },
    /// A number that must be finite is NaN or infinite.
    #[error("{} must be a finite number, got {value}", Escaped(.what))]
    NotFinite {
        /// The value's role.
        what: String,
        /// The value.
        value: f64,
    },
    /// A count, duration or similar is negative.
    #[error("{} must not be negative, got {value}", Escaped(.what))]
    Negative {
        /// The value's role.
        what: String,
        /// The value.
        value: f64,
    },
    /// A count beyond what skyrun accepts.
    #[error("{} is {value}, more than the limit of {max}", Escaped(.what))]
    TooLarge {
        /// The value's role.
        what: String,
        /// The value.
        value: u128,
        /// The limit.
        max: u64,
    },
    /// Two devices share a name.
    #[error("duplicate device name '{}' (first declared at line {first_line})", Escaped(.name))]
    DuplicateDevice {
        /// The name.
        name: String,
        /// Where the first one is declared.
        first_line: usize,
    },
    /// Any other inconsistency, described.
    #[error("{}", Escaped(.0))]
    Invalid(String),
}

/// Shows text from a file (a name, a key, a whole message quoting them) on
/// one line: control characters, such as a newline written `"\n"` in a
/// TOML string, are shown escaped, so an error is always one line.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// How many dotted parts the TOML parser takes in one key (its recursion limit).
const MAX_KEY_PARTS: usize = 80;

/// Turns a TOML parser error into a [`ConfigError`] located in `src`.
pub(crate) fn from_toml(file: &str, src: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end();
    let location = match e.span() {
        Some(span) => Location::at(file, src, span.start),
        // The parser gives no place for a key of too many dotted parts
        // (`a.b.c. ...`): it is on the first line with that many dots.
        None if message == "recursion limit" => src
            .split_inclusive('\n')
            .scan(0, |start, line| {
                let at = *start;
                *start += line.len();
                Some((at, line))
            })
            .find(|(_, line)| line.matches('.').count() >= MAX_KEY_PARTS)
            .map_or_else(
                || Location::file(file),
                |(at, line)| {
                    let indent = line.len() - line.trim_start().len();
                    Location::at(file, src, at + indent)
                },
            ),
        None => Location::file(file),
    };
    let kind = if message == "recursion limit" {
        format!("a dotted key has more than {MAX_KEY_PARTS} parts")
    } else {
        readable_toml_message(message)
    };
    ConfigError::new(location, ErrorKind::Toml(kind))
}

/// Says serde's messages in TOML's words: `unknown field` -> `unknown key`
/// (with a suggestion), `i64` -> `an integer`, `map` -> `table`...
fn readable_toml_message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((key, expected)) = rest.split_once('`') {
            let keys: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let mut out = format!("unknown key '{key}'");
            let hint = known_list(key, keys.iter().copied());
            if let Some(rest) = hint.strip_prefix("did you mean") {
                let (suggestion, _) = rest.split_once('?').unwrap_or((rest, ""));
                out.push_str(&format!(" (did you mean{suggestion}?)"));
            }
            if !keys.is_empty() {
                out.push_str(&format!("; expected one of: {}", keys.join(", ")));
            }
            return out;
        }
    }
    let mut out = msg.to_owned();
    for (from, to) in [
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: sequence", "invalid type: array"),
        ("expected a boolean", "expected true or false"),
        ("expected a map", "expected a table"),
    ] {
        out = out.replace(from, to);
    }
    // An integer beyond 64 bits: `invalid type: integer `N` as i128, expected ..`
    // (where a number is expected) or `invalid value: integer `N`, expected
    // i64` (where an integer is).
    if out.contains(" as i128, expected") || out.starts_with("invalid value: integer `") {
        let n = out.split('`').nth(1).unwrap_or_default();
        out = format!("integer {n} is out of range (TOML integers are 64-bit)");
    }
    out
}

/// Locates errors in one file's text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Src<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Src<'_> {
    /// The location of `span` in this file.
    pub fn loc(&self, span: &Range<usize>) -> Location {
        Location::at(self.file, self.text, span.start)
    }

    /// An error at `span`.
    pub fn err(&self, span: &Range<usize>, kind: ErrorKind) -> ConfigError {
        ConfigError::new(self.loc(span), kind)
    }

    /// The 1-based line of `span`.
    pub fn line(&self, span: &Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }
}

/// The edit distance between `a` and `b`, counting a swap of two neighbours
/// as one edit (optimal string alignment), for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// "did you mean 'x'? known: a, b, c, ... (N more)" for an unknown `name` among `known`.
pub(crate) fn known_list<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 12;
    let mut best: Option<(usize, &str)> = None;
    let mut shown = Vec::new();
    let mut total = 0usize;
    let len = name.chars().count();
    let threshold = if len <= 2 { 1 } else { (len / 3).max(2) };
    for k in known {
        total += 1;
        if shown.len() < SHOWN {
            shown.push(k);
        }
        let d = edit_distance(name, k);
        if d <= threshold && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    let mut out = String::new();
    if let Some((_, k)) = best {
        out.push_str(&format!("did you mean '{k}'? "));
    }
    if total == 0 {
        out.push_str("no devices are declared");
        return out;
    }
    out.push_str("known: ");
    out.push_str(&shown.join(", "));
    if total > shown.len() {
        out.push_str(&format!(", ... ({} more)", total - shown.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let src = "a = 1\nbé = 'x'\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // column counts characters, not bytes
        assert_eq!(line_col(src, src.find('=').map(|_| 10).unwrap()), (2, 4));
        assert_eq!(line_col(src, 999), (3, 1));
    }

    #[test]
    fn suggestions() {
        let s = known_list("mtr", ["motor", "det"]);
        assert_eq!(s, "did you mean 'motor'? known: motor, det");
        let many: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        let s = known_list("zzz", many.iter().map(String::as_str));
        assert!(s.ends_with(", ... (8 more)"), "{s}");
        assert!(!s.contains("did you mean"));
        assert_eq!(known_list("x", []), "no devices are declared");
    }
}
