//! The `metalearn` command-line tool.

fn main() {
    if let Err(e) = metalearn::cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
