"""TensorBatches: uint8 data on the device, batched random crop / flip, normalisation (semscale_lib.data.batches)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semscale_lib.data.batches import TensorBatches

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _numbered_images(n: int, h: int = 6, w: int = 5, c: int = 2) -> np.ndarray:
    """uint8 (n, h, w, c) whose pixels are all different and never 0 (0 is the crop's padding value)."""
    values = 1 + (np.arange(n * h * w * c) % 250)
    return values.reshape(n, h, w, c).astype(np.uint8)


def _reference_crop(image_chw: np.ndarray, pad: int, dy: int, dx: int, flip: bool) -> np.ndarray:
    """Zero-pad by ``pad`` on every side, take the H×W window at (dy, dx), optionally mirror left-right."""
    _, h, w = image_chw.shape
    padded = np.pad(image_chw, ((0, 0), (pad, pad), (pad, pad)))
    out = padded[:, dy:dy + h, dx:dx + w]
    return out[:, :, ::-1] if flip else out


def _matches(out: np.ndarray, image: np.ndarray, pad: int, flip_allowed: bool) -> list[tuple[int, int, bool]]:
    return [(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
            for f in ((False, True) if flip_allowed else (False,))
            if np.array_equal(out, _reference_crop(image, pad, dy, dx, f))]


def test_layout_and_labels():
    images = _numbered_images(7)
    labels = np.arange(7) % 3
    tb = TensorBatches(images, labels)
    assert len(tb) == 7
    assert tb.images.dtype == torch.uint8 and tuple(tb.images.shape) == (7, 2, 6, 5)
    np.testing.assert_array_equal(tb.images.numpy(), images.transpose(0, 3, 1, 2))
    assert tb.labels.dtype == torch.int64
    with pytest.raises(ValueError, match="uint8"):
        TensorBatches(images.astype(np.float32), labels)
    with pytest.raises(ValueError, match="uint8"):
        TensorBatches(images[..., 0], labels)


@pytest.mark.parametrize("pad", [1, 4])
def test_crop_keeps_shape_and_is_a_padded_window(pad):
    images = _numbered_images(300, h=8, w=8, c=1)
    tb = TensorBatches(images, np.zeros(300, dtype=np.int64), pad=pad, flip=False)
    out = tb.augment(tb.images, torch.Generator().manual_seed(3))
    assert out.shape == tb.images.shape and out.dtype == torch.uint8
    seen = set()
    for i in range(len(images)):
        found = _matches(out[i].numpy(), tb.images[i].numpy(), pad, flip_allowed=False)
        assert len(found) == 1, f"image {i}: output is not exactly one padded crop of its input"
        seen.add(found[0][:2])
    # offsets range over all of [0, 2·pad] in both directions
    assert {dy for dy, _ in seen} == set(range(2 * pad + 1))
    assert {dx for _, dx in seen} == set(range(2 * pad + 1))


@pytest.mark.parametrize("pad,flip", [(1, False), (4, True), (2, True)])
def test_augment_equals_reference_for_the_drawn_offsets(pad, flip):
    """Replay the generator: offsets (2, B) then flips (B,) — each output equals the numpy reference crop; the
    offset (pad, pad) without flip is the identity."""
    images = _numbered_images(400, h=8, w=8, c=3)
    tb = TensorBatches(images, np.zeros(400, dtype=np.int64), pad=pad, flip=flip)
    out = tb.augment(tb.images, torch.Generator().manual_seed(11)).numpy()
    replay = torch.Generator().manual_seed(11)
    offsets = torch.randint(0, 2 * pad + 1, (2, 400), generator=replay).numpy()
    flips = (torch.rand(400, generator=replay) < 0.5).numpy() if flip else np.zeros(400, bool)
    identities = 0
    for i in range(400):
        source = tb.images[i].numpy()
        np.testing.assert_array_equal(out[i], _reference_crop(source, pad, offsets[0, i], offsets[1, i], flips[i]))
        if offsets[0, i] == pad and offsets[1, i] == pad and not flips[i]:
            np.testing.assert_array_equal(out[i], source)
            identities += 1
    assert identities > 0


def test_flip_mirrors_and_happens_about_half_the_time():
    images = _numbered_images(200, h=4, w=7, c=1)
    tb = TensorBatches(images, np.zeros(200, dtype=np.int64), pad=0, flip=True)
    out = tb.augment(tb.images, torch.Generator().manual_seed(0))
    flipped = 0
    for i in range(200):
        if torch.equal(out[i], tb.images[i]):
            continue
        assert torch.equal(out[i], tb.images[i].flip(-1)), "a changed image must be the left-right mirror"
        flipped += 1
    assert 60 < flipped < 140


def test_no_augmentation_when_pad_0_and_no_flip():
    images = _numbered_images(10)
    tb = TensorBatches(images, np.zeros(10, dtype=np.int64), pad=0, flip=False)
    assert torch.equal(tb.augment(tb.images, torch.Generator().manual_seed(0)), tb.images)


def test_same_generator_seed_same_batch():
    images = _numbered_images(64, h=8, w=8, c=3)
    labels = np.arange(64) % 10
    tb = TensorBatches(images, labels, pad=2, flip=True)
    idx = torch.tensor([5, 3, 60, 0, 17, 17])
    a = tb.batch(idx, generator=torch.Generator().manual_seed(7), augment=True)
    b = tb.batch(idx, generator=torch.Generator().manual_seed(7), augment=True)
    c = tb.batch(idx, generator=torch.Generator().manual_seed(8), augment=True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    np.testing.assert_array_equal(a[1].numpy(), labels[idx.numpy()])
    with pytest.raises(ValueError, match="generator"):
        tb.batch(idx, augment=True)


def test_normalization_uses_the_given_or_the_data_statistics():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 5, 5, 3), dtype=np.uint8)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 0.5]
    tb = TensorBatches(images, np.zeros(20, dtype=np.int64), mean=mean, std=std)
    inputs, _ = tb.batch(torch.arange(20))
    expected = (images.transpose(0, 3, 1, 2) / 255.0 - np.array(mean)[None, :, None, None]) \
        / np.array(std)[None, :, None, None]
    assert inputs.dtype == torch.float32
    np.testing.assert_allclose(inputs.numpy(), expected, rtol=1e-5, atol=1e-5)

    own = TensorBatches(images, np.zeros(20, dtype=np.int64))
    pixels = images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(own.mean.flatten().numpy(), pixels.mean(0), rtol=1e-6)
    np.testing.assert_allclose(own.std.flatten().numpy(), pixels.std(0), rtol=1e-5)
    standardized, _ = own.batch(torch.arange(20))
    per_channel = standardized.permute(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(per_channel.mean(1).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(1, unbiased=False).numpy(), 1.0, atol=1e-4)


def test_ordered_covers_everything_in_order_without_augmentation():
    images = _numbered_images(23, h=8, w=8, c=1)
    labels = np.arange(23) % 4
    tb = TensorBatches(images, labels, pad=4, flip=True, mean=[0.0], std=[1.0])
    parts = list(tb.ordered(10))
    assert [len(p[1]) for p in parts] == [10, 10, 3]
    inputs = torch.cat([p[0] for p in parts])
    np.testing.assert_allclose(inputs.numpy() * 255.0, images.transpose(0, 3, 1, 2), atol=1e-3)
    np.testing.assert_array_equal(torch.cat([p[1] for p in parts]).numpy(), labels)
