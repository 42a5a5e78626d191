"""What a training run trains and is tested on (:class:`DataSettings`) and the dataset names it speaks: a name of
``DATASETS``, that name with ``-lt`` for its long-tailed training set, or :data:`IMAGE_LIST`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_LIST = "imagelist"      # dataset name for ImageNet-LT / iNaturalist style `path label` list files
IMAGE_FOLDER = "imagefolder"  # a name of DATASETS: your own root/<class>/<image> tree, root = image_root


def split_dataset_name(name: str) -> tuple[str, bool]:
    """"fashion-mnist-lt" → ("fashion-mnist", True); "cifar10" → ("cifar10", False)."""
    return (name[:-3], True) if name.endswith("-lt") else (name, False)


@dataclass
class DataSettings:
    """What a run trains and is tested on."""
    dataset: str = "fashion-mnist-lt"   # a name from DATASETS (e.g. "double-mnist", "imagefolder"), "-lt" suffix
                                        # for a long-tailed training set; or "imagelist"
    imbalance_factor: float | None = 100.0
    profile: str = "exp"                # "exp", "step" or a named count table ("mnist-lt-1", "mnist-lt-2")
    split_seed: int = 0                 # seeds the long-tailed split and the per-class subset
    subset_per_class: int | None = None  # train on a nested, sample-balanced subset of m images per class
    val_fraction: float = 0.0           # carve this fraction of every class out of the training set for validation
    augment: bool = True
    data_root: str | None = None
    image_root: str | None = None       # "imagelist": folder the list files' paths are relative to;
                                        # "imagefolder(-lt)": the image tree (made absolute, so it names the run)
    train_list: str | None = None
    test_list: str | None = None
    image_size: int = 224               # "imagelist", "imagefolder(-lt)": side of the square images (pixels)
    num_workers: int = 4

    def __post_init__(self):
        # the tree's absolute path is part of the run's settings: two trees never share a run folder
        if isinstance(self.dataset, str) and split_dataset_name(self.dataset)[0] == IMAGE_FOLDER \
                and self.image_root is not None and str(self.image_root).strip():
            self.image_root = str(Path(self.image_root).expanduser().resolve())
