#!/usr/bin/env bash
# Run the benchmarks (and a GPU-side subset of the tests) on an accelerator machine.
#   bash benchmarks/run_accelerator.sh OUT_DIR
# Assumes jax with CUDA (or TPU) plus flax/optax/matplotlib/scikit-learn/tqdm are installed;
# installs ntk_air itself with --no-deps (and wheels from ./.gpu_wheels if that folder exists).
set -u
OUT=${1:-benchmarks/results/accelerator}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ -d .gpu_wheels ]; then $PY -m pip install -q --no-deps --no-index .gpu_wheels/*.whl; fi
$PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || $PY -m pip install -q --no-deps -e .
nvidia-smi -L 2>/dev/null | tee "$OUT/device.txt"
$PY -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$OUT/device.txt"
# Tests that exercise the engines on the accelerator's JAX (small sizes).
timeout 240 $PY -m pytest -q -p no:cacheprovider -x -n 4 \
  tests/test_kernels.py tests/test_eigen.py tests/test_dynamics.py tests/test_nt_backend.py \
  tests/test_nt_fixtures.py tests/test_empirical.py -m "not slow" > "$OUT/tests.txt" 2>&1
tail -5 "$OUT/tests.txt"
run() { echo "== $*"; timeout "$1" "${@:2}" 2>&1 | tail -25; }
run 120 $PY benchmarks/bench_kernels.py --sizes 2048,8192,16384 --repeats 5 --tile-size 4096 --out "$OUT/kernels.json"
run 120 $PY benchmarks/bench_dynamics.py --n 4096 --n-test 1024 --times 1000 --out "$OUT/dynamics.json"
run 120 $PY benchmarks/bench_distill.py --n 2048 --out "$OUT/distill.json"
# eNTK engine (issue 10): ntk_air only (neural-tangents' pinned jax 0.4.25 is not on the image).
run 300 $PY benchmarks/entk.py --n 1024 4096 16384 --ours auto --no-nt --no-float64 --repeats 5 --time-budget-min 4 --out "$OUT/entk.json"
# Matrix-free top-k (issue 11): dense n = 32 000 for comparison, top-100 at n = 10^6.
run 600 $PY benchmarks/scale.py --n 32000 1000000 --dense-max 32000 --tail-steps 0 --out "$OUT/scale.json"
# Native convolutional kernels (issue 19): native side only (no neural-tangents on the image).
run 300 $PY benchmarks/nt_conv.py --no-nt --n 1024 4096 --max-gap-n 1024 --repeats 3 --out "$OUT/nt_conv.json"
run 90 $PY benchmarks/bench_empirical.py --n 500 2000 --width 512 --depth 3 --d 100 --implementations jacobian ntvp structured --out "$OUT/empirical.json"
ls -la "$OUT"
