"""Backbones that expose their penultimate embedding.

Every model is an :class:`EmbeddingClassifier`: ``embed(x)`` maps images ``(B, C_in, H, W)`` to globally pooled
features ``(B, D)`` with ``D = model.embedding_dim``, and ``model.classifier`` maps them to logits ``(B, C)``.
``model(x, return_features=True)`` returns ``(logits, features)`` from one forward pass, which is what the
dynamic re-weighting pool (Sec. 4.2, Algorithm 2) stores.

Registered names (:data:`MODELS`, built with :func:`build_model`):

- ``"resnet32"``: the CIFAR ResNet-32 of He et al. (2016, Sec. 4.2) as used in the CIFAR-LT literature
  (LDAM-DRW): 3x3 conv 16 ch, three stages of 5 BasicBlocks with 16 / 32 / 64 channels (stride 2 entering stages
  2 and 3), global average pooling, 64-d embedding, parameter-free "option A" shortcuts, Kaiming-normal init.
- ``"resnet-small"`` **[ours]**: a small ResNet for 28x28 (or 8x8) grey or colour images, 32 / 64 / 128 channels,
  128-d embedding. ``"resnet-tiny"`` **[ours]**: the same at half width (16 / 32 / 64, 64-d), the CPU default.
- ``"resnet18"``, ``"resnet34"``: torchvision models (``weights=None``); with ``small_input=True`` (default) the
  stem is a 3x3 stride-1 conv and the max-pool is removed, the usual adaptation to 32x32 images (the paper's
  Table 1 models; the paper does not state its stem **[ours]**).
- ``"resnet50"``, ``"resnext50"``: torchvision ``resnet50`` / ``resnext50_32x4d`` (``weights=None``), ImageNet stem
  kept by default (``small_input=False``).

Every builder accepts ``normalized_classifier=True``, which replaces the linear classifier by a
:class:`NormedLinear` (cosine classifier, as Cao et al. 2019 use with LDAM; the loss then supplies the scale).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EmbeddingClassifier",
    "NormedLinear",
    "CifarResNet",
    "SmallResNet",
    "SmallCNN",
    "TorchvisionClassifier",
    "MODELS",
    "SIZE_AWARE",
    "build_model",
    "model_info",
]


# ----------------------------------------------------------------------------------------------------------------
# Base class and classifier heads
# ----------------------------------------------------------------------------------------------------------------
class EmbeddingClassifier(nn.Module):
    """A network split into an embedding ``embed(x) -> (B, D)`` and a head ``classifier: (B, D) -> (B, C)``.

    Subclasses set ``self.embedding_dim`` (D), ``self.num_classes`` (C) and ``self.classifier`` and implement
    :meth:`embed`. ``name`` is filled in by :func:`build_model`.
    """

    embedding_dim: int
    num_classes: int
    name: str = ""

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Penultimate features ``(B, D)`` after global pooling (before the classifier)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Logits ``(B, C)``; with ``return_features`` also the features ``(B, D)`` of the same pass.

        The features are not detached: callers that store them (the feature pool) must detach them.
        """
        features = self.embed(x)
        logits = self.classifier(features)
        if return_features:
            return logits, features
        return logits


def _make_classifier(in_features: int, num_classes: int, normalized: bool) -> nn.Module:
    return NormedLinear(in_features, num_classes) if normalized else nn.Linear(in_features, num_classes)


class NormedLinear(nn.Module):
    """Cosine classifier: ``logits[b, j] = <x_b / |x_b|, w_j / |w_j|>``, each value in ``[-1, 1]``.

    ``weight`` has shape ``(out_features, in_features)`` (the :class:`torch.nn.Linear` convention, one row per
    class); both the input rows and the class rows are L2-normalised before the product. No bias. Used with
    LDAM (Cao et al. 2019), whose loss multiplies these cosines by a scale ``s``.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1.0, 1.0)
        with torch.no_grad():
            self.weight.div_(self.weight.norm(dim=1, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, in_features)`` -> cosines ``(B, out_features)``."""
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# ----------------------------------------------------------------------------------------------------------------
# Residual blocks
# ----------------------------------------------------------------------------------------------------------------
class _PadShortcut(nn.Module):
    """He et al.'s option A: subsample spatially by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        if extra < 0:
            raise ValueError("option-A shortcut cannot reduce the number of channels")
        self.pad_front = extra // 2
        self.pad_back = extra - extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W_left, W_right, H_top, H_bottom, C_front, C_back)
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection; ``shortcut`` is ``"A"`` (pad) or ``"B"`` (1x1 conv)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and in_planes == planes:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = _PadShortcut(in_planes, planes, stride)
        elif shortcut == "B":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        else:
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _kaiming_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _StagedResNet(EmbeddingClassifier):
    """Stem conv -> stages of BasicBlocks (first stage stride 1, then stride 2) -> GAP -> classifier."""

    def __init__(self, num_classes: int, in_channels: int, widths: tuple[int, ...], blocks: tuple[int, ...],
                 shortcut: str, normalized_classifier: bool):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError("widths and blocks must have the same length")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        in_planes = widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(_BasicBlock(in_planes, width, stride, shortcut))
                in_planes = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.embedding_dim = in_planes
        self.classifier = _make_classifier(in_planes, num_classes, normalized_classifier)
        _kaiming_init(self)  # Conv2d / Linear / BN only: a NormedLinear keeps its own init

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.stages(out)
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


class CifarResNet(_StagedResNet):
    """CIFAR ResNet-(6n+2) of He et al. (2016): 16/32/64 channels, ``n`` blocks per stage, option-A shortcuts.

    ``depth=32`` (n = 5) is the CIFAR-LT standard; 64-d embedding; about 0.46 M parameters for 10 classes.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, depth: int = 32,
                 normalized_classifier: bool = False):
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        super().__init__(num_classes, in_channels, (16, 32, 64), (n, n, n), "A", normalized_classifier)


class SmallResNet(_StagedResNet):
    """**[ours]** Small ResNet for 28x28 / 8x8 images: 3x3 conv 32 ch, stages 32/64/128, GAP -> 128-d.

    ``blocks`` BasicBlocks per stage (default one each); projection (1x1 conv, "option B") shortcuts; any input
    of at least 8x8 pixels and any number of input channels.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, blocks: tuple[int, int, int] = (1, 1, 1),
                 normalized_classifier: bool = False, width: int = 32):
        super().__init__(num_classes, in_channels, (width, 2 * width, 4 * width), tuple(blocks), "B",
                         normalized_classifier)


class SmallCNN(EmbeddingClassifier):
    """**[ours]** A plain CNN for small grey or colour images (28x28, 32x32, 8x8), the fast CPU model family:
    three 3x3 conv-BN-ReLU layers of ``width``, 2·width, 4·width channels — the first with stride 2 on inputs of
    16 pixels or more, and a 2x2 max-pooling after the first layer while the map is at least 8 pixels (else after
    the second, while it is at least 4) — then global average pooling over each of ``blocks`` square blocks of the
    map, side by side, → a ``4·width·blocks``-d embedding (64-d by default).

    Pooling after the first layer rather than the second trains 1.6× more images per second on one CPU thread and,
    at the same schedule, a better model (+1.5 points of test top-1 on Double-MNIST-LT;
    ``benchmarks/bench_cheap_seeds.py``).

    ``blocks`` > 1 is for wide images made of square parts, such as Double-MNIST's two digits (28x56: 2 blocks):
    pooling each part on its own keeps which digit is on the left, which one global pool would have to learn
    through the padding (on Double-MNIST-LT, 12 epochs: test top-1 ≈ 86 % with two blocks, ≈ 50 % with one).
    :func:`build_model` sets it from ``input_size`` (width // height).

    About 1/10 of ``resnet-tiny``'s multiply-adds on 28x28 inputs (5× faster per CPU step); a second architecture
    family beside the ResNets.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, normalized_classifier: bool = False,
                 blocks: int = 1):
        super().__init__()
        if blocks < 1:
            raise ValueError(f"blocks must be ≥ 1, got {blocks}")
        self.num_classes = num_classes
        self.blocks = int(blocks)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.embedding_dim = 4 * width * self.blocks
        self.classifier = _make_classifier(self.embedding_dim, num_classes, normalized_classifier)
        _kaiming_init(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        stride = 2 if min(x.shape[-2:]) >= 16 else 1
        x = F.relu(self.bn1(F.conv2d(x, self.conv1.weight, stride=stride, padding=1)))
        early = min(x.shape[-2:]) >= 8
        if early:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.bn2(self.conv2(x)))
        if not early and min(x.shape[-2:]) >= 4:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.bn3(self.conv3(x)))
        # block-major (all channels of the left block, then of the next): averaging adjacent dimensions (the DSB
        # pool's 1-D pooling) then mixes channels of one block, never the left and right digit of one channel
        return F.adaptive_avg_pool2d(x, (1, self.blocks)).flatten(2).transpose(1, 2).flatten(1)


class TorchvisionClassifier(EmbeddingClassifier):
    """Wraps a torchvision ResNet/ResNeXt: ``embed`` = everything up to ``avgpool`` + flatten; new classifier.

    ``small_input=True`` replaces the stem by a 3x3 stride-1 conv (64 ch) and drops the max-pool (for 32x32
    images). A non-RGB ``in_channels`` replaces the first conv with the same geometry.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, in_channels: int = 3, small_input: bool = False,
                 normalized_classifier: bool = False):
        super().__init__()
        self.num_classes = num_classes
        out_ch = backbone.conv1.out_channels
        if small_input:
            backbone.conv1 = nn.Conv2d(in_channels, out_ch, 3, stride=1, padding=1, bias=False)
            backbone.maxpool = nn.Identity()
        elif in_channels != backbone.conv1.in_channels:
            backbone.conv1 = nn.Conv2d(in_channels, out_ch, 7, stride=2, padding=3, bias=False)
        if small_input or in_channels != 3:
            nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.embedding_dim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.classifier = _make_classifier(self.embedding_dim, num_classes, normalized_classifier)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's forward: stem -> layer1..4 -> avgpool -> flatten -> fc (now Identity)
        return self.backbone(x)


# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------
def _torchvision_builder(factory_name: str, default_small_input: bool) -> Callable[..., EmbeddingClassifier]:
    def build(num_classes: int, *, in_channels: int = 3, small_input: bool = default_small_input,
              normalized_classifier: bool = False) -> EmbeddingClassifier:
        import torchvision.models as tvm

        backbone = getattr(tvm, factory_name)(weights=None)
        return TorchvisionClassifier(backbone, num_classes, in_channels, small_input, normalized_classifier)

    build.__doc__ = f"torchvision ``{factory_name}(weights=None)``; small_input default {default_small_input}."
    return build


def _build_resnet32(num_classes: int, *, in_channels: int = 3,
                    normalized_classifier: bool = False) -> EmbeddingClassifier:
    return CifarResNet(num_classes, in_channels, depth=32, normalized_classifier=normalized_classifier)


def _build_resnet_small(num_classes: int, *, in_channels: int = 3, blocks: tuple[int, int, int] = (1, 1, 1),
                        normalized_classifier: bool = False) -> EmbeddingClassifier:
    return SmallResNet(num_classes, in_channels, blocks, normalized_classifier)


def _build_resnet_tiny(num_classes: int, *, in_channels: int = 3, normalized_classifier: bool = False
                       ) -> EmbeddingClassifier:
    """[ours] ``resnet-small`` at half width (16/32/64 channels, 64-d embedding): the CPU default."""
    return SmallResNet(num_classes, in_channels, (1, 1, 1), normalized_classifier, width=16)


def _build_cnn_small(num_classes: int, *, in_channels: int = 3, normalized_classifier: bool = False,
                     input_size: tuple[int, int] | None = None) -> EmbeddingClassifier:
    """``input_size`` (height, width): a wide image gets ``width // height`` pooling blocks (:class:`SmallCNN`)."""
    blocks = 1 if input_size is None else max(1, int(input_size[1]) // max(1, int(input_size[0])))
    return SmallCNN(num_classes, in_channels, normalized_classifier=normalized_classifier, blocks=blocks)


MODELS: dict[str, Callable[..., EmbeddingClassifier]] = {
    "cnn-small": _build_cnn_small,
    "resnet32": _build_resnet32,
    "resnet-small": _build_resnet_small,
    "resnet-tiny": _build_resnet_tiny,
    "resnet18": _torchvision_builder("resnet18", True),
    "resnet34": _torchvision_builder("resnet34", True),
    "resnet50": _torchvision_builder("resnet50", False),
    "resnext50": _torchvision_builder("resnext50_32x4d", False),
}


#: Models whose layout depends on the input's height and width (:func:`build_model` passes ``input_size``).
SIZE_AWARE = {"cnn-small"}


def build_model(name: str, num_classes: int, *, in_channels: int = 3, input_size: tuple[int, int] | None = None,
                **kw) -> EmbeddingClassifier:
    """Build a registered model with ``num_classes`` outputs and ``in_channels`` input channels.

    ``input_size``: the images' (height, width) in pixels, passed to the models of :data:`SIZE_AWARE` (the others
    pool globally and take any size). Extra keyword options: ``normalized_classifier`` (all), ``small_input``
    (torchvision models), ``blocks`` (``"resnet-small"``). An unknown ``name`` raises :class:`ValueError` listing
    the valid names; an option the model does not take raises :class:`TypeError`.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if name in SIZE_AWARE and input_size is not None:
        kw["input_size"] = tuple(input_size)
    try:
        model = MODELS[name](num_classes, in_channels=in_channels, **kw)
    except TypeError as err:
        raise TypeError(f"bad options for model {name!r}: {err}") from err
    model.name = name
    return model


def model_info(model: nn.Module) -> dict:
    """``{"name", "params", "trainable_params", "embedding_dim", "num_classes", "classifier"}`` for run configs."""
    return {
        "name": getattr(model, "name", "") or type(model).__name__,
        "params": int(sum(p.numel() for p in model.parameters())),
        "trainable_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "embedding_dim": getattr(model, "embedding_dim", None),
        "num_classes": getattr(model, "num_classes", None),
        "classifier": type(getattr(model, "classifier", None)).__name__,
    }
