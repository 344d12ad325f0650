//! Training noise: the seed from which stochastic layers (DropBlock, Ghiasi et al. 2018) draw
//! their masks while a learner meta-trains, and nothing otherwise.
//!
//! A backbone is a pure function of its parameters (`embed(params, x)`), so its randomness
//! comes from a scope rather than an argument: [`with_training_noise`] installs a seed on the
//! current thread for the length of a closure (a meta-training step draws it from its explicit
//! generator), and each call of a stochastic backbone inside the scope takes the next seed of
//! that stream ([`next_noise_seed`]). Outside any scope (evaluation, `predict`, `adapt`,
//! gradient checks) there is no seed and stochastic layers are the identity.
//!
//! Determinism: a meta-batch gives task `i` the seed `mix(seed, i)` on whichever thread runs
//! it (`algorithms::meta_batch`), and the calls inside one task run in order on one thread, so
//! every mask is a function of the step's seed, the task's index and the call's position, never
//! of the thread count or scheduling. A scope restores the previous state when it ends (also
//! when a rayon worker runs another task's job while it waits), so scopes nest.

use std::cell::Cell;

thread_local! {
    /// `(seed, calls taken)` of the innermost scope on this thread.
    static NOISE: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// Puts the previous state back when a scope ends.
struct Restore(Option<(u64, u64)>);

impl Drop for Restore {
    fn drop(&mut self) {
        NOISE.with(|n| n.set(self.0));
    }
}

/// Runs `f` with training noise drawn from `seed` on this thread (`None`: without noise, so
/// stochastic layers are the identity inside `f` even within an outer scope); the previous
/// state comes back afterwards.
pub fn with_training_noise<R>(seed: Option<u64>, f: impl FnOnce() -> R) -> R {
    let previous = NOISE.with(|n| n.replace(seed.map(|s| (s, 0))));
    let _restore = Restore(previous);
    f()
}

/// The seed of the innermost scope on this thread (`None` outside any scope), for handing the
/// noise on to work run on other threads.
pub fn training_noise_seed() -> Option<u64> {
    NOISE.with(|n| n.get().map(|(s, _)| s))
}

/// The next seed of this thread's stream, `mix(seed, k)` for the scope's `k`-th call (0, 1,
/// ...), or `None` outside any scope (no noise: evaluation). A stochastic backbone takes one
/// per forward pass.
pub fn next_noise_seed() -> Option<u64> {
    NOISE.with(|n| {
        let (seed, calls) = n.get()?;
        n.set(Some((seed, calls + 1)));
        Some(mix(seed, calls))
    })
}

/// A seed derived from `seed` and an index `k` (SplitMix64's finaliser of `seed + (k + 1) *
/// golden ratio`), so that nearby indices give unrelated streams.
pub fn mix(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add(k.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_count_calls() {
        assert_eq!(next_noise_seed(), None);
        with_training_noise(Some(7), || {
            let a = next_noise_seed();
            let b = next_noise_seed();
            assert_eq!(a, Some(mix(7, 0)));
            assert_eq!(b, Some(mix(7, 1)));
            with_training_noise(None, || assert_eq!(next_noise_seed(), None));
            with_training_noise(Some(9), || assert_eq!(next_noise_seed(), Some(mix(9, 0))));
            assert_eq!(next_noise_seed(), Some(mix(7, 2)));
            assert_eq!(training_noise_seed(), Some(7));
        });
        assert_eq!(training_noise_seed(), None);
    }
}
