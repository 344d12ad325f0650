//! Hyper-parameter search (in progress).
/// stub
pub fn command(_config: &std::path::Path, _workers: Option<usize>, _json: bool) -> anyhow::Result<()> {
    anyhow::bail!("search: not yet implemented")
}
