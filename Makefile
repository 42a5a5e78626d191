# The README's commands. Both create .venv/ on first use (Python 3.11, pip install -e .[dev,lab]).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROFILE ?= quick

.PHONY: reproduce test unit bench venv data

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,lab]'
	touch $(STAMP)

venv: $(STAMP)

## data: what the default job and the tests read (Fashion-MNIST, MNIST; digits ship with scikit-learn)
data: venv
	$(PY) -m semscale_lib fetch fashion-mnist
	$(PY) -m semscale_lib fetch mnist

## reproduce: the main job on its default profile; prints where report.md is
reproduce: data
	$(PY) -m semscale_lib run --profile $(PROFILE)

## test: unit tests, then the notebooks under nbval
test: data
	$(PY) -m pytest tests
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks/[0-9]*.ipynb

unit: data
	$(PY) -m pytest tests -m "not slow"

## bench: ratios measured side by side in one run
bench: data
	$(PY) benchmarks/bench_semantic_scale.py
	$(PY) benchmarks/bench_training.py
