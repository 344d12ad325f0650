"""Shared fixtures: the data folder, the `metalearn` binary (the oracle the bindings are
compared against) and small checkpoints trained by that binary."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$METALEARN_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("METALEARN_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def cli_path() -> Path:
    """``$METALEARN_BIN``, else the release build ``target/release/metalearn``."""
    env = os.environ.get("METALEARN_BIN")
    return Path(env) if env else REPO / "target" / "release" / "metalearn"


def example_path(name: str) -> Path:
    """A cargo example built by ``cargo test --release`` / ``cargo build --release --examples``."""
    return REPO / "target" / "release" / "examples" / name


def require(path: Path, what: str) -> Path:
    """``path``; fails under CI (CI=true) and skips elsewhere when it is missing."""
    if not path.exists():
        msg = f"{what} not found at {path}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs the ``metalearn`` binary; fails the test with its stderr when it fails."""
    exe = require(cli_path(), "the metalearn binary (cargo build --release)")
    env = dict(os.environ, METALEARN_DATA=str(data_dir()))
    r = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=env)
    if r.returncode != 0:
        pytest.fail(f"metalearn {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    os.environ.setdefault("METALEARN_DATA", str(data_dir()))
    return require(data_dir() / "omniglot", "the Omniglot data folder")


PROTONET = """
[algorithm]
name = "protonet"
[backbone]
name = "conv4"
in_channels = 1
filters = 8
image_size = 28
blocks = 4
[data]
dataset = "omniglot"
n_way = 5
k_shot = 1
q_query = 5
[train]
iterations = 20
meta_batch = 1
meta_lr = 0.001
seed = 0
val_every = 10
val_episodes = 5
checkpoint_every = 10
[eval]
episodes = 20
seed = 3
"""

MAML = """
[algorithm]
name = "maml"
inner_lr = 0.4
inner_steps = 1
eval_inner_steps = 2
first_order = true
[backbone]
name = "conv4"
in_channels = 1
filters = 8
image_size = 28
blocks = 4
[data]
dataset = "omniglot"
n_way = 5
k_shot = 1
q_query = 2
[train]
iterations = 6
meta_batch = 2
meta_lr = 0.001
seed = 1
val_every = 3
val_episodes = 3
checkpoint_every = 3
[eval]
episodes = 10
seed = 4
"""

SINUSOID = """
[algorithm]
name = "maml"
inner_lr = 0.01
eval_inner_steps = 3
[backbone]
name = "mlp"
sizes = [1, 16]
[data]
dataset = "sinusoid"
k_shot = 5
q_query = 5
[eval]
episodes = 20
[train]
iterations = 12
meta_batch = 3
meta_lr = 0.01
seed = 5
val_every = 3
val_episodes = 4
checkpoint_every = 4
"""


def train_with_cli(tmp: Path, name: str, text: str) -> Path:
    """Trains ``text`` (a run config without ``out_dir``) with the binary; its best checkpoint."""
    out = tmp / name
    cfg = tmp / f"{name}.toml"
    body = text.replace("[train]\n", f'[train]\nout_dir = "{out.as_posix()}"\n', 1)
    cfg.write_text(body)
    run_cli("train", "--config", str(cfg), "--no-eval", "--overwrite", "--json")
    return out / "best.safetensors"


@pytest.fixture(scope="session")
def protonet_ckpt(tmp_path_factory, omniglot_dir) -> Path:
    return train_with_cli(tmp_path_factory.mktemp("runs"), "protonet", PROTONET)


@pytest.fixture(scope="session")
def maml_ckpt(tmp_path_factory, omniglot_dir) -> Path:
    return train_with_cli(tmp_path_factory.mktemp("runs"), "maml", MAML)


@pytest.fixture(scope="session")
def sinusoid_ckpt(tmp_path_factory) -> Path:
    return train_with_cli(tmp_path_factory.mktemp("runs"), "sinusoid", SINUSOID)
