#!/usr/bin/env bash
# GPU check: CIFAR-100-LT-shaped ResNet-32 (batch 128, bf16, channels-last, as the trainer runs it on CUDA) for a
# few epochs with and without DSB; prints images/s and the projected time of the full 200-epoch protocol, then the
# input-pipeline comparison (TensorBatches on the GPU vs a PIL DataLoader) on the same GPU, then a time-boxed slice of
# the paper profile (benchmarks/paper_slice.py: plan, train-runs, notebooks; GPU utilisation; projected wall time).
#
#   benchmarks/gpu_check.sh                 # real CIFAR-100-LT if CIFAR-100 is on disk, else synthetic data
#   benchmarks/gpu_check.sh --synthetic     # always synthetic (random uint8 of CIFAR-100-LT's shape)
#   EPOCHS=5 benchmarks/gpu_check.sh        # more epochs per variant (default 3; epoch 1 is warm-up)
#
# Exits with status 2 and says so when no CUDA GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: nvidia-smi sees a GPU but torch cannot use it (CPU-only torch build or driver mismatch):" >&2
    "$PY" -c 'import torch; print("  torch", torch.__version__, "built for CUDA", torch.version.cuda)' >&2 || true
  else
    echo "gpu_check: no CUDA GPU present (torch.cuda.is_available() is False); nothing to check." >&2
  fi
  exit 2
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" benchmarks/bench_training.py --gpu-check --epochs "${EPOCHS:-3}" "$@"
"$PY" benchmarks/bench_training.py --only pipeline --device cuda --threads "${THREADS:-4}"
# the paper profile itself, time-boxed: plan, train-runs on every GPU, notebooks; utilisation and projected time
"$PY" benchmarks/paper_slice.py --epochs "${SLICE_EPOCHS:-2}"
