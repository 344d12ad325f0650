"""`metalearn.evaluate` against `metalearn eval --json`, and `data.omniglot(...).episodes`
against the crate's sampler (the `episodes_dump` example)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import metalearn
from conftest import example_path, require, run_cli


def test_evaluate_matches_cli(protonet_ckpt):
    out = json.loads(run_cli("eval", "--checkpoint", str(protonet_ckpt), "--episodes", "30", "--seed", "9", "--json").stdout)
    r = metalearn.evaluate(protonet_ckpt, episodes=30, seed=9)
    assert r["episodes"] == out["score"]["n"] == 30
    assert r["mean"] == out["score"]["mean"]
    assert r["ci95"] == out["score"]["ci95"]
    assert r["mean_loss"] == pytest.approx(out["mean_loss"], rel=1e-12)
    per = r["per_episode"]
    assert isinstance(per, np.ndarray) and per.shape == (30,)
    assert per.mean() == pytest.approx(out["score"]["mean"], rel=1e-12)
    # Accuracies of 5-way 5-query episodes are multiples of 1/25.
    np.testing.assert_allclose(per * 25, np.round(per * 25), atol=1e-9)


def test_evaluate_with_config(protonet_ckpt):
    """Another N through a config (ProtoNet has no head): as `metalearn eval --config`."""
    cfg = metalearn.load(protonet_ckpt).config.with_values({"data.n_way": 3, "eval.episodes": 12})
    path = protonet_ckpt.parent / "eval3.toml"
    path.write_text(cfg.to_toml())
    out = json.loads(run_cli("eval", "--checkpoint", str(protonet_ckpt), "--config", str(path), "--json").stdout)
    r = metalearn.evaluate(protonet_ckpt, config=cfg)
    assert (r["episodes"], r["mean"], r["ci95"]) == (12, out["score"]["mean"], out["score"]["ci95"])


def test_episodes_match_rust_sampler(omniglot_dir):
    exe = require(example_path("episodes_dump"), "the episodes_dump example (cargo build --release --examples)")
    npz = omniglot_dir / "images_evaluation.npz"
    lines = subprocess.run([str(exe), str(npz), "5", "2", "3", "17", "4"], capture_output=True, text=True, check=True).stdout.splitlines()
    rust = [json.loads(line) for line in lines]
    ds = metalearn.data.omniglot(npz)
    x, y = ds.arrays()
    eps = list(ds.episodes(5, 2, 3, seed=17, count=4))
    assert len(eps) == len(rust) == 4
    for ep, r in zip(eps, rust):
        assert ep.classes.tolist() == r["classes"]
        assert ep.support_index.tolist() == r["support"]
        assert ep.query_index.tolist() == r["query"]
        assert float(ep.support_x.astype(np.float64).sum()) == pytest.approx(r["support_sum"], rel=1e-12)
        assert float(ep.query_x.astype(np.float64).sum()) == pytest.approx(r["query_sum"], rel=1e-12)
        # The arrays are the dataset's examples, labelled class-major in 0..N.
        np.testing.assert_array_equal(ep.support_x, x[ep.support_index])
        np.testing.assert_array_equal(ep.query_x, x[ep.query_index])
        assert ep.support_y.tolist() == [k for k in range(5) for _ in range(2)]
        assert ep.query_y.tolist() == [k for k in range(5) for _ in range(3)]
        assert (y[ep.support_index] == ep.classes[ep.support_y]).all()
    # Episode i does not depend on where the iteration starts.
    again = next(ds.episodes(5, 2, 3, seed=17, start=2))
    assert again.support_index.tolist() == rust[2]["support"]
    sx, sy, qx, qy = eps[0]
    assert sx.shape == (10, 1, 28, 28) and sx.dtype == np.float32 and qy.dtype == np.int64


def test_episodes_of_csv_and_image_folder(tmp_path):
    from helpers import write_csv, write_png

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    labels = np.repeat([0, 1, 2], 4)
    write_csv(tmp_path / "d.csv", x, labels)
    ds = metalearn.data.csv(tmp_path / "d.csv")
    assert len(ds) == 12 and ds.num_classes == 3 and ds.example_shape == (4,)
    sx, sy, qx, qy = next(ds.episodes(2, 1, 2, seed=0))
    assert sx.shape == (2, 4) and qx.shape == (4, 4)
    dx, dy = ds.arrays()
    np.testing.assert_allclose(dx, x, rtol=1e-7)
    for c in range(2):
        for j in range(3):
            write_png(tmp_path / "img" / f"c{c}" / f"{j}.png", rng.integers(0, 256, size=(6, 6)).astype(np.uint8))
    imgs = metalearn.data.image_folder(tmp_path / "img", image_size=6)
    assert imgs.class_names == ["c0", "c1"] and imgs.example_shape == (1, 6, 6)
    assert next(imgs.episodes(2, 1, 1, seed=3)).support_x.shape == (2, 1, 6, 6)
