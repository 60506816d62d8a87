//! The message model stands on its own: `src/msg/`, `reply.rs` and
//! `error.rs` (what a plan sends, what it gets back, what goes wrong) import
//! nothing from the engine (`run_engine/`), so front ends can speak it
//! without the engine. Read from the sources, outside comments.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `path` that name the engine, outside comments.
fn engine_mentions(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|code| {
            ["run_engine", "crate::RunEngine", "EngineCore", "CoreHandle"]
                .iter()
                .any(|w| code.contains(w))
        })
        .map(|code| format!("{}: {}", path.display(), code.trim()))
        .collect()
}

#[test]
fn the_message_model_does_not_import_the_engine() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("msg"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("msg/command.rs")),
        "the command table is part of the message model: {files:?}"
    );
    files.push(src.join("reply.rs"));
    files.push(src.join("error.rs"));
    let found: Vec<String> = files.iter().flat_map(|f| engine_mentions(f)).collect();
    assert!(
        found.is_empty(),
        "the message model names the engine:\n{}",
        found.join("\n")
    );
}
