//! `metalearn bench` for the data pipeline: dataset load times and episode sampling cost.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::data::dataset::LabelledData;
use crate::data::episode::{seeded_rng, EpisodeSampler, EpisodeSpec};
use crate::data::error::Result;
use crate::data::idx::{load_fashion_mnist, load_mnist};
use crate::data::omniglot::{load_omniglot, load_vinyals_split};

/// Mean time per call of `f` over `reps` calls (after 10 warm-up calls).
fn per_call(reps: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed() / reps
}

/// `load()`'s value and the seconds it took.
fn timed<T>(load: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let value = load()?;
    Ok((value, t.elapsed().as_secs_f64()))
}

/// Appends the cost of drawing a 20-way 5-shot 15-query episode from `data`: a new episode,
/// one into reused buffers, and the indices only (mean microseconds per call).
fn sampling_lines<D: LabelledData + ?Sized>(out: &mut String, what: &str, data: &D) -> Result<()> {
    let spec = EpisodeSpec::new(20, 5, 15)?;
    let sampler = EpisodeSampler::new(data, spec)?;
    let mut rng = seeded_rng(0);
    let idx = per_call(2000, || {
        std::hint::black_box(sampler.sample_indices(&mut rng));
    });
    let fresh = per_call(1000, || {
        std::hint::black_box(sampler.sample(&mut rng));
    });
    let mut ep = sampler.sample(&mut rng);
    let reused = per_call(1000, || {
        sampler.sample_into(&mut rng, &mut ep);
        std::hint::black_box(&ep);
    });
    writeln!(
        out,
        "episode 20-way 5-shot 15-query, {what} ({} classes): {:.1} us new, {:.1} us into reused buffers, {:.1} us indices only",
        data.num_classes(),
        fresh.as_secs_f64() * 1e6,
        reused.as_secs_f64() * 1e6,
        idx.as_secs_f64() * 1e6
    )
    .ok();
    Ok(())
}

/// Measures loading (npz decoding + 105->28 area resize of all 32,460 Omniglot images;
/// MNIST and Fashion-MNIST when present) and the cost of drawing 20-way 5-shot 15-query
/// episodes (from the unrotated characters and from the rotated Vinyals training split),
/// and returns a printable report. `data_dir` is the data root (holding `omniglot/`, ...).
pub fn bench_data(data_dir: &Path) -> Result<String> {
    let mut out = String::new();
    let omni_dir = data_dir.join("omniglot");
    writeln!(
        out,
        "data benchmark ({} rayon threads)",
        rayon::current_num_threads()
    )
    .ok();

    let (o, seconds) = timed(|| load_omniglot(&omni_dir))?;
    writeln!(
        out,
        "omniglot: {} images ({} characters) decoded and resized to 28x28 in {seconds:.3} s",
        o.images.n,
        o.images.num_classes(),
    )
    .ok();

    for (name, load) in [
        ("mnist", load_mnist as fn(&Path) -> Result<_>),
        ("fashion-mnist", load_fashion_mnist),
    ] {
        let dir = data_dir.join(name);
        if dir.is_dir() {
            let (m, seconds) = timed(|| load(&dir))?;
            writeln!(
                out,
                "{name}: {} + {} images in {seconds:.3} s",
                m.train.n, m.test.n,
            )
            .ok();
        }
    }

    sampling_lines(&mut out, "Omniglot characters", &o.images)?;
    let split = omni_dir.join("splits").join("vinyals").join("train.txt");
    if split.is_file() {
        let base = std::sync::Arc::new(o.images);
        let train = load_vinyals_split(&base, &split)?;
        sampling_lines(&mut out, "Vinyals train rotations", &train)?;
    }
    Ok(out)
}
