//! What each kind of plan parameter accepts: its JSON schema, and the check
//! of a task's value against it, answered as pydantic answers (`missing`,
//! `int_type`, ...) so that blueapi's client prints the errors.

use serde_json::{json, Map, Value};

use super::{Kind, Need};
use crate::config::DeviceSet;
use crate::service::model::ArgumentError;

pub(super) fn error(
    loc: &[Value],
    kind: &str,
    msg: impl Into<String>,
    input: Value,
) -> ArgumentError {
    let mut full = vec![json!("body"), json!("params")];
    full.extend(loc.iter().cloned());
    ArgumentError {
        loc: full,
        msg: msg.into(),
        kind: kind.to_owned(),
        input,
    }
}

/// `snake_case` → `Snake Case`, pydantic's title of a field.
pub(super) fn title(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Kind {
    pub(super) fn schema(self) -> Value {
        match self {
            Kind::Device(need) => {
                json!({"type": "string", "description": format!("The name of {}", need.describe())})
            }
            Kind::Devices(need) => {
                json!({"type": "array", "items": {"type": "string", "description": format!("The name of {}", need.describe())}})
            }
            Kind::Int(min) => json!({"type": "integer", "minimum": min}),
            Kind::Number(Some(min)) => json!({"type": "number", "minimum": min}),
            Kind::Number(None) => json!({"type": "number"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Numbers => json!({"type": "array", "items": {"type": "number"}}),
            Kind::Axes => json!({"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "motor": Kind::Device(Need::Movable).schema(),
                    "start": {"type": "number"},
                    "stop": {"type": "number"},
                    "num": {"type": "integer", "minimum": 1},
                },
                "required": ["motor", "start", "stop", "num"],
            }}),
            Kind::Str => json!({"type": "string"}),
            Kind::Any => json!({}),
        }
    }

    /// Checks `v` (at `loc`); pushes what is wrong to `errors`.
    pub(super) fn check(
        self,
        v: &Value,
        loc: &[Value],
        set: &DeviceSet,
        errors: &mut Vec<ArgumentError>,
    ) {
        let at = |extra: Value| {
            let mut l = loc.to_vec();
            l.push(extra);
            l
        };
        match self {
            Kind::Device(need) => match v.as_str() {
                Some(name) => check_device(name, need, loc, set, errors),
                None => errors.push(error(
                    loc,
                    "string_type",
                    "Input should be a valid string",
                    v.clone(),
                )),
            },
            Kind::Devices(need) => check_list(Kind::Device(need), v, loc, set, errors),
            Kind::Int(min) => match v.as_i64() {
                Some(n) if n < min => errors.push(error(
                    loc,
                    "greater_than_equal",
                    format!("Input should be greater than or equal to {min}"),
                    v.clone(),
                )),
                Some(_) => {}
                None => errors.push(error(
                    loc,
                    "int_type",
                    "Input should be a valid integer",
                    v.clone(),
                )),
            },
            Kind::Number(min) => match v.as_f64() {
                Some(x) if min.is_some_and(|m| x < m) => errors.push(error(
                    loc,
                    "greater_than_equal",
                    format!(
                        "Input should be greater than or equal to {}",
                        min.unwrap_or(0.0)
                    ),
                    v.clone(),
                )),
                Some(_) => {}
                None => errors.push(error(
                    loc,
                    "float_type",
                    "Input should be a valid number",
                    v.clone(),
                )),
            },
            Kind::Bool => {
                if !v.is_boolean() {
                    errors.push(error(
                        loc,
                        "bool_type",
                        "Input should be a valid boolean",
                        v.clone(),
                    ));
                }
            }
            Kind::Str => {
                if !v.is_string() {
                    errors.push(error(
                        loc,
                        "string_type",
                        "Input should be a valid string",
                        v.clone(),
                    ));
                }
            }
            Kind::Numbers => check_list(Kind::Number(None), v, loc, set, errors),
            Kind::Axes => match v.as_array() {
                Some(items) if items.is_empty() => errors.push(error(
                    loc,
                    "too_short",
                    "List should have at least 1 item after validation, not 0",
                    v.clone(),
                )),
                Some(items) => {
                    let fields = [
                        ("motor", Kind::Device(Need::Movable)),
                        ("start", Kind::Number(None)),
                        ("stop", Kind::Number(None)),
                        ("num", Kind::Int(1)),
                    ];
                    for (i, item) in items.iter().enumerate() {
                        let here = at(json!(i));
                        let Some(obj) = item.as_object() else {
                            errors.push(error(
                                &here,
                                "dict_type",
                                "Input should be a valid dictionary",
                                item.clone(),
                            ));
                            continue;
                        };
                        check_object(obj, &fields.map(|(n, k)| (n, k, false)), &here, set, errors);
                    }
                }
                None => errors.push(error(
                    loc,
                    "list_type",
                    "Input should be a valid list",
                    v.clone(),
                )),
            },
            Kind::Any => {}
        }
    }
}

/// Checks a list whose items are each `item`.
fn check_list(
    item: Kind,
    v: &Value,
    loc: &[Value],
    set: &DeviceSet,
    errors: &mut Vec<ArgumentError>,
) {
    match v.as_array() {
        Some(items) => {
            for (i, x) in items.iter().enumerate() {
                let mut here = loc.to_vec();
                here.push(json!(i));
                item.check(x, &here, set, errors);
            }
        }
        None => errors.push(error(
            loc,
            "list_type",
            "Input should be a valid list",
            v.clone(),
        )),
    }
}

fn check_device(
    name: &str,
    need: Need,
    loc: &[Value],
    set: &DeviceSet,
    errors: &mut Vec<ArgumentError>,
) {
    match set.kind(name) {
        None => errors.push(error(
            loc,
            "value_error",
            format!(
                "Value error, unknown device '{name}' ({})",
                set.known_names(name)
            ),
            json!(name),
        )),
        Some(kind) if !need.accepts(kind) => errors.push(error(
            loc,
            "value_error",
            format!(
                "Value error, '{name}' is a {}, not {}",
                kind.as_str(),
                need.describe()
            ),
            json!(name),
        )),
        Some(_) => {}
    }
}

/// Checks an object's keys against `fields` (name, kind, has a default).
pub(super) fn check_object(
    obj: &Map<String, Value>,
    fields: &[(&str, Kind, bool)],
    loc: &[Value],
    set: &DeviceSet,
    errors: &mut Vec<ArgumentError>,
) {
    for (name, kind, optional) in fields {
        let mut here = loc.to_vec();
        here.push(json!(name));
        match obj.get(*name) {
            Some(v) => kind.check(v, &here, set, errors),
            None if !optional => {
                errors.push(error(&here, "missing", "Field required", Value::Null))
            }
            None => {}
        }
    }
    for (key, v) in obj {
        if !fields.iter().any(|(n, _, _)| n == key) {
            let mut here = loc.to_vec();
            here.push(json!(key));
            errors.push(error(
                &here,
                "extra_forbidden",
                "Extra inputs are not permitted",
                v.clone(),
            ));
        }
    }
}
