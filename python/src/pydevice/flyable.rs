//! Flying a Python device: `kickoff`, `complete`, `collect` (events and
//! event pages), `describe_collect`, and the external asset documents it
//! writes (`collect_asset_docs`, `get_index`).

use pyo3::prelude::*;
use serde_json::{Map, Value};
use skyrun_actors::{
    AssetDocument, CollectDescription, CollectedEvent, DeviceContext, DeviceError, ExternalAssets,
    Flyable, Status,
};

use super::raised::py_err;
use super::PyDevice;
use crate::convert::to_value;

impl Flyable for PyDevice {
    fn kickoff(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("kickoff", vec![], ctx)
    }
    fn complete(&mut self, ctx: &DeviceContext) -> Result<Status, DeviceError> {
        self.status_call("complete", vec![], ctx)
    }
    fn collect(&mut self) -> Result<Vec<CollectedEvent>, DeviceError> {
        // The engine places each event in its stream by its data keys.
        let stream = String::new();
        let fail = |reason: String| DeviceError::Failed {
            device: self.name.clone(),
            operation: "collect",
            reason,
        };
        let method = if self.caps.pages {
            "collect_pages"
        } else {
            "collect"
        };
        Python::attach(|py| {
            let mut out = Vec::new();
            for item in self.items(py, method, vec![])? {
                let v = to_value(&item).map_err(|e| py_err(&self.name, method, py, e))?;
                let Value::Object(m) = v else {
                    return Err(fail(format!("{method} must give dicts, got {v}")));
                };
                let rows = if self.caps.pages {
                    unpack_page(m).map_err(fail)?
                } else {
                    vec![m]
                };
                for mut m in rows {
                    m.entry("stream")
                        .or_insert_with(|| Value::String(stream.clone()));
                    m.entry("time")
                        .or_insert_with(|| skyrun_actors::now().into());
                    let ev: CollectedEvent = serde_json::from_value(Value::Object(m))
                        .map_err(|e| fail(e.to_string()))?;
                    out.push(ev);
                }
            }
            Ok(out)
        })
    }
    fn describe_collect(&self) -> CollectDescription {
        Python::attach(|py| {
            self.call_await(py, "describe_collect", vec![])
                .ok()
                .and_then(|r| to_value(&r).ok())
                .map(collect_description)
                .unwrap_or_default()
        })
    }
}

impl ExternalAssets for PyDevice {
    fn collect_asset_docs(
        &mut self,
        index: Option<u64>,
    ) -> Result<Vec<AssetDocument>, DeviceError> {
        Python::attach(|py| {
            // Bluesky's maybe_collect_asset_docs: an index only for WritesStreamAssets.
            let args = if self.caps.index {
                vec![match index {
                    Some(i) => i
                        .into_pyobject(py)
                        .map(|i| i.into_any())
                        .unwrap_or_else(|e| match e {}),
                    None => py.None().into_bound(py),
                }]
            } else {
                vec![]
            };
            self.items(py, "collect_asset_docs", args)?
                .into_iter()
                .map(|item| {
                    let (name, doc): (String, Bound<'_, PyAny>) = item
                        .extract()
                        .map_err(|e| py_err(&self.name, "collect_asset_docs", py, e))?;
                    let doc = to_value(&doc)
                        .map_err(|e| py_err(&self.name, "collect_asset_docs", py, e))?;
                    AssetDocument::from_named(&name, doc).map_err(|reason| DeviceError::Failed {
                        device: self.name.clone(),
                        operation: "collect_asset_docs",
                        reason,
                    })
                })
                .collect()
        })
    }
    fn get_index(&mut self) -> Result<Option<u64>, DeviceError> {
        if !self.caps.index {
            return Ok(None);
        }
        Python::attach(|py| {
            let r = self.call_await(py, "get_index", vec![])?;
            r.extract::<u64>()
                .map(Some)
                .map_err(|e| py_err(&self.name, "get_index", py, e))
        })
    }
}

/// `describe_collect`'s answer: flat `{key: DataKey}` when every value looks
/// like a data key (Bluesky's `_describe_collect_dict_is_valid`), else `{stream: {key: DataKey}}`.
fn collect_description(v: Value) -> CollectDescription {
    let is_key = |k: &Value| {
        k.as_object().is_some_and(|o| {
            ["dtype", "shape", "source"]
                .iter()
                .all(|f| o.contains_key(*f))
        })
    };
    let flat = v
        .as_object()
        .is_some_and(|o| !o.is_empty() && o.values().all(is_key));
    let parsed = if flat {
        serde_json::from_value(v).map(CollectDescription::Flat)
    } else {
        serde_json::from_value(v).map(CollectDescription::Streams)
    };
    parsed.unwrap_or_default()
}

/// The events of an event page (`data`/`timestamps` column-wise, `time` optional).
fn unpack_page(page: Map<String, Value>) -> Result<Vec<Map<String, Value>>, String> {
    let cols = |k: &str| -> Result<Map<String, Value>, String> {
        match page.get(k) {
            Some(Value::Object(m)) => Ok(m.clone()),
            None => Ok(Map::new()),
            Some(other) => Err(format!("an event page's '{k}' must be a dict, got {other}")),
        }
    };
    let (data, ts) = (cols("data")?, cols("timestamps")?);
    let n = data
        .values()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    let at = |m: &Map<String, Value>, i: usize| -> Map<String, Value> {
        m.iter()
            .filter_map(|(k, v)| {
                v.as_array()
                    .and_then(|a| a.get(i))
                    .map(|x| (k.clone(), x.clone()))
            })
            .collect()
    };
    Ok((0..n)
        .map(|i| {
            let mut ev = Map::new();
            ev.insert("data".into(), Value::Object(at(&data, i)));
            ev.insert("timestamps".into(), Value::Object(at(&ts, i)));
            if let Some(t) = page
                .get("time")
                .and_then(Value::as_array)
                .and_then(|a| a.get(i))
            {
                ev.insert("time".into(), t.clone());
            }
            ev
        })
        .collect())
}
