//! Printing a command's result on stdout, the same way for every command: one JSON line
//! (`--json`), or the human-readable table followed by one `wrote FILE` line per file written;
//! and quoting the fields of the CSV files commands write.

use serde::Serialize;
use std::path::PathBuf;

/// Prints `report` as one JSON line when `json`, else the text of `table` (which ends with a
/// newline) and a `wrote FILE` line per entry of `files`.
pub fn print_report<R: Serialize + ?Sized>(
    report: &R,
    json: bool,
    table: impl FnOnce() -> String,
    files: &[PathBuf],
) -> serde_json::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", table());
        for f in files {
            println!("wrote {}", f.display());
        }
    }
    Ok(())
}

/// A CSV field: quoted (inner quotes doubled) when it holds a comma, a quote or a newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
