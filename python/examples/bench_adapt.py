"""The latency of one `learner.adapt(x, y).predict_proba(q)` call from Python, against the
same work in Rust (examples/adapt_latency.rs): the overhead figure of the README's
"From Python" section.

    python python/examples/bench_adapt.py CKPT [N K Q SEED REPS]      (defaults 5 1 15 0 50)

Draws episode 0 (seed SEED) of the Omniglot evaluation set with `metalearn.data`, exactly
as the Rust example does, times REPS calls after 3 warm-up calls, and prints the median and
quartiles in milliseconds. If `target/release/examples/adapt_latency` exists it runs it on
the same checkpoint and episode, alternating Rust and Python rounds, and prints both and the
overhead of the median.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import metalearn


def python_times(learner, sx, sy, qx, reps):
    for _ in range(3):
        learner.adapt(sx, sy).predict_proba(qx)
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        learner.adapt(sx, sy).predict_proba(qx)
        ms.append(1e3 * (time.perf_counter() - t))
    return np.array(ms)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ckpt = sys.argv[1]
    n, k, q, seed, reps = (int(a) for a in (sys.argv[2:] + ["5", "1", "15", "0", "50"][len(sys.argv) - 2 :])[:5])
    data = Path(metalearn.data.default_data_dir()) / "omniglot"
    learner = metalearn.load(ckpt)
    ds = metalearn.data.omniglot(data / "images_evaluation.npz", image_size=learner.input_shape[-1])
    sx, sy, qx, _ = next(ds.episodes(n, k, q, seed=seed))
    rust_exe = Path(__file__).resolve().parents[2] / "target" / "release" / "examples" / "adapt_latency"
    py_all, rust_lines = [], []
    for _ in range(3):
        py_all.append(python_times(learner, sx, sy, qx, reps))
        if rust_exe.exists():
            args = [str(rust_exe), ckpt, str(data / "images_evaluation.npz"), str(n), str(k), str(q), str(seed), str(reps)]
            rust_lines.append(subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip())
    ms = np.concatenate(py_all)
    med, q1, q3 = np.percentile(ms, [50, 25, 75])
    print(
        f"python adapt+predict_proba: {learner.config.describe()} ({n}-way {k}-shot, {len(qx)} queries, "
        f"{os.environ.get('RAYON_NUM_THREADS', 'all')} threads of {os.cpu_count()} cores): median {med:.3f} ms, quartiles {q1:.3f} / {q3:.3f} ms over {len(ms)} calls"
    )
    if rust_lines:
        rust_meds = [float(line.split("median ")[1].split(" ms")[0]) for line in rust_lines]
        for line in rust_lines:
            print(line)
        rust_med = float(np.median(rust_meds))
        print(f"overhead of Python: {100 * (med / rust_med - 1):+.1f}% (median {med:.3f} ms vs {rust_med:.3f} ms)")


if __name__ == "__main__":
    main()
