# The README's commands. Both create .venv/ on first use (Python 3.11, pip install -c constraints.txt -e .[dev,lab]).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROFILE ?= quick
# pytest-xdist processes for the unit tests (this project's CI machine has 2 cores)
TEST_WORKERS ?= 2
# notebooks run side by side (make reproduce: --jobs; make test: nbval's processes), one CPU thread each
JOBS ?= 2
# nbval runs the notebooks on JOBS processes (notebooks/conftest.py: in which order), then the report, which reads
# every other notebook's outputs
NOTEBOOKS = $(filter-out %_report.ipynb,$(sort $(wildcard notebooks/[0-9]*.ipynb)))
REPORTS   = $(wildcard notebooks/[0-9]*_report.ipynb)
# pytest-xdist: a file's tests (a notebook's cells) on one worker, files handed out in collection order (the
# conftest.py files put the long ones first)
XDIST_ORDERED = --dist loadfile --no-loadscope-reorder
# nbval: a kernel gets 2 minutes to answer on a busy machine (notebooks/conftest.py also starts one kernel at a
# time and starts one again that never answered)
NBVAL_OPTIONS = -p no:cacheprovider --nbval-kernel-startup-timeout 120

.PHONY: reproduce test unit bench venv data notebooks-check

# Notebooks: notebooks/*.ipynb are paired by jupytext (notebooks/jupytext.toml) with the percent-format sources
# notebooks/_source/*.py; JupyterLab opens and saves either. After editing a source outside Lab:
#     .venv/bin/python -m jupytext --sync notebooks/_source/*.py      # inputs into the .ipynb, outputs kept
#     .venv/bin/python notebooks/build_notebooks.py --execute 01      # re-run changed notebooks (default parameters)
#     .venv/bin/python notebooks/build_notebooks.py --check           # what `make test` runs first
# nbval directives are cell tags: `# %% tags=["nbval-check-output"]` (or nbval-ignore-output, nbval-skip).

# constraints.txt pins the torch/torchvision pair of this project's machines; pyproject.toml asks only for ranges
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,lab]'
	touch $(STAMP)

venv: $(STAMP)

## data: what the default job and the tests read (Fashion-MNIST, MNIST; digits ship with scikit-learn). A stamp in
## data/raw/ records each successful fetch (it goes when data/raw/ goes); `make data FETCH=always` fetches again.
DATA_STAMPS = data/raw/.fetched-fashion-mnist data/raw/.fetched-mnist
ifeq ($(FETCH),always)
.PHONY: $(DATA_STAMPS)
endif
data: $(DATA_STAMPS)

data/raw/.fetched-%: | venv
	$(PY) -m semscale_lib fetch $*
	touch $@

## reproduce: the main job on its default profile, JOBS notebooks side by side; prints where report.md is
reproduce: data
	$(PY) -m semscale_lib run --profile $(PROFILE) --jobs $(JOBS)

## notebooks-check: every notebook matches its source in notebooks/_source/ and carries no volatile metadata
notebooks-check: venv
	$(PY) notebooks/build_notebooks.py --check

## test: the notebooks-check, unit tests (on TEST_WORKERS processes), then the notebooks under nbval (JOBS at once)
test: data notebooks-check
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest tests -n $(TEST_WORKERS) $(XDIST_ORDERED)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest --nbval-lax $(NBVAL_OPTIONS) -n $(JOBS) $(XDIST_ORDERED) \
	    $(NOTEBOOKS)
	$(PY) -m pytest --nbval-lax $(NBVAL_OPTIONS) $(REPORTS)

unit: data
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest tests -n $(TEST_WORKERS) $(XDIST_ORDERED) -m "not slow"

## bench: ratios measured side by side in one run
bench: data
	$(PY) benchmarks/bench_semantic_scale.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_cpu_training.py
	$(PY) benchmarks/bench_side_by_side.py
	$(PY) benchmarks/bench_cheap_seeds.py
