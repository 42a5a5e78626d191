"""Penultimate-layer embeddings of any torch model, collected with a forward hook."""
from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm


def default_embedding_layer(model: nn.Module) -> nn.Module:
    """The module whose *input* is the embedding: ``model.classifier`` (semscale models), ``model.fc``
    (torchvision ResNets/ResNeXts), else the last ``nn.Linear`` in the model."""
    for attribute in ("classifier", "fc"):
        layer = getattr(model, attribute, None)
        if isinstance(layer, nn.Module):
            return layer
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("cannot find the penultimate layer: the model has no `classifier`, `fc` or nn.Linear; "
                         "pass layer= explicitly")
    return linears[-1]


def _resolve_layer(model: nn.Module, layer) -> nn.Module:
    if layer is None:
        return default_embedding_layer(model)
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ValueError(f"model has no submodule {layer!r}; some valid names: {list(modules)[1:12]}")
        return modules[layer]
    return layer


@torch.no_grad()
def embed_batches(model: nn.Module, batches, layer=None, *, device=None, progress: bool = False,
                  desc: str = "features") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The one forward loop that embeds images with a model (:func:`extract_features` for any model and loader,
    :func:`~semscale_lib.training.runs.embed_run` for a run's checkpoint).

    ``batches`` yields ``(inputs, labels)``; the embedding is the input of ``layer`` (a module or its dotted name;
    default: :func:`default_embedding_layer`), flattened per sample. The model runs in eval mode with no gradients;
    its training mode is restored afterwards. Returns CPU tensors: features float32 (N, D), labels int64 (N,) and
    the predicted classes int64 (N,) (argmax of the model's output, from the same pass).
    """
    target = _resolve_layer(model, layer)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    captured: list[torch.Tensor] = []

    def hook(_module, inputs, _output):
        captured.append(inputs[0].detach().flatten(1).float().cpu())

    handle = target.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    features, labels, predictions = [], [], []
    try:
        for inputs, targets in tqdm(batches, desc=desc, disable=not progress, leave=False):
            captured.clear()
            logits = model(inputs.to(device))
            if len(captured) != 1:
                raise RuntimeError(f"layer was called {len(captured)} times in one forward pass; pick another layer")
            features.append(captured[0])
            labels.append(torch.as_tensor(targets).cpu())
            predictions.append(logits.argmax(dim=1).cpu())
    finally:
        handle.remove()
        model.train(was_training)
    if not features:
        raise ValueError("the loader yielded no batches")
    return torch.cat(features), torch.cat(labels).to(torch.int64), torch.cat(predictions).to(torch.int64)


def extract_features(model: nn.Module, loader, layer=None, *, device=None, progress: bool = True,
                     desc: str = "features"):
    """Embeddings of every sample in ``loader`` → (features float32 (N, D), labels int64 (N,)) as numpy.

    ``loader`` yields ``(inputs, labels)`` batches; ``layer``: whose input is the embedding (default:
    :func:`default_embedding_layer`). The forward loop is :func:`embed_batches`.
    """
    features, labels, _ = embed_batches(model, loader, layer, device=device, progress=progress, desc=desc)
    return features.numpy(), labels.numpy()
