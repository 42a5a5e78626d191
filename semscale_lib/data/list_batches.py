"""Large image-list datasets (ImageNet-LT, iNaturalist 2018) for the trainer: a DataLoader with workers.

Same batch interface as ``TensorBatches`` (``epoch``, ``ordered``, ``labels``, ``len``) so that one training loop
serves both. Augmentation is per sample (RandomResizedCrop + flip, the usual ImageNet recipe [ours: the paper
does not state it]), so runs are reproducible in their sample order but not bit-exact across worker counts.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from .loaders import ImageListDataset

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class _Indexed(Dataset):
    """(image, label) → (index, image, label), with a transform chosen per view."""

    def __init__(self, base: ImageListDataset, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return index, self.transform(image), label


class ListBatches:
    """Batches of an ``ImageListDataset`` (``root``, ``list_file``) decoded by ``num_workers`` processes."""

    def __init__(self, root, list_file, *, image_size: int = 224, num_workers: int = 4, device="cpu"):
        self.dataset = ImageListDataset(root, list_file)
        self.device = torch.device(device)
        self.num_workers = num_workers
        from torchvision import transforms   # here, not at import: importing torchvision costs seconds (torch._dynamo)

        normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.train_transform = transforms.Compose([
            transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
            normalize])
        self.eval_transform = transforms.Compose([
            transforms.Resize(int(image_size * 256 / 224)), transforms.CenterCrop(image_size), transforms.ToTensor(),
            normalize])
        self.labels = torch.as_tensor(self.dataset.labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.dataset)

    def _loader(self, batches, transform):
        return DataLoader(_Indexed(self.dataset, transform), batch_sampler=batches, num_workers=self.num_workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def epoch(self, order: torch.Tensor, batch_size: int, *, generator=None, augment: bool = True):
        """Yield (indices, inputs, targets) on the device, in the order given (one epoch)."""
        chunks = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        for indices, inputs, targets in self._loader(chunks, self.train_transform if augment else
                                                     self.eval_transform):
            yield (indices.to(self.device), inputs.to(self.device, non_blocking=True),
                   targets.to(self.device, non_blocking=True))

    def ordered(self, batch_size: int):
        """(inputs, labels) batches in file order without augmentation — for evaluation."""
        chunks = [list(range(i, min(i + batch_size, len(self)))) for i in range(0, len(self), batch_size)]
        for _, inputs, targets in self._loader(chunks, self.eval_transform):
            yield inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
