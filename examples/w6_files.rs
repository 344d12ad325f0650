//! Writes W6's files (a fresh ProtoNet 20-way 1-shot checkpoint, 20 support and 20 query PNGs)
//! into a folder, for profiling `metalearn adapt` by hand:
//! `cargo run --release --example w6_files -- /tmp/w6`, then
//! `metalearn --threads 1 adapt --checkpoint /tmp/w6/protonet.safetensors --support /tmp/w6/support --query /tmp/w6/query`.

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "w6".into());
    metalearn::cli::bench::adapt::write_w6_files(std::path::Path::new(&dir))
}
