#!/usr/bin/env bash
# One GPU check, about 10 minutes: the GPU tests, then the GPU benchmarks with few steps.
# Run from the repository root on a CUDA machine: bash benchmarks/gpu_check.sh
# Writes everything to $OUT/gpu_check.log (OUT defaults to ./gpu_check_out).
#
# Needs no network. The machine's python3 must already have CuPy (cupy-cuda12x or
# cupy-cuda13x matching its CUDA) and JAX with CUDA. fungrad's pure-Python dependencies
# (optree, ml_dtypes) may be missing there: carry their wheels or an installed site-packages
# folder and put it on PYTHONPATH (e.g. PYTHONPATH=carried/site-packages).
set -u
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export FUNGRAD_GPU_TESTS_REQUIRE_GPU=1   # a GPU the tests cannot see is an error, not skips
{
  echo "== $(date -u) on $(hostname)"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$PY" -c "import cupy, jax, fungrad; print('cupy', cupy.__version__, 'jax', jax.__version__, jax.devices()); print('fungrad devices', fungrad.devices())" 2>&1
  echo "== tests (GPU subset: the real GPU's parameters; CI runs the host's stand-in)"
  timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_backends.py tests/test_devices.py -k "not host_gpu" -rs --durations=8 2>&1 | tail -50
  echo "== benchmarks"
  FUNGRAD_PRINT_KERNELS=0 timeout 300 "$PY" benchmarks/bench_gpu.py --device gpu --steps 3 --batch 8 2>&1 | tail -30
  echo "== done $(date -u)"
} > "$LOG" 2>&1
tail -60 "$LOG"
