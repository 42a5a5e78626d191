"""``semscale plan`` / ``train-runs``: the slots of the local executor, the mistakes that end in one line before
anything starts, the runner's per-job threads and devices, and a folder that holds a run of other settings. The
end-to-end runs (local executor killed and resumed, notebooks that then train nothing; submitit's local executor)
are in tests/notebooks/test_paper_profile.py and test_train_runs_submitit.py, on the shrunk paper profile."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from semscale_lib import cli
from semscale_lib.runner import Job, share_resources
from semscale_lib.runner import train_runs as tr
from semscale_lib.runner.plan import plan_runs, training_images
from semscale_lib.training import make_config
from semscale_lib.training.reuse import run_folder_name


def test_local_slots_fill_every_gpu_or_share_out_the_cores():
    slots = tr.local_slots(runs_per_gpu=2, visible=2, cpus=16)
    assert [s.device for s in slots] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"] and {s.threads for s in slots} == {4}
    assert [s.device for s in tr.local_slots(gpus=1, runs_per_gpu=3, visible=2, cpus=16)] == ["cuda:0"] * 3
    cpu = tr.local_slots(visible=0, cpus=4)
    assert cpu == [tr.Slot("cpu", 1)] * 4                        # one thread each: the notebooks' numbers
    assert tr.local_slots(visible=2, gpus=0, threads=2, cpus=4) == [tr.Slot("cpu", 2)] * 2
    assert tr.local_slots(visible=0, workers=3, threads=2, cpus=4) == [tr.Slot("cpu", 2)] * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"gpus": 3, "visible": 2}, r"3 GPU\(s\) asked for, 2 visible"),
    ({"gpus": 1, "visible": 0}, r"1 GPU\(s\) asked for, 0 visible"),
    ({"runs_per_gpu": 0, "visible": 1}, "runs per GPU must be a whole number ≥ 1"),
    ({"workers": 0, "visible": 0}, "workers must be a whole number ≥ 1"),
    ({"gpus": -1, "visible": 0}, "gpus must be a whole number ≥ 0"),
])
def test_local_slots_refuse_what_this_machine_cannot_give(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tr.local_slots(**kwargs)


def test_executor_mistakes_end_in_one_line_before_anything_starts(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown executor 'pbs'; valid: local, submitit-local, slurm"):
        tr._check_executor("pbs")
    monkeypatch.setattr(tr.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="--executor slurm needs Slurm's sbatch on PATH"):
        tr._check_executor("slurm")
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a))
    with pytest.raises(ValueError, match="needs submitit, which is not installed: pip install submitit"):
        tr._check_executor("submitit-local")
    out = tmp_path / "run"
    for argv, expected in [
        (["--executor", "pbs"], "semscale train-runs: error: argument --executor: invalid choice: 'pbs'"),
        (["--executor", "slurm"], "semscale train-runs: error: --executor slurm needs submitit"),
        (["--gpus", "2"], "semscale train-runs: error: 2 GPU(s) asked for, 0 visible"),
    ]:
        monkeypatch.setattr(tr, "visible_gpus", lambda: 0)
        with pytest.raises(SystemExit) as stopped:
            cli.main(["train-runs", "--profile", "quick", "--out", str(out), *argv])
        assert str(stopped.value.code).startswith(expected) and "\n" not in str(stopped.value.code)
    assert not out.exists()                                       # nothing was started, nothing written


def test_a_runs_folder_holding_other_settings_under_a_planned_name_is_refused(tmp_path, monkeypatch):
    plan = plan_runs({"name": "one", "notebooks": ["02"], "parameters": {"02": {"seeds": [0], "epochs": 1}}},
                     tmp_path / "run")
    assert {run.state for run in plan.runs} == {"new"} and len(plan.runs) == 4   # 2 settings, each with its doubled budget
    victim = plan.runs[0].folder
    victim.mkdir(parents=True)
    (victim / "config.json").write_text(json.dumps({"config": make_config(dataset="mnist").to_dict()}))
    with pytest.raises(ValueError, match=f"holds a run of other settings under the name {victim.name}"):
        plan_runs({"name": "one", "notebooks": ["02"], "parameters": {"02": {"seeds": [0], "epochs": 1}}},
                  tmp_path / "run")


def test_training_images_counts_what_a_run_processes():
    """digits: 1,347 training images (10 classes)."""
    whole = make_config(dataset="digits", epochs=2)
    assert training_images(whole) == 2 * 1347
    long_tailed = make_config(dataset="digits-lt", imbalance_factor=10, epochs=1)   # exp profile from 137 down
    assert training_images(long_tailed) == sum(int(137 * 0.1 ** (i / 9)) for i in range(10))
    subset = make_config(dataset="digits", epochs=3, subset_per_class=10, val_fraction=0.1)
    assert training_images(subset) == 3 * 10 * 9                        # 10 per class, one held out
    capped = make_config(dataset="digits", epochs=50, max_steps=4, batch_size=32, schedule="cosine")
    assert training_images(capped) == 4 * 32
    assert training_images(make_config(dataset="imagelist", image_root="x", train_list="a", test_list="b")) is None


def _job(number: int, **parameters) -> Job:
    return Job(f"0{number}", Path(f"0{number}_x.ipynb"), Path("out"), dict(parameters),
               defaults={"threads": 1, "device": "auto"})


def test_the_runner_gives_each_job_its_threads_and_device_as_parameters(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    jobs = [_job(1, threads=None), _job(2), _job(3, device="cpu"), _job(4, threads=None, device="auto")]
    share_resources(jobs, 2, None, gpus=2)
    assert [j.parameters.get("threads") for j in jobs] == [tr.os.cpu_count() // 2 or 1, None, None,
                                                            tr.os.cpu_count() // 2 or 1]
    assert [j.parameters.get("device") for j in jobs] == ["cuda:0", "cuda:1", "cpu", "cuda:1"]
    share_resources(alone := [_job(1, threads=None)], 1, None, gpus=2)    # one job at a time: left as given
    assert alone[0].parameters == {"threads": None}
    assert "OMP_NUM_THREADS" not in tr.os.environ


def test_plan_and_train_runs_name_the_same_folders_as_the_notebooks(tmp_path):
    """The folder of a planned run is the one run_methods trains into (the settings key of the same config)."""
    plan = plan_runs({"name": "one", "notebooks": ["04"], "parameters": {"04": {"seeds": [0], "epochs": 1,
                                                                                   "stage_sweep": [1]}}},
                     tmp_path / "run")
    from semscale_lib.studies.reweighting import long_tailed_base, method_configs
    base = long_tailed_base("digits", 10, image_root=None, image_size=32, model="cnn-small", epochs=1,
                            device="auto", dsb_stage_epochs=2, dsb_alpha=2.0, dsb_normalize="mean1", dsb_log_every=5)
    ce = method_configs({"CE": {"loss": "ce", "reweight": "none"}}, [0], base, preset="cpu-quick")[("CE", 0)]
    assert plan.runs[0].folder == (tmp_path / "run").resolve() / "training-runs" / run_folder_name(ce)
    assert any(r.config.weighting.dsb.stage_epochs == 1 for r in plan.runs)      # the stage sweep's run


def test_runs_named_from_other_runs_wait_and_count_in_the_plans_size(tmp_path):
    """Notebook 03's 1/S runs need its CE model: they wait (named in the next wave), sized like that model's run."""
    plan = plan_runs({"name": "one", "notebooks": ["03"], "parameters": {"03": {"seeds": [0], "epochs": 1}}},
                     tmp_path / "run")
    ce = next(r for r in plan.runs if r.config.loss.name == "ce")
    assert [(r.config.loss.name, r.config.optim.epochs) for r in plan.runs] == [("ce", 1), ("ldam", 1), ("ce", 2)]
    assert plan.waiting == ["03_semantic_scale_balanced_losses: 2 run(s) with 1/S class weights, seed 0: named once "
                            "its CE model has finished"]
    assert plan.waiting_images == 2 * ce.images and ce.images == training_images(ce.config)
    # ce and ldam 1 epoch each, the doubled CE budget 2 epochs, the 2 waiting runs 1 epoch each: 6 × the CE run
    assert f"to train: {6 * ce.images:,} training images (of which {2 * ce.images:,} in 1 group(s)" in plan.summary()


def test_a_failing_run_is_one_line_and_its_traceback_goes_to_its_log(tmp_path):
    config = make_config(dataset="mnist", data_root=str(tmp_path / "nowhere"), epochs=1)
    spec = tr.run_spec(config, tmp_path / "runs" / run_folder_name(config), tr.Slot("cpu", 1))
    log = tmp_path / "run.log"
    failed = tr._train_logged(spec, str(log))
    assert failed.startswith("DatasetUnavailableError: ") and "\n" not in failed
    assert "Traceback" in log.read_text()
    worker = tr._Worker(tr.Slot("cpu", 1))                 # the same through a long-lived worker process
    try:
        assert worker.run(spec, tmp_path / "worker.log").startswith("DatasetUnavailableError: ")
    finally:
        worker.close()


def test_planning_again_reuses_the_planners_that_read_no_finished_run(tmp_path, monkeypatch):
    from semscale_lib.studies import plans
    calls = []

    def counted(planner):
        return lambda p, runs_dir: calls.append(planner.__name__) or planner(p, runs_dir)
    monkeypatch.setitem(plans.PLANNERS, "02_imbalance_on_balanced_data",
                        counted(plans.plan_imbalance_on_balanced_data))
    monkeypatch.setitem(plans.PLANNERS, "03_semantic_scale_balanced_losses", counted(plans.plan_static_weights))
    profile = {"name": "two", "notebooks": ["02", "03"], "parameters": {"02": {"seeds": [0], "epochs": 1},
                                                                        "03": {"seeds": [0], "epochs": 1}}}
    memo: dict = {}
    first = plan_runs(profile, tmp_path / "run", memo=memo)
    again = plan_runs(profile, tmp_path / "run", memo=memo)
    assert calls == ["plan_imbalance_on_balanced_data", "plan_static_weights", "plan_static_weights"]
    assert [r.folder for r in again.runs] == [r.folder for r in first.runs]


def test_a_submitit_job_trains_on_the_device_its_job_was_given(tmp_path, monkeypatch):
    seen = []

    def wave(specs, executor, folder, options, bar):
        seen.extend(specs)
        return ["stopped here"]                      # one wave is enough to see the specs
    monkeypatch.setattr(tr, "_submitit_wave", wave)
    code, _ = tr.train_runs({"name": "one", "notebooks": ["02"], "parameters": {"02": {"seeds": [0], "epochs": 1}}},
                            tmp_path / "run", executor="submitit-local", options={"threads": 2}, progress=False,
                            stream=io.StringIO())
    assert code == 1 and seen and {(s["device"], s["threads"]) for s in seen} == {("auto", 2)}
