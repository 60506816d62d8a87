//! The RunEngine's spans: names, instrumentation scope and attributes, as
//! Bluesky's `bluesky.tracing` records them (with its bugs fixed; see
//! COMPATIBILITY.md).

use std::borrow::Cow;

use opentelemetry::{Array, KeyValue, StringValue, Value as OtelValue};
use serde_json::{Map, Value};

use crate::msg::{Command, Msg};

/// The instrumentation scope of engine spans, as Bluesky's.
pub const ENGINE_SCOPE: &str = "bluesky.tracing";
/// The span that covers a run, from `open_run` to `close_run` (or any exit).
pub const RUN_SPAN: &str = "Bluesky RunEngine run";

/// The span name of a traced message: `Bluesky RunEngine <command>`.
///
/// ```
/// use skyrun::{telemetry::spans::span_name, Command};
/// assert_eq!(span_name(&Command::Set), "Bluesky RunEngine set");
/// assert_eq!(span_name(&Command::Other("calibrate".into())), "Bluesky RunEngine calibrate");
/// ```
pub fn span_name(command: &Command) -> Cow<'static, str> {
    match command.info() {
        Some(info) => Cow::Borrowed(info.span_name),
        None => Cow::Owned(format!("Bluesky RunEngine {}", command.as_str())),
    }
}

/// Whether Bluesky traces `command` (the command table says: set, wait, complete, collect).
pub fn traced_by_default(command: &Command) -> bool {
    command
        .info()
        .is_some_and(|i| i.trace == crate::msg::Trace::Bluesky)
}

fn has_group_kwarg(command: &Command) -> bool {
    command.info().is_some_and(|i| i.takes_group)
}

/// `msg.kwargs` as Bluesky records it: `json.dumps` of the keyword arguments
/// (Python's separators, so existing queries match), with `group` first for
/// the commands that take one.
///
/// ```
/// use skyrun::{Msg, telemetry::spans::kwargs_json};
/// assert_eq!(kwargs_json(&Msg::new("set").arg(5)), r#"{"group": null}"#);
/// assert_eq!(kwargs_json(&Msg::new("wait").group("A").kwarg("timeout", 1.5)), r#"{"group": "A", "timeout": 1.5}"#);
/// ```
pub fn kwargs_json(msg: &Msg) -> Cow<'static, str> {
    if msg.kwargs.is_empty() && has_group_kwarg(&msg.command) {
        // The common case, without building a map.
        return match &msg.group {
            None => r#"{"group": null}"#.into(),
            // Group names rarely need JSON escaping; write them directly when they don't.
            Some(g) if !g.chars().any(|c| c == '"' || c == '\\' || c.is_control()) => {
                // Exactly the length written: the span keeps it as a boxed `str`.
                let mut out = String::with_capacity(g.len() + 13);
                out.push_str(r#"{"group": ""#);
                out.push_str(g);
                out.push_str(r#""}"#);
                out.into()
            }
            Some(g) => format!(r#"{{"group": {}}}"#, Value::String(g.clone())).into(),
        };
    }
    let mut m = Map::with_capacity(msg.kwargs.len() + 1);
    if has_group_kwarg(&msg.command) {
        m.insert(
            "group".into(),
            msg.group.clone().map(Value::String).unwrap_or(Value::Null),
        );
    }
    for (k, v) in &msg.kwargs {
        m.insert(k.clone(), v.clone());
    }
    python_json(&Value::Object(m)).into()
}

/// JSON as Python's `json.dumps` writes it by default (`", "` and `": "` separators).
///
/// ```
/// use skyrun::telemetry::spans::python_json;
/// assert_eq!(python_json(&serde_json::json!({"a": [1, 2], "b": {}})), r#"{"a": [1, 2], "b": {}}"#);
/// ```
pub fn python_json(value: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing a Value into memory cannot fail.
    let _ = value.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

struct PythonFormatter;

/// `", "` between items, as Python writes them.
fn separator<W: ?Sized + std::io::Write>(w: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        w.write_all(b", ")
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(w, first)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// `msg.args` as an OpenTelemetry array: numbers stay numbers, anything else is JSON text.
pub fn args_value(args: &[Value]) -> OtelValue {
    if args.iter().all(|a| a.is_i64()) {
        OtelValue::Array(Array::I64(args.iter().filter_map(Value::as_i64).collect()))
    } else if args.iter().all(Value::is_number) {
        OtelValue::Array(Array::F64(args.iter().filter_map(Value::as_f64).collect()))
    } else {
        OtelValue::Array(Array::String(
            args.iter()
                .map(|a| match a {
                    Value::String(s) => StringValue::from(s.clone()),
                    other => StringValue::from(other.to_string()),
                })
                .collect(),
        ))
    }
}

/// The attributes of a message span (and of the run span, from `open_run`).
pub fn msg_attributes(msg: &Msg) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(6);
    let command = match msg.command.static_str() {
        Some(c) => StringValue::from(c),
        None => StringValue::from(msg.command.as_str().to_owned()),
    };
    attrs.push(KeyValue::new("msg.command", command));
    attrs.push(KeyValue::new("msg.args", args_value(&msg.args)));
    attrs.push(KeyValue::new(
        "msg.kwargs",
        StringValue::from(kwargs_json(msg)),
    ));
    match &msg.obj {
        Some(obj) => attrs.push(KeyValue::new(
            "msg.obj",
            StringValue::from(obj.repr_shared()),
        )),
        None => attrs.push(KeyValue::new("msg.no_obj_given", true)),
    }
    if msg.command == Command::Wait {
        match &msg.group {
            Some(g) => attrs.push(KeyValue::new("group", g.clone())),
            None => attrs.push(KeyValue::new("no_group_given", true)),
        }
    }
    attrs
}

/// `cx` as a context from outside the engine (remote), so that the engine's
/// one-trace-per-run parenting puts the run span, not `cx`'s span, over the
/// run's spans (the plan span of `skyrun run`, a service task's span).
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// let cx = SpanContext::new(TraceId::from(7), SpanId::from(9), TraceFlags::SAMPLED, false, TraceState::default());
/// let parent = skyrun::telemetry::spans::remote_parent(&cx);
/// assert!(parent.span().span_context().is_remote());
/// assert_eq!(parent.span().span_context().span_id(), SpanId::from(9));
/// ```
pub fn remote_parent(cx: &opentelemetry::trace::SpanContext) -> opentelemetry::Context {
    use opentelemetry::trace::{SpanContext, TraceContextExt};
    opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags(),
        true,
        cx.trace_state().clone(),
    ))
}
