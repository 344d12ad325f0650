//! The network of a transfer experiment (a trunk shared by source and target, a linear head
//! per task), its data, and the training loop with an optionally frozen trunk.

use super::config::{Arch, DataSel, ModelSpec};
use super::error::{Result, TransferError};
use crate::autodiff::{grad, no_grad};
use crate::data::ImageDataset;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{Conv4, Conv4Config, DownsampleKind, Mlp, Model, Params};
use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::Rng;
use std::path::PathBuf;

/// A train and a test set of one task.
#[derive(Clone, Debug)]
pub struct TaskData {
    /// Training pool.
    pub train: ImageDataset,
    /// Test set.
    pub test: ImageDataset,
    /// The dataset in words (`mnist (10 classes)`).
    pub describe: String,
}

fn data_dir(sel: &DataSel) -> PathBuf {
    sel.path.clone().unwrap_or_else(|| {
        let d = crate::data::default_data_dir();
        match sel.dataset.as_str() {
            "omniglot-background" | "omniglot-evaluation" => d.join("omniglot"),
            other => d.join(other),
        }
    })
}

fn head_n(ds: ImageDataset, limit: usize) -> ImageDataset {
    if limit == 0 || limit >= ds.n {
        return ds;
    }
    let idx: Vec<usize> = (0..limit).collect();
    ds.subset(&idx).expect("indices in range")
}

/// Loads a dataset selection: train and test sets with the selected classes relabelled
/// `0..C`, truncated to the limits. Omniglot has no test split: the last `test_per_class`
/// drawings of every character are the test set.
pub fn load(sel: &DataSel, what: &'static str) -> Result<TaskData> {
    let path = data_dir(sel);
    let derr = |source| TransferError::Data {
        what,
        path: path.clone(),
        source: Box::new(source),
    };
    let (train, test) = match sel.dataset.as_str() {
        "mnist" | "fashion-mnist" => {
            let tt = if sel.dataset == "mnist" {
                crate::data::load_mnist(&path)
            } else {
                crate::data::load_fashion_mnist(&path)
            }
            .map_err(derr)?;
            (tt.train, tt.test)
        }
        name => {
            let file = if name == "omniglot-background" {
                "images_background.npz"
            } else {
                "images_evaluation.npz"
            };
            let o = crate::data::load_omniglot_npz(&path.join(file), crate::data::OMNIGLOT_SIZE)
                .map_err(derr)?;
            let tpc = sel.test_per_class as u32;
            if tpc == 0 || tpc >= 20 {
                return Err(TransferError::value(
                    &format!("{what}.test_per_class"),
                    "must be between 1 and 19 (Omniglot has 20 drawings per character)",
                ));
            }
            let (mut tr, mut te) = (Vec::new(), Vec::new());
            for (i, &d) in o.drawings.iter().enumerate() {
                if d > 20 - tpc {
                    te.push(i);
                } else {
                    tr.push(i);
                }
            }
            (
                o.images.subset(&tr).map_err(derr)?,
                o.images.subset(&te).map_err(derr)?,
            )
        }
    };
    let total = train.num_classes();
    let classes: Vec<usize> = match (&sel.classes, sel.num_classes) {
        (Some(c), _) => c.clone(),
        (None, Some(n)) => (0..n.min(total)).collect(),
        (None, None) => (0..total).collect(),
    };
    if let Some(&c) = classes.iter().find(|&&c| c >= total) {
        return Err(TransferError::value(
            &format!("{what}.classes"),
            format!(
                "class {c} out of range: `{}` has {total} classes",
                sel.dataset
            ),
        ));
    }
    let (train, test) = if classes.len() == total {
        (train, test)
    } else {
        (
            train.select_classes(&classes).map_err(derr)?,
            test.select_classes(&classes).map_err(derr)?,
        )
    };
    let train = head_n(train, sel.train_limit);
    let test = head_n(test, sel.test_limit);
    let describe = format!(
        "{} ({} classes, {} train / {} test images)",
        sel.dataset,
        classes.len(),
        train.n,
        test.n
    );
    Ok(TaskData {
        train,
        test,
        describe,
    })
}

enum Trunk {
    Mlp(Mlp),
    Conv(Conv4),
}

/// Trunk + linear head. Trunk parameters are named `trunk.<layer>`, the head's `head.weight`
/// and `head.bias`.
pub struct Net {
    trunk: Trunk,
    in_shape: [usize; 3],
    feat_dim: usize,
}

impl Net {
    /// The network for `[channels, height, width]` images.
    pub fn new(spec: &ModelSpec, in_shape: [usize; 3]) -> Result<Net> {
        let [c, h, w] = in_shape;
        Ok(match spec.arch {
            Arch::Mlp => {
                let mut sizes = vec![c * h * w];
                sizes.extend_from_slice(&spec.hidden);
                Net {
                    feat_dim: *sizes.last().expect("non-empty"),
                    trunk: Trunk::Mlp(Mlp::new(&sizes)),
                    in_shape,
                }
            }
            Arch::Conv4 => {
                if h != w {
                    return Err(TransferError::value(
                        "model.arch",
                        format!("conv4 needs square images, got {h}x{w}"),
                    ));
                }
                let conv = Conv4::new(Conv4Config {
                    in_channels: c,
                    filters: spec.filters,
                    blocks: 4,
                    image_size: h,
                    head: None,
                    downsample: DownsampleKind::MaxPool,
                });
                Net {
                    feat_dim: conv.embedding_dim(),
                    trunk: Trunk::Conv(conv),
                    in_shape,
                }
            }
        })
    }

    /// The trunk in words.
    pub fn describe(&self) -> String {
        match &self.trunk {
            Trunk::Mlp(m) => Model::<f32>::describe(m),
            Trunk::Conv(c) => Model::<f32>::describe(c),
        }
    }

    /// Fresh trunk parameters (requiring gradients).
    pub fn init_trunk(&self, rng: &mut dyn rand::RngCore) -> Params<f32> {
        let p: Params<f32> = match &self.trunk {
            Trunk::Mlp(m) => m.init(rng),
            Trunk::Conv(c) => c.init(rng),
        };
        let names = p.names().iter().map(|n| format!("trunk.{n}")).collect();
        Params::from_parts(names, p.tensors().to_vec()).requires_grad_()
    }

    /// A fresh `classes`-way linear head (PyTorch's default initialisation).
    pub fn init_head(&self, classes: usize, rng: &mut dyn rand::RngCore) -> Params<f32> {
        let d = self.feat_dim;
        let bound = 1.0 / (d as f32).sqrt();
        let mut u =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-bound..bound)).collect() };
        let mut p = Params::new();
        p.push(
            "head.weight",
            Tensor::from_vec(u(classes * d), &[classes, d]),
        );
        p.push("head.bias", Tensor::from_vec(u(classes), &[classes]));
        p.requires_grad_()
    }

    /// The input batch of examples `idx`.
    pub fn batch(&self, ds: &ImageDataset, idx: &[usize]) -> Tensor<f32> {
        let len = ds.image_len();
        let mut x = Vec::with_capacity(idx.len() * len);
        for &i in idx {
            x.extend_from_slice(ds.image(i));
        }
        let [c, h, w] = self.in_shape;
        match self.trunk {
            Trunk::Mlp(_) => Tensor::from_vec(x, &[idx.len(), c * h * w]),
            Trunk::Conv(_) => Tensor::from_vec(x, &[idx.len(), c, h, w]),
        }
    }

    /// Trunk features `[n, feat_dim]` (after a ReLU).
    pub fn features(&self, trunk: &Params<f32>, x: &Tensor<f32>) -> Tensor<f32> {
        match &self.trunk {
            Trunk::Mlp(m) => m.forward(trunk, x).relu(),
            Trunk::Conv(c) => c.embed(trunk, x),
        }
    }

    /// Class scores.
    pub fn logits(&self, trunk: &Params<f32>, head: &Params<f32>, x: &Tensor<f32>) -> Tensor<f32> {
        self.features(trunk, x).linear(head.at(0), Some(head.at(1)))
    }

    /// Accuracy on `idx` of `ds` (all examples when `None`), in batches of 500, no graph.
    pub fn accuracy(
        &self,
        trunk: &Params<f32>,
        head: &Params<f32>,
        ds: &ImageDataset,
        idx: Option<&[usize]>,
    ) -> f64 {
        let all: Vec<usize>;
        let idx = match idx {
            Some(i) => i,
            None => {
                all = (0..ds.n).collect();
                &all
            }
        };
        if idx.is_empty() {
            return f64::NAN;
        }
        let correct: usize = no_grad(|| {
            idx.chunks(500)
                .map(|ch| {
                    let pred = self.logits(trunk, head, &self.batch(ds, ch)).argmax_axis(1);
                    pred.iter()
                        .zip(ch)
                        .filter(|(p, &i)| **p == ds.labels[i])
                        .count()
                })
                .sum()
        });
        correct as f64 / idx.len() as f64
    }
}

/// How [`fit`] trains.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Optimizer steps.
    pub steps: usize,
    /// Examples per step (at most the number of examples).
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Steps during which only the head is trained (the trunk's forward pass records no
    /// graph); `steps` or more = a linear probe.
    pub freeze_steps: usize,
}

/// Trains trunk and head on the examples `idx` of `ds` with Adam (epochs of shuffled
/// batches drawn from `rng`). While frozen, only the head has an optimizer; once the trunk is
/// released, a fresh Adam over all parameters takes over.
pub fn fit(
    net: &Net,
    mut trunk: Params<f32>,
    mut head: Params<f32>,
    ds: &ImageDataset,
    idx: &[usize],
    o: &FitOptions,
    rng: &mut impl Rng,
) -> (Params<f32>, Params<f32>) {
    let bs = o.batch_size.min(idx.len()).max(1);
    let mut order = idx.to_vec();
    let mut pos = order.len();
    let mut head_opt = Adam::<f32>::new(o.lr);
    let mut all_opt = Adam::<f32>::new(o.lr);
    let k = trunk.len();
    for step in 0..o.steps {
        if pos + bs > order.len() {
            order.shuffle(rng);
            pos = 0;
        }
        let b = &order[pos..pos + bs];
        pos += bs;
        let x = net.batch(ds, b);
        let y: Vec<usize> = b.iter().map(|&i| ds.labels[i]).collect();
        if step < o.freeze_steps {
            let f = no_grad(|| net.features(&trunk, &x));
            let loss = f.linear(head.at(0), Some(head.at(1))).cross_entropy(&y);
            let g = grad(&[loss], head.tensors(), false);
            head = head_opt.step(&head, &g);
        } else {
            let mut names = trunk.names().to_vec();
            names.extend_from_slice(head.names());
            let mut ts = trunk.tensors().to_vec();
            ts.extend_from_slice(head.tensors());
            let all = Params::from_parts(names, ts);
            let loss = net.logits(&trunk, &head, &x).cross_entropy(&y);
            let g = grad(&[loss], all.tensors(), false);
            let new = all_opt.step(&all, &g);
            trunk = Params::from_parts(new.names()[..k].to_vec(), new.tensors()[..k].to_vec());
            head = Params::from_parts(new.names()[k..].to_vec(), new.tensors()[k..].to_vec());
        }
    }
    (trunk, head)
}
