"""A run's data: the training set its :class:`~.settings.DataSettings` name (long-tailed split or per-class subset,
normalisation and augmentation rules decided once) as batch sources on a device."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batches import TensorBatches
from .list_batches import ListBatches
from .loaders import ImageArrays, load_dataset
from .longtail import long_tailed_subset, named_counts, nested_balanced_indices, validation_indices
from .settings import IMAGE_FOLDER, IMAGE_LIST, DataSettings, split_dataset_name

NO_FLIP = {"mnist", "digits", "double-mnist"}  # digits are not mirror-symmetric (and a flip swaps "37" and "73")


@dataclass
class RunData:
    train: object                 # TensorBatches (in-memory datasets) or ListBatches (image lists)
    test: object
    counts: np.ndarray            # training samples per class (C,), validation images excluded
    classes: list[str]            # class names, index = label
    in_channels: int
    split_file: str | None
    subset_indices: np.ndarray | None = None   # subset_per_class: the drawn indices into the (split) training set
    val: object | None = None     # validation batches (val_fraction > 0), normalised like the test set
    input_size: tuple[int, int] | None = None  # (height, width) of the images, in pixels


def load_settings_dataset(settings: DataSettings, *, train: bool) -> ImageArrays:
    """The whole training or test set of ``settings.dataset`` (without ``-lt``): ``imagefolder`` reads the tree
    ``image_root`` at ``image_size``; every other dataset reads ``data_root`` (None: the default data folder)."""
    base, _ = split_dataset_name(settings.dataset)
    if base == IMAGE_FOLDER:
        return load_dataset(base, train=train, root=settings.image_root, image_size=settings.image_size)
    return load_dataset(base, train=train, root=settings.data_root)


def _split_arrays(settings: DataSettings
                  ) -> tuple[ImageArrays, ImageArrays | None, str | None, np.ndarray | None]:
    """(training images, validation images or None, split file, per-class subset indices): see
    :func:`training_arrays`; the validation images are the ``val_fraction`` of every class carved out last
    (:func:`~semscale_lib.data.validation_indices`, seeded by ``split_seed``)."""
    base, long_tailed = split_dataset_name(settings.dataset)
    images = load_settings_dataset(settings, train=True)
    split_file = None
    if long_tailed:
        named = settings.profile not in ("exp", "step")
        images, split_file = long_tailed_subset(
            images, imbalance_factor=None if named else settings.imbalance_factor,
            counts=named_counts(settings.profile) if named else None, profile=settings.profile,
            seed=settings.split_seed)
        split_file = str(split_file)
    subset = None
    if settings.subset_per_class is not None:
        m = int(settings.subset_per_class)
        subset = nested_balanced_indices(images.labels, [m], seed=settings.split_seed,
                                         num_classes=images.num_classes)[m]
        images = images.subset(subset)
    validation = None
    if settings.val_fraction > 0:
        kept, held = validation_indices(images.labels, settings.val_fraction, seed=settings.split_seed,
                                        num_classes=images.num_classes)
        images, validation = images.subset(kept), images.subset(held)
    return images, validation, split_file, subset


def training_arrays(settings: DataSettings) -> tuple[ImageArrays, str | None, np.ndarray | None]:
    """The training images a run with these data ``settings`` trains on, the saved split file when it is a long-tailed subset, and the
    drawn indices when it is a per-class subset (the trainer saves them in the run folder).

    Long-tailed (dataset ``NAME-lt``): the split of ``profile`` / ``imbalance_factor`` seeded by ``split_seed``
    (saved under data/splits). ``subset_per_class`` = m: the first m images of every class in a seeded
    permutation (``nested_balanced_indices``), so that subsets of growing m are nested. ``val_fraction`` > 0:
    then that fraction of every class is carved out for validation (not returned here; not trained on)."""
    images, _, split_file, subset = _split_arrays(_data_settings(settings))
    return images, split_file, subset


def tensor_batches(images: ImageArrays, *, device, dataset: str, reference: TensorBatches | None = None
                   ) -> TensorBatches:
    """Batches of in-memory images on ``device``. Training sets (``reference`` None) get random crops (padding 4,
    or 1 below 28 px) and flips (none for :data:`NO_FLIP`) and their own mean/sd; other sets are normalised with the
    ``reference`` training batches' statistics."""
    if reference is None:
        base, _ = split_dataset_name(dataset)
        return TensorBatches(images.images, images.labels, device=device, pad=4 if images.images.shape[1] >= 28
                             else 1, flip=base not in NO_FLIP)
    return TensorBatches(images.images, images.labels, device=device, mean=reference.mean.flatten().cpu().numpy(),
                         std=reference.std.flatten().cpu().numpy())


def load_run_data(settings: DataSettings, device="cpu") -> RunData:
    """Training set (:func:`training_arrays`) and test set (:func:`load_settings_dataset`) as batch sources on
    ``device``, in memory; ``imagefolder(-lt)`` reads the tree ``image_root`` at ``image_size``. ``imagelist``: the
    ``path label`` files ``train_list``/``test_list`` under ``image_root`` (ImageNet-LT, iNaturalist), read by a
    DataLoader with ``num_workers`` workers."""
    settings = _data_settings(settings)
    if settings.dataset == IMAGE_LIST:
        train = ListBatches(settings.image_root, settings.train_list, image_size=settings.image_size,
                            num_workers=settings.num_workers, device=device)
        test = ListBatches(settings.image_root, settings.test_list, image_size=settings.image_size,
                           num_workers=settings.num_workers, device=device)
        counts = np.bincount(train.labels.numpy(), minlength=int(max(train.labels.max(), test.labels.max())) + 1)
        classes, in_channels, split_file, subset = [str(c) for c in range(len(counts))], 3, None, None
    else:
        train_images, val_images, split_file, subset = _split_arrays(settings)
        test_images = load_settings_dataset(settings, train=False)
        counts = np.bincount(train_images.labels, minlength=len(train_images.classes))
        train = tensor_batches(train_images, device=device, dataset=settings.dataset)
        test = tensor_batches(test_images, device=device, dataset=settings.dataset, reference=train)
        val = None if val_images is None or len(val_images) == 0 else tensor_batches(
            val_images, device=device, dataset=settings.dataset, reference=train)
        classes, in_channels = list(train_images.classes), train_images.images.shape[-1]
        return _checked(RunData(train, test, counts, classes, in_channels, split_file, subset, val,
                                tuple(train_images.images.shape[1:3])))
    return _checked(RunData(train, test, counts, classes, in_channels, split_file, subset,
                            input_size=(settings.image_size, settings.image_size)))


def _data_settings(settings) -> DataSettings:
    if not isinstance(settings, DataSettings):
        raise TypeError(f"expected the data settings of a run (a TrainConfig's .data), got {type(settings).__name__}")
    return settings


def _checked(data: RunData) -> RunData:
    if np.any(data.counts == 0):
        raise ValueError(f"classes {np.flatnonzero(data.counts == 0).tolist()} are missing from the training set")
    return data
