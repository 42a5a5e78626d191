"""The studies pass a notebook's ``device`` down to the embedding and to every measure they call."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from semscale_lib.data import ImageArrays
from semscale_lib.imbalance import quantify_imbalance
from semscale_lib.studies import correlation as co
from semscale_lib.studies import marginal_effect as me
from semscale_lib.studies import measure as ms
from semscale_lib.studies import reweighting as rw
from semscale_lib.studies import tracking as tr

SENTINEL = object()   # reaches the patched measures only: a real one would refuse it


def _data(classes: int = 4, per_class: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(classes * per_class, 6, 6, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(classes), per_class)
    features = rng.normal(size=(len(labels), 8)) + labels[:, None]
    return ImageArrays(images, labels, [f"c{i}" for i in range(classes)], "toy"), features


def _recorder(seen: list, name: str, real=None, **fixed):
    def fake(*args, device=None, **kwargs):
        seen.append((name, device))
        return real(*args, **{**kwargs, **fixed}) if real is not None else None
    return fake


@pytest.fixture
def fake_runs(monkeypatch):
    """Two runs of one setting whose embeddings are made up; every embed_run call is recorded with its device."""
    images, features = _data()
    seen = []
    runs = [SimpleNamespace(test_features=features, test_labels=images.labels) for _ in range(2)]
    counts = np.bincount(images.labels)
    accuracy = np.linspace(0.5, 0.9, len(counts))

    def embed(run_dir, imgs, *, device=None, with_predictions=False, **_):
        seen.append(("embed_run", device))
        return (features, imgs.labels.copy()) if with_predictions else features
    for module in (co, tr):
        monkeypatch.setattr(module, "load_setting_runs", lambda dirs: (runs, counts, accuracy))
        monkeypatch.setattr(module, "training_images", lambda run: images)
        monkeypatch.setattr(module, "embed_run", embed)
    return seen


def test_correlation_sources_embeds_and_measures_on_the_notebooks_device(fake_runs, monkeypatch):
    monkeypatch.setattr(co, "quantify_imbalance", _recorder(fake_runs, "quantify_imbalance", quantify_imbalance))
    study = co.correlation_sources(["a", "b"], alpha=1.0, image_size=4, device=SENTINEL)
    assert set(study["tables"]) == set(co.SOURCES)
    assert ("embed_run", SENTINEL) in fake_runs
    assert {device for _, device in fake_runs} == {SENTINEL}
    assert sum(name == "quantify_imbalance" for name, _ in fake_runs) == 1 + 2 + 2   # pixels once, 2 runs × 2


def test_correlation_sources_default_is_todays(fake_runs, monkeypatch):
    monkeypatch.setattr(co, "quantify_imbalance", _recorder(fake_runs, "quantify_imbalance", quantify_imbalance))
    co.correlation_sources(["a", "b"], alpha=1.0, image_size=4, sources=[co.TRAINING_FEATURES])
    assert {device for _, device in fake_runs} == {None}


@pytest.mark.parametrize("source", [tr.PRIMARY_SOURCE, tr.SENSITIVITY_SOURCE])
def test_study_tables_embed_and_measure_on_the_notebooks_device(fake_runs, monkeypatch, source):
    monkeypatch.setattr(tr, "quantify_imbalance", _recorder(fake_runs, "quantify_imbalance", quantify_imbalance))
    monkeypatch.setattr(tr, "class_difficulty_table",
                        _recorder(fake_runs, "class_difficulty_table", tr.class_difficulty_table, device="cpu"))
    result = tr.study_tables(["a", "b"], source=source, image_size=4, device=SENTINEL)
    assert set(tr.PREDICTORS) <= set(result["predictors"].columns)
    names = [name for name, _ in fake_runs]
    assert names.count("embed_run") == 2 and "quantify_imbalance" in names and "class_difficulty_table" in names
    assert {device for _, device in fake_runs} == {SENTINEL}


def test_predictor_table_passes_cpu_to_the_measures_by_default(monkeypatch):
    seen = []
    monkeypatch.setattr(tr, "class_difficulty_table", _recorder(seen, "table", tr.class_difficulty_table,
                                                                device="cpu"))
    _, features = _data()
    tr.predictor_table(features, np.repeat(np.arange(4), 30), counts=[30] * 4)
    assert seen == [("table", "cpu")]


def test_nested_sample_volumes_measure_on_the_device(monkeypatch):
    seen = []
    monkeypatch.setattr(me, "class_semantic_scales", _recorder(seen, "S'", me.class_semantic_scales))
    images, _ = _data()
    me.nested_sample_volumes(images, [5, 10], seed=0, size=4, device=SENTINEL)
    assert seen == [("S'", SENTINEL)] * 2


def test_static_dsb_weights_and_the_grid_pass_the_device(monkeypatch, tmp_path):
    images, features = _data()
    seen = []
    monkeypatch.setattr(rw, "load_run", lambda run_dir: SimpleNamespace())
    monkeypatch.setattr(rw, "training_images", lambda run: images)
    monkeypatch.setattr(rw, "embed_run", _recorder(seen, "embed_run", lambda *a: features))
    monkeypatch.setattr(rw, "quantify_imbalance", _recorder(seen, "quantify_imbalance", quantify_imbalance))
    (tmp_path / "run").mkdir()
    rw.static_dsb_weights(tmp_path / "run", alpha=1.0, device=SENTINEL)
    assert seen == [("embed_run", SENTINEL), ("quantify_imbalance", SENTINEL)]

    def fake_methods(methods, seeds, base, out, **_):
        return pd.DataFrame([{"method": m, "seed": s, "run_dir": f"{m}-{s}", "top1": 0.5}
                             for m in methods for s in seeds])
    weights_seen = []
    monkeypatch.setattr(rw, "run_methods", fake_methods)
    monkeypatch.setattr(rw, "static_dsb_weights", lambda run_dir, *, device=None, **_: (
        weights_seen.append(device) or (np.ones(4), pd.DataFrame({"class": range(4)}))))
    rw.static_weighting_grid(["ce"], [0], {"device": "cuda:7"}, tmp_path)
    rw.static_weighting_grid(["ce"], [0], {"device": "cuda:7"}, tmp_path, device=SENTINEL)
    assert weights_seen == ["cuda:7", SENTINEL]


def test_measure_to_folder_measures_on_the_device(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(ms, "quantify_imbalance", _recorder(seen, "quantify_imbalance", quantify_imbalance))
    _, features = _data()
    ms.measure_to_folder(features, np.repeat(np.arange(4), 30), tmp_path / "out", device=SENTINEL)
    assert seen == [("quantify_imbalance", SENTINEL)]


def test_static_weights_are_derived_once_per_run_and_read_back_to_the_last_digit(monkeypatch, tmp_path):
    """Embedding again (another thread count, a GPU) may differ in the last digits; the weights that name the
    weighted runs must not: the first derivation is kept in the run's folder and every later call reads it."""
    images, features = _data()
    monkeypatch.setattr(rw, "load_run", lambda run_dir: SimpleNamespace())
    monkeypatch.setattr(rw, "training_images", lambda run: images)
    monkeypatch.setattr(rw, "embed_run", lambda *a, **k: features)
    run = tmp_path / "run"
    run.mkdir()
    first, _ = rw.static_dsb_weights(run, alpha=1.0, pool_dim=None)
    settings = dict(alpha=1.0, normalize="mean1", source="train", pool_dim=None)
    assert rw.static_weights_file(run, **settings).name == "static-weights-train-alpha1-mean1-poolNone.json"
    monkeypatch.setattr(rw, "embed_run", lambda *a, **k: features * (1 + 1e-12))   # the last digits move
    again, table = rw.static_dsb_weights(run, alpha=1.0, pool_dim=None)
    assert again.tolist() == first.tolist() == rw.remembered_static_weights(run, **settings).tolist()
    assert table["weight"].tolist() == first.tolist()
    assert rw.remembered_static_weights(run, **{**settings, "alpha": 2.0}) is None     # other settings: not yet
