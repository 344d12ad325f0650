//! The `metalearn` command-line tool.

fn main() {
    if let Err(e) = metalearn::cli::run() {
        // Print the error and its causes, skipping a cause its parent message already quotes.
        let mut message = e.to_string();
        for cause in e.chain().skip(1) {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
        }
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
