//! The JSON-lines file exporter: one compact span object per line, in the
//! same shape as the console exporter's (see [`span_to_json`]), so each line
//! parses on its own with any JSON reader (`jq`, `pandas.read_json(lines=True)`).
//!
//! The file is created (or truncated) when the exporter is made, so a bad
//! path fails before a plan runs, with an error naming the path.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::console::span_to_json;

/// A [`SpanExporter`] that appends one JSON object per span to a file.
///
/// ```
/// use skyrun::telemetry::jsonl::JsonLinesExporter;
/// let path = std::env::temp_dir().join(format!("skyrun-doc-{}.jsonl", std::process::id()));
/// let exporter = JsonLinesExporter::create(&path).unwrap();
/// assert_eq!(exporter.path(), path.as_path());
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
/// # std::fs::remove_file(&path).unwrap();
///
/// let err = JsonLinesExporter::create("/nonexistent-dir/x.jsonl".as_ref()).unwrap_err();
/// assert!(err.to_string().contains("/nonexistent-dir/x.jsonl"));
/// ```
pub struct JsonLinesExporter {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
    resource: Resource,
}

/// The JSON-lines file could not be created or truncated.
#[derive(Debug, thiserror::Error)]
#[error("cannot create trace file {}: {error}", path.display())]
pub struct CreateFileError {
    /// The path that was asked for.
    pub path: PathBuf,
    /// Why it failed (part of the message, not a `source`, so that a
    /// report of the whole error chain says it once).
    pub error: std::io::Error,
}

impl JsonLinesExporter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, CreateFileError> {
        let file = File::create(path).map_err(|error| CreateFileError {
            path: path.to_owned(),
            error,
        })?;
        Ok(JsonLinesExporter {
            path: path.to_owned(),
            file: Mutex::new(BufWriter::new(file)),
            resource: Resource::builder_empty().build(),
        })
    }

    /// The file spans are written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failure(&self, e: impl fmt::Display) -> OTelSdkError {
        OTelSdkError::InternalFailure(format!("writing {}: {e}", self.path.display()))
    }
}

impl fmt::Debug for JsonLinesExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesExporter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SpanExporter for JsonLinesExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut file = self.file.lock().map_err(|e| self.failure(e))?;
        for span in &batch {
            serde_json::to_writer(&mut *file, &span_to_json(span, &self.resource))
                .map_err(|e| self.failure(e))?;
            file.write_all(b"\n").map_err(|e| self.failure(e))?;
        }
        file.flush().map_err(|e| self.failure(e))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut file = self.file.lock().map_err(|e| self.failure(e))?;
        file.flush().map_err(|e| self.failure(e))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
    }
}
