//! Conversions between Python objects and JSON values (`serde_json::Value`),
//! the form skyrun's messages, readings and documents carry.
//!
//! A message argument JSON cannot hold (ophyd-async's `TriggerInfo` for
//! `prepare`, any object a plan hands to its own device) crosses the engine
//! as a placeholder, `{"__skyrun_pyobject__": id, "repr": ...}`, and the
//! device receives the object itself ([`to_msg_value`], [`to_py`]).

use indexmap::IndexMap;
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// A Python value as JSON: None, bool, int, float, str, dict (str keys),
/// list/tuple, and anything with `tolist()` (numpy arrays) or `__float__`
/// (numpy scalars).
pub fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Ok(float(obj.extract::<f64>()?));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_to_map(d).map(Value::Object);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|x| to_value(&x))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| to_value(&x))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if obj.hasattr("tolist")? {
        return to_value(&obj.call_method0("tolist")?);
    }
    if obj.hasattr("__float__")? {
        return Ok(float(obj.call_method0("__float__")?.extract::<f64>()?));
    }
    if obj.hasattr("keys")? && obj.hasattr("__getitem__")? {
        let d = PyDict::new(obj.py());
        for k in obj.call_method0("keys")?.try_iter()? {
            let k = k?;
            d.set_item(&k, obj.get_item(&k)?)?;
        }
        return dict_to_map(&d).map(Value::Object);
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a {} to skyrun (expected None, bool, int, float, str, list, tuple or dict): {}",
        obj.get_type().name()?,
        obj.repr()?
    )))
}

/// Python objects carried by messages as placeholders, newest last (the
/// oldest are let go past [`HELD`]).
static OBJECTS: Mutex<Option<Held>> = Mutex::new(None);
/// The last id given, and the objects by id.
type Held = (u64, IndexMap<u64, Py<PyAny>>);
/// How many such objects are held at once.
const HELD: usize = 4096;
const PLACEHOLDER: &str = "__skyrun_pyobject__";

/// A message argument as JSON: [`to_value`]'s, or a placeholder for an
/// object JSON cannot hold, which [`to_py`] turns back into the object.
pub fn to_msg_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    match to_value(obj) {
        Ok(v) => Ok(v),
        Err(_) => {
            let repr = obj.repr().map(|r| r.to_string()).unwrap_or_default();
            let mut held = OBJECTS.lock();
            let (next, objs) = held.get_or_insert_with(|| (0, IndexMap::new()));
            *next += 1;
            objs.insert(*next, obj.clone().unbind());
            while objs.len() > HELD {
                objs.shift_remove_index(0);
            }
            let mut m = Map::new();
            m.insert(PLACEHOLDER.into(), Value::from(*next));
            m.insert("repr".into(), Value::String(repr));
            Ok(Value::Object(m))
        }
    }
}

/// A dict of message keyword arguments, each by [`to_msg_value`].
pub fn dict_to_msg_map(d: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let mut m = Map::with_capacity(d.len());
    for (k, v) in d.iter() {
        let key = match k.cast::<PyString>() {
            Ok(s) => s.to_str()?.to_owned(),
            Err(_) => k.str()?.to_str()?.to_owned(),
        };
        m.insert(key, to_msg_value(&v)?);
    }
    Ok(m)
}

/// The object a placeholder names, if `m` is one.
fn held_object<'py>(
    py: Python<'py>,
    m: &Map<String, Value>,
) -> Option<PyResult<Bound<'py, PyAny>>> {
    let id = m.get(PLACEHOLDER)?.as_u64()?;
    let held = OBJECTS.lock();
    Some(
        held.as_ref()
            .and_then(|(_, objs)| objs.get(&id))
            .map(|o| o.bind(py).clone())
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "the Python object {} a message carried is no longer held (more than {HELD} newer ones were sent since)",
                    m.get("repr").and_then(Value::as_str).unwrap_or("?")
                ))
            }),
    )
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or_else(|| {
        // JSON has no NaN/inf; keep them as Python's repr so the engine can name them.
        Value::String(if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        })
    })
}

/// A dict with string keys as a JSON object.
pub fn dict_to_map(d: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let mut m = Map::with_capacity(d.len());
    for (k, v) in d.iter() {
        let key = match k.cast::<PyString>() {
            Ok(s) => s.to_str()?.to_owned(),
            Err(_) => k.str()?.to_str()?.to_owned(),
        };
        m.insert(key, to_value(&v)?);
    }
    Ok(m)
}

/// A JSON value as a Python object (objects become dicts, arrays lists).
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(m) => match held_object(py, m) {
            Some(obj) => obj?,
            None => map_to_py(py, m)?.into_any(),
        },
    })
}

/// A JSON object as a Python dict.
pub fn map_to_py<'py>(py: Python<'py>, m: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, to_py(py, v)?)?;
    }
    Ok(d)
}

/// Anything serializable (readings, data keys, documents) as a Python object.
pub fn ser_to_py<'py, T: serde::Serialize>(py: Python<'py>, x: &T) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(x)
        .map_err(|e| PyTypeError::new_err(format!("cannot convert to Python: {e}")))?;
    to_py(py, &v)
}

/// A Python value deserialized into `T` through JSON; `what` names it in errors.
pub fn from_py<T: serde::de::DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let v = to_value(obj)?;
    serde_json::from_value(v).map_err(|e| PyTypeError::new_err(format!("{what}: {e}")))
}
