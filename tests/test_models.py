"""Tests for semscale_lib.models: shapes, single-pass features, ResNet-32 size, cosine head, registry errors."""
import pytest
import torch

from semscale_lib.models import MODELS, NormedLinear, build_model, model_info

torch.manual_seed(0)

# (name, in_channels, input spatial size, expected embedding dim)
CASES = [
    ("resnet32", 3, 32, 64),
    ("resnet-small", 1, 28, 128),
    ("resnet-small", 3, 28, 128),
    ("resnet-small", 1, 8, 128),
    ("resnet18", 3, 32, 512),
    ("resnet34", 3, 16, 512),
    ("resnet50", 3, 32, 2048),
    ("resnext50", 3, 32, 2048),
]


@pytest.mark.parametrize("name,in_ch,size,dim", CASES)
def test_shapes_and_single_pass_features(name, in_ch, size, dim):
    batch = 1 if name in ("resnet50", "resnext50") else 2
    model = build_model(name, 7, in_channels=in_ch).eval()
    assert model.embedding_dim == dim
    x = torch.randn(batch, in_ch, size, size)
    with torch.no_grad():
        logits = model(x)
        logits2, feats = model(x, return_features=True)
    assert logits.shape == (batch, 7)
    assert feats.shape == (batch, dim)
    assert torch.allclose(logits, logits2)
    # the features are exactly what the classifier consumed
    assert torch.allclose(model.classifier(feats), logits2)


def test_features_not_detached():
    model = build_model("resnet-small", 3, in_channels=1)
    _, feats = model(torch.randn(2, 1, 8, 8), return_features=True)
    assert feats.requires_grad


def test_resnet32_param_count():
    n = sum(p.numel() for p in build_model("resnet32", 10).parameters())
    assert 450_000 <= n <= 480_000
    info = model_info(build_model("resnet32", 10))
    assert info["name"] == "resnet32" and info["embedding_dim"] == 64 and info["params"] == n


def test_resnet32_option_a_shortcut_has_no_parameters():
    model = build_model("resnet32", 10)
    # 3 stages x 5 blocks x 2 convs + stem conv; no 1x1 projection convs
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 31
    assert all(c.kernel_size == (3, 3) for c in convs)


def test_small_input_stem_for_resnet18():
    model = build_model("resnet18", 10)
    assert model.backbone.conv1.kernel_size == (3, 3) and model.backbone.conv1.stride == (1, 1)
    assert isinstance(model.backbone.maxpool, torch.nn.Identity)
    big = build_model("resnet18", 10, small_input=False)
    assert big.backbone.conv1.kernel_size == (7, 7)


def test_normed_linear_bounded():
    head = NormedLinear(5, 4)
    out = head(torch.randn(50, 5) * 100)
    assert out.shape == (50, 4)
    assert out.abs().max() <= 1.0 + 1e-6
    # a feature parallel to a class row gives cosine 1
    assert torch.isclose(head(head.weight[2:3].detach() * 3.0)[0, 2], torch.tensor(1.0), atol=1e-6)


def test_normalized_classifier_option():
    model = build_model("resnet32", 10, normalized_classifier=True).eval()
    assert isinstance(model.classifier, NormedLinear)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.abs().max() <= 1.0 + 1e-6
    assert model_info(model)["classifier"] == "NormedLinear"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("vgg99", 10)
    for name in MODELS:
        assert name in str(err.value)


def test_unknown_option_is_type_error():
    with pytest.raises(TypeError):
        build_model("resnet32", 10, small_input=True)
