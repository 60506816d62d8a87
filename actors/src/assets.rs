//! External assets: documents that point at data a device stored elsewhere
//! (an HDF5 file, say), after Bluesky's `WritesExternalAssets` and
//! `WritesStreamAssets` protocols.
//!
//! A device that writes files answers `collect_asset_docs` with `resource`
//! and `datum` documents (one datum per reading, the event holds the datum
//! id) or `stream_resource` and `stream_datum` documents (one resource per
//! file and data key, one datum per range of frames). The engine fills in
//! what only it knows (`run_start`, the stream datum's `descriptor` and
//! `seq_nums`) and emits them before the event or page that refers to them.
//!
//! ```
//! use skyrun_actors::{AssetDocument, AssetKind, json};
//! let doc = AssetDocument::from_named(
//!     "stream_datum",
//!     json!({"uid": "d1", "stream_resource": "r1", "descriptor": "",
//!            "indices": {"start": 0, "stop": 2}, "seq_nums": {"start": 0, "stop": 0}}),
//! ).unwrap();
//! assert_eq!(doc.kind, AssetKind::StreamDatum);
//! assert_eq!(doc.kind.name(), "stream_datum");
//! assert!(AssetDocument::from_named("event", json!({})).is_err());
//! ```

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DeviceError;
use crate::reading::DataKeys;

/// Which external-asset document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// `resource`: a file (or other store) holding data of many events.
    Resource,
    /// `datum`: where one event's value is in a resource.
    Datum,
    /// `stream_resource`: a file holding one data key of a stream.
    StreamResource,
    /// `stream_datum`: a range of frames of a stream resource.
    StreamDatum,
}

impl AssetKind {
    /// The event-model document name.
    pub fn name(self) -> &'static str {
        match self {
            AssetKind::Resource => "resource",
            AssetKind::Datum => "datum",
            AssetKind::StreamResource => "stream_resource",
            AssetKind::StreamDatum => "stream_datum",
        }
    }

    /// The kind named `name`, if it is one of the four.
    pub fn from_name(name: &str) -> Option<AssetKind> {
        Some(match name {
            "resource" => AssetKind::Resource,
            "datum" => AssetKind::Datum,
            "stream_resource" => AssetKind::StreamResource,
            "stream_datum" => AssetKind::StreamDatum,
            _ => return None,
        })
    }
}

/// One external-asset document, as the device composed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetDocument {
    /// Which document.
    pub kind: AssetKind,
    /// Its body (event-model's fields for that kind).
    pub body: Map<String, Value>,
}

impl AssetDocument {
    /// A `(name, doc)` pair as `collect_asset_docs` yields it; an error names
    /// what is wrong with it.
    pub fn from_named(name: &str, body: Value) -> Result<AssetDocument, String> {
        let kind = AssetKind::from_name(name).ok_or_else(|| {
            format!(
                "Tried to emit an external asset {name}, acceptable external assets are \
                 `resource`, `stream_resource`, `datum`, or `stream_datum`"
            )
        })?;
        match body {
            Value::Object(body) => Ok(AssetDocument { kind, body }),
            other => Err(format!("the {name} document must be a dict, got {other}")),
        }
    }

    /// The string field `key` of the body, if it has one.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

/// What `describe_collect` answers: data keys per stream (a flyer of the old
/// style, which names its streams), or one flat set of data keys (a
/// collectable whose stream the plan declares with
/// `declare_stream(..., collect=True)` or names in `collect(..., name=)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CollectDescription {
    /// `{stream: {key: DataKey}}`.
    Streams(IndexMap<String, DataKeys>),
    /// `{key: DataKey}`.
    Flat(DataKeys),
}

impl Default for CollectDescription {
    fn default() -> Self {
        CollectDescription::Streams(IndexMap::new())
    }
}

/// A device that writes data elsewhere and describes it with asset
/// documents (Bluesky's `WritesExternalAssets`, and `WritesStreamAssets`
/// when it also answers `get_index`).
pub trait ExternalAssets {
    /// The asset documents produced since the last call; `index` (frames)
    /// bounds a collect of several devices to what all of them have written.
    fn collect_asset_docs(&mut self, index: Option<u64>)
        -> Result<Vec<AssetDocument>, DeviceError>;
    /// How many frames have been written (`get_index`), or `None` if the
    /// device has no index.
    fn get_index(&mut self) -> Result<Option<u64>, DeviceError>;
}
