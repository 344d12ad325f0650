//! N-way K-shot episodes: a seeded, machine-independent sampler, fixed evaluation sets
//! and class-disjoint splits.
//!
//! # Layout of an episode
//! Classes are drawn without replacement; class `k` of the episode (`k in 0..N`) gets label
//! `k`. From each class `K + Q` distinct examples are drawn without replacement: the first
//! `K` go to the support set, the other `Q` to the query set. Both sets are **class-major**:
//! support row `k * K + s` is shot `s` of class `k`, query row `k * Q + q` is query `q` of
//! class `k`.
//!
//! # Determinism
//! All randomness comes from the caller's RNG through [`rand::RngCore`] words and this
//! module's own unbiased bounded sampling and partial Fisher-Yates shuffles, so with a
//! [`ChaCha8Rng`] (portable, value-stable) the same seed gives the same episodes on any
//! machine and any `usize` width.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::dataset::{class_positions, ClassIndex, LabelledData};
use super::error::{DataError, Result};

/// A seeded ChaCha8 generator: the RNG this module's determinism guarantee is stated for.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A uniform integer in `0..n`, unbiased (Lemire's method on 64-bit words). Panics if `n == 0`.
pub fn uniform_below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    assert!(n > 0, "uniform_below(0)");
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// Moves a uniformly random `k`-subset of `items` (in random order) to its front
/// (partial Fisher-Yates). `k` is clamped to `items.len()`.
pub fn partial_shuffle<T, R: RngCore + ?Sized>(items: &mut [T], k: usize, rng: &mut R) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + uniform_below(rng, (n - i) as u64) as usize;
        items.swap(i, j);
    }
}

/// The shape of an episode: N classes, K support and Q query examples per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpisodeSpec {
    /// N: classes per episode.
    pub n_way: usize,
    /// K: support examples per class.
    pub k_shot: usize,
    /// Q: query examples per class.
    pub q_query: usize,
}

impl EpisodeSpec {
    /// An N-way K-shot Q-query spec; N and K must be positive (Q may be 0).
    pub fn new(n_way: usize, k_shot: usize, q_query: usize) -> Result<Self> {
        let s = EpisodeSpec {
            n_way,
            k_shot,
            q_query,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks that N and K are positive.
    pub fn validate(&self) -> Result<()> {
        if self.n_way == 0 || self.k_shot == 0 {
            return Err(DataError::InvalidArgument(format!(
                "episode spec needs N >= 1 and K >= 1, got N = {}, K = {}",
                self.n_way, self.k_shot
            )));
        }
        Ok(())
    }

    /// K + Q, the examples taken from each class.
    pub fn per_class(&self) -> usize {
        self.k_shot + self.q_query
    }
}

/// Which examples make up an episode (indices into the dataset), without the data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpisodeIndices {
    /// Dataset class of each episode label: `classes[k]` is relabelled `k`.
    pub classes: Vec<usize>,
    /// Dataset indices of the support examples, class-major (`k * K + s`).
    pub support: Vec<usize>,
    /// Dataset indices of the query examples, class-major (`k * Q + q`).
    pub query: Vec<usize>,
}

/// A materialised episode. `support_x` has shape `[N*K, ..example_shape]` (e.g.
/// `[N*K, C, H, W]`), `query_x` `[N*Q, ..example_shape]`, both row-major and class-major;
/// labels are in `0..N`.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The spec it was drawn with.
    pub spec: EpisodeSpec,
    /// The shape of one example.
    pub example_shape: Vec<usize>,
    /// Support inputs, `[N*K, ..example_shape]`.
    pub support_x: Vec<f32>,
    /// Support labels (`support_y[k * K + s] == k`).
    pub support_y: Vec<usize>,
    /// Query inputs, `[N*Q, ..example_shape]`.
    pub query_x: Vec<f32>,
    /// Query labels (`query_y[k * Q + q] == k`).
    pub query_y: Vec<usize>,
    /// Where the examples came from.
    pub indices: EpisodeIndices,
}

impl Episode {
    /// `[N*K, ..example_shape]`.
    pub fn support_shape(&self) -> Vec<usize> {
        std::iter::once(self.support_y.len())
            .chain(self.example_shape.iter().copied())
            .collect()
    }

    /// `[N*Q, ..example_shape]`.
    pub fn query_shape(&self) -> Vec<usize> {
        std::iter::once(self.query_y.len())
            .chain(self.example_shape.iter().copied())
            .collect()
    }

    /// `[N*K, C, H, W]` for image episodes (a 1-D example `[D]` gives `[N*K, 1, 1, D]`,
    /// `[H, W]` gives `[N*K, 1, H, W]`); `None` for examples of more than 3 dimensions.
    pub fn support_shape4(&self) -> Option<[usize; 4]> {
        shape4(self.support_y.len(), &self.example_shape)
    }

    /// `[N*Q, C, H, W]`, as [`Self::support_shape4`].
    pub fn query_shape4(&self) -> Option<[usize; 4]> {
        shape4(self.query_y.len(), &self.example_shape)
    }

    /// The values of one example.
    pub fn example_len(&self) -> usize {
        self.example_shape.iter().product()
    }
}

fn shape4(n: usize, s: &[usize]) -> Option<[usize; 4]> {
    match *s {
        [d] => Some([n, 1, 1, d]),
        [h, w] => Some([n, 1, h, w]),
        [c, h, w] => Some([n, c, h, w]),
        _ => None,
    }
}

/// Draws episodes from the classes of a [`LabelledData`] (all of them or a chosen subset).
///
/// Two optional constraints change how an episode is drawn (without them it is drawn exactly
/// as described in the module documentation):
/// - [`EpisodeSampler::group_by`]: all N classes of an episode come from one group (e.g. one
///   Omniglot alphabet);
/// - [`EpisodeSampler::disjoint_drawers`]: every support example of an episode comes from one
///   of K drawers shared by all its classes, and every query from another drawer.
#[derive(Debug, Clone)]
pub struct EpisodeSampler<'a, D: LabelledData + ?Sized> {
    data: &'a D,
    spec: EpisodeSpec,
    classes: Vec<usize>,
    index: ClassIndex,
    example_shape: Vec<usize>,
    groups: Option<Groups>,
    drawers: Option<Drawers>,
}

/// The groups an episode may be drawn from: the sampler's classes of each group that has at
/// least N of them, groups in ascending id order, classes in the sampler's order.
#[derive(Debug, Clone)]
struct Groups {
    eligible: Vec<Vec<usize>>,
}

/// The drawer structure of the sampler's classes.
#[derive(Debug, Clone)]
struct Drawers {
    /// Drawers that every class of the sampler has at least one example of, ascending.
    common: Vec<u32>,
    /// Per dataset class: `(drawer, example)` of each example, sorted (empty for classes the
    /// sampler does not use).
    by_class: Vec<Vec<(u32, usize)>>,
}

impl<'a, D: LabelledData + ?Sized> EpisodeSampler<'a, D> {
    /// A sampler over every class of `data`.
    pub fn new(data: &'a D, spec: EpisodeSpec) -> Result<Self> {
        Self::with_classes(data, spec, &(0..data.num_classes()).collect::<Vec<_>>())
    }

    /// A sampler over the given classes of `data` only (e.g. one split).
    ///
    /// Errors if N exceeds the number of classes, if a class has fewer than K + Q examples,
    /// or if `classes` repeats or exceeds the dataset's classes.
    pub fn with_classes(data: &'a D, spec: EpisodeSpec, classes: &[usize]) -> Result<Self> {
        spec.validate()?;
        let index = ClassIndex::of(data);
        class_positions(classes, data.num_classes(), "listed")?;
        let dataset = format!("dataset of {} examples", data.len());
        if spec.n_way > classes.len() {
            return Err(DataError::NotEnoughClasses {
                dataset,
                requested: spec.n_way,
                available: classes.len(),
            });
        }
        if let Some(&c) = classes
            .iter()
            .find(|&&c| index.examples(c).len() < spec.per_class())
        {
            return Err(DataError::NotEnoughExamples {
                dataset,
                class: data.class_name(c),
                needed: spec.per_class(),
                available: index.examples(c).len(),
            });
        }
        Ok(EpisodeSampler {
            data,
            spec,
            classes: classes.to_vec(),
            index,
            example_shape: data.example_shape(),
            groups: None,
            drawers: None,
        })
    }

    /// Draws every episode from one group: `class_group[c]` is the group of dataset class `c`
    /// (e.g. its alphabet). An episode first picks a group uniformly among the groups holding
    /// at least N of the sampler's classes, then N of that group's classes uniformly.
    ///
    /// Errors if `class_group` does not have one entry per dataset class, or if no group holds
    /// N of the sampler's classes (the message gives the largest group's size).
    pub fn group_by(mut self, class_group: &[usize]) -> Result<Self> {
        if class_group.len() != self.data.num_classes() {
            return Err(DataError::InvalidArgument(format!(
                "class groups: expected one group per class ({} classes), found {}",
                self.data.num_classes(),
                class_group.len()
            )));
        }
        let mut by_group: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for &c in &self.classes {
            by_group.entry(class_group[c]).or_default().push(c);
        }
        let largest = by_group.values().map(Vec::len).max().unwrap_or(0);
        let eligible: Vec<Vec<usize>> = by_group
            .into_values()
            .filter(|g| g.len() >= self.spec.n_way)
            .collect();
        if eligible.is_empty() {
            return Err(DataError::InvalidArgument(format!(
                "no group has N = {} classes (the largest has {largest})",
                self.spec.n_way
            )));
        }
        self.groups = Some(Groups { eligible });
        Ok(self)
    }

    /// The number of groups an episode can be drawn from (`None` without [`Self::group_by`]).
    pub fn eligible_groups(&self) -> Option<usize> {
        self.groups.as_ref().map(|g| g.eligible.len())
    }

    /// Draws support and query from different drawers: `example_drawer[i]` is the drawer
    /// (e.g. the person who drew it) of dataset example `i`. An episode picks K distinct
    /// drawers uniformly among those every class of the sampler has; support shot `s` of every
    /// class is that class's example by drawer `s` of the K (one uniformly, if it has several),
    /// and the Q queries of a class are drawn uniformly from its examples by the other drawers.
    ///
    /// Errors if `example_drawer` does not have one entry per example, if the classes share
    /// fewer than K drawers, or if a class could be left with fewer than Q query examples.
    pub fn disjoint_drawers(mut self, example_drawer: &[u32]) -> Result<Self> {
        if example_drawer.len() != self.data.len() {
            return Err(DataError::InvalidArgument(format!(
                "drawers: expected one drawer per example ({} examples), found {}",
                self.data.len(),
                example_drawer.len()
            )));
        }
        let mut by_class = vec![Vec::new(); self.data.num_classes()];
        let mut common: Option<Vec<u32>> = None;
        for &c in &self.classes {
            let mut entries: Vec<(u32, usize)> = self
                .index
                .examples(c)
                .iter()
                .map(|&i| (example_drawer[i], i))
                .collect();
            entries.sort_unstable();
            let mut mine: Vec<u32> = entries.iter().map(|e| e.0).collect();
            mine.dedup();
            common = Some(match common {
                None => mine,
                Some(prev) => prev.into_iter().filter(|d| mine.contains(d)).collect(),
            });
            by_class[c] = entries;
        }
        let drawers = Drawers {
            common: common.unwrap_or_default(),
            by_class,
        };
        drawers.check(self.data, &self.classes, self.spec)?;
        self.drawers = Some(drawers);
        Ok(self)
    }

    /// The spec.
    pub fn spec(&self) -> EpisodeSpec {
        self.spec
    }

    /// The classes episodes are drawn from.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// The dataset.
    pub fn data(&self) -> &'a D {
        self.data
    }

    /// Draws the indices of one episode: the classes (from one group with
    /// [`Self::group_by`]), then the support drawers (with [`Self::disjoint_drawers`]), then
    /// each class's examples in episode order.
    pub fn sample_indices<R: RngCore + ?Sized>(&self, rng: &mut R) -> EpisodeIndices {
        let EpisodeSpec {
            n_way,
            k_shot,
            q_query,
        } = self.spec;
        let mut classes = match &self.groups {
            None => self.classes.clone(),
            Some(g) => g.eligible[uniform_below(rng, g.eligible.len() as u64) as usize].clone(),
        };
        partial_shuffle(&mut classes, n_way, rng);
        classes.truncate(n_way);
        let mut support = Vec::with_capacity(n_way * k_shot);
        let mut query = Vec::with_capacity(n_way * q_query);
        let mut scratch = Vec::new();
        if let Some(d) = &self.drawers {
            let mut chosen = d.common.clone();
            partial_shuffle(&mut chosen, k_shot, rng);
            chosen.truncate(k_shot);
            for &c in &classes {
                d.draw(c, &chosen, q_query, rng, (&mut support, &mut query));
            }
        } else {
            for &c in &classes {
                scratch.clear();
                scratch.extend_from_slice(self.index.examples(c));
                partial_shuffle(&mut scratch, k_shot + q_query, rng);
                support.extend_from_slice(&scratch[..k_shot]);
                query.extend_from_slice(&scratch[k_shot..k_shot + q_query]);
            }
        }
        EpisodeIndices {
            classes,
            support,
            query,
        }
    }

    /// Draws one episode.
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> Episode {
        let idx = self.sample_indices(rng);
        self.materialize_unchecked(idx)
    }

    /// Draws one episode into `episode`, reusing its buffers (avoids allocating about
    /// `N * (K + Q)` examples' worth of memory per episode in tight loops).
    pub fn sample_into<R: RngCore + ?Sized>(&self, rng: &mut R, episode: &mut Episode) {
        episode.indices = self.sample_indices(rng);
        episode.spec = self.spec;
        episode.example_shape.clone_from(&self.example_shape);
        fill_episode(self.data, episode);
    }

    /// Draws a meta-batch of `batch` episodes (indices drawn in order from `rng`, data copied
    /// in parallel).
    pub fn sample_batch<R: RngCore + ?Sized>(&self, rng: &mut R, batch: usize) -> Vec<Episode>
    where
        D: Sync,
    {
        let idx: Vec<EpisodeIndices> = (0..batch).map(|_| self.sample_indices(rng)).collect();
        idx.into_par_iter()
            .map(|i| self.materialize_unchecked(i))
            .collect()
    }

    /// Copies the examples of `indices` into an [`Episode`], checking them against the dataset.
    pub fn materialize(&self, indices: &EpisodeIndices) -> Result<Episode> {
        check_indices(self.data, &self.spec, indices)?;
        Ok(self.materialize_unchecked(indices.clone()))
    }

    fn materialize_unchecked(&self, indices: EpisodeIndices) -> Episode {
        build_episode(self.data, self.spec, self.example_shape.clone(), indices)
    }
}

impl Drawers {
    /// Checks that the classes share K drawers and that every class keeps Q query examples
    /// whichever K shared drawers give the support.
    fn check<D: LabelledData + ?Sized>(
        &self,
        data: &D,
        classes: &[usize],
        spec: EpisodeSpec,
    ) -> Result<()> {
        if self.common.len() < spec.k_shot {
            return Err(DataError::InvalidArgument(format!(
                "the classes share {} drawers, fewer than K = {} support drawers",
                self.common.len(),
                spec.k_shot
            )));
        }
        for &c in classes {
            let entries = &self.by_class[c];
            let mut per_drawer: Vec<usize> = self
                .common
                .iter()
                .map(|d| entries.iter().filter(|e| e.0 == *d).count())
                .collect();
            per_drawer.sort_unstable_by(|a, b| b.cmp(a));
            let worst = entries.len() - per_drawer.iter().take(spec.k_shot).sum::<usize>();
            if worst < spec.q_query {
                return Err(DataError::InvalidArgument(format!(
                    "class {} has {} examples, so K = {} support drawers can leave it {worst} \
                     examples by other drawers, fewer than Q = {}",
                    data.class_name(c),
                    entries.len(),
                    spec.k_shot,
                    spec.q_query
                )));
            }
        }
        Ok(())
    }

    /// Appends class `c`'s support (one example per drawer of `chosen`, in order) and `q`
    /// queries drawn from its examples by the other drawers.
    fn draw<R: RngCore + ?Sized>(
        &self,
        c: usize,
        chosen: &[u32],
        q: usize,
        rng: &mut R,
        (support, query): (&mut Vec<usize>, &mut Vec<usize>),
    ) {
        let entries = &self.by_class[c];
        for d in chosen {
            let lo = entries.partition_point(|e| e.0 < *d);
            let hi = entries.partition_point(|e| e.0 <= *d);
            let pick = match hi - lo {
                1 => 0,
                n => uniform_below(rng, n as u64) as usize,
            };
            support.push(entries[lo + pick].1);
        }
        let mut rest: Vec<usize> = entries
            .iter()
            .filter(|e| !chosen.contains(&e.0))
            .map(|e| e.1)
            .collect();
        partial_shuffle(&mut rest, q, rng);
        query.extend_from_slice(&rest[..q]);
    }
}

fn build_episode<D: LabelledData + ?Sized>(
    data: &D,
    spec: EpisodeSpec,
    example_shape: Vec<usize>,
    indices: EpisodeIndices,
) -> Episode {
    let mut ep = Episode {
        spec,
        example_shape,
        support_x: Vec::new(),
        support_y: Vec::new(),
        query_x: Vec::new(),
        query_y: Vec::new(),
        indices,
    };
    fill_episode(data, &mut ep);
    ep
}

/// Refills the data and labels of `ep` from `ep.indices`, reusing its buffers.
fn fill_episode<D: LabelledData + ?Sized>(data: &D, ep: &mut Episode) {
    let len: usize = ep.example_shape.iter().product();
    let fill = |ids: &[usize], x: &mut Vec<f32>| {
        x.clear();
        x.reserve(ids.len() * len);
        for &i in ids {
            data.extend_example(i, len, x);
        }
    };
    fill(&ep.indices.support, &mut ep.support_x);
    fill(&ep.indices.query, &mut ep.query_x);
    let EpisodeSpec {
        n_way,
        k_shot,
        q_query,
    } = ep.spec;
    ep.support_y.clear();
    ep.support_y
        .extend((0..n_way).flat_map(|k| std::iter::repeat_n(k, k_shot)));
    ep.query_y.clear();
    ep.query_y
        .extend((0..n_way).flat_map(|k| std::iter::repeat_n(k, q_query)));
}

fn check_indices<D: LabelledData + ?Sized>(
    data: &D,
    spec: &EpisodeSpec,
    idx: &EpisodeIndices,
) -> Result<()> {
    let bad = |why: String| {
        Err(DataError::InvalidArgument(format!(
            "episode indices do not fit this dataset: {why}"
        )))
    };
    if idx.classes.len() != spec.n_way
        || idx.support.len() != spec.n_way * spec.k_shot
        || idx.query.len() != spec.n_way * spec.q_query
    {
        return bad(format!(
            "expected {} classes, {} support and {} query indices, found {}, {}, {}",
            spec.n_way,
            spec.n_way * spec.k_shot,
            spec.n_way * spec.q_query,
            idx.classes.len(),
            idx.support.len(),
            idx.query.len()
        ));
    }
    let (k, q) = (spec.k_shot, spec.q_query);
    for (c, &class) in idx.classes.iter().enumerate() {
        for (what, ids) in [
            ("support", &idx.support[c * k..(c + 1) * k]),
            ("query", &idx.query[c * q..(c + 1) * q]),
        ] {
            if let Some(&i) = ids
                .iter()
                .find(|&&i| i >= data.len() || data.label(i) != class)
            {
                return bad(format!(
                    "{what} index {i} is not an example of class {class}"
                ));
            }
        }
    }
    Ok(())
}

/// A fixed, reproducible list of episodes (indices only), e.g. the evaluation episodes every
/// method is compared on. Episode `i` is drawn with `ChaCha8Rng::seed_from_u64(seed)` on
/// stream `i`, so it does not depend on `count`. Serialisable with serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeSet {
    /// The spec of every episode.
    pub spec: EpisodeSpec,
    /// The seed it was drawn from.
    pub seed: u64,
    /// The number of examples of the dataset it was drawn from (a sanity check).
    pub dataset_len: usize,
    /// The episodes.
    pub episodes: Vec<EpisodeIndices>,
}

impl EpisodeSet {
    /// `count` episodes over every class of `data`.
    pub fn fixed<D: LabelledData + ?Sized>(
        data: &D,
        spec: EpisodeSpec,
        count: usize,
        seed: u64,
    ) -> Result<Self> {
        Ok(Self::from_sampler(
            &EpisodeSampler::new(data, spec)?,
            count,
            seed,
        ))
    }

    /// `count` episodes from a sampler (e.g. one restricted to the test classes).
    pub fn from_sampler<D: LabelledData + ?Sized>(
        sampler: &EpisodeSampler<'_, D>,
        count: usize,
        seed: u64,
    ) -> Self {
        let episodes = (0..count)
            .map(|i| {
                let mut rng = seeded_rng(seed);
                rng.set_stream(i as u64);
                sampler.sample_indices(&mut rng)
            })
            .collect();
        EpisodeSet {
            spec: sampler.spec(),
            seed,
            dataset_len: sampler.data().len(),
            episodes,
        }
    }

    /// The number of episodes.
    pub fn len(&self) -> usize {
        self.episodes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.episodes.is_empty()
    }

    /// Materialises episode `i` from `data` (which must be the dataset it was drawn from).
    pub fn episode<D: LabelledData + ?Sized>(&self, data: &D, i: usize) -> Result<Episode> {
        let idx = self.episodes.get(i).ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "episode {i} out of range for a set of {}",
                self.episodes.len()
            ))
        })?;
        if data.len() != self.dataset_len {
            return Err(DataError::InvalidArgument(format!(
                "episode set was drawn from a dataset of {} examples, not {}",
                self.dataset_len,
                data.len()
            )));
        }
        check_indices(data, &self.spec, idx)?;
        Ok(build_episode(
            data,
            self.spec,
            data.example_shape(),
            idx.clone(),
        ))
    }

    /// Materialises every episode, in order.
    pub fn iter<'s, D: LabelledData + ?Sized>(
        &'s self,
        data: &'s D,
    ) -> impl Iterator<Item = Result<Episode>> + 's {
        (0..self.len()).map(move |i| self.episode(data, i))
    }
}

/// A class-disjoint split of class ids into train, validation and test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSplit {
    /// Training classes.
    pub train: Vec<usize>,
    /// Validation classes.
    pub val: Vec<usize>,
    /// Test classes.
    pub test: Vec<usize>,
}

impl ClassSplit {
    /// Shuffles `0..num_classes` with `ChaCha8Rng::seed_from_u64(seed)` and cuts it into
    /// `round(train_frac * n)` training, `round(val_frac * n)` validation and the rest test
    /// classes. Each part is returned sorted.
    pub fn random(num_classes: usize, train_frac: f64, val_frac: f64, seed: u64) -> Result<Self> {
        let ok = |f: f64| f.is_finite() && (0.0..=1.0).contains(&f);
        if !ok(train_frac) || !ok(val_frac) || train_frac + val_frac > 1.0 + 1e-9 {
            return Err(DataError::InvalidArgument(format!(
                "split fractions must be in [0, 1] and sum to at most 1, got train {train_frac}, val {val_frac}"
            )));
        }
        let mut classes: Vec<usize> = (0..num_classes).collect();
        let mut rng = seeded_rng(seed);
        partial_shuffle(&mut classes, num_classes, &mut rng);
        let n_train = ((train_frac * num_classes as f64).round() as usize).min(num_classes);
        let n_val = ((val_frac * num_classes as f64).round() as usize).min(num_classes - n_train);
        let mut train = classes[..n_train].to_vec();
        let mut val = classes[n_train..n_train + n_val].to_vec();
        let mut test = classes[n_train + n_val..].to_vec();
        train.sort_unstable();
        val.sort_unstable();
        test.sort_unstable();
        Ok(ClassSplit { train, val, test })
    }

    /// Whether no class is in two parts.
    pub fn is_disjoint(&self) -> bool {
        let mut all: Vec<usize> = self
            .train
            .iter()
            .chain(&self.val)
            .chain(&self.test)
            .copied()
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        all.len() == n
    }
}
