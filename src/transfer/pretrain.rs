//! The source side of a transfer experiment: the pretrained trunk, loaded from
//! `source.checkpoint`, reused from `<out_dir>/pretrained.safetensors` when its `[model]` and
//! `[source]` match the config, else pretrained on the source (once, with `source.seed`) and
//! saved there.

use super::config::{DataSel, TransferConfig};
use super::data;
use super::error::{Result, TransferError};
use super::net::{fit, FitOptions, Net};
use super::{check_finite, io_err, rng_for, SOURCE_KEY};
use crate::nn::Params;
use crate::run::usage::Stopwatch;
use std::collections::BTreeMap;
use std::path::Path;

/// Metadata key of `pretrained.safetensors`: the source test accuracy.
const SOURCE_ACCURACY_KEY: &str = "metalearn.transfer.source_test_accuracy";

/// The pretrained trunk and where it came from.
pub struct Pretrained {
    /// The trunk's parameters (requiring gradients).
    pub trunk: Params,
    /// The source in words.
    pub source: String,
    /// Source test accuracy (when pretrained, in this run or the one that saved it).
    pub test_accuracy: Option<f64>,
    /// Seconds of pretraining (0 when loaded).
    pub seconds: f64,
}

/// Gets the pretrained trunk: loaded from `source.checkpoint`, reused from
/// `<out_dir>/pretrained.safetensors` when its `[model]` and `[source]` match, else trained.
pub fn pretrained_trunk(
    cfg: &TransferConfig,
    net: &Net,
    target_shape: [usize; 3],
    out_dir: &Path,
    progress: bool,
) -> Result<Pretrained> {
    if let Some(ck) = &cfg.source.checkpoint {
        let c = crate::nn::checkpoint::load::<f32>(ck)?;
        return Ok(Pretrained {
            trunk: fitting_trunk(net, target_shape, ck, &c.params)?,
            source: format!("checkpoint {}", ck.display()),
            test_accuracy: None,
            seconds: 0.0,
        });
    }
    let sel = cfg.source_sel().expect("validated: dataset or checkpoint");
    let stamp = serde_json::to_string(&(&cfg.model, &cfg.source)).expect("serialisable");
    let path = out_dir.join("pretrained.safetensors");
    if let Some(reused) = reuse(net, target_shape, &path, &stamp, &sel)? {
        return Ok(reused);
    }
    let (pretrained, head) = pretrain(cfg, net, &sel, target_shape, progress)?;
    // Under several ranks ([`crate::dist`]) every rank pretrains the same trunk; rank 0 saves it.
    if !crate::dist::is_root() {
        return Ok(pretrained);
    }
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let mut meta = BTreeMap::new();
    meta.insert(SOURCE_KEY.to_string(), stamp);
    let acc = pretrained.test_accuracy.unwrap_or(f64::NAN);
    meta.insert(SOURCE_ACCURACY_KEY.to_string(), acc.to_string());
    let all = pretrained.trunk.concat(&head.prefixed("source_"));
    crate::nn::checkpoint::save(&path, &all, &meta)?;
    Ok(pretrained)
}

/// The trunk tensors of a checkpoint's parameters `p`, when they fit `[model]` (names and
/// shapes of a fresh trunk), detached and requiring gradients.
fn fitting_trunk(net: &Net, target_shape: [usize; 3], path: &Path, p: &Params) -> Result<Params> {
    let fresh = net.init_trunk(&mut rng_for(0, 0));
    let trunk = p.filter(|n| n.starts_with("trunk."));
    if trunk.names() != fresh.names()
        || trunk
            .tensors()
            .iter()
            .zip(fresh.tensors())
            .any(|(a, b)| a.shape() != b.shape())
    {
        return Err(TransferError::Trunk {
            path: path.to_path_buf(),
            reason: format!(
                "its trunk tensors do not fit `[model]` ({} on {:?} images)",
                net.describe(),
                target_shape
            ),
        });
    }
    Ok(trunk.detach().requires_grad_())
}

/// The trunk saved at `path` by an earlier run, when it was pretrained with the same
/// `[model]` and `[source]` (`stamp`).
fn reuse(
    net: &Net,
    target_shape: [usize; 3],
    path: &Path,
    stamp: &str,
    sel: &DataSel,
) -> Result<Option<Pretrained>> {
    if !path.exists() {
        return Ok(None);
    }
    let Ok(meta) = crate::nn::checkpoint::read_metadata(path) else {
        return Ok(None);
    };
    if meta.get(SOURCE_KEY).map(String::as_str) != Some(stamp) {
        return Ok(None);
    }
    let c = crate::nn::checkpoint::load::<f32>(path)?;
    Ok(Some(Pretrained {
        trunk: fitting_trunk(net, target_shape, path, &c.params)?,
        source: format!("{} (reused {})", sel.dataset, path.display()),
        test_accuracy: meta.get(SOURCE_ACCURACY_KEY).and_then(|s| s.parse().ok()),
        seconds: 0.0,
    }))
}

/// Pretrains a trunk and a head on the source's classes (`source.epochs` over its training
/// set), checks them and measures the source test accuracy.
fn pretrain(
    cfg: &TransferConfig,
    net: &Net,
    sel: &DataSel,
    target_shape: [usize; 3],
    progress: bool,
) -> Result<(Pretrained, Params)> {
    let data = data::load(sel, "source")?;
    let shape = [data.train.channels, data.train.height, data.train.width];
    if shape != target_shape {
        return Err(TransferError::value(
            "source.dataset",
            format!("has {shape:?} images but the target has {target_shape:?}"),
        ));
    }
    let clock = Stopwatch::start();
    let classes = data.train.num_classes();
    let trunk = net.init_trunk(&mut rng_for(cfg.source.seed, 0));
    let head = net.init_head(classes, &mut rng_for(cfg.source.seed, 1));
    let idx: Vec<usize> = (0..data.train.n).collect();
    let steps = cfg.source.epochs * data.train.n.div_ceil(cfg.source.batch_size);
    if progress {
        eprintln!(
            "pretraining {} on {}: {} epochs, {steps} steps",
            net.describe(),
            data.describe,
            cfg.source.epochs
        );
    }
    let options = FitOptions {
        steps,
        batch_size: cfg.source.batch_size,
        lr: cfg.source.lr,
        freeze_steps: 0,
    };
    let mut rng = rng_for(cfg.source.seed, 2);
    let (trunk, head) = fit(net, trunk, head, &data.train, &idx, &options, &mut rng);
    let acc = net.accuracy(&trunk, &head, &data.test, None);
    check_finite(&trunk, &head, acc, "pretraining".into(), "source.lr")?;
    let seconds = clock.seconds();
    if progress {
        eprintln!(
            "pretrained in {seconds:.1} s: source test accuracy {:.2}%",
            100.0 * acc
        );
    }
    let pretrained = Pretrained {
        trunk,
        source: data.describe,
        test_accuracy: Some(acc),
        seconds,
    };
    Ok((pretrained, head))
}
