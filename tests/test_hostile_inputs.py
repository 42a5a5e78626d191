"""Hostile inputs to the command line: every mistake ends with one line ``semscale <command>: error: ...`` and exit
status 1 (never a traceback), names the input and what is expected, and writes or overwrites nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from semscale_lib import cli, paths
from semscale_lib.data import DATASETS, load_dataset, long_tailed_subset
from semscale_lib.models import build_model
from semscale_lib.settings import REPO_ROOT
from semscale_lib.training import load_run, make_config, train, training_images
from semscale_lib.training.provenance import code_record


def refused(argv, capsys) -> str:
    """The one line a refused command ends with (SystemExit with a message: status 1, the message on stderr)."""
    with pytest.raises(SystemExit) as stopped:
        cli.main([str(a) for a in argv])
    message = stopped.value.code
    assert isinstance(message, str), message
    assert message.startswith(f"semscale {argv[0]}: error: ") and "\n" not in message, message
    assert "Traceback" not in capsys.readouterr().err
    return message


# ------------------------------------------------------------------------------------------------ measure files
@pytest.fixture
def good(tmp_path):
    rng = np.random.default_rng(0)
    files = {"F": tmp_path / "F.npy", "L": tmp_path / "L.npy"}
    np.save(files["F"], rng.normal(size=(40, 5)))
    np.save(files["L"], np.repeat(np.arange(4), 10))
    return files


def _npy(tmp_path, name, array, **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


def _overflowed(shape=(40, 5)):
    with np.errstate(over="ignore"):
        x = np.random.default_rng(1).normal(size=shape)
        x[3, 2] = np.float64(1e308) * 10
    return x


def _features_cases(tmp_path):
    x = np.random.default_rng(1).normal(size=(40, 5))
    nan, huge = x.copy(), x.copy()
    nan[7, 1] = np.nan
    huge[3, 2] = 1e308
    text = tmp_path / "text.npy"
    text.write_text("1 2 3\n4 5 6\n")
    archive = tmp_path / "archive.npy"
    np.savez(tmp_path / "archive.npz", x=x)
    (tmp_path / "archive.npz").rename(archive)
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, x)
    truncated.write_bytes(truncated.read_bytes()[:200])
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    return {
        "object": (_npy(tmp_path, "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
                   "expected an array of numbers, got an object (pickled) array, which is never loaded"),
        "text": (text, "expected a .npy file written by numpy.save, got another format"),
        "npz": (archive, "expected one array written by numpy.save (.npy), got a .npz/zip archive"),
        "truncated": (truncated, "expected a complete .npy file, could not read it"),
        "folder": (folder, "expected a .npy file, got a folder"),
        "strings": (_npy(tmp_path, "str.npy", np.array([["a", "b"], ["c", "d"]])),
                    "expected an (N, d) array of numbers (N vectors × d dims), got strings (dtype <U1)"),
        "1-D": (_npy(tmp_path, "f1.npy", x[:, 0]), "expected a 2-D array (N vectors × d dims), got shape (40,)"),
        "3-D": (_npy(tmp_path, "f3.npy", x[:, :, None]), "expected a 2-D array (N vectors × d dims), got shape "
                                                        "(40, 5, 1)"),
        "empty": (_npy(tmp_path, "empty.npy", np.zeros((0, 5))), "expected at least one vector of at least one "
                                                                 "dim, got shape (0, 5) (empty)"),
        "nan": (_npy(tmp_path, "nan.npy", nan), "expected finite numbers, found NaN or inf in 1 of 40 rows "
                                                "(first: row 7)"),
        "overflowed": (_npy(tmp_path, "inf.npy", _overflowed()), "expected finite numbers, found NaN or inf in 1 "
                                                                 "of 40 rows (first: row 3)"),
        "huge": (_npy(tmp_path, "huge.npy", huge), "expected values of magnitude ≤ 1e+100 (larger ones overflow "
                                                   "float64 in the computation), found 1e+308 (row 3)"),
    }


FEATURE_CASES = ["object", "text", "npz", "truncated", "folder", "strings", "1-D", "3-D", "empty", "nan",
                 "overflowed", "huge"]


@pytest.mark.parametrize("case", FEATURE_CASES)
def test_bad_features_file_is_one_line_naming_the_file(case, good, tmp_path, capsys):
    path, expected = _features_cases(tmp_path)[case]
    out = tmp_path / "out"
    message = refused(["measure", "--features", path, "--labels", good["L"], "--out", out], capsys)
    assert message.startswith(f"semscale measure: error: features file {path}: "), message
    assert expected in message, message
    assert not out.exists()


@pytest.mark.parametrize("labels,expected", [
    (np.repeat(np.arange(4), 10).reshape(20, 2), "expected a 1-D array of class indices (one per row of features "
                                                 "file {F}), got shape (20, 2)"),
    (np.repeat(np.arange(4), 10)[:30], "expected 40 labels (one per row of features file {F}), got 30"),
    (np.zeros(0, int), "expected 40 labels (one per row of features file {F}), got 0"),
    (np.repeat(np.arange(4), 10) + 0.5, "expected integer class indices, found 0.5 at position 0"),
    (np.repeat(np.array(list("abcd")), 10), "expected a 1-D array of integer class indices, got strings"),
    (np.repeat(np.arange(-1, 3), 10), "expected class indices ≥ 0, found -1"),
    (np.repeat(np.array([0, 1, 3, 4]), 10), "expected class indices 0 … C−1 (C ≥ 2) each with at least one "
                                            "sample, classes [2] have none"),
    (np.zeros(40, int), "got a single class"),
])
def test_bad_labels_file_is_one_line_naming_the_file(labels, expected, good, tmp_path, capsys):
    path = _npy(tmp_path, "bad-labels.npy", labels)
    message = refused(["measure", "--features", good["F"], "--labels", path, "--out", tmp_path / "out"], capsys)
    assert message.startswith(f"semscale measure: error: labels file {path}: ")
    assert expected.format(F=good["F"]) in message, message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag,values,expected", [
    ("--accuracy", [0.5, 0.6], "expected shape (4,) (one accuracy per class 0 … 3), got shape (2,)"),
    ("--accuracy", [0.5, np.nan, 0.6, 0.7], "expected finite numbers, found NaN or inf in 1 of 4 classes"),
    ("--accuracy", ["a", "b", "c", "d"], "got strings"),
    ("--counts", [10, 10, 10], "expected shape (4,) (one training count per class 0 … 3), got shape (3,)"),
    ("--counts", [10, -1, 10, 10], "expected counts ≥ 0, found -1"),
])
def test_bad_per_class_files_are_one_line_naming_the_file(flag, values, expected, good, tmp_path, capsys):
    path = _npy(tmp_path, "per-class.npy", np.array(values))
    message = refused(["measure", "--features", good["F"], "--labels", good["L"], flag, path, "--out",
                       tmp_path / "out"], capsys)
    assert message.startswith(f"semscale measure: error: {flag[2:]} file {path}: ") and expected in message, message
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- one-sample classes
def test_measure_with_a_class_of_one_sample_warns_and_shows_undefined(good, tmp_path, capsys):
    """Its S′ is 0 by definition: a warning on stderr, and "undefined" (not inf) where a ratio divides by it."""
    features = np.vstack([np.load(good["F"]), np.ones((1, 5))])
    labels = np.append(np.load(good["L"]), 4)
    out = tmp_path / "out"
    assert cli.main(["measure", "--features", str(_npy(tmp_path, "F1.npy", features)), "--labels",
                     str(_npy(tmp_path, "L1.npy", labels)), "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["semscale measure: warning: classes [4] have a single sample: their S′ is 0 by definition (one "
                   "vector spans no volume), so their S is 0 and max/min ratios over classes are undefined"]
    summary = pd.read_csv(out / "imbalance_summary.csv").set_index("quantity")
    assert summary.loc["S' (raw)", "max_over_min [ours]"] == "undefined"
    assert summary.loc["S", "max_over_min [ours]"] == "undefined"
    assert not summary.isna().any().any() and "inf" not in (out / "imbalance_summary.csv").read_text()


def test_measure_with_every_class_of_one_sample_is_refused(tmp_path, capsys):
    features, labels = _npy(tmp_path, "F.npy", np.eye(4)), _npy(tmp_path, "L.npy", np.arange(4))
    message = refused(["measure", "--features", features, "--labels", labels, "--out", tmp_path / "out"], capsys)
    assert message == (f"semscale measure: error: labels file {labels}: every class has a single sample, so every S′ "
                       "is 0 (one vector spans no volume) and S′/max S′ is undefined; expected at least one class "
                       "with ≥ 2 samples")
    assert not (tmp_path / "out").exists()


def test_a_uint64_label_beyond_int64_is_reported_as_it_is(good, tmp_path, capsys):
    labels = np.load(good["L"]).astype(np.uint64)
    labels[5] = 2**63
    path = _npy(tmp_path, "L64.npy", labels)
    message = refused(["measure", "--features", good["F"], "--labels", path, "--out", tmp_path / "out"], capsys)
    assert "found 9223372036854775808" in message and "-9223372036854775808" not in message
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ output folders
def test_measure_out_must_be_a_new_or_empty_folder_unless_force(good, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep me")
    base = ["measure", "--features", good["F"], "--labels", good["L"], "--out"]
    assert refused(base + [afile], capsys) == (f"semscale measure: error: output folder {afile} is an existing "
                                               "file, not a folder; choose a folder name")
    assert refused(base + [""], capsys) == "semscale measure: error: --out must name a folder, got ''"
    message = refused(base + [taken], capsys)
    assert message.startswith(f"semscale measure: error: output folder {taken} is not empty (holds notes.txt)")
    assert "--force" in message and "nothing is deleted" in message
    assert afile.read_text() == "keep" and [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert cli.main([str(a) for a in base + [taken, "--force"]]) == 0
    assert (taken / "notes.txt").read_text() == "keep me" and (taken / "semantic_scales.csv").is_file()
    assert cli.main([str(a) for a in base + [taken, "--force"]]) == 0       # same-named files replaced


def test_claim_output_dir(tmp_path):
    assert paths.claim_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert paths.claim_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"          # empty: fine
    (tmp_path / "f").write_text("")
    for bad, message in ((None, "empty path"), ("", "empty path"), ("  ", "empty path"),
                         (tmp_path / "f", "existing file"), (tmp_path / "f" / "sub", "a part of the path is a file"),
                         (tmp_path / "a", r"is not empty \(holds b\).*--force")):
        with pytest.raises(ValueError, match=message):
            paths.claim_output_dir(bad, what="output folder")
    assert paths.claim_output_dir(tmp_path / "a", force=True) == tmp_path / "a"
    assert (tmp_path / "a" / "b").is_dir()


def test_nothing_deletes_a_folder():
    """No code in the library removes folders (and files only the temporary ones it made itself)."""
    sources = sorted((REPO_ROOT / "semscale_lib").rglob("*.py"))
    assert sources
    for source in sources:
        text = source.read_text()
        assert "rmtree" not in text and ".rmdir(" not in text and "os.remove(" not in text, source


def test_train_out_refusals(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("keep")
    assert refused(["train", "--out", afile], capsys) == (f"semscale train: error: output folder {afile} is an "
                                                          "existing file, not a folder; choose a folder name")
    assert refused(["train", "--out", ""], capsys) == "semscale train: error: --out must name a folder, got ''"
    message = refused(["train", "--out", taken], capsys)
    assert f"output folder {taken} is not empty (holds x)" in message and "--resume" in message
    assert "--force" in message
    assert "give --out for a new run or --resume" in refused(["train", "--out", tmp_path / "n", "--resume", taken],
                                                            capsys)
    assert afile.read_text() == "keep" and [p.name for p in taken.iterdir()] == ["x"]


# ----------------------------------------------------------------------------------------------------- resume
def _run_folder(folder, **overrides):
    """A run folder as a run killed before its first checkpoint leaves it: its config.json only."""
    folder.mkdir()
    config = make_config(dataset="digits", epochs=1, model="cnn-small", warmup_epochs=0, **overrides)
    (folder / "config.json").write_text(json.dumps({"config": config.to_dict(), "code": code_record()}))
    return folder


def _snapshot(folder) -> dict:
    """Every file under ``folder``: relative path → (bytes, modification time in ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_refusals(tmp_path, capsys):
    missing = tmp_path / "nosuchdir"
    assert refused(["train", "--resume", missing], capsys) == (f"semscale train: error: cannot resume {missing}: "
                                                               "it is not a run folder (no such folder)")
    assert refused(["train", "--resume", missing, "--lr", "0.1"], capsys).endswith("(no such folder)")
    (tmp_path / "afile").write_text("")
    assert "it is not a run folder (it is a file)" in refused(["train", "--resume", tmp_path / "afile"], capsys)
    (tmp_path / "empty").mkdir()
    assert "not a run folder (no config.json)" in refused(["train", "--resume", tmp_path / "empty"], capsys)
    assert "--resume must name the folder of a run" in refused(["train", "--resume", ""], capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert "its config.json is not a run's settings" in refused(["train", "--resume", broken], capsys)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_resume_of_a_corrupt_checkpoint_is_one_line(damage, tmp_path, capsys):
    folder = _run_folder(tmp_path / "run")
    checkpoint = folder / "checkpoint.pt"
    if damage == "garbage":
        checkpoint.write_bytes(b"\x00garbage\xff")
    else:
        torch.save({"epoch": 1, "model": {"w": torch.zeros(1000)}}, checkpoint)
        checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    message = refused(["train", "--resume", folder, "--no-progress"], capsys)
    assert message == (f"semscale train: error: cannot resume {folder}: its checkpoint.pt is truncated or corrupt "
                       "(not a complete torch checkpoint); move it away to restart this run from scratch in the "
                       "same folder, or start a new run")
    assert checkpoint.exists()                                   # left where it was


def test_resume_of_a_zip_that_is_no_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    folder = _run_folder(tmp_path / "run")
    with zipfile.ZipFile(folder / "checkpoint.pt", "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    message = refused(["train", "--resume", folder, "--no-progress"], capsys)
    assert f"cannot resume {folder}: its checkpoint.pt is truncated or corrupt (" in message


def test_a_run_killed_during_its_first_epoch_resumes_from_scratch(tmp_path, capsys, monkeypatch):
    """Only config.json, no checkpoint (killed in epoch 1): `train --resume` trains it from the start."""
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    folder = _run_folder(tmp_path / "killed")
    assert cli.main(["train", "--resume", str(folder), "--no-progress"]) == 0
    assert f"run folder: {folder}" in capsys.readouterr().out
    assert (folder / "checkpoint.pt").is_file() and (folder / "per_class.csv").is_file()


def test_a_diverged_run_stops_with_one_line_and_is_never_resumed(tmp_path, capsys, monkeypatch):
    """Resuming a run that diverged would diverge again (and used to train it again, rewriting its config.json):
    the divergence is recorded in the folder, and a resume is refused, saying why and what to do."""
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    out = tmp_path / "diverged"
    message = refused(["train", "--lr", "1e4", "--epochs", "1", "--dataset", "digits", "--model", "cnn-small",
                       "--out", out, "--no-progress"], capsys)
    assert message.startswith("semscale train: error: the run diverged: non-finite loss (")
    assert "in epoch 1, iteration " in message and "at learning rate 10000" in message
    assert f"(run folder {out})" in message and "smaller --lr" in message and "diverged.json" in message
    assert (out / "config.json").is_file() and not (out / "per_class.csv").exists()
    record = json.loads((out / "diverged.json").read_text())
    assert record["epoch"] == 1 and record["lr"] == 1e4 and record["iteration"] >= 1
    before = _snapshot(out)
    message = refused(["train", "--resume", out, "--no-progress"], capsys)
    assert message == (f"semscale train: error: cannot resume {out}: the run diverged (non-finite loss in epoch 1, "
                       f"iteration {record['iteration']}, at learning rate 10000; recorded in {out / 'diverged.json'}"
                       "), and resuming it would diverge again; start a new run (another --out) with a smaller --lr; "
                       "the folder is left as it is")
    assert _snapshot(out) == before


def test_resume_of_a_checkpoint_of_another_model_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    out = tmp_path / "run"
    train(make_config(dataset="digits", epochs=2, model="cnn-small", warmup_epochs=0), out_dir=out, progress=False,
          stop_after_epoch=1)
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    state["model"] = build_model("resnet-tiny", 10, in_channels=1).state_dict()   # another model's weights
    torch.save(state, out / "checkpoint.pt")
    before = _snapshot(out)
    message = refused(["train", "--resume", out, "--no-progress"], capsys)
    assert message.startswith(f"semscale train: error: cannot resume {out}: its checkpoint.pt is not of the model "
                              "its config.json names (cnn-small, 10 classes): ")
    assert "tensors missing (" in message and "unexpected (" in message and "load_state_dict" not in message
    assert _snapshot(out) == before


def test_a_new_split_seed_writes_its_split_into_the_run_folder(tmp_path, capsys, monkeypatch):
    """A split drawn for a run belongs to the run's folder; a list the project's splits folder holds is read."""
    splits = tmp_path / "splits"
    monkeypatch.setenv("SEMSCALE_SPLITS", str(splits))
    _, committed = long_tailed_subset(load_dataset("digits"), imbalance_factor=10.0, seed=0)   # as data/splits
    before = _snapshot(splits)
    args = ["train", "--dataset", "digits-lt", "--imbalance-factor", "10", "--model", "cnn-small", "--epochs", "1",
            "--no-progress"]
    assert cli.main(args + ["--split-seed", "7", "--out", str(tmp_path / "new")]) == 0
    assert cli.main(args + ["--split-seed", "0", "--out", str(tmp_path / "known")]) == 0
    assert _snapshot(splits) == before                                        # nothing written there
    new = json.loads((tmp_path / "new" / "config.json").read_text())["split_file"]
    assert new == str(tmp_path / "new" / "digits-exp-if10-seed7.txt") and os.path.isfile(new)
    assert json.loads((tmp_path / "known" / "config.json").read_text())["split_file"] == str(committed)
    assert not list((tmp_path / "known").glob("*.txt"))
    images = training_images(load_run(tmp_path / "new"))                     # read back from the run folder
    assert np.bincount(images.labels).tolist() == json.loads((tmp_path / "new" / "config.json").read_text())[
        "train_counts"]
    assert _snapshot(splits) == before


# ------------------------------------------------------------------------------------------------ devices, names
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_requested_without_cuda(tmp_path, capsys):
    expected = ("CUDA was requested (--device cuda) but torch.cuda.is_available() is False; use --device cpu or "
                "auto")
    assert refused(["train", "--device", "cuda", "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "t"],
                   capsys) == f"semscale train: error: {expected}"
    assert refused(["measure", "--dataset", "digits", "--device", "cuda", "--out", tmp_path / "m"],
                   capsys) == f"semscale measure: error: {expected}"
    assert not (tmp_path / "t").exists() and not (tmp_path / "m").exists()


@pytest.mark.parametrize("argv,expected", [
    (["train", "--device", "nonsense"], "unknown device 'nonsense'; valid: auto, cpu, cuda, cuda:N (a GPU index), mps"),
    (["measure", "--dataset", "nosuch"], f"unknown dataset 'nosuch'; valid: {', '.join(sorted(DATASETS))}"),
    (["measure", "--dataset", "fashion-mnist", "--epochs", "0"], "--epochs must be ≥ 1, got 0"),
    (["measure", "--dataset", "fashion-mnist", "--epochs", "-2"], "--epochs must be ≥ 1, got -2"),
    (["measure", "--dataset", "digits", "--alpha", "0.5"], "alpha must be ≥ 1"),
    (["measure", "--dataset", "digits", "--features", "F.npy"], "give either --dataset NAME or --features"),
    (["train", "--augment", "maybe"], "argument --augment: expected true/false, yes/no or 1/0, got 'maybe'"),
    (["run", "--timeout", "0"], "--timeout must be a number of seconds > 0 (per cell), got 0"),
])
def test_bad_names_and_numbers_are_one_line(argv, expected, tmp_path, capsys):
    out = tmp_path / "out"
    message = refused(argv + ["--out", out], capsys)
    assert message.startswith(f"semscale {argv[0]}: error: {expected}"), message
    assert not out.exists()


def test_run_out_refusals(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert refused(["run", "--profile", "quick", "--out", tmp_path / "afile"], capsys).startswith(
        f"semscale run: error: run folder {tmp_path / 'afile'} is an existing file, not a folder")
    message = refused(["run", "--profile", "quick", "--out", tmp_path / "full"], capsys)
    assert f"run folder {tmp_path / 'full'} is not empty (holds x)" in message and "--force" in message


# ------------------------------------------------------------------------------------------- debug and help
def test_semscale_debug_gives_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSCALE_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown device"):
        cli.main(["train", "--device", "nonsense", "--out", str(tmp_path / "o")])


def test_bugs_are_not_hidden(monkeypatch):
    """Only mistakes in the input become one line; anything else keeps its traceback."""
    def broken(args):
        raise KeyError("a bug")
    monkeypatch.setattr(cli, "_measure", broken)
    with pytest.raises(KeyError):
        cli.main(["measure", "--out", "x"])
    assert cli._is_user_error(RuntimeError("CUDA out of memory")) and not cli._is_user_error(RuntimeError("x"))


def test_help_documents_semscale_debug(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--help"])
    assert stopped.value.code == 0
    assert "SEMSCALE_DEBUG=1" in capsys.readouterr().out


def test_the_installed_command_prints_one_line_and_exits_1(tmp_path):
    """Through a real process: exit status 1, exactly one line on stderr, no traceback."""
    bad = _npy(tmp_path, "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "L.npy", np.array([0]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("SEMSCALE_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "semscale_lib", "measure", "--features", str(bad), "--labels",
                           str(tmp_path / "L.npy"), "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"semscale measure: error: features file {bad}: expected an array of "
                                        "numbers, got an object (pickled) array, which is never loaded (unpickling "
                                        "can run code)"]
    assert not (tmp_path / "o").exists()
