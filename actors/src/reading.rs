//! Readings and data keys: what `read` and `describe` return, in event-model's shape.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One value read from a device, with the time it was taken (seconds since the UNIX epoch).
///
/// ```
/// use skyrun_actors::Reading;
/// let r = Reading::new(1.5);
/// assert_eq!(r.value, serde_json::json!(1.5));
/// assert!(r.timestamp > 0.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The value.
    pub value: Value,
    /// When the value was taken, seconds since the UNIX epoch.
    pub timestamp: f64,
}

impl Reading {
    /// A reading of `value` taken now.
    pub fn new(value: impl Into<Value>) -> Self {
        Reading {
            value: value.into(),
            timestamp: now(),
        }
    }
}

/// What a device's data key holds, as event-model's descriptor `data_keys` describe it.
///
/// ```
/// use skyrun_actors::DataKey;
/// let k = DataKey::number("SIM:motor").with_units("mm");
/// assert_eq!(k.dtype, "number");
/// assert_eq!(serde_json::to_value(&k).unwrap()["units"], "mm");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataKey {
    /// Where the data comes from (e.g. `"SIM:motor"` or a PV name).
    pub source: String,
    /// One of `number`, `integer`, `string`, `boolean`, `array`.
    pub dtype: String,
    /// The shape; empty for a scalar.
    pub shape: Vec<usize>,
    /// Engineering units, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub units: Option<String>,
    /// Display precision, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub precision: Option<u32>,
    /// The lower control limit, if the source has one (ophyd's `lower_ctrl_limit`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lower_ctrl_limit: Option<f64>,
    /// The upper control limit, if the source has one (ophyd's `upper_ctrl_limit`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub upper_ctrl_limit: Option<f64>,
    /// The name of the object this key belongs to (filled in by the engine).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object_name: Option<String>,
    /// Where the data is stored when not in the event: `"STREAM:"` for a
    /// stream resource, another prefix (`"FILESTORE:"`) for a resource and
    /// datum.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub external: Option<String>,
    /// Any other field the device gave (`dtype_numpy`, `limits`, `dims`,
    /// `chunk_shape`, ...), kept as it is.
    #[serde(flatten, default)]
    pub extra: serde_json::Map<String, Value>,
}

impl DataKey {
    /// A scalar number key.
    pub fn number(source: impl Into<String>) -> Self {
        DataKey {
            source: source.into(),
            dtype: "number".into(),
            shape: vec![],
            units: None,
            precision: None,
            lower_ctrl_limit: None,
            upper_ctrl_limit: None,
            object_name: None,
            external: None,
            extra: Default::default(),
        }
    }

    /// The key with engineering units.
    pub fn with_units(mut self, units: impl Into<String>) -> Self {
        self.units = Some(units.into());
        self
    }

    /// The key with a display precision.
    pub fn with_precision(mut self, precision: u32) -> Self {
        self.precision = Some(precision);
        self
    }

    /// The key with control limits `[low, high]` (ophyd's `lower_ctrl_limit`
    /// and `upper_ctrl_limit`).
    ///
    /// ```
    /// use skyrun_actors::DataKey;
    /// let k = DataKey::number("PV:BL:AO").with_ctrl_limits(-10.0, 10.0);
    /// assert_eq!(serde_json::to_value(&k).unwrap()["upper_ctrl_limit"], 10.0);
    /// ```
    pub fn with_ctrl_limits(mut self, low: f64, high: f64) -> Self {
        self.lower_ctrl_limit = Some(low);
        self.upper_ctrl_limit = Some(high);
        self
    }

    /// The key describing `value`: dtype and shape inferred from the JSON value.
    pub fn for_value(source: impl Into<String>, value: &Value) -> Self {
        let (dtype, shape) = match value {
            Value::Bool(_) => ("boolean", vec![]),
            Value::Number(n) if n.is_i64() || n.is_u64() => ("integer", vec![]),
            Value::Number(_) => ("number", vec![]),
            Value::String(_) => ("string", vec![]),
            Value::Array(a) => ("array", vec![a.len()]),
            Value::Null | Value::Object(_) => ("string", vec![]),
        };
        DataKey {
            source: source.into(),
            dtype: dtype.into(),
            shape,
            units: None,
            precision: None,
            lower_ctrl_limit: None,
            upper_ctrl_limit: None,
            object_name: None,
            external: None,
            extra: Default::default(),
        }
    }
}

/// Readings keyed by data key, in the device's order.
pub type Readings = IndexMap<String, Reading>;
/// Data keys keyed by name, in the device's order.
pub type DataKeys = IndexMap<String, DataKey>;

/// Seconds since the UNIX epoch, as event-model timestamps are.
///
/// ```
/// assert!(skyrun_actors::now() > 1.7e9);
/// ```
pub fn now() -> f64 {
    epoch_secs(std::time::SystemTime::now())
}

/// `t` in seconds since the UNIX epoch (0 before it).
pub(crate) fn epoch_secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
