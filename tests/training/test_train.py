"""The trainer (semscale_lib.training): files of a run, determinism, exact resume, errors, schedules, weights.

Every run here is scikit-learn's digits made long-tailed (8×8 grey, IF 10: 531 training images), resnet-tiny,
batch 64, 1–3 epochs, one CPU thread: a few seconds each.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from schedules import learning_rates
import torch

import semscale_lib.training as T
import semscale_lib.data.run_data as run_data
from semscale_lib import cli, paths
from semscale_lib.losses import ClassWeighting
from semscale_lib.training import provenance
from semscale_lib.training.trainer import run_folder_name, train_or_reuse
from semscale_lib.weights import WEIGHTINGS, SemanticScaleBalanced, build_weighting
from semscale_lib.data import DATASETS, load_dataset
from semscale_lib.losses import LOSSES
from semscale_lib.models import MODELS

TINY = dict(dataset="digits-lt", imbalance_factor=10.0, model="resnet-tiny", batch_size=64, epochs=2,
            warmup_epochs=0, eval_batch_size=512)
METRIC_COLUMNS = ["epoch", "loss", "lr", "top1", "many", "medium", "few", "val_top1", "train_top1", "seconds"]


def tiny(**overrides) -> T.TrainConfig:
    return T.make_config(**{**TINY, **overrides})


@pytest.fixture(scope="module", autouse=True)
def _environment(tmp_path_factory):
    """Splits and runs in a temporary folder, one thread, deterministic-mode flag restored afterwards."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEMSCALE_SPLITS", str(tmp_path_factory.mktemp("splits")))
        mp.setenv("SEMSCALE_RUNS", str(tmp_path_factory.mktemp("runs")))
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").drop(columns="seconds")


def _assert_same_run(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(_metrics(a), _metrics(b), check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(a / "per_class.csv"), pd.read_csv(b / "per_class.csv"),
                                  check_exact=True)
    assert (a / "weights.csv").exists() == (b / "weights.csv").exists()
    if (a / "weights.csv").exists():
        pd.testing.assert_frame_equal(pd.read_csv(a / "weights.csv"), pd.read_csv(b / "weights.csv"),
                                      check_exact=True)


# -------------------------------------------------------------------------------------------------------- a run
@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    return T.train(tiny(), out_dir=tmp_path_factory.mktemp("short") / "run", progress=False)


def test_short_run_writes_every_file(short_run):
    names = {p.name for p in short_run.iterdir()}
    assert {"config.json", "metrics.csv", "per_class.csv", "checkpoint.pt", "test_features.npz"} <= names
    assert not any(name.endswith(".tmp") for name in names)

    saved = json.loads((short_run / "config.json").read_text())
    assert saved["config"] == {**tiny().to_dict(), "milestones": list(tiny().optim.milestones)}
    env = saved["environment"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert {"python", "torchvision", "numpy", "platform", "threads"} <= set(env)
    counts = np.asarray(saved["train_counts"])
    assert counts[0] == counts.max() and counts[-1] == counts[0] // 10 and len(counts) == 10
    assert Path(saved["split_file"]).parent == short_run              # drawn for the run: in its folder
    assert not any(Path(paths.splits_root()).glob("*.txt"))           # nothing in the project's splits folder
    assert saved["code"] == provenance.code_record() and len(saved["code"]["digest"]) == provenance.DIGEST_LENGTH
    assert saved["val_counts"] is None                                 # val_fraction 0: no validation split

    metrics = pd.read_csv(short_run / "metrics.csv")
    assert list(metrics.columns) == METRIC_COLUMNS
    assert metrics["epoch"].tolist() == [1, 2]
    for column in ("top1", "many", "medium", "few"):
        assert metrics[column].between(0, 1).all(), column
    assert (metrics["loss"] > 0).all() and (metrics["seconds"] > 0).all()
    assert metrics["val_top1"].isna().all()                            # no validation split
    # the final model on its own training images, after the last epoch only
    assert np.isnan(metrics["train_top1"].iloc[0]) and 0 <= metrics["train_top1"].iloc[-1] <= 1

    per_class = pd.read_csv(short_run / "per_class.csv")
    assert len(per_class) == 10
    assert {"class", "name", "train_count", "accuracy", "test_count", "semantic_scale", "imbalance_scale"} \
        <= set(per_class.columns)
    np.testing.assert_array_equal(per_class["train_count"], counts)
    test = load_dataset("digits", train=False)
    np.testing.assert_array_equal(per_class["test_count"], np.bincount(test.labels))
    # the last epoch's top-1 is the test-count-weighted mean of the per-class accuracies
    top1 = (per_class["accuracy"] * per_class["test_count"]).sum() / per_class["test_count"].sum()
    assert top1 == pytest.approx(metrics["top1"].iloc[-1], abs=1e-9)

    with np.load(short_run / "test_features.npz") as saved_features:
        assert saved_features["features"].shape == (len(test.labels), 64)
        np.testing.assert_array_equal(saved_features["labels"], test.labels)
    state = torch.load(short_run / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 2 and len(state["history"]) == 2

    run = T.load_run(short_run)
    assert run.weights is None and run.test_features.shape[1] == 64
    pd.testing.assert_frame_equal(run.metrics, metrics)


def test_two_identical_cpu_runs_give_identical_results(short_run, tmp_path):
    again = T.train(tiny(), out_dir=tmp_path / "again", progress=False)
    _assert_same_run(short_run, again)
    with np.load(short_run / "test_features.npz") as a, np.load(again / "test_features.npz") as b:
        np.testing.assert_array_equal(a["features"], b["features"])
    different = T.train(tiny(seed=1, epochs=1), out_dir=tmp_path / "seed1", progress=False)
    assert not _metrics(different).equals(_metrics(again).iloc[:1])


# ------------------------------------------------------------------------------------------------------ resume
RESUME_CASES = {
    "none": (dict(reweight="none", epochs=3), 1),
    "cb": (dict(reweight="cb", epochs=3), 1),
    # stage 3 starts in epoch 2; interrupted before it
    "dsb": (dict(reweight="dsb", epochs=3, dsb_stage_epochs=1, dsb_log_every=1), 1),
    # interrupted inside stage 3, refreshing every 4th iteration: epoch 3 starts with epoch 2's last weights
    "dsb-stage3-every4": (dict(reweight="dsb", epochs=3, dsb_stage_epochs=1, dsb_refresh_every=4,
                               dsb_pool="per-sample"), 2),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_ends_exactly_like_an_uninterrupted_run(case, tmp_path):
    overrides, stop = RESUME_CASES[case]
    config = tiny(**overrides)
    full = T.train(config, out_dir=tmp_path / "full", progress=False)
    part = T.train(config, out_dir=tmp_path / "part", progress=False, stop_after_epoch=stop)
    assert _metrics(part)["epoch"].tolist() == list(range(1, stop + 1))
    assert not (part / "per_class.csv").exists()
    assert T.train(resume=part, progress=False) == part
    _assert_same_run(full, part)
    # resuming a finished run changes nothing
    T.train(config, resume=part, progress=False)
    _assert_same_run(full, part)


def test_resume_through_the_cli(tmp_path, capsys):
    args = ["train", "--dataset", "digits-lt", "--imbalance-factor", "10", "--model", "resnet-tiny",
            "--batch-size", "64", "--epochs", "3", "--warmup-epochs", "0", "--reweight", "dsb",
            "--dsb-stage-epochs", "1", "--no-progress"]
    assert cli.main(args + ["--out", str(tmp_path / "full")]) == 0
    assert "run folder:" in capsys.readouterr().out
    saved = json.loads((tmp_path / "full" / "config.json").read_text())["config"]
    T.train(T.make_config(**saved), out_dir=tmp_path / "part", progress=False, stop_after_epoch=1)
    assert cli.main(["train", "--resume", str(tmp_path / "part"), "--no-progress"]) == 0
    _assert_same_run(tmp_path / "full", tmp_path / "part")


# ------------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("field,value,valid", [
    ("dataset", "imagenet-lt", ", ".join(sorted(DATASETS))),
    ("loss", "hinge", ", ".join(LOSSES)),
    ("model", "vgg", ", ".join(MODELS)),
    ("reweight", "ipw", ", ".join(WEIGHTINGS)),
])
def test_unknown_names_list_the_valid_ones(field, value, valid):
    with pytest.raises(ValueError, match=f"unknown {field} '{value}'") as error:
        tiny(**{field: value})
    assert valid in str(error.value)


def test_other_bad_settings():
    with pytest.raises(ValueError, match="imbalance_factor must be ≥ 1"):
        tiny(imbalance_factor=0.5)
    with pytest.raises(ValueError, match="unknown preset"):
        T.make_config("cifar-lt-9000")
    with pytest.raises(ValueError, match="unknown settings.*'epoch'"):
        T.make_config(epoch=3)
    with pytest.raises(ValueError, match="epochs"):
        tiny(epochs=0)
    config = tiny()
    config.weighting.rule = "ipw"
    with pytest.raises(ValueError, match="unknown reweight"):           # train() validates a config it is given
        T.train(config, out_dir="unused")


def test_a_non_empty_output_folder_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        T.train(tiny(epochs=1), out_dir=out, progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_resume_with_a_different_config_is_refused(short_run):
    before = (short_run / "metrics.csv").read_bytes(), (short_run / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="different config.*epochs"):
        T.train(tiny(epochs=3), resume=short_run, progress=False)
    assert ((short_run / "metrics.csv").read_bytes(), (short_run / "checkpoint.pt").read_bytes()) == before


def test_a_run_killed_before_its_first_checkpoint_resumes_from_scratch(short_run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((short_run / "config.json").read_text())
    assert T.train(resume=bare, progress=False) == bare
    _assert_same_run(short_run, bare)


def test_resume_of_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a run folder"):
        T.train(resume=tmp_path / "nothing-here", progress=False)


def test_a_class_missing_from_the_training_set_is_an_error(monkeypatch, tmp_path):
    real = run_data.load_dataset

    def without_class_9(name, *, train=True, root=None):
        data = real(name, train=train, root=root)
        return data.subset(np.flatnonzero(data.labels != 9)) if train else data

    monkeypatch.setattr(run_data, "load_dataset", without_class_9)
    with pytest.raises(ValueError, match=r"classes \[9\] are missing from the training set"):
        T.load_run_data(tiny(dataset="digits").data)
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="missing"):
        T.train(tiny(dataset="digits"), out_dir=out, progress=False)
    assert not out.exists()


# -------------------------------------------------------------------------------------------- static weights
def _class_balanced(counts, beta):
    w = (1 - beta) / (1 - beta ** np.asarray(counts, dtype=np.float64))
    return w * len(counts) / w.sum()


def _epoch_weights(config, counts, epoch):
    return build_weighting(config, counts, dataset_size=int(np.sum(counts))).epoch_weights(epoch)


def test_cb_and_drw_weights_per_epoch():
    counts = np.array([100, 40, 10, 3])
    drw = tiny(reweight="drw", epochs=10, drw_start=0.8, cb_beta=0.99)
    for epoch in range(1, 9):
        assert _epoch_weights(drw, counts, epoch) is None, epoch
    for epoch in (9, 10):
        np.testing.assert_allclose(_epoch_weights(drw, counts, epoch).numpy(), _class_balanced(counts, 0.99),
                                   rtol=1e-6)
    cb = tiny(reweight="cb", epochs=10, cb_beta=0.999)
    for epoch in (1, 5, 10):
        weights = _epoch_weights(cb, counts, epoch)
        np.testing.assert_allclose(weights.numpy(), _class_balanced(counts, 0.999), rtol=1e-6)
        assert float(weights.sum()) == pytest.approx(4.0, rel=1e-6)
    for reweight in ("none", "dsb"):
        assert _epoch_weights(tiny(reweight=reweight), counts, 1) is None


def test_each_rule_has_its_reduction_and_drw_uses_the_weighted_mean():
    assert tiny(reweight="drw").reduction == "weighted-mean"            # as F.cross_entropy(weight=w) in LDAM-DRW
    assert {tiny(reweight=r).reduction for r in ("none", "cb", "dsb")} == {"mean"}
    assert tiny(reweight="drw", weight_reduction="mean").reduction == "mean"
    with pytest.raises(ValueError, match="weight_reduction"):
        tiny(weight_reduction="sum")


@pytest.fixture
def loss_weights_seen(monkeypatch):
    """Every weights vector the loss used, one entry per forward call (None when unweighted)."""
    seen = []
    forward = ClassWeighting.forward

    def spy(self, logits, targets):
        seen.append(None if self.weights is None else self.weights.clone())
        return forward(self, logits, targets)

    monkeypatch.setattr(ClassWeighting, "forward", spy)
    return seen


def test_training_on_a_per_class_subset_applies_the_class_weights(tmp_path, loss_weights_seen):
    weights = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 1.0, 0.25, 1.0, 1.0]
    config = tiny(dataset="digits", subset_per_class=12, reweight="static", class_weights=weights, epochs=1)
    out = T.train(config, out_dir=tmp_path / "subset", progress=False)
    counts = json.loads((out / "config.json").read_text())["train_counts"]
    assert counts == [12] * 10
    assert len(loss_weights_seen) == 2                                   # 120 images, batch 64
    for used in loss_weights_seen:
        np.testing.assert_allclose(used.numpy(), weights)
    images = T.training_images(T.load_run(out))                          # the nested subset, drawn again
    np.testing.assert_array_equal(np.bincount(images.labels), counts)


def test_stage_3_loss_uses_the_refreshed_dsb_weights(tmp_path, loss_weights_seen, monkeypatch):
    refreshed = []
    step = SemanticScaleBalanced.step

    def record(self, epoch, features, labels, indices=None):
        new = step(self, epoch, features, labels, indices)
        refreshed.append(None if new is None else new.clone())
        return new

    monkeypatch.setattr(SemanticScaleBalanced, "step", record)
    config = tiny(reweight="dsb", epochs=3, dsb_stage_epochs=1, dsb_refresh_every=3, dsb_normalize="mean1")
    T.train(config, out_dir=tmp_path / "dsb", progress=False)
    per_epoch = len(refreshed) // 3
    assert all(w is None for w in refreshed[:per_epoch]) and all(w is None for w in loss_weights_seen[:per_epoch])
    latest = None
    for new, used in zip(refreshed[per_epoch:], loss_weights_seen[per_epoch:]):
        latest = new if new is not None else latest
        assert used is not None and torch.equal(used, latest)
    assert sum(w is not None for w in refreshed) == len(range(0, 2 * per_epoch, 3))


def test_eval_every_skips_evaluations_but_always_evaluates_the_last_epoch(tmp_path):
    out = T.train(tiny(epochs=3, eval_every=0), out_dir=tmp_path / "last", progress=False)
    top1 = pd.read_csv(out / "metrics.csv")["top1"]
    assert top1.isna().tolist() == [True, True, False]
    out = T.train(tiny(epochs=3, eval_every=2), out_dir=tmp_path / "two", progress=False)
    assert pd.read_csv(out / "metrics.csv")["top1"].isna().tolist() == [True, False, False]


def test_a_diverging_run_stops_at_the_first_non_finite_loss(tmp_path):
    with pytest.raises(FloatingPointError, match=r"epoch 1, iteration \d+, at learning rate 1e\+30"):
        T.train(tiny(lr=1e30, epochs=2, warmup_epochs=0), out_dir=tmp_path / "nan", progress=False)
    assert not (tmp_path / "nan" / "per_class.csv").exists()
    assert json.loads((tmp_path / "nan" / "diverged.json").read_text())["epoch"] == 1
    with pytest.raises(ValueError, match="the run diverged .* resuming it would diverge again"):
        T.train(resume=tmp_path / "nan", progress=False)


# ----------------------------------------------------------------------------------- runs of other code
def _files(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_a_run_trained_by_other_code_is_neither_reused_nor_resumed(tmp_path, monkeypatch, capsys):
    """Runs are shared by their settings and the digest of the code that trains them: after a change to that code
    a new run is trained into a new folder; the old one is left as it was, and resuming it is refused."""
    config = tiny(epochs=1)
    runs = tmp_path / "runs"
    old = train_or_reuse(config, runs / run_folder_name(config))
    assert json.loads((old / "config.json").read_text())["code"]["digest"] == provenance.code_digest()
    before = _files(old)
    assert train_or_reuse(config, runs / run_folder_name(config)) == old and _files(old) == before   # reused

    current = provenance.code_digest()
    monkeypatch.setattr(provenance, "code_digest", lambda: "0123456789ab")     # the training code changed
    new = train_or_reuse(config, runs / run_folder_name(config))
    assert new != old and (new / "per_class.csv").exists()
    assert json.loads((new / "config.json").read_text())["code"]["digest"] == "0123456789ab"
    assert _files(old) == before
    with pytest.raises(ValueError, match="trained by other code"):             # the old folder, given by hand
        train_or_reuse(config, old)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train", "--resume", str(old), "--no-progress"])
    assert stopped.value.code == (f"semscale train: error: cannot resume {old}: it was trained by other code (code "
                                  f"digest {current}; this checkout's: 0123456789ab), and continuing its optimizer "
                                  "state with this code would not be the same run; start a new run (another --out) "
                                  "instead; the folder is left as it is")
    assert _files(old) == before


def test_a_run_with_no_recorded_digest_counts_as_other_code(short_run, tmp_path):
    older = tmp_path / "older"
    older.mkdir()
    saved = json.loads((short_run / "config.json").read_text())
    del saved["code"]                                                 # written before digests were recorded
    (older / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"code digest none recorded \(trained before code digests were recorded\)"):
        T.train(resume=older, progress=False)
    assert [p.name for p in older.iterdir()] == ["config.json"]


def test_the_code_digest_ignores_comments_and_docstrings():
    plain = "import math\n\ndef area(r):\n    return math.pi * r ** 2\n"
    prose = ('"""Areas."""\nimport math  # for pi\n\n\ndef area(r):\n    """The area of a circle of radius r."""\n'
             "    # πr²\n    return math.pi * r**2\n\n\nclass Empty:\n    \"\"\"Only a docstring.\"\"\"\n")
    with_class = plain + "\n\nclass Empty:\n    pass\n"
    assert provenance.source_digest({"m.py": with_class}) == provenance.source_digest({"m.py": prose})
    assert provenance.source_digest({"m.py": with_class}) != \
        provenance.source_digest({"m.py": with_class.replace("** 2", "** 3")})      # code: another digest
    assert provenance.source_digest({"m.py": with_class}) != provenance.source_digest({"n.py": with_class})
    modules = provenance.code_record()["modules"]
    assert {"training/trainer.py", "training/config.py", "data/run_data.py", "losses.py", "models.py", "weights.py",
            "dsb.py", "data/longtail.py", "scale.py", "imbalance.py"} <= set(modules)
    assert "data/fetch.py" not in modules and "cli.py" not in modules


# -------------------------------------------------------------------------------------------------- DSB run
def test_dsb_run_logs_scales_and_weights(tmp_path):
    config = tiny(reweight="dsb", epochs=2, dsb_stage_epochs=1, dsb_log_every=1)
    out = T.train(config, out_dir=tmp_path / "dsb", progress=False)
    weights = T.load_run(out).weights
    train_size = sum(json.loads((out / "config.json").read_text())["train_counts"])
    per_epoch = -(-train_size // 64)
    assert len(weights) == per_epoch                                     # every refresh of epoch 2, none before
    assert weights["epoch"].tolist() == [2] * per_epoch
    assert weights["iteration"].tolist() == list(range(per_epoch + 1, 2 * per_epoch + 1))
    s = weights[[f"S_{c}" for c in range(10)]].to_numpy()
    a = weights[[f"a_{c}" for c in range(10)]].to_numpy()
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-9)
    assert (s > 0).all() and (s <= np.log2(3.0) + 1e-9).all()           # S = S'_norm · log₂(2 + W') ≤ log₂ 3
    product = a * s                                                      # a ∝ 1/S within a row
    np.testing.assert_allclose(product, product[:, :1].repeat(10, axis=1), rtol=1e-9)


def test_dsb_weights_log_is_subsampled(tmp_path):
    config = tiny(reweight="dsb", epochs=2, dsb_stage_epochs=1, dsb_log_every=3)
    weights = T.load_run(T.train(config, out_dir=tmp_path / "dsb3", progress=False)).weights
    first = int(weights["iteration"].iloc[0])
    assert weights["iteration"].tolist() == list(range(first, first + 3 * len(weights), 3))


# ------------------------------------------------------------------------------------------------ LR schedules
@pytest.mark.parametrize("overrides,expected", [
    # warm-up over 2 epochs, then ×0.1 at round(0.6·5) = 3 and round(0.8·5) = 4 (0-based epochs)
    (dict(epochs=5, lr=0.1, warmup_epochs=2, schedule="step", milestones=(0.6, 0.8)),
     [0.05, 0.1, 0.1, 0.01, 0.001]),
    (dict(epochs=3, lr=0.2, schedule="exp", lr_gamma=0.5, optimizer="adam"), [0.2, 0.1, 0.05]),
    (dict(epochs=4, lr=0.1, warmup_epochs=1, schedule="linear"), [0.1, 0.075, 0.05, 0.025]),
    (dict(epochs=2, lr=0.3, schedule="constant"), [0.3, 0.3]),
])
def test_lr_schedule(overrides, expected, tmp_path):
    out = T.train(tiny(**overrides), out_dir=tmp_path / "lr", progress=False)
    np.testing.assert_allclose(pd.read_csv(out / "metrics.csv")["lr"].to_numpy(), expected, rtol=1e-12)


def test_presets_and_overrides():
    config = T.make_config("cifar-lt", epochs=3)
    assert config.preset == "cifar-lt" and config.model == "resnet32" and config.optim.epochs == 3
    assert config.optim.milestones == (0.8, 0.9) and config.optim.warmup_epochs == 5
    assert T.make_config("cpu-quick", milestones=[0.5]).optim.milestones == (0.5,)




def test_cifar_lt_preset_steps_lr_by_a_hundredth():
    """The community CIFAR-LT protocol: 5-epoch linear warm-up, lr × 0.01 at 160 and again at 180."""
    lrs = learning_rates(T.make_config("cifar-lt"), 200)
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[159] == pytest.approx(0.1) and lrs[160] == pytest.approx(1e-3) and lrs[180] == pytest.approx(1e-5)


def test_resume_through_the_cli_with_the_preset_given_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    out = tmp_path / "run"
    args = ["train", "--preset", "cpu-quick", "--dataset", "digits-lt", "--imbalance-factor", "10", "--epochs", "1",
            "--out", str(out), "--no-progress"]
    assert cli.main(args) == 0
    resumed = ["train", "--preset", "cpu-quick", "--dataset", "digits-lt", "--resume", str(out), "--no-progress"]
    assert cli.main(resumed) == 0                                    # same settings: accepted
    with pytest.raises(SystemExit, match="different config"):
        cli.main(resumed + ["--lr", "0.5"])


def test_a_step_budget_runs_the_schedule_over_steps():
    config = T.make_config("cpu-quick", max_steps=10, warmup_epochs=0, lr=0.1, schedule="step",
                           milestones=[0.5, 0.8], lr_step_factor=0.1)
    assert learning_rates(config, 10) == pytest.approx([0.1] * 5 + [0.01] * 3 + [0.001] * 2)
    linear = T.make_config("cpu-quick", max_steps=4, warmup_epochs=0, lr=0.2, schedule="linear")
    assert learning_rates(linear, 4) == pytest.approx([0.2, 0.15, 0.1, 0.05])
    # cosine over 4 steps: 0.2 · ½(1 + cos(π s / 4)), s = 0 … 3
    cosine = T.make_config("cpu-quick", max_steps=4, warmup_epochs=0, lr=0.2)       # the preset's cosine
    assert cosine.optim.schedule == "cosine"
    assert learning_rates(cosine, 5) == pytest.approx([0.2, 0.2 * 0.8535533905932737, 0.1,
                                                        0.2 * 0.14644660940672624, 0.0], abs=1e-12)
    with pytest.raises(ValueError, match="schedule runs over steps"):
        T.make_config("cpu-quick", max_steps=10)                        # the preset's 1-epoch warm-up
    with pytest.raises(ValueError, match="schedule runs over steps"):
        T.make_config("cpu-quick", max_steps=10, warmup_epochs=0, schedule="exp")


def test_a_step_budget_stops_mid_epoch(tmp_path):
    out = T.train(tiny(max_steps=12, epochs=2), out_dir=tmp_path / "budget", progress=False)
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    per_epoch = -(-sum(json.loads((out / "config.json").read_text())["train_counts"]) // 64)
    assert 6 < per_epoch < 12 and len(pd.read_csv(out / "metrics.csv")) == 2
    assert state["scheduler"]["last_epoch"] == 12                   # one scheduler step per optimizer step


def test_a_run_killed_while_drawing_its_split_starts_again_and_anything_else_is_refused(tmp_path):
    """A run killed after writing its drawn split and before its config.json leaves only split files: asked for
    again, it trains from the start in that folder; a folder holding any other file is still refused."""
    from semscale_lib.data import save_split
    config = tiny(epochs=1)
    folder = tmp_path / "runs" / run_folder_name(config)
    folder.mkdir(parents=True)
    save_split(folder / "drawn-split.txt", np.arange(5), meta={"dataset": "digits"})
    assert train_or_reuse(config, folder) == folder and (folder / "per_class.csv").exists()
    other = tmp_path / "runs" / "other"
    other.mkdir()
    save_split(other / "drawn-split.txt", np.arange(5), meta={"dataset": "digits"})
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds something other than this run"):
        train_or_reuse(config, other)
    assert sorted(p.name for p in other.iterdir()) == ["drawn-split.txt", "notes.txt"]
