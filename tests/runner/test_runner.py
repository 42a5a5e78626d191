"""Tests of semscale_lib.runner: profiles, grids, planning, and a batch run over tiny synthetic notebooks."""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from semscale_lib import runner
from semscale_lib.runner.profiles import _grid, _grid_points
from semscale_lib.cli import main as cli_main


def _notebook(path, parameters: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("from pathlib import Path"), params,
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)


@pytest.fixture
def suite(tmp_path):
    """Four tiny notebooks: 01 ok (declares `value`), 02 fails in its 3rd code cell, 03 ok, 09 a report."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_ok.ipynb", 'value = 1\nlabel = "a"\nout_dir = "out"',
              "Path(out_dir).mkdir(parents=True, exist_ok=True)\n"
              "(Path(out_dir) / 'result.txt').write_text(f'{value} {label}')")
    _notebook(folder / "02_fails.ipynb", 'out_dir = "out"', "x = 1", "raise ValueError('boom in cell three')",
              "never = True")
    _notebook(folder / "03_also_ok.ipynb", 'out_dir = "out"',
              "Path(out_dir).mkdir(parents=True, exist_ok=True)\n(Path(out_dir) / 'done.txt').write_text('yes')")
    _notebook(folder / "09_report.ipynb", 'run_dir = "."\nout_dir = "out"',
              "ran = sorted(p.parent.name for p in Path(run_dir).rglob('*.txt'))\n"
              "(Path(run_dir) / 'report.md').write_text('ran: ' + ', '.join(ran))")
    (folder / "notes.ipynb").write_text("{}")   # not NN_name: ignored
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "tiny.yaml").write_text(
        "description: test profile\ncommon: {value: 5}\nparameters:\n  '01': {label: b}\n")
    (profiles / "other.yaml").write_text("notebooks: ['01']\n")
    (profiles / "grid-x.yaml").write_text("value: [1, 2]\nlabel: [x, y, z]\n")
    return folder, profiles


# ---------------------------------------------------------------------------------------------- profiles and grids
def test_load_profile_and_unknown_profile_lists_valid_ones(suite):
    _, profiles = suite
    profile = runner.load_profile("tiny", profiles)
    assert profile["name"] == "tiny" and profile["notebooks"] is None
    assert profile["common"] == {"value": 5}
    assert profile["parameters"] == {"01": {"label": "b"}}
    assert runner.load_profile("other", profiles)["notebooks"] == ["01"]
    assert runner.available_profiles(profiles) == ["other", "tiny"]   # grid files are not profiles
    with pytest.raises(ValueError, match="unknown profile 'nope'; valid profiles: other, tiny"):
        runner.load_profile("nope", profiles)
    by_path = runner.load_profile(str(profiles / "tiny.yaml"))
    assert by_path["name"] == "tiny"


def test_bad_profile_keys_are_rejected(tmp_path):
    (tmp_path / "bad.yaml").write_text("paramters: {}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        runner.load_profile("bad", tmp_path)


def test_repository_profiles_load():
    names = runner.available_profiles()
    assert {"quick", "cpu", "paper"} <= set(names)
    for name in ("quick", "cpu", "paper"):
        assert runner.load_profile(name)["description"]
    grid = runner.load_grid(runner.default_profiles_dir() / "grid-example.yaml")
    assert grid["notebooks"] == ["03", "04"] and len(runner.expand_grid(grid["values"])) == 4


def test_grid_expansion_is_a_cartesian_product(suite):
    _, profiles = suite
    grid = runner.load_grid(profiles / "grid-x.yaml")
    points = runner.expand_grid(grid["values"])
    assert len(points) == 6
    assert points[0] == {"value": 1, "label": "x"} and points[-1] == {"value": 2, "label": "z"}
    assert {(p["value"], p["label"]) for p in points} == {(v, l) for v in (1, 2) for l in "xyz"}
    assert runner.expand_grid({}) == [{}]
    with pytest.raises(ValueError):
        runner.expand_grid({"value": "abc"})
    assert runner.point_label({"seeds": [0, 1], "lr": 0.1}) == "seeds=0-1_lr=0.1"


def test_grid_values_must_be_lists(tmp_path):
    (tmp_path / "g.yaml").write_text("epochs: 3\n")
    with pytest.raises(ValueError, match="non-empty lists"):
        runner.load_grid(tmp_path / "g.yaml")


def test_plan_jobs_parameters_grid_and_report_last(suite, tmp_path):
    folder, profiles = suite
    profile = runner.load_profile("tiny", profiles)
    grid = runner.load_grid(profiles / "grid-x.yaml")
    run_dir = tmp_path / "run"
    jobs = runner.plan_jobs(profile, run_dir, notebooks_dir=folder, grid=grid)
    labels = [job.notebook.stem for job in jobs]
    assert labels == ["01_ok"] * 6 + ["02_fails", "03_also_ok", "09_report"]
    first = jobs[0]
    # the grid overrides the profile; only declared parameters are passed; out_dir points into the run folder
    assert first.parameters == {"value": 1, "label": "x", "out_dir": str(run_dir / "01_ok" / "value=1_label=x")}
    assert jobs[6].parameters == {"out_dir": str(run_dir / "02_fails")}
    assert jobs[-1].report and jobs[-1].parameters["run_dir"] == str(run_dir)
    only = runner.plan_jobs(profile, run_dir, notebooks_dir=folder, only=["3"])
    assert [j.notebook.stem for j in only] == ["03_also_ok", "09_report"]
    assert [j.notebook.stem for j in runner.plan_jobs(profile, run_dir, notebooks_dir=folder, only=["03"],
                                                      report=False)] == ["03_also_ok"]
    with pytest.raises(ValueError, match="unknown notebook keys"):
        runner.plan_jobs(profile, run_dir, notebooks_dir=folder, only=["07"])
    typo = dict(profile, parameters={"01": {"valeu": 3}})
    with pytest.raises(ValueError, match="valeu"):
        runner.plan_jobs(typo, run_dir, notebooks_dir=folder)
    # a relative run folder reaches the notebooks as an absolute path: they run with their own folder as cwd
    relative = runner.plan_jobs(profile, Path("rel") / "run", notebooks_dir=folder)
    assert all(Path(job.parameters["out_dir"]).is_absolute() for job in relative)
    assert relative[-1].parameters["run_dir"] == str(Path.cwd() / "rel" / "run")
    report_typo = dict(profile, parameters={"09": {"run_dri": "x"}})
    with pytest.raises(ValueError, match=r"sets \['run_dri'\] for 09_report.ipynb"):
        runner.plan_jobs(report_typo, run_dir, notebooks_dir=folder)


def test_a_profile_grid_runs_every_notebook_per_point_and_typos_are_refused(suite, tmp_path):
    folder, profiles = suite
    (profiles / "gridded.yaml").write_text("grid:\n  notebooks: ['01']\n  value: [1, 2]\n")
    profile = runner.load_profile("gridded", profiles)
    assert profile["grid"]["values"] == {"value": [1, 2]} and profile["grid"]["notebooks"] == ["01"]
    jobs = runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder, grid=profile["grid"])
    assert [j.label for j in jobs][:2] == ["01_ok [value=1]", "01_ok [value=2]"]
    assert [j.notebook.stem for j in jobs][2:] == ["02_fails", "03_also_ok", "09_report"]
    with pytest.raises(ValueError, match=r"grid parameters \['valeu'\] are declared by none"):
        runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder,
                         grid={"values": {"valeu": [1]}, "notebooks": None})
    with pytest.raises(ValueError, match=r"grid: unknown notebook keys \['07'\]"):
        runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder,
                         grid={"values": {"value": [1]}, "notebooks": ["07"]})
    (profiles / "badgrid.yaml").write_text("grid: [1, 2]\n")
    with pytest.raises(ValueError, match="'grid' must map"):
        runner.load_profile("badgrid", profiles)


def test_a_typo_in_common_is_refused_with_the_valid_names(suite, tmp_path):
    folder, profiles = suite
    profile = runner.load_profile("tiny", profiles)
    typo = dict(profile, common={"valeu": 5})
    with pytest.raises(ValueError, match=r"common sets \['valeu'\], which none of its notebooks .* declares; "
                                         r"valid: \['label', 'value'\]"):
        runner.plan_jobs(typo, tmp_path / "run", notebooks_dir=folder)
    # checked against every notebook the profile runs, whatever --only selects: `value` (01's) is fine with 03
    assert [j.notebook.stem for j in runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder,
                                                      only=["03"])] == ["03_also_ok", "09_report"]
    with pytest.raises(ValueError, match="valeu"):
        runner.plan_jobs(typo, tmp_path / "run", notebooks_dir=folder, only=["03"])
    # a per-notebook section is checked even when --only leaves its notebook out
    section_typo = dict(profile, parameters={"01": {"lable": "x"}})
    with pytest.raises(ValueError, match=r"sets \['lable'\] for 01_ok.ipynb"):
        runner.plan_jobs(section_typo, tmp_path / "run", notebooks_dir=folder, only=["03"])
    # a typo leaves no run folder behind
    with pytest.raises(ValueError, match="valeu"):
        runner.run(typo, notebooks_dir=folder, out=tmp_path / "never", stream=io.StringIO(), progress=False)
    assert not (tmp_path / "never").exists()


def test_grid_names_and_notebooks_are_checked_against_the_profile(suite, tmp_path):
    folder, profiles = suite
    profile = runner.load_profile("tiny", profiles)
    with pytest.raises(ValueError, match=r"grid parameters \['lable'\] are declared by none.*valid: \['label', "
                                         r"'value'\]"):
        runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder,
                         grid={"values": {"lable": [1]}, "notebooks": None})
    only_01 = dict(profile, notebooks=["01"])
    with pytest.raises(ValueError, match=r"notebooks \['03'\] are not varied by this run"):
        runner.plan_jobs(only_01, tmp_path / "run", notebooks_dir=folder,
                         grid={"values": {"value": [1]}, "notebooks": ["03"]})
    with pytest.raises(ValueError, match=r"notebooks \['09'\] are not varied"):      # a report runs once
        runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder,
                         grid={"values": {"value": [1]}, "notebooks": ["09"]})
    # a grid limited to notebooks that --only leaves out is still valid (it was refused before)
    jobs = runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder, only=["03"],
                            grid={"values": {"value": [1, 2]}, "notebooks": ["01"]})
    assert [j.notebook.stem for j in jobs] == ["03_also_ok", "09_report"]


def test_the_repository_profiles_plan_with_and_without_only():
    for name in ("quick", "cpu", "paper"):
        profile = runner.load_profile(name)
        for only in (None, ["00"], ["02"]):
            assert runner.plan_jobs(profile, "/tmp/unused", grid=profile["grid"], only=only)


@pytest.mark.parametrize("where", ["common", "section", "grid"])
@pytest.mark.parametrize("name", ["out_dir", "run_dir", "runs_dir"])
def test_the_runners_own_parameters_cannot_be_set(suite, tmp_path, where, name):
    folder, profiles = suite
    profile = runner.load_profile("tiny", profiles)
    grid = None
    if where == "common":
        profile = dict(profile, common={name: "x"})
    elif where == "section":
        profile = dict(profile, parameters={"09": {name: "x"}})
    else:
        grid = {"values": {name: ["x"]}, "notebooks": None}
    with pytest.raises(ValueError, match=rf"sets \['{name}'\], which the runner sets itself"):
        runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder, grid=grid)


def test_grid_points_whose_folders_collide_are_refused(suite, tmp_path):
    folder, profiles = suite
    profile = runner.load_profile("other", profiles)
    for values, first, second in ((["a/b", "a-b"], "'a/b'", "'a-b'"), ([1, 1], "1", "1"),
                                  (["x" * 130 + "1", "x" * 130 + "2"], "'xxx", "'xxx")):
        with pytest.raises(ValueError, match=rf"the points {{'label': {first}.*}} and {{'label': {second}.*}} of "
                                             r"01_ok would share the folder"):
            runner.plan_jobs(profile, tmp_path / "run", notebooks_dir=folder,
                             grid={"values": {"label": values}, "notebooks": None})


def test_runs_dir_is_the_batch_runs_shared_training_folder(tmp_path):
    """A notebook that declares `runs_dir` gets <run folder>/training-runs; others do not get it."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_trains.ipynb", 'runs_dir = "elsewhere"\nout_dir = "out"',
              "Path(out_dir).mkdir(parents=True, exist_ok=True)\n(Path(out_dir) / 'runs.txt').write_text(runs_dir)")
    _notebook(folder / "02_plain.ipynb", 'out_dir = "out"', "x = 1")
    profile = {"name": "shared", "notebooks": None, "common": {}, "parameters": {}}
    run_dir = tmp_path / "batch"
    jobs = runner.plan_jobs(profile, run_dir, notebooks_dir=folder)
    assert jobs[0].parameters == {"out_dir": str(run_dir / "01_trains"), "runs_dir": str(run_dir / "training-runs")}
    assert jobs[1].parameters == {"out_dir": str(run_dir / "02_plain")}
    code, ran = runner.run(profile, notebooks_dir=folder, out=run_dir, only=["01"], stream=io.StringIO(),
                           progress=False)
    assert code == 0 and ran == run_dir
    assert (run_dir / "01_trains" / "runs.txt").read_text() == str(run_dir / "training-runs")


def test_cli_run_refuses_a_taken_out_folder_and_force_writes_into_it(suite, tmp_path, capsys):
    folder, profiles = suite
    (tmp_path / "afile").write_text("keep")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep me")
    base = ["run", "--profile", str(profiles / "other.yaml"), "--notebooks", str(folder), "--no-report",
            "--no-progress"]
    for out, message in ((tmp_path / "afile", "is an existing file, not a folder"),
                         (taken, r"is not empty \(holds notes\.txt\); .*add --force"), ("", "--out must name a folder")):
        with pytest.raises(SystemExit) as stopped:
            cli_main(base + ["--out", str(out)])
        assert re.fullmatch(rf"semscale run: error: (run folder {re.escape(str(out))} )?{message}.*",
                            str(stopped.value.code))
    assert (tmp_path / "afile").read_text() == "keep" and [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert cli_main(base + ["--out", str(taken), "--force"]) == 0
    assert (taken / "notes.txt").read_text() == "keep me" and (taken / "01_ok" / "result.txt").exists()


def test_the_cpu_profile_runs_every_claim_on_three_datasets():
    profile = runner.load_profile("cpu")
    jobs = runner.plan_jobs(profile, "/tmp/unused", grid=profile["grid"])
    labels = [j.label for j in jobs]
    for key in ("01_marginal_effect", "02_imbalance_on_balanced_data", "03_semantic_scale_balanced_losses",
                "04_dynamic_reweighting"):
        for dataset in ("double-mnist", "fashion-mnist", "mnist"):
            assert f"{key} [{dataset}]" in labels
    assert labels[-1] == "05_report"
    # each point's own settings reach only the notebooks that declare them: Double-MNIST's 6 seeds and 16 epochs
    double = {j.key: j for j in jobs if j.name == "double-mnist"}
    assert double["04"].parameters["seeds"] == [0, 1, 2, 3, 4, 5] and double["04"].parameters["epochs"] == 16
    assert "epochs" not in double["01"].parameters and double["01"].parameters["min_epochs"] == 32
    assert double["02"].parameters["balanced_per_class"] == 100
    # points with their own notebooks: Double-MNIST's 6 seeds reach the paired claims (03, 04) only
    assert double["03"].parameters["seeds"] == [0, 1, 2, 3, 4, 5] and "seeds" not in double["02"].parameters
    # the longest notebooks first (04, then 02), 06 after the 02 runs it reads, the report last
    keys = [j.key for j in jobs]
    assert keys[:6] == ["04", "04", "04", "02", "02", "02"] and keys[6] == "06" and jobs[-1].key == "05"
    # 06 reads 02's runs: per dataset the same epochs and balanced set, so nothing is trained twice
    six = next(j for j in jobs if j.key == "06").parameters
    for job in (j for j in jobs if j.key == "02"):
        own = six["per_dataset"].get(job.name, {})
        assert own.get("epochs", six.get("epochs")) == job.parameters["epochs"]
        assert own.get("balanced_per_class", six["balanced_per_class"]) == job.parameters["balanced_per_class"]
    # the paired claims' long-tailed studies keep the budgets measured at their plateau
    assert {(j.name, j.parameters["epochs"]) for j in jobs if j.key in ("03", "04")} == {
        ("double-mnist", 16), ("fashion-mnist", 12), ("mnist", 12)}
    assert str(double["03"].out_dir).endswith("03_semantic_scale_balanced_losses/double-mnist")
    assert {j.parameters["balanced_per_class"] for j in jobs if j.key == "02" and j.name != "double-mnist"} == {1000}


def test_grid_points_give_each_point_its_own_parameters_and_folder(tmp_path):
    grid = _grid({"notebooks": ["01"], "points": [{"name": "a", "x": 1, "y": [2]}, {"x": 3}]}, "test")
    assert _grid_points(grid, {"x": None}) == [("a", {"x": 1}), (None, {"x": 3})]
    only = _grid({"points": [{"name": "a", "notebooks": ["3"], "x": 1}, {"name": "b", "x": 2}]}, "test")
    assert _grid_points(only, {"x": None}, "03") == [("a", {"x": 1}), ("b", {"x": 2})]
    assert _grid_points(only, {"x": None}, "01") == [("b", {"x": 2})]
    with pytest.raises(ValueError, match="either points or lists"):
        _grid({"points": [{"x": 1}], "y": [1, 2]}, "test")
    with pytest.raises(ValueError, match="non-empty list of parameter mappings"):
        _grid({"points": []}, "test")


# --------------------------------------------------------------------------------------------------- a real run
def test_run_reports_the_failing_cell_and_keeps_going(suite, tmp_path):
    folder, profiles = suite
    out = io.StringIO()
    code, run_dir = runner.run("tiny", profiles_dir=profiles, notebooks_dir=folder, out=tmp_path / "run",
                               stream=out, progress=False)
    assert code == 1
    lines = out.getvalue().strip().splitlines()
    assert re.fullmatch(rf"4 notebooks, 1 failed, (\d+ min )?\d+ s; report: {re.escape(str(run_dir / 'report.md'))}", lines[-1])
    # the notebook after the failing one still ran, with the profile's parameters
    assert (run_dir / "01_ok" / "result.txt").read_text() == "5 b"
    assert (run_dir / "03_also_ok" / "done.txt").read_text() == "yes"
    assert (run_dir / "report.md").read_text() == "ran: 01_ok, 03_also_ok"
    # executed notebooks sit beside their outputs
    assert (run_dir / "02_fails" / "02_fails.ipynb").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["profile"] == "tiny"
    entries = {e["notebook"]: e for e in summary["entries"]}
    assert [e["notebook"] for e in summary["entries"]] == ["01_ok", "02_fails", "03_also_ok", "09_report"]
    failed = entries["02_fails"]
    assert failed["status"] == "failed" and failed["ename"] == "ValueError"
    # cells: import, parameters, papermill's injected parameters, x = 1, the raise (5th executed)
    assert "boom in cell three" in failed["evalue"] and failed["exec_count"] == 5 and failed["cell_index"] == 4
    assert "cell 5" in failed["error"] and failed["cell_source"].startswith("raise ValueError")
    assert all(entries[k]["status"] == "ok" for k in ("01_ok", "03_also_ok", "09_report"))
    assert entries["01_ok"]["parameters"] == {"value": 5, "label": "b", "out_dir": str(run_dir / "01_ok")}
    markdown = (run_dir / "summary.md").read_text()
    assert "02_fails" in markdown and "ValueError" in markdown and "**failed**" in markdown
    assert any("1 of 4 failed" in line for line in lines)


def test_a_cell_timeout_is_one_line_and_the_kernel_prints_no_warnings(tmp_path, capfd):
    """A cell that runs over --timeout is interrupted: the summary records which notebook and cell, on one line, and
    the kernel's stderr (which the runner's console shows) has neither a ZMQError traceback nor the warning
    "Kernel is running over TCP without encryption"."""
    folder = tmp_path / "slow"
    folder.mkdir()
    _notebook(folder / "01_slow.ipynb", 'out_dir = "out"', "import time", "time.sleep(30)", "after = True")
    _notebook(folder / "02_quick.ipynb", 'out_dir = "out"', "Path(out_dir).mkdir(parents=True, exist_ok=True)")
    stream = io.StringIO()
    code, run_dir = runner.run({"name": "slow", "notebooks": None}, notebooks_dir=folder, out=tmp_path / "run",
                               stream=stream, progress=False, timeout=2)
    assert code == 1
    entries = {e["notebook"]: e for e in json.loads((run_dir / "summary.json").read_text())["entries"]}
    slow = entries["01_slow"]
    assert slow["timed_out"] is True and slow["cell_index"] == 4 and slow["duration_s"] < 25
    assert slow["error"] == "01_slow: cell 5 (index 4) timed out after 2 s (run --timeout): time.sleep(30)"
    assert entries["02_quick"]["status"] == "ok"                   # the next notebook still ran
    assert "    failed in" in stream.getvalue() and slow["error"] in stream.getvalue()
    assert slow["error"] in (run_dir / "summary.md").read_text()
    err = capfd.readouterr().err
    for noise in ("without encryption", "ZMQError", "Traceback", "Timeout waiting for execute reply"):
        assert noise not in err, err


def test_run_with_grid_and_all_ok(suite, tmp_path, capsys):
    folder, profiles = suite
    (profiles / "ok.yaml").write_text("notebooks: ['01']\n")
    grid = tmp_path / "g.yaml"
    grid.write_text("value: [7, 8]\n")
    stream = io.StringIO()
    code, run_dir = runner.run("ok", grid=grid, profiles_dir=profiles, notebooks_dir=folder, out=tmp_path / "r",
                               stream=stream)
    assert code == 0
    # which notebook runs (with its grid point), a bar over its cells (stderr), its time, one summary line
    lines = stream.getvalue().strip().splitlines()
    assert lines[1:4:2] == ["[1/3] 01_ok (value=7)", "[2/3] 01_ok (value=8)"]
    assert re.fullmatch(r"    ok in (\d+ min )?\d+ s", lines[2])
    assert re.fullmatch(rf"3 notebooks, 0 failed, (\d+ min )?\d+ s; report: {re.escape(str(run_dir / 'report.md'))}", lines[-1])
    err = capsys.readouterr().err
    assert "01_ok" in err and "cell" in err
    assert (run_dir / "01_ok" / "value=7" / "result.txt").read_text() == "7 a"
    assert (run_dir / "01_ok" / "value=8" / "01_ok.ipynb").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["grid_values"] == {"value": [7, 8]}


def _waits_for(other: str, me: str) -> str:
    """A cell that marks ``me`` as started in the run folder, then waits (``patience`` seconds at most) for
    ``other`` to start: it can only finish when the two notebooks run at the same time."""
    return ("import os, time\n"
            f"flags = Path(out_dir).parent\n(flags / '{me}.started').write_text(str(globals().get('threads', '-')))\n"
            "deadline = time.time() + patience\n"
            f"while not (flags / '{other}.started').exists():\n"
            "    assert time.time() < deadline, 'ran alone'\n"
            "    time.sleep(0.1)\n"
            "Path(out_dir).mkdir(parents=True, exist_ok=True)\n(Path(out_dir) / 'done.txt').write_text('yes')")


@pytest.fixture
def pair(tmp_path):
    """Two notebooks that can only finish side by side, one declaring ``threads``, and a report notebook."""
    folder = tmp_path / "pair"
    folder.mkdir()
    _notebook(folder / "01_a.ipynb", 'out_dir = "out"\nthreads = None\npatience = 60', _waits_for("b", "a"))
    _notebook(folder / "02_b.ipynb", 'out_dir = "out"\npatience = 60', _waits_for("a", "b"))
    _notebook(folder / "05_report.ipynb", 'run_dir = "."\nout_dir = "out"',
              "ran = sorted(p.parent.name for p in Path(run_dir).rglob('done.txt'))\n"
              "(Path(run_dir) / 'report.md').write_text('ran: ' + ', '.join(ran))")
    return folder


def test_jobs_run_notebooks_side_by_side_then_the_report(pair, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    stream = io.StringIO()
    code, run_dir = runner.run({"name": "pair", "notebooks": None}, notebooks_dir=pair, out=tmp_path / "run",
                               stream=stream, progress=False, jobs=2)
    assert code == 0, stream.getvalue()
    assert (run_dir / "report.md").read_text() == "ran: 01_a, 02_b"          # the report ran after both
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [e["notebook"] for e in summary["entries"]] == ["01_a", "02_b", "05_report"]   # plan order
    # the notebook declaring threads = None got the cores shared out as its parameter; the other declares none;
    # the runner's environment is left exactly as it was
    assert (run_dir / "a.started").read_text() == str(runner.kernel_threads(2))
    assert (run_dir / "b.started").read_text() == "-"
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "3"
    lines = stream.getvalue().strip().splitlines()
    assert lines[0].endswith("(3 notebook runs, profile pair, 2 side by side)")
    assert {"[1/3] 01_a (started)", "[2/3] 02_b (started)"} <= set(lines)
    assert re.fullmatch(r"3 notebooks, 0 failed, (\d+ min )?\d+ s; report: .*report\.md", lines[-1])


def test_one_job_runs_them_one_after_the_other(pair, tmp_path):
    code, run_dir = runner.run({"name": "pair", "notebooks": ["01"], "common": {"patience": 3}}, notebooks_dir=pair,
                               out=tmp_path / "run", stream=io.StringIO(), progress=False, jobs=1)
    assert code == 1   # 01_a waits for 02_b, which this profile never starts
    entry = json.loads((run_dir / "summary.json").read_text())["entries"][0]
    assert entry["notebook"] == "01_a" and "ran alone" in entry["error"]


def test_jobs_warns_when_notebook_threads_oversubscribe_the_cores(pair, tmp_path):
    cores = os.cpu_count() or 1
    stream = io.StringIO()
    runner.run({"name": "pair", "notebooks": None, "common": {"threads": cores}}, notebooks_dir=pair,
               out=tmp_path / "run", stream=stream, progress=False, jobs=2)
    assert f"warning: the threads of 01_a × 2 notebooks at once exceed the {cores} cores" in stream.getvalue()


@pytest.mark.parametrize("jobs", [0, -1, 1.5, "2", True])
def test_jobs_must_be_a_whole_number_of_at_least_one(pair, tmp_path, jobs):
    with pytest.raises(ValueError, match="jobs .* whole number ≥ 1"):
        runner.run({"name": "pair"}, notebooks_dir=pair, out=tmp_path / "run", jobs=jobs)
    assert not (tmp_path / "run").exists()


def test_kernel_threads_share_the_cores():
    assert [runner.kernel_threads(j, cpus=8) for j in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def test_cli_run_exit_code(suite, tmp_path, capsys):
    folder, profiles = suite
    code = cli_main(["run", "--profile", str(profiles / "tiny.yaml"), "--notebooks", str(folder),
                     "--out", str(tmp_path / "cli-run"), "--only", "01,02", "--no-report"])
    assert code == 1
    printed = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"2 notebooks, 1 failed, (\d+ min )?\d+ s; report: none written \(see .*summary\.md\)", printed[-1])
    with pytest.raises(SystemExit, match="^semscale run: error: unknown profile"):
        cli_main(["run", "--profile", "does-not-exist", "--notebooks", str(folder)])


def test_new_run_dir_refuses_a_non_empty_folder(tmp_path, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ValueError, match="not empty.*--force"):
        runner.new_run_dir("quick", tmp_path / "full")
    assert runner.new_run_dir("quick", tmp_path / "full", force=True) == tmp_path / "full"   # nothing deleted
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["x"]
    (tmp_path / "afile").write_text("")
    for bad, message in ((tmp_path / "afile", "is an existing file"), ("", "empty path")):
        with pytest.raises(ValueError, match=message):
            runner.new_run_dir("quick", bad)
    monkeypatch.setenv("SEMSCALE_RUNS", str(tmp_path / "runs"))
    first, second = runner.new_run_dir("quick"), runner.new_run_dir("quick")
    assert first.parent == tmp_path / "runs" and first.name.startswith("quick-") and first != second


# ------------------------------------------------------------------------------------------------ clean notebooks
def test_clean_notebook_strips_volatile_metadata():
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(papermill={"duration": 3.2}, kernelspec={"name": "venv-py"},
                       language_info={"name": "python", "version": "3.11.9"})
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.metadata.update(execution={"iopub.execute_input": "2024"}, papermill={"duration": 0.1}, tags=[])
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    nb.cells = [cell]
    assert len(runner.volatile_metadata(nb)) >= 4
    runner.clean_notebook(nb)
    assert runner.volatile_metadata(nb) == []
    assert nb.metadata["kernelspec"]["name"] == "python3" and "papermill" not in nb.metadata
    assert nb.metadata["language_info"]["version"] == "3.11.9"   # the kernel's own: JupyterLab rewrites it
    assert dict(nb.cells[0].metadata) == {}
    assert nb.cells[0].execution_count == 3 and nb.cells[0].outputs   # outputs stay for nbval


def test_a_run_folder_holding_only_prepared_training_runs_is_taken_without_force(tmp_path):
    """``semscale train-runs --out F`` then ``semscale run --out F``: F holds only training-runs/, which the
    notebooks are to read; anything else in F still needs --force."""
    prepared = tmp_path / "prepared"
    (prepared / "training-runs" / "some-run").mkdir(parents=True)
    assert runner.new_run_dir("p", prepared) == prepared
    (prepared / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        runner.new_run_dir("p", prepared)


def _finish_run(runs_dir: Path, name: str) -> None:
    """A training run folder as the trainer leaves it once finished (its final per-class table written)."""
    (runs_dir / name).mkdir(parents=True, exist_ok=True)
    (runs_dir / name / "per_class.csv").write_text("class")


def test_the_summary_counts_the_runs_prepared_before_the_notebooks_and_those_they_trained(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    finish = "run = Path(runs_dir) / 'new-run'; run.mkdir(parents=True); (run / 'per_class.csv').write_text('class')"
    _notebook(folder / "01_a.ipynb", 'out_dir = "out"\nruns_dir = "runs"', finish)
    out = tmp_path / "run"
    _finish_run(out / "training-runs", "old-run")
    stream = io.StringIO()
    code, run_dir = runner.run({"name": "one", "notebooks": None}, notebooks_dir=folder, out=out, stream=stream,
                               progress=False)
    assert code == 0, stream.getvalue()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["prepared_runs"] == 1 and summary["trained_by_notebooks"] == ["new-run"]
    assert "training runs: 1 prepared before the notebooks, 1 trained by them" in stream.getvalue()
