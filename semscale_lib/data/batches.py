"""Small datasets held as one uint8 tensor on the training device, augmented there in whole batches.

Replaces a per-sample PIL DataLoader for everything up to CIFAR size: random crop with zero padding and a
horizontal flip are drawn for a whole batch from one ``torch.Generator`` (CPU, so runs are reproducible and the
state can be checkpointed) and applied with tensor indexing on the device.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class TensorBatches:
    """images uint8 (N, H, W, C) numpy → uint8 (N, C, H, W) tensor on ``device``; labels int64 (N,).

    ``mean``/``std`` (per channel, in [0, 1] units) default to the data's own statistics.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, device="cpu", mean=None, std=None,
                 pad: int = 4, flip: bool = True):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(self.device)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device)
        if mean is None or std is None:
            pixels = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
            mean, std = pixels.mean(0), pixels.std(0) + 1e-8
        self.mean = torch.as_tensor(np.asarray(mean, np.float32), device=self.device)[None, :, None, None]
        self.std = torch.as_tensor(np.asarray(std, np.float32), device=self.device)[None, :, None, None]
        self.pad, self.flip = pad, flip

    def __len__(self) -> int:
        return self.images.shape[0]

    def normalize(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) → float32 standardised."""
        return (batch_uint8.float() / 255.0 - self.mean) / self.std

    def augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop (zero padding ``pad``, back to H×W) and horizontal flip for each image of a uint8 batch."""
        b, _, h, w = batch.shape
        if self.pad > 0:
            offsets = torch.randint(0, 2 * self.pad + 1, (2, b), generator=generator).to(batch.device)
            padded = F.pad(batch, (self.pad,) * 4)
            rows = (offsets[0][:, None] + torch.arange(h, device=batch.device))[:, None, :, None]
            cols = (offsets[1][:, None] + torch.arange(w, device=batch.device))[:, None, None, :]
            batch = padded[torch.arange(b, device=batch.device)[:, None, None, None],
                           torch.arange(batch.shape[1], device=batch.device)[None, :, None, None], rows, cols]
        if self.flip:
            flips = (torch.rand(b, generator=generator) < 0.5).to(batch.device)
            batch = torch.where(flips[:, None, None, None], batch.flip(-1), batch)
        return batch

    def batch(self, indices: torch.Tensor, *, generator: torch.Generator | None = None, augment: bool = False):
        """(inputs float32 (B, C, H, W), labels (B,)) for the given indices (a CPU or device int64 tensor)."""
        indices = indices.to(self.device)
        images = self.images[indices]
        if augment:
            if generator is None:
                raise ValueError("augmentation needs a generator (for reproducible runs)")
            images = self.augment(images, generator)
        return self.normalize(images), self.labels[indices]

    def epoch(self, order: torch.Tensor, batch_size: int, *, generator: torch.Generator | None = None,
              augment: bool = False):
        """One pass in the given order: yields (indices, inputs, targets) on the device, ``batch_size`` at a time."""
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size].to(self.device)
            inputs, targets = self.batch(indices, generator=generator, augment=augment)
            yield indices, inputs, targets

    def ordered(self, batch_size: int):
        """Batches in order, without augmentation — for evaluation and feature extraction."""
        for start in range(0, len(self), batch_size):
            yield self.batch(torch.arange(start, min(start + batch_size, len(self))))
