"""The paper-scale job's code paths, end to end, on CPU: every notebook of ``profiles/paper.yaml`` run by the batch
runner (the command a GPU user types) on tiny synthetic CIFAR-10 / CIFAR-100 files in the real pickle layout, with
only the sizes shrunk (one epoch, a few steps, a few images per class). Datasets, models (ResNet-18 / -32),
presets, losses, re-weightings, DSB and the report are the profile's own. The run is also where the tests check that
each notebook's parameters reach its code (the folders must reflect the profile's datasets, sizes and methods).

The notebooks' own defaults run under nbval (``make test``); the run here is the one place the non-default paths
(CIFAR, ResNets, Adam, every loss and re-weighting) run end to end."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from semscale_lib.data.synthetic import write_synthetic_cifar
from semscale_lib.runner import default_profiles_dir, load_profile
from semscale_lib.studies.claims import CLAIMS_FILE, VERDICTS

REPO = Path(__file__).resolve().parents[2]

#: Sizes only: every other parameter comes from profiles/paper.yaml unchanged. The imbalance factors shrink with
#: the data (a few training images per class: a factor of 100 would leave the tail classes empty), and one seed
#: per run keeps it to minutes (the verdicts then say "not testable"; the rules themselves are tested elsewhere).
SHRINK = {
    "01": {"sizes": [2, 4, 5000], "train_sizes": [2, 5000], "min_epochs": 1, "min_steps": 2, "seeds": [0]},
    "02": {"epochs": 1, "imbalance_factor": 4, "seeds": [0]},
    "03": {"epochs": 1, "imbalance_factor": 1.5, "seeds": [0]},
    "04": {"epochs": 2, "dsb_stage_epochs": 1, "stage_sweep": [1], "imbalance_factor": 1.5, "seeds": [0]},
    "06": {"epochs": 2, "dsb_stage_epochs": 1, "imbalance_factor": 4, "seeds": [0],
           "per_dataset": {"cifar100": {"imbalance_factor": 1.5}}},
}
SIZE_PARAMETERS = {"sizes", "train_sizes", "min_epochs", "min_steps", "epochs", "dsb_stage_epochs", "stage_sweep",
                   "imbalance_factor", "seeds", "per_dataset"}


def write_cifar(root: Path, *, train_per_class: int, test_per_class: int, cifar100_train_per_class: int,
                seed: int = 0) -> None:
    """CIFAR-10 and CIFAR-100 under ``root/cifar`` in torchvision's pickle layout, random pixels, classes equally
    represented (:func:`semscale_lib.data.synthetic.write_synthetic_cifar`)."""
    write_synthetic_cifar(root, train_per_class=train_per_class, test_per_class=test_per_class,
                          cifar100_train_per_class=cifar100_train_per_class, seed=seed)


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


#: the synthetic data: CIFAR-10 6 training / 2 test images per class, CIFAR-100 3 / 2 (at IF 1.5 every class keeps 2
#: or 3: a class of one image has no semantic scale, and the 1/S weights refuse it)
TRAIN_PER_CLASS, TEST_PER_CLASS, CIFAR100_TRAIN_PER_CLASS = 6, 2, 3


def _semscale(*args, env, timeout=1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semscale_lib", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _finished_runs(runs_dir: Path) -> dict[str, int]:
    """{run folder → modification time (ns) of its final table} of every finished run."""
    return {p.parent.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/per_class.csv")}


def _kill_when_a_run_finishes(command: list, env, runs_dir: Path, timeout: float = 900) -> None:
    """Start ``command`` and kill it with its workers (SIGKILL to its process group) once a first run finished."""
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + timeout
    while not _finished_runs(runs_dir) and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """The shrunk paper profile as a GPU user runs it: ``semscale plan``, then ``semscale train-runs`` (killed once a
    first run has finished, then started again: it resumes), then the notebooks through the runner, two side by
    side (``--jobs 2``). Returns ``(run folder, the runner's summary.json, its stdout + stderr, the plan (JSON),
    train-runs' output, the finished runs before the notebooks, after them)``."""
    tmp = tmp_path_factory.mktemp("paper")
    write_cifar(tmp / "data", train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS,
                cifar100_train_per_class=CIFAR100_TRAIN_PER_CLASS)
    profile = shrunk_paper_profile(tmp / "paper-smoke.yaml")
    env = {**os.environ, "SEMSCALE_DATA": str(tmp / "data"), "SEMSCALE_SPLITS": str(tmp / "splits"),
           "SEMSCALE_RUNS": str(tmp / "runs"), "SEMSCALE_VERIFY_CHECKSUMS": "0", "OMP_NUM_THREADS": "1"}
    out = tmp / "run"
    runs_dir = out / "training-runs"
    planned = _semscale("plan", "--profile", profile, "--out", out, "--json", env=env)
    assert planned.returncode == 0, planned.stderr[-3000:]
    train = [sys.executable, "-m", "semscale_lib", "train-runs", "--profile", str(profile), "--out", str(out),
             "--workers", "2", "--threads", "1", "--no-progress"]
    _kill_when_a_run_finishes(train, env, runs_dir)
    killed = _finished_runs(runs_dir)
    trained = subprocess.run(train, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    before = _finished_runs(runs_dir)
    assert killed and all(before[name] == mtime for name, mtime in killed.items())   # finished runs: not retrained
    done = _semscale("run", "--profile", profile, "--out", out, "--jobs", "2", "--no-progress", env=env)
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log
    return (out, json.loads((out / "summary.json").read_text()), log, json.loads(planned.stdout), trained.stdout,
            before, _finished_runs(runs_dir))


def _folder(paper_run, stem: str) -> Path:
    out, summary = paper_run[:2]
    entry = next(e for e in summary["entries"] if e["notebook"] == stem)
    assert entry["status"] == "ok", entry.get("error")
    return out / stem


def _claims(folder: Path) -> list[dict]:
    saved = json.loads((folder / CLAIMS_FILE).read_text())
    assert all(c["verdict"] in VERDICTS for c in saved["claims"])
    return saved["claims"]


def _configs(paper_run) -> list[dict]:
    return [json.loads(p.read_text())["config"] for p in (paper_run[0] / "training-runs").glob("*/config.json")]


@pytest.mark.slow
def test_every_notebook_of_the_paper_profile_runs_and_the_report_collects_them(paper_run):
    out, summary, log = paper_run[:3]
    entries = summary["entries"]
    assert [e["status"] for e in entries] == ["ok"] * len(entries), [e.get("error") for e in entries]
    assert [e["key"] for e in entries] == ["00", "01", "02", "03", "04", "06", "05"]   # plan order, report last
    assert sorted(e["key"] for e in entries) == sorted(load_profile("paper")["notebooks"])
    assert "2 side by side" in log and "7 notebooks, 0 failed" in log
    report = (out / "report.md").read_text()
    for claim in ("Sec. 3.3", "Table 1", "Table 2", "## Verdicts on the paper's claims", "in detail", "0.8346"):
        assert claim in report
    for stem in ("01_marginal_effect", "02_imbalance_on_balanced_data", "03_semantic_scale_balanced_losses",
                 "04_dynamic_reweighting", "06_what_tracks_accuracy"):
        assert stem in report
    claims = pd.read_csv(_folder(paper_run, "05_report") / "claims.csv")
    # paper: 01 two parts, 02 three, 03 two losses, 04 four pairs; beyond: 06's predictors and pairs
    assert claims.loc[claims["scope"] == "paper", "notebook"].value_counts().to_dict() == {
        "01_marginal_effect": 2, "02_imbalance_on_balanced_data": 3, "03_semantic_scale_balanced_losses": 2,
        "04_dynamic_reweighting": 4}
    assert (claims["scope"] == "beyond").sum() >= 10
    configs = _configs(paper_run)            # the profile's own models, data and re-weightings reached the runs
    assert {c["model"] for c in configs} == {"resnet18", "resnet32"}
    assert {c["dataset"] for c in configs} == {"cifar10", "cifar10-lt", "cifar100", "cifar100-lt"}
    assert {c["reweight"] for c in configs} == {"none", "cb", "drw", "dsb", "static"}


@pytest.mark.slow
def test_train_runs_trains_every_planned_run_and_the_notebooks_train_nothing(paper_run):
    """``plan`` names every run before anything trains; ``train-runs`` (killed, then resumed) trains them, the 1/S
    runs of notebook 03 in a second wave; the notebooks then find them all finished and leave them untouched. The
    one exception the plan states: notebook 06's arm weighted by the predictor it chooses from its trained numbers."""
    out, _, _, plan, trained, before, after = paper_run
    planned = {run["folder"] for run in plan["runs"]}
    assert plan["waiting"] and all("03_semantic_scale_balanced_losses" in line for line in plan["waiting"])
    assert len(plan["deferred"]) == 1 and "06_what_tracks_accuracy" in plan["deferred"][0]
    assert planned <= set(before)                                      # every planned run finished ...
    assert "0 failed, 0 not finished" in trained
    settings = {name: json.loads((out / "training-runs" / name / "config.json").read_text())["config"]
                for name in after}
    assert any(settings[name]["reweight"] == "static" for name in before)   # 03's 1/S runs: named after CE, trained
    assert all(after[name] == mtime for name, mtime in before.items())  # ... and no notebook trained it again
    summary = paper_run[1]                                               # the runner says so too
    assert summary["prepared_runs"] == len(before) and summary["trained_by_notebooks"] == sorted(set(after) - set(before))
    for name in set(after) - set(before):                              # what the notebooks trained themselves
        config = settings[name]
        assert config["reweight"] == "dsb" and config["dsb"]["target"] not in ("S", "S'", "W"), name


def test_00_measures_cifar10(paper_run):
    out = _folder(paper_run, "00_quickstart")
    table = pd.read_csv(out / "semantic_scales.csv")
    assert len(table) == 10 and (table["count"] == TRAIN_PER_CLASS).all()
    assert (out / "semantic_scales.png").exists()


@pytest.mark.slow
def test_01_trains_the_chosen_subsets_to_their_budget(paper_run):
    out = _folder(paper_run, "01_marginal_effect")
    training = pd.read_csv(out / "training.csv")
    # train_sizes [2, 5000 → the whole training set, 6 per class] (and the saturation point), one seed; each m
    # at least 1 epoch and 2 steps (batch 64: one batch per epoch here, so 2 epochs)
    assert set(training["m"]) >= {2, TRAIN_PER_CLASS} and (training["epochs"] == 2).all()
    assert sorted(pd.read_csv(out / "volume_totals.csv")["m"]) == [2, 4, TRAIN_PER_CLASS]
    assert "E_m (β=0.9999)" in set(pd.read_csv(out / "correlations.csv")["predictor"])
    claims = _claims(out)
    # two parts; one seed: never held or contradicted (no paired test), a failed premise is never contradicted
    assert [c["claim_id"] for c in claims] == ["marginal-effect-rise", "marginal-effect-flat"]
    assert all(c["verdict"] == "not testable" for c in claims)
    configs = [c for c in _configs(paper_run) if c.get("subset_per_class") is not None]
    assert {(c["model"], c["optimizer"], c["schedule"]) for c in configs} == {("resnet18", "adam", "exp")}
    assert {c["split_seed"] for c in configs} == {0}          # each seed draws its own nested subsets


@pytest.mark.slow
def test_02_trains_balanced_and_long_tailed_resnet18(paper_run):
    out = _folder(paper_run, "02_imbalance_on_balanced_data")
    configs = [c for c in _configs(paper_run) if c["model"] == "resnet18" and c["epochs"] == 1
               and c.get("subset_per_class") is None]   # 01's runs are per-class subsets, 06's 2 epochs
    assert sorted((c["dataset"], c["imbalance_factor"] if c["dataset"].endswith("-lt") else None)
                  for c in configs) == [("cifar10", None), ("cifar10-lt", 4)]
    assert {c["val_fraction"] for c in configs} == {0.1}     # the paper-table1 preset holds a tenth out
    table = pd.read_csv(out / "table1_balanced.csv")
    assert len(table) == 10 and table.shape[1] == 6   # quantity (with log N), 3 sources, 2 paper columns
    claims = _claims(out)
    assert [c["claim_id"] for c in claims] == ["table1-balanced", "table1-lt", "table1-lt-counts"]
    assert all(len(c["evidence"]) == 3 for c in claims)   # primary + two sensitivity sources


@pytest.mark.slow
def test_03_trains_each_loss_with_and_without_weights(paper_run):
    out = _folder(paper_run, "03_semantic_scale_balanced_losses")
    runs = pd.read_csv(out / "runs.csv")
    assert runs["method"].tolist() == ["ce", "ce + S-weights", "ldam", "ldam + S-weights"]
    weighted = json.loads((Path(runs.loc[3, "run_dir"]) / "config.json").read_text())["config"]
    assert (weighted["dataset"], weighted["model"], weighted["loss"], weighted["reweight"]) == \
        ("cifar100-lt", "resnet32", "ldam", "static")
    assert len(weighted["class_weights"]) == 100
    assert len(pd.read_csv(Path(runs.loc[3, "run_dir"]) / "metrics.csv")) == 1   # epochs: 1
    claims = _claims(out)
    assert len(claims) == 2 and all(c["verdict"] == "not testable" for c in claims)   # one seed


@pytest.mark.slow
def test_04_trains_the_profiles_methods_and_sweeps_the_stage_length(paper_run):
    out = _folder(paper_run, "04_dynamic_reweighting")
    runs = pd.read_csv(out / "runs.csv")
    assert runs["method"].tolist() == list(load_profile("paper")["parameters"]["04"]["methods"])
    dsb = runs.loc[runs["method"] == "DSB-CE", "run_dir"].item()
    assert len(pd.read_csv(Path(dsb) / "metrics.csv")) == 2
    history = pd.read_csv(out / "weights_history.csv")
    assert len(history) and (history["epoch"] == 2).all()       # re-weighting starts after n = 1
    assert pd.read_csv(out / "stage_sweep.csv")["n"].tolist() == [1]
    assert [c["claim"] for c in _claims(out)] == [
        "DSB-CE beats CE", "DSB-CE (weighted mean) beats CE", "DSB-LDAM beats LDAM", "DSB-LDAM beats LDAM-DRW"]


@pytest.mark.slow
def test_06_pools_the_chosen_studies_and_weights_by_each_target(paper_run):
    out = _folder(paper_run, "06_what_tracks_accuracy")
    ranking = pd.read_csv(out / "ranking.csv")
    assert {"S (alpha=1)", "W", "knn_accuracy", "fisher_ratio"} <= set(ranking["predictor"])
    # pooled by dataset: N is defined on the long-tailed studies of both datasets (CIFAR-10: two models)
    assert ranking.set_index("predictor").loc["N", ["k", "studies"]].tolist() == [2, 3]
    runs = pd.read_csv(out / "study_runs.csv")
    assert set(runs["study"]) == {f"cifar10 · {m} · {s}" for m in ("resnet18", "resnet32")
                                  for s in ("balanced", "long-tailed")} | \
        {f"cifar100 · resnet32 · {s}" for s in ("balanced", "long-tailed")}
    weighting = pd.read_csv(out / "weighting_runs_cifar10.csv")
    assert {"CE", "LDAM-DRW", "DSB-S", "DSB-S'", "DSB-W"} <= set(weighting["method"])
    targets = {json.loads((Path(d) / "config.json").read_text())["config"]["dsb"]["target"]
               for d, m in zip(weighting["run_dir"], weighting["method"]) if m.startswith("DSB-")}
    assert {"S", "S'", "W"} <= targets
    claims = _claims(out)
    assert claims and all(c["scope"] == "beyond" for c in claims)


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
    assert (config.data.dataset, config.model, config.optim.epochs) == ("cifar100-lt", "resnet32", 200)
    assert re.search(r"imbalance_factor: 100", line)


def test_a_long_tailed_name_as_the_base_dataset_is_refused_with_the_fix():
    from semscale_lib.studies.reweighting import long_tailed_base

    with pytest.raises(ValueError, match="pass dataset='cifar100'"):
        long_tailed_base("cifar100-lt", 100)
    assert long_tailed_base("cifar100", None, epochs=1) == {"dataset": "cifar100", "epochs": 1}
