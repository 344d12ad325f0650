//! The `metalearn` command-line tool.

/// mimalloc: the engine allocates many short-lived buffers; glibc's malloc spent about a third
/// of the small-op benchmark (W1) in allocation and returns large buffers to the OS, so every
/// large op paid page faults again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(e) = metalearn::cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
