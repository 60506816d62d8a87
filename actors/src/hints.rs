//! A device's hints: its suggestions for visualisation and processing, as
//! Bluesky's `HasHints.hints` gives them and the descriptor's `hints` records
//! them (`hints[obj.name] = obj.hints`, whatever the object's dict holds).
//!
//! ophyd's devices give `{"fields": [...]}`; other objects give other keys
//! (`{"vis": ...}`, `{"dimensions": ...}`), which are kept as they are.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A device's hints: the hinted `fields` (ophyd's `hints["fields"]`, the data
/// keys worth plotting) and any other key, kept as the device gave it.
///
/// A Rust device that names its fields needs one line:
///
/// ```
/// use skyrun_actors::{json, Hints};
/// let h = Hints::fields(["motor"]);
/// assert_eq!(serde_json::to_value(&h).unwrap(), json!({"fields": ["motor"]}));
/// assert_eq!(h.field_names(), ["motor"]);
/// ```
///
/// Hints without `fields` stay without them:
///
/// ```
/// use skyrun_actors::{json, Hints};
/// let h: Hints = serde_json::from_value(json!({"vis": "placeholder"})).unwrap();
/// assert_eq!(h.fields, None);
/// assert!(h.field_names().is_empty());
/// assert_eq!(serde_json::to_value(&h).unwrap(), json!({"vis": "placeholder"}));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Map<String, Value>")]
pub struct Hints {
    /// The hinted data keys (`fields`); `None` when the hints have no
    /// `fields` key (not the same as `Some(vec![])`, which ophyd gives for a
    /// device with nothing hinted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// Any other key the device gave (`vis`, `dimensions`, `gridding`, ...),
    /// kept as it is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Hints {
    /// Hints naming `fields` and nothing else (ophyd's `{"fields": [...]}`).
    pub fn fields<S: Into<String>>(fields: impl IntoIterator<Item = S>) -> Self {
        Hints {
            fields: Some(fields.into_iter().map(Into::into).collect()),
            extra: Map::new(),
        }
    }

    /// The hinted fields, none when there is no `fields` key.
    pub fn field_names(&self) -> &[String] {
        self.fields.as_deref().unwrap_or_default()
    }

    /// Hints from any JSON object, as it is (what deserializing does): a
    /// `fields` that is a list of strings becomes [`fields`](Self::fields),
    /// anything else (even a `fields` of another shape) is kept in
    /// [`extra`](Self::extra), so the hints serialize back to `object`
    /// unchanged.
    ///
    /// ```
    /// use skyrun_actors::{json, Hints};
    /// let odd = json!({"fields": [1, 2], "vis": true});
    /// let h = Hints::from_object(odd.as_object().unwrap().clone());
    /// assert!(h.field_names().is_empty());
    /// assert_eq!(serde_json::to_value(&h).unwrap(), odd);
    /// ```
    pub fn from_object(mut object: Map<String, Value>) -> Self {
        let fields = match object.get("fields") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|f| f.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>(),
            _ => None,
        };
        if fields.is_some() {
            object.shift_remove("fields");
        }
        Hints {
            fields,
            extra: object,
        }
    }
}

impl From<Map<String, Value>> for Hints {
    fn from(object: Map<String, Value>) -> Self {
        Hints::from_object(object)
    }
}
