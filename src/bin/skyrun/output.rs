//! Where skyrun's human output goes: stdout, or stderr when stdout carries spans.

/// A stream for human output (the library's [`skyrun::console::Stream`]).
pub use skyrun::console::Stream as Out;
