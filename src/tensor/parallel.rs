//! Intra-op parallelism whose results do not depend on the thread count.
//!
//! An op cuts its work into chunks fixed by its shapes alone (never by the number of threads),
//! runs the same code on each chunk whether the chunks run in parallel or one after another,
//! and combines partial results of a reduction in chunk order. So a run gives the same bits on
//! 1, 2 or 64 threads, and switching parallelism on or off changes only the speed.
//!
//! Whether an op's chunks run in parallel (on the current rayon pool, the one `--threads`
//! sizes): outside the pool's workers (the main thread) always, when the pool has more than one
//! thread and the op is large enough; inside a pool job (one task of a meta-batch, one
//! evaluation episode) only where the job allows it with [`with_op_splitting`]: tasks come
//! first, and an op inside a task only takes workers that the tasks leave idle (a meta-batch
//! with fewer tasks than threads, or a last round of tasks that does not fill them), so
//! task-level and op-level parallelism share one pool without oversubscription.

use rayon::prelude::*;
use std::cell::Cell;

/// Work units (roughly floating-point operations or elements touched) below which an op runs
/// its chunks on the calling thread: a rayon split costs a few microseconds.
pub(crate) const MIN_PARALLEL_WORK: usize = 1 << 16;

/// Multiply-adds of a matrix product per work unit: vectorised and cache-blocked, they cost
/// about a sixteenth of an element of a memory-bound elementwise pass.
const MACS_PER_UNIT: usize = 16;

/// The work units of a matrix product (or convolution) of `macs` multiply-adds.
pub(crate) fn product_work(macs: usize) -> usize {
    macs / MACS_PER_UNIT
}

thread_local! {
    /// Whether ops called from the current pool job may split (see [`with_op_splitting`]).
    static SPLIT_IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous splitting permission when dropped.
struct SplitGuard(bool);

impl Drop for SplitGuard {
    fn drop(&mut self) {
        SPLIT_IN_JOB.with(|s| s.set(self.0));
    }
}

/// Runs `f` with the ops it calls on this thread allowed (or not) to split their work over the
/// pool's idle workers, even inside a pool job. Results are the same either way.
pub fn with_op_splitting<R>(allow: bool, f: impl FnOnce() -> R) -> R {
    let _guard = SplitGuard(SPLIT_IN_JOB.with(|s| s.replace(allow)));
    f()
}

/// Whether jobs that run `jobs` independent tasks side by side should let their ops split: when
/// the tasks leave workers idle (fewer tasks than threads, or a last round that does not fill
/// them).
pub fn tasks_leave_workers_idle(jobs: usize) -> bool {
    let threads = rayon::current_num_threads();
    threads > 1 && (jobs < threads || jobs % threads != 0)
}

/// Whether an op with `work` units in `chunks` chunks should run them in parallel now.
pub(crate) fn should_split(work: usize, chunks: usize) -> bool {
    chunks > 1
        && work >= MIN_PARALLEL_WORK
        && rayon::current_num_threads() > 1
        && (rayon::current_thread_index().is_none() || SPLIT_IN_JOB.with(|s| s.get()))
}

/// Calls `f(scratch, i, chunk)` for every consecutive `chunk_len`-long chunk `i` of `out` (the
/// last may be shorter), in parallel when [`should_split`] says so for `work` units. `scratch`
/// makes a worker's scratch space (called once per worker run, so `f` must not expect it
/// zeroed between chunks).
pub(crate) fn for_each_chunk<T, S>(
    out: &mut [T],
    chunk_len: usize,
    work: usize,
    scratch: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) where
    T: Send,
{
    let chunk_len = chunk_len.max(1);
    if should_split(work, out.len().div_ceil(chunk_len)) {
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each_init(scratch, |s, (i, c)| f(s, i, c));
    } else {
        let mut s = scratch();
        for (i, c) in out.chunks_mut(chunk_len).enumerate() {
            f(&mut s, i, c);
        }
    }
}

/// Calls `f(k, a_item, b_item)` for every `per_item`-long item `k` of two equal-length outputs
/// (e.g. the values and arg-max offsets of pooled planes), grouped into chunks of about
/// [`ELEMENTWISE_CHUNK`] elements that run in parallel when [`should_split`] says so for
/// `work` units.
pub(crate) fn for_each_chunk2<A: Send, B: Send>(
    a: &mut [A],
    b: &mut [B],
    per_item: usize,
    work: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    let per_item = per_item.max(1);
    debug_assert_eq!(a.len(), b.len());
    let items_per_chunk = ELEMENTWISE_CHUNK.div_ceil(per_item);
    let len = items_per_chunk * per_item;
    let run = |i: usize, ca: &mut [A], cb: &mut [B]| {
        let chunks = ca.chunks_mut(per_item).zip(cb.chunks_mut(per_item));
        for (k, (ia, ib)) in chunks.enumerate() {
            f(i * items_per_chunk + k, ia, ib);
        }
    };
    if should_split(work, a.len().div_ceil(len)) {
        a.par_chunks_mut(len)
            .zip(b.par_chunks_mut(len))
            .enumerate()
            .for_each(|(i, (ca, cb))| run(i, ca, cb));
    } else {
        run(0, a, b);
    }
}

/// Elements per chunk of the elementwise ops (a fixed size, so their chunks do not depend on
/// the thread count; elementwise results would not anyway).
pub(crate) const ELEMENTWISE_CHUNK: usize = 1 << 15;

/// A fresh `len`-long vector filled by `fill(start, chunk)` over its [`ELEMENTWISE_CHUNK`]-long
/// chunks (`start` = the chunk's first index), in parallel.
fn fill_in_chunks<R: Copy + Send + Default>(
    len: usize,
    fill: impl Fn(usize, &mut [R]) + Sync + Send,
) -> Vec<R> {
    let mut out = vec![R::default(); len];
    for_each_chunk(
        &mut out,
        ELEMENTWISE_CHUNK,
        len,
        || (),
        |_, i, chunk| fill(i * ELEMENTWISE_CHUNK, chunk),
    );
    out
}

/// Whether an elementwise pass over `len` elements should split.
fn split_elementwise(len: usize) -> bool {
    should_split(len, len.div_ceil(ELEMENTWISE_CHUNK))
}

/// `out[i] = f(i)` for every `i` (a fresh vector of `len` elements), in parallel chunks when
/// large.
pub(crate) fn fill_indexed<T: Copy + Send + Default>(
    len: usize,
    f: impl Fn(usize) -> T + Sync + Send,
) -> Vec<T> {
    if !split_elementwise(len) {
        return (0..len).map(f).collect();
    }
    fill_in_chunks(len, |start, chunk| {
        for (k, v) in chunk.iter_mut().enumerate() {
            *v = f(start + k);
        }
    })
}

/// `[f(a[0]), f(a[1]), ...]`, in parallel chunks when large.
pub(crate) fn map_slice<T: Copy + Sync, R: Copy + Send + Default>(
    a: &[T],
    f: impl Fn(T) -> R + Sync + Send,
) -> Vec<R> {
    if !split_elementwise(a.len()) {
        return a.iter().map(|&v| f(v)).collect();
    }
    fill_in_chunks(a.len(), |start, chunk| {
        for (o, &v) in chunk.iter_mut().zip(&a[start..]) {
            *o = f(v);
        }
    })
}

/// `[f(a[0], b[0]), f(a[1], b[1]), ...]` for equal-length slices, in parallel chunks when
/// large.
pub(crate) fn zip_slices<T: Copy + Sync, R: Copy + Send + Default>(
    a: &[T],
    b: &[T],
    f: impl Fn(T, T) -> R + Sync + Send,
) -> Vec<R> {
    debug_assert_eq!(a.len(), b.len());
    if !split_elementwise(a.len()) {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    fill_in_chunks(a.len(), |start, chunk| {
        for ((o, &x), &y) in chunk.iter_mut().zip(&a[start..]).zip(&b[start..]) {
            *o = f(x, y);
        }
    })
}

/// `dst[i] += src[i]` for equal-length slices, in parallel chunks when large.
pub(crate) fn add_assign<T: super::Float>(dst: &mut [T], src: &[T]) {
    debug_assert_eq!(dst.len(), src.len());
    let len = dst.len();
    for_each_chunk(
        dst,
        ELEMENTWISE_CHUNK,
        len,
        || (),
        |_, i, chunk| {
            let from = &src[i * ELEMENTWISE_CHUNK..i * ELEMENTWISE_CHUNK + chunk.len()];
            for (a, &b) in chunk.iter_mut().zip(from) {
                *a += b;
            }
        },
    );
}

/// Most parts a reduction over many items is cut into (see [`sum_parts`]).
pub(crate) const MAX_PARTS: usize = 8;

/// Least work units per part of [`sum_parts`].
const MIN_PART_WORK: usize = 1 << 20;

/// A reduction over `items` items, each a `len`-long vector: cuts the items into at most
/// [`MAX_PARTS`] consecutive parts (how many depends on `items` and `work` only), lets
/// `f(scratch, range, partial)` write each part's sum of its `range` of items into a
/// `len`-long `partial`, and returns the partials added in part order.
pub(crate) fn sum_parts<T: super::Float, S>(
    items: usize,
    len: usize,
    work: usize,
    scratch: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, std::ops::Range<usize>, &mut [T]) + Sync + Send,
) -> Vec<T> {
    let parts = (work / MIN_PART_WORK).clamp(1, MAX_PARTS.min(items.max(1)));
    let per_part = items.div_ceil(parts).max(1);
    let parts = items.div_ceil(per_part).max(1);
    let mut partials = vec![T::zero(); parts * len];
    for_each_chunk(&mut partials, len.max(1), work, scratch, |s, p, partial| {
        f(s, p * per_part..((p + 1) * per_part).min(items), partial)
    });
    let (first, rest) = partials.split_at_mut(len);
    for partial in rest.chunks_exact(len.max(1)) {
        for (a, &b) in first.iter_mut().zip(partial) {
            *a += b;
        }
    }
    partials.truncate(len);
    partials
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
    }

    #[test]
    fn chunks_cover_the_output_in_order_at_any_thread_count() {
        for threads in [1, 2, 3] {
            let mut out = vec![0usize; 100_003];
            pool(threads).install(|| {
                with_op_splitting(true, || {
                    for_each_chunk(
                        &mut out,
                        1000,
                        usize::MAX,
                        || (),
                        |_, i, c| {
                            for (k, v) in c.iter_mut().enumerate() {
                                *v = i * 1000 + k;
                            }
                        },
                    )
                })
            });
            assert!(out.iter().enumerate().all(|(i, &v)| i == v), "{threads}");
        }
    }

    #[test]
    fn part_sums_do_not_depend_on_the_thread_count() {
        let x: Vec<f32> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect();
        let run = |threads: usize| {
            pool(threads).install(|| {
                with_op_splitting(true, || {
                    sum_parts(
                        100,
                        3,
                        1 << 24,
                        || (),
                        |_, range, partial: &mut [f32]| {
                            for item in range {
                                for (k, v) in partial.iter_mut().enumerate() {
                                    *v += x[item * 100 + k];
                                }
                            }
                        },
                    )
                })
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
        let direct: Vec<f32> = (0..3)
            .map(|k| (0..100).map(|i| x[i * 100 + k] as f64).sum::<f64>() as f32)
            .collect();
        for (a, b) in one.iter().zip(&direct) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn jobs_split_only_where_allowed() {
        let p = pool(2);
        assert!(!p.install(|| should_split(usize::MAX, 4)));
        assert!(p.install(|| with_op_splitting(true, || should_split(usize::MAX, 4))));
        assert!(!p.install(|| with_op_splitting(true, || should_split(10, 4))));
        assert!(!pool(1).install(|| with_op_splitting(true, || should_split(usize::MAX, 4))));
    }
}
