//! Resource readings every command reports: wall time ([`Stopwatch`]) and peak resident
//! memory (of this process, [`peak_rss_mib`], resettable on Linux with [`reset_peak_rss`]; of
//! its waited-for children, [`children_peak_rss_mib`]).

use std::time::Instant;

/// Wall time since a start: seconds of training, evaluation or a whole command.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// A stopwatch started now.
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    /// Milliseconds since the start.
    pub fn millis(&self) -> f64 {
        1e3 * self.seconds()
    }
}

/// The process's peak resident set size in MiB (`VmHWM` from `/proc/self/status`; 0 if unknown).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Resets the process's peak-RSS counter (Linux `clear_refs`), so that a later
/// [`peak_rss_mib`] measures from now; returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The largest peak resident set size of this process's waited-for children, MiB
/// (`getrusage(RUSAGE_CHILDREN)`; 0 if unknown). An upper bound: a child spawned with a shared
/// address space (`posix_spawn`'s vfork) inherits the parent's high-water mark until its
/// `exec`, so W6 reports its children's memory truthfully only when run in a small process
/// (`metalearn bench --only w6`).
pub fn children_peak_rss_mib() -> f64 {
    // SAFETY: `getrusage` only writes the `rusage` struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc == 0 {
        usage.ru_maxrss as f64 / 1024.0
    } else {
        0.0
    }
}
