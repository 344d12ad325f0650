//! Divergence checks shared by the training commands: a loss that is NaN, infinite or above
//! the config's `train.diverge_loss`, and weights that are not finite, stop a run with an
//! error naming what diverged (no non-finite checkpoint or result is ever written).

use crate::nn::Params;

/// The default divergence threshold of a training loss (`train.diverge_loss` of `metalearn
/// train` and `metalearn mtl`).
pub const DEFAULT_DIVERGE_LOSS: f64 = 1e6;

/// Why the training loss `loss` (named `what` in the message, e.g. `meta-training loss`)
/// counts as divergence: NaN or infinite, or above `threshold` (`train.diverge_loss`); `None`
/// when it does not.
pub fn loss_divergence(what: &str, loss: f64, threshold: f64) -> Option<String> {
    if !loss.is_finite() {
        Some(format!("{what} = {loss}"))
    } else if loss > threshold {
        Some(format!(
            "{what} {loss:.4e} above `train.diverge_loss` = {threshold:e}"
        ))
    } else {
        None
    }
}

/// The first non-finite tensor of a state, as `` `name` holds NaN `` (`None` when every value
/// is finite).
pub fn first_non_finite(state: &Params<f32>) -> Option<String> {
    state.iter().find_map(|(n, t)| {
        t.data()
            .iter()
            .find(|v| !v.is_finite())
            .map(|v| format!("`{n}` holds {v}"))
    })
}
