"""The trainer under torchrun: 2 CPU processes (gloo) train together and agree on the DSB weights."""
import os
import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
def test_torchrun_two_processes_dsb(tmp_path):
    env = {**os.environ, "SEMSCALE_SPLITS": str(tmp_path / "splits"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "semscale_lib", "train", "--dataset", "digits-lt", "--imbalance-factor", "10",
               "--model", "resnet-tiny", "--epochs", "2", "--batch-size", "32", "--reweight", "dsb",
               "--dsb-stage-epochs", "1", "--dsb-log-every", "1", "--out", str(out), "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    config = pd.read_json(out / "config.json", typ="series")
    assert config["world_size"] == 2
    weights = pd.read_csv(out / "weights.csv")
    assert len(weights) > 0 and set(weights["epoch"]) == {2}
    a = weights[[c for c in weights.columns if c.startswith("a_")]]
    assert (a.sum(axis=1) - 10).abs().max() < 1e-9   # the CLI default normalisation, mean1: sum = C = 10
    assert len(pd.read_csv(out / "metrics.csv")) == 2
