"""One forward loop embeds images (semscale_lib.features.embed_batches): any model and loader, and a run's
checkpoint (training.embed_run), each checked against the model's own penultimate features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from semscale_lib import extract_features
from semscale_lib.features import embed_batches
from semscale_lib.models import build_model
from semscale_lib.training import embed_run, load_run, make_config, train, training_images
from semscale_lib.data.run_data import tensor_batches


def _batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def test_any_model_any_layer_hand_checked():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(10, 3), torch.arange(10) % 2
    model.train()
    features, labels = extract_features(model, _batches(x, y, 4), progress=False)
    hidden = torch.relu(model[0](x))                          # the input of the last nn.Linear
    assert np.allclose(features, hidden.detach().numpy(), atol=1e-6) and features.dtype == np.float32
    assert labels.tolist() == y.tolist() and model.training    # training mode restored
    first, _ = extract_features(model, _batches(x, y, 3), layer="1", progress=False)
    assert np.allclose(first, model[0](x).detach().numpy(), atol=1e-6)    # input of the ReLU
    _, _, predicted = embed_batches(model, _batches(x, y, 4))
    assert predicted.tolist() == model(x).argmax(1).tolist()
    with pytest.raises(ValueError, match="no batches"):
        extract_features(model, [], progress=False)


def test_a_runs_embeddings_are_its_models_penultimate_features(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    torch.set_num_threads(1)
    config = make_config("cpu-quick", dataset="digits", epochs=1, device="cpu")
    folder = train(config, out_dir=tmp_path / "run", progress=False, log=False)
    images = training_images(load_run(folder))
    features, predicted = embed_run(folder, images, batch_size=100, with_predictions=True)
    model = build_model("cnn-small", 10, in_channels=images.images.shape[-1], input_size=images.images.shape[1:3])
    model.load_state_dict(torch.load(folder / "checkpoint.pt", weights_only=False)["model"])
    model.eval()
    batches = tensor_batches(images, device="cpu", dataset="digits",
                             reference=tensor_batches(images, device="cpu", dataset="digits"))
    with torch.no_grad():
        logits, expected = zip(*(model(x, return_features=True) for x, _ in batches.ordered(100)))
    assert features.shape == (len(images.labels), expected[0].shape[1])
    assert np.allclose(features, torch.cat(expected).numpy(), atol=1e-5)
    assert (predicted == torch.cat(logits).argmax(1).numpy()).all()


def test_a_run_is_embedded_on_its_own_device_unless_told(tmp_path, monkeypatch):
    from semscale_lib.training import runs
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    folder = train(make_config("cpu-quick", dataset="digits", epochs=1, device="auto"), out_dir=tmp_path / "run",
                   progress=False, log=False)
    images = training_images(load_run(folder))
    asked = []
    real = runs.resolve_device
    monkeypatch.setattr(runs, "resolve_device", lambda name: asked.append(name) or real(name))
    default = embed_run(folder, images)
    on_cpu = embed_run(folder, images, device="cpu")
    assert asked == ["auto", "cpu"]               # the run's setting ("auto": CUDA where there is one), then the given
    assert np.allclose(default, on_cpu, atol=1e-5) if not torch.cuda.is_available() else default.shape == on_cpu.shape
