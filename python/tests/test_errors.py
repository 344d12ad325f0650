"""Bad input raises the right Python exception with the message naming what is wrong; the
interpreter never crashes."""

from __future__ import annotations

import numpy as np
import pytest

import metalearn


@pytest.fixture(scope="module")
def learner(protonet_ckpt):
    return metalearn.load(protonet_ckpt)


@pytest.fixture(scope="module")
def ep(omniglot_dir):
    return next(metalearn.data.omniglot(split="evaluation").episodes(5, 1, 2, seed=0))


def test_wrong_dtype_is_type_error(learner, ep):
    with pytest.raises(TypeError, match=r"support_x must be a float32 array, got dtype float64"):
        learner.adapt(ep.support_x.astype(np.float64), ep.support_y)
    with pytest.raises(TypeError, match=r"support_y must hold integer class labels"):
        learner.adapt(ep.support_x, ep.support_y.astype(np.float32))
    pred = learner.adapt(ep.support_x, ep.support_y)
    with pytest.raises(TypeError, match=r"query_x must be a float32 array, got dtype uint8"):
        pred.predict(ep.query_x.astype(np.uint8))


def test_bad_shape_is_value_error(learner, ep):
    with pytest.raises(ValueError, match=r"support_x: examples have shape \[1, 20, 28\] but the Conv-4 backbone takes \[1, 28, 28\]"):
        learner.adapt(ep.support_x[:, :, :20], ep.support_y)
    with pytest.raises(ValueError, match=r"support_y: 3 labels for 5 support examples"):
        learner.adapt(ep.support_x, ep.support_y[:3])
    with pytest.raises(ValueError, match=r"support_x: expected an array of shape"):
        learner.adapt(ep.support_x[0, 0, 0], ep.support_y[:1])
    with pytest.raises(ValueError, match=r"at least 2 are needed"):
        learner.adapt(ep.support_x, np.zeros(5, dtype=np.int64))
    pred = learner.adapt(ep.support_x, ep.support_y)
    with pytest.raises(ValueError, match=r"query_x: examples have shape \[100\]"):
        pred.predict(ep.query_x.reshape(len(ep.query_x), -1)[:, :100].copy())


def test_nan_is_value_error(learner, ep):
    bad = ep.support_x.copy()
    bad[1, 0, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"support_x: value \d+ \(flat index\) is NaN"):
        learner.adapt(bad, ep.support_y)


def test_missing_files_are_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.safetensors: file not found"):
        metalearn.load(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match=r"nope.toml: cannot read"):
        metalearn.RunConfig.from_toml(tmp_path / "nope.toml")
    with pytest.raises(FileNotFoundError):
        metalearn.data.omniglot(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError):
        metalearn.evaluate(tmp_path / "nope.safetensors")
    with pytest.raises(OSError):
        metalearn.data.read_images(tmp_path / "no-folder")


def test_not_a_checkpoint_is_value_error(tmp_path):
    f = tmp_path / "junk.safetensors"
    f.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match=r"junk.safetensors"):
        metalearn.load(f)


def test_bad_config_is_value_error_naming_the_key():
    with pytest.raises(ValueError, match=r"bogus"):
        metalearn.RunConfig.from_dict({"algorithm": {"name": "protonet", "bogus": 1}})
    base = {
        "algorithm": {"name": "protonet"},
        "backbone": {"name": "mlp", "sizes": [4, 8]},
        "data": {"dataset": "omniglot", "n_way": 0},
    }
    with pytest.raises(ValueError, match=r"data.n_way"):
        metalearn.RunConfig.from_dict(base)
    with pytest.raises(TypeError):
        metalearn.train(42)


def test_episode_spec_errors(omniglot_dir, tmp_path):
    from helpers import write_csv

    write_csv(tmp_path / "d.csv", np.zeros((4, 2), dtype=np.float32), [0, 0, 1, 1])
    ds = metalearn.data.csv(tmp_path / "d.csv")
    with pytest.raises(ValueError):
        ds.episodes(3, 1, 1)  # 3 classes asked, 2 in the data
    with pytest.raises(ValueError):
        ds.episodes(2, 2, 1)  # K + Q = 3 > 2 examples per class
