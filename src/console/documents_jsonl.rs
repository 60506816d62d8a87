//! The documents file: every document as one JSON line `["name", {...}]`,
//! the shape `Document::from_named` reads back. Start and stop documents are
//! flushed as they are written, so a reader tailing the file sees each run
//! begin and end. A write error is kept (later documents are skipped) and
//! returned by [`DocumentsWriter::finish`]: a full disk never stops a run.
//!
//! ```
//! use skyrun::console::documents_jsonl::DocumentsWriter;
//! let path = std::env::temp_dir().join(format!("skyrun-docs-doc-{}.jsonl", std::process::id()));
//! let mut w = DocumentsWriter::create(&path).unwrap();
//! w.finish().unwrap();
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
//! # std::fs::remove_file(&path).unwrap();
//! let err = DocumentsWriter::create("/nonexistent-dir/d.jsonl".as_ref()).unwrap_err();
//! assert!(err.to_string().starts_with("cannot create the documents file /nonexistent-dir/d.jsonl"), "{err}");
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::Document;

/// The documents file could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    /// Creating (or truncating) the file failed.
    #[error("cannot create the documents file {}: {error}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not a `source`, so it is said once).
        error: std::io::Error,
    },
    /// Writing failed (the first error; later documents were skipped).
    #[error("cannot write the documents file {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not a `source`, so it is said once).
        error: std::io::Error,
    },
}

/// Writes every document as one JSON line `["name", {...}]`.
#[derive(Debug)]
pub struct DocumentsWriter {
    path: PathBuf,
    w: BufWriter<File>,
    error: Option<std::io::Error>,
}

impl DocumentsWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, DocumentsError> {
        let f = File::create(path).map_err(|error| DocumentsError::Create {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(DocumentsWriter {
            path: path.to_path_buf(),
            w: BufWriter::new(f),
            error: None,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `doc` (called `name`); a failure is kept for [`finish`](Self::finish).
    pub fn write(&mut self, name: &str, doc: &Document) {
        if self.error.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut self.w, &(name, doc))
            .map_err(std::io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"));
        let r = match (r, doc) {
            (Ok(()), Document::Start(_) | Document::Stop(_)) => self.w.flush(),
            (r, _) => r,
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    /// Flushes; returns the first error of the whole file, if any.
    pub fn finish(&mut self) -> Result<(), DocumentsError> {
        let flushed = self.w.flush();
        match self.error.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(error) => Err(DocumentsError::Write {
                path: self.path.clone(),
                error,
            }),
        }
    }
}
