"""The paper-scale job's code paths, end to end, on CPU: every notebook of ``profiles/paper.yaml`` run by the batch
runner (the command a GPU user types) on tiny synthetic CIFAR-10 / CIFAR-100 files in the real pickle layout, with
only the sizes shrunk (one epoch, a few steps, a few images per class). Datasets, models (ResNet-18 / -32),
presets, losses, re-weightings, DSB and the report are the profile's own."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from semscale_lib.runner import default_profiles_dir, load_profile

REPO = Path(__file__).resolve().parent.parent

#: Sizes only: every other parameter comes from profiles/paper.yaml unchanged. The imbalance factors shrink with
#: the data (a few training images per class: a factor of 100 would leave the tail classes empty), and one seed
#: per run keeps it to minutes (the verdicts then say "not testable"; the rules themselves are tested elsewhere).
SHRINK = {
    "01": {"sizes": [2, 4, 6], "train_sizes": [2, 6], "steps": 2, "seeds": [0]},
    "02": {"epochs": 1, "imbalance_factor": 4, "seeds": [0]},
    "03": {"epochs": 1, "imbalance_factor": 2, "seeds": [0]},
    "04": {"epochs": 2, "dsb_stage_epochs": 1, "stage_sweep": [1, 2], "imbalance_factor": 2, "seeds": [0]},
    "06": {"epochs": 2, "dsb_stage_epochs": 1, "imbalance_factor": 4, "seeds": [0]},
}
SIZE_PARAMETERS = {"sizes", "train_sizes", "steps", "epochs", "dsb_stage_epochs", "stage_sweep", "imbalance_factor",
                   "seeds"}


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def write_cifar(root: Path, *, train_per_class: int, test_per_class: int, cifar100_train_per_class: int,
                seed: int = 0) -> None:
    """CIFAR-10 and CIFAR-100 under ``root/cifar`` in torchvision's pickle layout, random pixels, classes equally
    represented (CIFAR-10's training images spread over its five batch files)."""
    rng = np.random.default_rng(seed)

    def rows(labels):
        return rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)

    c10 = root / "cifar" / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    train = np.tile(np.arange(10), train_per_class)
    for b, part in enumerate(np.array_split(train, 5)):
        _dump(c10 / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5", "data": rows(part),
                                            "labels": part.tolist()})
    test = np.tile(np.arange(10), test_per_class)
    _dump(c10 / "test_batch", {"batch_label": "testing batch 1 of 1", "data": rows(test), "labels": test.tolist()})
    _dump(c10 / "batches.meta", {"label_names": [f"class_{i}" for i in range(10)]})
    c100 = root / "cifar" / "cifar-100-python"
    c100.mkdir(parents=True)
    for split, per_class in (("train", cifar100_train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(100), per_class)
        _dump(c100 / split, {"data": rows(labels), "fine_labels": labels.tolist(),
                             "coarse_labels": (labels % 20).tolist()})
    _dump(c100 / "meta", {"fine_label_names": [f"fine_{i:03d}" for i in range(100)],
                          "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)]})


def shrunk_paper_profile(path: Path) -> Path:
    """profiles/paper.yaml with :data:`SHRINK` laid over its per-notebook parameters, written to ``path``."""
    profile = yaml.safe_load((default_profiles_dir() / "paper.yaml").read_text())
    for key, values in SHRINK.items():
        profile["parameters"][key].update(values)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def test_shrinking_changes_only_sizes():
    """The smoke run is the paper profile: datasets, models, presets, methods and seeds are untouched."""
    paper = load_profile("paper")
    for key, values in SHRINK.items():
        assert set(values) <= SIZE_PARAMETERS
        assert set(values) <= set(paper["parameters"][key])
    assert paper["parameters"]["04"]["model"] == "resnet32" and paper["parameters"]["02"]["model"] == "resnet18"


@pytest.mark.slow
def test_the_paper_profile_runs_end_to_end_on_synthetic_cifar(tmp_path):
    write_cifar(tmp_path / "data", train_per_class=8, test_per_class=2, cifar100_train_per_class=4)
    profile = shrunk_paper_profile(tmp_path / "paper-smoke.yaml")
    env = {**os.environ, "SEMSCALE_DATA": str(tmp_path / "data"), "SEMSCALE_SPLITS": str(tmp_path / "splits"),
           "SEMSCALE_RUNS": str(tmp_path / "runs"), "SEMSCALE_VERIFY_CHECKSUMS": "0", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "semscale_lib", "run", "--profile", str(profile), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    entries = summary["entries"]
    assert [e["status"] for e in entries] == ["ok"] * len(entries), [e.get("error") for e in entries]
    assert sorted(str(e["notebook"])[:2] for e in entries) == sorted(load_profile("paper")["notebooks"])
    report = (out / "report.md").read_text()
    for claim in ("Sec. 3.3", "Table 1", "Table 2"):
        assert claim in report
    # the profile's own models and data reached the runs
    configs = [json.loads(p.read_text())["config"] for p in out.rglob("config.json")]
    assert {c["model"] for c in configs} >= {"resnet18", "resnet32"}
    assert {c["dataset"] for c in configs} >= {"cifar10-lt", "cifar100-lt"}
    assert {c["reweight"] for c in configs} >= {"none", "cb", "drw", "dsb", "static"}


def test_the_readme_paper_scale_example_builds_its_training_config():
    """The README's papermill example: every key is a parameter of its notebook, and the training set it asks for
    is CIFAR-100-LT (not "cifar100-lt-lt")."""
    import re
    import shlex

    from semscale_lib.runner import notebook_parameters
    from semscale_lib.studies.reweighting import long_tailed_base
    from semscale_lib.training import make_config

    line = next(l for l in (REPO / "README.md").read_text().splitlines() if l.startswith("`papermill notebooks/"))
    words = shlex.split(line.strip("`"))
    notebook, parameters = REPO / words[1], yaml.safe_load(words[words.index("-y") + 1])
    assert set(parameters) <= set(notebook_parameters(notebook))
    config = make_config(parameters["preset"], **long_tailed_base(
        parameters["dataset"], parameters["imbalance_factor"], model=parameters["model"], epochs=parameters["epochs"]))
    assert (config.dataset, config.model, config.epochs) == ("cifar100-lt", "resnet32", 200)
    assert re.search(r"imbalance_factor: 100", line)


def test_a_long_tailed_name_as_the_base_dataset_is_refused_with_the_fix():
    from semscale_lib.studies.reweighting import long_tailed_base

    with pytest.raises(ValueError, match="pass dataset='cifar100'"):
        long_tailed_base("cifar100-lt", 100)
    assert long_tailed_base("cifar100", None, epochs=1) == {"dataset": "cifar100", "epochs": 1}
