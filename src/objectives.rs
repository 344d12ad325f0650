//! The objective of each command, by the `kind` a search config names: the one place that
//! knows every command a search can drive (`search` itself knows only [`Objective`]).

use crate::fewshot::FewShot;
use crate::mtl::MultiTask;
use crate::run::Objective;
use crate::search::Kind;
use crate::transfer::Transfer;
use std::path::Path;
use toml::Value;

/// The objective of a base config of `kind` read from `origin` (`base` is its document): a
/// few-shot run, a multi-task run or a transfer experiment. Errors when the base does not
/// load (few-shot: its task decides whether the score is maximised).
pub fn for_kind(kind: Kind, origin: &Path, base: &Value) -> Result<Box<dyn Objective>, String> {
    Ok(match kind {
        Kind::Train => Box::new(FewShot::new(origin, base)?),
        Kind::Mtl => Box::new(MultiTask {
            origin: origin.to_path_buf(),
        }),
        Kind::Transfer => Box::new(Transfer {
            origin: origin.to_path_buf(),
        }),
    })
}
