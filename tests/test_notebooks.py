"""The notebooks: structure (fast) and a papermill run of every notebook with small, non-default parameters (slow).

The slow test checks that the parameters reached the code: each notebook's output folder must reflect the chosen
dataset (scikit-learn's digits instead of Fashion-MNIST), epochs, losses and methods.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from semscale_lib import runner
from semscale_lib.studies.claims import CLAIMS_FILE, VERDICTS

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KEYS = ["00", "01", "02", "03", "04", "05", "06"]
TRAINING = ["01", "02", "03", "04"]


def _notebooks() -> dict[str, Path]:
    return runner.discover_notebooks(NOTEBOOKS)


def _parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


# ---------------------------------------------------------------------------------------------------- structure
def test_all_notebooks_exist():
    assert list(_notebooks()) == KEYS


@pytest.mark.parametrize("key", KEYS)
def test_notebook_structure(key):
    nb = nbformat.read(_notebooks()[key], as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "from semscale_lib" in code[0].source and "require_versions" in code[0].source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = _parameters_cell(nb)
    assert params is code[1], "the parameters cell comes right after the imports"
    tree = ast.parse(params.source)
    names = []
    for statement in tree.body:
        assert isinstance(statement, ast.Assign), f"only assignments in the parameters cell: {ast.dump(statement)}"
        ast.literal_eval(statement.value)   # literals only: papermill does not recompute derived values
        names.append(statement.targets[0].id)
    assert "out_dir" in names
    if key in TRAINING:
        assert {"dataset", "model", "seeds", "device", "threads"} <= set(names)
        assert "epochs" in names or "steps" in names
    # papermill must be able to read every parameter (a comment with '=' would hide it from the runner)
    assert set(runner.notebook_parameters(_notebooks()[key])) == set(names)


# ------------------------------------------------------------------------------------- execution with parameters
SMALL = {
    "00": {"dataset": "digits", "image_size": 8},
    "01": {"dataset": "digits", "sizes": [5, 10, 20, 50, 200], "train_sizes": [10, 50, 200], "steps": 4,
           "seeds": [0, 1]},
    "02": {"dataset": "digits", "imbalance_factor": 10, "epochs": 1, "seeds": [0]},
    "03": {"dataset": "digits", "imbalance_factor": 10, "epochs": 1, "seeds": [0], "losses": ["ce", "ldam"],
           "many_threshold": 100, "few_threshold": 20},
    "04": {"dataset": "digits", "imbalance_factor": 10, "epochs": 2, "seeds": [0],
           "methods": {"CE": {"loss": "ce"}, "DSB-CE": {"loss": "ce", "reweight": "dsb"}},
           "pairs": [["DSB-CE", "CE"]], "dsb_stage_epochs": 1, "stage_sweep": [1, 2], "weights_log_every": 1,
           "many_threshold": 100, "few_threshold": 20},
    "06": {"studies": [["digits", "cnn-small"], ["digits", "resnet-tiny"]], "seeds": [0],
           "per_dataset": {"digits": {"epochs": 2, "imbalance_factor": 10, "many_threshold": 100,
                                      "few_threshold": 20}},
           "weighting_datasets": ["digits"], "dsb_stage_epochs": 1},
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every notebook run once through papermill with SMALL parameters into one run folder (05 last)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    run_dir = tmp_path_factory.mktemp("run")
    patch = pytest.MonkeyPatch()
    patch.setenv("SEMSCALE_SPLITS", str(run_dir / "splits"))   # kernels inherit the environment
    patch.setenv("SEMSCALE_RUNS", str(run_dir / "runs"))
    errors = {}
    try:
        for key, path in _notebooks().items():
            out = run_dir / path.stem
            params = dict(SMALL.get(key, {}), out_dir=str(out))
            if "threads" in runner.notebook_parameters(path):
                params["threads"] = 1            # the tests run on several processes: one thread each
            if "runs_dir" in runner.notebook_parameters(path):
                params["runs_dir"] = str(run_dir / "training-runs")   # shared, as the batch runner does
            if key == "05":
                params["run_dir"] = str(run_dir)
            out.mkdir(parents=True, exist_ok=True)
            try:
                papermill.execute_notebook(str(path), str(out / path.name), parameters=params,
                                           kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
            except PapermillExecutionError as error:
                errors[key] = f"cell {error.exec_count}: {error.ename}: {error.evalue}"
    finally:
        patch.undo()
    return run_dir, errors


def _out(executed, key) -> Path:
    run_dir, errors = executed
    assert key not in errors, errors[key]
    return run_dir / _notebooks()[key].stem


def _claims(folder: Path) -> dict:
    saved = json.loads((folder / CLAIMS_FILE).read_text())
    assert all(c["verdict"] in VERDICTS for c in saved["claims"])
    return saved


@pytest.mark.slow
def test_00_quickstart_measures_the_chosen_dataset(executed):
    out = _out(executed, "00")
    table = pd.read_csv(out / "semantic_scales.csv")
    assert len(table) == 10 and table["count"].between(130, 140).all()   # digits, not Fashion-MNIST's 6000
    assert _claims(out)["parameters"]["image_size"] == 8
    assert (out / "semantic_scales.png").exists()


@pytest.mark.slow
def test_01_marginal_effect_trains_the_chosen_subsets(executed):
    out = _out(executed, "01")
    training = pd.read_csv(out / "training.csv")
    # digits' smallest training class has 131 images: 200 is capped to it
    assert training["m"].tolist() == [10, 10, 50, 50, 131, 131] and (training["steps"] == 4).all()
    assert sorted(pd.read_csv(out / "volume_totals.csv")["m"]) == [5, 10, 20, 50, 131]
    saved = _claims(out)
    assert saved["parameters"]["dataset"] == "digits" and len(saved["claims"]) == 1
    assert saved["claims"][0]["verdict"] in ("not testable", "contradicted")   # 2 seeds: not enough to hold
    assert "E_m (β=0.9999)" in set(pd.read_csv(out / "correlations.csv")["predictor"])


@pytest.mark.slow
def test_02_correlations_on_the_chosen_data(executed):
    out = _out(executed, "02")
    configs = [json.loads(p.read_text())["config"] for p in (executed[0] / "training-runs").glob("*/config.json")]
    balanced = [c for c in configs if c["dataset"] == "digits" and c["epochs"] == 1   # 06's runs have 2 epochs,
                and c.get("max_steps") is None]                                     # 01's a steps budget
    assert len(balanced) == 1 and balanced[0]["model"] == "cnn-small"
    assert balanced[0]["subset_per_class"] == 131   # exactly balanced: every class cut to the smallest
    assert any(c["dataset"] == "digits-lt" and c["imbalance_factor"] == 10 and c["epochs"] == 1 for c in configs)
    table = pd.read_csv(out / "table1_balanced.csv")
    assert len(table) == 9 and table.shape[1] == 6   # quantity, 3 sources, 2 paper columns
    claims = _claims(out)["claims"]
    assert [c["claim_id"] for c in claims] == ["table1-balanced", "table1-lt"]
    assert all(len(c["evidence"]) == 3 for c in claims)   # primary + two sensitivity sources


@pytest.mark.slow
def test_03_losses_with_and_without_weights(executed):
    out = _out(executed, "03")
    runs = pd.read_csv(out / "runs.csv")
    assert runs["method"].tolist() == ["ce", "ce + S-weights", "ldam", "ldam + S-weights"]
    weighted = json.loads((Path(runs.loc[3, "run_dir"]) / "config.json").read_text())["config"]
    assert weighted["loss"] == "ldam" and weighted["reweight"] == "static" and len(weighted["class_weights"]) == 10
    assert len(pd.read_csv(Path(runs.loc[3, "run_dir"]) / "metrics.csv")) == 1   # epochs: 1
    claims = _claims(out)["claims"]
    assert len(claims) == 2 and all(c["verdict"] == "not testable" for c in claims)   # one seed


@pytest.mark.slow
def test_04_dynamic_reweighting_with_the_chosen_methods(executed):
    out = _out(executed, "04")
    runs = pd.read_csv(out / "runs.csv")
    assert runs["method"].tolist() == ["CE", "DSB-CE"]
    assert len(pd.read_csv(Path(runs.loc[1, "run_dir"]) / "metrics.csv")) == 2
    history = pd.read_csv(out / "weights_history.csv")
    assert len(history) and (history["epoch"] == 2).all()       # re-weighting starts after n = 1
    assert pd.read_csv(out / "stage_sweep.csv")["n"].tolist() == [1, 2]
    assert [c["claim"] for c in _claims(out)["claims"]] == ["DSB-CE beats CE"]


@pytest.mark.slow
def test_05_report_collects_the_run(executed):
    run_dir, _ = executed
    out = _out(executed, "05")
    report = (run_dir / "report.md").read_text()
    for stem in ("01_marginal_effect", "02_imbalance_on_balanced_data", "03_semantic_scale_balanced_losses",
                 "04_dynamic_reweighting"):
        assert stem in report
    assert "## Verdicts" in report and "## Claims" in report and "0.8346" in report
    assert len(pd.read_csv(out / "claims.csv")) == 1 + 2 + 2 + 1


@pytest.mark.slow
def test_06_what_tracks_accuracy_pools_the_chosen_studies(executed):
    out = _out(executed, "06")
    ranking = pd.read_csv(out / "ranking.csv")
    assert {"S (alpha=1)", "W", "knn_accuracy", "fisher_ratio"} <= set(ranking["predictor"])
    assert set(ranking.loc[ranking["predictor"] == "N", "k"]) == {2}     # N: only the two long-tailed studies
    runs = pd.read_csv(out / "study_runs.csv")
    assert set(runs["study"]) == {f"digits · {m} · {s}" for m in ("cnn-small", "resnet-tiny")
                                  for s in ("balanced", "long-tailed")}
    weighting = pd.read_csv(out / "weighting_runs_digits.csv")
    assert {"CE", "LDAM-DRW", "DSB-S", "DSB-S'", "DSB-W"} <= set(weighting["method"])
    targets = {json.loads((Path(d) / "config.json").read_text())["config"]["dsb"]["target"]
               for d, m in zip(weighting["run_dir"], weighting["method"]) if m.startswith("DSB-")}
    assert {"S", "S'", "W"} <= targets
    claims = _claims(out)["claims"]
    assert claims and all(c["scope"] == "beyond" for c in claims)
