"""Your own images through the notebooks, by parameters alone: a small generated tree in torchvision's ImageFolder
layout (``root/<class>/<image>.png``) run through notebooks 00, 02 and 04 by the batch runner (papermill), the
long-tailed subsets included."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "fox"]
PER_CLASS = 14


def write_tree(root: Path, seed: int = 0) -> Path:
    """``PER_CLASS`` 20×20 RGB PNGs per class, each class a colour and a stripe direction plus noise."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            image = rng.integers(0, 60, size=(20, 20, 3), dtype=np.uint8)
            image[..., index] += 150
            stripes = (np.arange(20) % 4 < 2) * 40
            image[..., (index + 1) % 3] += (stripes[:, None] if index % 2 else stripes[None, :]).astype(np.uint8)
            Image.fromarray(image).save(root / name / f"{i:02d}.png")
    return root


@pytest.mark.slow
def test_notebooks_00_02_04_run_on_an_image_folder(tmp_path):
    tree = write_tree(tmp_path / "tree")
    mine = {"dataset": "imagefolder", "image_root": str(tree), "image_size": 16}
    trained = {**mine, "imbalance_factor": 2, "epochs": 2, "seeds": [0]}
    profile = {"description": "image folder smoke", "notebooks": ["00", "02", "04", "05"],
               "common": {"device": "cpu"},
               "parameters": {"00": mine, "02": trained,
                              "04": {**trained, "dsb_stage_epochs": 1, "stage_sweep": []}}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    env = {**os.environ, "SEMSCALE_SPLITS": str(tmp_path / "splits"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "semscale_lib", "run", "--profile", str(tmp_path / "mine.yaml"),
                           "--out", str(out), "--jobs", "2", "--no-progress"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # 00 measured the tree's training images (a fifth of each class held out as the test set)
    scales = pd.read_csv(out / "00_quickstart" / "semantic_scales.csv")
    assert scales["name"].tolist() == CLASSES
    assert scales["count"].tolist() == [PER_CLASS - round(0.2 * PER_CLASS)] * 3
    # 02 and 04 trained on the tree, balanced and long-tailed, at the size asked for
    configs = [json.loads(p.read_text())["config"] for p in (out / "training-runs").glob("*/config.json")]
    assert {c["dataset"] for c in configs} == {"imagefolder", "imagefolder-lt"}
    assert {c["image_root"] for c in configs} == {str(tree)} and {c["image_size"] for c in configs} == {16}
    assert {c["imbalance_factor"] for c in configs if c["dataset"] == "imagefolder-lt"} == {2}
    claims = json.loads((out / "02_imbalance_on_balanced_data" / "claims.json").read_text())["claims"]
    assert [c["claim_id"] for c in claims] == ["table1-balanced", "table1-lt", "table1-lt-counts"]
    assert {c["dataset"] for c in claims} == {"imagefolder"}
    runs = pd.read_csv(out / "04_dynamic_reweighting" / "runs.csv")
    assert set(runs["method"]) >= {"CE", "DSB-CE", "LDAM", "DSB-LDAM", "LDAM-DRW"}
    assert (out / "report.md").exists()
