//! Where skyrun's human output goes: stdout, or stderr when stdout carries spans.

use std::io::{IsTerminal, Write};

use indicatif::ProgressDrawTarget;

/// A stream for human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Out {
    /// Whether the stream is a terminal.
    pub fn is_terminal(self) -> bool {
        match self {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
        }
    }

    /// Writes `text` and a newline; a closed stream is not an error worth stopping a run for.
    pub fn line(self, text: &str) {
        let _ = match self {
            Out::Stdout => writeln!(std::io::stdout().lock(), "{text}"),
            Out::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
        };
    }

    /// Writes `text` as is.
    pub fn text(self, text: &str) {
        let _ = match self {
            Out::Stdout => write!(std::io::stdout().lock(), "{text}"),
            Out::Stderr => write!(std::io::stderr().lock(), "{text}"),
        };
    }

    /// A progress bar target on this stream.
    pub fn draw_target(self) -> ProgressDrawTarget {
        match self {
            Out::Stdout => ProgressDrawTarget::stdout(),
            Out::Stderr => ProgressDrawTarget::stderr(),
        }
    }
}
