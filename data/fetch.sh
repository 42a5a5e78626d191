#!/bin/sh
# Make datasets available locally: data/fetch.sh mnist | fashion-mnist | cifar10 | cifar100 | digits
# Runs `python -m semscale_lib fetch NAME` with the repository's venv python when there is one.
set -e
repo=$(cd "$(dirname "$0")/.." && pwd)
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m semscale_lib fetch "$@"
