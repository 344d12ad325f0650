"""Feeding metalearn's episodes into a PyTorch model, and loading a metalearn checkpoint in
PyTorch with safetensors.

    python python/examples/torch_episodes.py [CHECKPOINT]

Needs `torch` (and `safetensors` for the checkpoint part): `pip install torch safetensors`.
Without them it says so and exits. (The repository's CI does not install PyTorch, so this
example is not run there.)

- The episodes come from the engine's seeded sampler (`metalearn.data.omniglot(...).episodes`),
  as numpy arrays that `torch.from_numpy` wraps without a copy; a small PyTorch ProtoNet is
  trained on them.
- A checkpoint's tensors are named `param/<block>.<layer>.<weight|bias>` with PyTorch's
  layouts (conv weights `[out, in, 3, 3]`); the Conv-4 below uses the same names, so
  `load_state_dict(strict=True)` takes them. Its batch norm uses batch statistics
  (`track_running_stats=False`), as the engine does.
"""

import sys

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("torch_episodes.py needs PyTorch: pip install torch safetensors")

import metalearn


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout, track_running_stats=False)

    def forward(self, x):
        return torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)


class Conv4(nn.Module):
    """Conv-4 with the checkpoint's parameter names (b0..b3)."""

    def __init__(self, cin: int = 1, filters: int = 64) -> None:
        super().__init__()
        self.b0, self.b1, self.b2, self.b3 = (Block(cin if i == 0 else filters, filters) for i in range(4))

    def forward(self, x):
        return self.b3(self.b2(self.b1(self.b0(x)))).flatten(1)


def protonet_logits(net, sx, sy, qx, n_way):
    z = net(torch.cat([sx, qx]))
    zs, zq = z[: len(sx)], z[len(sx) :]
    prototypes = torch.stack([zs[sy == k].mean(0) for k in range(n_way)])
    return -torch.cdist(zq, prototypes) ** 2


torch.manual_seed(0)
net = Conv4(filters=32)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
train = metalearn.data.omniglot(split="background")
for i, (sx, sy, qx, qy) in enumerate(train.episodes(n_way=5, k_shot=1, q_query=5, seed=0, count=100)):
    sx, sy, qx, qy = map(torch.from_numpy, (sx, sy, qx, qy))  # no copies
    loss = nn.functional.cross_entropy(protonet_logits(net, sx, sy, qx, 5), qy)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if i % 20 == 0:
        print(f"episode {i}: loss {loss.item():.3f}")

if len(sys.argv) > 1:
    from safetensors.torch import load_file

    tensors = load_file(sys.argv[1])
    params = {k[len("param/") :]: v for k, v in tensors.items() if k.startswith("param/")}
    learner = metalearn.load(sys.argv[1])
    cin, size = learner.input_shape[0], learner.input_shape[1]
    model = Conv4(cin=cin, filters=params["b0.conv.weight"].shape[0])
    model.load_state_dict(params, strict=True)
    sx, sy, qx, qy = next(metalearn.data.omniglot(split="evaluation").episodes(5, 1, 5, seed=1))
    with torch.no_grad():
        ours = protonet_logits(model, *map(torch.from_numpy, (sx, sy, qx)), 5).softmax(-1)
    theirs = learner.adapt(sx, sy).predict_proba(qx)
    print("max |PyTorch - metalearn| probability:", float((ours.double() - torch.from_numpy(theirs)).abs().max()))
