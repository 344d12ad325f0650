//! Distributed runs: several processes ("ranks") sharing one run, as `mpirun -n N metalearn
//! train ...` starts them (cargo feature `mpi`; README: Multi-process and multi-node).
//!
//! The library talks to the other ranks only through a [`Collective`]: the process's world is
//! [`SingleProcess`] unless the binary installs another ([`install`]; with the feature `mpi`,
//! `metalearn`'s `main` installs `dist::mpi::MpiWorld`). Every rank runs
//! the same program on the same config and seed, so every rank draws the same episodes: no data
//! is sent, only results.
//!
//! - [`map_blocks`]: the fixed contiguous split of `n` items (the tasks of a meta-batch, the
//!   validation and test episodes, the target runs of a transfer, the trials of a search
//!   rung) over the ranks,
//! - [`gather_in_order`]: every rank's share of a list, concatenated in rank order, that is in
//!   item order (each rank gets the whole list),
//! - [`is_root`]: whether this rank writes files and prints (rank 0),
//! - [`fail`]: the end of a rank that errors: the message, naming the rank, and the whole job
//!   stopped at once (the other ranks would otherwise wait for it forever),
//! - [`local`]: a scope whose work is this rank's alone (a search trial): no collective inside.

#[cfg(feature = "mpi")]
pub mod mpi;

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The operations the ranks of a run do together. Every rank must call the same collectives in
/// the same order (a rank that does not comes to [`fail`] instead, which stops them all).
pub trait Collective: Send + Sync {
    /// This process's rank, in `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// The number of ranks on this rank's node (machine): what share of the cores one rank gets.
    fn local_size(&self) -> usize;
    /// Every rank's `local` buffer (they may differ in length), indexed by rank.
    fn all_gather_f32(&self, local: &[f32]) -> Vec<Vec<f32>>;
    /// Every rank's `local` buffer (they may differ in length), indexed by rank.
    fn all_gather_f64(&self, local: &[f64]) -> Vec<Vec<f64>>;
    /// Rank `root`'s `buf` on every rank (its length included).
    fn broadcast_f64(&self, buf: &mut Vec<f64>, root: usize);
    /// Returns once every rank has called it.
    fn barrier(&self);
    /// Stops every rank of the run at once with exit status `code` (the caller prints why
    /// first, as [`fail`] does).
    fn abort(&self, code: i32) -> !;
}

/// The world of one process: rank 0 of 1; gathers return the local buffer, barriers return.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn local_size(&self) -> usize {
        1
    }
    fn all_gather_f32(&self, local: &[f32]) -> Vec<Vec<f32>> {
        vec![local.to_vec()]
    }
    fn all_gather_f64(&self, local: &[f64]) -> Vec<Vec<f64>> {
        vec![local.to_vec()]
    }
    fn broadcast_f64(&self, _buf: &mut Vec<f64>, _root: usize) {}
    fn barrier(&self) {}
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

static WORLD: OnceLock<Box<dyn Collective>> = OnceLock::new();
/// How many [`local`] scopes are open (in any thread).
static LOCAL_SCOPES: AtomicUsize = AtomicUsize::new(0);

/// Makes `world` the process's world (once, before any work; `main` does it under MPI).
/// Returns `world` back when one was installed already.
pub fn install(world: Box<dyn Collective>) -> Result<(), Box<dyn Collective>> {
    WORLD.set(world)
}

/// The process's world: the installed one, or [`SingleProcess`].
pub fn world() -> &'static dyn Collective {
    match WORLD.get() {
        Some(w) => w.as_ref(),
        None => &SingleProcess,
    }
}

/// The world the current work shares: [`world`], or [`SingleProcess`] inside a [`local`]
/// scope.
pub fn active() -> &'static dyn Collective {
    if LOCAL_SCOPES.load(Ordering::SeqCst) > 0 {
        &SingleProcess
    } else {
        world()
    }
}

/// Whether the current work is split over several ranks ([`active`] has more than one).
pub fn is_distributed() -> bool {
    active().size() > 1
}

/// Whether this rank writes the run's files and prints its progress: rank 0, or any rank
/// inside a [`local`] scope.
pub fn is_root() -> bool {
    active().rank() == 0
}

/// Runs `f` as this rank's own work: inside it [`active`] is [`SingleProcess`], so nothing is
/// split or gathered (a search trial that one rank runs alone).
pub fn local<R>(f: impl FnOnce() -> R) -> R {
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            LOCAL_SCOPES.fetch_sub(1, Ordering::SeqCst);
        }
    }
    LOCAL_SCOPES.fetch_add(1, Ordering::SeqCst);
    let _scope = Scope;
    f()
}

/// The items `rank` of `size` handles among `n`: contiguous blocks in rank order, the first
/// `n % size` ranks one item more than the others (`n = 10, size = 3`: `0..4, 4..7, 7..10`;
/// a rank beyond `n` gets an empty range). A function of `(n, size, rank)` alone, so every
/// rank computes every rank's block. `size` must be at least 1 and `rank < size`.
pub fn map_blocks(n: usize, size: usize, rank: usize) -> Range<usize> {
    assert!(
        size >= 1 && rank < size,
        "map_blocks: rank {rank} of {size}"
    );
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start..start + len
}

/// This rank's block of `n` items in the [`active`] world ([`map_blocks`]).
pub fn my_block(n: usize) -> Range<usize> {
    let w = active();
    map_blocks(n, w.size(), w.rank())
}

/// Every rank's `local` values concatenated in rank order: with [`my_block`] shares, the whole
/// list in item order, on every rank.
pub fn gather_in_order_f64(local: &[f64]) -> Vec<f64> {
    active().all_gather_f64(local).concat()
}

/// [`gather_in_order_f64`] for `f32` buffers.
pub fn gather_in_order_f32(local: &[f32]) -> Vec<f32> {
    active().all_gather_f32(local).concat()
}

/// Per-item results of a list of `n` items computed in blocks: `f(range)` computes this rank's
/// block (each item `width` `f64`s, in item order), and every rank gets all `n * width`, in
/// item order. Without other ranks, `f(0..n)` alone.
pub fn gather_in_order(
    n: usize,
    width: usize,
    f: impl FnOnce(Range<usize>) -> Vec<f64>,
) -> Vec<f64> {
    if !is_distributed() {
        return f(0..n);
    }
    let mine = f(my_block(n));
    let all = gather_in_order_f64(&mine);
    assert_eq!(
        all.len(),
        n * width,
        "gather_in_order: a rank sent a wrong share"
    );
    all
}

/// Every rank's `local` strings (e.g. JSON records), concatenated in rank order, on every rank.
/// Sent as numbers: each string's byte count, then its bytes.
pub fn gather_strings(local: &[String]) -> Vec<String> {
    if !is_distributed() {
        return local.to_vec();
    }
    let mut code = Vec::new();
    for s in local {
        code.push(s.len() as f64);
        code.extend(s.bytes().map(f64::from));
    }
    let all = gather_in_order_f64(&code);
    let mut out = Vec::new();
    let mut it = all.into_iter();
    while let Some(len) = it.next() {
        let bytes: Vec<u8> = it.by_ref().take(len as usize).map(|b| b as u8).collect();
        out.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    out
}

/// The end of a rank that cannot go on: prints `error: rank R of N: message` (or `error:
/// message` alone in one process) and stops the whole run with exit status 1, so no rank waits
/// for this one forever.
pub fn fail(message: &str) -> ! {
    let w = world();
    if w.size() > 1 {
        eprintln!(
            "error: rank {} of {}: {message} (stopping all ranks)",
            w.rank(),
            w.size()
        );
        // The launcher forwards a rank's output asynchronously, and the abort kills its
        // forwarders too: give the message a moment to get out first.
        std::thread::sleep(std::time::Duration::from_millis(500));
    } else {
        eprintln!("error: {message}");
    }
    w.abort(1)
}

/// The default `--threads` of a rank: the node's cores shared by the ranks on the node (at
/// least 1).
pub fn default_threads(cores: usize, ranks_on_node: usize) -> usize {
    (cores / ranks_on_node.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks of every rank, against an independent count: they tile `0..n` in order
    /// and their lengths differ by at most one, larger first.
    #[test]
    fn blocks_tile_the_items_in_rank_order() {
        for n in 0..40 {
            for size in 1..9 {
                let blocks: Vec<_> = (0..size).map(|r| map_blocks(n, size, r)).collect();
                let flat: Vec<usize> = blocks.iter().flat_map(|b| b.clone()).collect();
                assert_eq!(flat, (0..n).collect::<Vec<_>>(), "n {n} size {size}");
                let lens: Vec<usize> = blocks.iter().map(|b| b.len()).collect();
                let (min, max) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                assert!(max - min <= 1, "n {n} size {size}: {lens:?}");
                assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{lens:?}");
                assert_eq!(lens.iter().sum::<usize>(), n);
            }
        }
    }

    #[test]
    fn blocks_of_known_splits() {
        assert_eq!(map_blocks(10, 3, 0), 0..4);
        assert_eq!(map_blocks(10, 3, 1), 4..7);
        assert_eq!(map_blocks(10, 3, 2), 7..10);
        assert_eq!(map_blocks(32, 2, 1), 16..32);
        assert_eq!(map_blocks(1, 3, 0), 0..1);
        assert!(map_blocks(1, 3, 2).is_empty());
        assert_eq!(map_blocks(5, 1, 0), 0..5);
    }

    #[test]
    #[should_panic(expected = "map_blocks")]
    fn a_rank_outside_the_world_is_refused() {
        let _ = map_blocks(4, 2, 2);
    }

    #[test]
    fn one_process_gathers_its_own_share() {
        let w = SingleProcess;
        assert_eq!((w.rank(), w.size()), (0, 1));
        assert_eq!(w.all_gather_f64(&[1.0, 2.0]), vec![vec![1.0, 2.0]]);
        assert_eq!(w.all_gather_f32(&[3.0]), vec![vec![3.0f32]]);
        assert_eq!(
            gather_in_order(3, 1, |r| r.map(|i| i as f64).collect()),
            [0.0, 1.0, 2.0]
        );
        assert!(is_root());
        assert!(local(is_root));
        let s = vec!["a\u{e9}".to_string(), String::new()];
        assert_eq!(gather_strings(&s), s);
    }

    #[test]
    fn threads_share_the_cores_of_a_node() {
        assert_eq!(default_threads(16, 4), 4);
        assert_eq!(default_threads(2, 2), 1);
        assert_eq!(default_threads(2, 3), 1);
        assert_eq!(default_threads(8, 0), 8);
        assert_eq!(default_threads(7, 2), 3);
    }
}
