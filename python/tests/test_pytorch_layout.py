"""Checkpoints are plain safetensors files with PyTorch's layouts: the `safetensors` library
reads them (numpy flavour here; `safetensors.torch.load_file` reads the same file), and a
PyTorch-semantics Conv-4 ProtoNet written in numpy (Conv2d padding 1, BatchNorm2d with batch
statistics and eps 1e-5, ReLU, MaxPool2d(2); one batch of support + query; minus squared
distances to the class means) on those tensors gives the engine's outputs."""

from __future__ import annotations

import numpy as np
import pytest

import metalearn

st = pytest.importorskip("safetensors.numpy", reason="pip install safetensors")


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N C H W 3 3
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]


def block(x, p, i):
    h = conv3x3(x, p[f"b{i}.conv.weight"], p[f"b{i}.conv.bias"])
    mean = h.mean(axis=(0, 2, 3), keepdims=True)
    var = h.var(axis=(0, 2, 3), keepdims=True)
    h = (h - mean) / np.sqrt(var + 1e-5) * p[f"b{i}.bn.weight"][None, :, None, None] + p[f"b{i}.bn.bias"][None, :, None, None]
    h = np.maximum(h, 0.0)
    n, c, hh, ww = h.shape
    h = h[:, :, : hh // 2 * 2, : ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2)
    return h.max(axis=(3, 5))


def test_checkpoint_reads_with_safetensors_and_matches_pytorch_semantics(protonet_ckpt):
    tensors = st.load_file(str(protonet_ckpt))
    params = {k[len("param/") :]: v.astype(np.float64) for k, v in tensors.items() if k.startswith("param/")}
    assert params["b0.conv.weight"].shape == (8, 1, 3, 3)  # [out, in, kh, kw] as torch.nn.Conv2d
    assert sorted(params) == sorted(f"b{i}.{l}.{w}" for i in range(4) for l in ("conv", "bn") for w in ("weight", "bias"))
    sx, sy, qx, _ = next(metalearn.data.omniglot(split="evaluation").episodes(5, 2, 3, seed=21))
    h = np.concatenate([sx, qx]).astype(np.float64)
    for i in range(4):
        h = block(h, params, i)
    z = h.reshape(len(h), -1)
    zs, zq = z[: len(sx)], z[len(sx) :]
    protos = np.stack([zs[sy == k].mean(axis=0) for k in range(5)])
    ours = -((zq[:, None, :] - protos[None]) ** 2).sum(axis=-1)
    engine = metalearn.load(protonet_ckpt).adapt(sx, sy).outputs(qx)
    np.testing.assert_allclose(engine, ours, rtol=1e-4, atol=1e-5 * np.abs(ours).max())
