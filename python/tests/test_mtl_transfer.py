"""`metalearn.mtl.train` and `metalearn.transfer.run` against `metalearn mtl --json` and
`metalearn transfer --json` on the shipped configs, shrunk to a few seconds."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import metalearn
from conftest import REPO, data_dir, require, run_cli


def shrink(text: str, replacements: dict) -> str:
    """Sets top-level-or-table keys `key = value` of a TOML text (the first occurrence)."""
    for key, value in replacements.items():
        text, n = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    return text


@pytest.fixture(scope="module")
def mnist():
    require(data_dir() / "mnist", "the MNIST data folder")
    require(data_dir() / "fashion-mnist", "the Fashion-MNIST data folder")


def test_mtl_matches_cli(mnist, tmp_path):
    text = shrink((REPO / "configs" / "mnist-multitask.toml").read_text(), {"train_limit": 600, "test_limit": 300, "epochs": 1, "grad_every": 0})
    path = tmp_path / "mtl.toml"
    path.write_text(text)
    out = json.loads(run_cli("mtl", "--config", str(path), "--json", "--no-baselines", "--out-dir", str(tmp_path / "cli")).stdout)
    r = metalearn.mtl.train(path, baselines=False, out_dir=tmp_path / "py")
    assert [t["name"] for t in r["tasks"]] == [t["name"] for t in out["tasks"]] == ["digit", "mod3"]
    for a, b in zip(r["tasks"], out["tasks"]):
        assert a["multi_task"] == b["multi_task"] and a["multi_task_loss"] == b["multi_task_loss"]
        assert a["single_task"] is None
    if sys.version_info >= (3, 11):
        import tomllib

        d = tomllib.loads(text)
        d["diagnostics"]["out_dir"] = str(tmp_path / "dict")
        r2 = metalearn.mtl.train(d, baselines=False)
        assert [t["multi_task"] for t in r2["tasks"]] == [t["multi_task"] for t in out["tasks"]]


def test_transfer_matches_cli(mnist, tmp_path):
    text = shrink(
        (REPO / "configs" / "transfer" / "mnist-to-fashion.toml").read_text(),
        {
            "seeds": "[0]",
            "budgets": "[20]",
            "strategies": '["scratch", "finetune"]',
            "out_dir": f'"{(tmp_path / "cli").as_posix()}"',
            "train_limit": 600,
            "epochs": 1,
            "test_limit": 200,
            "val_size": 100,
            "steps": 10,
            "freeze_steps": 5,
        },
    )
    path = tmp_path / "t.toml"
    path.write_text(text)
    out = json.loads(run_cli("transfer", "--config", str(path), "--json").stdout)
    path.write_text(text.replace("/cli", "/py"))
    r = metalearn.transfer.run(path)
    assert [(row["strategy"], row["budget"]) for row in r["table"]] == [("scratch", 20), ("finetune", 20)]
    for a, b in zip(r["summary"], out["summary"]):
        assert a["accuracy"]["mean"] == b["accuracy"]["mean"]
    assert r["table"][1]["accuracy"] == out["summary"][1]["accuracy"]["mean"]
    assert r["table"][1]["gain"] == pytest.approx(out["summary"][1]["gain"]["mean"], abs=0)
