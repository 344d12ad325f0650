//! Every `metalearn` command the README shows parses with the real command-line parser, and
//! every config file, example and script it names exists: a README that drifts from the code
//! (a flag renamed, a config moved) fails here. Commands are taken from inline code spans and
//! fenced code blocks; `a && b`, `a; b` and `a | b` are split; optional groups `[...]` are
//! parsed with their contents.

use clap::Parser;
use metalearn::cli::Cli;
use std::path::Path;

/// The README's code: inline spans (which may wrap across lines) and the lines of fenced
/// blocks, as one string each.
fn code_snippets(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut in_block = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if in_block {
            out.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let spans = prose.split('`').skip(1).step_by(2);
    out.extend(spans.map(|s| s.replace('\n', " ")));
    out
}

/// Splits a command line into words, honouring single and double quotes.
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quote, mut any) = (String::new(), None, false);
    for ch in cmd.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => (quote, any) = (Some(ch), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The `metalearn` invocations of the README, each as its words (program name first).
fn metalearn_commands(readme: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for snippet in code_snippets(readme) {
        for part in snippet
            .split("&&")
            .flat_map(|p| p.split(';'))
            .flat_map(|p| p.split(" | "))
        {
            let part = part.trim().replace(['[', ']'], "");
            let mut w = words(&part);
            while w
                .first()
                .is_some_and(|t| t.contains('=') && !t.starts_with('-'))
            {
                w.remove(0); // leading `VAR=value` assignments
            }
            if w.first()
                .is_some_and(|p| p == "metalearn" || p.ends_with("/metalearn"))
            {
                out.push(w);
            }
        }
    }
    out
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn every_readme_command_parses() {
    let text = readme();
    let commands = metalearn_commands(&text);
    assert!(
        commands.len() >= 20,
        "found only {} commands",
        commands.len()
    );
    let failures: Vec<String> = commands
        .iter()
        .filter_map(|w| {
            Cli::try_parse_from(w).err().map(|e| {
                format!(
                    "`{}`: {}",
                    w.join(" "),
                    e.to_string().lines().next().unwrap_or("")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "README commands that do not parse:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_file_the_readme_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = readme();
    let mut missing = Vec::new();
    for snippet in code_snippets(&text) {
        let w = words(&snippet.replace(['[', ']'], ""));
        for (i, t) in w.iter().enumerate() {
            let is_file = (t.starts_with("configs/") && t.ends_with(".toml"))
                || (t.starts_with("scripts/") && t.ends_with(".sh"))
                || t.starts_with("tests/reference");
            if is_file && !t.contains('<') && !root.join(t).exists() {
                missing.push(t.clone());
            }
            if t == "--example" {
                let name = w.get(i + 1).cloned().unwrap_or_default();
                if !root.join("examples").join(format!("{name}.rs")).exists() {
                    missing.push(format!("examples/{name}.rs"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the README names files that do not exist: {missing:?}"
    );
}

#[test]
fn the_splitter_finds_commands_and_the_parser_rejects_a_made_up_flag() {
    let text = "Run `metalearn train --config a.toml --made-up-flag` and\n```bash\ncargo build && ./target/release/metalearn eval --checkpoint x.safetensors\n```\n";
    let commands = metalearn_commands(text);
    assert_eq!(commands.len(), 2, "{commands:?}");
    for c in &commands {
        let made_up = c.iter().any(|w| w == "--made-up-flag");
        assert_eq!(Cli::try_parse_from(c).is_err(), made_up, "{c:?}");
    }
    assert_eq!(
        words("sed 's/a b/c/' x > y"),
        ["sed", "s/a b/c/", "x", ">", "y"]
    );
}
