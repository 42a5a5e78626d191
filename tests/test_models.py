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


# ------------------------------------------------------------------------------------------- cnn-small's blocks
def _conv3_input_and_bn3_output(model, x):
    """The map conv3 receives and bn3's output (before the last ReLU), by forward hooks."""
    seen = {}
    hooks = [model.conv3.register_forward_hook(lambda m, i, o: seen.__setitem__("conv3_in", i[0].shape[-2:])),
             model.bn3.register_forward_hook(lambda m, i, o: seen.__setitem__("bn3_out", o))]
    with torch.no_grad():
        features = model.embed(x)
    for hook in hooks:
        hook.remove()
    return seen, features


def test_cnn_small_pools_after_the_first_conv_when_the_map_allows():
    from semscale_lib.models import SIZE_AWARE

    assert SIZE_AWARE == {"cnn-small"}
    model = build_model("cnn-small", 10, in_channels=1).eval()
    # 28 px: stride 2 → 14, ≥ 8 so pooled at once → 7; 8 px: stride 1 → 8 → 4; 6 px: no early pool, after conv2 → 3
    for size, conv3_in in ((28, (7, 7)), (8, (4, 4)), (6, (3, 3))):
        seen, features = _conv3_input_and_bn3_output(model, torch.randn(2, 1, size, size))
        assert tuple(seen["conv3_in"]) == conv3_in and features.shape == (2, 64)


def test_cnn_small_wide_input_gets_one_pooling_block_per_square():
    model = build_model("cnn-small", 100, in_channels=1, input_size=(28, 56)).eval()   # Double-MNIST
    assert model.blocks == 2 and model.embedding_dim == 128
    x = torch.randn(3, 1, 28, 56)
    seen, features = _conv3_input_and_bn3_output(model, x)
    assert tuple(seen["conv3_in"]) == (7, 14) and features.shape == (3, 128)
    # block-major: the 64 channel means of the left 7×7 half of the last map, then the 64 of the right half
    last = torch.relu(seen["bn3_out"])
    halves = torch.stack([last[..., :7].mean((2, 3)), last[..., 7:].mean((2, 3))], dim=1)
    torch.testing.assert_close(features.view(3, 2, 64), halves)
    torch.testing.assert_close(features[:, :64], last[..., :7].mean((2, 3)))
    with torch.no_grad():
        logits, feats = model(x, return_features=True)
    assert logits.shape == (3, 100) and feats.shape == (3, 128)
    # a square input keeps one block, 64-d; so does no input_size
    assert build_model("cnn-small", 10, in_channels=1, input_size=(28, 28)).embedding_dim == 64
    assert build_model("cnn-small", 10, in_channels=3).embedding_dim == 64
    # other models take any size and ignore input_size
    assert build_model("resnet-small", 10, in_channels=1, input_size=(28, 56)).embedding_dim == 128
    from semscale_lib.models import SmallCNN
    with pytest.raises(ValueError, match="blocks"):
        SmallCNN(10, blocks=0)
