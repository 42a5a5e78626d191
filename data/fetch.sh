#!/bin/sh
# Make datasets available locally: data/fetch.sh mnist | fashion-mnist | cifar10 | cifar100 | digits
# Runs `python -m semscale_lib fetch NAME` with the repository's venv python when there is one; it tries each
# source in turn and says which one it used. fashion-mnist, in order: data/raw/FashionMNIST/raw, the installed
# Debian package's /usr/share/datasets/fashion-mnist, `apt-get download dataset-fashion-mnist` (no root; a private
# package list if the system's is empty) unpacked into data/raw/FashionMNIST/raw, torchvision download.
# Every source is listed in data/README.md.
set -e
repo=$(cd "$(dirname "$0")/.." && pwd)
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m semscale_lib fetch "$@"
