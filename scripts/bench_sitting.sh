#!/usr/bin/env bash
# One benchmark sitting: the PyTorch / JAX peers of ../shared/bench/peers (when their venv
# exists; set it up once with `bash ../shared/bench/peers/setup_venv.sh`) and `metalearn bench`,
# back to back on the same machine, 2 threads each. Output: one line per run, into
# ${OUT:-runs/bench-sitting.log}.
set -u
cd "$(dirname "$0")/.."
PEERS=${PEERS:-../shared/bench/peers}
PY=${PY:-/tmp/peers/venv/bin/python}
OUT=${OUT:-runs/bench-sitting.log}
mkdir -p "$(dirname "$OUT")"
export BENCH_THREADS=2 BENCH_RESULTS_DIR=${BENCH_RESULTS_DIR:-$PWD/runs/peers}
cargo build --release --quiet
{
  echo "=== sitting $(date -Is) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) ($(nproc) cores)"
  uptime
  if [ -x "$PY" ]; then
    "$PY" "$PEERS/w1_sinusoid_torch.py" --mode bench 2>/dev/null | tail -1
    "$PY" "$PEERS/w1_sinusoid_jax.py" --mode bench 2>/dev/null | tail -1
    "$PY" "$PEERS/w2_omniglot_maml_torch.py" 2>/dev/null | tail -1
    "$PY" "$PEERS/w2_omniglot_maml_torch.py" --first-order 2>/dev/null | tail -1
    "$PY" "$PEERS/w5_multitask_mnist_torch.py" 2>/dev/null | tail -1
  else
    echo "peers: no venv at $PY (run $PEERS/setup_venv.sh); only metalearn is timed"
  fi
  ./target/release/metalearn --threads 2 bench
  uptime
} 2>&1 | tee "$OUT"
