//! The task record on disk: one JSON-lines file (`tasks.jsonl` in the
//! service's state folder), a line appended at every change of a task
//! (created, started, ended, deleted), so a restart of the service lists the
//! tasks it had, and a task that was running when the process died comes
//! back ended in error, saying so and when. The file is bounded: it is
//! rewritten with only the live records at start and whenever it holds
//! [`COMPACT_AFTER`] lines more than that.
//!
//! ```
//! use skyrun::service::TaskStore;
//! # let dir = std::env::temp_dir().join(format!("skyrun-store-doc-{}", std::process::id()));
//! let (store, tasks) = TaskStore::open(&dir).unwrap();
//! assert!(tasks.is_empty());
//! # drop(store); std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::model::TrackableTask;
use super::record::{mark_lost, now, RecordError, TaskRecord};
use super::worker::MAX_TASKS;

/// Lines beyond the live records after which the file is rewritten.
pub const COMPACT_AFTER: usize = 2 * MAX_TASKS;

/// One line of the file.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Record {
    /// A task as it is now, and when (RFC 3339).
    Task {
        at: String,
        task: Box<TrackableTask>,
    },
    /// A task deleted.
    Deleted { at: String, deleted: String },
}

struct Inner {
    file: BufWriter<File>,
    /// Lines in the file.
    lines: usize,
    /// The last write failed (said once).
    failing: bool,
}

/// The open task record.
pub struct TaskStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl TaskStore {
    /// Opens (or creates) `dir/tasks.jsonl`; returns it and the tasks it
    /// holds, oldest first. A task that had started and not ended is
    /// returned ended in error: the service stopped while it ran.
    pub fn open(dir: &Path) -> Result<(TaskStore, Vec<TrackableTask>), RecordError> {
        let path = dir.join("tasks.jsonl");
        let err = |source| RecordError::File {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| RecordError::File {
            path: dir.to_owned(),
            source,
        })?;
        let mut tasks: IndexMap<String, (String, TrackableTask)> = IndexMap::new();
        match File::open(&path) {
            Ok(f) => {
                for (n, line) in BufReader::new(f).lines().enumerate() {
                    let line = line.map_err(err)?;
                    match serde_json::from_str::<Record>(&line) {
                        Ok(Record::Task { at, task }) => {
                            tasks.insert(task.task_id.clone(), (at, *task));
                        }
                        Ok(Record::Deleted { deleted, .. }) => {
                            tasks.shift_remove(&deleted);
                        }
                        // A line cut short by a crash: the rest still counts.
                        Err(e) if !line.trim().is_empty() => eprintln!(
                            "skyrun service: {}: line {} skipped: {e}",
                            path.display(),
                            n + 1
                        ),
                        Err(_) => {}
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        while tasks.len() > MAX_TASKS {
            tasks.shift_remove_index(0);
        }
        let restarted = now();
        let tasks: Vec<TrackableTask> = tasks
            .into_values()
            .map(|(at, mut task)| {
                if !task.is_pending && !task.is_complete {
                    let msg = format!(
                        "the service stopped while the task was running (last recorded at {at}); \
                         found lost at the restart at {restarted}"
                    );
                    mark_lost(&mut task, msg);
                }
                task
            })
            .collect();
        let file = write_all(&path, &tasks).map_err(err)?;
        let store = TaskStore {
            inner: Mutex::new(Inner {
                file: BufWriter::new(file),
                lines: tasks.len(),
                failing: false,
            }),
            path,
        };
        Ok((store, tasks))
    }

    /// Rewrites the file with `tasks` only.
    fn rewrite(&self, tasks: &[TrackableTask]) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        let _ = inner.file.flush();
        inner.file = BufWriter::new(write_all(&self.path, tasks)?);
        inner.lines = tasks.len();
        Ok(())
    }

    fn append(&self, record: &Record) {
        let mut inner = self.inner.lock();
        let r = serde_json::to_writer(&mut inner.file, record)
            .map_err(std::io::Error::from)
            .and_then(|()| inner.file.write_all(b"\n"))
            .and_then(|()| inner.file.flush());
        match r {
            Ok(()) => {
                inner.lines += 1;
                inner.failing = false;
            }
            Err(e) => {
                if !inner.failing {
                    eprintln!(
                        "skyrun service: cannot write the task record {}: {e}",
                        self.path.display()
                    );
                }
                inner.failing = true;
            }
        }
    }
}

impl TaskRecord for TaskStore {
    fn save(&self, task: &TrackableTask) {
        self.append(&Record::Task {
            at: now(),
            task: Box::new(task.clone()),
        });
    }

    fn delete(&self, id: &str) {
        self.append(&Record::Deleted {
            at: now(),
            deleted: id.to_owned(),
        });
    }

    fn wants_compaction(&self, live: usize) -> bool {
        self.inner.lock().lines > live + COMPACT_AFTER
    }

    fn compact(&self, tasks: &[TrackableTask]) {
        if let Err(e) = self.rewrite(tasks) {
            eprintln!(
                "skyrun service: cannot rewrite the task record {}: {e}",
                self.path.display()
            );
        }
    }

    fn describe(&self) -> String {
        format!("tasks kept in {}", self.path.display())
    }
}

/// Writes `tasks` to a new file renamed over `path`; the file, open for appending.
fn write_all(path: &Path, tasks: &[TrackableTask]) -> std::io::Result<File> {
    let new = path.with_extension("jsonl.new");
    let mut out = BufWriter::new(File::create(&new)?);
    let at = now();
    for task in tasks {
        let record = Record::Task {
            at: at.clone(),
            task: Box::new(task.clone()),
        };
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&new, path)?;
    OpenOptions::new().append(true).open(path)
}
