//! `skyrun view SPANS.jsonl -o FILE.html`: the spans of a `--trace jsonl:FILE`
//! file (or of `--trace console` output, or of OpenTelemetry Python's
//! `ConsoleSpanExporter`, e.g. from Bluesky itself) as one self-contained
//! HTML timeline.

use std::process::ExitCode;

use anyhow::anyhow;
use skyrun::telemetry::record::read_spans;
use skyrun::timeline::write_html;

use crate::{Failure, ViewArgs};

/// Reads the spans, writes the page, says how many spans it shows.
pub fn view(args: &ViewArgs) -> Result<ExitCode, Failure> {
    let spans = read_spans(&args.spans).map_err(|e| Failure::Usage(e.into()))?;
    if spans.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "{} holds no spans (write one with --trace jsonl:FILE)",
            args.spans.display()
        )));
    }
    let title = args.title.clone().unwrap_or_else(|| {
        args.spans
            .file_name()
            .map_or_else(|| "spans".to_owned(), |n| n.to_string_lossy().into_owned())
    });
    write_html(&args.output, &spans, &title).map_err(|e| Failure::Runtime(e.into()))?;
    println!(
        "timeline: {} spans -> {}",
        spans.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
