"""The validation split and what a run reports about its fit (semscale_lib.data.validation_indices,
semscale_lib.training): the per-class carve-out, val_top1 / train_top1 in metrics.csv, val_counts in config.json,
trainer.top1, the cosine schedule, the cpu-quick preset and when checkpoints are written."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from schedules import learning_rates
import torch

import semscale_lib.training as T
from semscale_lib.data import validation_indices
from semscale_lib.data.batches import TensorBatches
from semscale_lib.models import build_model
from semscale_lib.data import run_data
from semscale_lib.training import trainer

TINY = dict(dataset="digits-lt", imbalance_factor=10.0, model="cnn-small", batch_size=64, epochs=2,
            warmup_epochs=0, eval_batch_size=512, device="cpu")


# ------------------------------------------------------------------------------------------- validation_indices
LABELS = np.repeat([0, 1, 2, 3], [10, 25, 3, 7])[np.random.default_rng(5).permutation(45)]


def test_validation_indices_take_the_floor_of_every_class():
    train, val = validation_indices(LABELS, 0.2, seed=0)
    # ⌊0.2 · (10, 25, 3, 7)⌋ = 2, 5, 0, 1: a class too small to give one keeps all its images
    assert np.bincount(LABELS[val], minlength=4).tolist() == [2, 5, 0, 1]
    assert np.bincount(LABELS[train], minlength=4).tolist() == [8, 20, 3, 6]
    # disjoint and complete, each sorted int64
    assert np.intersect1d(train, val).size == 0 and np.union1d(train, val).tolist() == list(range(45))
    assert train.dtype == val.dtype == np.int64 and np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)


def test_validation_indices_are_deterministic_by_seed():
    first = validation_indices(LABELS, 0.3, seed=7)
    again = validation_indices(LABELS, 0.3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], validation_indices(LABELS, 0.3, seed=8)[1])
    # the rule of the docstring, recomputed: one rng seeded (seed, 1), one permutation per class in order
    rng = np.random.default_rng((7, 1))
    expected = np.sort(np.concatenate([rng.permutation(np.flatnonzero(LABELS == c))[:math.floor(0.3 * n)]
                                       for c, n in enumerate([10, 25, 3, 7])]))
    np.testing.assert_array_equal(first[1], expected)


def test_validation_fraction_zero_is_empty_and_out_of_range_is_refused():
    train, val = validation_indices(LABELS, 0.0, seed=0)
    assert val.size == 0 and train.tolist() == list(range(45))
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="validation fraction"):
            validation_indices(LABELS, bad, seed=0)
    with pytest.raises(ValueError, match="val_fraction"):
        T.make_config(**TINY, val_fraction=1.0)


# ------------------------------------------------------------------------------------------------------ top1
class _PixelArgmax(torch.nn.Module):
    """Logits = the normalised pixels of a 1×3 grey image (class = the brightest pixel); records its mode."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return x.flatten(1)


def test_top1_counts_hits_over_all_images_even_with_a_class_missing():
    brightest = [0, 2, 2, 1, 0]
    images = np.zeros((5, 1, 3, 1), np.uint8)
    images[np.arange(5), 0, brightest, 0] = 200
    labels = [0, 2, 0, 2, 2]                    # class 1 has no image; hits: images 0 and 1
    batches = TensorBatches(images, labels, mean=[0.0], std=[1.0])
    model = _PixelArgmax().train()
    assert trainer.top1(model, batches, batch_size=2) == pytest.approx(2 / 5)
    assert model.modes == [False] * 3 and model.training       # evaluated in eval mode, 3 batches; mode restored
    assert trainer.top1(model.eval(), batches, batch_size=5) == pytest.approx(0.4) and not model.training


# ------------------------------------------------------------------------------------------- a validated run
@pytest.fixture(scope="module")
def validated_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validated")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEMSCALE_SPLITS", str(folder / "splits"))
        threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(1)
        config = T.make_config(**TINY, val_fraction=0.2)
        full = np.bincount(run_data.training_arrays(T.make_config(**TINY).data)[0].labels, minlength=10)
        out = T.train(config, out_dir=folder / "run", progress=False)
        data = run_data.load_run_data(config.data)
        yield config, full, out, data
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def test_a_validated_run_records_its_split_and_its_fit(validated_run):
    config, full, out, data = validated_run
    saved = json.loads((out / "config.json").read_text())
    held = [math.floor(0.2 * n) for n in full]
    assert saved["val_counts"] == held and sum(held) > 0
    assert saved["train_counts"] == (full - np.array(held)).tolist()         # validation images are not trained on
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["val_top1"].between(0, 1).all()                           # every epoch
    assert np.isnan(metrics["train_top1"].iloc[0]) and 0 <= metrics["train_top1"].iloc[-1] <= 1
    # the numbers are the final model's top-1 on its own training images (no augmentation) and on validation
    model = build_model(config.model, 10, in_channels=data.in_channels, input_size=data.input_size)
    model.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=False)["model"])
    model = model.to(memory_format=torch.channels_last)
    assert trainer.top1(model, data.train, batch_size=512) == metrics["train_top1"].iloc[-1]
    assert trainer.top1(model, data.val, batch_size=512) == metrics["val_top1"].iloc[-1]
    # the validation images are normalised like the test set: with the training set's statistics
    assert torch.equal(data.val.mean, data.train.mean) and torch.equal(data.val.std, data.train.std)


# -------------------------------------------------------------------------------------------- the schedule


COS_QUARTER, COS_THREE_QUARTERS = 0.5 * (1 + math.cos(math.pi / 4)), 0.5 * (1 + math.cos(3 * math.pi / 4))


def test_cosine_schedule_per_epoch_after_the_warm_up():
    # warm-up 1 over 5 epochs: factor (0 + 1) / 1 in epoch 1, then ½(1 + cos(π (e − 1) / 4)) for e = 1 … 4 (from 0)
    config = T.make_config(**{**TINY, "epochs": 5, "schedule": "cosine", "warmup_epochs": 1, "lr": 0.2})
    assert learning_rates(config, 5) == pytest.approx([0.2, 0.2, 0.2 * COS_QUARTER, 0.1, 0.2 * COS_THREE_QUARTERS])
    # warm-up 2 over 6 epochs: 0.1, 0.2, then the same decay over the 4 epochs left
    longer = T.make_config(**{**TINY, "epochs": 6, "schedule": "cosine", "warmup_epochs": 2, "lr": 0.2})
    assert learning_rates(longer, 6) == pytest.approx([0.1, 0.2, 0.2, 0.2 * COS_QUARTER, 0.1,
                                                        0.2 * COS_THREE_QUARTERS])


def test_the_cpu_quick_preset():
    config = T.make_config("cpu-quick")
    assert (config.model, config.optim.lr, config.optim.schedule, config.optim.warmup_epochs, config.optim.epochs) == \
        ("cnn-small", 0.2, "cosine", 1, 16)
    assert config.data.val_fraction == 0.1 and config.evaluation.every == 0


# ------------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("seconds,stop,expected", [
    (1e9, None, [3]),            # only after the last epoch
    (0.0, None, [1, 2, 3]),      # every epoch once the interval has passed
    (1e9, 1, [1]),               # stop_after_epoch always writes
])
def test_checkpoints_are_written_after_the_last_epoch_or_after_the_interval(seconds, stop, expected, monkeypatch,
                                                                            isolated_splits):
    saved = []
    original = trainer._save_epoch
    monkeypatch.setattr(trainer, "CHECKPOINT_SECONDS", seconds)
    monkeypatch.setattr(trainer, "_save_epoch", lambda run, epoch: (saved.append(epoch), original(run, epoch)))
    out = T.train(T.make_config(**{**TINY, "epochs": 3}), out_dir=isolated_splits / "run", progress=False,
                  stop_after_epoch=stop)
    assert saved == expected
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == expected[-1]
