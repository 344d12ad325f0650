//! Running the `metalearn` binary (built with the `cli` feature).

use std::ffi::OsStr;
use std::process::{Command, Output};

/// A `metalearn` command.
pub fn metalearn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_metalearn"))
}

/// Runs `metalearn ARGS` and asserts it succeeds (showing its stderr when not).
pub fn run_ok<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = metalearn().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
