"""``semscale train-runs --executor submitit-local`` on the shrunk paper profile's notebook 03 (synthetic CIFAR-100-LT):
every run a job of submitit's local executor, which is what a Slurm job runs, without a cluster. Its own file, so
that ``make test`` runs it beside the paper profile's run instead of after it."""
from __future__ import annotations

import os

import pytest

from test_paper_profile import (CIFAR100_TRAIN_PER_CLASS, TEST_PER_CLASS, TRAIN_PER_CLASS, _semscale,
                                shrunk_paper_profile, write_cifar)


@pytest.mark.slow
def test_submitit_local_executor_trains_notebook_03_in_two_waves(tmp_path):
    """``--executor submitit-local``: every run a job of submitit's local executor (what a Slurm job runs); notebook
    03's 1/S runs are named once its CE model finished, so they train in a second wave; run again, nothing trains."""
    write_cifar(tmp_path / "data", train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS,
                cifar100_train_per_class=CIFAR100_TRAIN_PER_CLASS)
    profile = shrunk_paper_profile(tmp_path / "paper-smoke.yaml")
    env = {**os.environ, "SEMSCALE_DATA": str(tmp_path / "data"), "SEMSCALE_SPLITS": str(tmp_path / "splits"),
           "SEMSCALE_VERIFY_CHECKSUMS": "0", "OMP_NUM_THREADS": "1"}
    args = ["train-runs", "--profile", profile, "--only", "03", "--out", tmp_path / "run", "--executor",
            "submitit-local", "--no-progress"]
    done = _semscale(*args, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "wave 1: 2 run(s), executor submitit-local" in done.stdout       # ce, ldam (no validation: no budget)
    assert "wave 2: 2 run(s)" in done.stdout                                 # ce + S-weights, ldam + S-weights
    assert "4 run(s) trained, 0 reused, 0 failed, 0 not finished" in done.stdout
    assert list((tmp_path / "run" / "training-runs" / ".submitit").iterdir())   # submitit's job folders
    again = _semscale(*args, env=env, timeout=900)
    assert again.returncode == 0 and "0 run(s) trained, 4 reused, 0 failed" in again.stdout
