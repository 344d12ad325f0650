//! A process-wide stop request for training loops: the Python package sets it on Ctrl-C
//! (`KeyboardInterrupt`) while a run is going on in Rust, and the few-shot loop checks it
//! before each iteration, writes `last.safetensors` for the iterations done and returns as
//! interrupted, so the run can be continued with `--resume`.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks the running training loop(s) to stop after the current iteration.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Withdraws a stop request (before a new run starts).
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// Whether a stop was requested since the last [`clear_stop`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
