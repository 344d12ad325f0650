"""`learner.adapt(x, y).predict / predict_proba` against `metalearn adapt` on the same
checkpoint and the same examples (written as CSV or PNG files for the binary)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metalearn
from conftest import run_cli
from helpers import ink_to_png, write_csv, write_png


def cli_adapt(ckpt: Path, support: Path, query: Path) -> dict:
    r = run_cli("adapt", "--checkpoint", str(ckpt), "--support", str(support), "--query", str(query), "--format", "json")
    return json.loads(r.stdout)


def episode(seed: int, n_way: int = 5, k_shot: int = 2, q_query: int = 3):
    ds = metalearn.data.omniglot(split="evaluation")
    return next(ds.episodes(n_way, k_shot, q_query, seed=seed))


def check_against_cli(pred: metalearn.Predictor, qx: np.ndarray, out: dict) -> None:
    """Probabilities equal to the binary's (columns matched by class name) and the same
    predicted class for every query."""
    probs = pred.predict_proba(qx)
    labels = pred.predict(qx)
    cols = [int(np.flatnonzero(pred.classes == int(c))[0]) for c in out["classes"]]
    assert len(out["predictions"]) == len(qx)
    for i, p in enumerate(out["predictions"]):
        np.testing.assert_allclose(probs[i, cols], p["probabilities"], rtol=0, atol=1e-12)
        assert str(labels[i]) == p["prediction"]


@pytest.mark.parametrize("which", ["protonet_ckpt", "maml_ckpt"])
def test_adapt_csv_matches_cli(which, request, tmp_path):
    ckpt = request.getfixturevalue(which)
    ep = episode(seed=11)
    # Non-contiguous labels in a shuffled order: the bindings sort and compact them as the CLI does.
    names = np.array([7, 3, 12, 5, 9])[ep.support_y]
    perm = np.random.default_rng(0).permutation(len(names))
    sx, sy = ep.support_x[perm], names[perm]
    write_csv(tmp_path / "support.csv", sx, sy)
    write_csv(tmp_path / "query.csv", ep.query_x)
    out = cli_adapt(ckpt, tmp_path / "support.csv", tmp_path / "query.csv")
    pred = metalearn.load(ckpt).adapt(sx, sy)
    assert pred.classes.tolist() == [3, 5, 7, 9, 12]
    check_against_cli(pred, ep.query_x, out)
    # Flat (N, D) rows are the same images.
    flat = metalearn.load(ckpt).adapt(sx.reshape(len(sx), -1), sy)
    np.testing.assert_array_equal(flat.predict_proba(ep.query_x.reshape(len(ep.query_x), -1)), pred.predict_proba(ep.query_x))


def test_adapt_image_folders_match_cli(protonet_ckpt, tmp_path):
    ep = episode(seed=5, n_way=3, k_shot=2, q_query=2)
    for j, (x, y) in enumerate(zip(ep.support_x, ep.support_y)):
        write_png(tmp_path / "support" / f"class_{y}" / f"s{j}.png", ink_to_png(x[0]))
    for j, x in enumerate(ep.query_x):
        write_png(tmp_path / "query" / f"q{j:02}.png", ink_to_png(x[0]))
    out = cli_adapt(protonet_ckpt, tmp_path / "support", tmp_path / "query")
    learner = metalearn.load(protonet_ckpt)
    sx, sy, class_names = learner.read_support(tmp_path / "support")
    qx, qnames = learner.read_queries(tmp_path / "query")
    assert class_names == out["classes"] == ["class_0", "class_1", "class_2"]
    assert qnames == [p["query"] for p in out["predictions"]]
    pred = learner.adapt(sx, sy)
    probs = pred.predict_proba(qx)
    for i, p in enumerate(out["predictions"]):
        np.testing.assert_allclose(probs[i], p["probabilities"], rtol=0, atol=1e-12)
        assert class_names[pred.predict(qx)[i]] == p["prediction"]


def test_adapt_regression_matches_cli(sinusoid_ckpt, tmp_path):
    rng = np.random.default_rng(3)
    sx = rng.uniform(-5, 5, size=(5, 1)).astype(np.float32)
    sy = (2.0 * np.sin(sx[:, 0] + 0.5)).astype(np.float32)
    qx = np.linspace(-5, 5, 7, dtype=np.float32).reshape(7, 1)
    write_csv(tmp_path / "support.csv", sx, [f"{v:.9g}" for v in sy])
    write_csv(tmp_path / "query.csv", qx)
    out = cli_adapt(sinusoid_ckpt, tmp_path / "support.csv", tmp_path / "query.csv")
    learner = metalearn.load(sinusoid_ckpt)
    assert learner.is_regression
    values = learner.adapt(sx, sy).predict(qx)
    assert values.shape == (7,)
    for v, p in zip(values, out["predictions"]):
        assert float(v) == pytest.approx(float(p["prediction"]), rel=1e-6, abs=1e-7)


def test_predictor_reuses_support(protonet_ckpt):
    """A predictor answers repeated calls identically (its support set is kept as given), and
    its probabilities are distributions. (A query's probabilities may depend on the other
    queries of the call: the backbone's batch norm uses batch statistics, as in `adapt`.)"""
    ep = episode(seed=2)
    pred = metalearn.load(protonet_ckpt).adapt(ep.support_x, ep.support_y)
    whole = pred.predict_proba(ep.query_x)
    np.testing.assert_array_equal(pred.predict_proba(ep.query_x), whole)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, atol=1e-12)
    assert pred.outputs(ep.query_x).dtype == np.float32
    assert pred.predict(ep.query_x).dtype == np.int64
