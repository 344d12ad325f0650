"""Few-shot learning on Omniglot from Python, notebook style: train a small Prototypical
Network, evaluate it, then adapt it to a new 5-way 1-shot task and predict.

    python python/examples/fewshot_omniglot.py [iterations]

Reads Omniglot from $METALEARN_DATA/omniglot (default ../shared/data/omniglot). About 10 s
on 2 cores with the default 200 iterations.
"""

import sys
import tempfile

import numpy as np

import metalearn

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
run_dir = tempfile.mkdtemp(prefix="metalearn-protonet-")

# %% A run config, as a dict laid out like configs/fewshot/*.toml (or RunConfig.from_toml).
config = metalearn.RunConfig.from_dict(
    {
        "algorithm": {"name": "protonet"},
        "backbone": {"name": "conv4", "in_channels": 1, "filters": 32, "image_size": 28, "blocks": 4},
        "data": {"dataset": "omniglot", "n_way": 5, "k_shot": 1, "q_query": 5},
        "train": {
            "iterations": iterations,
            "meta_batch": 1,
            "meta_lr": 0.001,
            "seed": 0,
            "val_every": 50,
            "val_episodes": 20,
            "checkpoint_every": 50,
            "out_dir": run_dir,
        },
        "eval": {"episodes": 200, "seed": 2024},
    }
)
print(config)

# %% Meta-train: the GIL is released; Ctrl-C stops it and keeps last.safetensors.
report = metalearn.train(config, progress=True)
curve = report["curve"]  # numpy arrays
for it, acc in zip(curve["iteration"], curve["val_metric"]):
    print(f"iteration {int(it):5d}: validation accuracy {100 * acc:.1f}%")

# %% The test protocol of `metalearn eval`: mean accuracy ± 95% CI, per-episode accuracies.
result = metalearn.evaluate(report["best_checkpoint"])
print(f"test: {100 * result['mean']:.2f}% ± {100 * result['ci95']:.2f}% over {result['episodes']} episodes")

# %% A new task: 5 characters the model never saw, one drawing each (easyfsl's shapes).
learner = metalearn.load(report["best_checkpoint"])
episode = next(metalearn.data.omniglot(split="evaluation").episodes(n_way=5, k_shot=1, q_query=10, seed=7))
support_x, support_y, query_x, query_y = episode  # (5, 1, 28, 28) float32, (5,) int64, ...
predictor = learner.adapt(support_x, support_y)
predicted = predictor.predict(query_x)
print(f"new task: {100 * np.mean(predicted == query_y):.1f}% of {len(query_y)} queries right")
print("probabilities of the first query:", np.round(predictor.predict_proba(query_x)[0], 3))
