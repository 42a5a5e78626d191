"""Command line (semscale_lib.cli): ``measure`` on files, clear exits on bad input, ``train`` flags and output,
``--version``."""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import semscale_lib
import semscale_lib.training as training
import semscale_lib.training.flags
from semscale_lib import cli
from semscale_lib.data import DATASETS
from semscale_lib.losses import LOSSES
from semscale_lib.models import MODELS
from semscale_lib.weights import WEIGHTINGS

TABLE_COLUMNS = ["class", "count", "semantic_scale", "normalized_scale", "normalized_distance", "interclass",
                 "imbalance_scale"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _half_log2_det(z: np.ndarray) -> float:
    """S′ = ½ log₂ det(I_d + (d/m) Zc Zcᵀ), written out with numpy (Zc: d × m centred)."""
    m, d = z.shape
    zc = (z - z.mean(0)).T
    sign, logdet = np.linalg.slogdet(np.eye(d) + (d / m) * zc @ zc.T)
    assert sign > 0
    return 0.5 * logdet / np.log(2.0)


@pytest.fixture
def feature_files(tmp_path):
    rng = np.random.default_rng(0)
    sizes, spreads = [40, 25, 12, 30], [2.0, 1.0, 0.5, 1.5]
    features = np.concatenate([rng.normal(c, s, size=(n, 6)) for c, (n, s) in enumerate(zip(sizes, spreads))])
    labels = np.repeat(np.arange(4), sizes)
    accuracy = np.array([0.9, 0.7, 0.4, 0.8])
    paths = {}
    for name, array in (("F", features), ("L", labels), ("A", accuracy)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    return paths, features, labels, accuracy


def test_measure_writes_tables_and_figures(feature_files, tmp_path, capsys):
    paths, features, labels, accuracy = feature_files
    out = tmp_path / "measured"
    code = cli.main(["measure", "--features", str(paths["F"]), "--labels", str(paths["L"]), "--out", str(out),
                     "--accuracy", str(paths["A"]), "--alpha", "2"])
    assert code == 0
    assert str(out) in capsys.readouterr().out
    for name in ("semantic_scales.csv", "semantic_scales.png", "correlations.csv", "scale_vs_accuracy.png"):
        assert (out / name).is_file(), name
    for name in ("semantic_scales.png", "scale_vs_accuracy.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC

    table = pd.read_csv(out / "semantic_scales.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert table["count"].tolist() == [40, 25, 12, 30]
    raw = np.array([_half_log2_det(features[labels == c]) for c in range(4)])
    np.testing.assert_allclose(table["semantic_scale"], raw, rtol=1e-9)
    np.testing.assert_allclose(table["normalized_scale"], raw / raw.max(), rtol=1e-9)
    centres = np.stack([features[labels == c].mean(0) for c in range(4)])
    w = np.array([np.linalg.norm(centres[c] - centres, axis=1).sum() / 3 for c in range(4)])
    np.testing.assert_allclose(table["normalized_distance"], w / w.max(), rtol=1e-9)
    np.testing.assert_allclose(table["interclass"], np.log2(2 + w / w.max()), rtol=1e-9)
    np.testing.assert_allclose(table["imbalance_scale"], raw / raw.max() * np.log2(2 + w / w.max()), rtol=1e-9)

    correlations = pd.read_csv(out / "correlations.csv")
    row = correlations.set_index("quantity").loc["N"]
    assert row["pearson_r"] == pytest.approx(np.corrcoef([40, 25, 12, 30], accuracy)[0, 1], rel=1e-9)
    assert {"S'", "W", "E_n", "S (alpha=2)"} <= set(correlations["quantity"])


def test_measure_without_accuracy_writes_no_correlations(feature_files, tmp_path):
    paths, *_ = feature_files
    out = tmp_path / "plain"
    assert cli.main(["measure", "--features", str(paths["F"]), "--labels", str(paths["L"]), "--out", str(out)]) == 0
    assert (out / "semantic_scales.csv").is_file() and not (out / "correlations.csv").exists()


def test_measure_bad_path_exits_clearly(feature_files, tmp_path):
    paths, *_ = feature_files
    missing = tmp_path / "nowhere" / "F.npy"
    with pytest.raises(SystemExit) as error:
        cli.main(["measure", "--features", str(missing), "--labels", str(paths["L"]), "--out", str(tmp_path / "o")])
    assert "features file not found" in str(error.value.code) and str(missing) in str(error.value.code)
    with pytest.raises(SystemExit) as error:
        cli.main(["measure", "--features", str(paths["F"]), "--labels", str(paths["L"]), "--out",
                  str(tmp_path / "o"), "--accuracy", str(tmp_path / "A-missing.npy")])
    assert "accuracy file not found" in str(error.value.code)


def test_measure_needs_features_and_labels(tmp_path):
    with pytest.raises(SystemExit) as error:
        cli.main(["measure", "--out", str(tmp_path / "o")])
    assert "--features and --labels" in str(error.value.code)


def test_measure_mismatched_inputs_exit_with_the_reason(feature_files, tmp_path):
    paths, *_ = feature_files
    short = tmp_path / "short.npy"
    np.save(short, np.array([0.5, 0.5]))
    with pytest.raises(SystemExit) as error:
        cli.main(["measure", "--features", str(paths["F"]), "--labels", str(paths["L"]), "--out",
                  str(tmp_path / "o"), "--accuracy", str(short)])
    assert str(error.value.code) == (f"semscale measure: error: accuracy file {short}: expected shape (4,) (one "
                                     "accuracy per class 0 … 3), got shape (2,)")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag,value,valid", [
    ("--loss", "hinge", ", ".join(LOSSES)),
    ("--reweight", "ipw", ", ".join(WEIGHTINGS)),
])
def test_train_unknown_name_exits_with_the_valid_ones(flag, value, valid, tmp_path):
    with pytest.raises(SystemExit) as error:
        cli.main(["train", flag, value, "--out", str(tmp_path / "run"), "--no-progress"])
    message = str(error.value.code)
    assert message.startswith("semscale train: error: unknown") and valid in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv,expected", [
    (["train", "--preset", "nope"], "semscale train: error: argument --preset: invalid choice: 'nope'"),
    (["train", "--augment", "maybe"], "semscale train: error: argument --augment: expected true/false, yes/no or "
                                      "1/0, got 'maybe'"),
    (["train", "--epochs", "two"], "semscale train: error: argument --epochs: invalid int value: 'two'"),
    (["train", "--nope"], "semscale train: error: unrecognized arguments: --nope"),
    ([], "semscale: error: give a command: fetch, measure, train, run, plan or train-runs"),
])
def test_usage_mistakes_are_one_line_and_exit_status_1(argv, expected, capsys):
    with pytest.raises(SystemExit) as error:
        cli.main(argv)
    message = error.value.code
    assert isinstance(message, str) and message.startswith(expected) and "\n" not in message, message
    assert "--help" in message and "usage:" not in capsys.readouterr().err
    if argv[:2] == ["train", "--preset"]:
        assert "cpu-quick" in message


def test_train_help_groups_the_flags_and_lists_the_valid_values(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")                    # one line per flag: names are not hyphen-wrapped
    with pytest.raises(SystemExit) as done:
        cli.main(["train", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for group in ("data:", "model:", "optimisation:", "loss:", "re-weighting / DSB:", "evaluation:",
                  "run / output:"):
        assert group in text, group
    assert "other settings:" not in text                     # every setting has its group
    names = [n for base in sorted(DATASETS) for n in (base, f"{base}-lt")]
    assert f"one of: {', '.join(names)}, imagelist" in text
    assert {"double-mnist-lt", "imagefolder-lt"} <= set(training.flags.dataset_names())
    for registry in (MODELS, LOSSES, WEIGHTINGS):
        assert f"one of: {', '.join(registry)};" in text
    assert "--dsb-normalize NAME DSB: of the weights a ∝ 1/S; one of: sum1, mean1, none; default mean1 here" in text
    # the validation split is a data setting; the cosine schedule is one of the choices
    data_group = text[text.index("data:"):text.index("model:")]
    assert "--val-fraction X hold out this fraction of every class of the training set for validation" in data_group
    assert "--schedule NAME one of: step, exp, linear, cosine, constant; default step" in text


def _parsed(*argv):
    return cli.build_parser().parse_args(["train", *argv])


def test_booleans_are_parsed_strictly():
    for text, value in (("true", True), ("Yes", True), ("1", True), ("false", False), ("NO", False), ("0", False)):
        assert _parsed("--augment", text).augment is value
    assert _parsed("--augment").augment is True and _parsed("--no-augment").augment is False
    assert _parsed().augment is None                         # not given: the preset's or the library's default


def test_train_uses_mean1_dsb_weights_unless_told_otherwise(monkeypatch):
    seen = []
    monkeypatch.setattr(training, "train", lambda config=None, **kwargs: seen.append((config, kwargs)))
    assert cli.main(["train", "--reweight", "dsb", "--out", "unused"]) == 0
    assert cli.main(["train", "--reweight", "dsb", "--dsb-normalize", "sum1", "--out", "unused"]) == 0
    assert [config.weighting.dsb.normalize for config, _ in seen] == ["mean1", "sum1"]
    assert seen[0][1]["log"] is True and seen[0][1]["progress"] is True
    assert cli.main(["train", "--no-progress", "--out", "unused"]) == 0
    assert seen[-1][1]["progress"] is False and seen[-1][1]["log"] is True   # the bar goes, the lines stay


def test_version_is_the_installed_packages(capsys):
    expected = f"semscale {importlib.metadata.version('semscale')}"
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == expected
    assert semscale_lib.__version__ == importlib.metadata.version("semscale")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    module = subprocess.run([sys.executable, "-m", "semscale_lib", "--version"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert module.returncode == 0 and module.stdout.strip() == expected


@pytest.mark.slow
def test_measure_dataset_trains_and_measures(tmp_path, monkeypatch):
    """`measure --dataset` trains a small model briefly and writes the table, the correlation and both plots."""
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    out = tmp_path / "measure"
    assert cli.main(["measure", "--dataset", "digits-lt", "--epochs", "1", "--imbalance-factor", "10",
                     "--alpha", "2", "--out", str(out)]) == 0
    table = pd.read_csv(out / "semantic_scales.csv")
    assert len(table) == 10 and table["count"].iloc[0] > table["count"].iloc[-1]   # training counts, LT
    correlations = pd.read_csv(out / "correlations.csv")
    assert correlations["quantity"].tolist()[:5] == ["N", "log N", "E_n", "W", "S'"]
    for name in ("semantic_scales.png", "scale_vs_accuracy.png", "measure.json"):
        assert (out / name).exists()


def test_train_that_diverges_exits_with_one_line_and_a_resumable_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    out = tmp_path / "diverged"
    args = ["train", "--dataset", "digits-lt", "--imbalance-factor", "10", "--model", "cnn-small", "--epochs", "2",
            "--warmup-epochs", "0", "--lr", "1e30", "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit) as stopped:
        cli.main(args)
    message = str(stopped.value.code)
    assert message.startswith("semscale train: error: the run diverged: non-finite loss")
    assert "in epoch 1, iteration " in message and "at learning rate 1e+30" in message and str(out) in message
    assert "\n" not in message and "smaller --lr" in message
    assert (out / "config.json").exists() and not (out / "per_class.csv").exists()


@pytest.mark.parametrize("bar", [[], ["--no-progress"]])
def test_train_prints_a_line_per_epoch_and_a_summary(bar, tmp_path, monkeypatch, capsys):
    """With or without the progress bar: "run folder:" once, a line per epoch and the summary."""
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    args = ["train", "--dataset", "digits-lt", "--imbalance-factor", "10", "--model", "cnn-small", "--epochs", "2",
            "--warmup-epochs", "0", "--eval-every", "2", "--out", str(tmp_path / "run"), *bar]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and "top-1" not in lines[0] and "top-1" in lines[1]
    assert all("images/s" in line and "s left" in line and ", lr " in line for line in lines)
    assert "done: 2 epochs, top-1" in out
    assert out.count("run folder") == 1 and f"run folder: {tmp_path / 'run'}" in out.splitlines()
    if bar:
        assert "it/s" not in captured.err and "%|" not in captured.err


def test_every_flag_is_parsed_by_its_settings_type_alone():
    import argparse

    from semscale_lib.training.flags import add_train_arguments, setting_declarations
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--milestones", "0.5", "0.7", "--max-steps", "none", "--dsb-pool-dim", "none",
                              "--subset-per-class", "5", "--class-weights", "1", "2", "--augment", "no",
                              "--imbalance-factor", "10", "--lr", "0.3", "--dsb-target", "W"])
    assert (args.milestones, args.max_steps, args.dsb_pool_dim, args.subset_per_class, args.class_weights,
            args.augment, args.imbalance_factor, args.lr, args.dsb_target) == (
        [0.5, 0.7], None, None, 5, [1.0, 2.0], False, 10.0, 0.3, "W")
    declared = {name for name, _, _ in setting_declarations()}
    assert declared == {a.dest for a in parser._actions if a.dest in declared}       # one flag per setting
    assert "dsb_stage_epochs" in declared and "dsb" not in declared and "preset" not in declared
