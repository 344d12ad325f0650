#!/usr/bin/env bash
# One benchmark sitting: the PyTorch / JAX peers of ../shared/bench/peers (when their venv
# exists; set it up once with `bash ../shared/bench/peers/setup_venv.sh`) and `metalearn bench`,
# back to back on the same machine, 2 threads each (W1-W6), then the thread-scaling runs (W2,
# W3, W4, W5 at 1 thread, peers and ours). Output: one line per run, into
# ${OUT:-runs/bench-sitting.log}. SCALING=0 skips the 1-thread runs.
set -u
cd "$(dirname "$0")/.."
PEERS=${PEERS:-../shared/bench/peers}
PY=${PY:-/tmp/peers/venv/bin/python}
OUT=${OUT:-runs/bench-sitting.log}
mkdir -p "$(dirname "$OUT")"
export BENCH_RESULTS_DIR=${BENCH_RESULTS_DIR:-$PWD/runs/peers}
cargo build --release --quiet
peers() {
  [ -x "$PY" ] || { echo "peers: no venv at $PY (run $PEERS/setup_venv.sh); only metalearn is timed"; return; }
  for script in "$@"; do
    # shellcheck disable=SC2086
    "$PY" $PEERS/$script 2>/dev/null | tail -1
  done
}
{
  echo "=== sitting $(date -Is) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) ($(nproc) cores)"
  uptime
  export BENCH_THREADS=2
  peers "w1_sinusoid_torch.py --mode bench" "w1_sinusoid_jax.py --mode bench" \
    w2_omniglot_maml_torch.py "w2_omniglot_maml_torch.py --first-order" \
    w3_protonet_torch.py w3_protonet_jax.py w4_miniimagenet_maml_torch.py \
    w5_multitask_mnist_torch.py
  ./target/release/metalearn --threads 2 bench --only w1,w2,w2fo,w3,w4,w5
  # W6 in a process of its own: a child's peak RSS includes its parent's at spawn time.
  ./target/release/metalearn bench --only w6
  if [ "${SCALING:-1}" != 0 ]; then
    echo "--- 1 thread"
    export BENCH_THREADS=1
    peers w2_omniglot_maml_torch.py w3_protonet_torch.py w4_miniimagenet_maml_torch.py \
      w5_multitask_mnist_torch.py
    ./target/release/metalearn --threads 1 bench --only w2,w3,w4,w5
  fi
  uptime
} 2>&1 | tee "$OUT"
