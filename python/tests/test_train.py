"""`metalearn.train`: the same learning curve and weights as `metalearn train` for the same
config; the GIL released while it runs; Ctrl-C stops it with the checkpoint kept."""

from __future__ import annotations

import _thread
import json
import threading
import time

import numpy as np
import pytest

import metalearn
from conftest import PROTONET


def config(tmp_path, name: str, **values) -> metalearn.RunConfig:
    cfg = metalearn.RunConfig.from_toml_str(PROTONET)
    return cfg.with_values({"train.out_dir": str(tmp_path / name), **values})


def test_curve_and_weights_match_cli(protonet_ckpt, tmp_path):
    cfg = config(tmp_path, "py")
    report = metalearn.train(cfg, progress=False)
    cli = json.loads((protonet_ckpt.parent / "history.json").read_text())["history"]
    curve = report["curve"]
    assert isinstance(curve["iteration"], np.ndarray)
    assert curve["iteration"].tolist() == [p["iteration"] for p in cli] == [10, 20]
    assert curve["train_loss"].tolist() == [p["train_loss"] for p in cli]
    assert curve["val_metric"].tolist() == [p["val_metric"] for p in cli]
    assert curve["val_loss"].tolist() == [p["val_loss"] for p in cli]
    assert report["iterations"] == 20 and not report["interrupted"]
    # The two best checkpoints give the same predictions.
    ep = next(metalearn.data.omniglot(split="evaluation").episodes(5, 1, 4, seed=8))
    a = metalearn.load(report["best_checkpoint"]).adapt(ep.support_x, ep.support_y).outputs(ep.query_x)
    b = metalearn.load(protonet_ckpt).adapt(ep.support_x, ep.support_y).outputs(ep.query_x)
    np.testing.assert_array_equal(a, b)


def test_dict_config_and_evaluate_flag(tmp_path):
    cfg = config(tmp_path, "d", **{"train.iterations": 4, "train.val_every": 2, "train.checkpoint_every": 2})
    d = cfg.to_dict()
    again = metalearn.RunConfig.from_dict(d)
    assert again.to_dict() == d
    report = metalearn.train(d, threads=1, progress=False, evaluate=True)
    assert report["test"]["episodes"] == 20
    assert report["test"]["per_episode"].shape == (20,)


def test_gil_released_during_train(tmp_path):
    cfg = config(tmp_path, "gil", **{"train.iterations": 40})
    state = {"running": False, "ticks": 0}
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            if state["running"]:
                state["ticks"] += 1
            time.sleep(0.002)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        state["running"] = True
        report = metalearn.train(cfg, progress=False)
        state["running"] = False
    finally:
        stop.set()
        t.join()
    assert report["iterations"] == 40
    # The ticker ran while the engine trained: with the GIL held it could not run at all.
    assert state["ticks"] >= 20, state


def test_ctrl_c_keeps_checkpoint_and_resumes(tmp_path):
    cfg = config(tmp_path, "int", **{"train.iterations": 100000, "train.val_every": 5, "train.checkpoint_every": 5})
    last = tmp_path / "int" / "last.safetensors"

    def interrupt_once_running():
        deadline = time.time() + 120
        while not last.exists() and time.time() < deadline:
            time.sleep(0.01)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt, match=r"training interrupted after (\d+) iterations") as info:
        metalearn.train(cfg, progress=False)
    done = int(str(info.value).split("after ")[1].split(" ")[0])
    assert 5 <= done < 100000 and last.exists()
    report = metalearn.train(cfg, progress=False, resume=True, iterations=done + 3)
    assert report["resumed_from"] == done and report["iterations"] == done + 3
