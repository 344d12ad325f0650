//! `metalearn bench` for the data pipeline: Omniglot load time and episode sampling cost.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use super::episode::{seeded_rng, EpisodeSampler, EpisodeSpec};
use super::error::Result;
use super::idx::load_mnist;
use super::omniglot::{load_omniglot, load_vinyals};

/// Measures (1) loading and resizing the full Omniglot npz pair, (2) loading MNIST if present,
/// (3) sampling 20-way 5-shot 15-query episodes from the Vinyals training split (indices only,
/// and with the images copied), and returns a printable report.
pub fn bench_data(data_dir: &Path) -> Result<String> {
    let mut out = String::new();
    let omni_dir = data_dir.join("omniglot");
    writeln!(out, "data benchmark ({} rayon threads)", rayon::current_num_threads()).ok();

    let t = Instant::now();
    let o = load_omniglot(&omni_dir)?;
    let load = t.elapsed();
    writeln!(
        out,
        "omniglot: loaded + resized {} images ({} characters) to 28x28 in {:.3} s",
        o.images.n,
        o.images.num_classes(),
        load.as_secs_f64()
    )
    .ok();
    drop(o);

    let mnist_dir = data_dir.join("mnist");
    if mnist_dir.is_dir() {
        let t = Instant::now();
        if let Ok(m) = load_mnist(&mnist_dir) {
            writeln!(
                out,
                "mnist: loaded {} + {} images in {:.3} s",
                m.train.n,
                m.test.n,
                t.elapsed().as_secs_f64()
            )
            .ok();
        }
    }

    let v = load_vinyals(&omni_dir)?;
    let spec = EpisodeSpec::new(20, 5, 15)?;
    let sampler = EpisodeSampler::new(&v.train, spec)?;
    let mut rng = seeded_rng(0);
    for _ in 0..20 {
        std::hint::black_box(sampler.sample(&mut rng));
    }
    let reps = 2000;
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(sampler.sample_indices(&mut rng));
    }
    let idx = t.elapsed().as_secs_f64() / reps as f64;
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(sampler.sample(&mut rng));
    }
    let full = t.elapsed().as_secs_f64() / reps as f64;
    writeln!(
        out,
        "episode 20-way 5-shot 15-query from {} classes: {:.1} us (indices only {:.1} us)",
        v.train.num_classes_hint(),
        full * 1e6,
        idx * 1e6
    )
    .ok();
    Ok(out)
}

trait NumClassesHint {
    fn num_classes_hint(&self) -> usize;
}

impl<T: super::dataset::LabelledData> NumClassesHint for T {
    fn num_classes_hint(&self) -> usize {
        self.num_classes()
    }
}
